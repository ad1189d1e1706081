"""NTK condition number (TE-NAS, Chen et al., "Neural Architecture Search on ImageNet in Four GPU
Hours", ICLR 2021): the trainability of a network from the spectrum of its empirical neural tangent
kernel at initialisation.

With ``j_i`` the gradient of the sum of sample i's logits w.r.t. the Conv/Linear weights (one
train-mode forward of the batch, one backward per sample, as TE-NAS), the empirical NTK is
``Theta_ij = <j_i, j_j>`` (N x N) and ``kappa = lambda_max / lambda_min`` its condition number. A
smaller kappa trains better, so the score is ``ntk = -kappa`` (higher = better). A singular kernel
(``lambda_min <= 0`` in float64, e.g. two identical samples) gives ``-inf``, flagged.
"""

from __future__ import annotations

import torch
from torch import nn

from ._common import Batch, LossFn, first_batch, work_copy
from .per_sample import per_sample_weight_grads
from .registry import register

SINGULAR = "the NTK is singular (lambda_min <= 0): condition number infinite"


def ntk_value(jacobians: torch.Tensor) -> tuple[float, str | None]:
    """``(-lambda_max / lambda_min, flag)`` of the Gram matrix of the rows of ``jacobians`` (N x P)."""
    j = jacobians.double()
    eig = torch.linalg.eigvalsh(j @ j.T)
    lo, hi = float(eig[0]), float(eig[-1])
    if not lo > 0:
        return float("-inf"), SINGULAR
    return -hi / lo, None


@register("ntk")
def ntk(model: nn.Module, batches: list[Batch], loss_fn: LossFn) -> tuple[float, str | None]:
    x, y = first_batch(batches, "ntk", min_samples=2)
    return ntk_value(per_sample_weight_grads(work_copy(model), x, y, loss_fn, of="logits", proxy="ntk"))
