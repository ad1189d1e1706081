"""Plain (Abdelfattah et al. 2021, zero-cost-nas ``plain``): ``sum_l sum_i theta_i * dL/dtheta_i``
(signed) over Conv/Linear weights, one batch, train mode. Higher = better (their convention; it is a
weak proxy). Cut-off models give 0.0 (flagged).
"""

from __future__ import annotations

import torch
from torch import nn

from . import register
from ._common import CONSTANT_OUTPUT, Batch, LossFn, first_batch, forward_loss_grads, is_constant_over_batch, work_copy


@register("plain")
def plain(model: nn.Module, batches: list[Batch], loss_fn: LossFn) -> tuple[float, str | None]:
    x, y = first_batch(batches, "plain")
    net = work_copy(model)
    layers, grads, out = forward_loss_grads(net, x, y, loss_fn, "plain")
    total = torch.zeros((), dtype=torch.float64)
    for m, g in zip(layers, grads):
        if g is not None:
            total += (m.weight.detach() * g).sum().double()
    return float(total), (CONSTANT_OUTPUT if is_constant_over_batch(out) else None)
