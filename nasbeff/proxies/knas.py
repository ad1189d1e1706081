"""KNAS (Xu et al., "KNAS: Green Neural Architecture Search", ICML 2021): the mean of the gradient
kernel.

With ``g_i`` the gradient of sample i's loss w.r.t. the Conv/Linear weights (sample i forward alone in
train mode, then its backward), the Gram matrix ``K_ij = <g_i, g_j>`` (N x N); the score is its
mean entry, ``knas = (1/N^2) sum_ij <g_i, g_j> = ||(1/N) sum_i g_i||^2``. Higher = better (the
paper's MGM: a larger kernel mean trains faster). Computed in the per-sample-gradient pass it shares
with ``gradsign`` (:mod:`nasbeff.proxies.per_sample`).
"""

from __future__ import annotations

import torch


def knas_value(grads: torch.Tensor) -> float:
    """Mean entry of the Gram matrix of the rows of ``grads`` (N x P), accumulated in float64."""
    g = grads.double()
    mean = g.mean(dim=0)
    return float(mean @ mean)
