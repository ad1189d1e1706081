"""GradSign (Zhang & Jia, "GradSign: Model Performance Inference with Theoretical Insights", ICLR
2022): how consistently the samples' gradients agree in sign.

With ``g_i`` the gradient of sample i's loss w.r.t. the Conv/Linear weights (sample i forward alone in
train mode, then its backward, as the reference code's per-sample loop), ``gradsign = sum_k | sum_i sign(g_ik) |`` over every weight k.
Higher = better (gradients that point the same way for many samples mean a denser sample-wise
optimization landscape near the initialisation). A weight whose gradient is exactly 0 for a sample
adds 0 for it. Computed in the per-sample-gradient pass it shares with ``knas``
(:mod:`nasbeff.proxies.per_sample`).
"""

from __future__ import annotations

import torch


def gradsign_value(grads: torch.Tensor) -> float:
    """``sum_k |sum_i sign(grads[i, k])|`` for ``grads`` of shape N x P."""
    return float(torch.sign(grads).sum(dim=0).abs().sum(dtype=torch.float64))
