"""Features of architectures for performance predictors over architectures (issue 25), one interface
per search space, and the predictor over them.

Every feature set is a :class:`FeatureMap`: a name, the space it describes and one function from an
arch to a fixed-length row (:func:`feature_map`, :func:`feature_sets`, :func:`arch_features`).

NB201 / NATS topology space (``nb201``):

* ``"graf"``: simple graph features in the families of GRAF (Kadlecová et al., ICML 2024), written from
  the paper's description: per operation, how often it occurs; for each operation type alone and for
  every non-``none`` operation together, the number of input-to-output paths that use only such edges
  and their shortest and longest length (0 when there is none); and the in-degree of nodes 1-3 and the
  out-degree of nodes 0-2 counted per operation. 44 numbers per arch.
* ``"onehot"``: the 6 edges x 5 operations one-hot encoding (30 numbers), the usual baseline.

The cell is the DAG on nodes 0 (input) .. 3 (output) with edges ``NB201_EDGES`` carrying one of
``NB201_OPS`` each; a ``none`` edge carries nothing.

NATS size space (``nats-size``):

* ``"size"``: the 5 layer widths ``c_0..c_4``, the parameter count in millions and the FLOPs of one
  32 x 32 image in MFLOPs (CIFAR-10 head; both in closed form, the latter counted as the ``flops``
  proxy counts). 7 numbers per arch.

Proxy scores (or any other per-arch numbers) join as extra columns: ``ArchPredictor.fit(archs, y,
extra=...)``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from itertools import product
from typing import Any, Literal

import numpy as np

from ..spaces import SPACE_NAMES
from ..spaces.nats_size import NATS_SIZE_CELL, NATS_SIZE_NUM_LAYERS, to_size_arch
from ..spaces.nb201 import (
    NB201_EDGES,
    NB201_OPS,
    count_cell_network_flops,
    count_cell_network_params,
    to_arch,
)

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


def size_names() -> list[str]:
    """Names of the ``"size"`` features, in order."""
    return [f"channels_{k}" for k in range(NATS_SIZE_NUM_LAYERS)] + ["params_m", "flops_m"]


def size_features(arch: object) -> np.ndarray:
    """The ``"size"`` features of one NATS size arch (an index, a ``'c0:..:c4'`` string, 5 widths or a
    ``NATSSizeArch``): ``c_0..c_4``, params / 1e6, FLOPs / 1e6 (10 classes, 32 x 32 input)."""
    channels = to_size_arch(arch).channels  # type: ignore[arg-type]
    params = count_cell_network_params(channels, NATS_SIZE_CELL, num_classes=10)
    flops = count_cell_network_flops(channels, NATS_SIZE_CELL, num_classes=10, resolution=32)
    return np.asarray([*channels, params / 1e6, flops / 1e6], dtype=np.float64)


@dataclass(frozen=True)
class FeatureMap:
    """One feature set of one search space: ``row(arch)`` is a vector of ``len(names)`` numbers."""

    name: str
    space: str
    names: tuple[str, ...]
    row: Callable[[Any], np.ndarray]

    def __call__(self, archs: Iterable[object]) -> np.ndarray:
        """``X`` of shape ``(n_archs, len(names))``, one row per arch."""
        rows = [self.row(a) for a in archs]
        return np.vstack(rows) if rows else np.empty((0, len(self.names)))


_FEATURE_MAPS: dict[str, FeatureMap] = {
    fm.name: fm
    for fm in (
        FeatureMap("graf", "nb201", tuple(graf_names()), graf_features),
        FeatureMap("onehot", "nb201", tuple(onehot_names()), onehot_features),
        FeatureMap("size", "nats-size", tuple(size_names()), size_features),
    )
}


def feature_sets(space: str | None = None) -> tuple[str, ...]:
    """Names of the feature sets ``space`` provides (``nb201``/``tss``, ``nats-size``/``sss``), or of all."""
    if space is None:
        return tuple(_FEATURE_MAPS)
    canonical = SPACE_NAMES.get(space)
    if canonical is None:
        raise ValueError(f"unknown search space {space!r}; choose one of {', '.join(SPACE_NAMES)}")
    return tuple(n for n, fm in _FEATURE_MAPS.items() if fm.space == canonical)


def feature_map(name: str) -> FeatureMap:
    """The :class:`FeatureMap` called ``name``; a ValueError lists every feature set and its space."""
    if name not in _FEATURE_MAPS:
        known = ", ".join(f"{n} ({fm.space})" for n, fm in _FEATURE_MAPS.items())
        raise ValueError(f"unknown feature set {name!r}; choose from {known}")
    return _FEATURE_MAPS[name]


FEATURE_SETS: tuple[str, ...] = feature_sets("nb201")  # the topology space's: what `nasbeff predict` accepts


def arch_features(archs: Iterable[object], kind: str = "graf") -> tuple[np.ndarray, list[str]]:
    """``(X, names)``: one row of ``kind`` features per arch."""
    fm = feature_map(kind)
    return fm(archs), list(fm.names)


def _as_matrix(extra: object, n_rows: int, what: str) -> np.ndarray:
    """``extra`` as a float ``(n_rows, m)`` matrix (a 1-d array is one column)."""
    x = np.asarray(extra, dtype=np.float64)
    if x.ndim == 1:
        x = x[:, None]
    if x.ndim != 2 or x.shape[0] != n_rows:
        raise ValueError(f"{what} must have one row per arch: got shape {x.shape} for {n_rows} archs")
    return x


class ArchPredictor:
    """Final accuracy from architecture features (+ optional extra columns, e.g. proxy scores), one
    scikit-learn regressor: ``fit(archs, y, extra=None)`` / ``predict(archs, extra=None)``.

    ``features``: a feature set of :func:`feature_sets` (``"graf"``, ``"onehot"``; ``"size"`` for NATS
    size archs), or None for the extra columns alone (e.g. a predictor on proxy scores only).
    ``model``: ``"rf"`` (random forest: the mean of ``n_estimators`` regression trees, default 300, each
    grown on a bootstrap sample of the archs, each split drawing ``max_features`` of the columns, leaves
    of at least ``min_samples_leaf`` archs) or ``"gbt"`` (histogram gradient boosting, ``n_estimators``
    iterations, default 100); ``random_state`` seeds it.
    Extra columns must be given to both calls with the same width (NaN allowed for ``gbt``; ``rf``
    needs finite values). Arguments are checked by :meth:`fit`, scikit-learn style; the fitted
    attributes (``estimator_``, ``n_features_in_``, ``feature_names_in_``, ``feature_importances_``)
    exist only after it."""

    def __init__(self, features: str | None = "graf", model: Literal["rf", "gbt"] = "rf", random_state: int = 0,
                 n_estimators: int | None = None, max_features: float | str | None = 1.0,
                 min_samples_leaf: int = 1, n_jobs: int = 1) -> None:
        self.features = features
        self.model = model
        self.random_state = random_state
        self.n_estimators = n_estimators
        self.max_features = max_features
        self.min_samples_leaf = min_samples_leaf
        self.n_jobs = n_jobs

    def _arch_names(self) -> tuple[str, ...]:
        return () if self.features is None else feature_map(self.features).names

    def _X(self, archs: Sequence[object], extra: object | None) -> np.ndarray:
        if self.features is None:
            if extra is None:
                raise ValueError("features=None predicts from the extra columns alone: pass extra")
            return _as_matrix(extra, len(archs), "extra")
        X, _ = arch_features(archs, self.features)
        if extra is not None:
            X = np.hstack([X, _as_matrix(extra, len(X), "extra")])
        return X

    def _estimator(self) -> Any:
        if self.model == "rf":
            from sklearn.ensemble import RandomForestRegressor

            return RandomForestRegressor(n_estimators=self.n_estimators or 300, max_features=self.max_features,
                                         min_samples_leaf=self.min_samples_leaf, random_state=self.random_state,
                                         n_jobs=self.n_jobs)
        from sklearn.ensemble import HistGradientBoostingRegressor

        return HistGradientBoostingRegressor(max_iter=self.n_estimators or 100, random_state=self.random_state,
                                             min_samples_leaf=max(self.min_samples_leaf, 5))

    def fit(self, archs: Sequence[object], y: Sequence[float], extra: object | None = None,
            extra_names: Sequence[str] | None = None) -> ArchPredictor:
        """Fit on ``archs`` with targets ``y`` (finite, one per arch) and optional ``extra`` columns
        (``(n_archs, m)``, or 1-d for one column) named ``extra_names`` (default ``extra_0..``)."""
        n_arch = len(self._arch_names())  # an unknown feature set: one clear ValueError
        if self.model not in ("rf", "gbt"):
            raise ValueError(f"unknown model {self.model!r}; choose rf or gbt")
        if self.n_estimators is not None and self.n_estimators < 1:
            raise ValueError(f"n_estimators must be >= 1, got {self.n_estimators}")
        archs = list(archs)
        y = np.asarray(y, dtype=np.float64)
        if y.ndim != 1 or len(y) != len(archs) or len(y) < 2:
            raise ValueError(f"need one target per arch and at least 2 archs, got {len(archs)} archs, "
                             f"targets of shape {y.shape}")
        if not np.isfinite(y).all():
            raise ValueError(f"targets must be finite; {int((~np.isfinite(y)).sum())} are NaN or infinite")
        X = self._X(archs, extra)
        if self.model == "rf" and not np.isfinite(X[:, n_arch:]).all():
            raise ValueError("extra columns hold NaN or infinite values: model='rf' needs finite values "
                             "(fill them, e.g. -inf below the column's finite minimum, or use model='gbt')")
        n_extra = X.shape[1] - n_arch
        names = list(extra_names) if extra_names is not None else [f"extra_{j}" for j in range(n_extra)]
        if len(names) != n_extra:
            raise ValueError(f"extra_names has {len(names)} names for {n_extra} extra columns")
        self.estimator_ = self._estimator().fit(X, y)
        self.n_features_in_ = X.shape[1]
        self.feature_names_in_ = np.asarray([*self._arch_names(), *names], dtype=object)
        return self

    def _check_fitted(self) -> None:
        if not hasattr(self, "estimator_"):
            from sklearn.exceptions import NotFittedError

            raise NotFittedError("ArchPredictor is not fitted: call fit(archs, y) first")

    def predict(self, archs: Sequence[object], extra: object | None = None) -> np.ndarray:
        """Predicted targets of ``archs`` (with the same extra columns as :meth:`fit`)."""
        self._check_fitted()
        X = self._X(list(archs), extra)
        if X.shape[1] != self.n_features_in_:
            raise ValueError(f"fitted on {self.n_features_in_} features, got {X.shape[1]} (same extra columns?)")
        return self.estimator_.predict(X)

    @property
    def feature_importances_(self) -> np.ndarray:
        """Impurity importances of the random forest (``rf`` only), in ``feature_names_in_`` order:
        each feature's mean decrease of the squared error over the splits on it, normalised to sum 1."""
        self._check_fitted()
        if self.model != "rf":
            raise AttributeError("feature_importances_ exists for model='rf' only")
        return self.estimator_.feature_importances_
