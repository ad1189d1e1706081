"""Bayesian ridge prediction at beta_eff = 0 with BIC-chosen t0 (one curve: fit_beta_curve; many
archs: BetaEffPredictor behind the one predictor protocol), and the LSV/BSV baselines."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.exceptions import NotFittedError

from nasbeff.predictors import BetaEffPredictor, best_seen_value, fit_beta_curve, last_seen_value


def test_recovers_the_intercept_of_a_linear_relation():
    beta = np.array([0.8, 0.6, 0.45, 0.35, 0.3, 0.26])
    acc = 92.0 - 15.0 * beta
    fit = fit_beta_curve(beta, acc)
    assert fit.prediction == pytest.approx(92.0, abs=1e-3)
    assert fit.t0 == 0  # exact fits everywhere: ties go to the smallest t0
    np.testing.assert_allclose(fit.intercept + fit.slope * np.array([0.0, 0.5]), [92.0, 84.5], atol=1e-3)


def test_bic_drops_early_epochs_that_break_the_line():
    rng = np.random.default_rng(0)
    beta = np.array([0.95, 0.9, 0.7, 0.55, 0.45, 0.38, 0.33, 0.3])
    acc = 90.0 - 20.0 * beta + rng.normal(0, 0.05, beta.size)
    acc[:2] = [30.0, 50.0]  # accuracy moves before beta_eff settles
    fit = fit_beta_curve(beta, acc)
    assert fit.t0 >= 2
    assert fit.prediction == pytest.approx(90.0, abs=0.6)
    assert abs(fit_beta_curve(beta, acc, t0=0).prediction - 90.0) > 5  # without BIC the fit is off


def test_bic_formula_and_fixed_t0():
    beta = np.array([1.0, 0.8, 0.5, 0.4, 0.2])
    acc = np.array([50.0, 60.0, 70.0, 71.0, 80.0])
    fit = fit_beta_curve(beta, acc, t0=1)
    resid = acc[1:] - (fit.intercept + fit.slope * beta[1:])
    n = 4
    assert fit.bic == pytest.approx(n * np.log(resid @ resid / n) + 2 * np.log(n), rel=1e-6)
    with pytest.raises(ValueError, match="fewer than 3"):
        fit_beta_curve(beta, acc, t0=3)


def test_degenerate_inputs_raise():
    with pytest.raises(ValueError, match="at least 3"):
        fit_beta_curve([0.5, 0.4], [60, 70])
    with pytest.raises(ValueError, match="NaN"):
        fit_beta_curve([0.5, np.nan, 0.3], [60, 70, 75])
    with pytest.raises(ValueError, match="constant"):
        fit_beta_curve([0.5, 0.5, 0.5, 0.5], [60, 70, 75, 80])
    with pytest.raises(ValueError, match="one value per epoch"):
        fit_beta_curve([0.5, 0.4, 0.3], [60, 70])


def test_predictor_protocol_many_archs_and_nan_for_unfittable_curves():
    beta = np.array([[0.8, 0.6, 0.45, 0.35], [0.5, 0.5, 0.5, 0.5]])
    acc = np.array([92.0 - 15.0 * beta[0], [60.0, 70.0, 75.0, 80.0]])
    p = BetaEffPredictor()
    with pytest.raises(NotFittedError):
        p.predict(acc, beta=beta)
    pred = p.fit(acc, beta=beta).predict(acc, beta=beta)
    assert pred[0] == pytest.approx(92.0, abs=1e-3) and np.isnan(pred[1])  # never another predictor's value
    fits = p.fits(acc, beta)
    assert fits[0].t0 == 0 and "constant" in fits[1]
    assert p.n_epochs_ == 4
    with pytest.raises(ValueError, match="needs beta="):
        p.predict(acc)
    with pytest.raises(ValueError, match="shape"):
        p.predict(acc, beta=beta[:, :3])
    with pytest.raises(ValueError, match="at least 3"):
        p.predict(acc[:, :2], beta=beta[:, :2])


def test_last_and_best_seen_value():
    assert last_seen_value([10, 30, 20]) == 20
    assert best_seen_value([10, 30, 20]) == 30
    with pytest.raises(ValueError, match="empty"):
        last_seen_value([])


def test_training_speed_estimators_by_hand():
    """TSE = -sum_t L_t, TSE-E = -sum of the last E, TSE-EMA = -sum_t 0.9^(k-t) L_t (Ru et al. 2021)."""
    from nasbeff.predictors import TSE, TSEE, TSEEMA

    acc = np.array([[10.0, 20.0, 30.0], [15.0, 18.0, 19.0]])
    losses = np.array([[50.0, 30.0, 20.0], [40.0, 35.0, 33.0]])
    np.testing.assert_allclose(TSE().fit(acc).predict(acc, losses=losses), [-100.0, -108.0])
    np.testing.assert_allclose(TSEE().fit(acc).predict(acc, losses=losses), [-20.0, -33.0])
    np.testing.assert_allclose(TSEE(last_epochs=2).fit(acc).predict(acc, losses=losses), [-50.0, -68.0])
    np.testing.assert_allclose(TSEEMA().fit(acc).predict(acc, losses=losses),
                               [-(0.81 * 50 + 0.9 * 30 + 20), -(0.81 * 40 + 0.9 * 35 + 33)])
    with pytest.raises(ValueError, match="needs losses="):
        TSE().fit(acc).predict(acc)
    with pytest.raises(ValueError, match="gamma"):
        TSEEMA(gamma=0.0).fit(acc).predict(acc, losses=losses)
    with pytest.raises(ValueError, match="last_epochs"):
        TSEE(last_epochs=0).fit(acc).predict(acc, losses=losses)
