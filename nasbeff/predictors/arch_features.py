"""Features of an NB201 / NATS topology cell for performance predictors over architectures (issue 25).

* ``"graf"``: simple graph features in the families of GRAF (Kadlecová et al., ICML 2024), written from
  the paper's description: per operation, how often it occurs; for each operation type alone and for
  every non-``none`` operation together, the number of input-to-output paths that use only such edges
  and their shortest and longest length (0 when there is none); and the in-degree of nodes 1-3 and the
  out-degree of nodes 0-2 counted per operation. 44 numbers per arch.
* ``"onehot"``: the 6 edges x 5 operations one-hot encoding (30 numbers), the usual baseline.

The cell is the DAG on nodes 0 (input) .. 3 (output) with edges ``NB201_EDGES`` carrying one of
``NB201_OPS`` each; a ``none`` edge carries nothing.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from itertools import product
from typing import Literal

import numpy as np

from ..spaces.nb201 import NB201_EDGES, NB201_OPS, to_arch

FeatureSet = Literal["graf", "onehot"]
FEATURE_SETS: tuple[str, ...] = ("graf", "onehot")
_LIVE_OPS = tuple(o for o in NB201_OPS if o != "none")
_PATHS = tuple(p for p in ([(0, 3)], [(0, 1), (1, 3)], [(0, 2), (2, 3)], [(0, 1), (1, 2), (2, 3)]))


def graf_names() -> list[str]:
    """Names of the ``"graf"`` features, in order."""
    names = [f"count_{o}" for o in NB201_OPS]
    for label in (*_LIVE_OPS, "any"):
        names += [f"paths_{label}", f"min_path_{label}", f"max_path_{label}"]
    names += [f"in_deg_n{n}_{o}" for n, o in product((1, 2, 3), _LIVE_OPS)]
    names += [f"out_deg_n{n}_{o}" for n, o in product((0, 1, 2), _LIVE_OPS)]
    return names


def graf_features(arch: object) -> np.ndarray:
    """The ``"graf"`` features of one arch (an index, an arch string or an ``NB201Arch``)."""
    ops = dict(zip(NB201_EDGES, to_arch(arch).ops))
    out = [sum(op == o for op in ops.values()) for o in NB201_OPS]
    for allowed in ([(o,) for o in _LIVE_OPS] + [_LIVE_OPS]):
        lengths = [len(p) for p in _PATHS if all(ops[e] in allowed for e in p)]
        out += [len(lengths), min(lengths, default=0), max(lengths, default=0)]
    out += [sum(ops[e] == o for e in NB201_EDGES if e[1] == n) for n, o in product((1, 2, 3), _LIVE_OPS)]
    out += [sum(ops[e] == o for e in NB201_EDGES if e[0] == n) for n, o in product((0, 1, 2), _LIVE_OPS)]
    return np.asarray(out, dtype=np.float64)


def onehot_features(arch: object) -> np.ndarray:
    """Edge x operation one-hot encoding (6 x 5), edge-major."""
    ops = to_arch(arch).ops
    return np.asarray([op == o for op in ops for o in NB201_OPS], dtype=np.float64)


def onehot_names() -> list[str]:
    return [f"edge{a}{b}_{o}" for (a, b) in NB201_EDGES for o in NB201_OPS]


def arch_features(archs: Iterable[object], kind: FeatureSet = "graf") -> tuple[np.ndarray, list[str]]:
    """``(X, names)``: one row of ``kind`` features per arch."""
    if kind not in FEATURE_SETS:
        raise ValueError(f"unknown feature set {kind!r}; choose from {', '.join(FEATURE_SETS)}")
    fn, names = (graf_features, graf_names()) if kind == "graf" else (onehot_features, onehot_names())
    rows = [fn(a) for a in archs]
    return (np.vstack(rows) if rows else np.empty((0, len(names)))), names


class ArchPredictor:
    """Final accuracy from architecture features (+ optional extra columns, e.g. proxy scores), one
    scikit-learn regressor: ``fit(archs, y, extra=None)`` / ``predict(archs, extra=None)``.

    ``features``: ``"graf"`` or ``"onehot"``; ``model``: ``"rf"`` (random forest) or ``"gbt"``
    (histogram gradient boosting); ``random_state`` seeds it. Extra columns must be given to both
    calls with the same width (NaN allowed for ``gbt``; ``rf`` needs finite values)."""

    def __init__(self, features: FeatureSet = "graf", model: Literal["rf", "gbt"] = "rf", random_state: int = 0,
                 n_estimators: int = 300) -> None:
        self.features = features
        self.model = model
        self.random_state = random_state
        self.n_estimators = n_estimators

    def _X(self, archs: Sequence[object], extra: np.ndarray | None) -> np.ndarray:
        X, _ = arch_features(archs, self.features)
        if extra is not None:
            extra = np.asarray(extra, dtype=np.float64).reshape(len(X), -1)
            X = np.hstack([X, extra])
        return X

    def fit(self, archs: Sequence[object], y: Sequence[float], extra: np.ndarray | None = None) -> "ArchPredictor":
        if self.features not in FEATURE_SETS:
            raise ValueError(f"unknown feature set {self.features!r}; choose from {', '.join(FEATURE_SETS)}")
        y = np.asarray(y, dtype=np.float64)
        if len(y) != len(archs) or len(y) < 2:
            raise ValueError(f"need one target per arch and at least 2 archs, got {len(archs)} archs, {len(y)} targets")
        X = self._X(archs, extra)
        if self.model == "rf":
            from sklearn.ensemble import RandomForestRegressor

            est = RandomForestRegressor(n_estimators=self.n_estimators, random_state=self.random_state)
        elif self.model == "gbt":
            from sklearn.ensemble import HistGradientBoostingRegressor

            est = HistGradientBoostingRegressor(random_state=self.random_state, min_samples_leaf=5)
        else:
            raise ValueError(f"unknown model {self.model!r}; choose rf or gbt")
        self.estimator_ = est.fit(X, y)
        self.n_features_in_ = X.shape[1]
        return self

    def predict(self, archs: Sequence[object], extra: np.ndarray | None = None) -> np.ndarray:
        if not hasattr(self, "estimator_"):
            raise ValueError("ArchPredictor is not fitted: call fit(archs, y) first")
        X = self._X(archs, extra)
        if X.shape[1] != self.n_features_in_:
            raise ValueError(f"fitted on {self.n_features_in_} features, got {X.shape[1]} (same extra columns?)")
        return self.estimator_.predict(X)

    @property
    def feature_importances_(self) -> np.ndarray:
        """Impurity importances of the random forest (``rf`` only)."""
        return self.estimator_.feature_importances_
