"""Scorers for the search loops (see :mod:`nasbeff.optimizers`): the :class:`Scorer` protocol, the
one adapter :func:`as_scorer`, table, benchmark, CSV, pool and population (rank-aggregate) scorers."""

from __future__ import annotations

import csv
import math
import os
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Protocol, Union, runtime_checkable

import numpy as np

from ..tables.ground_truth import SearchView
from ..spaces import NB201Space, SearchSpace


#: Simulated seconds charged per proxy evaluation (see the module docstring).
PROXY_COST_S: dict[str, float] = {"zen": 0.8, "naswot_v1": 1.0}
#: Epochs of NATS-Bench's simulated search evaluation (``hp='12'``).
NATS_EPOCHS = 12
_FULL_EPOCHS = 200
_NB201_SIZE = NB201Space.size


# --------------------------------------------------------------------------------------------
# Scorers
# --------------------------------------------------------------------------------------------
@runtime_checkable
class Scorer(Protocol):
    """What an optimizer needs from a scorer."""

    name: str
    pool: np.ndarray | None  # sorted indices the scorer can score; None = the whole space

    def score(self, index: int) -> float:
        """Score of arch ``index``; higher is better (``-inf`` for the worst)."""
        ...

    def cost(self, index: int) -> float:
        """Simulated seconds one evaluation of ``index`` costs (> 0)."""
        ...


def _check_pool(pool: Iterable[int] | None, n: int = _NB201_SIZE) -> np.ndarray | None:
    if pool is None:
        return None
    p = np.asarray(list(pool) if not isinstance(pool, np.ndarray) else pool)
    if p.ndim != 1 or p.size == 0:
        raise ValueError("pool must be a non-empty 1-d sequence of arch indices")
    if p.dtype.kind not in "iu":
        if not np.all(np.isfinite(p)) or not np.all(p == np.round(p)):
            raise ValueError("pool indices must be integers")
    p = p.astype(np.int64)
    if p.min() < 0 or p.max() >= n:
        raise ValueError(f"pool indices must lie in 0..{n - 1}")
    if len(np.unique(p)) != len(p):
        raise ValueError("pool indices must be unique")
    p = np.sort(p)
    p.setflags(write=False)
    return p


class _PoolMember:
    """Name, space size and pool of a scorer; :meth:`_check` refuses indices outside the pool."""

    def __init__(self, name: str, pool: Iterable[int] | None, size: int) -> None:
        if not isinstance(name, str) or not name:
            raise ValueError("scorer name must be a non-empty string")
        self.name, self.size = name, int(size)
        self.pool = _check_pool(pool, self.size)
        mask = np.zeros(self.size, dtype=bool)
        mask[np.arange(self.size) if self.pool is None else self.pool] = True
        self._in_pool = mask

    def __repr__(self) -> str:
        n = self.size if self.pool is None else len(self.pool)
        return f"{type(self).__name__}({self.name!r}, {n} archs)"

    def _check(self, index: int) -> int:
        i = int(index)
        if not (0 <= i < self.size and self._in_pool[i]):
            raise ValueError(f"arch {index} is not scorable by {self.name!r} (outside its pool)")
        return i


class ArrayScorer(_PoolMember):
    """A scorer backed by per-arch arrays over the whole space (fast list lookups).

    ``scores``: one per arch of the space (``size``, default NB201's 15,625); non-finite values
    become ``-inf`` (the worst). ``costs``: one positive number for every arch, or a per-arch array
    (positive and finite on the pool). ``pool``: indices the scorer may be asked about (None: all).
    """

    def __init__(self, name: str, scores, costs, pool: Iterable[int] | None = None, *,
                 size: int = _NB201_SIZE) -> None:
        super().__init__(name, pool, size)
        n = self.size
        s = np.asarray(scores, dtype=np.float64)
        if s.shape != (n,):
            raise ValueError(f"scores must have shape ({n},), got {s.shape}")
        where = np.arange(n) if self.pool is None else self.pool
        s = np.where(np.isfinite(s), s, -np.inf)
        c = np.asarray(costs, dtype=np.float64)
        if c.ndim == 0:
            c = np.full(n, float(c))
        if c.shape != (n,):
            raise ValueError(f"costs must be a number or have shape ({n},), got {c.shape}")
        bad = ~(np.isfinite(c[where]) & (c[where] > 0))
        if bad.any():
            raise ValueError(f"{name}: costs must be finite and > 0 (arch {int(where[np.argmax(bad)])} has "
                             f"{c[where][bad][0]!r})")
        self._scores: list[float] = s.tolist()
        self._costs: list[float] = c.tolist()

    def score(self, index: int) -> float:
        return self._scores[self._check(index)]

    def cost(self, index: int) -> float:
        return self._costs[self._check(index)]


class LazyScorer(_PoolMember):
    """A scorer computed on demand: ``fn(index) -> (score, seconds)``, called once per arch (cached),
    e.g. a proxy evaluated live. ``cost``: fixed simulated seconds per evaluation, or None to charge
    the seconds ``fn`` reports. Non-finite scores are ``-inf``."""

    def __init__(self, name: str, fn: Callable[[int], tuple[float, float]], cost: float | None = None,
                 pool: Iterable[int] | None = None, *, size: int = _NB201_SIZE) -> None:
        super().__init__(name, pool, size)
        if not callable(fn):
            raise ValueError(f"{name}: fn must be callable index -> (score, seconds)")
        if cost is not None and not (math.isfinite(cost) and cost > 0):
            raise ValueError(f"{name}: cost must be finite and > 0, got {cost!r}")
        self._fn, self._fixed = fn, cost
        self._cache: dict[int, tuple[float, float]] = {}

    def _eval(self, index: int) -> tuple[float, float]:
        i = self._check(index)
        if i not in self._cache:
            s, sec = self._fn(i)
            s = float(s)
            self._cache[i] = (s if math.isfinite(s) else -math.inf, float(sec))
        return self._cache[i]

    def score(self, index: int) -> float:
        return self._eval(index)[0]

    def cost(self, index: int) -> float:
        if self._fixed is None:
            return self._eval(index)[1]
        self._check(index)
        return self._fixed


ScoreSource = Union[np.ndarray, Sequence[float], Mapping[int, float], Callable[[int], tuple[float, float]]]
"""Per-arch scores: an array over the whole space (a table column), a mapping index -> score (a
CSV of ``nasbeff score`` / ``nasbeff rank``) or a callable ``index -> (score, seconds)``."""


def _dense(values: Mapping[int, float], size: int, fill: float) -> np.ndarray:
    out = np.full(size, fill)
    if values:
        out[np.fromiter(values.keys(), dtype=np.int64, count=len(values))] = np.fromiter(
            values.values(), dtype=np.float64, count=len(values))
    return out


def as_scorer(name: str, values: ScoreSource, costs: float | Sequence[float] | Mapping[int, float] | None = None,
              *, pool: Iterable[int] | None = None, space: SearchSpace | None = None,
              invalid_at_or_below: float | None = None) -> ArrayScorer | LazyScorer:
    """The one adapter from a per-arch score source to a search :class:`Scorer` on ``space``
    (default NB201).

    * ``values`` an array of ``space.size`` scores: scorable on ``pool`` (None: everywhere).
    * ``values`` a mapping ``index -> score``: scorable on its keys (``pool``, if given, must be a
      subset of them).
    * ``values`` a callable ``index -> (score, seconds)``: a :class:`LazyScorer`; ``costs`` a
      number (fixed seconds) or None (the reported seconds).

    ``costs`` (seconds per evaluation): a number, an array over the space or a mapping
    ``index -> seconds``. Scores ``<= invalid_at_or_below`` (failure sentinels) and non-finite
    scores become ``-inf``.
    """
    size = _NB201_SIZE if space is None else int(space.size)
    if callable(values) and not isinstance(values, Mapping):
        if costs is not None and np.ndim(costs) != 0:
            raise ValueError(f"{name}: a live scorer takes one fixed cost or None (the measured seconds)")
        return LazyScorer(name, values, None if costs is None else float(costs), pool, size=size)
    if costs is None:
        raise ValueError(f"{name}: costs (seconds per evaluation) are required")
    if isinstance(values, Mapping):
        keys = _check_pool(list(values.keys()), size)
        if keys is None:  # pragma: no cover - _check_pool(None) only
            raise ValueError(f"{name}: no scores")
        if pool is not None:
            outside = np.setdiff1d(_check_pool(pool, size), keys)
            if outside.size:
                raise ValueError(f"{name}: pool archs without a score, e.g. {int(outside[0])}")
        pool = keys if pool is None else pool
        scores = _dense(values, size, -np.inf)
    else:
        scores = np.asarray(values, dtype=np.float64)
    if isinstance(costs, Mapping):
        costs = _dense(costs, size, np.nan)
    if invalid_at_or_below is not None:
        scores = np.where(scores <= invalid_at_or_below, -np.inf, scores)
    return ArrayScorer(name, scores, costs, pool, size=size)


def _as_search_view(source) -> SearchView:
    """``source`` as a view that refuses test accuracies."""
    if isinstance(source, SearchView):
        return source
    if hasattr(source, "without_test"):
        view = source.without_test()
        if isinstance(view, SearchView):
            return view
    raise ValueError(f"scorers need a SearchView (table.without_test()), got {type(source).__name__}")


def table_scorer(view, column: str, cost: float | str, *, cost_scale: float = 1.0, name: str | None = None,
                invalid_at_or_below: float | None = None, pool: Iterable[int] | None = None,
                space: SearchSpace | None = None) -> ArrayScorer:
    """Score = numeric column ``column`` of a benchmark view (test columns are refused), through
    :func:`as_scorer`. ``cost``: seconds per evaluation, or the name of a per-arch seconds column,
    times ``cost_scale``. A raw table is wrapped with ``without_test()`` first."""
    v = _as_search_view(view)
    scores = np.asarray(v.column(column), dtype=np.float64)
    costs = np.asarray(v.column(cost), dtype=np.float64) if isinstance(cost, str) else float(cost)
    if not (math.isfinite(cost_scale) and cost_scale > 0):
        raise ValueError(f"cost_scale must be > 0, got {cost_scale}")
    return as_scorer(name or column, scores, costs * cost_scale, pool=pool, space=space,
                     invalid_at_or_below=invalid_at_or_below)


#: The former class name of :func:`table_scorer`, kept for existing callers.
TableScorer = table_scorer


def benchmark_scorer(view, *, epochs: int = NATS_EPOCHS, eval_overhead_s: float = 0.0,
                     pool: Iterable[int] | None = None, dataset: str = "cifar10-valid") -> ArrayScorer:
    """NATS-Bench's simulated baseline (``'benchmark'``) on NB201: score = the x-valid accuracy of
    ``dataset`` (cifar10-valid, cifar100 or imagenet16-120; 200-epoch seed mean, the stand-in for the
    12-epoch one), cost = ``train_time(dataset) * epochs / 200 + eval_overhead_s``. NATS also charges one
    pass over the validation set (``valid-per-time``), which the table lacks: ``eval_overhead_s``
    (default 0)."""
    if not 0 < epochs <= _FULL_EPOCHS:
        raise ValueError(f"epochs must be in 1..{_FULL_EPOCHS}, got {epochs}")
    if not (math.isfinite(eval_overhead_s) and eval_overhead_s >= 0):
        raise ValueError(f"eval_overhead_s must be >= 0, got {eval_overhead_s}")
    v = _as_search_view(view)
    ds = "cifar10-valid" if dataset in ("cifar10", "cifar10-valid") else dataset
    scores = np.asarray(v.metric(ds, "x-valid"), dtype=np.float64)
    costs = np.asarray(v.train_time(ds), dtype=np.float64) * epochs / _FULL_EPOCHS + eval_overhead_s
    return as_scorer("benchmark", scores, costs, pool=pool)


_ZEN_COLUMNS = {"cifar10": "zen_c10", "cifar10-valid": "zen_c10", "cifar100": "zen_c100",
                "imagenet16-120": "zen_in16"}


def _zen(view, pool=None, dataset: str = "cifar10") -> ArrayScorer:
    return table_scorer(view, _ZEN_COLUMNS[dataset], PROXY_COST_S["zen"], name="zen", invalid_at_or_below=-1e8,
                        pool=pool)


def _naswot_v1(view, pool=None, dataset: str = "cifar10") -> ArrayScorer:
    if dataset not in ("cifar10", "cifar10-valid"):
        raise ValueError(f"naswot_v1 has published values on CIFAR-10 only, not {dataset}: use zen or benchmark")
    return table_scorer(view, "naswot_v1_c10", PROXY_COST_S["naswot_v1"], name="naswot_v1",
                        invalid_at_or_below=-1e8, pool=pool)


#: Scorer factories by name: ``SCORERS[name](view)``.
SCORERS: dict[str, Callable[..., ArrayScorer]] = {
    "benchmark": benchmark_scorer, "zen": _zen, "naswot_v1": _naswot_v1,
}


def make_scorer(name: str, view, **kwargs) -> ArrayScorer:
    """Build the scorer ``name`` (one of :data:`SCORERS`) on a search view."""
    if name not in SCORERS:
        raise ValueError(f"unknown scorer {name!r}; choose one of {', '.join(SCORERS)}")
    return SCORERS[name](view, **kwargs)


def read_scores_csv(path: str | os.PathLike, column: str,
                    cost_column: str | None = None) -> tuple[dict[int, float], dict[int, float] | None]:
    """``index -> column`` (and ``index -> cost_column``) of a per-arch CSV (``nasbeff score`` /
    ``nasbeff rank`` output); empty or ``nan`` cells are NaN. Errors name the file."""
    need = ["index", column] + ([cost_column] if cost_column else [])
    try:
        with open(path, newline="", encoding="utf-8") as f:
            reader = csv.DictReader(f)
            missing = [c for c in need if c not in (reader.fieldnames or [])]
            if missing:
                raise ValueError(f"{path}: missing columns {missing}")
            rows = list(reader)
    except (UnicodeDecodeError, csv.Error) as exc:
        raise ValueError(f"{path}: not a readable CSV ({type(exc).__name__})") from None
    if not rows:
        raise ValueError(f"{path}: no rows")

    def num(v: str | None) -> float:
        return float(v) if v is not None and v.strip() not in ("", "nan", "NaN") else math.nan

    try:
        idx = [int(r["index"]) for r in rows]
        scores = {i: num(r[column]) for i, r in zip(idx, rows)}
        costs = {i: num(r[cost_column]) for i, r in zip(idx, rows)} if cost_column else None
    except ValueError as exc:
        raise ValueError(f"{path}: non-numeric value ({exc})") from None
    if len(scores) != len(idx):
        raise ValueError(f"{path}: an index appears twice")
    return scores, costs


def scorer_from_csv(path: str | os.PathLike, column: str, cost_column: str | None = None, *,
                    cost: float | None = None, name: str | None = None, pool: Iterable[int] | None = None,
                    space: SearchSpace | None = None) -> ArrayScorer:
    """Scorer over the archs of a per-arch CSV: score = ``column``, cost per arch = ``cost_column``
    (seconds) or the fixed ``cost``. Example: ``scorer_from_csv(rank_csv, 'beff_pred', 'gpu_seconds')``."""
    if (cost_column is None) == (cost is None):
        raise ValueError("give exactly one of cost_column and cost")
    scores, costs = read_scores_csv(path, column, cost_column)
    return as_scorer(name or column, scores, float(cost) if costs is None else costs, pool=pool, space=space)


class PoolScorer(ArrayScorer):
    """Scores for a subset (pool) of archs, e.g. per-arch predictions; archs outside the pool are
    not scorable, so optimizers search inside it. Non-finite scores are ``-inf``. (Kept for
    existing callers; :func:`as_scorer` with a mapping is the same.)"""

    def __init__(self, name: str, indices: Sequence[int], scores: Sequence[float],
                 costs: float | Sequence[float], *, size: int = _NB201_SIZE) -> None:
        idx = _check_pool(indices, size)
        raw = np.asarray(indices, dtype=np.int64)
        s = np.asarray(scores, dtype=np.float64)
        if s.shape != raw.shape:
            raise ValueError(f"scores has {s.size} entries for {raw.size} indices")
        c = np.asarray(costs, dtype=np.float64)
        if c.ndim and c.shape != raw.shape:
            raise ValueError(f"costs has {c.size} entries for {raw.size} indices")
        full_c = float(c) if c.ndim == 0 else _dense(dict(zip(raw.tolist(), c.tolist())), size, np.nan)
        super().__init__(name, _dense(dict(zip(raw.tolist(), s.tolist())), size, -np.inf), full_c, idx, size=size)

    @classmethod
    def from_csv(cls, path: str | os.PathLike, column: str, cost_column: str | None = None, *,
                 cost: float | None = None, name: str | None = None) -> ArrayScorer:
        """:func:`scorer_from_csv` (pool = the CSV's ``index`` column)."""
        return scorer_from_csv(path, column, cost_column, cost=cost, name=name)


class PopulationScorer(_PoolMember):
    """A rank aggregate of per-arch scorer values (``"rank:a+b"`` / ``"meanrank:a+b"``,
    :mod:`nasbeff.proxies.aggregate`): its score of an arch depends on the population it is ranked
    in. :meth:`population_scores` ranks within the archs given (a warm-up pool);
    :meth:`score` within the whole :attr:`pool` (the archs with a value of every part).

    ``values``: part name -> {index: value} (``-inf`` = worst); ``costs``: {index: seconds} charged
    per evaluation (e.g. :func:`nasbeff.proxies.charged_seconds` of the parts)."""

    def __init__(self, name: str, values: Mapping[str, Mapping[int, float]], costs: Mapping[int, float], *,
                 size: int = _NB201_SIZE) -> None:
        from ..proxies.aggregate import parse_aggregate_name

        self.rule, parts = parse_aggregate_name(name)
        missing = [p for p in parts if p not in values]
        if missing:
            raise ValueError(f"{name}: no values for {missing}")
        common = set.intersection(*({i for i, v in values[p].items() if not math.isnan(v)} for p in parts))
        if not common:
            raise ValueError(f"{name}: no arch has a value of every part ({', '.join(parts)})")
        super().__init__(name, sorted(common), size)
        self._values = {p: _dense(values[p], self.size, math.nan) for p in parts}
        self._costs = _dense(costs, self.size, math.nan)
        bad = ~(np.isfinite(self._costs[self.pool]) & (self._costs[self.pool] > 0))
        if bad.any():
            raise ValueError(f"{name}: costs must be finite and > 0 (arch {int(self.pool[np.argmax(bad)])})")
        self._whole = dict(zip(self.pool.tolist(), self.population_scores(self.pool).tolist()))

    def population_scores(self, indices: Sequence[int]) -> np.ndarray:
        """The aggregate of each of ``indices`` ranked within exactly these archs (higher = better)."""
        from ..proxies.aggregate import aggregate_scores

        idx = np.asarray([self._check(i) for i in indices], dtype=np.int64)
        return aggregate_scores({p: v[idx] for p, v in self._values.items()}, self.rule)

    def score(self, index: int) -> float:
        return self._whole[self._check(index)]

    def cost(self, index: int) -> float:
        return float(self._costs[self._check(index)])


def aggregate_scorer_from_csv(path: str | os.PathLike, name: str, *, cost: float | None = None,
                              space: SearchSpace | None = None) -> PopulationScorer:
    """A :class:`PopulationScorer` for aggregate ``name`` from the part columns of a per-arch CSV
    (``nasbeff score`` output); each evaluation is charged ``cost`` seconds or, by default, the
    measured seconds of its parts (``<part>_seconds`` columns; a group member: its group's whole
    pass, :func:`nasbeff.proxies.charged_seconds`). Archs missing a part are outside the pool."""
    from ..proxies import charged_seconds
    from ..proxies.aggregate import parse_aggregate_name

    _, parts = parse_aggregate_name(name)
    values, seconds = {}, {}
    for p in parts:
        values[p], sec = read_scores_csv(path, p, None if cost is not None else f"{p}_seconds")
        if sec is not None:
            seconds[p] = sec
    if cost is not None:
        costs = dict.fromkeys(values[parts[0]], float(cost))
    else:
        with open(path, newline="", encoding="utf-8") as f:
            header = next(csv.reader(f))
        extra = {c[: -len("_seconds")] for c in header if c.endswith("_seconds")} - set(parts)
        for p in extra:  # other members of a part's group: their shares of its pass (0 where not scored)
            seconds[p] = {i: 0.0 if math.isnan(v) else v for i, v in read_scores_csv(path, f"{p}_seconds")[0].items()}
        keys = list(values[parts[0]])
        per = charged_seconds(parts, {p: np.array([v.get(i, math.nan) for i in keys]) for p, v in seconds.items()})
        costs = dict(zip(keys, np.atleast_1d(per).tolist()))
    return PopulationScorer(name, values, costs, size=_NB201_SIZE if space is None else int(space.size))


def _joint_pool(*scorers: Scorer) -> np.ndarray | None:
    pool: np.ndarray | None = None
    for s in scorers:
        p = getattr(s, "pool", None)
        if p is not None:
            pool = np.asarray(p, dtype=np.int64) if pool is None else np.intersect1d(pool, p)
    if pool is not None and pool.size == 0:
        raise ValueError("the scorers' pools do not overlap")
    return pool


