"""Plain (Abdelfattah et al. 2021, zero-cost-nas ``plain``): ``sum_l sum_i theta_i * dL/dtheta_i``
(signed) over Conv/Linear weights, one batch, train mode. Higher = better (their convention; it is a
weak proxy). Cut-off models give 0.0 (flagged). Computed in the loss-gradient pass it shares with
``snip``, ``grad_norm`` and ``fisher`` (:mod:`nasbeff.proxies.loss_gradients`).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn


def plain_value(layers: Sequence[nn.Module], grads: Sequence[torch.Tensor | None]) -> float:
    """``sum_l sum_i W_l,i * dL/dW_l,i`` (float64 accumulation)."""
    total = torch.zeros((), dtype=torch.float64)
    for m, g in zip(layers, grads):
        if g is not None:
            total += (m.weight.detach() * g).sum().double()
    return float(total)
