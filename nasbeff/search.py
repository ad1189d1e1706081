"""Architecture search by table lookup on any :class:`~nasbeff.spaces.SearchSpace` (default NAS-Bench-201;
also NATS-Bench size): random search, regularized evolution (REA) and a zero-cost warm-up REA, with
pluggable scorers and a simulated time budget.

Scorers
-------
A :class:`Scorer` is a small protocol (NASLib style): ``score(index)`` (higher is better),
``cost(index)`` (simulated seconds charged for one evaluation), a ``name`` and a ``pool``: the
sorted benchmark indices it can score, or ``None`` for the whole space. Optimizers sample and
mutate only inside the (joint) pool.

:func:`as_scorer` is the one adapter from a per-arch score source to a scorer: an array over the
space (a table column), a mapping ``index -> score`` (a CSV of ``nasbeff score`` proxies or
``nasbeff rank`` predictions, :func:`scorer_from_csv`) or a live callable
``index -> (score, seconds)`` evaluated on demand (:class:`LazyScorer`). The named scorers below
are built through it.

* :func:`benchmark_scorer` (``'benchmark'``): the NATS-Bench simulated baseline. NATS scores an
  arch with its 12-epoch ``cifar10-valid`` validation accuracy; the offline table lacks that, so
  the stand-in is the 200-epoch x-valid seed mean (``c10_valid``), charged
  ``train_time_s_c10valid * 12 / 200`` seconds (the 12-epoch share of the 200-epoch training
  time). The stand-in is a much stronger signal than the 12-epoch accuracy, so searches with it
  do better than the published numbers.
* ``'zen'`` / ``'naswot_v1'``: published full-space proxy columns ``zen_c10`` / ``naswot_v1_c10``
  (:func:`table_scorer`); the 341 cut-off archs (NaN / ``-1e8``) score ``-inf``. Costs
  :data:`PROXY_COST_S`: zen 0.8 s (median per-arch time NASLib recorded with the published zen
  scores), naswot_v1 1.0 s (a conservative figure; NASLib's nwot takes 0.56 s, ours 0.44 s on
  one CPU thread).
* per-arch predictions for a subset of archs (e.g. beta_eff from
  ``benchmarks_data/nb201_cifar10_rank.csv``): ``scorer_from_csv(path, 'beff_pred', 'gpu_seconds')``
  (also :class:`PoolScorer`, kept for existing callers).

Scorers read the benchmark only through :meth:`~nasbeff.benchmarks.NB201Table.without_test`, a
:class:`~nasbeff.benchmarks.SearchView` that raises
:class:`~nasbeff.benchmarks.HiddenTestAccuracyError` on test accuracies. Test accuracy is looked
up only after the search, by the reporting code (:func:`summarize` takes it as an argument).

Budget rule
-----------
Every evaluation is charged ``scorer.cost(index)`` (> 0). Before evaluating, the optimizer checks
``spent + cost > budget_s``; if so, that evaluation is not made and the run ends. Hence the sum of
charged costs never exceeds the budget, and a run with budget ``B`` is exactly the prefix of a run
with a larger budget and the same seed (:meth:`Trajectory.truncate`).

Repeats are charged, as in NATS-Bench: re-evaluating an arch already seen costs its full price
again (NATS re-trains it with another random seed). :attr:`Trajectory.unique_evaluations` counts
distinct archs.

Optimizers
----------
All take a ``space`` (default ``NB201Space()``) and have ``run(budget_s, seed) -> Trajectory``;
they use only the space's ``sample`` / ``mutate`` / ``encode`` / ``size``. Defaults follow
NATS-Bench's REA (``exps/NATS-algos/regularized_ea.py``): population 10, tournament of 3 members
drawn with replacement from the population, the child is the best member mutated in one choice
(``space.mutate``; on NB201 one edge, ``scheme='nats'``), the oldest member dies. Initial and
random-search archs are uniform over the pool (with replacement).

Inside a pool, a mutated child outside it is replaced by a pool arch at minimum Hamming distance
(number of differing choices of ``space.encode``) from the child, ties at random, the parent
excluded (when the pool has other archs). A child inside the pool is kept as is, so the full space
behaves exactly as NATS.
"""

from __future__ import annotations

import csv
import math
import os
from abc import ABC, abstractmethod
from collections import deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol, Union, runtime_checkable

import numpy as np

from .benchmarks import SearchView
from .spaces import NB201Space, SearchSpace

__all__ = [
    "Scorer", "ScoreSource", "as_scorer", "ArrayScorer", "LazyScorer", "table_scorer", "TableScorer", "PoolScorer",
    "PopulationScorer", "aggregate_scorer_from_csv",
    "read_scores_csv", "scorer_from_csv", "benchmark_scorer", "make_scorer", "SCORERS",
    "PROXY_COST_S", "NATS_EPOCHS", "Trajectory", "Optimizer", "RandomSearch", "RegularizedEvolution",
    "WarmupREA", "make_optimizer", "METHODS", "run_seeds", "summarize", "DEFAULT_BUDGETS",
]

#: Simulated seconds charged per proxy evaluation (see the module docstring).
PROXY_COST_S: dict[str, float] = {"zen": 0.8, "naswot_v1": 1.0}
#: Epochs of NATS-Bench's simulated search evaluation (``hp='12'``).
NATS_EPOCHS = 12
_FULL_EPOCHS = 200
_NB201_SIZE = NB201Space.size
#: Budgets (simulated seconds) reported by default.
DEFAULT_BUDGETS: tuple[float, ...] = (2000.0, 4000.0, 8000.0, 12000.0, 20000.0)


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
                     pool: Iterable[int] | None = None) -> ArrayScorer:
    """NATS-Bench's simulated baseline (``'benchmark'``) on NB201: score = cifar10-valid x-valid
    accuracy (200-epoch seed mean, the stand-in for the 12-epoch one), cost =
    ``train_time(cifar10-valid) * epochs / 200 + eval_overhead_s``. NATS also charges one pass over
    the validation set (``valid-per-time``), which the table lacks: ``eval_overhead_s`` (default 0)."""
    if not 0 < epochs <= _FULL_EPOCHS:
        raise ValueError(f"epochs must be in 1..{_FULL_EPOCHS}, got {epochs}")
    if not (math.isfinite(eval_overhead_s) and eval_overhead_s >= 0):
        raise ValueError(f"eval_overhead_s must be >= 0, got {eval_overhead_s}")
    v = _as_search_view(view)
    scores = np.asarray(v.metric("cifar10-valid", "x-valid"), dtype=np.float64)
    costs = np.asarray(v.train_time("cifar10-valid"), dtype=np.float64) * epochs / _FULL_EPOCHS + eval_overhead_s
    return as_scorer("benchmark", scores, costs, pool=pool)


def _zen(view, pool=None) -> ArrayScorer:
    return table_scorer(view, "zen_c10", PROXY_COST_S["zen"], name="zen", invalid_at_or_below=-1e8, pool=pool)


def _naswot_v1(view, pool=None) -> ArrayScorer:
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
        from .proxies.aggregate import parse_aggregate_name

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
        from .proxies.aggregate import aggregate_scores

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
    from .proxies import charged_seconds
    from .proxies.aggregate import parse_aggregate_name

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


# --------------------------------------------------------------------------------------------
# Trajectories
# --------------------------------------------------------------------------------------------
@dataclass(frozen=True, eq=False)
class Trajectory:
    """One search run. Per evaluation ``k``: ``indices[k]``, ``scores[k]``, ``costs[k]`` (cumulative
    seconds after it), ``best[k]`` (best index so far) and ``stage[k]`` (0: warm-up scorer, 1: main
    scorer). The best so far is by the main scorer once it has evaluated anything, before that by
    the warm-up score. Ties keep the earliest."""

    method: str
    scorer: str
    seed: int
    budget_s: float
    indices: np.ndarray
    scores: np.ndarray
    costs: np.ndarray
    best: np.ndarray
    stage: np.ndarray
    warmup_scorer: str | None = None

    @property
    def evaluations(self) -> int:
        return int(len(self.indices))

    @property
    def unique_evaluations(self) -> int:
        return int(len(np.unique(self.indices)))

    @property
    def total_cost(self) -> float:
        return float(self.costs[-1]) if len(self.costs) else 0.0

    @property
    def best_index(self) -> int:
        """Final best index (-1 if nothing was evaluated)."""
        return int(self.best[-1]) if len(self.best) else -1

    def evaluations_at(self, budget_s: float | np.ndarray) -> np.ndarray | int:
        """Number of evaluations whose cumulative cost is <= ``budget_s``."""
        k = np.searchsorted(self.costs, budget_s, side="right")
        return int(k) if np.ndim(k) == 0 else k

    def best_at(self, budget_s: float | np.ndarray) -> np.ndarray | int:
        """Best index of the same run with a smaller budget (-1 where nothing fits)."""
        k = np.asarray(self.evaluations_at(budget_s))
        out = np.where(k > 0, self.best[np.maximum(k - 1, 0)] if len(self.best) else -1, -1)
        return int(out) if out.ndim == 0 else out.astype(np.int64)

    def truncate(self, budget_s: float) -> "Trajectory":
        """This run as if its budget had been ``budget_s`` (<= :attr:`budget_s`)."""
        if budget_s > self.budget_s:
            raise ValueError(f"cannot extend a run of budget {self.budget_s} to {budget_s}")
        k = self.evaluations_at(budget_s)
        return Trajectory(self.method, self.scorer, self.seed, float(budget_s), self.indices[:k], self.scores[:k],
                          self.costs[:k], self.best[:k], self.stage[:k], self.warmup_scorer)


class _Recorder:
    """Charges evaluations under the budget rule and records them."""

    def __init__(self, budget_s: float) -> None:
        self.budget = budget_s
        self.spent = 0.0
        self.idx: list[int] = []
        self.score: list[float] = []
        self.cost: list[float] = []
        self.best: list[int] = []
        self.stage: list[int] = []
        self._best = {0: (-1, -math.inf), 1: (-1, -math.inf)}

    def evaluate(self, scorer: Scorer, index: int, stage: int = 1) -> float | None:
        """Score ``index`` and charge it; None (nothing recorded) if it does not fit the budget."""
        c = float(scorer.cost(index))
        if not (c > 0 and math.isfinite(c)):
            raise ValueError(f"{scorer.name}: cost of arch {index} must be finite and > 0, got {c}")
        if self.spent + c > self.budget:
            return None
        s = float(scorer.score(index))
        self.spent += c
        bi, bs = self._best[stage]
        if bi < 0 or s > bs:
            self._best[stage] = (index, s)
        self.idx.append(index)
        self.score.append(s)
        self.cost.append(self.spent)
        main = self._best[1][0]
        self.best.append(main if main >= 0 else self._best[0][0])
        self.stage.append(stage)
        return s

    def evaluate_population(self, scorer: "PopulationScorer", indices: Sequence[int],
                            stage: int = 0) -> list[tuple[float, int]] | None:
        """Charge ``indices`` in order under the budget, then score them within the population of
        the charged ones (``scorer.population_scores``); each is recorded with that score, and the
        best so far after the ``k``-th is the best within the first ``k`` (ranked among themselves).
        None if not all of them fit the budget (those that fit are recorded)."""
        charged: list[int] = []
        for index in indices:
            c = float(scorer.cost(index))
            if not (c > 0 and math.isfinite(c)):
                raise ValueError(f"{scorer.name}: cost of arch {index} must be finite and > 0, got {c}")
            if self.spent + c > self.budget:
                break
            self.spent += c
            charged.append(int(index))
            self.cost.append(self.spent)
        if not charged:
            return None
        final = scorer.population_scores(charged)
        for k, (index, s) in enumerate(zip(charged, final.tolist())):
            prefix = final if k == len(charged) - 1 else scorer.population_scores(charged[:k + 1])
            j = int(np.argmax(prefix))  # ties: the earliest
            self._best[stage] = (charged[j], float(prefix[j]))
            self.idx.append(index)
            self.score.append(s)
            main = self._best[1][0]
            self.best.append(main if main >= 0 else self._best[stage][0])
            self.stage.append(stage)
        return list(zip(final.tolist(), charged)) if len(charged) == len(indices) else None

    def trajectory(self, method: str, scorer: str, seed: int, warmup: str | None = None) -> Trajectory:
        return Trajectory(method, scorer, seed, self.budget, np.array(self.idx, dtype=np.int64),
                          np.array(self.score, dtype=np.float64), np.array(self.cost, dtype=np.float64),
                          np.array(self.best, dtype=np.int64), np.array(self.stage, dtype=np.int8), warmup)


# --------------------------------------------------------------------------------------------
# Where an optimizer moves: a space, optionally restricted to a pool
# --------------------------------------------------------------------------------------------
def _resolve_space(space: SearchSpace | None, mutation: str | None) -> SearchSpace:
    """``space``, or the default :class:`NB201Space` with ``mutation`` (``'nats'`` if None)."""
    if space is None:
        return NB201Space("nats" if mutation is None else mutation)  # type: ignore[arg-type]
    if mutation is not None:
        raise ValueError("mutation configures the default NB201 space only; give it to the space "
                         "(NB201Space(mutation=...))")
    if not isinstance(space, SearchSpace):
        raise ValueError(f"space must implement the SearchSpace protocol, got {space!r}")
    return space


class _Domain:
    """Uniform sampling and one-choice mutation (:class:`SearchSpace`) over the space or a pool."""

    def __init__(self, space: SearchSpace, pool: np.ndarray | None) -> None:
        self.space, self.pool = space, pool
        if pool is not None:
            if pool.max() >= space.size:
                raise ValueError(f"pool index {int(pool.max())} is outside the space {space.name} "
                                 f"(0..{space.size - 1})")
            self._pool_list = pool.tolist()
            self._in_pool = set(self._pool_list)
            self._pos = {i: k for k, i in enumerate(self._pool_list)}
            self._codes = np.array([space.encode(i) for i in self._pool_list], dtype=np.int16)

    def sample(self, rng: np.random.Generator) -> int:
        if self.pool is None:
            return self.space.sample(rng)
        return self._pool_list[int(rng.integers(0, len(self._pool_list)))]

    def sample_distinct(self, rng: np.random.Generator, n: int) -> list[int]:
        src = self.space.size if self.pool is None else self.pool
        size = self.space.size if self.pool is None else len(self.pool)
        return [int(i) for i in rng.choice(src, size=min(n, size), replace=False)]

    def mutate(self, index: int, rng: np.random.Generator) -> int:
        child = self.space.mutate(index, rng)
        if self.pool is None or child in self._in_pool:
            return child
        dist = (self._codes != np.array(self.space.encode(child), dtype=np.int16)).sum(axis=1)
        parent = self._pos.get(index)
        if parent is not None and len(self._pool_list) > 1:
            dist[parent] = self._codes.shape[1] + 1  # exclude the parent
        near = np.flatnonzero(dist == dist.min())
        return self._pool_list[int(near[int(rng.integers(0, len(near)))])]


# --------------------------------------------------------------------------------------------
# Optimizers
# --------------------------------------------------------------------------------------------
def _check_run_args(budget_s: float, seed: int) -> None:
    if not (isinstance(budget_s, (int, float, np.integer, np.floating)) and math.isfinite(budget_s) and budget_s > 0):
        raise ValueError(f"budget_s must be a finite number > 0, got {budget_s!r}")
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"seed must be an int >= 0, got {seed!r}")


def _check_scorer(scorer) -> None:
    if not isinstance(scorer, Scorer):
        raise ValueError(f"scorer must implement the Scorer protocol (name, pool, score, cost), got {scorer!r}")


class Optimizer(ABC):
    """A search method over ``space`` (default :class:`NB201Space`); ``run(budget_s, seed)`` returns
    the run's :class:`Trajectory`. It samples and mutates inside the joint pool of its scorers."""

    method: str = ""

    def __init__(self, scorer: Scorer, space: SearchSpace | None = None, mutation: str | None = None) -> None:
        _check_scorer(scorer)
        self.scorer = scorer
        self.space = _resolve_space(space, mutation)
        for s in self._scorers():
            size = getattr(s, "size", self.space.size)
            if size != self.space.size:
                raise ValueError(f"scorer {s.name!r} covers {size} archs but the space {self.space.name} has "
                                 f"{self.space.size}")
        self._domain = _Domain(self.space, _joint_pool(*self._scorers()))

    def _scorers(self) -> tuple[Scorer, ...]:
        return (self.scorer,)

    def run(self, budget_s: float, seed: int) -> Trajectory:
        """Search until the next evaluation would exceed ``budget_s`` simulated seconds."""
        _check_run_args(budget_s, seed)
        rec = _Recorder(float(budget_s))
        self._search(rec, np.random.default_rng(int(seed)))
        return rec.trajectory(self.method, self.scorer.name, int(seed), getattr(self, "warmup_name", None))

    @abstractmethod
    def _search(self, rec: _Recorder, rng: np.random.Generator) -> None: ...


class RandomSearch(Optimizer):
    """Uniform random sampling (with replacement) from the scorer's pool."""

    method = "random"

    def __init__(self, scorer: Scorer, *, space: SearchSpace | None = None) -> None:
        super().__init__(scorer, space)

    def _search(self, rec: _Recorder, rng: np.random.Generator) -> None:
        sample, evaluate, scorer = self._domain.sample, rec.evaluate, self.scorer
        while evaluate(scorer, sample(rng)) is not None:
            pass


class RegularizedEvolution(Optimizer):
    """Regularized evolution (Real et al. 2019) with NATS-Bench's defaults (see module docstring).
    ``mutation`` (``'nats'`` / ``'uniform'``) configures the default NB201 space; with an explicit
    ``space`` the space's own :meth:`~nasbeff.spaces.SearchSpace.mutate` is used."""

    method = "rea"

    def __init__(self, scorer: Scorer, population_size: int = 10, sample_size: int = 3,
                 mutation: str | None = None, *, space: SearchSpace | None = None) -> None:
        if population_size < 1 or sample_size < 1:
            raise ValueError(f"population_size and sample_size must be >= 1, got {population_size}, {sample_size}")
        if population_size < sample_size:
            raise ValueError(f"population_size ({population_size}) must be >= sample_size ({sample_size})")
        self.population_size, self.sample_size = int(population_size), int(sample_size)
        super().__init__(scorer, space, mutation)

    def _initial(self, rec: _Recorder, rng: np.random.Generator) -> deque | None:
        pop: deque = deque()
        while len(pop) < self.population_size:
            i = self._domain.sample(rng)
            s = rec.evaluate(self.scorer, i)
            if s is None:
                return None
            pop.append((s, i))
        return pop

    def _search(self, rec: _Recorder, rng: np.random.Generator) -> None:
        pop = self._initial(rec, rng)
        if pop is None:
            return
        self._evolve(pop, rec, rng)

    def _evolve(self, pop: deque, rec: _Recorder, rng: np.random.Generator) -> None:
        n, k, scorer, mutate = self.population_size, self.sample_size, self.scorer, self._domain.mutate
        while True:
            picks = rng.integers(0, n, size=k).tolist()
            parent = pop[picks[0]]
            for p in picks[1:]:  # first maximum wins, like max()
                if pop[p][0] > parent[0]:
                    parent = pop[p]
            child = mutate(parent[1], rng)
            s = rec.evaluate(scorer, child)
            if s is None:
                return
            pop.append((s, child))
            pop.popleft()


class WarmupREA(RegularizedEvolution):
    """Zero-cost warm-up then REA: score ``pool_size`` distinct random archs with ``warmup_scorer``
    (charged), evaluate the top ``population_size`` of them with the main ``scorer`` as the initial
    population (best first), then evolve with the main scorer.

    The warm-up archs are drawn from the joint pool of both scorers; evolution moves in the main
    scorer's pool (a warm-up scorer known on a sample of archs only, e.g. a score CSV, does not
    confine the search). A :class:`PopulationScorer` (rank aggregate) scores the warm-up archs
    within the warm-up pool itself (:meth:`_Recorder.evaluate_population`)."""

    method = "warmup_rea"

    def __init__(self, scorer: Scorer, warmup_scorer: Scorer, pool_size: int = 1000, population_size: int = 10,
                 sample_size: int = 3, mutation: str | None = None, *, space: SearchSpace | None = None) -> None:
        _check_scorer(warmup_scorer)
        self.warmup_scorer = warmup_scorer
        self.warmup_name = warmup_scorer.name
        if pool_size < population_size:
            raise ValueError(f"pool_size ({pool_size}) must be >= population_size ({population_size})")
        self.pool_size = int(pool_size)
        super().__init__(scorer, population_size, sample_size, mutation, space=space)
        self._warm = self._domain
        self._domain = _Domain(self.space, _joint_pool(scorer))

    def _scorers(self) -> tuple[Scorer, ...]:
        return (self.scorer, self.warmup_scorer)

    @property
    def warmup_domain_size(self) -> int:
        """How many archs the warm-up draws from: the joint pool of both scorers, or the space."""
        return self.space.size if self._warm.pool is None else len(self._warm.pool)

    @property
    def warmup_size(self) -> int:
        """Archs the warm-up scores in a run with budget to spare: ``pool_size``, at most
        :attr:`warmup_domain_size`."""
        return min(self.pool_size, self.warmup_domain_size)

    def min_warmup_cost(self) -> float:
        """The least a whole warm-up can be charged: its :attr:`warmup_size` cheapest archs. A
        budget at or below it leaves no run any evaluation of the main scorer."""
        where = range(self.space.size) if self._warm.pool is None else self._warm.pool.tolist()
        costs = np.fromiter((self.warmup_scorer.cost(i) for i in where), dtype=np.float64)
        return float(np.sort(costs)[: self.warmup_size].sum())

    def _initial(self, rec: _Recorder, rng: np.random.Generator) -> deque | None:
        draws = self._warm.sample_distinct(rng, self.pool_size)
        if isinstance(self.warmup_scorer, PopulationScorer):
            ranked = rec.evaluate_population(self.warmup_scorer, draws, stage=0)
            if ranked is None:
                return None
        else:
            ranked = []
            for i in draws:
                s = rec.evaluate(self.warmup_scorer, i, stage=0)
                if s is None:
                    return None
                ranked.append((s, i))
        ranked.sort(key=lambda t: -t[0])  # stable: ties keep draw order
        pop: deque = deque()
        top = [i for _, i in ranked[: self.population_size]]
        while len(pop) < self.population_size:  # tiny pools: refill by sampling
            i = top[len(pop)] if len(pop) < len(top) else self._warm.sample(rng)
            s = rec.evaluate(self.scorer, i)
            if s is None:
                return None
            pop.append((s, i))
        return pop


#: Optimizer classes by method name.
METHODS: dict[str, type[Optimizer]] = {"random": RandomSearch, "rea": RegularizedEvolution,
                                       "warmup_rea": WarmupREA}


def make_optimizer(method: str, scorer: Scorer, **kwargs) -> Optimizer:
    """``METHODS[method](scorer, **kwargs)``; ``warmup_rea`` needs ``warmup_scorer=``."""
    if method not in METHODS:
        raise ValueError(f"unknown method {method!r}; choose one of {', '.join(METHODS)}")
    if method == "warmup_rea" and "warmup_scorer" not in kwargs:
        raise ValueError("method 'warmup_rea' needs warmup_scorer=")
    return METHODS[method](scorer, **kwargs)


def run_seeds(optimizer: Optimizer, budget_s: float, seeds: Iterable[int]) -> list[Trajectory]:
    """One run per seed."""
    return [optimizer.run(budget_s, s) for s in seeds]


# --------------------------------------------------------------------------------------------
# Reporting (test accuracy enters here, after the search)
# --------------------------------------------------------------------------------------------
def _truth_lookup(truth) -> Callable[[np.ndarray], np.ndarray]:
    if callable(truth):
        return lambda idx: np.array([float(truth(int(i))) for i in idx], dtype=np.float64)
    arr = np.asarray(truth, dtype=np.float64)
    if arr.ndim != 1:
        raise ValueError("truth must be a 1-d array indexed by arch index, or a callable index -> accuracy")
    return lambda idx: arr[np.asarray(idx, dtype=np.int64)]


def summarize(trajectories: Iterable[Trajectory], truth, budgets: Sequence[float] = DEFAULT_BUDGETS) -> list[dict]:
    """Mean, std (ddof=1) and 95% t-interval half-width of the true accuracy of each run's best arch,
    per (method, scorer, warmup_scorer) and budget. ``truth``: array indexed by arch index (e.g. the
    ``c10_test`` column) or a callable. Runs with nothing evaluated within a budget are left out
    (``n`` counts the others; ``runs`` counts all)."""
    from scipy import stats

    look = _truth_lookup(truth)
    groups: dict[tuple, list[Trajectory]] = {}
    for t in trajectories:
        groups.setdefault((t.method, t.scorer, t.warmup_scorer), []).append(t)
    if not groups:
        raise ValueError("no trajectories to summarize")
    b = np.asarray(budgets, dtype=np.float64)
    if b.ndim != 1 or b.size == 0 or np.any(~np.isfinite(b)) or np.any(b <= 0):
        raise ValueError("budgets must be a non-empty sequence of numbers > 0")
    rows = []
    for (method, scorer, warm), ts in groups.items():
        for j, budget in enumerate(b):
            too_far = [t for t in ts if budget > t.budget_s]
            if too_far:
                raise ValueError(f"{method}/{scorer}: budget {budget} exceeds run budget {too_far[0].budget_s}")
            best = np.array([t.best_at(budget) for t in ts])
            found = best[best >= 0]
            acc = look(found) if found.size else np.array([])
            n = int(acc.size)
            mean = float(acc.mean()) if n else math.nan
            std = float(acc.std(ddof=1)) if n > 1 else math.nan
            ci = float(stats.t.ppf(0.975, n - 1) * std / math.sqrt(n)) if n > 1 else math.nan
            evals = np.array([t.evaluations_at(budget) for t in ts], dtype=np.float64)
            rows.append({"method": method, "scorer": scorer, "warmup_scorer": warm, "budget_s": float(budget),
                         "runs": len(ts), "n": n, "mean": mean, "std": std, "ci95": ci,
                         "evaluations_mean": float(evals.mean())})
    return rows
