"""Learning-curve predictors behind :class:`~nasbeff.predictors.base.CurvePredictor`.

* :class:`CurveSVR` (Baker et al. 2017): epsilon-SVR (RBF) on standardised features
  ``[y_1..y_k, mean(dy), dy_k, mean(d2y), d2y_k, arch features]`` (``d``: differences along the
  epochs) with a standardised target; one model per observed length k, fitted in ``fit`` for every
  k the reference curves allow.
* :class:`CurveExtrapolation` (Domhan et al. 2015, point-estimate form): each parametric family
  ``f_m`` of :data:`LCE_FAMILIES` is fitted by bounded least squares (``scipy.optimize.curve_fit``)
  and the extrapolations are averaged with weights from the fit quality instead of Domhan's MCMC
  over the parameters and weights: by default BIC weights ``w_m ∝ exp(-BIC_m / 2)``,
  ``BIC_m = n ln(RSS_m / n) + p_m ln n`` (the large-sample approximation of the posterior model
  probability); alternatively inverse residual variance ``w_m ∝ (n - p_m) / RSS_m`` or equal
  weights. Families that fail, or have ``p_m >= n``, are dropped.
* :class:`AffineEnsemble` (Chandrashekaran & Lane 2017): each reference curve ``c_j`` is mapped
  onto the observed part by least squares ``min_{a>=0, b} sum_t (a c_j(t) + b - y(t))^2`` and the
  prediction is ``sum_j w_j (a_j F_j + b_j) / sum_j w_j`` with ``F_j`` the reference's final value
  and ``w_j = 1 / (MSE_j + eps)``.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy.optimize import OptimizeWarning, curve_fit
from scipy.special import expit
from sklearn.preprocessing import StandardScaler
from sklearn.svm import SVR
from sklearn.utils.validation import check_is_fitted

from ..spaces.nb201 import NB201_EDGES, NB201_OPS, to_arch
from .base import CurvePredictor, _check_features, _check_vector, check_curves

# ---------------------------------------------------------------------------------------------
# Features
# ---------------------------------------------------------------------------------------------
def curve_features(curves) -> np.ndarray:
    """Baker et al. features per arch: ``[y_1..y_k, mean(dy), dy_k, mean(d2y), d2y_k]`` with
    ``dy_t = y_t - y_{t-1}`` and ``d2y_t = dy_t - dy_{t-1}`` (second differences are 0 when k = 2)."""
    c = check_curves(curves)
    d1 = np.diff(c, axis=1)
    d2 = np.diff(c, n=2, axis=1)
    if d2.shape[1] == 0:
        d2 = np.zeros((c.shape[0], 1))
    return np.column_stack([c, d1.mean(1), d1[:, -1], d2.mean(1), d2[:, -1]])


def nb201_arch_features(archs: Sequence[Any]) -> np.ndarray:
    """One-hot of the 6 NB201 edge ops, (n_archs, 6 * 5); column ``5 e + op_id`` is 1 when edge ``e``
    carries op ``NB201_OPS[op_id]``. ``archs``: arch strings, benchmark indices or NB201Arch."""
    if isinstance(archs, (str, bytes)) or not isinstance(archs, Sequence | np.ndarray):
        raise ValueError("archs must be a sequence of arch strings, indices or NB201Arch objects")
    n_ops, n_edges = len(NB201_OPS), len(NB201_EDGES)
    out = np.zeros((len(archs), n_edges * n_ops))
    for i, a in enumerate(archs):
        ids = to_arch(a.item() if isinstance(a, np.generic) else a).op_ids
        out[i, np.arange(n_edges) * n_ops + np.asarray(ids)] = 1.0
    return out


# ---------------------------------------------------------------------------------------------
# Baker et al. 2017: SVR on curve + arch features
# ---------------------------------------------------------------------------------------------
class CurveSVR(CurvePredictor):
    """epsilon-SVR on standardised :func:`curve_features` (+ arch features), standardised target.

    ``fit`` trains one model per observed length k = 2..T on the first k epochs of the reference
    curves (n_ref, T), kept in ``models_[k]``. ``C``, ``epsilon`` (in target-std units), ``gamma`` and ``kernel`` go to
    ``sklearn.svm.SVR``.
    """

    learns_from_archs = True

    def __init__(self, C: float = 1.0, epsilon: float = 0.05, gamma: str | float = "scale",
                 kernel: str = "rbf") -> None:
        self.C = C
        self.epsilon = epsilon
        self.gamma = gamma
        self.kernel = kernel

    def fit(self, curves, final=None, arch_features=None, beta=None, losses=None) -> "CurveSVR":
        c = check_curves(curves, "curves", self.min_observed)
        if c.shape[0] < 2:
            raise ValueError("CurveSVR needs at least 2 reference archs")
        y = c[:, -1].copy() if final is None else _check_vector(final, c.shape[0], "final")
        feats = _check_features(arch_features, c.shape[0])
        mu, sd = float(y.mean()), float(y.std())
        sd = sd if sd > 0 else 1.0
        self.n_epochs_ = c.shape[1]
        self.has_arch_features_ = feats is not None
        self.n_arch_features_ = 0 if feats is None else feats.shape[1]
        self.models_: dict[int, tuple[StandardScaler, SVR, float, float]] = {}
        for k in range(self.min_observed, c.shape[1] + 1):
            x = self._design(c[:, :k], feats)
            scaler = StandardScaler().fit(x)
            svr = SVR(C=self.C, epsilon=self.epsilon, gamma=self.gamma, kernel=self.kernel)
            svr.fit(scaler.transform(x), (y - mu) / sd)
            self.models_[k] = (scaler, svr, mu, sd)
        return self

    @staticmethod
    def _design(curves: np.ndarray, feats: np.ndarray | None) -> np.ndarray:
        x = curve_features(curves)
        return x if feats is None else np.column_stack([x, feats])

    def _predict(self, curves, arch_features=None, beta=None, losses=None) -> np.ndarray:
        k = curves.shape[1]
        if k > self.n_epochs_:
            raise ValueError(f"observed {k} epochs but the reference curves have only {self.n_epochs_}")
        feats = _check_features(arch_features, curves.shape[0])
        if (feats is not None) != self.has_arch_features_:
            raise ValueError("pass arch_features to predict exactly when they were passed to fit")
        if feats is not None and feats.shape[1] != self.n_arch_features_:
            raise ValueError(f"arch_features has {feats.shape[1]} columns, fit had {self.n_arch_features_}")
        scaler, svr, mu, sd = self.models_[k]
        return svr.predict(scaler.transform(self._design(curves, feats))) * sd + mu


# ---------------------------------------------------------------------------------------------
# Domhan et al. 2015: parametric learning-curve extrapolation
# ---------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class CurveFamily:
    """A parametric curve ``f(x, *theta)`` on accuracy fractions (0..1) over epochs x >= 1, with
    box bounds and a function giving starting points from the observed (x, y)."""

    name: str
    f: Callable[..., np.ndarray]
    lower: tuple[float, ...]
    upper: tuple[float, ...]
    starts: Callable[[np.ndarray, np.ndarray], list[list[float]]]

    @property
    def n_params(self) -> int:
        return len(self.lower)


def _top(y: np.ndarray) -> float:
    return float(min(1.0, y[-1] + 0.05))


def _gap(y: np.ndarray) -> float:
    return float(max(_top(y) - y[0], 1e-3))


def _pow3(x, c, a, alpha):
    return c - a * x ** (-alpha)


def _pow4(x, c, a, b, alpha):
    return c - (a * x + b) ** (-alpha)


def _log_power(x, a, b, c):
    return a * expit(c * (np.log(x) - b))


def _exp3(x, c, a, b):
    return c - np.exp(b - a * x)


def _mmf(x, alpha, d, kappa, delta):
    return alpha - d / (1.0 + (kappa * x) ** delta)


def _janoschek(x, alpha, d, kappa, delta):
    return alpha - d * np.exp(-kappa * x ** delta)


def _ilog2(x, c, a):
    return c - a / np.log(x + 1.0)


LCE_FAMILIES: tuple[CurveFamily, ...] = (
    # c - a x^-alpha
    CurveFamily("pow3", _pow3, (0.0, 0.0, 1e-3), (1.0, 5.0, 5.0),
                lambda x, y: [[_top(y), _gap(y), 0.5], [_top(y), _gap(y), 1.5]]),
    # c - (a x + b)^-alpha
    CurveFamily("pow4", _pow4, (0.0, 1e-6, 1e-6, 1e-3), (1.0, 100.0, 100.0, 5.0),
                lambda x, y: [[_top(y), 1.0, 1.0, 0.5], [_top(y), 0.1, 1.0, 1.0]]),
    # a / (1 + (x / e^b)^-c), written a * sigmoid(c (ln x - b))
    CurveFamily("log_power", _log_power, (0.0, -10.0, 1e-3), (1.0, 15.0, 10.0),
                lambda x, y: [[_top(y), 0.0, 1.0], [_top(y), 1.0, 0.5]]),
    # c - exp(b - a x)
    CurveFamily("exp3", _exp3, (0.0, 1e-4, -20.0), (1.0, 5.0, 5.0),
                lambda x, y: [[_top(y), a, math.log(_gap(y)) + a] for a in (0.1, 0.5)]),
    # MMF: alpha - (alpha - beta) / (1 + (kappa x)^delta), d = alpha - beta >= 0
    CurveFamily("mmf", _mmf, (0.0, 0.0, 1e-4, 1e-3), (1.0, 1.0, 10.0, 10.0),
                lambda x, y: [[_top(y), min(1.0, 2 * _gap(y)), 0.5, 1.0], [_top(y), _gap(y), 0.1, 0.5]]),
    # Janoschek: alpha - (alpha - beta) exp(-kappa x^delta) (Weibull is a reparametrisation of it)
    CurveFamily("janoschek", _janoschek, (0.0, 0.0, 1e-5, 1e-3), (1.0, 1.0, 10.0, 5.0),
                lambda x, y: [[_top(y), _gap(y), 0.5, 1.0], [_top(y), min(1.0, 2 * _gap(y)), 0.3, 0.5]]),
    # c - a / ln(x + 1)
    CurveFamily("ilog2", _ilog2, (0.0, 0.0), (1.0, 10.0),
                lambda x, y: [[_top(y), _gap(y) * math.log(2.0)]]),
)
"""The default LCE families (Domhan et al. 2015, Table 1), all non-decreasing under their bounds."""

RSS_FLOOR = 1e-10
"""Per-point floor on the mean squared residual (fraction units, i.e. 1e-3 percent RMS), so that an
exact fit has a finite BIC."""


WEIGHTINGS = ("bic", "inverse_variance", "equal")


def _weights(rss: dict[str, float], n_params: dict[str, int], n: int, weighting: str) -> dict[str, float]:
    if weighting not in WEIGHTINGS:
        raise ValueError(f"weighting must be one of {WEIGHTINGS}, got {weighting!r}")
    if weighting == "bic":
        bic = {m: n * math.log(max(r / n, RSS_FLOOR)) + n_params[m] * math.log(n) for m, r in rss.items()}
        b0 = min(bic.values())
        raw = {m: math.exp(-(b - b0) / 2) for m, b in bic.items()}
    elif weighting == "inverse_variance":
        raw = {m: 1.0 / max(r / (n - n_params[m]), RSS_FLOOR) for m, r in rss.items()}
    else:
        raw = {m: 1.0 for m in rss}
    total = sum(raw.values())
    return {m: w / total for m, w in raw.items()}


@dataclass(frozen=True)
class LCEFit:
    """One curve's extrapolation: ``prediction`` (percent, clipped to [0, 100]) with per-family
    ``weights`` (sum 1), ``predictions`` (percent, unclipped), ``rss`` (fraction units) and
    ``n_params``; ``n_points`` = k; ``fallback`` = True when no family could be fitted (the
    prediction is then the last seen value)."""

    prediction: float
    weights: dict[str, float]
    predictions: dict[str, float]
    rss: dict[str, float]
    n_params: dict[str, int]
    n_points: int
    fallback: bool
    weighting: str = "bic"

    def reweighted(self, weighting: str) -> "LCEFit":
        """The same family fits combined with another weighting (no refitting)."""
        if self.fallback:
            if weighting not in WEIGHTINGS:
                raise ValueError(f"weighting must be one of {WEIGHTINGS}, got {weighting!r}")
            return self
        w = _weights(self.rss, self.n_params, self.n_points, weighting)
        pred = float(np.clip(sum(w[m] * self.predictions[m] for m in w), 0.0, 100.0))
        return LCEFit(pred, w, self.predictions, self.rss, self.n_params, self.n_points, False, weighting)


def _fit_family(fam: CurveFamily, x: np.ndarray, y: np.ndarray, max_nfev: int) -> tuple[np.ndarray, float] | None:
    lo, hi = np.asarray(fam.lower), np.asarray(fam.upper)
    best: tuple[np.ndarray, float] | None = None
    for p0 in fam.starts(x, y):
        p0 = np.clip(np.asarray(p0, dtype=np.float64), lo + 1e-9 * (hi - lo), hi - 1e-9 * (hi - lo))
        try:
            with warnings.catch_warnings(), np.errstate(all="ignore"):
                warnings.simplefilter("ignore", OptimizeWarning)
                warnings.simplefilter("ignore", RuntimeWarning)
                theta, _ = curve_fit(fam.f, x, y, p0=p0, bounds=(lo, hi), method="trf", max_nfev=max_nfev)
                resid = fam.f(x, *theta) - y
        except (RuntimeError, ValueError, FloatingPointError, ZeroDivisionError):
            continue
        rss = float(resid @ resid)
        if np.all(np.isfinite(theta)) and math.isfinite(rss) and (best is None or rss < best[1]):
            best = (theta, rss)
    return best


def extrapolate_curve(curve, final_epoch: float = 200, families: Sequence[CurveFamily] = LCE_FAMILIES,
                      max_nfev: int = 400, weighting: str = "bic") -> LCEFit:
    """Fit every family to one observed curve ``y_1..y_k`` (percent, fitted as fractions) and return
    the weighted average of ``f_m(final_epoch)``. ``weighting='bic'``:
    ``w_m ∝ exp(-(BIC_m - min BIC) / 2)`` with ``BIC_m = k ln(max(RSS_m / k, RSS_FLOOR)) + p_m ln k``;
    ``'inverse_variance'``: ``w_m ∝ 1 / max(RSS_m / (k - p_m), RSS_FLOOR)``; ``'equal'``: ``w_m = 1``.
    Families with ``p_m >= k``, a failed fit or a non-finite extrapolation are dropped; with none
    left, returns the last seen value (``fallback=True``)."""
    if weighting not in WEIGHTINGS:
        raise ValueError(f"weighting must be one of {WEIGHTINGS}, got {weighting!r}")
    y = check_curves(np.asarray(curve, dtype=np.float64)[None, :], "curve")[0]
    if not final_epoch >= y.size:
        raise ValueError(f"final_epoch must be >= the number of observed epochs ({y.size}), got {final_epoch}")
    x = np.arange(1, y.size + 1, dtype=np.float64)
    n = y.size
    preds: dict[str, float] = {}
    rsss: dict[str, float] = {}
    n_params: dict[str, int] = {}
    for fam in families:
        if fam.n_params >= n:
            continue
        fit = _fit_family(fam, x, y / 100.0, max_nfev)
        if fit is None:
            continue
        theta, rss = fit
        with np.errstate(all="ignore"):
            pred = float(fam.f(np.array([float(final_epoch)]), *theta)[0]) * 100.0
        if not math.isfinite(pred):
            continue
        preds[fam.name], rsss[fam.name], n_params[fam.name] = pred, rss, fam.n_params
    if not preds:
        return LCEFit(float(np.clip(y[-1], 0, 100)), {}, {}, {}, {}, n, True, weighting)
    w = _weights(rsss, n_params, n, weighting)
    pred = float(np.clip(sum(w[m] * preds[m] for m in w), 0.0, 100.0))
    return LCEFit(pred, w, preds, rsss, n_params, n, False, weighting)


class CurveExtrapolation(CurvePredictor):
    """Domhan et al. 2015 learning-curve extrapolation (weighted point estimates, see
    :func:`extrapolate_curve`) to ``final_epoch``. ``families=None`` uses :data:`LCE_FAMILIES`;
    :meth:`extrapolations` returns the per-arch fits."""

    def __init__(self, final_epoch: float = 200, families: Sequence[CurveFamily] | None = None,
                 max_nfev: int = 400, weighting: str = "bic") -> None:
        self.final_epoch = final_epoch
        self.families = families
        self.max_nfev = max_nfev
        self.weighting = weighting

    def extrapolations(self, curves) -> list[LCEFit]:
        """The per-arch :class:`LCEFit` behind :meth:`predict` (nothing is stored)."""
        c = check_curves(curves, "curves", self.min_observed)
        fams = LCE_FAMILIES if self.families is None else tuple(self.families)
        if not fams:
            raise ValueError("families is empty")
        if self.weighting not in WEIGHTINGS:
            raise ValueError(f"weighting must be one of {WEIGHTINGS}, got {self.weighting!r}")
        return [extrapolate_curve(row, self.final_epoch, fams, self.max_nfev, self.weighting) for row in c]

    def _predict(self, curves, arch_features=None, beta=None, losses=None) -> np.ndarray:
        return np.array([f.prediction for f in self.extrapolations(curves)])


# ---------------------------------------------------------------------------------------------
# Chandrashekaran & Lane 2017: affine-transformation ensemble of reference curves
# ---------------------------------------------------------------------------------------------
class AffineEnsemble(CurvePredictor):
    """Map each reference curve ``c_j`` onto the observed ``y_1..y_k`` by
    ``a_j = max(0, cov(c_j, y) / var(c_j))``, ``b_j = mean(y) - a_j mean(c_j)`` (least squares with
    ``a >= 0``; ``a_j = 0`` for a reference that is flat on 1..k), and predict
    ``sum_j w_j (a_j F_j + b_j) / sum_j w_j`` with ``w_j = 1 / (MSE_j + eps)`` over the
    ``n_best`` best-fitting references (all when None). ``F_j`` = ``final`` passed to ``fit``
    (default: the last column of the reference curves)."""

    learns_from_archs = True

    def __init__(self, n_best: int | None = None, eps: float = 1e-20) -> None:
        self.n_best = n_best
        self.eps = eps

    def fit(self, curves, final=None, arch_features=None, beta=None, losses=None) -> "AffineEnsemble":
        c = check_curves(curves, "curves", self.min_observed)
        self.n_epochs_ = c.shape[1]
        self.curves_ = c
        self.final_ = c[:, -1].copy() if final is None else _check_vector(final, c.shape[0], "final")
        _check_features(arch_features, c.shape[0])
        return self

    def transforms(self, curves) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(a, b, mse), each (n_archs, n_ref): the affine maps of every reference onto every curve."""
        check_is_fitted(self)
        y = check_curves(curves, "curves", self.min_observed)
        k = y.shape[1]
        if k > self.curves_.shape[1]:
            raise ValueError(f"observed {k} epochs but the reference curves have only {self.curves_.shape[1]}")
        ref = self.curves_[:, :k]
        yc = y - y.mean(1, keepdims=True)
        rc = ref - ref.mean(1, keepdims=True)
        sxy = yc @ rc.T
        sxx = (rc * rc).sum(1)[None, :]
        flat = sxx <= 1e-12 * max(1.0, float(np.abs(ref).max()) ** 2)
        a = np.where(flat, 0.0, np.maximum(sxy / np.where(flat, 1.0, sxx), 0.0))
        b = y.mean(1)[:, None] - a * ref.mean(1)[None, :]
        # residuals computed directly (not syy - 2 a sxy + a^2 sxx, which cancels for exact fits)
        mse = np.empty_like(a)
        step = max(1, int(2e6 // (rc.size or 1)))
        for i in range(0, y.shape[0], step):
            r = yc[i:i + step, None, :] - a[i:i + step, :, None] * rc[None, :, :]
            mse[i:i + step] = np.einsum("ijk,ijk->ij", r, r) / k
        return a, b, mse

    def _predict(self, curves, arch_features=None, beta=None, losses=None) -> np.ndarray:
        if self.n_best is not None and self.n_best < 1:
            raise ValueError(f"n_best must be >= 1 or None, got {self.n_best}")
        if not self.eps > 0:
            raise ValueError(f"eps must be > 0, got {self.eps}")
        a, b, mse = self.transforms(curves)
        w = 1.0 / (mse + self.eps)
        if self.n_best is not None and self.n_best < w.shape[1]:
            cut = np.sort(mse, axis=1)[:, self.n_best - 1:self.n_best]
            w = np.where(mse <= cut, w, 0.0)
        mapped = a * self.final_[None, :] + b
        return (w * mapped).sum(1) / w.sum(1)


