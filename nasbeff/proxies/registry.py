"""The proxy registry and the scoring entry points (:func:`score`, :func:`score_many`,
:func:`score_population`); see :mod:`nasbeff.proxies` for the conventions every proxy follows."""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Union

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ._common import CONSTANT_OUTPUT, is_constant_over_batch
from .aggregate import aggregate_scores, is_aggregate_name, parse_aggregate_name, rank_aggregate

__all__ = ["ScoreResult", "ProxyFn", "register", "register_group", "get", "available", "canonical_name", "score",
           "score_many", "score_population", "aggregate_scores", "rank_aggregate", "AZNAS", "VKDNW_AGG", "CANNOT_SCORE",
           "output_ignores_input", "passes", "charged_seconds"]

CANNOT_SCORE = -math.inf
"""The value of every proxy for a network whose output does not depend on its input."""

Batch = tuple[torch.Tensor, torch.Tensor]
ProxyOut = Union[float, tuple[float, Union[str, None]]]
ProxyFn = Callable[..., ProxyOut]
"""``fn(model, batches, loss_fn, **kw) -> value`` or ``(value, flag)``."""

GroupFn = Callable[..., dict[str, ProxyOut]]
"""``fn(model, batches, loss_fn, **kw) -> {member name: value or (value, flag)}``."""

_REGISTRY: dict[str, ProxyFn] = {}
_GROUP_OF: dict[str, GroupFn] = {}
_MEMBERS: dict[GroupFn, tuple[str, ...]] = {}

#: AZ-NAS (Lee & Ham 2024): its four components combined by sum of log(rank/N) over the population.
AZNAS = "rank:aznas_expressivity+aznas_progressivity+aznas_trainability+aznas_complexity"
#: VKDNW_agg (Tybl & Neumann 2025): VKDNW_single with jacov, AZ-NAS expressivity/trainability and FLOPs.
VKDNW_AGG = "rank:vkdnw_single+jacov+aznas_expressivity+aznas_trainability+flops"


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


def register_group(*names: str) -> Callable[[GroupFn], GroupFn]:
    """Decorator registering a function that computes several proxies in one pass: each of ``names``
    becomes a proxy (returning its own entry), and :func:`score_many` calls ``fn`` once for all."""
    if not names or len(set(names)) != len(names):
        raise ValueError(f"a group needs distinct member names, got {names!r}")

    def deco(fn: GroupFn) -> GroupFn:
        for n in names:
            def single(model: nn.Module, batches: list[Batch], loss_fn: Any, _n: str = n, **kw: Any) -> ProxyOut:
                return fn(model, batches, loss_fn, **kw)[_n]

            single.__doc__ = f"``{n}``: one entry of :func:`{fn.__module__}.{fn.__name__}`."
            register(n)(single)
            _GROUP_OF[n] = fn
        _MEMBERS[fn] = tuple(names)
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


def canonical_name(name: str) -> str:
    """``name`` in its registered spelling, matched case-insensitively (``MeCo`` -> ``meco``); a rank
    aggregate's prefix and parts likewise (``Rank:MeCo+ZICO`` -> ``rank:meco+zico``). A name that
    matches nothing comes back stripped but otherwise unchanged (:func:`get` then names it)."""
    from .aggregate import PREFIXES

    name = str(name).strip()
    prefix, sep, rest = name.partition(":")
    if sep and prefix.strip().lower() in PREFIXES:
        return f"{prefix.strip().lower()}:" + "+".join(canonical_name(p) for p in rest.split("+"))
    if name in _REGISTRY:
        return name
    folded = {n.lower(): n for n in _REGISTRY}
    return folded.get(name.lower(), name)


def passes(names: Sequence[str]) -> list[tuple[str, ...]]:
    """``names`` split into the calls :func:`score_many` makes: members of one group together (in
    first-seen order), every other proxy alone. ``KeyError`` for an unknown name."""
    out: dict[Any, list[str]] = {}
    for n in dict.fromkeys(names):
        get(n)
        out.setdefault(_GROUP_OF.get(n, n), []).append(n)
    return [tuple(v) for v in out.values()]


def charged_seconds(names: Sequence[str], seconds: Mapping[str, Any]) -> Any:
    """Seconds it costs to compute the scorers ``names`` (proxies or an aggregate's parts) from
    per-proxy measured ``seconds`` (name -> value or per-arch array, e.g. a score CSV's
    ``<name>_seconds`` columns): each proxy's own seconds, and for a member of a group its whole
    group's single pass (the sum of the shares of every member present in ``seconds``), once."""
    total: Any = 0.0
    for part in passes(names):
        group = _GROUP_OF.get(part[0])
        members = [m for m in (_MEMBERS[group] if group else part) if m in seconds]
        missing = [n for n in part if n not in seconds]
        if missing:
            raise KeyError(f"no seconds for {missing}")
        total = total + sum(np.asarray(seconds[m], dtype=np.float64) for m in members)
    return total


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


def output_ignores_input(model: nn.Module, x: torch.Tensor) -> bool:
    """True when ``model`` (in train mode, batch statistics, on float64 copies of its parameters
    and buffers, so the model itself is untouched) maps the first two
    distinct samples of ``x`` to exactly the same finite output: its output does not depend on its
    input. float64, so that a deep network whose float32 signal underflows is not mistaken for one;
    a non-finite output is left to the proxy (which raises)."""
    if x.shape[0] < 2 or torch.equal(x[0], x[1]):
        return False
    state = {k: v.double() if v.is_floating_point() else v.clone()
             for k, v in [*model.named_parameters(), *model.named_buffers()]}  # copies: BN stats stay untouched
    was = model.training
    model.train()
    try:
        with torch.no_grad():
            out = torch.func.functional_call(model, state, (x[:2].double() if x.is_floating_point() else x[:2],))
    finally:
        model.train(was)
    return bool(torch.isfinite(out).all()) and is_constant_over_batch(out)


def score(
    name: str,
    model: nn.Module,
    batches: Iterable[Batch] | Batch,
    loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] | None = None,
    **kw: Any,
) -> ScoreResult:
    """Evaluate proxy ``name`` on ``model`` with ``batches``; ``loss_fn`` defaults to
    ``F.cross_entropy``; ``kw`` go to the proxy. Returns :class:`ScoreResult` (higher = better)."""
    if is_aggregate_name(name):
        raise ValueError(f"{name!r} is a rank aggregate: it needs a population of models; "
                         "use score_population(names, models, batches) or aggregate_scores(...)")
    fn = get(name)
    if not isinstance(model, nn.Module):
        raise ValueError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    bl = _as_batches(batches)
    loss = F.cross_entropy if loss_fn is None else loss_fn
    t0 = time.perf_counter()
    if output_ignores_input(model, bl[0][0]):
        return ScoreResult(CANNOT_SCORE, time.perf_counter() - t0, name, CONSTANT_OUTPUT)
    out = fn(model, bl, loss, **kw)
    return _result(name, out, time.perf_counter() - t0)


def _result(name: str, out: ProxyOut, seconds: float) -> ScoreResult:
    value, flag = out if isinstance(out, tuple) else (out, None)
    value = float(value)
    if math.isnan(value) and flag is None:  # pragma: no cover - proxies must flag or raise
        raise ValueError(f"proxy {name!r} returned NaN without a reason")
    return ScoreResult(value=value, seconds=seconds, name=name, flag=flag)


def score_many(
    names: Sequence[str],
    model: nn.Module,
    batches: Iterable[Batch] | Batch,
    loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] | None = None,
    options: Mapping[str, Mapping[str, Any]] | None = None,
) -> dict[str, ScoreResult]:
    """Score every proxy of ``names`` on ``model`` with the same ``batches``; members of one group
    share a single call (their ``seconds`` split it equally). ``options``: proxy name -> keyword
    arguments; members of one group must not give one keyword different values."""
    names = list(dict.fromkeys(names))
    options = dict(options or {})
    unknown = [n for n in list(names) + list(options) if n not in _REGISTRY]
    if unknown:
        raise ValueError(f"unknown proxies {unknown}; available: {', '.join(available())}")
    if not isinstance(model, nn.Module):
        raise ValueError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    bl = _as_batches(batches)
    loss = F.cross_entropy if loss_fn is None else loss_fn
    t0 = time.perf_counter()
    if output_ignores_input(model, bl[0][0]):  # decided once for every name
        share = (time.perf_counter() - t0) / len(names)
        return {n: ScoreResult(CANNOT_SCORE, share, n, CONSTANT_OUTPUT) for n in names}
    out: dict[str, ScoreResult] = {}
    for name in names:
        if name in out:
            continue
        group = _GROUP_OF.get(name)
        if group is None:
            t0 = time.perf_counter()
            out[name] = _result(name, get(name)(model, bl, loss, **options.get(name, {})), time.perf_counter() - t0)
            continue
        members = [n for n in names if _GROUP_OF.get(n) is group]
        kw: dict[str, Any] = {}
        for m in members:
            for k, v in options.get(m, {}).items():
                if k in kw and kw[k] != v:
                    raise ValueError(f"options for group {'/'.join(members)} disagree on {k!r}: {kw[k]!r} vs {v!r}")
                kw[k] = v
        t0 = time.perf_counter()
        res = group(model, bl, loss, **kw)
        share = (time.perf_counter() - t0) / len(members)
        for m in members:
            out[m] = _result(m, res[m], share)
    return {n: out[n] for n in names}


def score_population(
    names: Sequence[str],
    models: Iterable[nn.Module],
    batches: Iterable[Batch] | Batch,
    loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] | None = None,
    options: Mapping[str, Mapping[str, Any]] | None = None,
    nan_policy: str = "worst",
) -> dict[str, np.ndarray]:
    """Scores of a population of candidate ``models`` (all with the same ``batches``): one array per
    entry of ``names``, which may mix proxy names and rank aggregates (``"rank:a+b"``,
    ``"meanrank:a+b"``, e.g. :data:`AZNAS`); aggregates rank within exactly these models (see
    :mod:`nasbeff.proxies.aggregate` for ties, ``-inf`` and ``nan_policy``)."""
    names = list(dict.fromkeys(names))
    if not names:
        raise ValueError("names is empty: give at least one proxy or aggregate name")
    parsed = {n: parse_aggregate_name(n) for n in names if is_aggregate_name(n)}
    base = list(dict.fromkeys([n for n in names if n not in parsed] + [p for _, ps in parsed.values() for p in ps]))
    rows = [score_many(base, m, batches, loss_fn, options) for m in models]
    if not rows:
        raise ValueError("models is empty: a population needs at least one model")
    values = {b: np.array([r[b].value for r in rows]) for b in base}
    out = {}
    for n in names:
        if n in parsed:
            rule, parts = parsed[n]
            out[n] = aggregate_scores({p: values[p] for p in parts}, rule, nan_policy)
        else:
            out[n] = values[n]
    return out
