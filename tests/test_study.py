"""The NB201 study pipeline on a tiny synthetic CIFAR-10 tree: per-epoch records, resume after a
crash without losing or repeating work, the summary row and the rank command."""

from __future__ import annotations

import numpy as np
import pytest
from typer.testing import CliRunner

from nasbeff.cli import app
from nasbeff.store import ResultStore
from nasbeff.training.nb201_study import StudyConfig, load_study_data, run_key, summarize, train_arch


CFG = StudyConfig(epochs=3, train_size=30, valid_size=20, batch_size=10, beta_samples=16)


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def test_train_arch_records_every_epoch_and_resumes(tmp_path, tiny_cifar):
    data = load_study_data(tiny_cifar, CFG)
    assert len(data.train) == 30 and len(data.valid) == 20
    with ResultStore(tmp_path / "a.sqlite") as st:
        ref = train_arch(0, data, CFG, st, tmp_path / "ck_a")
    assert len(ref) == 3 and all(np.isfinite(m["beta_eff"]) for m in ref)

    class Crash(RuntimeError):
        pass

    def crash_after_two(epoch, metrics):
        if epoch == 2:
            raise Crash

    with ResultStore(tmp_path / "b.sqlite") as st:
        with pytest.raises(Crash):
            train_arch(0, data, CFG, st, tmp_path / "ck_b", on_epoch=crash_after_two)
        assert st.epochs_done(run_key(0, CFG)) == [1, 2] and not st.is_done(run_key(0, CFG))
        assert (tmp_path / "ck_b").exists()
        resumed = train_arch(0, data, CFG, st, tmp_path / "ck_b")
        assert st.is_done(run_key(0, CFG))
        assert all(r.n_writes == 1 for r in st.rows())  # nothing recorded twice
        assert not any((tmp_path / "ck_b").iterdir())  # checkpoint removed when done
    assert [m["valid_acc"] for m in resumed] == [m["valid_acc"] for m in ref]
    assert [m["beta_eff"] for m in resumed] == pytest.approx([m["beta_eff"] for m in ref], rel=1e-6)


def test_checkpointed_but_uncommitted_epoch_is_committed_from_the_checkpoint(tmp_path, tiny_cifar):
    data = load_study_data(tiny_cifar, CFG)
    with ResultStore(tmp_path / "c.sqlite") as st:
        calls = []

        def stop(epoch, metrics):
            calls.append(epoch)
            raise KeyboardInterrupt

        with pytest.raises(KeyboardInterrupt):
            train_arch(1, data, CFG, st, tmp_path / "ck", on_epoch=stop)
        # simulate a kill between the checkpoint and the commit: drop the committed epoch-1 row
        st._connection().execute("DELETE FROM epochs")
        st._connection().commit()
        assert st.epochs_done(run_key(1, CFG)) == []
        train_arch(1, data, CFG, st, tmp_path / "ck")
        assert st.epochs_done(run_key(1, CFG)) == [1, 2, 3]
        rows = summarize(st, [1, 5], CFG)
    assert [r["index"] for r in rows] == [1]  # arch 5 was never run
    assert set(rows[0]) >= {"index", "arch_str", "epochs_observed", "beff_pred", "lsv", "bsv", "gpu_seconds"}


def test_rank_command_writes_csv_and_rejects_bad_input(tmp_path, tiny_cifar):
    runner = CliRunner()
    args = ["rank", "--data", str(tiny_cifar), "--archs", "0,3", "--epochs", "3", "--train-size", "30",
            "--valid-size", "20", "--batch-size", "10", "--beta-samples", "16", "--store", str(tmp_path / "s.sqlite"),
            "--out", str(tmp_path / "rank.csv"), "--threads", "1"]
    res = runner.invoke(app, args)
    assert res.exit_code == 0, res.output
    lines = (tmp_path / "rank.csv").read_text().strip().splitlines()
    assert len(lines) == 3 and lines[0].startswith("index,arch_str,epochs_observed,beff_pred")
    again = runner.invoke(app, args)  # everything done: resumes instantly, same CSV
    assert again.exit_code == 0 and (tmp_path / "rank.csv").read_text().strip().splitlines() == lines
    bad = runner.invoke(app, ["rank", "--data", str(tiny_cifar), "--archs", "0-99999"])
    assert bad.exit_code == 2 and "0..15624" in bad.output
    missing = runner.invoke(app, ["rank", "--data", str(tmp_path / "nope")])
    assert missing.exit_code == 2 and "does not exist" in missing.output


def test_rank_no_resume_refuses_an_existing_store(tmp_path, tiny_cifar):
    (tmp_path / "s.sqlite").write_bytes(b"")
    runner = CliRunner()
    base = ["rank", "--data", str(tiny_cifar), "--archs", "0", "--epochs", "3", "--train-size", "30", "--valid-size",
            "20", "--batch-size", "10", "--beta-samples", "16", "--store", str(tmp_path / "s.sqlite"), "--threads", "1",
            "--out", str(tmp_path / "r.csv")]
    assert runner.invoke(app, base + ["--no-resume"]).exit_code == 0  # an empty file is no store yet
    res = runner.invoke(app, base + ["--no-resume"])
    assert res.exit_code == 2 and "already exists" in res.output
