"""Fisher (Theis et al. 2018; Turner et al. 2020) as in zero-cost-nas ``fisher``.

For the output ``a`` of every Conv/Linear layer (pre-BN, as zero-cost-nas hooks it) and its loss
gradient ``g = dL/da``, the per-channel Fisher is ``F_c = 0.5 * mean_n (sum_{spatial} a_{n,c} g_{n,c})^2``.
zero-cost-nas then broadcasts ``F_c`` to every weight of output channel ``c`` and sums, so the
layer contributes ``fan_in * sum_c F_c`` (``fan_in = prod(weight.shape[1:])``). ``fan_in_weighting``
(default True) reproduces that; False gives the plain per-activation sum. One batch, train mode.
Higher = better. Cut-off models still get a value (the head's bias output times its gradient), flagged.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from . import register
from ._common import (
    CONSTANT_OUTPUT,
    Batch,
    LossFn,
    check_finite,
    first_batch,
    is_constant_over_batch,
    weight_layers,
    work_copy,
)


@register("fisher")
def fisher(
    model: nn.Module, batches: list[Batch], loss_fn: LossFn, fan_in_weighting: bool = True
) -> tuple[float, str | None]:
    x, y = first_batch(batches, "fisher")
    net = work_copy(model)
    layers = weight_layers(net)
    if not layers:
        raise ValueError("fisher: the model has no Conv/Linear layer to score")
    per_layer: dict[int, torch.Tensor] = {}

    def make_hook(idx: int):
        def fwd_hook(_m: nn.Module, _inp: tuple, out: torch.Tensor) -> None:
            if not (isinstance(out, torch.Tensor) and out.requires_grad):
                return
            act = out.detach()

            def grad_hook(g: torch.Tensor) -> None:
                check_finite(g, "activation gradient", "fisher")
                prod = act * g
                g_nc = prod.sum(dim=tuple(range(2, prod.ndim))) if prod.ndim > 2 else prod
                f_c = 0.5 * g_nc.double().pow(2).mean(0)
                per_layer[idx] = per_layer[idx] + f_c if idx in per_layer else f_c

            out.register_hook(grad_hook)

        return fwd_hook

    handles = [m.register_forward_hook(make_hook(i)) for i, m in enumerate(layers)]
    try:
        out = net(x)
        if not isinstance(out, torch.Tensor):
            raise ValueError(f"fisher: model must return a logits tensor, got {type(out).__name__}")
        check_finite(out, "model output", "fisher")
        loss = loss_fn(out, y)
        check_finite(loss, "loss", "fisher")
        loss.backward()
    finally:
        for h in handles:
            h.remove()
    total = 0.0
    for i, f_c in per_layer.items():
        w = math.prod(layers[i].weight.shape[1:]) if fan_in_weighting else 1
        total += w * float(f_c.sum())
    return total, (CONSTANT_OUTPUT if is_constant_over_batch(out) else None)
