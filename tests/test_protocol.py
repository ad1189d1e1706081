"""Issue 10: protocol knobs, beta_eff at evenly spaced steps with its parts, batch-statistics
features, TSE columns from the store, predictor variants, pre-registration, committed-CSV resume."""

from __future__ import annotations

import csv
import math
import subprocess
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from nasbeff.cli import app
from nasbeff.predictors import beta_transform, fit_beta_curve
from nasbeff.training.prereg import committed_blob, draw_test_sample, load_test_config, make_test_config
from nasbeff.training.protocols import PROTOCOLS, study_config
from nasbeff.store import ResultStore
from nasbeff.training.nb201_study import (BetaVariant, StudyConfig, load_study_data, point_steps, run_key, summarize,
                           summarize_curve, train_arch)
from nasbeff.training.loop import EarlyTrainer, TrainConfig

TINY = dict(epochs=3, train_size=30, valid_size=20, batch_size=10, beta_samples=16, init_channels=4, cells=1)


pytestmark = pytest.mark.usefixtures("one_torch_thread")


# -- configuration ---------------------------------------------------------------------------
@pytest.mark.parametrize("kw, msg", [
    ({"resolution": 64}, "--resolution 64 must lie in 4..32"),
    ({"resolution": 2}, "--resolution 2 must lie in 4..32"),
    ({"init_channels": 0}, "--init-channels must be >= 1, got 0"),
    ({"cells": 0}, "--cells must be >= 1, got 0"),
    ({"beta_bn": "train"}, "--beta-bn must be one of eval, batch"),
    ({"beta_points": 10}, "--beta-points 10 must lie in 0..9"),
    ({"train_size": 30_000}, "--train-size 30000 is not in 1..25,000"),
    ({"beta_samples": 31}, "--beta-samples 31 must lie in 1..--train-size (30)"),
])
def test_bad_study_values_fail_in_one_line_before_any_work(kw, msg):
    with pytest.raises(ValueError) as e:
        StudyConfig(**{**TINY, **kw})
    assert msg in str(e.value) and "\n" not in str(e.value)


def test_new_fields_keep_earlier_hashes_and_round_trip():
    assert StudyConfig().hash == "6251fcfe494fa58e"  # main's hash before the knobs existed
    earlier = StudyConfig(epochs=3, train_size=30, valid_size=20, batch_size=10, beta_samples=16)
    assert earlier.hash == "c6339a9045ae1495"
    cfg = StudyConfig(**TINY, resolution=16, beta_points=4, beta_bn="batch")
    assert cfg.hash != StudyConfig(**TINY).hash and StudyConfig.from_dict(cfg.to_dict()) == cfg
    with pytest.raises(ValueError, match="unknown study setting"):
        StudyConfig.from_dict({"epoch": 3})


def test_protocols_resolve_with_overrides_and_reject_unknown_names():
    gpu = study_config("gpu")
    assert (gpu.train_size, gpu.resolution, gpu.init_channels, gpu.cells, gpu.batch_size) == (25_000, 32, 16, 5, 256)
    cpu = study_config("cpu", epochs=7, schedule_epochs=None)
    assert cpu.epochs == 7 and cpu.resolution == PROTOCOLS["cpu"]["resolution"]
    with pytest.raises(ValueError, match="unknown --protocol 'tpu'"):
        study_config("tpu")


def test_rank_cli_rejects_bad_knobs_and_preregistered_overrides(tmp_path, tiny_cifar):
    runner = CliRunner()
    base = ["rank", "--data", str(tiny_cifar), "--store", str(tmp_path / "s.sqlite"), "--out", str(tmp_path / "o.csv")]
    res = runner.invoke(app, base + ["--resolution", "48"])
    assert res.exit_code == 2 and "--resolution 48 must lie in 4..32" in res.output
    res = runner.invoke(app, base + ["--preregistered", str(tmp_path / "t.json"), "--epochs", "3"])
    assert res.exit_code == 2 and "drop --epochs" in res.output
    res = runner.invoke(app, base + ["--beff-variant", "points,cube"])
    assert res.exit_code == 2 and "transform/regression" in res.output
    assert not (tmp_path / "s.sqlite").exists()


# -- knobs act -------------------------------------------------------------------------------
def test_resolution_width_and_cells_change_the_trained_network(tmp_path, tiny_cifar, monkeypatch):
    import nasbeff.training.nb201_study as study

    seen = []
    build = study.build_nb201_model

    def spy(arch, **kw):
        net = build(arch, **kw)
        net.register_forward_pre_hook(lambda m, a: seen.append(tuple(a[0].shape[-2:])) if len(seen) < 2 else None)
        seen.append(sum(p.numel() for p in net.parameters()))
        return net

    monkeypatch.setattr(study, "build_nb201_model", spy)
    small = StudyConfig(**{**TINY, "epochs": 1, "resolution": 16})
    data = load_study_data(tiny_cifar, small)
    assert data.train.images.shape[1:3] == (16, 16) and data.valid.images.shape[1:3] == (16, 16)
    with ResultStore(tmp_path / "a.sqlite") as st:
        train_arch(5, data, small, st, tmp_path / "ck")
        assert seen[1] == (16, 16)
        wide = StudyConfig(**{**TINY, "epochs": 1, "resolution": 16, "init_channels": 8, "cells": 2})
        seen.clear()
        train_arch(5, data, wide, st, tmp_path / "ck")
    n_small = sum(p.numel() for p in build(study.index_to_str(5), C=4, N=1).parameters())
    n_wide = sum(p.numel() for p in build(study.index_to_str(5), C=8, N=2).parameters())
    assert seen[0] == n_wide and n_wide > 2 * n_small


# -- observations ----------------------------------------------------------------------------
def test_beta_points_at_the_right_steps_with_parts_and_loss_sums(tmp_path, tiny_cifar):
    cfg = StudyConfig(**TINY, beta_points=4, beta_bn="batch")
    assert point_steps(cfg) == (3, 5, 7, 9)  # 3 epochs x 3 steps: ceil(9 (j+1) / 4)
    data = load_study_data(tiny_cifar, cfg)
    with ResultStore(tmp_path / "a.sqlite") as st:
        ms = train_arch(2, data, cfg, st, tmp_path / "ck")
    assert [sorted(k for k in m if k.endswith("_step")) for m in ms] == [["p00_step"], ["p01_step"],
                                                                          ["p02_step", "p03_step"]]
    assert [ms[0]["p00_step"], ms[1]["p01_step"], ms[2]["p02_step"], ms[2]["p03_step"]] == [3, 5, 7, 9]
    for m in ms:
        assert m["beta_eff"] == pytest.approx(m["beta_num"] / (m["beta_den"] + 1e-12), rel=1e-9)
        assert 0 < m["beta_den_rel"] <= 1
        assert m["train_loss_sum"] == pytest.approx(3 * m["train_loss"], rel=1e-9)  # 3 equal batches
    # the last point is the end of the run: the same state and data as the epoch-3 measurement
    assert ms[2]["p03_beta_eff"] == pytest.approx(ms[2]["beta_eff"], rel=1e-6)
    assert ms[2]["p03_valid_acc"] == ms[2]["valid_acc"]
    row = summarize_curve(2, ms, BetaVariant("points"))
    loss = [m["train_loss_sum"] for m in ms]
    assert row["tse"] == pytest.approx(-sum(loss)) and row["tse_e"] == pytest.approx(-loss[-1])
    assert row["tse_ema"] == pytest.approx(-(0.81 * loss[0] + 0.9 * loss[1] + loss[2]))
    assert row["n_points"] == 4 and row["beff_variant"] == "points_identity_bayes_tbic"
    assert row["wall_seconds"] > 0 and row["lsv"] == ms[-1]["valid_acc"]


def test_batch_statistics_features_leave_running_stats_untouched():
    from nasbeff.core.probe import NCP
    from nasbeff.spaces import build_nb201_model

    torch.manual_seed(0)
    net = build_nb201_model("|nor_conv_3x3~0|+|nor_conv_1x1~0|skip_connect~1|+|avg_pool_3x3~0|none~1|nor_conv_3x3~2|",
                            C=4, N=1)
    trainer = EarlyTrainer.for_network(net, NCP(net.feature_dim, 10, seed=0), TrainConfig(epochs=1), 1)
    for m in net.modules():  # non-trivial running statistics
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.uniform_(-1, 1)
            m.running_var.uniform_(0.5, 2)
    before = {k: v.clone() for k, v in trainer.model.state_dict().items()}
    x, y = torch.randn(40, 3, 16, 16), torch.arange(40) % 10
    batch = trainer.capacitance(x, y, "batch")
    after = trainer.model.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)
    assert trainer.model.training  # mode restored
    assert batch.beta_eff != pytest.approx(trainer.capacitance(x, y, "eval").beta_eff)
    with pytest.raises(ValueError, match="bn must be one of eval, batch"):
        trainer.capacitance(x, y, "train")


def _metrics(dens, betas=None, accs=None):
    n = len(dens)
    betas = betas or [1.0 + 0.5 * k for k in range(n)]
    accs = accs or [20.0 + 5 * k for k in range(n)]
    return [{"valid_acc": a, "beta_eff": b, "beta_den": d, "beta_den_rel": abs(d) / 10, "seconds_train": 1.0,
             "seconds_beta": 0.1, "seconds_eval": 0.1, "train_loss_sum": 50.0 - k}
            for k, (a, b, d) in enumerate(zip(accs, betas, dens))]


def test_den_sign_change_flag_and_relative_near_zero_warning():
    assert summarize_curve(7, _metrics([1.0, -0.5, 2.0]))["den_sign_change"] is True
    row = summarize_curve(7, _metrics([1.0, 0.5, 2.0]))
    assert row["den_sign_change"] is False and row["min_den_rel"] == pytest.approx(0.05)
    from nasbeff.core.capacitance import Capacitance
    from nasbeff.training.nb201_study import capacitance_metrics

    cap = Capacitance(beta_eff=5.0, num=5e-6, den=1e-6, num_abs=1.0, mode="local", layer_names=(), layer_sizes=(),
                      layer_num=(), block_den=(2.0, -2.0 + 1e-6), loss=1.0)
    with pytest.warns(RuntimeWarning, match="denominator nearly cancels"):
        got = capacitance_metrics(cap, "p00_")
    assert got == {"p00_num": 5e-6, "p00_den": 1e-6, "p00_den_rel": pytest.approx(1e-6 / (4.0 - 1e-6))}
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        capacitance_metrics(Capacitance(1.0, 1.0, 1.0, 1.0, "local", (), (), (), (0.5, 0.5), 1.0))


# -- predictor variants ----------------------------------------------------------------------
def test_predictor_variants_on_hand_made_curves():
    b = np.array([40.0, 20.0, 9.0, 4.0, 2.0, 1.0])
    acc = 80.0 - 3.0 * beta_transform(b, "signlog")
    assert fit_beta_curve(b, acc, transform="signlog").prediction == pytest.approx(80.0, abs=1e-3)
    assert abs(fit_beta_curve(b, acc).prediction - 80.0) > 1.0  # a line in b misses it
    line = 70.0 - 2.0 * b[2:]
    line[1] += 8.0  # one outlier among 4 points
    huber = fit_beta_curve(b[2:], line, t0=0, regression="huber")
    theil = fit_beta_curve(b[2:], line, t0=0, regression="theilsen")
    bayes = fit_beta_curve(b[2:], line, t0=0)
    assert abs(theil.prediction - 70.0) < abs(bayes.prediction - 70.0)
    assert math.isnan(huber.std) and math.isnan(theil.std) and bayes.std > 0
    assert beta_transform([-3.0, 0.0, 3.0], "signlog") == pytest.approx([-math.log(4), 0.0, math.log(4)])
    with pytest.raises(ValueError, match="regression must be one of"):
        fit_beta_curve(b, acc, regression="lasso")
    assert BetaVariant.parse("points,signlog,huber,0") == BetaVariant("points", "signlog", "huber", 0)
    row = summarize_curve(3, _metrics([1, 1, 1, 1], betas=[4.0, 3.0, 2.0, 1.0], accs=[50.0, 55.0, 60.0, 65.0]),
                          BetaVariant(regression="theilsen"), all_variants=True)
    assert row["beff_pred"] == pytest.approx(70.0) and row["beff_epochs_identity_bayes_tbic"] == pytest.approx(70.0,
                                                                                                          abs=1e-3)
    assert math.isnan(row["beff_points_identity_bayes_tbic"])  # no points recorded


# -- pre-registration ------------------------------------------------------------------------
def _git(repo, *args):
    subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@t", *args], cwd=repo, check=True,
                   capture_output=True)


def test_preregistered_config_refused_unless_committed_and_unmodified(tmp_path):
    repo = tmp_path / "repo"
    repo.mkdir()
    _git(repo, "init", "-q")
    path = repo / "test_config.json"
    test = make_test_config("t", 3, 1, "", StudyConfig(**TINY), BetaVariant("points", "signlog"))
    assert list(test.archs) == draw_test_sample(3, 1) and min(test.archs) >= 200
    path.write_text(test.to_json())
    with pytest.raises(ValueError, match="is not committed"):
        load_test_config(path)
    _git(repo, "add", "test_config.json")
    with pytest.raises(ValueError, match="is not committed"):  # staged only
        load_test_config(path)
    _git(repo, "commit", "-qm", "register")
    loaded, blob = load_test_config(path)
    assert loaded == test
    assert blob == subprocess.run(["git", "hash-object", str(path)], capture_output=True, text=True).stdout.strip()
    path.write_text(test.to_json().replace('"seed": 1', '"seed": 2'))
    with pytest.raises(ValueError, match="differs from its committed version") as e:
        committed_blob(path)
    assert "\n" not in str(e.value)
    _git(repo, "checkout", "--", "test_config.json")
    outside = tmp_path / "loose.json"
    outside.write_text(test.to_json())
    with pytest.raises(ValueError, match="not inside a git repository"):
        load_test_config(outside)


@pytest.mark.slow
def test_preregistered_rank_rows_carry_the_blob_and_resume_from_the_committed_csv(tmp_path, tiny_cifar):
    repo = tmp_path / "repo"
    repo.mkdir()
    _git(repo, "init", "-q")
    test = make_test_config("t", 2, 0, "", StudyConfig(**{**TINY, "beta_points": 3}), BetaVariant("points"))
    (repo / "test.json").write_text(test.to_json())
    _git(repo, "add", "test.json")
    _git(repo, "commit", "-qm", "register")
    blob = committed_blob(repo / "test.json")
    runner = CliRunner()
    args = ["rank", "--data", str(tiny_cifar), "--preregistered", str(repo / "test.json"), "--threads", "1",
            "--store", str(tmp_path / "s1.sqlite"), "--out", str(tmp_path / "r1.csv"), "--results",
            str(tmp_path / "curves.csv")]
    res = runner.invoke(app, args)
    assert res.exit_code == 0, res.output
    rows = list(csv.DictReader(open(tmp_path / "r1.csv")))
    assert [int(r["index"]) for r in rows] == list(test.archs)
    assert {r["config_blob"] for r in rows} == {blob}
    assert {r["beff_variant"] for r in rows} == {"points_identity_bayes_tbic"}
    curves = list(csv.DictReader(open(tmp_path / "curves.csv")))
    assert len(curves) == 2 * 3 and {r["study_hash"] for r in curves} == {test.study.hash}
    # a fresh checkout: no store, the committed CSV; one more arch asked for
    extra = ["rank", "--data", str(tiny_cifar), "--archs", ",".join(map(str, (*test.archs, 7))), "--threads", "1",
             "--epochs", "3", "--train-size", "30", "--valid-size", "20", "--batch-size", "10", "--beta-samples", "16",
             "--init-channels", "4", "--cells", "1", "--beta-points", "3", "--beff-variant", "points",
             "--store", str(tmp_path / "s2.sqlite"), "--out", str(tmp_path / "r2.csv"),
             "--results", str(tmp_path / "curves.csv")]
    res = runner.invoke(app, extra)
    assert res.exit_code == 0, res.output
    with ResultStore(tmp_path / "s2.sqlite") as st:
        trained = [i for i in (*test.archs, 7) if st.is_done(run_key(i, test.study))]
    assert trained == [7]  # the committed archs were skipped
    again = {int(r["index"]): r for r in csv.DictReader(open(tmp_path / "r2.csv"))}
    assert sorted(again) == sorted((*test.archs, 7))
    for r in rows:
        assert again[int(r["index"])]["beff_pred"] == r["beff_pred"] and again[int(r["index"])]["tse"] == r["tse"]
    assert len(list(csv.DictReader(open(tmp_path / "curves.csv")))) == 3 * 3


def test_scores_join_adds_prefixed_proxy_columns(tmp_path):
    from nasbeff.runs.results_csv import join_scores

    (tmp_path / "s.csv").write_text("index,arch_str,cut_off,naswot,naswot_seconds,flags\n5,x,False,12.5,0.1,\n")
    rows = join_scores([{"index": 5, "lsv": 1.0}, {"index": 6, "lsv": 2.0}], tmp_path / "s.csv")
    assert rows[0] == {"index": 5, "lsv": 1.0, "zc_naswot": 12.5} and math.isnan(rows[1]["zc_naswot"])


def test_summarize_from_store_matches_summarize_curve(tmp_path, tiny_cifar):
    cfg = StudyConfig(**{**TINY, "epochs": 3})
    data = load_study_data(tiny_cifar, cfg)
    with ResultStore(tmp_path / "a.sqlite") as st:
        ms = train_arch(4, data, cfg, st, tmp_path / "ck")
        rows = summarize(st, [4], cfg)
    want = summarize_curve(4, ms)
    assert len(rows) == 1 and set(rows[0]) == set(want)
    for k, v in want.items():
        assert rows[0][k] == v or (isinstance(v, float) and math.isnan(v) and math.isnan(rows[0][k])), k


def _choose_module():
    import importlib.util

    path = Path(__file__).resolve().parents[1] / "experiments" / "nb201_protocol" / "choose.py"
    spec = importlib.util.spec_from_file_location("nb201_protocol_choose", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _frontier_rows(points: dict[tuple[str, int], tuple[float, float, float]]) -> list[dict]:
    """(setting, k) -> (seconds, best baseline rho, beta_eff rho of the paper's variant)."""
    rows = []
    for (setting, k), (sec, rho, beff) in points.items():
        for score, value in (("tse", rho), ("lsv", rho - 0.1), ("beff_points_identity_bayes_tbic", beff),
                             ("beff_epochs_signlog_huber_t0", beff - 0.2)):
            for cut in ("excluded", "included"):
                rows.append({"setting": f"{setting}:h", "epochs": k, "seconds_per_arch": sec, "score": score,
                             "cut_off": cut, "n": 60, "spearman": value if cut == "excluded" else 0.99,
                             "lo": value - 0.2, "hi": value + 0.1, "kendall": value / 1.4})
    return rows


def test_choose_applies_the_plan_rule_in_its_three_branches():
    choose = _choose_module().choose
    got = choose(_frontier_rows({("dev_F1_curves", 2): (20.0, 0.65, 0.1), ("dev_F1_curves", 4): (40.0, 0.72, 0.3),
                                 ("dev_F3_curves", 2): (60.0, 0.80, 0.2)}))
    assert (got["setting"], got["epochs"], got["best_baseline"]) == ("dev_F1_curves:h", 4, "tse")
    assert got["beff_variant"] == "points_identity_bayes_tbic" and got["beff_rho"] == 0.3
    assert got["protocol"]["resolution"] == 16 and got["protocol"]["epochs"] == 4
    # nothing reaches 0.7 within 240 s: the best there at >= 0.6 (not the cheapest)
    got = choose(_frontier_rows({("dev_F1_curves", 2): (20.0, 0.61, 0.1), ("dev_F1_curves", 4): (40.0, 0.66, 0.1),
                                 ("dev_F4_curves", 2): (300.0, 0.75, 0.1)}))
    assert got["epochs"] == 4 and "the best one there" in got["rule"]
    # nothing reaches 0.6 within 240 s: the best point within 360 s; the included-cut-off rows never count
    got = choose(_frontier_rows({("dev_F1_curves", 2): (20.0, 0.5, 0.1), ("dev_F4_curves", 2): (300.0, 0.55, 0.1),
                                 ("dev_F4_curves", 3): (450.0, 0.9, 0.1)}))
    assert got["setting"] == "dev_F4_curves:h" and got["epochs"] == 2 and got["protocol"]["init_channels"] == 16


def test_frontier_cost_line_sums_the_first_k_epochs_per_arch():
    import importlib.util

    path = Path(__file__).resolve().parents[1] / "experiments" / "nb201_protocol" / "frontier.py"
    spec = importlib.util.spec_from_file_location("nb201_protocol_frontier", path)
    frontier = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(frontier)
    epoch = {"seconds_wall": 10.0, "seconds_train": 6.0, "seconds_eval": 2.0, "seconds_beta": 0.5, "seconds_points": 1.0}
    slow = {**epoch, "seconds_wall": 40.0}
    line = frontier._cost_line("dev_F1_curves:h", 2, [[epoch, epoch], [epoch, slow], [slow, slow]])
    # walls per arch 20, 50, 80 -> mean 50, median 50, max 80; the split is the mean of the sums
    assert line == ("dev_F1_curves:h k=2: mean   50.0 s/arch (median   50.0, max   80.0); train 12.0 s, eval 4.0 s, "
                    "beta 1.0 s, points 2.0 s; n=3")
