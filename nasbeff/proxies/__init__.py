"""Training-free ("zero-cost") architecture scorers behind one registry.

Usage::

    from nasbeff import proxies
    res = proxies.score("naswot", model, [(x, y)])      # -> ScoreResult(value, seconds, name, flag)
    proxies.available()                                  # sorted names

Conventions (every proxy):

* **Higher = better.** Each proxy documents its sign; ``grasp`` and ``jacov`` keep the sign of
  zero-cost-nas (Abdelfattah et al. 2021), ``synflow``/``synflow_bn`` are returned in **log space**
  (``log`` of the published value).
* ``batches`` is a list of ``(x, y)`` tensor pairs. Single-batch proxies use ``batches[0]`` only;
  ``zico`` needs >= 2 batches. A bare ``(x, y)`` tuple is accepted as one batch.
* The model is never modified: proxies work on a ``copy.deepcopy`` in **train mode** (batch-stat
  BN), as zero-cost-nas, NASLib and the NASWOT/ZiCo/MeCo reference code do.
* Numerical failure (NaN/inf in activations, outputs or gradients) raises ``ValueError``.
* Degenerate but well-defined cases never give a silent number: the value is the natural limit
  (``-inf`` for log-type scores, ``0.0`` for gradient sums) and ``ScoreResult.flag`` says why,
  e.g. ``"output does not depend on the input"`` for the NB201 cut-off cells.
* Proxies that need several samples (``naswot``, ``jacov``/``naswot_v1``) raise ``ValueError`` on a
  batch of one.

Name map to other code bases: ``naswot`` = NASLib ``nwot`` (NASWOT v2, Hamming-kernel logdet);
``jacov`` = ``naswot_v1`` = NASLib ``jacov`` = zero-cost-nas ``jacob_cov`` (NASWOT arXiv v1);
``synflow`` = ``log`` of zero-cost-nas/NASLib ``synflow``; other names are identical.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, Union

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["ScoreResult", "ProxyFn", "register", "get", "available", "score"]

Batch = tuple[torch.Tensor, torch.Tensor]
ProxyOut = Union[float, tuple[float, Union[str, None]]]
ProxyFn = Callable[..., ProxyOut]
"""``fn(model, batches, loss_fn, **kw) -> value`` or ``(value, flag)``."""

_REGISTRY: dict[str, ProxyFn] = {}


@dataclass(frozen=True)
class ScoreResult:
    """One proxy evaluation. ``value``: higher = better; ``seconds``: wall time of the call;
    ``flag``: ``None``, or why ``value`` is a limiting value (``-inf``/``0``) rather than a score."""

    value: float
    seconds: float
    name: str
    flag: str | None = None

    @property
    def ok(self) -> bool:
        """True iff the value is finite and unflagged."""
        return self.flag is None and math.isfinite(self.value)


def register(name: str) -> Callable[[ProxyFn], ProxyFn]:
    """Decorator adding ``fn`` to the registry under ``name`` (stackable for aliases)."""
    if not isinstance(name, str) or not name:
        raise ValueError(f"proxy name must be a non-empty str, got {name!r}")

    def deco(fn: ProxyFn) -> ProxyFn:
        if name in _REGISTRY and _REGISTRY[name] is not fn:
            raise ValueError(f"proxy {name!r} is already registered")
        _REGISTRY[name] = fn
        return fn

    return deco


def get(name: str) -> ProxyFn:
    """The registered proxy function ``name``; ``KeyError`` lists the available names."""
    try:
        return _REGISTRY[name]
    except KeyError:
        raise KeyError(f"unknown proxy {name!r}; available: {', '.join(available())}") from None


def available() -> list[str]:
    """Sorted names of all registered proxies."""
    return sorted(_REGISTRY)


def _as_batches(batches: Any) -> list[Batch]:
    if (
        isinstance(batches, tuple)
        and len(batches) == 2
        and all(isinstance(t, torch.Tensor) for t in batches)
    ):
        batches = [batches]
    if not isinstance(batches, Iterable):
        raise ValueError(f"batches must be a list of (x, y) tensor pairs, got {type(batches).__name__}")
    out: list[Batch] = []
    for i, b in enumerate(batches):
        if not (isinstance(b, (tuple, list)) and len(b) == 2 and all(isinstance(t, torch.Tensor) for t in b)):
            raise ValueError(f"batch {i} must be an (x, y) pair of tensors, got {type(b).__name__}")
        x, y = b
        if x.ndim < 2 or x.shape[0] < 1:
            raise ValueError(f"batch {i}: x must have shape (N, ...) with N >= 1, got {tuple(x.shape)}")
        if y.shape[:1] != x.shape[:1]:
            raise ValueError(f"batch {i}: y has {y.shape[:1]} rows but x has {x.shape[0]}")
        out.append((x, y))
    if not out:
        raise ValueError("batches is empty: give at least one (x, y) batch")
    return out


def score(
    name: str,
    model: nn.Module,
    batches: Iterable[Batch] | Batch,
    loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] | None = None,
    **kw: Any,
) -> ScoreResult:
    """Evaluate proxy ``name`` on ``model`` with ``batches``; ``loss_fn`` defaults to
    ``F.cross_entropy``; ``kw`` go to the proxy. Returns :class:`ScoreResult` (higher = better)."""
    fn = get(name)
    if not isinstance(model, nn.Module):
        raise ValueError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    bl = _as_batches(batches)
    loss = F.cross_entropy if loss_fn is None else loss_fn
    t0 = time.perf_counter()
    out = fn(model, bl, loss, **kw)
    seconds = time.perf_counter() - t0
    value, flag = out if isinstance(out, tuple) else (out, None)
    value = float(value)
    if math.isnan(value) and flag is None:  # pragma: no cover - proxies must flag or raise
        raise ValueError(f"proxy {name!r} returned NaN without a reason")
    return ScoreResult(value=value, seconds=seconds, name=name, flag=flag)


# Register the built-in proxies (each module decorates its functions with @register).
from . import (  # noqa: E402,F401
    beff,
    fisher,
    flops,
    grad_norm,
    grasp,
    jacov,
    meco,
    naswot,
    params,
    plain,
    snip,
    synflow,
    zen,
    zico,
)
