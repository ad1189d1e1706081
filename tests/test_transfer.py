"""Transferability measures (LogME, LEEP, NCE) on cases whose answer is known by construction."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.optimize import minimize
from scipy.stats import multivariate_normal

from nasbeff.selection.transfer import leep, logme, logme_evidence, nce


def _entropy(labels) -> float:
    _, c = np.unique(labels, return_counts=True)
    p = c / c.sum()
    return float(-(p * np.log(p)).sum())


# ---------------------------------------------------------------------------------------------
# NCE
# ---------------------------------------------------------------------------------------------
def test_nce_is_zero_when_y_is_a_function_of_z():
    z = np.array([0, 1, 2, 3, 0, 1, 2, 3, 3, 2])
    y = np.array(["a", "b", "a", "c", "a", "b", "a", "c", "c", "a"])  # y = g(z)
    assert nce(z, y) == pytest.approx(0.0, abs=1e-12)


def test_nce_is_minus_h_y_when_independent():
    # every (z, y) pair equally often: exact independence of the empirical joint
    z, y = np.meshgrid(np.arange(3), np.arange(4), indexing="ij")
    z, y = np.tile(z.ravel(), 2), np.tile(y.ravel(), 2)
    assert nce(z, y) == pytest.approx(-math.log(4), abs=1e-12)
    # unbalanced Y, still independent of Z: -H(Y)
    z2 = np.repeat([0, 1], 6)
    y2 = np.tile([0, 0, 0, 0, 1, 2], 2)
    assert nce(z2, y2) == pytest.approx(-_entropy(y2), abs=1e-12)


def test_nce_matches_the_definition():
    rng = np.random.default_rng(0)
    z, y = rng.integers(0, 4, 50), rng.integers(0, 3, 50)
    h = 0.0
    for zz in np.unique(z):
        pz = np.mean(z == zz)
        h += pz * _entropy(y[z == zz])
    assert nce(z, y) == pytest.approx(-h, abs=1e-12)
    assert -_entropy(y) <= nce(z, y) <= 0.0


def test_nce_bad_input():
    with pytest.raises(ValueError, match="entries"):
        nce([0, 1, 2], [0, 1])
    with pytest.raises(ValueError, match="1-d"):
        nce(np.zeros((2, 2)), np.zeros((2, 2)))
    with pytest.raises(ValueError, match="NaN"):
        nce([0.0, 1.0], [0.0, np.nan])
    with pytest.raises(ValueError, match="empty"):
        nce([], [])


# ---------------------------------------------------------------------------------------------
# LEEP
# ---------------------------------------------------------------------------------------------
def _leep_loop(theta: np.ndarray, y: np.ndarray) -> float:
    n, cs = theta.shape
    classes = sorted(set(y.tolist()))
    joint = {(yy, z): 0.0 for yy in classes for z in range(cs)}
    for i in range(n):
        for z in range(cs):
            joint[(y[i], z)] += theta[i, z] / n
    total = 0.0
    for i in range(n):
        eep = 0.0
        for z in range(cs):
            pz = sum(joint[(yy, z)] for yy in classes)
            if pz > 0:
                eep += joint[(y[i], z)] / pz * theta[i, z]
        total += math.log(eep)
    return total / n


def _softmax(logits: np.ndarray) -> np.ndarray:
    e = np.exp(logits - logits.max(1, keepdims=True))
    return e / e.sum(1, keepdims=True)


def test_leep_equals_a_loop_implementation():
    rng = np.random.default_rng(1)
    theta = _softmax(rng.normal(size=(40, 5)) * 2)
    y = rng.integers(0, 3, 40)
    assert leep(theta, y) == pytest.approx(_leep_loop(theta, y), abs=1e-12)
    assert leep(theta, y) <= 0


def test_leep_is_zero_for_one_hot_predictions_that_determine_y():
    # theta_i = e_{z_i} and y_i = g(z_i): P(y|z) = 1[y = g(z)], so EEP_i = P(y_i | z_i) = 1, LEEP = 0
    z = np.array([0, 1, 2, 3, 4, 0, 1, 2, 3, 4, 4])
    y = np.array([1, 0, 1, 2, 2, 1, 0, 1, 2, 2, 2])
    theta = np.eye(5)[z]
    assert leep(theta, y) == pytest.approx(0.0, abs=1e-12)


def test_leep_of_one_hot_predictions_is_nce_and_uniform_is_minus_h_y():
    # one-hot theta: EEP_i = P(y_i | z_i), so LEEP = 1/N sum ln P(y_i|z_i) = -H(Y|Z) = NCE
    rng = np.random.default_rng(2)
    z, y = rng.integers(0, 4, 60), rng.integers(0, 3, 60)
    assert leep(np.eye(4)[z], y) == pytest.approx(nce(z, y), abs=1e-12)
    # uniform theta: P(y|z) = P(y), EEP_i = P(y_i), LEEP = -H(Y)
    assert leep(np.full((60, 4), 0.25), y) == pytest.approx(-_entropy(y), abs=1e-12)


def test_leep_bad_input():
    theta = np.full((4, 2), 0.5)
    with pytest.raises(ValueError, match="sum to 1"):
        leep(np.full((4, 2), 0.4), [0, 1, 0, 1])
    with pytest.raises(ValueError, match="non-negative"):
        leep(np.array([[1.5, -0.5], [0.5, 0.5]]), [0, 1])
    with pytest.raises(ValueError, match="entries"):
        leep(theta, [0, 1, 0])
    with pytest.raises(ValueError, match="NaN"):
        leep(np.array([[np.nan, 1.0]]), [0])
    with pytest.raises(ValueError, match="2-d"):
        leep(np.full(4, 0.25), [0, 1, 0, 1])


# ---------------------------------------------------------------------------------------------
# LogME
# ---------------------------------------------------------------------------------------------
def _brute_evidence(f: np.ndarray, t: np.ndarray) -> float:
    """max over (alpha, beta) of ln N(t; 0, beta^-1 I + alpha^-1 F F^T) / N, by Nelder-Mead in logs."""
    n = f.shape[0]

    def neg(p):
        a, b = np.exp(p)
        cov = np.eye(n) / b + f @ f.T / a
        return -multivariate_normal(mean=np.zeros(n), cov=cov).logpdf(t)

    best = min((minimize(neg, x0, method="Nelder-Mead", options={"xatol": 1e-10, "fatol": 1e-12, "maxiter": 5000})
                for x0 in ([0.0, 0.0], [2.0, -1.0], [-2.0, 2.0])), key=lambda r: r.fun)
    return -best.fun / n


def test_logme_equals_a_brute_force_evidence_maximisation():
    rng = np.random.default_rng(3)
    f = rng.normal(size=(14, 3))
    y = (f[:, 0] + 0.7 * rng.normal(size=14) > 0).astype(int)
    brute = np.mean([_brute_evidence(f, (y == c).astype(float)) for c in (0, 1)])
    assert logme(f, y) == pytest.approx(brute, abs=1e-4)
    # per class, and the fixed point sits at a maximum: moving alpha or beta lowers the evidence
    t = (y == 1).astype(float)
    ev, a, b = logme_evidence(f, t)
    assert ev == pytest.approx(_brute_evidence(f, t), abs=1e-5)
    n = f.shape[0]
    for da, db in ((1.1, 1.0), (0.9, 1.0), (1.0, 1.1), (1.0, 0.9)):
        cov = np.eye(n) / (b * db) + f @ f.T / (a * da)
        assert multivariate_normal(mean=np.zeros(n), cov=cov).logpdf(t) / n < ev


def test_logme_regression_target_matches_brute_force():
    rng = np.random.default_rng(4)
    f = rng.normal(size=(10, 4))  # N > D
    t = f @ np.array([1.0, -0.5, 0.0, 0.3]) + 0.3 * rng.normal(size=10)
    assert logme(f, t, regression=True) == pytest.approx(_brute_evidence(f, t), abs=1e-4)


def test_logme_prefers_separable_features_over_noise():
    rng = np.random.default_rng(5)
    y = np.repeat(np.arange(4), 25)
    centres = rng.normal(size=(4, 8)) * 3
    good = centres[y] + 0.3 * rng.normal(size=(100, 8))
    noise = rng.normal(size=(100, 8))
    assert logme(good, y) > logme(noise, y) + 0.1


def test_logme_is_invariant_to_feature_and_sample_permutation_and_label_names():
    rng = np.random.default_rng(6)
    f = rng.normal(size=(30, 5))
    y = rng.integers(0, 3, 30)
    ref = logme(f, y)
    assert logme(f[:, rng.permutation(5)], y) == pytest.approx(ref, abs=1e-10)
    p = rng.permutation(30)
    assert logme(f[p], y[p]) == pytest.approx(ref, abs=1e-10)
    assert logme(f, np.array(["x", "y", "z"])[y]) == pytest.approx(ref, abs=1e-10)


def test_logme_bad_input():
    f = np.ones((5, 2))
    with pytest.raises(ValueError, match="entries"):
        logme(f, [0, 1])
    with pytest.raises(ValueError, match="NaN"):
        logme(np.array([[np.nan, 1.0], [0.0, 1.0]]), [0, 1])
    with pytest.raises(ValueError, match="2-d"):
        logme(np.ones(5), [0, 1, 0, 1, 0])
    with pytest.raises(ValueError, match="at least 2"):
        logme(np.ones((1, 2)), [0])
    with pytest.raises(ValueError, match="regression"):
        logme(f, np.ones((4, 1)), regression=True)


def test_logme_without_signal_sits_at_alpha_infinity():
    # features orthogonal to the target: the evidence increases towards w = 0 (alpha -> inf)
    t = np.array([1.0, -1.0, 1.0, -1.0, 2.0, -2.0])
    f = np.array([[1.0, 1.0, 0.0, 0.0, 1.0, 1.0], [0.0, 0.0, 1.0, 1.0, 0.0, 0.0]]).T
    assert np.allclose(f.T @ t, 0)
    ev, a, b = logme_evidence(f, t)
    n = t.size
    assert a == math.inf and b == pytest.approx(n / (t @ t))
    assert ev == pytest.approx(multivariate_normal(np.zeros(n), np.eye(n) / b).logpdf(t) / n, abs=1e-12)
    assert ev >= _brute_evidence(f, t) - 1e-6
