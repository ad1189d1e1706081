"""GraSP (Wang et al. 2020) as a zero-cost proxy, with zero-cost-nas' sign.

``grasp = sum_l sum_i -theta_i * (H g)_i`` where ``g = dL/dtheta`` over the Conv/Linear weights and
``H g`` is the Hessian-gradient product, computed by double backward
(``H g = d/dtheta <stop_grad(g), dL/dtheta>``). One batch, train mode.

Sign: zero-cost-nas returns ``-theta * Hg`` and treats higher as better (they flipped the sign of
the GraSP pruning score because accuracy correlated negatively with it); we keep that convention, so
our value equals theirs. Cut-off models give 0.0 (flagged).
"""

from __future__ import annotations

import torch
from torch import nn

from .registry import register
from ._common import (
    CONSTANT_OUTPUT,
    Batch,
    LossFn,
    check_finite,
    first_batch,
    forward_loss_grads,
    is_constant_over_batch,
    work_copy,
)


@register("grasp")
def grasp(model: nn.Module, batches: list[Batch], loss_fn: LossFn) -> tuple[float, str | None]:
    x, y = first_batch(batches, "grasp")
    net = work_copy(model)
    layers, grads, out = forward_loss_grads(net, x, y, loss_fn, "grasp", create_graph=True)
    used = [(m, g) for m, g in zip(layers, grads) if g is not None]
    flag = CONSTANT_OUTPUT if is_constant_over_batch(out) else None
    z = sum((g.detach() * g).sum() for _m, g in used)
    if not isinstance(z, torch.Tensor) or not z.requires_grad:
        return 0.0, flag or "no weight gradient"
    hg = torch.autograd.grad(z, [m.weight for m, _g in used], allow_unused=True)
    total = torch.zeros((), dtype=torch.float64)
    for (m, _g), h in zip(used, hg):
        if h is not None:
            check_finite(h, "Hessian-gradient product", "grasp")
            total += (-m.weight.detach() * h).sum().double()
    return float(total), flag
