"""VKDNW (Tybl & Neumann, CVPR 2025): entropy of the Fisher-information spectrum at initialisation.

Setup, as the authors' reference code: the model copy is re-initialised (``init="kaiming_normal_fanin"``,
seeded by ``seed``; ``None`` keeps the given weights) and put in **eval mode** (BN uses its running
statistics, so samples are independent). The Fisher information is taken w.r.t. a tractable subset
``theta_S`` of the weights: the first element (flat index 0) of every trainable parameter tensor, so
``P`` = number of parameter tensors. For each sample ``x_n`` of ``batches[0]`` (labels unused), with
logits ``z_n``, smoothed class probabilities ``p_n = (1 - alpha) softmax(z_n) + alpha / C`` (``alpha``
= 0.05 as the reference code) and ``J_n = dz_n / dtheta_S`` (C x P), the paper's Fisher information
matrix ``E_x E_{c ~ p} [grad log p(c|x) grad log p(c|x)^T]`` is

    F = (1/N) sum_n J_n^T (diag(p_n) - p_n p_n^T) J_n                                (P x P)

With ``lambda`` its eigenvalues (clamped at 0), ``q_k`` the k-th decile of ``lambda`` (k = 1..9, linear
interpolation as ``torch.quantile``) and ``r_k = q_k / sum_j q_j``:

* ``vkdnw = -sum_k r_k log r_k`` (0 log 0 = 0), in ``[0, log 9]``: high when the Fisher spectrum is
  even, i.e. no direction of weight space is much harder to estimate than another.
* ``vkdnw_dim = P``, the size term of VKDNW_single.
* ``vkdnw_single = P + vkdnw / log(10)``: VKDNW_single orders archs by ``(P, vkdnw)``
  lexicographically (the reference code ranks the tuple ``(vkdnw_dim, vkdnw_entropy)``); since
  ``vkdnw / log 10 < 1`` this single number has exactly that order.
* VKDNW_agg, the paper's rank-combination variant, is the population aggregate
  ``nasbeff.proxies.VKDNW_AGG`` = ``rank:vkdnw_single+jacov+aznas_expressivity+aznas_trainability+flops``
  (sum of log ranks, as the reference code's ``vkdnw_comb_rank``).

The reference code multiplies the Jacobian by the covariance's Cholesky factor from the left
(``L J``), which forms ``J^T L^T L J``; we form the Fisher ``J^T L L^T J`` as the paper defines it.
Cut-off archs (logits equal for every sample) get ``-inf`` for all three, flagged; an all-zero
decile vector (no spectrum to compare) gives ``-inf`` for ``vkdnw``/``vkdnw_single``, flagged.
"""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.func import functional_call, jacrev, vmap

from .registry import register_group
from ._common import CONSTANT_OUTPUT, Batch, LossFn, check_finite, first_batch, is_constant_over_batch, prepared_copy

NAMES = ("vkdnw", "vkdnw_dim", "vkdnw_single")
#: Samples whose Jacobians are computed together (bounds memory: the samples are independent in
#: eval mode, so the result does not depend on it; all 64 at once needed ~1.3 GB on NB201's largest cell).
VMAP_CHUNK = 8


def first_weight_jacobian(net: nn.Module, x: torch.Tensor) -> tuple[torch.Tensor, list[str]]:
    """``J`` (N, C, P): d logits / d (element 0 of every trainable parameter), per sample, and the
    parameter names. ``net`` must be in eval mode (samples independent)."""
    params = {n: p.detach() for n, p in net.named_parameters() if p.requires_grad}
    if not params:
        raise ValueError("vkdnw: the model has no trainable parameter")
    names = list(params)
    units = {n: torch.zeros(p.numel(), dtype=p.dtype).index_fill_(0, torch.tensor([0]), 1.0).view_as(p)
             for n, p in params.items()}
    buffers = dict(net.named_buffers())

    def logits(delta: torch.Tensor, x1: torch.Tensor) -> torch.Tensor:
        ps = {n: params[n] + delta[i] * units[n] for i, n in enumerate(names)}
        return functional_call(net, (ps, buffers), (x1.unsqueeze(0),)).squeeze(0)

    delta = torch.zeros(len(names), dtype=next(iter(params.values())).dtype)
    return vmap(jacrev(logits, chunk_size=1), in_dims=(None, 0), chunk_size=VMAP_CHUNK)(delta, x), names


def fisher_matrix(jac: torch.Tensor, logits: torch.Tensor, alpha: float) -> torch.Tensor:
    """``F = (1/N) sum_n J_n^T (diag p_n - p_n p_n^T) J_n`` in float64 with smoothed ``p_n``."""
    j = jac.double()
    p = torch.softmax(logits.double(), dim=1) * (1.0 - alpha) + alpha / logits.shape[1]
    jp = torch.einsum("ncp,nc->np", j, p)
    return (torch.einsum("ncp,nc,ncq->pq", j, p, j) - jp.T @ jp) / j.shape[0]


def decile_entropy(eigenvalues: torch.Tensor) -> float:
    """``-sum r log r`` of the normalised deciles ``r_k = q_k / sum q`` (k = 1..9) of ``eigenvalues``;
    ``-inf`` when every decile is 0."""
    lam = eigenvalues.double().clamp_min(0.0)
    q = torch.quantile(lam, torch.arange(1, 10, dtype=torch.float64) / 10.0)
    total = float(q.sum())
    if total <= 0.0:
        return float("-inf")
    r = q[q > 0] / total
    return float(-(r * r.log()).sum())


@register_group(*NAMES)
def vkdnw(
    model: nn.Module, batches: list[Batch], loss_fn: LossFn, init: str | None = "kaiming_normal_fanin", seed: int = 0,
    alpha: float = 0.05,
) -> dict[str, tuple[float, str | None]]:
    """VKDNW entropy, its size term ``P`` and VKDNW_single from one Jacobian computation."""
    x, _y = first_batch(batches, "vkdnw", min_samples=1)
    if not 0.0 <= alpha < 1.0:
        raise ValueError(f"vkdnw: alpha must be in [0, 1), got {alpha}")
    net = prepared_copy(model, init, seed, "vkdnw", train=False)
    with torch.no_grad():
        out = net(x)
    if not isinstance(out, torch.Tensor) or out.ndim != 2:
        raise ValueError(f"vkdnw: model must return logits of shape (N, C), got {getattr(out, 'shape', type(out))}")
    check_finite(out, "model output", "vkdnw")
    if is_constant_over_batch(out):
        return {n: (float("-inf"), CONSTANT_OUTPUT) for n in NAMES}
    jac, names = first_weight_jacobian(net, x)
    check_finite(jac, "Jacobian", "vkdnw")
    lam = torch.linalg.eigvalsh(fisher_matrix(jac, out, alpha))
    ent, dim = decile_entropy(lam), float(len(names))
    if ent == float("-inf"):
        why = "every decile of the Fisher spectrum is 0"
        return {"vkdnw": (ent, why), "vkdnw_dim": (dim, None), "vkdnw_single": (ent, why)}
    return {"vkdnw": (ent, None), "vkdnw_dim": (dim, None), "vkdnw_single": (dim + ent / math.log(10.0), None)}
