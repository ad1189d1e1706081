"""NASWOT v2 (Mellor et al., ICML 2021): log-determinant of the ReLU-code Hamming kernel.

Every ``nn.ReLU`` unit gives each sample a binary code ``c_n = [a > 0]`` (forward hooks, one forward
pass of ``batches[0]`` in train mode). With ``N_A`` the total number of ReLU units,

    K[m, n] = N_A - d_H(c_m, c_n) = sum_units c_m c_n + (1 - c_m)(1 - c_n)

and ``naswot = log|det K|`` (``slogdet``). Higher = better. This is NASLib's ``nwot``, which hooks
every ReLU; the NASWOT paper uses a batch of 128 on NB201, NASLib 64.

Degenerate cases: a singular ``K`` (two samples with identical codes) gives ``-inf`` with a flag;
a model whose output does not depend on the input still gets its (finite) logdet, flagged.
Needs >= 2 samples.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from .registry import register
from ._common import CONSTANT_OUTPUT, Batch, LossFn, check_finite, first_batch, is_constant_over_batch, work_copy


def hamming_kernel(codes: torch.Tensor) -> torch.Tensor:
    """``K = C C^T + (1-C)(1-C)^T = 2 C C^T - s 1^T - 1 s^T + U`` (``s`` = row sums, ``U`` = units)
    for binary codes ``C`` (N, U), returned in float64. One float32 matmul: exact while U < 2**24."""
    c = codes.to(torch.float32)
    if c.shape[1] >= 2**24:
        c = c.double()
    s = c.sum(dim=1, dtype=torch.float64)
    return 2.0 * (c @ c.T).double() - s[:, None] - s[None, :] + float(c.shape[1])


@register("naswot")
def naswot(model: nn.Module, batches: list[Batch], loss_fn: LossFn) -> tuple[float, str | None]:
    x, _y = first_batch(batches, "naswot", min_samples=2)
    net = work_copy(model)
    n = x.shape[0]
    K = torch.zeros(n, n, dtype=torch.float64)
    n_relu = 0

    def hook(_m: nn.Module, _inp: tuple, out: torch.Tensor) -> None:
        nonlocal K, n_relu
        o = out.detach()
        check_finite(o, "ReLU activation", "naswot")
        n_relu += 1
        K += hamming_kernel((o.reshape(o.shape[0], -1) > 0).float())

    handles = [m.register_forward_hook(hook) for m in net.modules() if isinstance(m, nn.ReLU)]
    if not handles:
        raise ValueError("naswot: the model has no nn.ReLU module to hook")
    try:
        with torch.no_grad():
            out = net(x)
    finally:
        for h in handles:
            h.remove()
    if n_relu == 0:
        raise ValueError("naswot: no ReLU was called in the forward pass")
    flag = CONSTANT_OUTPUT if isinstance(out, torch.Tensor) and is_constant_over_batch(out) else None
    sign, logdet = torch.linalg.slogdet(K)
    if float(sign) <= 0 or not math.isfinite(float(logdet)):
        why = "Hamming kernel is singular (samples with identical ReLU codes)"
        return float("-inf"), f"{flag}; {why}" if flag else why
    return float(logdet), flag
