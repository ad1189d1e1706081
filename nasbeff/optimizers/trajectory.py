"""What one search run did (:class:`Trajectory`), how its budget is charged (the recorder) and the
report over seeds (:func:`summarize`, where test accuracy first enters; see :mod:`nasbeff.optimizers`)."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

import numpy as np

from .scorers import PopulationScorer, Scorer

#: Budgets (simulated seconds) reported by default.
DEFAULT_BUDGETS: tuple[float, ...] = (2000.0, 4000.0, 8000.0, 12000.0, 20000.0)

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

    def __init__(self, budget_s: float, max_evaluations: int | None = None) -> None:
        self.budget = budget_s
        self.max_evaluations = max_evaluations
        self.spent = 0.0
        self.idx: list[int] = []
        self.score: list[float] = []
        self.cost: list[float] = []
        self.best: list[int] = []
        self.stage: list[int] = []
        self._best = {0: (-1, -math.inf), 1: (-1, -math.inf)}

    def evaluate(self, scorer: Scorer, index: int, stage: int = 1) -> float | None:
        """Score ``index`` and charge it; None (nothing recorded) if it does not fit the budget or
        the run has made ``max_evaluations`` already (checked first: a live scorer is not asked)."""
        if self.max_evaluations is not None and len(self.idx) >= self.max_evaluations:
            return None
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
            if self.max_evaluations is not None and len(self.idx) + len(charged) >= self.max_evaluations:
                break
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

