"""Parameter count: ``params = (# trainable parameters) / 1e6`` (millions). Higher = better
(the usual "bigger is better" baseline). Ignores ``batches`` and ``loss_fn``."""

from __future__ import annotations

from torch import nn

from .registry import register
from ._common import Batch, LossFn


@register("params")
def params(model: nn.Module, batches: list[Batch], loss_fn: LossFn) -> float:
    return sum(p.numel() for p in model.parameters() if p.requires_grad) / 1e6
