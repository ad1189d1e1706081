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
``J`` comes from :func:`activation_jacobian` (one forward, one input-gradient backward per class: the
first element of a layer's weight moves only its output channel 0, so ``J`` is a sum of that channel's
gradient times the matching input) wherever the model allows it -- every NB201 / NATS network -- and
otherwise from the generic per-sample :func:`first_weight_jacobian`; the two agree to float rounding
(``benchmarks/bench_vkdnw_jacobian.py``: 1.3-2x faster on NB201 networks).
Cut-off archs (logits equal for every sample) get ``-inf`` for all three, flagged; an all-zero
decile vector (no spectrum to compare) gives ``-inf`` for ``vkdnw``/``vkdnw_single``, flagged.
"""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.func import functional_call, jacrev, vmap
from torch.nn.modules.batchnorm import _BatchNorm

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


class _Unsupported(Exception):
    """The model is outside what :func:`activation_jacobian` handles; the generic path is used."""


def _first_element_factor(m: nn.Module, kind: str, inp: torch.Tensor) -> tuple[int, torch.Tensor | None]:
    """``(channel_dim, a)`` for element 0 of ``m.<kind>``: when that element moves by ``delta``, the
    layer's output channel 0 (along ``channel_dim``) moves by ``delta * a`` (``a = None``: by ``delta``,
    a bias). ``a`` is a copy, so later in-place changes of ``inp`` do not reach it."""
    if isinstance(m, nn.Conv2d):
        if m.padding_mode != "zeros" or isinstance(m.padding, str):
            raise _Unsupported
        if kind == "bias":
            return 1, None
        # W[0, 0, 0, 0] reads input channel 0 at kernel offset (0, 0) -- whatever the dilation and
        # groups -- so output pixel (i, j) moves by delta * x_pad[n, 0, i s_h, j s_w]
        (ph, pw), (sh, sw) = m.padding, m.stride
        return 1, nn.functional.pad(inp[:, 0].detach(), (pw, pw, ph, ph))[:, ::sh, ::sw].clone()
    if isinstance(m, _BatchNorm):
        if m.training or m.running_mean is None or m.running_var is None or not m.affine:
            raise _Unsupported  # batch statistics would couple the samples
        if kind == "bias":
            return 1, None
        return 1, (inp[:, 0].detach() - m.running_mean[0]) / torch.sqrt(m.running_var[0] + m.eps)
    if isinstance(m, nn.Linear):
        return -1, None if kind == "bias" else inp[..., 0].detach().clone()
    raise _Unsupported


#: Samples whose activation Jacobians are formed together (bounds the memory of the kept graph; the
#: samples are independent in eval mode, so the result does not depend on it).
ACTIVATION_CHUNK = 16


def activation_jacobian(net: nn.Module, x: torch.Tensor) -> tuple[torch.Tensor, list[str]] | None:
    """``J`` of :func:`first_weight_jacobian` from one forward and one input-gradient backward per
    class (per :data:`ACTIVATION_CHUNK` samples), or None when the model is outside what this handles
    (then use that function).

    In eval mode the samples are independent, so the backward of ``sum_n z_n[c]`` gives every sample's
    ``g_n = dz_n[c] / d(layer output)``. Element 0 of a Conv2d / Linear / eval-BatchNorm weight or bias
    moves only output channel 0 (Conv: by ``delta * x_pad[n, 0, i s, j s]``; BN: by ``delta * xhat[n, 0]``;
    Linear: by ``delta * x[n, 0]``; a bias by ``delta``), so ``J_n[c, k] = sum g_n[0, ...] * a_n[...]``:
    no weight gradient is formed (the generic path forms each weight's whole gradient, C times per
    sample, to read one element). Handled: every trainable parameter is the weight or bias of a Conv2d
    (zero padding), a Linear or an eval-mode affine BatchNorm with running statistics, each runs once,
    and the first sample's output alone matches its output in the batch. A layer's output is passed on
    as a copy whose channel 0 is a tensor of its own (the one differentiated), so an in-place op after
    the layer (NB201's last ReLU) leaves it intact and only channel 0's gradient is kept."""
    params = {n: p for n, p in net.named_parameters() if p.requires_grad}
    owners: dict[str, tuple[nn.Module, str]] = {}
    for mod_name, m in net.named_modules():
        for kind, p in m.named_parameters(recurse=False):
            full = f"{mod_name}.{kind}" if mod_name else kind
            if full in params:
                owners[full] = (m, kind)
    if set(owners) != set(params) or not params:
        return None
    kinds: dict[int, list[str]] = {}
    for m, kind in owners.values():
        kinds.setdefault(id(m), []).append(kind)
    modules = {id(m): m for m, _ in owners.values()}
    parts = []
    for start in range(0, x.shape[0], ACTIVATION_CHUNK):
        part = _activation_jacobian_chunk(net, x[start:start + ACTIVATION_CHUNK], params, owners, kinds, modules,
                                          check_alone=start == 0)
        if part is None:
            return None
        parts.append(part)
    return torch.cat(parts), list(params)


def _activation_jacobian_chunk(net: nn.Module, x: torch.Tensor, params: dict, owners: dict, kinds: dict,
                               modules: dict, check_alone: bool) -> torch.Tensor | None:
    """:func:`activation_jacobian` on the samples ``x`` (None: not handled)."""
    seen: dict[int, tuple[torch.Tensor, dict[str, tuple[int, torch.Tensor | None]]] | None] = {}

    def keep(m: nn.Module, args: tuple, out: torch.Tensor) -> torch.Tensor | None:
        if id(m) in seen or not isinstance(out, torch.Tensor) or not args or not isinstance(args[0], torch.Tensor):
            seen[id(m)] = None  # run twice or an odd call: not handled
            return None
        try:
            factors = {k: _first_element_factor(m, k, args[0]) for k in kinds[id(m)]}
        except _Unsupported:
            seen[id(m)] = None
            return None
        dim = next(iter(factors.values()))[0] % out.ndim
        head = out.narrow(dim, 0, 1).clone()  # channel 0, never changed in place: what is differentiated
        seen[id(m)] = (head, factors)
        return torch.cat([head, out.narrow(dim, 1, out.shape[dim] - 1)], dim=dim)

    hooks = [m.register_forward_hook(keep) for m in modules.values()]
    try:
        with torch.enable_grad():
            out = net(x)
    finally:
        for h in hooks:
            h.remove()
    if not isinstance(out, torch.Tensor) or out.ndim != 2 or set(seen) != set(modules):
        return None
    if any(v is None for v in seen.values()):
        return None
    if check_alone:
        with torch.no_grad():
            alone = net(x[:1])
        scale = float(out.detach().abs().max())
        if not torch.allclose(alone, out[:1].detach(), rtol=1e-4, atol=1e-5 * scale + 1e-12):
            return None  # the batch couples the samples
    heads = [v[0] for v in seen.values()]  # type: ignore[index]
    where = {key: k for k, key in enumerate(seen)}
    terms = [(where[id(m)], *seen[id(m)][1][kind]) for m, kind in (owners[n] for n in params)]  # type: ignore[index]
    jac = torch.zeros(x.shape[0], out.shape[1], len(params), dtype=out.dtype, device=out.device)
    for c in range(out.shape[1]):
        grads = torch.autograd.grad(out[:, c].sum(), heads, retain_graph=c + 1 < out.shape[1], allow_unused=True)
        for k, (j, dim, a) in enumerate(terms):
            if grads[j] is None:
                continue
            g0 = grads[j].select(dim, 0)
            if a is not None:
                if a.shape != g0.shape:  # conv: the strided padded input reaches past the output
                    a = a[(slice(None), *(slice(0, s) for s in g0.shape[1:]))]
                g0 = g0 * a
            jac[:, c, k] = g0.reshape(g0.shape[0], -1).sum(dim=1)
    return jac


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
    jac, names = activation_jacobian(net, x) or first_weight_jacobian(net, x)
    check_finite(jac, "Jacobian", "vkdnw")
    lam = torch.linalg.eigvalsh(fisher_matrix(jac, out, alpha))
    ent, dim = decile_entropy(lam), float(len(names))
    if ent == float("-inf"):
        why = "every decile of the Fisher spectrum is 0"
        return {"vkdnw": (ent, why), "vkdnw_dim": (dim, None), "vkdnw_single": (ent, why)}
    return {"vkdnw": (ent, None), "vkdnw_dim": (dim, None), "vkdnw_single": (dim + ent / math.log(10.0), None)}
