"""The optimizers: random search, regularized evolution (REA) and warm-up REA, moving in a space or
a pool of it (see :mod:`nasbeff.optimizers` for the rules they follow)."""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections import deque
from collections.abc import Iterable

import numpy as np

from .scorers import PopulationScorer, Scorer, _joint_pool
from .trajectory import Trajectory, _Recorder
from ..spaces import NB201Space, SearchSpace

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

    def run(self, budget_s: float, seed: int, max_evaluations: int | None = None) -> Trajectory:
        """Search until the next evaluation would exceed ``budget_s`` simulated seconds, or after
        ``max_evaluations`` evaluations (None: no cap)."""
        _check_run_args(budget_s, seed)
        if max_evaluations is not None and (isinstance(max_evaluations, bool) or not isinstance(
                max_evaluations, (int, np.integer)) or max_evaluations < 1):
            raise ValueError(f"max_evaluations must be an int >= 1 or None, got {max_evaluations!r}")
        rec = _Recorder(float(budget_s), None if max_evaluations is None else int(max_evaluations))
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


