"""ZiCo (Li et al., ICLR 2023): inverse coefficient of variation of gradients across batches.

With ``g_b`` the loss gradient of the Conv/Linear weights for batch ``b`` (train mode, >= 2 batches),
per layer ``l`` and weight ``i``: ``mu_i = mean_b |g_{b,i}|``, ``sigma_i = std_b g_{b,i}`` (ddof 0);

    zico = sum_l log( sum_{i: sigma_i > 0} mu_i / sigma_i )

(layers whose inner sum is 0 are skipped). ``mu`` is the mean of **absolute** gradients as in the
official code and paper (not ``|mean|``). Higher = better. With one batch the variance is undefined:
``ValueError`` (split a batch with :func:`split_batch` if needed). No usable layer gives ``-inf``, flagged.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from .registry import register
from ._common import CONSTANT_OUTPUT, Batch, LossFn, forward_loss_grads, is_constant_over_batch, work_copy


def split_batch(x: torch.Tensor, y: torch.Tensor, n: int = 2) -> list[Batch]:
    """Split one batch into ``n`` equal-as-possible batches (for proxies needing several)."""
    if n < 1 or x.shape[0] < n:
        raise ValueError(f"cannot split a batch of {x.shape[0]} into {n} non-empty parts")
    return list(zip(torch.tensor_split(x, n), torch.tensor_split(y, n)))


def zico_from_grads(per_layer: list[torch.Tensor]) -> float:
    """``sum_l log(sum_{sigma>0} mean|g| / std g)``; each entry is (batches, weights) for one layer."""
    total, used = 0.0, 0
    for g in per_layer:
        g = g.double()
        sd = g.std(dim=0, unbiased=False)
        mu = g.abs().mean(dim=0)
        nz = sd > 0
        s = float((mu[nz] / sd[nz]).sum())
        if s > 0:
            total += math.log(s)
            used += 1
    return total if used else float("-inf")


@register("zico")
def zico(model: nn.Module, batches: list[Batch], loss_fn: LossFn) -> tuple[float, str | None]:
    if len(batches) < 2:
        raise ValueError(f"zico needs >= 2 batches to estimate gradient variance, got {len(batches)}")
    net = work_copy(model)
    grads_per_batch: list[list[torch.Tensor]] = []
    constant = True
    for x, y in batches:
        layers, grads, out = forward_loss_grads(net, x, y, loss_fn, "zico")
        constant = constant and is_constant_over_batch(out)
        grads_per_batch.append(
            [(g if g is not None else torch.zeros_like(m.weight)).detach().reshape(-1) for m, g in zip(layers, grads)]
        )
    per_layer = [torch.stack(gs) for gs in zip(*grads_per_batch)]
    value = zico_from_grads(per_layer)
    flag = CONSTANT_OUTPUT if constant else None
    if value == float("-inf"):
        flag = flag or "all gradients are constant across batches"
    return value, flag
