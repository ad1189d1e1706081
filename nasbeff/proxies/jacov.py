"""Jacobian covariance: NASWOT arXiv v1 (Mellor et al. 2020) = zero-cost-nas ``jacob_cov`` = NASLib ``jacov``.

With ``J`` the input gradients of ``sum(model(x))`` (one row per sample, flattened) and ``lambda``
the eigenvalues of the Pearson correlation matrix ``corrcoef(J)`` (N x N),

    jacov = -sum_i [ log(lambda_i + k) + 1 / (lambda_i + k) ],   k = 1e-5.

One batch (``batches[0]``), train mode; the published NB201 values use 64 (zero-cost-nas, NASLib)
or 128 (NASWOT v1) samples. Higher = better. Eigenvalues come from ``eigvalsh`` and tiny negative
round-off is clipped at 0. Registered as ``jacov`` and ``naswot_v1`` (same function).

Degenerate: if some sample's input gradient is constant (zero variance; e.g. the output does not
depend on the input), the correlation is undefined: ``-inf`` with a flag. Needs >= 2 samples.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from .registry import register
from ._common import CONSTANT_OUTPUT, Batch, LossFn, check_finite, first_batch, is_constant_over_batch, work_copy

K_EPS = 1e-5


def jacov_from_jacobian(jac: np.ndarray, k: float = K_EPS) -> float:
    """``-sum(log(l + k) + 1/(l + k))`` over eigenvalues ``l`` of ``corrcoef(jac)`` (rows = samples)."""
    corr = np.corrcoef(np.asarray(jac, dtype=np.float64))
    lam = np.clip(np.linalg.eigvalsh(corr), 0.0, None)
    return float(-np.sum(np.log(lam + k) + 1.0 / (lam + k)))


@register("jacov")
@register("naswot_v1")
def jacov(model: nn.Module, batches: list[Batch], loss_fn: LossFn) -> tuple[float, str | None]:
    x, _y = first_batch(batches, "jacov", min_samples=2)
    net = work_copy(model)
    xg = x.detach().clone().requires_grad_(True)
    out = net(xg)
    if not isinstance(out, torch.Tensor):
        raise ValueError(f"jacov: model must return a tensor, got {type(out).__name__}")
    check_finite(out, "model output", "jacov")
    (jac,) = torch.autograd.grad(out, xg, grad_outputs=torch.ones_like(out), allow_unused=True)
    if jac is None:
        return float("-inf"), CONSTANT_OUTPUT
    check_finite(jac, "input gradient", "jacov")
    j = jac.reshape(jac.shape[0], -1).double().numpy()
    if np.any(j.std(axis=1) == 0):
        why = CONSTANT_OUTPUT if is_constant_over_batch(out) or not j.any() else "a sample has a constant input gradient"
        return float("-inf"), why
    return jacov_from_jacobian(j), None
