"""Live scorers in the search loops (issue 26): proxies and early-training scorers evaluated when an
optimizer first visits an arch, through the store and keys of score / rank, resumable after SIGKILL,
the same runs with worker processes, and every bad input one line before any work."""

from __future__ import annotations

import csv
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from nasbeff.cli import app
from nasbeff.runs.search import ColumnTable, SearchConfig, parse_study_options, run_search
from nasbeff.spaces import index_to_str
from nasbeff.store import ResultStore
from nasbeff.training.nb201_study import SCORER as RANK_SCORER

runner = CliRunner()
TINY_STUDY = ("epochs=2,train_size=30,valid_size=20,batch_size=10,beta_samples=8,beta_points=4,init_channels=4,"
              "cells=1,resolution=8")


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def table() -> ColumnTable:
    """A synthetic ground truth over all 15,625 NB201 archs (the loops need no real benchmark)."""
    rng = np.random.default_rng(0)
    n = 15625
    acc = rng.uniform(10, 94, n)
    cols = {"c10_valid": acc, "c10_test": acc + rng.normal(0, 0.2, n), "train_time_s_c10valid": np.full(n, 100.0)}
    return ColumnTable([index_to_str(i) for i in range(n)], cols, "synthetic")


def _cfg(tmp_path: Path, **kw) -> SearchConfig:
    base = dict(methods=("rea", "random"), scorers=("live:meco",), data="digits", budget=1e6, seeds=2,
                max_evaluations=8, points=2, store=tmp_path / "live.sqlite", out=tmp_path / "search.csv",
                batch_size=16)
    return SearchConfig(**{**base, **kw})


def _runs(res) -> list[tuple]:
    return [(t.method, t.seed, t.indices.tolist(), t.scores.tolist()) for t in res.trajectories]


def test_live_proxy_search_scores_on_first_visit_and_shares_the_store_with_score(tmp_path, table):
    res = run_search(_cfg(tmp_path), table=table)
    visited = sorted({i for t in res.trajectories for i in t.indices.tolist()})
    # REA and random of one seed start from the same draws: each arch was computed once
    assert sorted(i for _, i in res.computed) == visited and len(visited) < 2 * 2 * 8
    assert all(t.evaluations == 8 for t in res.trajectories)  # --evaluations caps every run
    rows = list(csv.DictReader(open(tmp_path / "search.csv")))
    assert {r["cost_model"] for r in rows} == {"measured"}
    last = [r for r in rows if int(r["evaluations"]) == 8]
    assert all(int(r["unique_trained"]) == 8 and float(r["cpu_seconds"]) > 0 for r in last)
    # the charged seconds are the stored measured seconds of each unit
    t = res.trajectories[0]
    with ResultStore(tmp_path / "live.sqlite") as st:
        stored = {int(r.key.arch): r.metrics for r in st.rows(done=True, scorer="meco")}
    assert np.allclose(np.diff(np.r_[0.0, t.costs]), [stored[i]["seconds"] for i in t.indices.tolist()])
    assert np.allclose(t.scores, [stored[i]["value"] for i in t.indices.tolist()])
    # nasbeff score with the same batch options reads the search's units: nothing scored again
    arch_list = ",".join(map(str, visited))
    out = runner.invoke(app, ["score", "--data", "digits", "--archs", arch_list, "--proxies", "meco",
                              "--batch-size", "16", "--store", str(tmp_path / "live.sqlite"),
                              "--out", str(tmp_path / "score.csv"), "--truth", ""])
    assert out.exit_code == 0, out.output
    with ResultStore(tmp_path / "live.sqlite") as st:
        assert all(r.n_writes == 1 for r in st.rows(done=True, scorer="meco"))
    scored = {int(r["index"]): float(r["meco"]) for r in csv.DictReader(open(tmp_path / "score.csv"))}
    assert scored == pytest.approx({i: stored[i]["value"] for i in visited}, rel=1e-5)  # the CSV keeps 6 digits
    # and a second search reuses everything: the same runs, nothing computed
    again = run_search(_cfg(tmp_path), table=table)
    assert again.computed == [] and _runs(again) == _runs(res)


def test_worker_processes_give_the_runs_of_one_process(tmp_path, table):
    one = run_search(_cfg(tmp_path / "a", seeds=3), table=table)
    two = run_search(_cfg(tmp_path / "b", seeds=3, workers=2), table=table)
    assert _runs(two) == _runs(one)
    assert sorted(two.computed) == sorted(one.computed)  # each arch computed once, also with 3 seeds at once


def test_a_live_warmup_scorer_and_the_cost_model_column(tmp_path, shared_data):
    res = run_search(_cfg(tmp_path, methods=("warmup_rea",), scorers=("benchmark",), warmup_scorer="live:meco",
                          warmup_pool=12, seeds=1, max_evaluations=0, budget=2000, shared=shared_data))
    t = res.trajectories[0]
    assert int((t.stage == 0).sum()) == 12 and int((t.stage == 1).sum()) >= 10
    rows = list(csv.DictReader(open(tmp_path / "search.csv")))
    assert rows[-1]["cost_model"] == "nb201_train_time; warm-up measured"
    assert int(rows[-1]["unique_trained"]) == len(set(t.indices[t.stage == 1].tolist()))


def test_live_training_scorers_share_one_rank_run_per_arch(tmp_path, table, tiny_cifar):
    cfg = _cfg(tmp_path, methods=("random",), scorers=("live:beff_pred", "live:lsv"), data=str(tiny_cifar),
               study=TINY_STUDY, seeds=1, max_evaluations=3)
    res = run_search(cfg, table=table)
    archs = {i for t in res.trajectories for i in t.indices.tolist()}
    assert {k for k, _ in res.computed} == {"train"} and {i for _, i in res.computed} == archs
    # the units are rank's: the same key, so nasbeff rank with the same study finds them finished
    with ResultStore(tmp_path / "live.sqlite") as st:
        done = {int(r.key.arch) for r in st.rows(done=True, scorer=RANK_SCORER)}
    assert done == archs
    lsv = res.trajectories[1]
    from nasbeff.runs.rank import stored_curves
    from nasbeff.training.nb201_study import summarize_curve

    with ResultStore(tmp_path / "live.sqlite") as st:
        curves = stored_curves(st, sorted(archs), cfg.live.rank.study)
    assert lsv.scores.tolist() == [summarize_curve(i, curves[i])["lsv"] for i in lsv.indices.tolist()]


def test_study_options_are_parsed_and_checked():
    assert parse_study_options("epochs=3, train_size=200,beta_bn=batch,lr=0.05") == (
        ("epochs", 3), ("train_size", 200), ("beta_bn", "batch"), ("lr", 0.05))
    with pytest.raises(ValueError, match="name=value"):
        parse_study_options("epochs")


@pytest.mark.parametrize("kw, message", [
    ({"scorers": ("live:nope",)}, "unknown live scorer live:nope"),
    ({"scorers": ("live:rank:meco+zico",)}, "a rank aggregate ranks within a population"),
    ({"data": ""}, "needs --data"),
    ({"scorers": ("benchmark",)}, "--data is for live scorers"),
    ({"space": "nats-size"}, "live scorers need --space nb201"),
    ({"max_evaluations": -1}, "--evaluations must be an integer >= 0"),
    ({"data": "/no/such/images"}, "does not exist"),
    ({"scorers": ("live:beff_pred",), "study": "epochs"}, "name=value"),
    ({"scorers": ("live:beff_pred",), "study": "epochs=0"}, "epochs"),
    ({"workers": 0}, "--workers"),
])
def test_bad_live_options_are_one_line_before_any_work(tmp_path, kw, message):
    with pytest.raises((ValueError, FileNotFoundError), match=message):
        _cfg(tmp_path, **kw)
    assert not (tmp_path / "live.sqlite").exists()


def _done_units(db: Path) -> dict[int, list]:
    if not db.exists():
        return {}
    try:
        with ResultStore(db) as st:
            return {int(r.key.arch): None for r in st.rows(done=True, scorer=RANK_SCORER)}
    except Exception:  # noqa: BLE001 - the store may be mid-creation
        return {}


def _epochs(db: Path) -> dict[tuple[int, int], tuple]:
    with ResultStore(db) as st:
        return {(int(r.key.arch), r.epoch): (r.metrics["seconds_wall"], r.metrics["valid_acc"], r.n_writes)
                for r in st.rows(scorer=RANK_SCORER)}


def test_a_killed_live_beff_search_resumes_without_retraining(tmp_path, shared_data, tiny_cifar):
    """SIGKILL a live beta_eff search once two archs are trained; the same command finishes it: no
    finished arch is trained again (its stored epochs are untouched) and the runs equal an
    uninterrupted search's."""
    args = ["search", "--method", "rea", "--scorer", "live:beff_pred", "--data", str(tiny_cifar), "--study",
            TINY_STUDY, "--evaluations", "12", "--budget", "1000000", "--seeds", "1", "--points", "2",
            "--shared", str(shared_data)]
    db = tmp_path / "killed.sqlite"
    cmd = [sys.executable, "-m", "nasbeff", *args, "--store", str(db), "--out", str(tmp_path / "killed.csv")]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen(cmd, env=env, cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 300
    while len(_done_units(db)) < 2 and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    assert proc.poll() is None, "the search ended before it could be killed"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    before = _epochs(db)
    finished = set(_done_units(db))
    assert 2 <= len(finished) < 12
    final = subprocess.run(cmd, env=env, cwd=tmp_path, capture_output=True, text=True)
    assert final.returncode == 0, final.stdout + final.stderr
    after = _epochs(db)
    assert {k: v for k, v in after.items() if k[0] in finished} == {k: v for k, v in before.items()
                                                                      if k[0] in finished}
    assert all(w == 1 for *_, w in after.values())  # no epoch written twice
    computed = int(final.stdout.split("live scorers: ")[1].split(" units computed")[0])
    assert computed == len(set(_done_units(db)) - finished)
    ref = runner.invoke(app, [*args, "--store", str(tmp_path / "ref.sqlite"), "--out", str(tmp_path / "ref.csv")])
    assert ref.exit_code == 0, ref.output
    keep = ("seed", "evaluations", "best_index")
    assert [{k: r[k] for k in keep} for r in csv.DictReader(open(tmp_path / "killed.csv"))] == \
        [{k: r[k] for k in keep} for r in csv.DictReader(open(tmp_path / "ref.csv"))]


def test_committed_units_let_a_fresh_store_resume(tmp_path, table):
    units = tmp_path / "units.csv.gz"
    first = run_search(_cfg(tmp_path, results=units, seeds=1), table=table)
    assert first.computed and units.exists()
    fresh = run_search(_cfg(tmp_path, results=units, seeds=1, store=tmp_path / "fresh.sqlite"), table=table)
    assert fresh.computed == [] and _runs(fresh) == _runs(first)


class _JumpingClock:
    """``time`` for one module: the real clock, except that ``time()`` jumps ``ahead`` seconds after
    its first ``calls`` calls (a deadline that passes in the middle of a batch of units)."""

    def __init__(self, calls: int, ahead: float) -> None:
        self.calls, self.ahead, self.n = calls, ahead, 0

    def time(self) -> float:
        self.n += 1
        return time.time() + (self.ahead if self.n > self.calls else 0.0)

    def __getattr__(self, name: str):
        return getattr(time, name)


def test_no_unit_starts_after_the_time_limit_and_the_same_search_continues(tmp_path, table, monkeypatch):
    """A deadline that passes inside a batch of units: those already started finish and are stored,
    none starts after it, the evaluation stops with LiveTimeLimit; the same search run again computes
    only the rest and gives the runs of an uninterrupted search."""
    import nasbeff.runs.score as score_module
    from nasbeff.runs.live import LiveEvaluator, LiveTimeLimit

    batch = [("meco", i) for i in (5000, 5001, 5002, 5003, 5004, 5005, 5006, 5007)]
    monkeypatch.setattr(score_module, "time", _JumpingClock(calls=3, ahead=10_000.0))
    cfg = _cfg(tmp_path, deadline=time.time() + 1_000.0)
    with LiveEvaluator(cfg.live) as ev, pytest.raises(LiveTimeLimit, match="with 5 archs left to score; run again"):
        ev.resolve(batch)  # one batch: eight units, the deadline passes after the third starts
    with ResultStore(tmp_path / "live.sqlite") as st:
        first = {int(r.key.arch) for r in st.rows(done=True, scorer="meco")}
    assert first == {5000, 5001, 5002}
    monkeypatch.undo()
    with LiveEvaluator(_cfg(tmp_path).live) as ev:
        ev.resolve(batch)
        assert ev.computed == {("proxy", i) for i in range(5003, 5008)}  # only the five not started
    res = run_search(_cfg(tmp_path), table=table)
    ref = run_search(_cfg(tmp_path / "ref"), table=table)
    assert _runs(res) == _runs(ref)


def test_no_training_unit_starts_after_the_time_limit(tmp_path, monkeypatch, tiny_cifar):
    import nasbeff.runs.rank as rank_module
    from nasbeff.runs.live import LiveEvaluator, LiveTimeLimit

    batch = [("lsv", i) for i in (700, 701, 702)]
    monkeypatch.setattr(rank_module, "time", _JumpingClock(calls=1, ahead=10_000.0))
    cfg = _cfg(tmp_path, scorers=("live:lsv",), data=str(tiny_cifar), study=TINY_STUDY, deadline=time.time() + 1e3)
    with LiveEvaluator(cfg.live) as ev, pytest.raises(LiveTimeLimit, match="with 2 archs left to train; run again"):
        ev.resolve(batch)
    assert set(_done_units(tmp_path / "live.sqlite")) == {700}


def test_search_time_limit_option(tmp_path, shared_data, tiny_cifar):
    args = ["search", "--method", "random", "--scorer", "live:lsv", "--data", str(tiny_cifar), "--study", TINY_STUDY,
            "--evaluations", "3", "--budget", "1000000", "--seeds", "1", "--shared", str(shared_data),
            "--store", str(tmp_path / "t.sqlite"), "--out", str(tmp_path / "t.csv")]
    out = runner.invoke(app, [*args, "--time-limit", "0.000001"])  # passed before the first unit could start
    assert out.exit_code == 0, out.output
    assert out.output.strip() == ("time limit: the time limit passed before 1 more evaluation could start; run "
                                  "again to continue (the same command)")
    assert not (tmp_path / "t.csv").exists()
    bad = runner.invoke(app, [*args, "--time-limit", "-1"])
    assert bad.exit_code != 0 and "--time-limit must be >= 0 minutes, got -1.0" in bad.output
    table_only = runner.invoke(app, ["search", "--time-limit", "5", "--shared", str(shared_data), "--out",
                                     str(tmp_path / "x.csv")])
    assert table_only.exit_code != 0 and "--time-limit is for live scorers" in table_only.output


def test_the_broker_forms_batches_while_resolve_fills_values_as_it_goes(monkeypatch):
    """resolve() fills values one by one and then still works; threads that see their value early go
    on and ask for the next key before it returns. Every job must finish (the old waiting counter,
    reset after each batch, forgot such a thread and the broker waited forever), each key resolved
    once, and the keys asked together while all threads wait go out as one batch."""
    import threading

    from nasbeff.runs.live import _Broker

    monkeypatch.setattr(_Broker, "POLL_S", 0.02)
    values: dict = {}
    batches: list[list] = []

    def resolve(keys: list) -> None:
        batches.append(sorted(keys))
        for k in keys:
            values[k] = k * 10
        time.sleep(0.2)  # still working after every value is there: the threads go on meanwhile

    broker = _Broker(resolve, values)

    def job(seed: int):
        def run() -> list:
            got = []
            for step in range(4):
                key = 100 * step + seed
                broker.wait_for(key)
                got.append(values[key])
            return got
        return run

    out: list = []
    t = threading.Thread(target=lambda: out.append(broker.run([job(s) for s in range(5)])), daemon=True)
    t.start()
    t.join(timeout=30)
    assert not t.is_alive(), "the broker never formed the next batch"
    assert out[0] == [[10 * (100 * step + s) for step in range(4)] for s in range(5)]
    assert sorted(k for b in batches for k in b) == sorted(100 * st + s for st in range(4) for s in range(5))
    assert batches[0] == [0, 1, 2, 3, 4]  # the first requests of all five threads together


@pytest.mark.slow
def test_a_live_meco_search_as_a_user_types_it_on_the_shared_cifar10_images(tmp_path, shared_data):
    """The README's command on the shared CIFAR-10 tar and NB201 table: every visited arch is scored by
    MeCo on CIFAR-10 images once (REA and random of one seed share their first draws through the store),
    the rows are charged the measured seconds and carry the chosen arch's real c10_test."""
    tar = shared_data / "cifar10" / "cifar10_jpeg.tar.gz"
    if not tar.is_file():
        pytest.skip("cifar10_jpeg.tar.gz absent")
    db, out = tmp_path / "live.sqlite", tmp_path / "search.csv"
    res = runner.invoke(app, ["search", "--method", "rea,random", "--scorer", "live:meco", "--data", str(tar),
                              "--evaluations", "6", "--seeds", "1", "--budget", "1e9", "--store", str(db),
                              "--out", str(out)])
    assert res.exit_code == 0, res.output
    rows = list(csv.DictReader(open(out)))
    final = {r["method"]: r for r in rows if int(r["evaluations"]) == 6}
    assert set(final) == {"rea", "random"} and {r["cost_model"] for r in rows} == {"measured"}
    from nasbeff.tables import load_ground_truth
    truth = load_ground_truth(shared_data)
    with ResultStore(db) as st:
        units = {int(r.key.arch): r for r in st.rows(done=True, scorer="meco")}
    # keyed as score keys CIFAR-10 proxy units: the images are cifar10-valid's 25k train half
    assert {r.key.dataset for r in units.values()} == {"cifar10-valid"} and all(r.n_writes == 1 for r in units.values())
    for r in final.values():
        best = int(r["best_index"])
        assert best in units and int(r["unique_trained"]) == 6 and float(r["cpu_seconds"]) > 0
        assert float(r["best_test_acc"]) == pytest.approx(float(truth.column("c10_test", best)), abs=1e-3)
    assert len(units) < 12  # the two methods' shared first draws were scored once
