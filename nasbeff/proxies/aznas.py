"""AZ-NAS (Lee & Ham, CVPR 2024): four zero-cost components assembled by rank within a population.

Setup, as the authors' reference code: the model copy is re-initialised (``init="kaiming_normal_fanin"``,
seeded by ``seed``; ``init=None`` keeps the given weights), train mode (batch-statistics BN), one batch
``x = batches[0][0]`` (labels unused). Feature maps ``f_0 .. f_L``: the outputs of ``model.stem`` and
of every module of ``model.cells`` when the model has both (the NB201 / xautodl layout: stem + 17
cells and reduction blocks, the reference code's ``extract_cell_features``); otherwise the 4-D outputs
of the model's direct children in call order.

* **expressivity** (paper Sec. 3, "expressivity"): each ``f_l`` (B, C, H, W) is read as ``BHW``
  samples of ``C`` channels; with the centred sample matrix ``X``, ``Sigma_l = X^T X / (BHW)`` has
  eigenvalues ``lambda_i`` and ``p_i = lambda_i / sum_j lambda_j``; the isotropy of the feature space
  is the entropy ``e_l = -sum_i p_i log p_i`` (0 log 0 = 0) and ``expressivity = sum_l e_l``.
* **progressivity** ("progressivity"): ``min_{l >= 1} (e_l - e_{l-1})``, the smallest entropy gain.
* **trainability** ("trainability"): for ``l = L .. 1`` a Rademacher ``g`` (entries +-1, drawn in that
  order from a generator seeded by ``seed``) is back-propagated through block ``l``:
  ``v = (df_l / df_{l-1})^T g``; when the block halves the resolution by ``s``, ``v`` is
  pixel-unshuffled by ``s``. With ``V`` (BHW, C_{l-1} s^2) and ``G`` (BHW, C_l) the flattened maps,
  ``M_l = V^T G / (BHW)`` estimates the block Jacobian and ``sigma_l`` is its largest singular value;
  ``t_l = -sigma_l - 1 / (sigma_l + 1e-6) + 2`` (0 at sigma = 1, negative otherwise) and
  ``trainability = mean_l t_l``. A block that is exactly the identity (``v == g``) gets
  ``t_l = -inf`` as in the reference code, so such an arch ranks last by trainability.
* **complexity**: FLOPs, registered as ``aznas_complexity`` (the ``flops`` proxy).

**The AZ-NAS score is a population quantity** ("non-linear ranking aggregation"): within the
candidates being compared, ``AZ-NAS(a) = sum_m log(rank_m(a) / N)`` over the four components
(``nasbeff.proxies.AZNAS`` for :func:`nasbeff.proxies.score_population`, or
:func:`nasbeff.proxies.aggregate_scores` on a table). A single-model call gives only the components,
which do not depend on the population; an arch's aggregate changes with the population it is ranked
in (only its order within that population means anything).

Cut-off archs: when the logits are equal for every sample (the output does not depend on the input,
e.g. NB201 cut-off cells) the three components are ``-inf`` with the registry's flag; a feature map
with zero variance otherwise makes expressivity and progressivity ``-inf`` (flagged).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from .registry import register, register_group
from ._common import CONSTANT_OUTPUT, Batch, LossFn, check_finite, first_batch, is_constant_over_batch, prepared_copy
from .flops import flops

NAMES = ("aznas_expressivity", "aznas_progressivity", "aznas_trainability")
register("aznas_complexity")(flops)


def feature_taps(net: nn.Module) -> list[nn.Module]:
    """The modules whose outputs are AZ-NAS's feature maps (see the module docstring)."""
    stem, cells = getattr(net, "stem", None), getattr(net, "cells", None)
    if isinstance(stem, nn.Module) and isinstance(cells, (nn.ModuleList, nn.Sequential)) and len(cells):
        return [stem, *cells]
    return list(net.children())


def forward_features(net: nn.Module, x: torch.Tensor, proxy: str) -> tuple[list[torch.Tensor], torch.Tensor]:
    """One forward pass (with autograd) returning the 4-D feature maps of :func:`feature_taps` and the logits."""
    feats: list[tuple[torch.Tensor, int]] = []

    def hook(_m: nn.Module, _inp: tuple, out: object) -> None:
        if isinstance(out, torch.Tensor) and out.ndim == 4:
            feats.append((out, out._version))

    handles = [m.register_forward_hook(hook) for m in feature_taps(net)]
    try:
        out = net(x)
    finally:
        for h in handles:
            h.remove()
    if not isinstance(out, torch.Tensor):
        raise ValueError(f"{proxy}: model must return a logits tensor, got {type(out).__name__}")
    check_finite(out, "model output", proxy)
    if len(feats) < 2:
        raise ValueError(f"{proxy}: needs >= 2 feature maps (N, C, H, W) from model.stem/model.cells or the "
                         f"model's children, found {len(feats)}")
    if any(f._version != v for f, v in feats):
        raise ValueError(f"{proxy}: a feature map was modified in place after its block (in-place activation?)")
    for f, _v in feats:
        check_finite(f, "feature map", proxy)
        if not f.requires_grad:
            raise ValueError(f"{proxy}: feature maps do not require grad (frozen parameters?)")
    return [f for f, _v in feats], out


def spectral_entropy(fmap: torch.Tensor) -> float | None:
    """``-sum p log p`` of the normalised eigenvalues of the channel covariance of ``fmap`` (B, C, H, W);
    None when the covariance is zero (constant map)."""
    c = fmap.shape[1]
    xs = fmap.detach().double().transpose(0, 1).reshape(c, -1)
    xs = xs - xs.mean(dim=1, keepdim=True)
    lam = torch.linalg.eigvalsh(xs @ xs.T / xs.shape[1]).clamp_min(0.0)
    total = float(lam.sum())
    if total <= 0.0:
        return None
    p = lam[lam > 0] / total
    return float(-(p * p.log()).sum())


def block_trainability(f_out: torch.Tensor, f_in: torch.Tensor, gen: torch.Generator) -> float:
    """``t_l = -sigma - 1/(sigma + 1e-6) + 2`` for the block ``f_in -> f_out`` (``-inf`` if it is the identity)."""
    g = torch.randint(0, 2, f_out.shape, generator=gen).to(f_out.dtype).mul_(2.0).sub_(1.0)
    (v,) = torch.autograd.grad(f_out, f_in, g, retain_graph=True, allow_unused=True)
    v = torch.zeros_like(f_in) if v is None else v
    if v.shape == g.shape and torch.equal(v, g):
        return float("-inf")
    if v.shape[2:] != g.shape[2:]:
        s = v.shape[2] // g.shape[2]
        if s < 1 or v.shape[2] != s * g.shape[2] or v.shape[3] != s * g.shape[3]:
            raise ValueError(f"aznas: cannot match a {tuple(v.shape[2:])} map to {tuple(g.shape[2:])} by an integer stride")
        v = F.pixel_unshuffle(v, s)
    gm = g.movedim(1, -1).reshape(-1, g.shape[1]).double()
    vm = v.detach().movedim(1, -1).reshape(-1, v.shape[1]).double()
    sigma = float(torch.linalg.matrix_norm(vm.T @ gm / gm.shape[0], ord=2))
    return -sigma - 1.0 / (sigma + 1e-6) + 2.0


@register_group(*NAMES)
def aznas(
    model: nn.Module, batches: list[Batch], loss_fn: LossFn, init: str | None = "kaiming_normal_fanin", seed: int = 0
) -> dict[str, tuple[float, str | None]]:
    """Expressivity, progressivity and trainability of ``model`` from one shared forward pass."""
    x, _y = first_batch(batches, "aznas", min_samples=1)
    net = prepared_copy(model, init, seed, "aznas", train=True)
    feats, out = forward_features(net, x, "aznas")
    if is_constant_over_batch(out):
        return {n: (float("-inf"), CONSTANT_OUTPUT) for n in NAMES}
    ent = [spectral_entropy(f) for f in feats]
    gen = torch.Generator().manual_seed(int(seed))
    tr = [block_trainability(feats[i], feats[i - 1], gen) for i in reversed(range(1, len(feats)))]
    ident = "a block is exactly the identity (t_l = -inf, as the reference code)"
    res: dict[str, tuple[float, str | None]] = {
        "aznas_trainability": (sum(tr) / len(tr), ident if float("-inf") in tr else None)}
    if any(e is None for e in ent):
        why = "a feature map is constant over the batch (zero covariance)"
        res.update({"aznas_expressivity": (float("-inf"), why), "aznas_progressivity": (float("-inf"), why)})
    else:
        gains = [b - a for a, b in zip(ent, ent[1:])]
        res.update({"aznas_expressivity": (math.fsum(ent), None), "aznas_progressivity": (min(gains), None)})
    return {n: res[n] for n in NAMES}
