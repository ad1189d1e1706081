"""The command-line tool: help for every option, one-line errors, score (resumable, crash-safe under
SIGKILL), search, report and the python -m entry point. The demo has tests/test_demo.py."""

from __future__ import annotations

import csv
import json
import os
import random
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
import typer
from PIL import Image
from typer.testing import CliRunner

from nasbeff.cli import app
from nasbeff.store import ResultStore

runner = CliRunner()
REPO = Path(__file__).resolve().parents[1]
TINY = ["--data", "digits", "--init-channels", "4", "--cells", "1", "--batch-size", "32", "--truth", "", "--quiet"]


def test_help_lists_commands_and_explains_every_option():
    res = runner.invoke(app, ["--help"])
    assert res.exit_code == 0
    for name in ("demo", "rank", "score", "search", "report", "version"):
        assert name in res.output
    group = typer.main.get_command(app)
    for name, cmd in group.commands.items():
        assert cmd.help, name
        for p in cmd.params:
            if isinstance(p, typer.core.TyperOption) and not p.hidden:
                assert p.help, f"{name} {p.opts}"
        assert runner.invoke(app, [name, "--help"]).exit_code == 0


def test_demo_bad_option_is_one_clear_line():
    res = runner.invoke(app, ["demo", "--epochs", "2"])
    assert res.exit_code == 2
    assert "error:" in res.output and "Traceback" not in res.output


def test_python_dash_m_entry_point():
    out = subprocess.run([sys.executable, "-m", "nasbeff", "version"], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "0.1.0"


def _csv(path) -> list[dict]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def test_score_writes_csv_resumes_and_rescores(tmp_path):
    args = ["score", *TINY, "--archs", "0-3", "--proxies", "naswot,synflow,params", "--store", str(tmp_path / "s.sqlite"),
            "--out", str(tmp_path / "s.csv")]
    res = runner.invoke(app, args)
    assert res.exit_code == 0, res.output
    rows = _csv(tmp_path / "s.csv")
    assert [r["index"] for r in rows] == ["0", "1", "2", "3"]
    assert {"arch_str", "cut_off", "naswot", "synflow", "params", "naswot_seconds", "flags"} <= set(rows[0])
    again = runner.invoke(app, args)  # everything stored: nothing is scored again
    assert again.exit_code == 0 and "scored: 4 of 4" in again.output
    with ResultStore(tmp_path / "s.sqlite") as st:
        assert st.count() == 12 and all(r.n_writes == 1 for r in st.rows())
    fresh = runner.invoke(app, args + ["--no-resume"])
    assert fresh.exit_code == 0
    with ResultStore(tmp_path / "s.sqlite") as st:
        assert st.count() == 12 and all(r.n_writes == 2 for r in st.rows())
    assert [{k: r[k] for k in ("naswot", "synflow", "params")} for r in _csv(tmp_path / "s.csv")] == \
        [{k: r[k] for k in ("naswot", "synflow", "params")} for r in rows]


def test_score_results_file_resumes_a_fresh_checkout(tmp_path, monkeypatch):
    """--results: a committed (arch, proxy) file lets a run with an empty store score only what the
    file lacks, and its CSV equals an uninterrupted run's, exactly (cut-off arch 10: -inf kept)."""
    from nasbeff.runs.score import ProxyJob

    seen: list[int] = []
    call = ProxyJob.__call__
    monkeypatch.setattr(ProxyJob, "__call__", lambda self, unit: (seen.append(unit[0]), call(self, unit))[1])
    base = ["score", *TINY, "--proxies", "naswot,synflow,params"]
    results = tmp_path / "committed.csv"
    first = runner.invoke(app, [*base, "--archs", "9,10", "--store", str(tmp_path / "a.sqlite"), "--out",
                                str(tmp_path / "a.csv"), "--results", str(results)])
    assert first.exit_code == 0, first.output
    lines = _csv(results)  # ResultStore.export_done lines: one per (arch, proxy), metrics as exact JSON
    assert len(lines) == 6 and {r["scorer"] for r in lines} == {"naswot", "synflow", "params"}
    assert [json.loads(r["metrics"])["limit"] for r in lines if r["arch"] == "10" and r["scorer"] == "naswot"] \
        == ["-inf"]
    seen.clear()
    fresh = runner.invoke(app, [*base, "--archs", "9-11", "--store", str(tmp_path / "b.sqlite"), "--out",
                                str(tmp_path / "b.csv"), "--results", str(results)])
    assert fresh.exit_code == 0, fresh.output
    assert seen == [11] and len(_csv(results)) == 9
    whole = runner.invoke(app, [*base, "--archs", "9-11", "--store", str(tmp_path / "c.sqlite"), "--out",
                                str(tmp_path / "c.csv")])
    assert whole.exit_code == 0, whole.output
    values = ("index", "cut_off", "naswot", "synflow", "params")
    assert [{k: r[k] for k in values} for r in _csv(tmp_path / "b.csv")] == \
        [{k: r[k] for k in values} for r in _csv(tmp_path / "c.csv")]
    other = runner.invoke(app, [*base, "--archs", "9", "--seed", "1", "--store", str(tmp_path / "d.sqlite"), "--out",
                                str(tmp_path / "d.csv"), "--results", str(results)])
    assert other.exit_code == 0 and len(_csv(results)) == 12  # another config: its own lines, the others kept


def test_score_results_not_a_results_file_is_one_line(tmp_path):
    bad = tmp_path / "bad.csv"
    bad.write_text("index,arch_str\n1,x\n")
    res = runner.invoke(app, ["score", *TINY, "--store", str(tmp_path / "s.sqlite"), "--results", str(bad)])
    assert res.exit_code != 0 and "lacks the column(s) space, arch, dataset, scorer" in res.output
    assert not (tmp_path / "s.sqlite").exists()


def test_score_aggregates_shared_passes_and_chunks(tmp_path):
    """Group members share one pass (equal seconds); aggregates rank within the archs of the CSV,
    which is rewritten from the store after every chunk, a --time-limit chunk included."""
    import numpy as np

    from nasbeff.proxies import aggregate_scores

    names = "params,rank:params+meco,meanrank:meco+aznas_trainability,aznas_trainability,aznas_expressivity"
    base = ["score", *TINY, "--proxies", names, "--store", str(tmp_path / "s.sqlite"), "--out", str(tmp_path / "s.csv")]
    assert runner.invoke(app, base + ["--archs", "0-2"]).exit_code == 0
    chunk = runner.invoke(app, base + ["--archs", "0-5", "--time-limit", "1e-9"])  # no arch starts
    assert chunk.exit_code == 0 and "3 archs left for the next run" in chunk.output, chunk.output
    rows = _csv(tmp_path / "s.csv")
    assert [r["index"] for r in rows] == ["0", "1", "2"]
    assert list(rows[0])[:8] == ["index", "arch_str", "cut_off", "params", "rank:params+meco",
                                 "meanrank:meco+aznas_trainability", "aznas_trainability", "aznas_expressivity"]
    assert "meco" in rows[0] and "meco_seconds" in rows[0]  # the parts are columns too
    full = runner.invoke(app, base + ["--archs", "0-5"])
    assert full.exit_code == 0 and "scored: 6 of 6" in full.output and "left" not in full.output
    rows = _csv(tmp_path / "s.csv")
    assert len(rows) == 6 and all(r["aznas_trainability_seconds"] == r["aznas_expressivity_seconds"] for r in rows)
    assert rows[3]["aznas_trainability"] == "-inf" and "identity" in rows[3]["flags"]  # a limit survives the store
    col = {n: np.array([float(r[n]) for r in rows]) for n in ("params", "meco", "aznas_trainability")}
    np.testing.assert_allclose([float(r["rank:params+meco"]) for r in rows],
                               aggregate_scores({k: col[k] for k in ("params", "meco")}), rtol=1e-5)
    np.testing.assert_allclose([float(r["meanrank:meco+aznas_trainability"]) for r in rows],
                               aggregate_scores({k: col[k] for k in ("meco", "aznas_trainability")}, "mean_rank"),
                               rtol=1e-5)
    assert "rank:params+meco" in full.output  # in the summary table


@pytest.mark.parametrize("extra, message", [
    (["--proxies", "naswot,nope"], "unknown proxy 'nope'"),
    (["--proxies", "rank:meco+nope"], "unknown proxy 'nope'"),
    (["--proxies", "rank:meco+"], "has an empty scorer name"),
    (["--time-limit", "-1"], "--time-limit must be >= 0"),
    (["--proxies", "zico", "--batches", "1"], "zico needs --batches >= 2"),
    (["--archs", "0-99999"], "0..15624"),
    (["--backend", "spark"], "--backend must be one of local, ray"),
    (["--device", "cuda:7" if __import__("torch").cuda.is_available() else "cuda"], "not available"),
    (["--device", "gpu0"], "is not a torch device"),
])
def test_score_errors_are_one_line(tmp_path, extra, message):
    res = runner.invoke(app, ["score", *TINY, "--store", str(tmp_path / "s.sqlite"), *extra])
    assert res.exit_code == 2, res.output
    assert message in res.output and "Traceback" not in res.output


def test_score_missing_data_is_one_line(tmp_path):
    res = runner.invoke(app, ["score", "--data", str(tmp_path / "nope"), "--store", str(tmp_path / "t.sqlite")])
    assert res.exit_code == 2 and "does not exist" in res.output


# --------------------------------------------------------------------------------------- crash safety

CRASH_PROXIES = "naswot,synflow,snip,jacov,grad_norm,fisher"
N_ARCHS = 8


def _archs_done(db: Path, n_proxies: int) -> int:
    """Archs fully committed so far (read-only look at the store the child writes)."""
    try:
        con = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=1)
        try:
            return con.execute("SELECT COUNT(*) FROM done").fetchone()[0] // n_proxies
        finally:
            con.close()
    except sqlite3.Error:
        return 0


def _stored(db: Path) -> dict:
    with ResultStore(db) as st:
        return {(r.key.arch, r.key.scorer): (r.metrics["value"], r.metrics["flag"], r.n_writes) for r in st.rows()}


def test_score_survives_sigkill_at_random_moments(tmp_path):
    """A real scoring run is SIGKILLed at seeded random moments (once during start-up, three times
    while archs are being scored) and restarted: in the end every (arch, proxy) is stored exactly
    once, with the values of an uninterrupted run."""
    n_proxies = len(CRASH_PROXIES.split(","))
    args = ["score", *TINY, "--archs", f"0-{N_ARCHS - 1}", "--proxies", CRASH_PROXIES, "--threads", "1"]
    t0 = time.perf_counter()
    ref = runner.invoke(app, args + ["--store", str(tmp_path / "ref.sqlite"), "--out", str(tmp_path / "ref.csv")])
    assert ref.exit_code == 0, ref.output
    per_arch = (time.perf_counter() - t0) / N_ARCHS
    db = tmp_path / "killed.sqlite"
    cmd = [sys.executable, "-m", "nasbeff", *args, "--store", str(db), "--out", str(tmp_path / "killed.csv")]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    rng = random.Random(20240611)
    kills, done_at_kill = 0, []
    plan = [None] + sorted(rng.sample(range(1, N_ARCHS - 1), 3))  # None: kill during start-up
    for target in plan:
        proc = subprocess.Popen(cmd, env=env, cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        if target is None:
            time.sleep(rng.uniform(0.05, 1.0))
        else:
            deadline = time.monotonic() + 60
            while _archs_done(db, n_proxies) < target and proc.poll() is None and time.monotonic() < deadline:
                time.sleep(0.02)
            time.sleep(rng.uniform(0.0, per_arch))  # somewhere inside the next arch (or its commit)
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
            kills += 1
            done_at_kill.append(_archs_done(db, n_proxies))
        proc.wait()
    print(f"kills: {kills}, archs committed at each kill: {done_at_kill}")
    final = subprocess.run(cmd, env=env, cwd=tmp_path, capture_output=True, text=True)
    assert final.returncode == 0, final.stdout + final.stderr
    assert kills >= 3 and any(0 < d < N_ARCHS for d in done_at_kill), done_at_kill
    got, want = _stored(db), _stored(tmp_path / "ref.sqlite")
    assert len(got) == N_ARCHS * n_proxies
    assert all(w == 1 for *_, w in got.values())  # scored and committed exactly once
    assert {k: v[:2] for k, v in got.items()} == {k: v[:2] for k, v in want.items()}  # identical values
    con = sqlite3.connect(db)
    assert con.execute("SELECT COUNT(*), MAX(n_marks) FROM done").fetchone() == (N_ARCHS * n_proxies, 1)
    con.close()
    keep = ["index", *CRASH_PROXIES.split(",")]
    assert [{k: r[k] for k in keep} for r in _csv(tmp_path / "killed.csv")] == \
        [{k: r[k] for k in keep} for r in _csv(tmp_path / "ref.csv")]


# --------------------------------------------------------------------------------------- search / report

@pytest.fixture()
def ground_truth(shared_data):
    return shared_data


def test_search_prints_true_accuracy_and_writes_runs(tmp_path, ground_truth):
    out = tmp_path / "search.csv"
    res = runner.invoke(app, ["search", "--method", "rea,random", "--scorer", "benchmark", "--budget", "4000",
                              "--seeds", "3", "--points", "4", "--shared", str(ground_truth), "--out", str(out)],
                        terminal_width=160)
    assert res.exit_code == 0, res.output
    assert "rea" in res.output and "random" in res.output and "test acc" in res.output
    rows = _csv(out)
    budgets = sorted({float(r["budget_s"]) for r in rows})
    assert budgets == [1000.0, 2000.0, 3000.0, 4000.0]
    assert len(rows) == 2 * 3 * len(budgets)
    assert all(80 < float(r["best_test_acc"]) < 95 for r in rows if r["best_test_acc"])
    pool = tmp_path / "pool.csv"  # a beff-style prediction table over 30 archs
    with open(pool, "w") as f:
        f.write("index,beff_pred,gpu_seconds\n" + "".join(f"{i},{50 + (i * 7) % 40},{100 + i}\n" for i in range(30)))
    res = runner.invoke(app, ["search", "--method", "warmup_rea", "--scorer", "beff", "--warmup-scorer", "zen",
                              "--in-pool", "--pool-csv", str(pool), "--budget", "3000", "--seeds", "2",
                              "--shared", str(ground_truth), "--out", str(tmp_path / "b.csv")], terminal_width=160)
    assert res.exit_code == 0, res.output
    assert {int(r["best_index"]) for r in _csv(tmp_path / "b.csv")} <= set(range(30))
    bad = runner.invoke(app, ["search", "--method", "bayes", "--shared", str(ground_truth)])
    assert bad.exit_code == 2 and "unknown --method" in bad.output


def test_report_writes_figures(tmp_path):
    runner.invoke(app, ["score", *TINY, "--archs", "0-7", "--proxies", "naswot,params", "--store",
                        str(tmp_path / "s.sqlite"), "--out", str(tmp_path / "s.csv")])
    truth = tmp_path / "truth.csv"
    with open(truth, "w") as f:
        f.write("index,acc\n" + "".join(f"{i},{90 - (i * 3) % 7}\n" for i in range(8)))
    search = tmp_path / "search.csv"
    with open(search, "w") as f:
        f.write("method,scorer,warmup_scorer,seed,budget_s,evaluations,best_index,best_arch_str,best_test_acc\n")
        for seed in range(3):
            for b in (1000, 2000, 3000):
                f.write(f"rea,benchmark,,{seed},{b},{b // 100},0,x,{92 + b / 3000 + seed * 0.1}\n")
    res = runner.invoke(app, ["report", "--scores", str(tmp_path / "s.csv"), "--truth", "acc", "--truth-csv",
                              str(truth), "--search", str(search), "--out", str(tmp_path / "fig"), "--n-boot", "100"],
                        terminal_width=160)
    assert res.exit_code == 0, res.output
    assert "naswot" in res.output and "params" in res.output
    sizes = {p.name: Image.open(p).size for p in (tmp_path / "fig").glob("*.png")}
    assert set(sizes) == {"pred_vs_true.png", "scorers.png", "search_curves.png"}
    assert all(w > 300 and h > 200 for w, h in sizes.values())
    none = runner.invoke(app, ["report"])
    assert none.exit_code == 2 and "--scores" in none.output
    wrong = runner.invoke(app, ["report", "--search", str(truth), "--out", str(tmp_path / "fig")])
    assert wrong.exit_code == 2 and "not a search CSV" in wrong.output
