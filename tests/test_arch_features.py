"""Architecture features and the feature-based predictor (issue 25, first part), by hand."""

from __future__ import annotations

import numpy as np
import pytest

from nasbeff.predictors import ArchPredictor, arch_features, graf_features, onehot_features
from nasbeff.predictors.arch_features import graf_names
from nasbeff.spaces import index_to_str

# arch 6111: (0,1) 3x3, (0,2) 3x3, (1,2) 3x3, (0,3) skip, (1,3) 3x3, (2,3) 1x1
ARCH = "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_1x1~2|"


def test_graf_features_of_one_arch_by_hand():
    assert index_to_str(6111) == ARCH
    f = dict(zip(graf_names(), graf_features(ARCH)))
    assert len(f) == 44
    assert [f[f"count_{o}"] for o in ("none", "skip_connect", "nor_conv_1x1", "nor_conv_3x3", "avg_pool_3x3")] == \
        [0, 1, 1, 4, 0]
    # paths 0-3 (skip), 0-1-3 (3x3, 3x3), 0-2-3 (3x3, 1x1), 0-1-2-3 (3x3, 3x3, 1x1)
    assert (f["paths_any"], f["min_path_any"], f["max_path_any"]) == (4, 1, 3)
    assert (f["paths_nor_conv_3x3"], f["min_path_nor_conv_3x3"], f["max_path_nor_conv_3x3"]) == (1, 2, 2)
    assert (f["paths_skip_connect"], f["min_path_skip_connect"]) == (1, 1)
    assert f["paths_nor_conv_1x1"] == f["min_path_nor_conv_1x1"] == 0
    assert f["in_deg_n2_nor_conv_3x3"] == 2 and f["in_deg_n3_skip_connect"] == 1
    assert f["out_deg_n0_nor_conv_3x3"] == 2 and f["out_deg_n2_nor_conv_1x1"] == 1


def test_a_cut_off_cell_has_no_live_path():
    f = dict(zip(graf_names(), graf_features("|none~0|+|none~0|none~1|+|none~0|none~1|none~2|")))
    assert f["count_none"] == 6 and f["paths_any"] == 0 and f["max_path_any"] == 0


def test_onehot_and_the_feature_sets():
    x = onehot_features(ARCH)
    assert x.shape == (30,) and x.sum() == 6 and x[3] == 1  # edge (0,1) is nor_conv_3x3 (op 3)
    X, names = arch_features([0, ARCH, 6111], "graf")
    assert X.shape == (3, 44) and np.array_equal(X[1], X[2]) and len(names) == 44
    with pytest.raises(ValueError, match="unknown feature set 'path'"):
        arch_features([0], "path")


def test_predictor_learns_a_function_of_the_features():
    archs = list(range(0, 15625, 37))
    y = np.array([graf_features(a)[3] + 0.5 * graf_features(a)[17] for a in archs])  # conv3x3 count + live paths
    pred = ArchPredictor("graf", "rf", n_estimators=50).fit(archs[:300], y[:300])
    got = pred.predict(archs[300:])
    assert np.corrcoef(got, y[300:])[0, 1] > 0.95
    assert pred.feature_importances_.shape == (44,)
    extra = np.arange(len(archs), dtype=float)
    with_extra = ArchPredictor("onehot", "gbt").fit(archs[:300], y[:300], extra=extra[:300])
    assert with_extra.predict(archs[300:], extra=extra[300:]).shape == (len(archs) - 300,)
    with pytest.raises(ValueError, match="fitted on 31 features, got 30"):
        with_extra.predict(archs[300:])
    with pytest.raises(ValueError, match="not fitted"):
        ArchPredictor().predict(archs[:3])
    with pytest.raises(ValueError, match="one target per arch"):
        ArchPredictor().fit(archs[:3], y[:2])


def test_predict_run_and_command(tmp_path, shared_data):
    import csv

    from typer.testing import CliRunner

    from nasbeff.cli import app
    from nasbeff.runs.predict import PredictConfig, run_predict

    scores = tmp_path / "s.csv"
    with open(scores, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["index", "meco"])
        w.writerows([[i, float(i % 7)] for i in range(0, 60)])
    cfg = PredictConfig(train=tuple(range(40)), archs=tuple(range(30, 60)), train_size=20, seed=1, shared=shared_data,
                        scores=scores, score_columns=("meco",), out=tmp_path / "p.csv")
    res = run_predict(cfg)
    assert len(res.train) == 20 and set(res.train) <= set(range(40))
    assert [r["index"] for r in res.rows] == list(range(30, 60))
    assert "meco" in res.importances and len(res.importances) == 45
    assert sum(r["in_training"] for r in res.rows) == len(set(res.train) & set(range(30, 60)))
    with pytest.raises(ValueError, match="--train-size 50 is larger than the 40 archs of --train-archs"):
        PredictConfig(train=tuple(range(40)), archs=(1,), train_size=50, shared=shared_data, out=tmp_path / "q.csv")
    with pytest.raises(ValueError, match="--truth 'c10_bogus' is not a column"):
        PredictConfig(train=(1, 2), archs=(3,), truth="c10_bogus", shared=shared_data, out=tmp_path / "q.csv")
    with pytest.raises(ValueError, match="--score-columns needs --scores"):
        PredictConfig(train=(1, 2), archs=(3,), score_columns=("meco",), shared=shared_data, out=tmp_path / "q.csv")
    out = CliRunner().invoke(app, ["predict", "--train-archs", "0-99", "--archs", "100-199", "--shared",
                                   str(shared_data), "--out", str(tmp_path / "c.csv")])
    assert out.exit_code == 0 and "held-out archs: 100" in out.output, out.output
