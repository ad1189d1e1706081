"""Predictor-guided search (issue 25, part 4): determinism, budget rule, charged features, that it
learns a trivially learnable score faster than random search, its CLI name and its errors."""

from __future__ import annotations

import csv
import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from nasbeff.cli import app
from nasbeff.optimizers import (
    METHODS,
    PredictorGuided,
    RandomSearch,
    as_scorer,
    make_optimizer,
)
from nasbeff.runs.search import SearchConfig
from nasbeff.spaces import NATSSizeSpace, NB201Space
from nasbeff.spaces.nb201 import NB201_NUM_ARCHS, NB201_OPS, NB201Arch, index_to_arch
from nasbeff.tables.ground_truth import shared_data_dir

N = NB201_NUM_ARCHS
CHEAP = Path(__file__).resolve().parents[1] / "benchmarks_data" / "nb201_cifar10_proxies_cheap_15625.csv"
CONV3 = NB201_OPS.index("nor_conv_3x3")
OPTIMUM = NB201Arch(("nor_conv_3x3",) * 6).index


@pytest.fixture(scope="module")
def learnable():
    """Score = number of 3x3 convolutions (+ a small per-arch jitter), 100 s per evaluation: GRAF's
    op counts learn it from a few labels; the optimum is the all-3x3 cell."""
    conv3 = np.array([sum(o == CONV3 for o in index_to_arch(i).op_ids) for i in range(N)], dtype=float)
    jitter = np.random.default_rng(0).uniform(0, 0.1, N)
    jitter[OPTIMUM] = 0.2
    return as_scorer("learnable", conv3 + jitter, 100.0)


def _evaluations_to_optimum(traj) -> int:
    hits = np.flatnonzero(traj.indices == OPTIMUM)
    return int(hits[0]) + 1 if hits.size else 10**6


def test_same_seed_same_run_and_no_repeats(learnable):
    opt = PredictorGuided(learnable, initial=5, candidates=40, per_round=4, n_estimators=5)
    a, b, c = opt.run(3000.0, 7), opt.run(3000.0, 7), opt.run(3000.0, 8)
    assert np.array_equal(a.indices, b.indices) and np.array_equal(a.best, b.best)
    assert not np.array_equal(a.indices, c.indices)
    assert a.method == "predictor" and a.evaluations == 30 == a.unique_evaluations  # never re-evaluates


def test_budget_rule_and_prefix(learnable):
    opt = PredictorGuided(learnable, initial=5, candidates=40, per_round=4, n_estimators=5)
    long = opt.run(2550.0, 3)
    assert long.total_cost <= 2550.0 and long.evaluations == 25
    short = opt.run(1250.0, 3)
    cut = long.truncate(1250.0)
    assert np.array_equal(short.indices, cut.indices) and np.array_equal(short.costs, cut.costs)
    assert opt.run(99.0, 3).evaluations == 0  # not even one evaluation fits


def test_beats_random_on_a_learnable_score(learnable):
    seeds = range(5)
    pred = [_evaluations_to_optimum(t) for t in
            (PredictorGuided(learnable, n_estimators=10).run(8000.0, s) for s in seeds)]
    rand = [_evaluations_to_optimum(t) for t in (RandomSearch(learnable).run(8000.0, s) for s in seeds)]
    assert np.median(pred) <= 60 and all(p < r for p, r in zip(pred, rand))


def test_extra_features_are_charged_once_per_arch(learnable):
    calls = []

    def proxy(i: int) -> tuple[float, float]:
        calls.append(i)
        return float(index_to_arch(i).op_ids.count(CONV3)), 2.0

    feature = as_scorer("proxy", proxy)  # a live scorer charged the 2 s it reports
    opt = PredictorGuided(learnable, initial=5, candidates=20, per_round=5, n_estimators=5, features=[feature])
    t = opt.run(3000.0, 0)
    warm = t.indices[t.stage == 0]
    assert len(warm) == len(np.unique(warm)) > 20  # every candidate's features, each arch once
    assert set(t.indices[t.stage == 1].tolist()) <= set(warm.tolist())
    assert t.total_cost == pytest.approx(100.0 * (t.stage == 1).sum() + 2.0 * len(warm))
    assert opt.feature_name == "features:proxy" == t.warmup_scorer and t.best_index in t.indices[t.stage == 1]


def test_registered_and_errors(learnable):
    assert METHODS["predictor"] is PredictorGuided
    assert isinstance(make_optimizer("predictor", learnable, n_estimators=3), PredictorGuided)
    with pytest.raises(ValueError, match="predictor"):
        make_optimizer("bananas", learnable)
    for kw, msg in (({"initial": 1}, "initial"), ({"candidates": 0}, "candidates"), ({"per_round": 0}, "per_round"),
                    ({"per_round": 10, "candidates": 5}, "<= candidates"), ({"n_estimators": 2.5}, "n_estimators")):
        with pytest.raises(ValueError, match=msg):
            PredictorGuided(learnable, **kw)
    with pytest.raises(ValueError, match="NB201"):
        PredictorGuided(as_scorer("s", np.zeros(NATSSizeSpace.size), 1.0, space=NATSSizeSpace()),
                        space=NATSSizeSpace())
    assert isinstance(PredictorGuided(learnable, space=NB201Space()).space, NB201Space)


def test_search_config_method(tmp_path):
    assert SearchConfig(methods="predictor,rea", out=tmp_path / "s.csv").methods == ("predictor", "rea")
    with pytest.raises(ValueError, match="nb201"):
        SearchConfig(methods="predictor", space="nats-size", out=tmp_path / "s.csv")
    cfg = SearchConfig(methods="predictor", predictor_features="meco, flops", pool_csv=CHEAP, out=tmp_path / "s.csv")
    assert cfg.predictor_features == ("meco", "flops") and cfg.needs_pool_csv
    with pytest.raises(ValueError, match="needs --method predictor"):
        SearchConfig(methods="rea", predictor_features="meco", pool_csv=CHEAP, out=tmp_path / "s.csv")
    with pytest.raises(FileNotFoundError, match="pool-csv"):
        SearchConfig(methods="predictor", predictor_features="meco", pool_csv=tmp_path / "no.csv",
                     out=tmp_path / "s.csv")


def _has_ground_truth() -> bool:
    d = shared_data_dir()
    return d is not None and (d / "nb201" / "nb201_ground_truth.csv").is_file()


@pytest.mark.skipif(not _has_ground_truth(), reason="needs the NB201 ground truth (shared data)")
def test_cli_search_method_predictor(tmp_path):
    out = tmp_path / "s.csv"
    res = CliRunner().invoke(app, ["search", "--method", "predictor", "--dataset", "cifar100", "--report-datasets",
                                   "all", "--seeds", "2", "--budget", "3000", "--points", "2", "--out", str(out),
                                   "--pool-csv", str(CHEAP), "--predictor-features", "meco,flops"])
    assert res.exit_code == 0, res.output
    with open(out, newline="") as f:
        rows = list(csv.DictReader(f))
    assert {r["method"] for r in rows} == {"predictor"} and "best_in16_test" in rows[0]
    assert {r["warmup_scorer"] for r in rows} == {"features:meco+flops"}
    assert all(40 < float(r["best_test_acc"]) < 74 for r in rows if r["best_test_acc"])


def _run_datasets():
    path = Path(__file__).resolve().parents[1] / "experiments" / "nb201_search" / "run_datasets.py"
    spec = importlib.util.spec_from_file_location("nb201_search_run_datasets", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _search_csv_row(dataset: str | None, method: str, seed: int, acc: float, warm: str = "") -> dict:
    row = {"method": method, "scorer": "benchmark", "warmup_scorer": warm, "seed": str(seed), "budget_s": "4000",
           "evaluations": "30", "best_index": str(seed), "best_arch_str": "a", "best_test_acc": f"{acc:.4f}"}
    return row if dataset is None else {"dataset": dataset, **row}


def test_search_csv_rows_by_dataset(tmp_path):
    run = _run_datasets()
    old_file = tmp_path / "old.csv"  # written before the dataset column existed: CIFAR-10's rows
    old_file.write_text("method,scorer,seed,budget_s,evaluations,best_index,best_arch_str,best_test_acc\n"
                        "rea,benchmark,0,4000,30,0,a,93.0000\nwarmup_rea,benchmark,0,4000,1030,5,b,93.5000\n")
    old = run.read_search_rows(old_file)
    assert [(r["dataset"], r["warmup_scorer"]) for r in old] == [("cifar10", ""), ("cifar10", "naswot_v1")]
    new = [_search_csv_row("cifar100", "rea", s, 70.0 + s) for s in range(2)] + [_search_csv_row("cifar10", "rea", 0, 93)]
    rows = run.merge(old, new)
    assert rows == old[1:] + new  # the CIFAR-10 REA rows are replaced, the warm-up rows kept
    assert run.by_seed(rows, ("cifar100", "rea", "benchmark", ""), 4000.0) == {0: 70.0, 1: 71.0}
    assert run.reproduced(old, new) == [("cifar10 / REA: 1 of 1 (seed, budget) rows choose the same arch as the "
                                        "rows the file had")]
    cfg = json.loads((Path(run.__file__).parent / "datasets_config.json").read_text())
    assert run.configurations(cfg, "cifar100")[-3:] == [("warmup_rea", "rank:meco@whole_space_c10"), ("predictor", ""),
                                                        ("predictor", "features:flops+synflow+meco")]
    assert run.entry(cfg, "warmup_rea", "rank:meco@whole_space_c10")["warmup_scorer"] == "rank:meco"
    assert "transfer" in run.label("warmup_rea", "rank:meco@whole_space_c10", "cifar100")
    assert run.label("predictor", "features:flops+meco", "cifar10").endswith("proxies flops, meco)")


def test_report_groups_search_rows_by_dataset(tmp_path):
    from nasbeff.runs.report import _search_groups

    path = tmp_path / "s.csv"
    rows = [_search_csv_row(d, "rea", 0, 90.0) for d in ("cifar10", "cifar100")]
    with open(path, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    assert set(_search_groups(path)) == {"rea+benchmark", "rea+benchmark [cifar100]"}
