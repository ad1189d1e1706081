"""Predictor-guided search (the BANANAS / neural-predictor pattern, issue 25): evaluate a few random
archs, then repeatedly fit an :class:`~nasbeff.predictors.ArchPredictor` (GRAF features of the NB201
cell, a small random forest) on everything evaluated so far, score a candidate pool (random archs
plus one-choice mutations of the best ones) with it and evaluate its top predicted archs.

Costs follow the budget rule of :mod:`nasbeff.optimizers`: each label is one evaluation of the main
scorer (``benchmark``: NB201's 12-epoch share of the training time, like REA). Optional extra
features are ordinary :class:`Scorer` s (e.g. a whole-space proxy column, ``scorer_from_csv(path,
'meco', 'meco_seconds')``): the first time an arch needs its features, all of them are charged at
once, as one warm-up-stage evaluation (stage 0) whose cost is the sum of theirs. GRAF features are
computed from the cell alone and cost nothing.

Unlike REA the loop never re-evaluates an arch (candidates already evaluated are left out).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ..predictors import ArchPredictor
from ..spaces import NB201Space, SearchSpace
from .algorithms import Optimizer
from .scorers import Scorer, _joint_pool
from .trajectory import _Recorder

#: Defaults chosen on dev seeds 1000..1029 (``experiments/nb201_search/predictor_dev.md``).
DEFAULTS = {"initial": 10, "candidates": 100, "per_round": 5, "parents": 5, "n_estimators": 10}
_WORST = -1e9  # stands in for a non-finite feature value or label (trees split on order only)


class _FeatureCharge:
    """The extra feature scorers as one :class:`Scorer`: score = the first feature, cost = the sum
    of their costs (what computing all features of an arch is charged)."""

    def __init__(self, features: Sequence[Scorer]) -> None:
        self.parts = tuple(features)
        self.name = "features:" + "+".join(s.name for s in self.parts)
        self.pool = _joint_pool(*self.parts)

    def score(self, index: int) -> float:
        return float(self.parts[0].score(index))

    def cost(self, index: int) -> float:
        return float(sum(s.cost(index) for s in self.parts))

    def values(self, index: int) -> list[float]:
        return [float(s.score(index)) for s in self.parts]


class PredictorGuided(Optimizer):
    """Fit-predict-evaluate search on NB201 (see the module docstring).

    ``initial``: random archs evaluated before the first fit; ``candidates``: pool scored per round
    (half uniform random archs, half one-choice mutations of the ``parents`` best evaluated archs);
    ``per_round``: top predicted candidates evaluated per round (the predictor is refitted every
    ``per_round`` evaluations); ``n_estimators``: trees of the random forest (one thread);
    ``features``: extra feature scorers (charged, see the module docstring)."""

    method = "predictor"

    def __init__(self, scorer: Scorer, *, initial: int = DEFAULTS["initial"],
                 candidates: int = DEFAULTS["candidates"], per_round: int = DEFAULTS["per_round"],
                 parents: int = DEFAULTS["parents"], n_estimators: int = DEFAULTS["n_estimators"],
                 features: Sequence[Scorer] = (), space: SearchSpace | None = None) -> None:
        for name, v, low in (("initial", initial, 2), ("candidates", candidates, 1), ("per_round", per_round, 1),
                             ("parents", parents, 1), ("n_estimators", n_estimators, 1)):
            if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < low:
                raise ValueError(f"{name} must be an integer >= {low}, got {v!r}")
        if per_round > candidates:
            raise ValueError(f"per_round ({per_round}) must be <= candidates ({candidates})")
        if space is not None and not isinstance(space, NB201Space):
            raise ValueError(f"the predictor's GRAF features describe NB201 cells; got the space {space!r}")
        self.initial, self.candidates, self.per_round = int(initial), int(candidates), int(per_round)
        self.parents, self.n_estimators = int(parents), int(n_estimators)
        self._features = _FeatureCharge(features) if features else None
        if self._features is not None:
            self.warmup_name = self._features.name  # the trajectory's stage-0 scorer
        super().__init__(scorer, space)

    def _scorers(self) -> tuple[Scorer, ...]:
        return (self.scorer,) + ((self._features,) if self._features is not None else ())

    @property
    def feature_name(self) -> str | None:
        """Name of the charged extra features (``features:a+b``), None without."""
        return None if self._features is None else self._features.name

    def _search(self, rec: _Recorder, rng: np.random.Generator) -> None:
        labels: dict[int, float] = {}
        extra: dict[int, list[float]] = {}

        def featured(indices: list[int]) -> bool:
            """Charge the extra features of the archs that lack them; False when the budget ends."""
            if self._features is None:
                return True
            for i in indices:
                if i not in extra:
                    if rec.evaluate(self._features, i, stage=0) is None:
                        return False
                    extra[i] = self._features.values(i)
            return True

        def evaluate(i: int) -> bool:
            s = rec.evaluate(self.scorer, i)
            if s is None:
                return False
            labels[i] = s
            return True

        for i in self._domain.sample_distinct(rng, self.initial):
            if not evaluate(i):
                return
        model = ArchPredictor("graf", "rf", random_state=0, n_estimators=self.n_estimators)
        while True:
            pool = self._candidates(labels, rng)
            if not pool or not featured(list(labels) + pool):
                return
            seen = list(labels)
            y = np.nan_to_num(np.array([labels[i] for i in seen]), nan=_WORST, neginf=_WORST, posinf=-_WORST)
            model.fit(seen, y, self._extra(extra, seen))
            pred = model.predict(pool, self._extra(extra, pool))
            for k in np.argsort(-pred, kind="stable")[: self.per_round]:
                if not evaluate(pool[int(k)]):
                    return

    def _candidates(self, labels: dict[int, float], rng: np.random.Generator) -> list[int]:
        """Distinct unevaluated archs: one-choice mutations of the best evaluated ones, then uniform
        random ones (``candidates`` in all, fewer in a small pool)."""
        best = sorted(labels, key=lambda i: -labels[i])[: self.parents]
        n_mut = self.candidates // 2
        out: dict[int, None] = {}
        for _ in range(4 * n_mut):
            if len(out) >= n_mut:
                break
            child = self._domain.mutate(best[int(rng.integers(0, len(best)))], rng)
            if child not in labels:
                out[child] = None
        for i in self._domain.sample_distinct(rng, self.candidates + len(labels)):
            if len(out) >= self.candidates:
                break
            if i not in labels:
                out.setdefault(i, None)
        return list(out)

    @staticmethod
    def _extra(extra: dict[int, list[float]], indices: list[int]) -> np.ndarray | None:
        if not extra:
            return None
        x = np.array([extra[i] for i in indices], dtype=np.float64)
        return np.nan_to_num(x, nan=_WORST, neginf=_WORST, posinf=-_WORST)
