"""MeCo (Jiang et al., NeurIPS 2023): minimum eigenvalue of the Pearson correlation of features.

For every module whose output is a feature map ``(N, C, H, W)`` (forward hooks on all modules,
containers included, as the official code registers them), take one sample's map, view it as ``C``
channel vectors of length ``H*W``, form the ``C x C`` Pearson correlation matrix (undefined entries,
e.g. from constant channels, set to 0) and its smallest eigenvalue ``lambda_min``:

    meco = sum_{modules} lambda_min(corr(f_sample))

The official code uses the first sample of the batch (MeCo needs a single data sample); ``samples``
(default 1) averages the per-module value over the first ``samples`` samples. Train mode, no grad.
Higher = better. The ``meco_opt`` variant of the paper is not implemented.
"""

from __future__ import annotations

import torch
from torch import nn

from .registry import register
from ._common import Batch, LossFn, check_finite, first_batch, work_copy


def min_eig_channel_corr(fmap: torch.Tensor) -> float:
    """``lambda_min`` of the channel correlation of one sample's map ``(C, H, W)``; NaN entries -> 0."""
    f = fmap.reshape(fmap.shape[0], -1).double()
    if f.shape[1] < 2:  # one position: every correlation is undefined -> all-zero matrix
        return 0.0
    corr = torch.corrcoef(f)
    corr = torch.where(torch.isfinite(corr), corr, torch.zeros_like(corr))
    return float(torch.linalg.eigvalsh(corr)[0])


@register("meco")
def meco(model: nn.Module, batches: list[Batch], loss_fn: LossFn, samples: int = 1) -> float:
    x, _y = first_batch(batches, "meco", min_samples=samples)
    if samples < 1:
        raise ValueError(f"meco: samples must be >= 1, got {samples}")
    net = work_copy(model)
    total = 0.0

    def hook(_m: nn.Module, _inp: tuple, out: object) -> None:
        nonlocal total
        if isinstance(out, torch.Tensor) and out.ndim == 4:
            o = out.detach()
            check_finite(o[:samples], "feature map", "meco")
            total += sum(min_eig_channel_corr(o[i]) for i in range(samples)) / samples

    handles = [m.register_forward_hook(hook) for m in net.modules()]
    try:
        with torch.no_grad():
            net(x)
    finally:
        for h in handles:
            h.remove()
    return total
