"""Fisher (Theis et al. 2018; Turner et al. 2020) as in zero-cost-nas ``fisher``.

For the output ``a`` of every Conv/Linear layer (pre-BN, as zero-cost-nas hooks it) and its loss
gradient ``g = dL/da``, the per-channel Fisher is ``F_c = 0.5 * mean_n (sum_{spatial} a_{n,c} g_{n,c})^2``.
zero-cost-nas then broadcasts ``F_c`` to every weight of output channel ``c`` and sums, so the
layer contributes ``fan_in * sum_c F_c`` (``fan_in = prod(weight.shape[1:])``). ``fan_in_weighting``
(default True) reproduces that; False gives the plain per-activation sum. One batch, train mode.
Higher = better. Cut-off models still get a value (the head's bias output times its gradient),
flagged. The activation gradients come from the loss-gradient pass shared with ``snip``,
``grad_norm`` and ``plain`` (:mod:`nasbeff.proxies.loss_gradients`).
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from contextlib import contextmanager

import torch
from torch import nn

from ._common import check_finite


@contextmanager
def activation_fisher_hooks(layers: Sequence[nn.Module]) -> Iterator[dict[int, torch.Tensor]]:
    """While active, every forward of ``layers[i]`` registers a gradient hook on its output that adds
    ``F_c`` of that call to the yielded ``{i: F_c}`` once the backward pass reaches it."""
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
        yield per_layer
    finally:
        for h in handles:
            h.remove()


def fisher_value(layers: Sequence[nn.Module], per_layer: dict[int, torch.Tensor],
                 fan_in_weighting: bool = True) -> float:
    """``sum_l w_l sum_c F_c`` with ``w_l = fan_in`` (zero-cost-nas) or 1."""
    total = 0.0
    for i, f_c in per_layer.items():
        w = math.prod(layers[i].weight.shape[1:]) if fan_in_weighting else 1
        total += w * float(f_c.sum())
    return total
