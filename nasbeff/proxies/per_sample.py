"""Per-sample gradients of the Conv/Linear weights, and the proxies computed from one pass of them
(``knas`` and ``gradsign``, registered as one group; ``ntk`` uses the same helper on the logits).

Row i is the gradient of sample i's loss (``of="loss"``: ``loss_fn`` on that sample alone) or of the
sum of its logits (``of="logits"``: TE-NAS's NTK). ``ntk`` follows TE-NAS: one train-mode forward of
the batch (batch-statistics BatchNorm couples the samples), one backward per sample through it (each
costs a whole batch's backward: 44-66 s per NB201 arch on one loaded thread). ``knas`` and
``gradsign`` forward each sample on its own (train mode: BatchNorm over that sample's positions), as
GradSign's per-sample loop, about N times cheaper (4.4 s for 64 images of NB201's C=16, N=5 network on
one thread). Rows are float32, N x P (P: every Conv/Linear weight): 64
samples of NB201's C=16, N=5 network are 64 x 1.07 M, about 275 MB.
"""

from __future__ import annotations

from typing import Literal

import torch
from torch import nn

from ._common import Batch, LossFn, check_finite, first_batch, weight_layers, work_copy
from .gradsign import gradsign_value
from .knas import knas_value
from .registry import register_group


def per_sample_weight_grads(net: nn.Module, x: torch.Tensor, y: torch.Tensor, loss_fn: LossFn,
                            of: Literal["loss", "logits"] = "loss", proxy: str = "per-sample gradients",
                            forward: Literal["batch", "sample"] = "batch") -> torch.Tensor:
    """N x P float32: row i is the gradient of sample i's loss (or logit sum) w.r.t. the weights of
    every Conv/Linear layer of ``net`` (used as is: pass a work copy). ``forward="batch"``: one forward
    of the whole batch, one backward per sample through it (batch-statistics BatchNorm couples the
    samples; each backward costs a whole batch's); ``"sample"``: each sample forward on its own (its
    BatchNorm statistics over its own positions), about N times cheaper."""
    weights = [m.weight for m in weight_layers(net)]
    if not weights:
        raise ValueError(f"{proxy}: the model has no Conv/Linear weight")
    out = net(x) if forward == "batch" else None
    if out is not None:
        check_finite(out, "the output", proxy)
    rows = torch.empty(x.shape[0], sum(w.numel() for w in weights), dtype=torch.float32, device=x.device)
    for i in range(x.shape[0]):
        o = out[i:i + 1] if out is not None else net(x[i:i + 1])
        if out is None:
            check_finite(o, "the output", proxy)
        target = o.sum() if of == "logits" else loss_fn(o, y[i:i + 1])
        grads = torch.autograd.grad(target, weights, retain_graph=out is not None and i + 1 < x.shape[0],
                                    allow_unused=True)
        rows[i] = torch.cat([(g if g is not None else torch.zeros_like(w)).reshape(-1).float()
                             for g, w in zip(grads, weights)])
    check_finite(rows, "a per-sample gradient", proxy)
    return rows


NAMES = ("knas", "gradsign")


@register_group(*NAMES)
def sample_gradient_proxies(model: nn.Module, batches: list[Batch], loss_fn: LossFn
                            ) -> dict[str, tuple[float, str | None]]:
    """``{"knas": ..., "gradsign": ...}`` from one per-sample loss-gradient pass of ``batches[0]``. A
    network whose output ignores its input never gets here: :func:`nasbeff.proxies.score` and
    ``score_many`` give it ``-inf`` (flagged) first, so no forward pass of the batch is spent on it."""
    x, y = first_batch(batches, "knas/gradsign", min_samples=2)
    grads = per_sample_weight_grads(work_copy(model), x, y, loss_fn, of="loss", proxy="knas/gradsign",
                                    forward="sample")
    return {"knas": knas_value(grads), "gradsign": gradsign_value(grads)}
