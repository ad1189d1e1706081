"""Helpers shared by the proxy modules (not public API)."""

from __future__ import annotations

import copy
from collections.abc import Callable, Sequence

import torch
from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm
from torch.nn.modules.conv import _ConvNd

Batch = tuple[torch.Tensor, torch.Tensor]
LossFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]

CONSTANT_OUTPUT = "output does not depend on the input"


def work_copy(model: nn.Module, *, train: bool = True) -> nn.Module:
    """A deep copy of ``model`` in train (default) or eval mode, so proxies never touch the original."""
    net = copy.deepcopy(model)
    net.train(train)
    return net


def weight_layers(model: nn.Module) -> list[nn.Module]:
    """Conv (any dim) and Linear modules with a weight: the layers zero-cost-nas sums over."""
    return [
        m
        for m in model.modules()
        if isinstance(m, (_ConvNd, nn.Linear)) and isinstance(getattr(m, "weight", None), torch.Tensor)
    ]


def strip_bn(model: nn.Module) -> nn.Module:
    """Replace every BatchNorm module by ``nn.Identity`` in place (zero-cost-nas ``bn=False``)."""
    for name, child in list(model.named_children()):
        if isinstance(child, _BatchNorm):
            setattr(model, name, nn.Identity())
        else:
            strip_bn(child)
    return model


def first_batch(batches: Sequence[Batch], proxy: str, min_samples: int = 1) -> Batch:
    x, y = batches[0]
    if x.shape[0] < min_samples:
        raise ValueError(
            f"{proxy} needs a batch of >= {min_samples} samples, got {x.shape[0]} "
            "(the score is undefined for fewer samples)"
        )
    return x, y


def check_finite(t: torch.Tensor, what: str, proxy: str) -> None:
    if not bool(torch.isfinite(t).all()):
        raise ValueError(f"{proxy}: {what} contains NaN/inf; cannot score this model (check init/inputs)")


def is_constant_over_batch(out: torch.Tensor) -> bool:
    """True iff every sample's output equals the first one exactly (needs >= 2 samples)."""
    if out.shape[0] < 2:
        return False
    return bool((out.detach() == out.detach()[:1]).all())


def forward_loss_grads(
    net: nn.Module, x: torch.Tensor, y: torch.Tensor, loss_fn: LossFn, proxy: str, *, create_graph: bool = False,
    layers: list[nn.Module] | None = None,
) -> tuple[list[nn.Module], list[torch.Tensor | None], torch.Tensor]:
    """One forward + ``autograd.grad`` of the loss w.r.t. the conv/linear weights of ``net``
    (``layers``: :func:`weight_layers` of ``net`` when the caller has them already).

    Returns ``(layers, grads, logits)``; a grad is ``None`` for a weight the loss does not use.
    """
    layers = weight_layers(net) if layers is None else layers
    if not layers:
        raise ValueError(f"{proxy}: the model has no Conv/Linear layer to score")
    out = net(x)
    if not isinstance(out, torch.Tensor):
        raise ValueError(f"{proxy}: model must return a logits tensor, got {type(out).__name__}")
    check_finite(out, "model output", proxy)
    loss = loss_fn(out, y)
    check_finite(loss, "loss", proxy)
    weights = [m.weight for m in layers]
    grads = torch.autograd.grad(loss, weights, allow_unused=True, create_graph=create_graph)
    for m, g in zip(layers, grads):
        if g is not None:
            check_finite(g, f"gradient of {type(m).__name__} weight", proxy)
    return layers, list(grads), out


INIT_CHOICES = ("kaiming_normal_fanin", None)


def reinit_kaiming_fanin(net: nn.Module, seed: int) -> nn.Module:
    """In place: Conv/Linear weights ~ N(0, 2 / fan_in) (``kaiming_normal_``, fan_in, ReLU gain) drawn
    from a generator seeded with ``seed``, biases 0, affine norm layers gamma = 1, beta = 0: the
    initialisation the AZ-NAS and VKDNW reference code applies before scoring."""
    gen = torch.Generator().manual_seed(int(seed))
    with torch.no_grad():
        for m in net.modules():
            if isinstance(m, (_ConvNd, nn.Linear)):
                nn.init.kaiming_normal_(m.weight, mode="fan_in", nonlinearity="relu", generator=gen)
                if m.bias is not None:
                    m.bias.zero_()
            elif isinstance(m, (_BatchNorm, nn.GroupNorm, nn.LayerNorm)) and getattr(m, "weight", None) is not None:
                m.weight.fill_(1.0)
                if m.bias is not None:
                    m.bias.zero_()
    return net


def prepared_copy(model: nn.Module, init: str | None, seed: int, proxy: str, *, train: bool) -> nn.Module:
    """:func:`work_copy` re-initialised by ``init`` (``"kaiming_normal_fanin"`` or None = keep weights)."""
    if init not in INIT_CHOICES:
        raise ValueError(f"{proxy}: init must be one of {INIT_CHOICES}, got {init!r}")
    net = work_copy(model, train=train)
    return reinit_kaiming_fanin(net, seed) if init else net
