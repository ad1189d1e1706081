"""Gradient norm (Abdelfattah et al. 2021, zero-cost-nas ``grad_norm``).

``grad_norm = sum_l ||dL/dW_l||_2`` (per-layer L2 norm of the Conv/Linear weight gradient, summed),
one batch, train mode. Higher = better. Cut-off models give 0.0 (flagged).
"""

from __future__ import annotations

import torch
from torch import nn

from . import register
from ._common import CONSTANT_OUTPUT, Batch, LossFn, first_batch, forward_loss_grads, is_constant_over_batch, work_copy


@register("grad_norm")
def grad_norm(model: nn.Module, batches: list[Batch], loss_fn: LossFn) -> tuple[float, str | None]:
    x, y = first_batch(batches, "grad_norm")
    net = work_copy(model)
    _layers, grads, out = forward_loss_grads(net, x, y, loss_fn, "grad_norm")
    total = torch.zeros((), dtype=torch.float64)
    for g in grads:
        if g is not None:
            total += torch.linalg.vector_norm(g.double())
    return float(total), (CONSTANT_OUTPUT if is_constant_over_batch(out) else None)
