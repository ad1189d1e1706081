"""Predict final accuracy from early training: Bayesian ridge regression of validation accuracy on
beta_eff, extrapolated to beta_eff = 0 (paper, Fig. 2 row 3; beta_eff -> 0 as training converges,
Theorem 1), and the simple baselines from the same runs (last and best seen value).

The fit uses epochs t0..k. t0 is chosen by the Bayesian information criterion over the
candidates with n = k - t0 + 1 >= 3 points:

    BIC(t0) = n ln(RSS / n) + 2 ln n      (2 parameters: slope, intercept),

ties going to the smallest t0 (the most data). Early epochs where accuracy moves before beta_eff
settles are dropped when the line fits the later ones much better.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from sklearn.linear_model import BayesianRidge

MIN_POINTS = 3


def _as_series(values, name: str) -> np.ndarray:
    arr = np.asarray(values, dtype=np.float64).reshape(-1)
    if arr.size == 0:
        raise ValueError(f"{name} is empty")
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} contains NaN or inf: {arr.tolist()}")
    return arr


def last_seen_value(acc) -> float:
    """LSV: the last observed validation accuracy."""
    return float(_as_series(acc, "accuracy")[-1])


def best_seen_value(acc) -> float:
    """BSV: the best observed validation accuracy."""
    return float(_as_series(acc, "accuracy").max())


@dataclass(frozen=True)
class FitResult:
    t0: int
    bic: float
    slope: float
    intercept: float
    prediction: float
    std: float


class BetaEffPredictor:
    """scikit-learn-style estimator for one architecture's curve: ``fit(beta, acc)`` with one
    value per observed epoch, then ``predict_final()`` -> (mean, std) of the accuracy at
    beta_eff = 0; ``predict(beta)`` gives the fitted accuracy at other beta values.

    Degenerate input raises ``ValueError``: fewer than 3 epochs, NaN/inf, or beta_eff constant
    on every candidate window (no slope can be fitted)."""

    def __init__(self, min_points: int = MIN_POINTS, t0: int | str = "bic") -> None:
        self.min_points = min_points
        self.t0 = t0

    def get_params(self, deep: bool = True) -> dict:
        return {"min_points": self.min_points, "t0": self.t0}

    def set_params(self, **params) -> "BetaEffPredictor":
        for k, v in params.items():
            setattr(self, k, v)
        return self

    def fit(self, beta, acc) -> "BetaEffPredictor":
        beta = _as_series(beta, "beta_eff")
        acc = _as_series(acc, "accuracy")
        if beta.shape != acc.shape:
            raise ValueError(f"beta_eff and accuracy need one value per epoch, got {beta.size} and {acc.size}")
        if self.min_points < MIN_POINTS:
            raise ValueError(f"min_points must be >= {MIN_POINTS}")
        k = beta.size
        if k < self.min_points:
            raise ValueError(f"need at least {self.min_points} epochs to fit, got {k}")
        candidates = range(0, k - self.min_points + 1) if self.t0 == "bic" else [int(self.t0)]
        best: FitResult | None = None
        for t0 in candidates:
            if not 0 <= t0 <= k - self.min_points:
                raise ValueError(f"t0={t0} leaves fewer than {self.min_points} points of {k}")
            fit = self._fit_window(beta[t0:], acc[t0:], t0)
            if fit is not None and (best is None or fit.bic < best.bic - 1e-12):
                best = fit
        if best is None:
            raise ValueError("beta_eff is constant over every candidate window: cannot regress accuracy on it")
        self.fit_ = best
        self.t0_, self.bic_ = best.t0, best.bic
        self.coef_, self.intercept_ = best.slope, best.intercept
        return self

    def _fit_window(self, b: np.ndarray, a: np.ndarray, t0: int) -> FitResult | None:
        scale = float(np.abs(b).max())
        if scale == 0 or np.ptp(b) <= 1e-12 * scale:
            return None
        model = BayesianRidge(compute_score=False, fit_intercept=True)
        xb = (b / scale)[:, None]
        model.fit(xb, a)
        resid = a - model.predict(xb)
        n = b.size
        rss = max(float(resid @ resid), 1e-12 * n)
        bic = n * math.log(rss / n) + 2 * math.log(n)
        mean, std = model.predict(np.zeros((1, 1)), return_std=True)
        return FitResult(t0=t0, bic=bic, slope=float(model.coef_[0]) / scale, intercept=float(model.intercept_),
                         prediction=float(mean[0]), std=float(std[0]))

    def predict(self, beta) -> np.ndarray:
        """Fitted accuracy at the given beta_eff values."""
        self._check_fitted()
        return self.fit_.intercept + self.fit_.slope * np.asarray(beta, dtype=np.float64)

    def predict_final(self) -> tuple[float, float]:
        """(mean, std) of the predicted accuracy at beta_eff = 0."""
        self._check_fitted()
        return self.fit_.prediction, self.fit_.std

    def _check_fitted(self) -> None:
        if not hasattr(self, "fit_"):
            raise RuntimeError("call fit(beta, acc) first")


def predict_final_accuracy(beta, acc, min_points: int = MIN_POINTS) -> tuple[float, float, int]:
    """(predicted accuracy at beta_eff = 0, its std, chosen t0) for one curve."""
    p = BetaEffPredictor(min_points=min_points).fit(beta, acc)
    mean, std = p.predict_final()
    return mean, std, p.t0_
