"""SNIP (Lee et al. 2019) as a zero-cost proxy (Abdelfattah et al. 2021).

``snip = sum_l sum_i |theta_i * dL/dtheta_i|`` over the weights of every Conv/Linear layer, for one
batch (``batches[0]``) in train mode. Higher = better. Equals zero-cost-nas' ``|dL/d mask|``.
Cut-off models give 0.0 (flagged). Computed in the loss-gradient pass it shares with ``grad_norm``,
``plain`` and ``fisher`` (:mod:`nasbeff.proxies.loss_gradients`).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn


def snip_value(layers: Sequence[nn.Module], grads: Sequence[torch.Tensor | None]) -> float:
    """``sum_l sum_i |W_l,i * dL/dW_l,i|`` (float64 accumulation)."""
    total = torch.zeros((), dtype=torch.float64)
    for m, g in zip(layers, grads):
        if g is not None:
            total += (m.weight.detach() * g).abs().sum().double()
    return float(total)
