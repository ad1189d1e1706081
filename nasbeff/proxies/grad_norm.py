"""Gradient norm (Abdelfattah et al. 2021, zero-cost-nas ``grad_norm``).

``grad_norm = sum_l ||dL/dW_l||_2`` (per-layer L2 norm of the Conv/Linear weight gradient, summed),
one batch, train mode. Higher = better. Cut-off models give 0.0 (flagged). Computed in the
loss-gradient pass it shares with ``snip``, ``plain`` and ``fisher`` (:mod:`nasbeff.proxies.loss_gradients`).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch


def grad_norm_value(grads: Sequence[torch.Tensor | None]) -> float:
    """``sum_l ||dL/dW_l||_2`` (float64 accumulation)."""
    total = torch.zeros((), dtype=torch.float64)
    for g in grads:
        if g is not None:
            total += torch.linalg.vector_norm(g.double())
    return float(total)
