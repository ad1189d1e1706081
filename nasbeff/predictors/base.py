"""The one predictor protocol (scikit-learn style) shared by every final-accuracy predictor.

Input: each architecture's observed validation-accuracy curve (percent), epochs 1..k, as an
``(n_archs, k)`` array (column ``j`` is epoch ``j + 1``); optionally one-row-per-arch
``arch_features``, the beta_eff curve ``beta`` and the training loss summed over each epoch's
mini-batches ``losses`` (both of the curves' shape)::

    p.fit(curves, final=None, arch_features=None, beta=None, losses=None)   # reference archs (full curves)
    p.predict(curves, arch_features=None, beta=None, losses=None)           # (n_archs,) predicted final accuracy

Fitted attributes (ending in ``_``) are set only in ``fit``; ``predict`` on an unfitted predictor
raises ``sklearn.exceptions.NotFittedError``. Predictors that learn from other archs
(``learns_from_archs``) must be evaluated with :func:`cross_val_predict_by_arch`, which never fits
on an arch it predicts; the others only validate (and record ``n_epochs_``) in ``fit``. A
prediction that cannot be made for one arch is NaN (documented by each predictor).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import ClassVar

import numpy as np
from sklearn.base import BaseEstimator, clone
from sklearn.utils.validation import check_is_fitted

MIN_OBSERVED = 2


def _as_series(values, name: str) -> np.ndarray:
    arr = np.asarray(values, dtype=np.float64).reshape(-1)
    if arr.size == 0:
        raise ValueError(f"{name} is empty")
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} contains NaN or inf: {arr.tolist()}")
    return arr


def last_seen_value(acc) -> float:
    """LSV: the last observed validation accuracy of one curve."""
    return float(_as_series(acc, "accuracy")[-1])


def best_seen_value(acc) -> float:
    """BSV: the best observed validation accuracy of one curve."""
    return float(_as_series(acc, "accuracy").max())


def check_curves(curves, name: str = "curves", min_epochs: int = MIN_OBSERVED) -> np.ndarray:
    """``curves`` as a finite float64 (n_archs, k) array with n_archs >= 1 and k >= min_epochs."""
    arr = np.asarray(curves, dtype=np.float64)
    if arr.ndim != 2:
        raise ValueError(f"{name} must be 2-d (n_archs, n_epochs), got shape {arr.shape}; "
                         "for one curve pass curve[None, :]")
    if arr.shape[0] == 0:
        raise ValueError(f"{name} has no architectures")
    if arr.shape[1] < min_epochs:
        raise ValueError(f"{name} needs at least {min_epochs} observed epochs, got {arr.shape[1]}")
    if not np.all(np.isfinite(arr)):
        bad = np.argwhere(~np.isfinite(arr))[0]
        raise ValueError(f"{name} contains NaN or inf (first at arch row {bad[0]}, epoch {bad[1] + 1})")
    return arr


def _check_vector(values, n: int, name: str) -> np.ndarray:
    arr = np.asarray(values, dtype=np.float64)
    if arr.ndim != 1 or arr.shape[0] != n:
        raise ValueError(f"{name} must be 1-d with one value per arch ({n}), got shape {arr.shape}")
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} contains NaN or inf")
    return arr


def _check_features(features, n: int, name: str = "arch_features") -> np.ndarray | None:
    if features is None:
        return None
    arr = np.asarray(features, dtype=np.float64)
    if arr.ndim == 1:
        arr = arr[:, None]
    if arr.ndim != 2 or arr.shape[0] != n:
        raise ValueError(f"{name} must be (n_archs={n}, n_features), got shape {np.shape(features)}")
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} contains NaN or inf")
    return arr


def check_beta(beta, curves: np.ndarray, name: str = "beta", what: str = "the beta_eff curves") -> np.ndarray:
    """``beta`` (or another per-epoch series such as ``losses``) as a finite float64 array of the
    curves' shape: one value per arch and epoch."""
    if beta is None:
        raise ValueError(f"this predictor needs {name}= ({what}, one value per arch and epoch)")
    arr = np.asarray(beta, dtype=np.float64)
    if arr.shape != curves.shape:
        raise ValueError(f"{name} must have the curves' shape {curves.shape}, got {arr.shape}")
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} contains NaN or inf")
    return arr


class CurvePredictor(BaseEstimator, ABC):
    """Base class: ``fit(curves, final, arch_features, beta)`` then ``predict(curves, arch_features, beta)``.

    ``learns_from_archs`` tells whether ``fit`` uses other archs' data (then evaluate with
    :func:`cross_val_predict_by_arch`); ``min_observed`` is the smallest k accepted by ``predict``.
    """

    learns_from_archs: ClassVar[bool] = False
    min_observed: ClassVar[int] = MIN_OBSERVED

    def fit(self, curves, final=None, arch_features=None, beta=None, losses=None) -> "CurvePredictor":
        """Validate the reference data and record ``n_epochs_``; predictors that do not learn keep
        nothing else."""
        c = check_curves(curves, "curves", self.min_observed)
        if final is not None:
            _check_vector(final, c.shape[0], "final")
        _check_features(arch_features, c.shape[0])
        self.n_epochs_ = c.shape[1]
        return self

    def predict(self, curves, arch_features=None, beta=None, losses=None) -> np.ndarray:
        """(n_archs,) predicted final accuracies from (n_archs, k) observed curves."""
        check_is_fitted(self)
        return self._predict(check_curves(curves, "curves", self.min_observed), arch_features, beta, losses)

    @abstractmethod
    def _predict(self, curves: np.ndarray, arch_features, beta, losses) -> np.ndarray:
        """Predictions for validated curves (the fitted state is checked)."""


def last_seen(curves) -> np.ndarray:
    """LSV per arch: ``y_k`` (row-wise :func:`last_seen_value`)."""
    c = check_curves(curves, min_epochs=1)
    return np.array([last_seen_value(row) for row in c])


def best_seen(curves) -> np.ndarray:
    """BSV per arch: ``max_t y_t`` (row-wise :func:`best_seen_value`)."""
    c = check_curves(curves, min_epochs=1)
    return np.array([best_seen_value(row) for row in c])


class LastSeenValue(CurvePredictor):
    """Predict ``y_k``, the last observed value."""

    def _predict(self, curves, arch_features=None, beta=None, losses=None) -> np.ndarray:
        return last_seen(curves)


class BestSeenValue(CurvePredictor):
    """Predict ``max_{t<=k} y_t``, the best observed value."""

    def _predict(self, curves, arch_features=None, beta=None, losses=None) -> np.ndarray:
        return best_seen(curves)


# ---------------------------------------------------------------------------------------------
# Cross-validation by architecture
# ---------------------------------------------------------------------------------------------
def cross_val_predict_by_arch(predictor: CurvePredictor, curves, final, arch_features=None, k: int = 5,
                              seed: int = 0, n_observed: int | None = None, groups=None) -> np.ndarray:
    """Out-of-fold predictions: archs (or ``groups``, one label per row, e.g. the arch index when an
    arch has several rows) are shuffled with ``seed`` and split into ``k`` folds; for each fold a
    fresh clone of ``predictor`` is fitted on the other folds' full ``curves`` / ``final`` /
    ``arch_features`` and predicts the fold's first ``n_observed`` epochs (default: all)."""
    c = check_curves(curves, "curves", MIN_OBSERVED)
    n, t = c.shape
    y = _check_vector(final, n, "final")
    feats = _check_features(arch_features, n)
    n_observed = t if n_observed is None else int(n_observed)
    if not predictor.min_observed <= n_observed <= t:
        raise ValueError(f"n_observed must be in {predictor.min_observed}..{t}, got {n_observed}")
    g = np.arange(n) if groups is None else np.asarray(groups)
    if g.shape != (n,):
        raise ValueError(f"groups must have one label per arch ({n}), got shape {g.shape}")
    labels, inv = np.unique(g, return_inverse=True)
    if not isinstance(k, (int, np.integer)) or not 2 <= k <= len(labels):
        raise ValueError(f"k (folds) must be an integer in 2..{len(labels)} (number of archs/groups), got {k}")
    order = np.random.default_rng(seed).permutation(len(labels))
    fold_of_label = np.empty(len(labels), dtype=np.int64)
    for f, part in enumerate(np.array_split(order, k)):
        fold_of_label[part] = f
    fold = fold_of_label[inv]
    out = np.full(n, np.nan)
    for f in range(k):
        test, train = fold == f, fold != f
        est = clone(predictor)
        est.fit(c[train], y[train], None if feats is None else feats[train])
        out[test] = est.predict(c[test, :n_observed], None if feats is None else feats[test])
    return out
