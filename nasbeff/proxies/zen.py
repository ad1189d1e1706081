"""Zen-score (Lin et al., ICCV 2021), as in the official Zen-NAS code and NASLib ``zen``.

On a copy of the model re-initialised with ``N(0, 1)`` Conv/Linear weights (zero biases, BN
``gamma=1, beta=0``, fresh running stats), in train mode and without gradients, draw Gaussian
``x, e`` of the batch's shape and, with ``f`` the pre-global-average-pool feature map,

    zen = log( mean_n sum_{c,h,w} |f(x) - f(x + alpha e)| ) + sum_{BN} log sqrt(mean_c running_var)

with ``alpha = 0.01``. The running variances are those left by the two forward passes (momentum as
set in the model), exactly as the reference code does. Note: the reference uses the L1 norm per
sample, averaged over the batch (the paper writes a Frobenius norm). Higher = better.

``f`` is found by, in order: the ``features_fn(model, x)`` keyword; a ``forward_pre_gap`` method;
the input of the **last** ``nn.AdaptiveAvgPool2d`` called in the forward (the NB201 model's
``global_pooling``). ``seed`` makes the re-init and inputs reproducible. A zero difference
(output independent of input) gives ``-inf``, flagged (NASLib stores -1e8 there).
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm
from torch.nn.modules.conv import _ConvNd

from .registry import register
from ._common import CONSTANT_OUTPUT, Batch, LossFn, check_finite, work_copy

FeaturesFn = Callable[[nn.Module, torch.Tensor], torch.Tensor]


def gaussian_init_(net: nn.Module, generator: torch.Generator | None = None) -> None:
    """Zen-NAS init: Conv/Linear weights ``N(0,1)``, biases 0; BN/GroupNorm ``gamma=1, beta=0``."""
    with torch.no_grad():
        for m in net.modules():
            if isinstance(m, (_ConvNd, nn.Linear)) and isinstance(getattr(m, "weight", None), torch.Tensor):
                m.weight.normal_(0.0, 1.0, generator=generator)
                if getattr(m, "bias", None) is not None:
                    m.bias.zero_()
            elif isinstance(m, (_BatchNorm, nn.GroupNorm)):
                if m.weight is not None:
                    m.weight.fill_(1.0)
                if m.bias is not None:
                    m.bias.zero_()
                if isinstance(m, _BatchNorm) and m.track_running_stats:
                    m.reset_running_stats()


def pre_gap_features(net: nn.Module, x: torch.Tensor, features_fn: FeaturesFn | None = None) -> torch.Tensor:
    """Pre-global-pooling feature map of ``net`` at ``x`` (see module docstring for the lookup order)."""
    if features_fn is not None:
        return features_fn(net, x)
    if callable(getattr(net, "forward_pre_gap", None)):
        return net.forward_pre_gap(x)
    pools = [m for m in net.modules() if isinstance(m, nn.AdaptiveAvgPool2d)]
    if not pools:
        raise ValueError(
            "zen needs the pre-pooling features: pass features_fn=..., define model.forward_pre_gap(x), "
            "or use an nn.AdaptiveAvgPool2d as the global pool"
        )
    seen: list[torch.Tensor] = []

    def hook(_m: nn.Module, inp: tuple) -> None:
        seen.append(inp[0].clone())

    handles = [p.register_forward_pre_hook(hook) for p in pools]
    try:
        net(x)
    finally:
        for h in handles:
            h.remove()
    if not seen:
        raise ValueError("zen: no AdaptiveAvgPool2d was called in the forward pass")
    return seen[-1]


@register("zen")
def zen(
    model: nn.Module,
    batches: list[Batch],
    loss_fn: LossFn,
    alpha: float = 0.01,
    seed: int | None = None,
    features_fn: FeaturesFn | None = None,
) -> tuple[float, str | None]:
    x0, _y = batches[0]
    gen = None
    if seed is not None:
        gen = torch.Generator(device=x0.device)
        gen.manual_seed(int(seed))
    net = work_copy(model)
    gaussian_init_(net, gen)
    with torch.no_grad():
        x = torch.randn(x0.shape, generator=gen, dtype=x0.dtype, device=x0.device)
        e = torch.randn(x0.shape, generator=gen, dtype=x0.dtype, device=x0.device)
        f1 = pre_gap_features(net, x, features_fn)
        f2 = pre_gap_features(net, x + alpha * e, features_fn)
        check_finite(f1, "pre-GAP features", "zen")
        check_finite(f2, "pre-GAP features", "zen")
        diff = (f1 - f2).abs().reshape(f1.shape[0], -1).sum(dim=1).mean()
        log_bn = 0.0
        for m in net.modules():
            if isinstance(m, _BatchNorm) and m.running_var is not None:
                log_bn += 0.5 * math.log(float(m.running_var.mean()))
    d = float(diff)
    if d == 0.0:
        return float("-inf"), CONSTANT_OUTPUT
    value = math.log(d) + log_bn
    if not math.isfinite(value):
        raise ValueError("zen: score is not finite (BN running variance collapsed or overflowed)")
    return value, None
