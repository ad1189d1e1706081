"""Issue 9's doors, each checked end to end through the command line: dying workers, one run per
store, Ctrl-C, bad input rejected before any work, outputs under runs/, fallbacks that say so."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from nasbeff.cli import app

runner = CliRunner()
TINY_RANK = ["--epochs", "3", "--train-size", "30", "--valid-size", "20", "--batch-size", "10", "--beta-samples", "16"]


def _rank_args(data: Path, tmp_path: Path, archs: str) -> list[str]:
    return ["rank", "--data", str(data), "--archs", archs, *TINY_RANK, "--store", str(tmp_path / "s.sqlite"),
            "--out", str(tmp_path / "rank.csv")]


def _descendants(pid: int) -> set[int]:
    """Every live process whose parent chain leads to ``pid`` (read from /proc)."""
    parent = {}
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                stat = (d / "stat").read_text()
            except OSError:
                continue
            fields = stat[stat.rindex(")") + 2:].split()
            if fields[0] != "Z":
                parent[int(d.name)] = int(fields[1])
    out, frontier = set(), {pid}
    while frontier:
        frontier = {p for p, pp in parent.items() if pp in frontier and p not in out}
        out |= frontier
    return out


def _epochs_committed(db: Path) -> int:
    if not db.exists():
        return 0
    try:
        with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5) as c:
            return c.execute("SELECT COUNT(*) FROM epochs").fetchone()[0]
    except sqlite3.OperationalError:
        return 0


def _wait(cond, timeout: float, what: str) -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if cond():
            return
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def _start(args: list[str], tmp_path: Path) -> subprocess.Popen:
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    return subprocess.Popen([sys.executable, "-m", "nasbeff", *args, "--threads", "1"], cwd=tmp_path, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def _n_writes(db: Path) -> list[int]:
    with sqlite3.connect(db) as c:
        return [r[0] for r in c.execute("SELECT n_writes FROM epochs")]


@pytest.mark.slow
def test_kill_9_of_the_parent_kills_its_workers_and_the_rerun_resumes(tmp_path, tiny_cifar):
    args = _rank_args(tiny_cifar, tmp_path, "0,3,11,4000") + ["--workers", "2"]
    proc = _start(args, tmp_path)
    db = tmp_path / "s.sqlite"
    try:
        _wait(lambda: _epochs_committed(db) >= 1, 120, "a first committed epoch")
        workers = _descendants(proc.pid)
        assert workers, "rank --workers 2 started no worker process"
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
        _wait(lambda: not (_descendants(proc.pid) | workers) & {int(p.name) for p in Path("/proc").iterdir()
                                                                if p.name.isdigit() and _alive(int(p.name))},
              15, "the workers to die with their parent")
    finally:
        proc.kill()
    committed = _epochs_committed(db)
    res = subprocess.run([sys.executable, "-m", "nasbeff", *args, "--threads", "1"], cwd=tmp_path, capture_output=True,
                         text=True, timeout=300)
    assert res.returncode == 0, res.stdout + res.stderr
    assert _epochs_committed(db) == 12 and committed < 12
    assert set(_n_writes(db)) == {1}  # nothing trained and committed twice
    assert len((tmp_path / "rank.csv").read_text().strip().splitlines()) == 5


def _alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat[stat.rindex(")") + 2] != "Z"


@pytest.mark.slow
def test_a_second_run_on_the_same_store_refuses_at_once_and_ctrl_c_exits_130(tmp_path, tiny_cifar):
    args = _rank_args(tiny_cifar, tmp_path, "0,3,11")
    # 20 epochs: ~19 s of training after the first committed epoch, more than the 10 s the second run may
    # take to be refused, so Ctrl-C lands inside the run; with 3 epochs (~3 s left) an idle machine
    # sometimes finished before it
    args[args.index("--epochs") + 1] = "20"
    proc = _start(args, tmp_path)
    db = tmp_path / "s.sqlite"
    try:
        _wait(lambda: _epochs_committed(db) >= 1, 120, "a first committed epoch")
        t0 = time.monotonic()
        second = runner.invoke(app, args[:-2] + ["--out", str(tmp_path / "other.csv"), "--threads", "1"])
        assert time.monotonic() - t0 < 10
        assert second.exit_code == 2, second.output
        line = " ".join(second.output.split())
        assert "in use by another run" in line and f"pid {proc.pid}" in line and "since" in line
        assert not (tmp_path / "other.csv").exists()
        proc.send_signal(signal.SIGINT)
        out, _ = proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert proc.returncode == 130, out
    assert "interrupted — rerun the same command to resume" in " ".join(out.split())
    assert "Traceback" not in out
    res = runner.invoke(app, args + ["--threads", "1"])
    assert res.exit_code == 0, res.output
    assert _epochs_committed(db) == 3 * 20 and set(_n_writes(db)) == {1}


@pytest.mark.parametrize("extra, message", [
    (["--train-size", "30000"], "--train-size 30000 is not in 1..25,000"),
    (["--beta-samples", "40"], "--beta-samples 40 must lie in 1..--train-size (30)"),
    (["--workers", "0"], "--workers must be >= 1"),
    (["--schedule-epochs", "2"], "--schedule-epochs (2) must be >= epochs (3)"),
    (["--epochs", "0"], "epochs must be >= 1"),
    (["--mode", "exact"], "mode must be one of local, hessian"),
    (["--placement", "top"], "placement must be one of head, side"),
])
def test_bad_rank_options_are_rejected_before_any_work(tmp_path, tiny_cifar, extra, message):
    args = _rank_args(tiny_cifar, tmp_path, "0") + extra
    res = runner.invoke(app, args)
    assert res.exit_code == 2, res.output
    assert message in " ".join(res.output.split()) and "Traceback" not in res.output
    assert not (tmp_path / "s.sqlite").exists()  # no store, no data decoded


def test_unwritable_store_or_out_is_one_line_before_any_work(tmp_path, tiny_cifar):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    for opt in ("--store", "--out"):
        args = _rank_args(tiny_cifar, tmp_path, "0")
        args[args.index(opt) + 1] = str(blocker / "sub" / "x")
        res = runner.invoke(app, args)
        assert res.exit_code == 2 and f"{opt} " in res.output and "cannot write" in res.output, res.output
    res = runner.invoke(app, ["score", "--data", "digits", "--out", str(blocker / "x.csv"),
                              "--store", str(tmp_path / "z.sqlite")])
    assert res.exit_code == 2 and "--out" in res.output and not (tmp_path / "z.sqlite").exists()


def test_default_outputs_go_under_runs():
    import typer.main

    group = typer.main.get_command(app)
    for name, cmd in group.commands.items():
        for p in cmd.params:
            if p.name in ("out", "store", "png") and p.default not in (None, ""):
                assert str(p.default).startswith("runs"), (name, p.name, p.default)


def test_shared_data_env_pointing_nowhere_is_an_error(tmp_path, monkeypatch):
    monkeypatch.setenv("NASBEFF_SHARED_DATA", str(tmp_path / "nowhere"))
    res = runner.invoke(app, ["search", "--seeds", "1", "--out", str(tmp_path / "s.csv")])
    assert res.exit_code == 2 and "NASBEFF_SHARED_DATA" in res.output and "Traceback" not in res.output


def test_a_binary_scores_file_is_named_in_the_error(tmp_path):
    bad = tmp_path / "scores.csv"
    bad.write_bytes(bytes(range(256)) * 8)
    res = runner.invoke(app, ["report", "--scores", str(bad), "--out", str(tmp_path / "rep")])
    assert res.exit_code == 2 and "scores.csv" in res.output and "Traceback" not in res.output


def test_too_few_epochs_give_a_fallback_column_not_a_fake_prediction(tmp_path, tiny_cifar):
    args = _rank_args(tiny_cifar, tmp_path, "3")
    args[args.index("--epochs") + 1] = "2"
    res = runner.invoke(app, args + ["--threads", "1"], env={"COLUMNS": "200"})
    assert res.exit_code == 0, res.output
    import csv

    (row,) = list(csv.DictReader(open(tmp_path / "rank.csv")))
    assert row["beff_pred"] == "nan" and "at least 3 epochs" in row["beff_fallback"]
    assert row["lsv"] != "nan" and row["beff_out_of_range"] == "False"
    assert "no prediction" in res.output


def test_out_of_range_predictions_are_visible_in_the_figure(tmp_path, monkeypatch):
    from nasbeff.evaluation import plots

    labels = []
    real = plots.plt.Axes.scatter

    def spy(self, *a, label=None, **k):
        labels.append(label)
        return real(self, *a, label=label, **k)

    monkeypatch.setattr(plots.plt.Axes, "scatter", spy)
    plots.predicted_vs_true([50.0, 113.0, -4.0, 70.0], [60.0, 65.0, 40.0, 72.0], tmp_path / "p.png")
    assert "1 predicted > 100 % (drawn at 100)" in labels and "1 predicted < 0 % (drawn at 0)" in labels


def test_every_proxy_gives_a_cut_off_arch_the_documented_value():
    from nasbeff import proxies
    from nasbeff.spaces import build_cell_network, index_to_str, is_cut_off, nb201_channels

    assert is_cut_off(index_to_str(10))
    gen = torch.Generator().manual_seed(0)
    batches = [(torch.randn(16, 3, 8, 8, generator=gen), torch.randint(0, 10, (16,), generator=gen)) for _ in range(2)]
    torch.manual_seed(0)
    net = build_cell_network(nb201_channels(4, 1), index_to_str(10), 10, 3)
    for name in proxies.available():
        res = proxies.score(name, net, batches)
        assert res.value == proxies.CANNOT_SCORE == -np.inf and res.flag == "output does not depend on the input", name
    torch.manual_seed(0)
    ok = build_cell_network(nb201_channels(4, 1), index_to_str(11), 10, 3)
    assert np.isfinite(proxies.score("naswot", ok, batches).value)
