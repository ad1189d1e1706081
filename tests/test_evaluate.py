"""Rank correlations with bootstrap intervals, paired differences and the noise ceiling."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from scipy import stats

from nasbeff.evaluation.correlation import (
    correlation_table,
    markdown_table,
    noise_ceiling,
    paired_bootstrap,
    paired_mean_difference,
    rank_correlation,
)


def test_perfect_and_reversed_rankings():
    t = np.arange(20.0)
    c = rank_correlation(t ** 2, t, n_boot=200)
    assert c.spearman == 1.0 and c.kendall == 1.0 and c.spearman_ci == pytest.approx((1.0, 1.0))
    assert rank_correlation(-t, t, n_boot=50).spearman == -1.0


def test_matches_scipy_and_interval_covers_estimate():
    rng = np.random.default_rng(0)
    t = rng.normal(size=60)
    s = t + rng.normal(scale=1.0, size=60)
    c = rank_correlation(s, t, n_boot=500, seed=1)
    assert c.spearman == pytest.approx(stats.spearmanr(s, t).statistic)
    assert c.kendall == pytest.approx(stats.kendalltau(s, t).statistic)
    assert c.spearman_ci[0] < c.spearman < c.spearman_ci[1]
    assert c.spearman_ci[1] - c.spearman_ci[0] < 0.5


def test_paired_bootstrap_prefers_the_better_method():
    rng = np.random.default_rng(1)
    t = rng.normal(size=80)
    good = t + rng.normal(scale=0.2, size=80)
    bad = t + rng.normal(scale=3.0, size=80)
    d = paired_bootstrap(good, bad, t, n_boot=500)
    assert d.diff > 0.3 and d.ci[0] > 0 and d.p_not_better < 0.01
    rows = correlation_table({"good": good, "bad": bad}, t, n_boot=200, reference="bad")
    assert rows[0]["diff_vs_ref"] == pytest.approx(d.diff) and "diff_vs_ref" not in rows[1]
    md = markdown_table(rows, "truth")
    assert md.count("\n") == 3 and "| good | 80 |" in md


def test_noise_ceiling_and_nan_handling():
    a = np.array([1.0, 2.0, 3.0, np.nan, 5.0])
    b = np.array([1.1, 1.9, 3.5, 4.0, 4.9])
    assert noise_ceiling(a, b) == 1.0
    with pytest.raises(ValueError, match="at least 3"):
        rank_correlation([1.0, np.nan], [1.0, 2.0])
    with pytest.raises(ValueError, match="equal length"):
        rank_correlation([1.0, 2.0, 3.0], [1.0, 2.0])


@pytest.mark.parametrize("n", [4, 30, 450])
def test_vectorised_bootstrap_equals_scipy_per_resample(n):
    """The resamples' rho and tau-b, computed at once, are scipy's per resample (ties from repeated
    archs and rounded scores; constant resamples NaN in both); above 400 archs tau-b falls back to scipy."""
    from nasbeff.evaluation.correlation import _boot_indices, _boot_rho, _boot_tau

    rng = np.random.default_rng(n)
    s = np.round(rng.normal(size=n), 1)
    t = s + rng.normal(size=n)
    t[:3] = t[0]
    idx = _boot_indices(n, 200, 0)
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        rho = np.array([stats.spearmanr(s[i], t[i]).statistic for i in idx])
        tau = np.array([stats.kendalltau(s[i], t[i]).statistic for i in idx])
    np.testing.assert_allclose(_boot_rho(s, t, idx), rho, rtol=0, atol=1e-12, equal_nan=True)
    np.testing.assert_allclose(_boot_tau(s, t, idx), tau, rtol=0, atol=1e-12, equal_nan=True)
    if n == 4:
        assert np.isnan(rho).any()  # the NaN path is exercised


def test_paired_mean_difference_of_search_seeds():
    d = paired_mean_difference([94.0, 94.5], [93.0, 94.0])
    assert d.diff == 0.75 and 0.5 <= d.ci[0] <= 0.75 <= d.ci[1] <= 1.0 and d.p_not_better == 0.0
    # resamples of the pairs (4 of them): the mean difference of each resample, its 2.5/97.5 percentiles
    a, b = np.array([1.0, 2.0, 3.0, 10.0]), np.array([1.0, 1.0, 1.0, 1.0])
    d = paired_mean_difference(a, b, n_boot=4000, seed=3)
    idx = np.random.default_rng(3).integers(0, 4, size=(4000, 4))
    boot = (a - b)[idx].mean(axis=1)
    assert d.diff == 3.0 and d.ci == (np.quantile(boot, 0.025), np.quantile(boot, 0.975))
    assert d.p_not_better == np.mean(boot <= 0) > 0  # the all-zero resamples
    with pytest.raises(ValueError, match="at least 2 paired runs"):
        paired_mean_difference([1.0], [2.0])
    with pytest.raises(ValueError, match="paired 1-d sequences of one length"):
        paired_mean_difference([1.0, 2.0], [2.0])
    with pytest.raises(ValueError, match="must be finite"):
        paired_mean_difference([1.0, float("nan")], [2.0, 3.0])
