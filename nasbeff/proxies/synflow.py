"""SynFlow (Tanaka et al. 2020) as a zero-cost proxy, returned in **log space**.

Published value (zero-cost-nas, NASLib): with all parameters replaced by ``|theta|`` (sign
linearisation), float64, input of ones of shape ``(1, *x.shape[1:])`` and ``R = sum(model(1))``,

    S = sum_l sum_i |theta_i * dR/dtheta_i|       (Conv/Linear weights)

We return ``synflow = log(S)`` (``S`` reaches 1e33..1e41 on NB201 and overflows float64 on deep
nets). It is accumulated as ``logsumexp(log|theta| + log|dR/dtheta|)``, and when the forward or
backward pass would overflow/underflow it is rescaled exactly: for a network built of Conv/Linear
(+bias), ReLU, pooling and sums, scaling the input and all biases by ``c`` scales every activation
by ``c``; scaling ``dR/dout`` by ``d`` scales every gradient by ``d``; so
``log S = log S(c, d) - log c - log d`` with powers of two ``c, d`` chosen to keep all values in range.

BN: as zero-cost-nas' ``synflow`` (``bn=False`` in its measure decorator, where the NB201 model is
rebuilt without BN), every BatchNorm is replaced by identity. ``synflow_bn`` keeps BN in train mode
(zero-cost-nas ``synflow_bn``; no rescaling possible, BN is not homogeneous).
Higher = better. A zero sum (e.g. NB201 cut-off cells) gives ``-inf``, flagged.
"""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm

from .registry import register
from ._common import Batch, LossFn, strip_bn, weight_layers, work_copy

_LOG2_SAFE = 900.0  # keep |log2| of activations/gradients well inside float64's +-1022


def _is_homogeneous(net: nn.Module, layers: list[nn.Module]) -> bool:
    """True iff every parameter is a Conv/Linear weight or bias (no norm layers/other params)."""
    allowed = {id(m.weight) for m in layers} | {id(m.bias) for m in layers if getattr(m, "bias", None) is not None}
    no_bn = not any(isinstance(m, _BatchNorm) for m in net.modules())
    return no_bn and all(id(p) in allowed for p in net.parameters())


def _run(net: nn.Module, layers: list[nn.Module], x1: torch.Tensor, log2c: int, log2d: int, backward: bool):
    """Forward (and optionally backward) with input and biases scaled by 2**log2c, dR/dout by 2**log2d."""
    c, d = 2.0**log2c, 2.0**log2d
    biases = [m.bias for m in layers if getattr(m, "bias", None) is not None] if log2c else []
    with torch.no_grad():
        for b in biases:
            b.mul_(c)
    try:
        out = net(x1 * c)
        if not backward:
            return out.detach(), None
        grads = torch.autograd.grad(out, [m.weight for m in layers], grad_outputs=torch.full_like(out, d), allow_unused=True)
        return out.detach(), grads
    finally:
        with torch.no_grad():
            for b in biases:
                b.div_(c)


def _log_score(layers: list[nn.Module], grads) -> torch.Tensor:
    terms = []
    for m, g in zip(layers, grads):
        if g is not None:
            terms.append((m.weight.detach().abs().log() + g.abs().log()).reshape(-1))
    if not terms:
        return torch.tensor(float("-inf"), dtype=torch.float64)
    return torch.logsumexp(torch.cat(terms), dim=0)


def _finite(out: torch.Tensor, grads) -> bool:
    ok = bool(torch.isfinite(out).all())
    return ok and all(g is None or bool(torch.isfinite(g).all()) for g in grads)


def synflow_log(model: nn.Module, input_shape: tuple[int, ...], *, bn: bool = False) -> tuple[float, str | None]:
    """``log S`` for ``model`` with inputs of shape ``(1, *input_shape)``; see module docstring."""
    net = work_copy(model)
    if not bn:
        strip_bn(net)
    net = net.double()
    layers = weight_layers(net)
    if not layers:
        raise ValueError("synflow: the model has no Conv/Linear layer to score")
    with torch.no_grad():
        for t in list(net.parameters()) + [b for b in net.buffers() if b.is_floating_point()]:
            t.abs_()
    x1 = torch.ones((1, *input_shape), dtype=torch.float64)
    homog = _is_homogeneous(net, layers)

    out, grads = _run(net, layers, x1, 0, 0, backward=True)
    tiny = 2.0 ** (-_LOG2_SAFE)
    ok = _finite(out, grads) and float(out.abs().max()) > tiny
    if not ok and homog:
        # estimate log2 R(1) from a forward at a safe scale, then centre activations and gradients
        log2r = None
        for probe in (-_LOG2_SAFE, 0, _LOG2_SAFE):
            o, _ = _run(net, layers, x1, int(probe), 0, backward=False)
            r = float(o.sum())
            if math.isfinite(r) and r > 0:
                log2r = math.log2(r) - probe
                break
        if log2r is not None:
            k = -int(round(log2r / 2))
            out, grads = _run(net, layers, x1, k, k, backward=True)
            if _finite(out, grads):
                return _finish(float(_log_score(layers, grads)) - 2 * k * math.log(2.0))
    if not _finite(out, grads):
        raise ValueError(
            "synflow: forward/backward overflowed in float64"
            + ("" if homog else " and the model is not homogeneous (BN/other params), so it cannot be rescaled")
        )
    return _finish(float(_log_score(layers, grads)))


def _finish(v: float) -> tuple[float, str | None]:
    if v == float("-inf"):
        return v, "synflow sum is zero (no input-to-output path through the weights)"
    return v, None


@register("synflow")
def synflow(model: nn.Module, batches: list[Batch], loss_fn: LossFn) -> tuple[float, str | None]:
    x, _y = batches[0]
    return synflow_log(model, tuple(x.shape[1:]), bn=False)


@register("synflow_bn")
def synflow_bn(model: nn.Module, batches: list[Batch], loss_fn: LossFn) -> tuple[float, str | None]:
    x, _y = batches[0]
    return synflow_log(model, tuple(x.shape[1:]), bn=True)
