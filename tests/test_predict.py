"""Bayesian ridge prediction at beta_eff = 0 with BIC-chosen t0, and the LSV/BSV baselines."""

from __future__ import annotations

import numpy as np
import pytest

from nasbeff.predict import BetaEffPredictor, best_seen_value, last_seen_value, predict_final_accuracy


def test_recovers_the_intercept_of_a_linear_relation():
    beta = np.array([0.8, 0.6, 0.45, 0.35, 0.3, 0.26])
    acc = 92.0 - 15.0 * beta
    mean, std, t0 = predict_final_accuracy(beta, acc)
    assert mean == pytest.approx(92.0, abs=1e-3)
    assert t0 == 0  # exact fits everywhere: ties go to the smallest t0
    p = BetaEffPredictor().fit(beta, acc)
    np.testing.assert_allclose(p.predict([0.0, 0.5]), [92.0, 84.5], atol=1e-3)


def test_bic_drops_early_epochs_that_break_the_line():
    rng = np.random.default_rng(0)
    beta = np.array([0.95, 0.9, 0.7, 0.55, 0.45, 0.38, 0.33, 0.3])
    acc = 90.0 - 20.0 * beta + rng.normal(0, 0.05, beta.size)
    acc[:2] = [30.0, 50.0]  # accuracy moves before beta_eff settles
    p = BetaEffPredictor().fit(beta, acc)
    assert p.t0_ >= 2
    assert p.predict_final()[0] == pytest.approx(90.0, abs=0.6)
    assert abs(BetaEffPredictor(t0=0).fit(beta, acc).predict_final()[0] - 90.0) > 5  # without BIC the fit is off


def test_bic_formula_and_fixed_t0():
    beta = np.array([1.0, 0.8, 0.5, 0.4, 0.2])
    acc = np.array([50.0, 60.0, 70.0, 71.0, 80.0])
    p = BetaEffPredictor(t0=1).fit(beta, acc)
    resid = acc[1:] - p.predict(beta[1:])
    n = 4
    assert p.bic_ == pytest.approx(n * np.log(resid @ resid / n) + 2 * np.log(n), rel=1e-6)
    with pytest.raises(ValueError, match="fewer than 3"):
        BetaEffPredictor(t0=3).fit(beta, acc)


def test_degenerate_inputs_raise():
    with pytest.raises(ValueError, match="at least 3"):
        BetaEffPredictor().fit([0.5, 0.4], [60, 70])
    with pytest.raises(ValueError, match="NaN"):
        BetaEffPredictor().fit([0.5, np.nan, 0.3], [60, 70, 75])
    with pytest.raises(ValueError, match="constant"):
        BetaEffPredictor().fit([0.5, 0.5, 0.5, 0.5], [60, 70, 75, 80])
    with pytest.raises(ValueError, match="one value per epoch"):
        BetaEffPredictor().fit([0.5, 0.4, 0.3], [60, 70])
    with pytest.raises(RuntimeError, match="fit"):
        BetaEffPredictor().predict_final()


def test_last_and_best_seen_value():
    assert last_seen_value([10, 30, 20]) == 20
    assert best_seen_value([10, 30, 20]) == 30
    with pytest.raises(ValueError, match="empty"):
        last_seen_value([])
