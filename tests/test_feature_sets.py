"""The feature interface a space provides (issue 25 point 1) and the predictor's edge checks (point 2),
by hand on tiny cases."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch.utils.flop_counter import FlopCounterMode

from nasbeff.predictors import (
    ArchPredictor,
    FeatureMap,
    arch_features,
    feature_map,
    feature_sets,
    size_features,
)
from nasbeff.spaces import (
    NATS_SIZE_CELL,
    build_nats_size_model,
    build_nb201_model,
    count_cell_network_flops,
    nb201_channels,
    size_str_to_index,
)


def test_each_space_provides_its_feature_sets():
    assert feature_sets("nb201") == feature_sets("tss") == ("graf", "onehot")
    assert feature_sets("nats-size") == feature_sets("sss") == ("size",)
    assert set(feature_sets()) == {"graf", "onehot", "size"}
    fm = feature_map("size")
    assert isinstance(fm, FeatureMap) and fm.space == "nats-size"
    assert fm.names == ("channels_0", "channels_1", "channels_2", "channels_3", "channels_4", "params_m", "flops_m")
    with pytest.raises(ValueError, match=r"unknown feature set 'path'; choose from graf \(nb201\), onehot \(nb201\), "
                                         r"size \(nats-size\)"):
        feature_map("path")
    with pytest.raises(ValueError, match="unknown search space 'nb101'"):
        feature_sets("nb101")


def test_size_features_by_hand():
    # 8:8:8:8:8 at 32 px, 10 classes. Params: stem 9*3*8 + 16 = 232; a cell has five 3x3 ReLU-conv-BN
    # edges (9*64 + 16 = 592 each) and an identity skip: 2960; a reduction 9*64 + 9*64 + 64 + 32 = 1248;
    # head BN 16 + Linear 80 + 10. 232 + 3*2960 + 2*1248 + 106 = 11,714.
    # FLOPs (2 per multiply-add): stem 2*27*8*1024 = 442,368; cells 5 * 2*576 * (1024, 256, 64) =
    # 5,898,240 + 1,474,560 + 368,640; reductions 2*(576+576+64) * (256, 64) = 622,592 + 155,648;
    # head 2*8*10 = 160. Total 8,962,208.
    x = size_features("8:8:8:8:8")
    assert np.allclose(x, [8, 8, 8, 8, 8, 11714 / 1e6, 8962208 / 1e6], rtol=0, atol=1e-12)
    assert np.array_equal(size_features(0), x) and np.array_equal(size_features((8, 8, 8, 8, 8)), x)
    net = build_nats_size_model("8:8:8:8:8")
    assert sum(p.numel() for p in net.parameters()) == 11714
    X, names = arch_features(["8:8:8:8:8", size_str_to_index("64:8:16:40:24")], "size")
    assert X.shape == (2, 7) and names[-1] == "flops_m" and X[1, :5].tolist() == [64, 8, 16, 40, 24]
    with pytest.raises(ValueError, match="not one of"):
        size_features("8:8:8:8:9")


@pytest.mark.parametrize("case", ["nb201 6111", "nb201 9 C8 N1", "size 64:8:16:40:24"])
def test_closed_form_flops_equal_torchs_counter(case):
    """The closed form counts what the ``flops`` proxy counts (torch's FlopCounterMode, one 32 px image)."""
    kind, arch, *rest = case.split()
    if kind == "nb201":
        C, N = (8, 1) if rest else (16, 5)
        net, channels = build_nb201_model(int(arch), C=C, N=N), nb201_channels(C, N)
        cell = int(arch)
    else:
        net, channels, cell = build_nats_size_model(arch), [int(c) for c in arch.split(":")], NATS_SIZE_CELL
    counter = FlopCounterMode(display=False)
    with torch.no_grad(), counter:
        net.eval()(torch.zeros(1, 3, 32, 32))
    assert count_cell_network_flops(channels, cell) == counter.get_total_flops()
    with pytest.raises(ValueError, match="multiple of 4"):
        count_cell_network_flops(channels, cell, resolution=30)


def test_fitted_attributes_exist_only_after_fit():
    archs = list(range(0, 15625, 97))
    y = np.array([arch_features([a], "graf")[0][0, 3] for a in archs])  # the conv3x3 count
    pred = ArchPredictor("graf", "rf", n_estimators=20)
    for attr in ("estimator_", "n_features_in_", "feature_names_in_", "feature_importances_"):
        assert not hasattr(pred, attr)
    pred.fit(archs, y, extra=np.ones(len(archs)), extra_names=["meco"])
    assert pred.n_features_in_ == 45 and pred.feature_names_in_[-1] == "meco"
    assert pred.feature_names_in_[0] == "count_none"
    imp = pred.feature_importances_
    assert imp.shape == (45,) and np.isclose(imp.sum(), 1.0)
    assert pred.feature_names_in_[imp.argmax()] == "count_nor_conv_3x3"
    gbt = ArchPredictor("onehot", "gbt", n_estimators=10).fit(archs, y)
    assert not hasattr(gbt, "feature_importances_")  # rf only
    assert list(gbt.feature_names_in_[:2]) == ["edge01_none", "edge01_skip_connect"]


def test_a_predictor_on_extra_columns_alone_and_on_nats_size_archs():
    rng = np.random.default_rng(0)
    z = rng.normal(size=(60, 2))
    y = 3 * z[:, 0] - z[:, 1]
    only = ArchPredictor(None, "rf", n_estimators=50).fit(range(40), y[:40], extra=z[:40], extra_names=["a", "b"])
    assert list(only.feature_names_in_) == ["a", "b"]
    assert np.corrcoef(only.predict(range(40, 60), extra=z[40:]), y[40:])[0, 1] > 0.8
    with pytest.raises(ValueError, match="features=None predicts from the extra columns alone"):
        ArchPredictor(None).fit(range(3), [1.0, 2.0, 3.0])
    sizes = list(range(0, 32768, 331))
    flops = arch_features(sizes, "size")[0][:, -1]
    pred = ArchPredictor("size", n_estimators=30).fit(sizes[::2], flops[::2])  # interleaved: every width seen
    assert np.corrcoef(pred.predict(sizes[1::2]), flops[1::2])[0, 1] > 0.9


@pytest.mark.parametrize(
    "kwargs, fit_args, message",
    [
        ({"features": "path"}, {}, "unknown feature set 'path'"),
        ({"model": "svm"}, {}, "unknown model 'svm'; choose rf or gbt"),
        ({"n_estimators": 0}, {}, "n_estimators must be >= 1, got 0"),
        ({}, {"y": [1.0, 2.0]}, "need one target per arch and at least 2 archs, got 3 archs"),
        ({}, {"y": [[1.0], [2.0], [3.0]]}, "need one target per arch"),
        ({}, {"y": [1.0, float("nan"), 3.0]}, "targets must be finite; 1 are NaN or infinite"),
        ({}, {"extra": np.ones((2, 1))}, r"extra must have one row per arch: got shape \(2, 1\) for 3 archs"),
        ({}, {"extra": np.ones((3, 1, 1))}, r"extra must have one row per arch: got shape \(3, 1, 1\)"),
        ({}, {"extra": [[1.0], [-np.inf], [2.0]]}, "model='rf' needs finite values"),
        ({}, {"extra": np.ones((3, 2)), "extra_names": ["a"]}, "extra_names has 1 names for 2 extra columns"),
    ],
)
def test_fit_checks_its_inputs_with_one_clear_message(kwargs, fit_args, message):
    args = {"archs": [0, 1, 2], "y": [1.0, 2.0, 3.0], **fit_args}
    with pytest.raises(ValueError, match=message):
        ArchPredictor(**kwargs).fit(**args)


def test_gbt_takes_missing_extra_values_and_predict_checks_the_width():
    archs, y = list(range(30)), np.arange(30, dtype=float)
    extra = np.where(np.arange(30) % 5 == 0, np.nan, np.arange(30.0))
    pred = ArchPredictor("graf", "gbt", n_estimators=5).fit(archs, y, extra=extra)
    assert pred.predict(archs[:4], extra=extra[:4]).shape == (4,)
    with pytest.raises(ValueError, match="fitted on 45 features, got 46"):
        pred.predict(archs[:4], extra=np.ones((4, 2)))
    with pytest.raises(ValueError, match="not fitted"):
        ArchPredictor().predict(archs[:2])
