"""Learning-curve predictors: exact recovery by construction, by-arch cross-validation, error paths."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import spearmanr

from sklearn.exceptions import NotFittedError

from nasbeff.predictors import (
    LCE_FAMILIES,
    AffineEnsemble,
    BestSeenValue,
    CurveExtrapolation,
    CurveFamily,
    CurvePredictor,
    CurveSVR,
    LastSeenValue,
    best_seen,
    cross_val_predict_by_arch,
    curve_features,
    extrapolate_curve,
    last_seen,
    nb201_arch_features,
)
from nasbeff.spaces import NB201_OPS, parse_arch_str

EPOCHS = np.arange(1, 201, dtype=np.float64)


def _pow3(c: float, a: float, alpha: float, x=EPOCHS) -> np.ndarray:
    return 100.0 * (c - a * x ** (-alpha))


# ---------------------------------------------------------------------------------------------
# LSV / BSV and features
# ---------------------------------------------------------------------------------------------
def test_last_and_best_seen_row_by_row():
    c = np.array([[10.0, 30.0, 20.0], [5.0, 6.0, 7.0]])
    np.testing.assert_array_equal(last_seen(c), [20.0, 7.0])
    np.testing.assert_array_equal(best_seen(c), [30.0, 7.0])
    np.testing.assert_array_equal(LastSeenValue().fit(c).predict(c), [20.0, 7.0])
    np.testing.assert_array_equal(BestSeenValue().fit(c).predict(c), [30.0, 7.0])
    assert not LastSeenValue.learns_from_archs and CurveSVR.learns_from_archs and AffineEnsemble.learns_from_archs


def test_curve_features_are_values_and_difference_summaries():
    x = curve_features([[1.0, 3.0, 4.0, 7.0]])
    # dy = [2, 1, 3], d2y = [-1, 2]
    np.testing.assert_allclose(x, [[1, 3, 4, 7, 2, 3, 0.5, 2]])
    x2 = curve_features([[1.0, 3.0]])
    np.testing.assert_allclose(x2, [[1, 3, 2, 2, 0, 0]])


def test_nb201_arch_features_one_hot_of_edge_ops():
    s = "|nor_conv_3x3~0|+|none~0|skip_connect~1|+|avg_pool_3x3~0|nor_conv_1x1~1|nor_conv_3x3~2|"
    x = nb201_arch_features([s, 0])
    assert x.shape == (2, 30)
    np.testing.assert_array_equal(x.sum(1), [6, 6])
    ids = parse_arch_str(s).op_ids
    assert all(x[0, 5 * e + i] == 1 for e, i in enumerate(ids))
    assert x[0, 5 * 0 + NB201_OPS.index("nor_conv_3x3")] == 1
    with pytest.raises(ValueError):
        nb201_arch_features("not a list")


# ---------------------------------------------------------------------------------------------
# Domhan et al. extrapolation
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("c,a,alpha,k", [(0.9, 0.6, 0.8, 20), (0.75, 0.5, 1.2, 10), (0.94, 0.7, 0.6, 30)])
def test_lce_recovers_a_pow3_law(c, a, alpha, k):
    curve = _pow3(c, a, alpha)
    fit = extrapolate_curve(curve[:k], final_epoch=200)
    assert not fit.fallback
    assert max(fit.weights, key=fit.weights.get) in ("pow3", "pow4")  # pow4 contains pow3 (b -> 0)
    assert fit.prediction == pytest.approx(curve[-1], abs=0.5)
    assert extrapolate_curve(curve[:k], final_epoch=1e6).prediction == pytest.approx(100 * c, abs=0.5)
    assert sum(fit.weights.values()) == pytest.approx(1.0)


def test_lce_class_predicts_each_row_and_keeps_fits():
    curves = np.stack([_pow3(0.9, 0.6, 0.8), _pow3(0.7, 0.4, 1.0)])
    m = CurveExtrapolation().fit(curves)
    p = m.predict(curves[:, :15])
    np.testing.assert_allclose(p, curves[:, -1], atol=0.5)
    fits = m.extrapolations(curves[:, :15])
    assert len(fits) == 2 and [f.prediction for f in fits] == list(p)
    assert not hasattr(m, "fits_")  # predict sets no attribute


def test_lce_is_robust_to_hostile_curves_and_failing_families():
    hostile = np.array([[50.0] * 6, [90.0, 70.0, 50.0, 30.0, 10.0, 0.0], [0.0] * 6, [100.0] * 6,
                        [10.0, 90.0, 10.0, 90.0, 10.0, 90.0]])
    p = CurveExtrapolation().fit(hostile).predict(hostile)
    assert p.shape == (5,) and np.all((p >= 0) & (p <= 100))

    def boom(x, a, b):
        raise RuntimeError("fit exploded")

    bad = CurveFamily("boom", boom, (0.0, 0.0), (1.0, 1.0), lambda x, y: [[0.5, 0.5]])
    curve = _pow3(0.9, 0.6, 0.8)[:12]
    fit = extrapolate_curve(curve, families=(bad,) + LCE_FAMILIES)
    assert "boom" not in fit.weights and not fit.fallback
    only_bad = extrapolate_curve(curve, families=(bad,))
    assert only_bad.fallback and only_bad.prediction == pytest.approx(curve[-1])
    # a family needs fewer parameters than points (p < k): none at k = 2, only ilog2 (p = 2) at k = 3
    two = extrapolate_curve(curve[:2])
    assert two.fallback and two.prediction == pytest.approx(curve[1])
    three = extrapolate_curve(curve[:3])
    assert set(three.weights) == {"ilog2"}


def test_lce_reweighting_without_refitting_matches_a_fresh_fit():
    curve = _pow3(0.8, 0.5, 0.7)[:12] + np.array([0.3, -0.2] * 6)
    fit = extrapolate_curve(curve)
    for w in ("inverse_variance", "equal"):
        fresh = extrapolate_curve(curve, weighting=w)
        again = fit.reweighted(w)
        assert again.prediction == pytest.approx(fresh.prediction, abs=1e-9) and again.weighting == w
    eq = fit.reweighted("equal")
    assert eq.prediction == pytest.approx(np.clip(np.mean(list(fit.predictions.values())), 0, 100))
    with pytest.raises(ValueError, match="weighting"):
        fit.reweighted("nope")


def test_lce_bad_input():
    with pytest.raises(ValueError, match="final_epoch"):
        extrapolate_curve(np.arange(10.0), final_epoch=5)
    with pytest.raises(ValueError, match="weighting"):
        CurveExtrapolation(weighting="magic").fit(np.ones((1, 5))).predict(np.ones((1, 5)))
    with pytest.raises(ValueError, match="empty"):
        CurveExtrapolation(families=()).fit(np.ones((1, 5))).predict(np.ones((1, 5)))
    for w in ("inverse_variance", "equal"):
        assert CurveExtrapolation(weighting=w).fit(_pow3(0.9, 0.6, 0.8)[None, :20]).predict(_pow3(0.9, 0.6, 0.8)[None, :20])[0] == pytest.approx(
            _pow3(0.9, 0.6, 0.8)[-1], abs=3.0)


# ---------------------------------------------------------------------------------------------
# Affine ensemble
# ---------------------------------------------------------------------------------------------
def _reference_curves() -> np.ndarray:
    t = EPOCHS
    return np.stack([60 - 40 * np.exp(-t / 8), 30 + 20 * np.log(t) / np.log(200), 20 + 0.3 * t + 5 * np.sin(t / 3)])


def test_affine_ensemble_recovers_affine_images_exactly():
    ref = _reference_curves()
    m = AffineEnsemble().fit(ref)
    for j, (a, b) in enumerate([(1.3, 4.0), (0.5, 20.0), (2.0, -10.0)]):
        new = a * ref[j] + b
        for k in (3, 10, 50):
            assert m.predict(new[None, :k])[0] == pytest.approx(new[-1], abs=1e-6)
    # final values passed separately are mapped, not the curves' last column
    finals = np.array([70.0, 55.0, 90.0])
    m2 = AffineEnsemble(n_best=1).fit(ref, finals)
    assert m2.predict((2.0 * ref[1] + 1.0)[None, :20])[0] == pytest.approx(2.0 * 55.0 + 1.0, abs=1e-9)


def test_affine_ensemble_never_flips_a_reference():
    ref = _reference_curves()[:1]
    a, b, mse = AffineEnsemble().fit(ref).transforms(-ref[:, :10])
    assert a[0, 0] == 0.0 and b[0, 0] == pytest.approx(-ref[0, :10].mean())
    assert mse[0, 0] == pytest.approx(ref[0, :10].var())


# ---------------------------------------------------------------------------------------------
# SVR and cross-validation by arch
# ---------------------------------------------------------------------------------------------
def _synthetic(n: int = 160, seed: int = 0, k_total: int = 12):
    rng = np.random.default_rng(seed)
    archs = rng.choice(15625, size=n, replace=False)
    feats = nb201_arch_features([int(a) for a in archs])
    n_conv3 = feats[:, NB201_OPS.index("nor_conv_3x3")::5].sum(1)
    base = rng.uniform(30, 80, n)
    t = np.arange(1, k_total + 1)
    curves = base[:, None] * (1 - 0.5 * np.exp(-t / 3.0)) + rng.normal(0, 0.3, (n, k_total))
    final = 20.0 + 0.7 * curves[:, -1] + 3.0 * n_conv3 + rng.normal(0, 0.5, n)
    return curves, final, feats


def test_svr_generalises_a_linear_relation_to_unseen_archs():
    curves, final, feats = _synthetic()
    pred = cross_val_predict_by_arch(CurveSVR(C=10.0), curves, final, feats, k=5, seed=0, n_observed=8)
    assert spearmanr(pred, final)[0] > 0.95
    assert np.mean(np.abs(pred - final)) < 2.5
    # the arch features carry signal the curve alone does not
    no_arch = cross_val_predict_by_arch(CurveSVR(C=10.0), curves, final, None, k=5, seed=0, n_observed=8)
    assert np.mean(np.abs(pred - final)) < np.mean(np.abs(no_arch - final))


def test_svr_fits_one_model_per_observed_length_in_fit_only():
    curves, final, feats = _synthetic(60)
    m = CurveSVR().fit(curves, final, feats)
    assert sorted(m.models_) == list(range(2, curves.shape[1] + 1))
    before = {k: id(v) for k, v in m.models_.items()}
    m.predict(curves[:5, :4], feats[:5])
    m.predict(curves[:5, :7], feats[:5])
    assert {k: id(v) for k, v in m.models_.items()} == before  # predict changes no fitted state


class _Spy(CurvePredictor):
    """Records the arch ids (arch_features column 0) seen in fit and in predict, per fold."""

    learns_from_archs = True
    log: list = []

    def fit(self, curves, final=None, arch_features=None, beta=None):
        self.train_ids_ = set(np.asarray(arch_features)[:, 0].astype(int).tolist())
        return self

    def _predict(self, curves, arch_features=None, beta=None, losses=None):
        ids = np.asarray(arch_features)[:, 0].astype(int)
        _Spy.log.append((self.train_ids_, ids.tolist(), np.shape(curves)))
        return ids.astype(float)


def test_cross_val_never_fits_on_the_arch_it_predicts():
    _Spy.log = []
    n, t = 23, 9
    curves = np.random.default_rng(0).uniform(10, 90, (n, t))
    ids = np.arange(n)[:, None].astype(float)
    out = cross_val_predict_by_arch(_Spy(), curves, np.zeros(n), ids, k=4, seed=3, n_observed=5)
    np.testing.assert_array_equal(out, np.arange(n))  # each arch predicted once, in its own row
    assert len(_Spy.log) == 4
    seen = []
    for train, predicted, shape in _Spy.log:
        assert train.isdisjoint(predicted)
        assert train | set(predicted) == set(range(n))
        assert shape == (len(predicted), 5)
        seen += predicted
    assert sorted(seen) == list(range(n))


def test_cross_val_groups_keep_an_arch_out_of_its_own_training_set():
    _Spy.log = []
    n = 12
    groups = np.repeat(np.arange(4), 3)  # 3 rows (seeds) per arch
    ids = np.arange(n)[:, None].astype(float)
    cross_val_predict_by_arch(_Spy(), np.ones((n, 4)), np.zeros(n), ids, k=4, groups=groups)
    for train, predicted, _ in _Spy.log:
        assert {groups[i] for i in train}.isdisjoint({groups[i] for i in predicted})


def test_cross_val_is_seeded_and_matches_manual_folds_for_the_affine_ensemble():
    curves, final, _ = _synthetic(40, k_total=15)
    a = cross_val_predict_by_arch(AffineEnsemble(), curves, final, k=5, seed=1, n_observed=6)
    b = cross_val_predict_by_arch(AffineEnsemble(), curves, final, k=5, seed=1, n_observed=6)
    np.testing.assert_array_equal(a, b)
    assert np.all(np.isfinite(a))
    # leave-one-out by hand for one arch equals k = n
    loo = cross_val_predict_by_arch(AffineEnsemble(), curves, final, k=40, n_observed=6)
    keep = np.arange(40) != 7
    manual = AffineEnsemble().fit(curves[keep], final[keep]).predict(curves[7:8, :6])[0]
    assert loo[7] == pytest.approx(manual)


# ---------------------------------------------------------------------------------------------
# Error paths
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("make", [LastSeenValue, BestSeenValue, CurveExtrapolation, CurveSVR, AffineEnsemble])
def test_every_predictor_rejects_bad_curves(make):
    ref = np.linspace(10, 80, 40).reshape(4, 10)
    m = make().fit(ref, ref[:, -1])
    with pytest.raises(ValueError, match="at least 2"):
        m.predict(ref[:, :1])
    with pytest.raises(ValueError, match="NaN"):
        bad = ref[:, :5].copy()
        bad[1, 2] = np.nan
        m.predict(bad)
    with pytest.raises(ValueError, match="2-d"):
        m.predict(ref[0, :5])
    with pytest.raises(ValueError, match="NaN"):
        make().fit(np.where(ref > 70, np.inf, ref))
    with pytest.raises(ValueError, match="final"):
        make().fit(ref, ref[:3, -1])


def test_learned_predictors_check_shapes_against_fit():
    curves, final, feats = _synthetic(20)
    svr = CurveSVR().fit(curves, final, feats)
    with pytest.raises(ValueError, match="reference curves have only"):
        svr.predict(np.ones((2, 13)), feats[:2])
    with pytest.raises(ValueError, match="exactly when"):
        svr.predict(curves[:2, :5])
    with pytest.raises(ValueError, match="columns"):
        svr.predict(curves[:2, :5], feats[:2, :10])
    with pytest.raises(ValueError, match="arch_features"):
        svr.predict(curves[:2, :5], feats[:3])
    with pytest.raises(ValueError, match="arch_features"):
        CurveSVR().fit(curves, final, feats[:5])
    for make in (CurveSVR, AffineEnsemble, LastSeenValue, CurveExtrapolation):
        with pytest.raises(NotFittedError):
            make().predict(curves)
    with pytest.raises(ValueError, match="reference curves have only"):
        AffineEnsemble().fit(curves).predict(np.ones((1, 13)))
    with pytest.raises(ValueError, match="n_best"):
        AffineEnsemble(n_best=0).fit(curves).predict(curves[:, :4])


def test_cross_val_bad_input():
    curves, final, feats = _synthetic(20)
    with pytest.raises(ValueError, match="folds"):
        cross_val_predict_by_arch(AffineEnsemble(), curves, final, k=1)
    with pytest.raises(ValueError, match="folds"):
        cross_val_predict_by_arch(AffineEnsemble(), curves, final, k=21)
    with pytest.raises(ValueError, match="n_observed"):
        cross_val_predict_by_arch(AffineEnsemble(), curves, final, n_observed=1)
    with pytest.raises(ValueError, match="n_observed"):
        cross_val_predict_by_arch(AffineEnsemble(), curves, final, n_observed=13)
    with pytest.raises(ValueError, match="final"):
        cross_val_predict_by_arch(AffineEnsemble(), curves, final[:-1])
    with pytest.raises(ValueError, match="final"):
        cross_val_predict_by_arch(AffineEnsemble(), curves, np.where(final > 50, np.nan, final))
    with pytest.raises(ValueError, match="arch_features"):
        cross_val_predict_by_arch(CurveSVR(), curves, final, feats[:-1])
    with pytest.raises(ValueError, match="groups"):
        cross_val_predict_by_arch(CurveSVR(), curves, final, feats, groups=np.zeros(3))


# ---------------------------------------------------------------------------------------------
# The benchmark's own curves (skipped without ../shared/data)
# ---------------------------------------------------------------------------------------------
def test_last_seen_value_on_nb201_curves_matches_the_data_readme(shared_data):
    from nasbeff.tables.ground_truth import LearningCurves, NB201Table

    lc = LearningCurves(shared_data / "nb201" / "nb201_c10valid_curves_first200archs.csv")
    v = lc.valid()
    test = NB201Table(shared_data / "nb201" / "nb201_ground_truth.csv").column("c10_test", lc.indices)
    assert spearmanr(LastSeenValue().fit(v).predict(v[:, :5]), test)[0] == pytest.approx(0.63, abs=0.01)
    assert spearmanr(LastSeenValue().fit(v).predict(v[:, :10]), test)[0] == pytest.approx(0.71, abs=0.01)
