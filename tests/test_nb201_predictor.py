"""experiments/nb201_predictor (issue 25 part 3): the splits of its config, the -inf filling, one fit and
score, the report on made-up rows, and a two-seed run of every task on the real tables."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import numpy as np
import pytest

HERE = Path(__file__).resolve().parents[1] / "experiments" / "nb201_predictor"


def _load(name: str, module_name: str):
    """Import ``experiments/nb201_predictor/<name>.py`` as ``module_name`` (run.py imports
    ``predictor_common`` by that name)."""
    spec = importlib.util.spec_from_file_location(module_name, HERE / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module
    spec.loader.exec_module(module)
    return module


common = _load("predictor_common", "predictor_common")
run = _load("run", "nb201_predictor_run")


def test_the_config_fixes_disjoint_test_sets_and_pools():
    cfg = common.load_config()
    sp = common.splits(cfg)
    assert len(sp.sample) == 3000 and len(sp.test) == 1000 and len(sp.protocol_test) == 50
    assert set(sp.test) <= set(sp.sample) and min(sp.sample) >= 200  # dev archs 0..199 are never in them
    for test in (sp.test, sp.protocol_test):
        for pool in (sp.pool, sp.protocol_pool):
            assert not set(test) & set(pool)
    assert len(sp.pool) == 2000 - len(set(sp.protocol_test) & (set(sp.sample) - set(sp.test)))
    assert cfg["k"] == [16, 32, 64, 128, 256, 1024] and cfg["seeds"] >= 20
    assert max(cfg["k"]) <= len(sp.pool)
    assert set(cfg["model"]["proxy_columns"]) <= set(common.PROXY_COLUMNS)


def test_fill_nonfinite_puts_every_missing_value_below_the_training_minimum():
    train = np.array([[1.0, -np.inf], [3.0, 5.0], [-np.inf, 2.0], [np.nan, np.inf]])
    test = np.array([[-np.inf, np.nan], [0.5, 7.0]])
    got_train, got_test = common.fill_nonfinite(train, test)
    # column 0: finite training min 1 -> fill 0; column 1: min 2 -> fill 1 (+inf too: "cannot be scored")
    assert got_train.tolist() == [[1.0, 1.0], [3.0, 5.0], [0.0, 2.0], [0.0, 1.0]]
    assert got_test.tolist() == [[0.0, 1.0], [0.5, 7.0]]
    assert np.isinf(train[0, 1])  # the inputs are not changed
    assert common.fill_nonfinite(np.array([[np.nan]]))[0].tolist() == [[0.0]]


def test_fit_score_of_a_proxies_only_set_and_a_graf_set():
    archs = list(range(0, 15625, 61))
    rng = np.random.default_rng(0)
    proxy = rng.normal(size=(len(archs), 2))
    y = proxy[:, 0] + 0.1 * rng.normal(size=len(archs))
    proxy[3, 0] = -np.inf
    model = {"model": "rf", "n_estimators": 30, "max_features": 1.0}
    train, test = archs[:150], archs[150:]
    sc = common.fit_score("proxies", model, 0, train, y[:150], test, y[150:], proxy[:150], proxy[150:], ["a", "b"])
    assert sc.spearman > 0.8 and sc.n_test == len(test) and sc.names == ["a", "b"]
    assert sc.importances[0] > sc.importances[1]
    sc = common.fit_score("graf+proxies", model, 0, train, y[:150], test, y[150:], proxy[:150], proxy[150:], ["a", "b"])
    assert len(sc.names) == 46 and sc.names[-2:] == ["a", "b"] and sc.spearman > 0.7
    gbt = {"model": "gbt", "n_estimators": 10}
    assert common.fit_score("onehot", gbt, 0, train, y[:150], test, y[150:]).importances is None


def _rows():
    rows = []
    for fs, base in (("graf", 0.80), ("graf+proxies", 0.90)):
        for k in (16, 128):
            for s in range(5):
                rows.append({"feature_set": fs, "dataset": "c10_test", "test_set": "sample_test", "k": k, "seed": s,
                             "spearman": base + 0.01 * s, "kendall": base - 0.2, "n_test": 1000,
                             "n_pool": 1993})
    return rows


def test_report_gives_medians_paired_differences_and_the_target_line():
    cfg = {"k": [16, 128], "model": {"model": "rf", "proxy_columns": ["meco"] * 11}}
    names = ["count_none", "meco"]
    imps = {("sample_test", "c10_test", "graf+proxies", 128): [(names, np.array([0.2, 0.8]))] * 5}
    md = run.report(_rows(), imps, cfg, wall=12.0, cpu=10.0)
    assert "graf+proxies median Spearman ≥ 0.92: target met" in md  # median of 0.90..0.94
    assert "| graf+proxies − graf | +0.100 [" in md
    assert "| meco | 0.800 |" in md and "12 s wall, 10 s CPU" in md
    assert "| ours, GRAF + 11 proxies, random forest | 128 | 0.70 / 0.92 | — | — |" in md


@pytest.mark.slow
def test_a_two_seed_run_of_every_task(shared_data, monkeypatch):
    monkeypatch.setenv("NASBEFF_SHARED_DATA", str(shared_data))
    cfg = common.load_config()
    cfg["k"] = [16]
    cfg["protocol"]["k"] = [16]
    cfg["model"] = {**cfg["model"], "n_estimators": 10}
    rows, imps = run.run(cfg, seeds=2)
    cells = {(r["test_set"], r["dataset"], r["feature_set"]) for r in rows}
    assert len(rows) == 2 * len(cells) == 2 * 19
    assert ("sample_test", "in16_test", "graf+proxies_c10img") in cells
    assert ("protocol_test", "c10_test", "graf+proxies+beff") in cells
    by = {(r["test_set"], r["dataset"], r["feature_set"], r["seed"]): r for r in rows}
    assert by[("sample_test", "c10_test", "graf", 0)]["n_test"] == 1000
    assert by[("protocol_test", "c10_test", "graf", 0)]["n_test"] == 50
    n_c100 = by[("sample_test_c100img", "c100_test", "proxies", 0)]["n_test"]
    assert 300 < n_c100 < 400
    assert all(-1 <= r["spearman"] <= 1 for r in rows)
    assert by[("sample_test", "c10_test", "graf+proxies", 0)]["spearman"] > 0.5
    names, importance = imps[("sample_test", "c10_test", "graf+proxies", 16)][0]
    assert len(names) == 44 + len(cfg["model"]["proxy_columns"]) == len(importance) and names[-1] == "zen"


def test_median_interval_by_hand():
    from nasbeff.evaluation import median_interval

    m, (lo, hi) = median_interval([0.9, 0.9, 0.9])
    assert m == lo == hi == 0.9
    m, (lo, hi) = median_interval([1.0, 2.0, 3.0, 4.0, 5.0], n_boot=4000)
    # a resample's median is 1 when >= 3 of its 5 draws are 1: P = 10(.2^3)(.8^2) + 5(.2^4)(.8) + .2^5 = 0.058
    # > 0.025, so the 2.5 % quantile of the resampled medians is 1 (and 5 by symmetry)
    assert m == 3.0 and (lo, hi) == (1.0, 5.0)
    with pytest.raises(ValueError, match="at least 2 finite values"):
        median_interval([1.0])
    with pytest.raises(ValueError, match="at least 2 finite values"):
        median_interval([1.0, float("nan")])


def test_tasks_follow_the_config_and_refuse_own_image_proxies_that_do_not_exist():
    cfg = common.load_config()
    tasks = run.build_tasks(cfg)
    assert len(tasks) == 19
    c100img = [t for t in tasks if t.test_set == "sample_test_c100img"]
    assert all(max(t.test) <= cfg["proxies"]["cifar100_max_index"] and 1024 not in t.ks for t in c100img)
    own = next(t for t in c100img if t.feature_set == "graf+proxies")
    c10img = next(t for t in c100img if t.feature_set == "graf+proxies_c10img")
    i = own.test[0]
    assert not np.array_equal(own.extra[i], c10img.extra[i])  # CIFAR-100 images vs CIFAR-10 images
    cfg["feature_sets"]["sample_test"]["in16_test"] = ["proxies"]
    with pytest.raises(ValueError, match="sample_test/in16_test: no proxies of its own images; use proxies_c10img"):
        run.build_tasks(cfg)
