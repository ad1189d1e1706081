"""The paper's predictor: Bayesian ridge regression of validation accuracy on beta_eff,
extrapolated to beta_eff = 0 (Fig. 2 row 3; beta_eff -> 0 as training converges, Theorem 1).

One curve: :func:`fit_beta_curve` fits epochs t0..k, t0 chosen by the Bayesian information
criterion over the candidates with n = k - t0 + 1 >= 3 points,

    BIC(t0) = n ln(RSS / n) + 2 ln n      (2 parameters: slope, intercept),

ties going to the smallest t0 (the most data): early epochs where accuracy moves before beta_eff
settles are dropped when the line fits the later ones much better. Many archs:
:class:`BetaEffPredictor`, a :class:`~nasbeff.predictors.base.CurvePredictor`.

Variants the method allows (all read the line at beta_eff = 0): ``transform="signlog"`` regresses
accuracy on ``u = sign(b) log(1 + |b|)`` instead of ``b`` (monotone, u = 0 iff b = 0: tames the
ratio's explosions near den = 0); ``regression="huber"`` (sklearn ``HuberRegressor``, epsilon 1.35)
or ``"theilsen"`` (median of pairwise slopes) instead of Bayesian ridge resist outlying points.
The robust fits give no predictive std (NaN); BIC uses their RSS all the same. Theil-Sen's
spatial median stops at scikit-learn's 300-iteration cap on some near-collinear windows; its
estimate at the cap is used, without a warning per fit.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass

import numpy as np
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import BayesianRidge, HuberRegressor, TheilSenRegressor

from .base import CurvePredictor, _as_series, check_beta

MIN_POINTS = 3
TRANSFORMS = ("identity", "signlog")
REGRESSIONS = ("bayes", "huber", "theilsen")


def beta_transform(beta, transform: str = "identity") -> np.ndarray:
    """``b`` (identity) or ``sign(b) log(1 + |b|)`` (signlog), elementwise."""
    b = np.asarray(beta, dtype=np.float64)
    if transform == "identity":
        return b
    if transform == "signlog":
        return np.sign(b) * np.log1p(np.abs(b))
    raise ValueError(f"transform must be one of {', '.join(TRANSFORMS)}, got {transform!r}")


def _regressor(regression: str):
    if regression == "bayes":
        return BayesianRidge(compute_score=False, fit_intercept=True)
    if regression == "huber":
        return HuberRegressor(epsilon=1.35, alpha=0.0, max_iter=1000)
    if regression == "theilsen":
        return TheilSenRegressor(random_state=0)
    raise ValueError(f"regression must be one of {', '.join(REGRESSIONS)}, got {regression!r}")


@dataclass(frozen=True)
class BetaFit:
    """One curve's fit: the chosen ``t0``, its ``bic``, the line ``intercept + slope * beta`` and
    the ``prediction`` (mean) and ``std`` at beta_eff = 0."""

    t0: int
    bic: float
    slope: float
    intercept: float
    prediction: float
    std: float


def _fit_window(b: np.ndarray, a: np.ndarray, t0: int, regression: str = "bayes") -> BetaFit | None:
    scale = float(np.abs(b).max())
    if scale == 0 or np.ptp(b) <= 1e-12 * scale:
        return None
    model = _regressor(regression)
    xb = (b / scale)[:, None]
    with warnings.catch_warnings():  # Theil-Sen's spatial median may stop at its 300-iteration cap on
        warnings.simplefilter("ignore", ConvergenceWarning)  # near-collinear windows: its estimate there is used
        model.fit(xb, a)
    resid = a - model.predict(xb)
    n = b.size
    rss = max(float(resid @ resid), 1e-12 * n)
    bic = n * math.log(rss / n) + 2 * math.log(n)
    if regression == "bayes":
        mean, std = model.predict(np.zeros((1, 1)), return_std=True)
    else:
        mean, std = model.predict(np.zeros((1, 1))), np.array([np.nan])
    return BetaFit(t0=t0, bic=bic, slope=float(np.ravel(model.coef_)[0]) / scale, intercept=float(model.intercept_),
                   prediction=float(mean[0]), std=float(std[0]))


def fit_beta_curve(beta, acc, min_points: int = MIN_POINTS, t0: int | str = "bic", transform: str = "identity",
                   regression: str = "bayes") -> BetaFit:
    """Fit one arch's accuracy on its beta_eff (one value per observed epoch or point); see the
    module (``transform``, ``regression``: the variants; the slope is in transformed units).

    Raises ``ValueError`` on degenerate input: fewer than ``min_points`` epochs, NaN/inf, or
    beta_eff constant on every candidate window (no slope can be fitted)."""
    if regression not in REGRESSIONS:
        raise ValueError(f"regression must be one of {', '.join(REGRESSIONS)}, got {regression!r}")
    beta = beta_transform(_as_series(beta, "beta_eff"), transform)
    acc = _as_series(acc, "accuracy")
    if beta.shape != acc.shape:
        raise ValueError(f"beta_eff and accuracy need one value per epoch, got {beta.size} and {acc.size}")
    if min_points < MIN_POINTS:
        raise ValueError(f"min_points must be >= {MIN_POINTS}")
    k = beta.size
    if k < min_points:
        raise ValueError(f"need at least {min_points} epochs to fit, got {k}")
    candidates = range(0, k - min_points + 1) if t0 == "bic" else [int(t0)]
    best: BetaFit | None = None
    for start in candidates:
        if not 0 <= start <= k - min_points:
            raise ValueError(f"t0={start} leaves fewer than {min_points} points of {k}")
        fit = _fit_window(beta[start:], acc[start:], start, regression)
        if fit is not None and (best is None or fit.bic < best.bic - 1e-12):
            best = fit
    if best is None:
        raise ValueError("beta_eff is constant over every candidate window: cannot regress accuracy on it")
    return best


class BetaEffPredictor(CurvePredictor):
    """Per-arch :func:`fit_beta_curve` read at beta_eff = 0: ``predict(curves, beta=betas)`` with
    (n_archs, k) accuracy and beta_eff curves. Learns nothing from other archs. An arch whose
    curve cannot be fitted (see :func:`fit_beta_curve`) gets NaN: callers report a fallback
    explicitly, never another predictor's value under this one's name. :meth:`fits` returns the
    per-arch :class:`BetaFit` (or the reason it failed) for inspection."""

    min_observed = MIN_POINTS

    def __init__(self, min_points: int = MIN_POINTS, t0: int | str = "bic", transform: str = "identity",
                 regression: str = "bayes") -> None:
        self.min_points = min_points
        self.t0 = t0
        self.transform = transform
        self.regression = regression

    def fits(self, curves, beta) -> list[BetaFit | str]:
        """One :class:`BetaFit` per arch, or the reason (str) its curve cannot be fitted."""
        from .base import check_curves

        c = check_curves(curves, "curves", 1)
        b = check_beta(beta, c)
        out: list[BetaFit | str] = []
        for acc_row, beta_row in zip(c, b):
            try:
                out.append(fit_beta_curve(beta_row, acc_row, self.min_points, self.t0, self.transform,
                                          self.regression))
            except ValueError as exc:
                out.append(str(exc))
        return out

    def _predict(self, curves, arch_features=None, beta=None, losses=None) -> np.ndarray:
        return np.array([f.prediction if isinstance(f, BetaFit) else np.nan for f in self.fits(curves, beta)])
