"""SNIP (Lee et al. 2019) as a zero-cost proxy (Abdelfattah et al. 2021).

``snip = sum_l sum_i |theta_i * dL/dtheta_i|`` over the weights of every Conv/Linear layer, for one
batch (``batches[0]``) in train mode. Higher = better. Equals zero-cost-nas' ``|dL/d mask|``.
Cut-off models give 0.0 (flagged).
"""

from __future__ import annotations

import torch
from torch import nn

from . import register
from ._common import CONSTANT_OUTPUT, Batch, LossFn, first_batch, forward_loss_grads, is_constant_over_batch, work_copy


@register("snip")
def snip(model: nn.Module, batches: list[Batch], loss_fn: LossFn) -> tuple[float, str | None]:
    x, y = first_batch(batches, "snip")
    net = work_copy(model)
    layers, grads, out = forward_loss_grads(net, x, y, loss_fn, "snip")
    total = torch.zeros((), dtype=torch.float64)
    for m, g in zip(layers, grads):
        if g is not None:
            total += (m.weight.detach() * g).abs().sum().double()
    return float(total), (CONSTANT_OUTPUT if is_constant_over_batch(out) else None)
