"""The neural capacitance probe (NCP) and helpers that put it on a backbone.

NCP (paper, Methods): per hidden width Linear -> BatchNorm1d -> ReLU -> Dropout(0.4), widths
(256, 128), then the classifier Linear. It is randomly initialised as the paper's Keras code
does and then frozen: no parameter and no BatchNorm running statistic ever changes (its
BatchNorm layers always run in eval mode, like Keras ``trainable=False``), dropout follows
train/eval. beta_eff still differentiates with respect to its parameters: the capacitance code
uses its own copies.

Initialisation ("He normal", Keras ``he_normal``): weights ~ truncated normal on +-2 sigma,
scaled so that the realised standard deviation is sqrt(2 / fan_in); biases 0; BatchNorm
gamma 1, beta 0, running mean 0, running variance 1, eps 1e-3 (Keras defaults).

The paper's wording also allows BatchNorm before the dense layer: ``bn_position="before"``
gives BatchNorm1d -> Linear -> ReLU -> Dropout per hidden width. The default, ``"after"``, is
the order above. Either way the probe has 2 * len(hidden) + 1 parametrised layers (5 by default),
enough for a non-zero beta_eff (see :mod:`nasbeff.core.capacitance`).
"""

from __future__ import annotations

import math
from typing import Literal, Sequence

import torch
from torch import nn

_KERAS_TRUNC_STD = 0.87962566103423978  # std of a unit normal truncated to [-2, 2]


def he_normal_(weight: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """Keras ``he_normal``: truncated normal (+-2 sigma) with realised std sqrt(2 / fan_in)."""
    fan_in = weight.shape[1] * (weight[0][0].numel() if weight.ndim > 2 else 1)
    sigma = math.sqrt(2.0 / fan_in) / _KERAS_TRUNC_STD
    with torch.no_grad():
        return nn.init.trunc_normal_(weight, 0.0, sigma, -2 * sigma, 2 * sigma, generator=generator)


class NCP(nn.Sequential):
    """Frozen, randomly initialised neural capacitance probe (see module docstring).

    ``NCP(in_features, num_classes)`` maps (N, in_features) features to (N, num_classes) logits."""

    def __init__(self, in_features: int, num_classes: int, hidden: Sequence[int] = (256, 128),
                 dropout: float = 0.4, bn_position: Literal["after", "before"] = "after", seed: int = 0,
                 bn_eps: float = 1e-3) -> None:
        if in_features < 1 or num_classes < 2:
            raise ValueError(f"NCP needs in_features >= 1 and num_classes >= 2, got {in_features}, {num_classes}")
        if bn_position not in ("after", "before"):
            raise ValueError(f"bn_position must be 'after' or 'before', got {bn_position!r}")
        if not hidden:
            raise ValueError("NCP needs at least one hidden width (beta_eff needs >= 4 parametrised layers)")
        mods: list[nn.Module] = []
        width = in_features
        for h in hidden:
            lin = nn.Linear(width, h)
            if bn_position == "after":
                mods += [lin, nn.BatchNorm1d(h, eps=bn_eps), nn.ReLU(), nn.Dropout(dropout)]
            else:
                mods += [nn.BatchNorm1d(width, eps=bn_eps), lin, nn.ReLU(), nn.Dropout(dropout)]
            width = h
        mods.append(nn.Linear(width, num_classes))
        super().__init__(*mods)
        self.in_features, self.num_classes, self.seed = in_features, num_classes, seed
        gen = torch.Generator().manual_seed(seed)
        for m in self.modules():
            if isinstance(m, nn.Linear):
                he_normal_(m.weight, gen)
                nn.init.zeros_(m.bias)
        self.requires_grad_(False)
        self.train(False)

    def train(self, mode: bool = True) -> "NCP":
        """Dropout follows ``mode``; BatchNorm stays in eval (frozen running statistics)."""
        super().train(mode)
        for m in self.modules():
            if isinstance(m, nn.BatchNorm1d):
                m.training = False
        return self

    def requires_grad_(self, requires_grad: bool = True) -> "NCP":
        if requires_grad:
            raise ValueError("the NCP is frozen: its parameters never train (beta_eff differentiates its own copies)")
        return super().requires_grad_(False)


def _replace_head(backbone: nn.Module, head: str) -> None:
    parent = backbone
    *path, last = head.split(".")
    for p in path:
        parent = getattr(parent, p)
    if not hasattr(parent, last):
        raise ValueError(f"backbone has no head module {head!r}")
    setattr(parent, last, nn.Identity())


class ProbedNet(nn.Module):
    """A backbone whose head is replaced by a frozen NCP: ``probe(flatten(features(x)))``.

    ``features`` is the backbone with its classifier (attribute path ``head``, e.g. ``"fc"`` or
    ``"classifier"``) replaced by ``nn.Identity`` in place, or the backbone's own
    ``forward_features`` when ``head`` is None; it must return the pooled features."""

    def __init__(self, backbone: nn.Module, probe: NCP, head: str | None = None) -> None:
        super().__init__()
        if head is not None:
            _replace_head(backbone, head)
        elif not hasattr(backbone, "forward_features"):
            raise ValueError("give head= (the classifier attribute to replace) or a backbone with forward_features()")
        self.backbone, self.probe, self._use_ff = backbone, probe, head is None

    def features(self, x: torch.Tensor) -> torch.Tensor:
        f = self.backbone.forward_features(x) if self._use_ff else self.backbone(x)
        f = f.flatten(1)
        if f.shape[1] != self.probe.in_features:
            raise ValueError(f"backbone features have {f.shape[1]} dims, the probe expects {self.probe.in_features}")
        return f

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.probe(self.features(x))


def attach_probe(backbone: nn.Module, num_classes: int, in_features: int, head: str | None = None,
                 seed: int = 0, **ncp_kwargs) -> ProbedNet:
    """Put a frozen NCP on ``backbone``'s pooled features, replacing its head."""
    return ProbedNet(backbone, NCP(in_features, num_classes, seed=seed, **ncp_kwargs), head=head)


@torch.no_grad()
def probe_inputs(model: ProbedNet, x: torch.Tensor, y: torch.Tensor, batch_size: int = 512) -> tuple[torch.Tensor, torch.Tensor]:
    """(features, labels) to pass to ``beta_eff(model.probe, features, labels)``: the backbone's
    pooled features in eval mode (its own mode is restored), computed in batches."""
    was = model.backbone.training
    model.backbone.eval()
    try:
        feats = torch.cat([model.features(x[i:i + batch_size]) for i in range(0, x.shape[0], batch_size)])
    finally:
        model.backbone.train(was)
    return feats.float(), y
