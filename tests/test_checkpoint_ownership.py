"""A checkpoint belongs to exactly one store and one unit, and a resumed unit has every epoch it
claims (issue 22, part 1): the delete-the-store-and-rerun and the killed-run-then-new-store
sequences must give the rows of a clean run, never a unit with epochs of two runs or fewer epochs."""

from __future__ import annotations

import csv
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from typer.testing import CliRunner

from nasbeff.training.checkpoint import UnitCheckpoint, checkpoint_dir
from nasbeff.cli import app
from nasbeff.store import ResultStore, StoreError
from nasbeff.training.nb201_study import StudyConfig, load_study_data, run_key, train_arch

CFG = StudyConfig(epochs=3, train_size=30, valid_size=20, batch_size=10, beta_samples=16)
RANK = ["--epochs", "3", "--train-size", "30", "--valid-size", "20", "--batch-size", "10", "--beta-samples", "16",
        "--threads", "1"]


pytestmark = pytest.mark.usefixtures("one_torch_thread")


class Crash(RuntimeError):
    pass


def _crash_at(epoch_to_crash: int):
    def hook(epoch, metrics):
        if epoch == epoch_to_crash:
            raise Crash

    return hook


def _drop(store_path: Path) -> None:
    for suffix in ("", "-wal", "-shm"):
        Path(f"{store_path}{suffix}").unlink(missing_ok=True)


def _assert_same_epochs(got: list[dict], ref: list[dict]) -> None:
    """Equal per-epoch metrics (timings aside) within float rounding."""
    assert len(got) == len(ref)
    for g, r in zip(got, ref):
        g = {k: v for k, v in g.items() if not k.startswith("seconds")}
        r = {k: v for k, v in r.items() if not k.startswith("seconds")}
        assert g.keys() == r.keys()
        assert g == pytest.approx(r, rel=1e-6)


def test_a_store_deleted_and_created_again_does_not_resume_the_old_checkpoint(tmp_path, tiny_cifar):
    data = load_study_data(tiny_cifar, CFG)
    with ResultStore(tmp_path / "ref.sqlite") as st:
        ref = train_arch(0, data, CFG, st)
    store = tmp_path / "s.sqlite"
    with ResultStore(store) as st:
        with pytest.raises(Crash):
            train_arch(0, data, CFG, st, on_epoch=_crash_at(2))
        assert st.epochs_done(run_key(0, CFG)) == [1, 2]
    assert list(checkpoint_dir(store).glob("*.pt"))  # the epoch-2 checkpoint is left behind
    _drop(store)  # an ordinary way to start over
    with ResultStore(store) as st:
        got = train_arch(0, data, CFG, st)
        assert st.epochs_done(run_key(0, CFG)) == [1, 2, 3] and st.is_done(run_key(0, CFG))
    _assert_same_epochs(got, ref)
    assert not list(checkpoint_dir(store).glob("*.pt"))


def test_a_checkpoint_of_another_store_in_a_shared_folder_is_not_resumed(tmp_path, tiny_cifar):
    data = load_study_data(tiny_cifar, CFG)
    shared = tmp_path / "ck"  # both stores told to use one folder: the stamp still tells them apart
    with ResultStore(tmp_path / "a.sqlite") as a:
        with pytest.raises(Crash):
            train_arch(0, data, CFG, a, shared, on_epoch=_crash_at(2))
    with ResultStore(tmp_path / "b.sqlite") as b:
        got = train_arch(0, data, CFG, b, shared)
        assert b.epochs_done(run_key(0, CFG)) == [1, 2, 3]
        assert all(r.n_writes == 1 for r in b.rows())
    with ResultStore(tmp_path / "ref.sqlite") as st:
        ref = train_arch(0, data, CFG, st)
    _assert_same_epochs(got, ref)


def test_a_checkpoint_the_store_epochs_do_not_reach_is_discarded(tmp_path, tiny_cifar):
    data = load_study_data(tiny_cifar, CFG)
    with ResultStore(tmp_path / "s.sqlite") as st:
        with pytest.raises(Crash):
            train_arch(0, data, CFG, st, on_epoch=_crash_at(2))
        st._connection().execute("DELETE FROM epochs WHERE epoch = 1")  # the store lost epoch 1
        got = train_arch(0, data, CFG, st)
        assert st.epochs_done(run_key(0, CFG)) == [1, 2, 3]
    with ResultStore(tmp_path / "ref.sqlite") as st:
        ref = train_arch(0, data, CFG, st)
    _assert_same_epochs(got, ref)


def test_a_unit_is_marked_done_only_with_every_epoch(tmp_path):
    key = run_key(0, CFG)
    with ResultStore(tmp_path / "s.sqlite") as st:
        for e in (2, 3):
            st.record_epoch(key, e, {"valid_acc": 0.1})
        ck = UnitCheckpoint.of(st, key, "x.pt")
        with pytest.raises(StoreError, match=r"missing \[1\]"):
            ck.finish(st, key, 3, first_epoch=1)
        assert not st.is_done(key)
        st.record_epoch(key, 1, {"valid_acc": 0.1})
        ck.finish(st, key, 3, first_epoch=1)
        assert st.is_done(key)


def test_store_id_is_fixed_per_file_and_new_after_delete(tmp_path):
    p = tmp_path / "s.sqlite"
    with ResultStore(p) as st:
        first = st.store_id
    with ResultStore(p) as st:
        assert st.store_id == first and len(first) == 32
    _drop(p)
    with ResultStore(p) as st:
        assert st.store_id != first


def _rows(path: Path) -> dict[str, dict[str, str]]:
    with open(path, newline="") as f:
        return {r["index"]: r for r in csv.DictReader(f)}


def _same_rows(a: dict, b: dict) -> None:
    assert a.keys() == b.keys()
    for i in a:
        for col in a[i]:
            if "seconds" in col or "overhead" in col:  # timings
                continue
            x, y = a[i][col], b[i][col]
            try:
                assert float(x) == pytest.approx(float(y), rel=1e-5, abs=1e-9), (i, col)
            except ValueError:
                assert x == y, (i, col)


def test_rank_interrupted_store_deleted_rerun_gives_the_clean_rows(tmp_path, tiny_cifar, monkeypatch):
    """The user's sequence: rank, Ctrl-C mid-run, delete the store, run the same command again."""
    runner = CliRunner()
    clean = tmp_path / "clean"
    args = ["rank", "--data", str(tiny_cifar), "--archs", "0,3", *RANK]
    res = runner.invoke(app, [*args, "--store", str(clean / "s.sqlite"), "--out", str(clean / "r.csv")])
    assert res.exit_code == 0, res.output
    work = tmp_path / "work"
    cmd = [*args, "--store", str(work / "s.sqlite"), "--out", str(work / "r.csv")]
    original = ResultStore.record_epoch
    calls = []

    def ctrl_c_on_the_fifth(self, key, epoch, metrics, **kw):
        calls.append(epoch)
        if len(calls) == 5:  # arch 0 done (3 epochs), arch 3 at epoch 2 checkpointed
            raise KeyboardInterrupt
        return original(self, key, epoch, metrics, **kw)

    monkeypatch.setattr(ResultStore, "record_epoch", ctrl_c_on_the_fifth)
    assert runner.invoke(app, cmd).exit_code == 130
    monkeypatch.setattr(ResultStore, "record_epoch", original)
    _drop(work / "s.sqlite")
    res = runner.invoke(app, cmd)
    assert res.exit_code == 0, res.output
    rows = _rows(work / "r.csv")
    assert all(r["epochs_observed"] == "3" for r in rows.values())
    _same_rows(rows, _rows(clean / "r.csv"))


@pytest.mark.slow
def test_sigterm_then_time_limited_run_on_a_new_store_in_the_same_folder(tmp_path, tiny_cifar):
    """A SIGTERM'd run leaves checkpoints; a --time-limit run of another store in that folder
    must train its archs from scratch, not from them."""
    runner = CliRunner()
    args = ["rank", "--data", str(tiny_cifar), "--archs", "0,3", *RANK]
    clean = tmp_path / "clean"
    assert runner.invoke(app, [*args, "--store", str(clean / "s.sqlite"), "--out", str(clean / "r.csv")]).exit_code == 0
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    first = [sys.executable, "-m", "nasbeff", *args, "--store", str(tmp_path / "a.sqlite"), "--out",
             str(tmp_path / "a.csv")]
    proc = subprocess.Popen(first, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def checkpointed_epoch() -> int:  # the latest epoch checkpointed by the first run (0: none yet)
        epochs = [0]
        for f in (tmp_path / "checkpoints").rglob("*.pt"):
            try:
                epochs.append(torch.load(f, weights_only=False)["epoch"])
            except (OSError, RuntimeError, KeyError, EOFError):
                pass
        return max(epochs)

    deadline = time.time() + 120
    while time.time() < deadline and checkpointed_epoch() < 2 and proc.poll() is None:
        time.sleep(0.02)
    proc.send_signal(signal.SIGTERM)
    proc.wait(60)
    assert checkpointed_epoch() >= 2, "the killed run left no checkpoint past epoch 1"
    res = runner.invoke(app, [*args, "--store", str(tmp_path / "b.sqlite"), "--out", str(tmp_path / "b.csv"),
                              "--time-limit", "10"])
    assert res.exit_code == 0, res.output
    rows = _rows(tmp_path / "b.csv")
    assert all(r["epochs_observed"] == "3" for r in rows.values())
    _same_rows(rows, _rows(clean / "r.csv"))
