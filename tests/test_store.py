"""Tests for nasbeff.store: API, error paths, SIGKILL-resume and concurrent writers."""

from __future__ import annotations

import csv
import json
import math
import os
import random
import re
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from nasbeff.store import (
    APPLICATION_ID,
    NO_EPOCH,
    SCHEMA_VERSION,
    ConflictError,
    NotAStoreError,
    ResultStore,
    RunKey,
    StoreBusyError,
    StoreCorruptError,
    StoreError,
    canonical_json,
    config_hash,
    read_units_csv,
)

WORKER = Path(__file__).with_name("_store_worker.py")
sys.path.insert(0, str(WORKER.parent))
import _store_worker as worker  # noqa: E402


def key(arch: str = "a0", seed: int = 0, scorer: str = "train", dataset: str = "cifar10") -> RunKey:
    return RunKey("nb201", arch, dataset, scorer, "cfg0", seed)


def raw(path: Path) -> sqlite3.Connection:
    """A plain sqlite3 connection for inspecting a store (never on a file under test for bytes)."""
    return sqlite3.connect(str(path), isolation_level=None)


def side_files(path: Path) -> list[str]:
    return sorted(p.name for p in path.parent.iterdir() if p.name != path.name)


# ----------------------------------------------------------------------------- config_hash


def test_config_hash_canonical_and_stable():
    a = {"lr": 0.1, "epochs": 200, "opt": {"name": "sgd", "momentum": 0.9}, "aug": ["flip", "crop"]}
    b = {"aug": ("flip", "crop"), "opt": {"momentum": 0.9, "name": "sgd"}, "epochs": 200.0, "lr": np.float64(0.1)}
    assert canonical_json(a) == '{"aug":["flip","crop"],"epochs":200,"lr":0.1,"opt":{"momentum":0.9,"name":"sgd"}}'
    assert config_hash(a) == config_hash(b) == "f9e85f3b2f450bd9"  # regression: never change silently
    assert config_hash({"x": 1}) != config_hash({"x": True}) != config_hash({"x": "1"})
    assert config_hash({"lr": 0.1}) != config_hash({"lr": 0.1 + 1e-17 + 1e-16})
    assert config_hash({"n": np.int64(3)}) == config_hash({"n": 3})


@pytest.mark.parametrize(
    "bad, exc",
    [({"x": float("nan")}, ValueError), ({1: 2}, TypeError), ({"x": {1, 2}}, TypeError), ([1], TypeError)],
)
def test_config_hash_rejects(bad, exc):
    with pytest.raises(exc):
        config_hash(bad)


@settings(max_examples=40, deadline=None)
@given(
    st.dictionaries(
        st.text(max_size=5),
        st.one_of(st.integers(), st.floats(allow_nan=False, allow_infinity=False), st.text(max_size=5), st.booleans()),
        max_size=6,
    ),
    st.randoms(use_true_random=False),
)
def test_config_hash_ignores_key_order(config, rnd):
    items = list(config.items())
    rnd.shuffle(items)
    assert config_hash(dict(items)) == config_hash(config)


def test_runkey_validation():
    assert key(seed=np.int64(3)).seed == 3 and type(key(seed=np.int64(3)).seed) is int
    with pytest.raises(TypeError, match="arch"):
        RunKey("s", 5, "d", "sc", "h", 0)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="seed"):
        RunKey("s", "a", "d", "sc", "h", True)
    with pytest.raises(TypeError):
        RunKey("", "a", "d", "sc", "h", 0)


# ----------------------------------------------------------------------------- basic API


def test_create_reopen_and_header(tmp_path):
    path = tmp_path / "nested" / "dir" / "study.sqlite"
    with ResultStore(path) as s:
        assert s.record_epoch(key(), 0, {"train_loss": 2.3})
    with ResultStore(path) as s:
        assert s.epochs_done(key()) == [0]
    con = raw(path)
    assert con.execute("PRAGMA application_id").fetchone()[0] == APPLICATION_ID
    assert con.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert dict(con.execute("SELECT key, value FROM meta"))["schema_version"] == str(SCHEMA_VERSION)
    con.close()
    assert int.from_bytes(path.read_bytes()[68:72], "big") == APPLICATION_ID


def test_empty_file_becomes_store(tmp_path):
    path = tmp_path / "empty.sqlite"
    path.touch()
    with ResultStore(path) as s:
        s.record_epoch(key(), 0, {"a": 1})
    with ResultStore(path) as s:
        assert s.count() == 1


def test_record_resume_and_done(tmp_path):
    with ResultStore(tmp_path / "s.sqlite") as s:
        k1, k2 = key("a1"), key("a2")
        for e in (2, 0, 1):
            assert s.record_epoch(k1, e, {"train_loss": 1.0 / (e + 1), "valid_acc": 0.1 * e})
        assert s.epochs_done(k1) == [0, 1, 2]
        assert s.epochs_done(k2) == []
        assert s.pending([k2, k1, k2]) == [k2, k1, k2]
        assert not s.is_done(k1)
        with pytest.raises(StoreError, match="missing \\[3\\]"):
            s.mark_done(k1, epochs=4)
        with pytest.raises(StoreError, match="no epoch"):
            s.mark_done(k2)
        assert s.mark_done(k1, epochs=3) is True
        assert s.mark_done(k1, epochs=3) is False  # idempotent, counted in n_marks
        assert s.is_done(k1) and s.pending([k1, k2]) == [k2]
        assert s.record_epoch(k1, 2, {"train_loss": 1.0 / 3, "valid_acc": 0.2}) is False  # same values: fine
        with pytest.raises(StoreError, match="marked done"):
            s.record_epoch(k1, 3, {"train_loss": 0.1})
        assert s.unmark_done(k1) and not s.is_done(k1)
        assert s.record_epoch(k1, 3, {"train_loss": 0.1})


def test_duplicate_conflict_overwrite(tmp_path):
    with ResultStore(tmp_path / "s.sqlite") as s:
        k = key()
        assert s.record_epoch(k, 0, {"loss": 0.5, "acc": 1}) is True
        assert s.record_epoch(k, 0, {"acc": 1.0, "loss": np.float32(0.5)}) is False  # equal values: no-op
        with pytest.raises(ConflictError, match="loss: 0.5 -> 0.25"):
            s.record_epoch(k, 0, {"loss": 0.25, "acc": 1})
        with pytest.raises(ConflictError):
            s.record_epoch(k, 0, {"loss": 0.5})  # a missing metric is a difference too
        (rec,) = s.rows()
        assert rec.metrics == {"loss": 0.5, "acc": 1} and rec.n_writes == 2
        assert s.record_epoch(k, 0, {"loss": 0.25, "acc": 1}, overwrite=True) is True
        (rec,) = s.rows()
        assert rec.metrics["loss"] == 0.25 and rec.n_writes == 3


def test_resume_compares_only_deterministic_metrics(tmp_path):
    """A resumed run re-measuring an epoch gets other timings: not a conflict; the first stay."""
    from nasbeff.store import is_timing_metric

    assert all(map(is_timing_metric, ("seconds_train", "seconds_beta", "zen_seconds", "beta_overhead")))
    assert not any(map(is_timing_metric, ("train_loss", "beta_eff", "valid_acc")))
    with ResultStore(tmp_path / "s.sqlite") as s:
        k = key()
        s.record_epoch(k, 1, {"train_loss": 0.5, "seconds_train": 3.0, "seconds_beta": 0.1})
        assert s.record_epoch(k, 1, {"train_loss": 0.5, "seconds_train": 4.2, "seconds_beta": 0.3}) is False
        (rec,) = s.rows()
        assert rec.metrics["seconds_train"] == 3.0 and rec.n_writes == 2
        with pytest.raises(ConflictError, match="train_loss"):
            s.record_epoch(k, 1, {"train_loss": 0.25, "seconds_train": 3.0, "seconds_beta": 0.1})


def test_nonfinite_metrics_stored_as_null(tmp_path):
    with ResultStore(tmp_path / "s.sqlite") as s:
        k = key()
        s.record_epoch(k, 0, {"loss": float("nan"), "beta_eff": float("inf"), "acc": np.float64("-inf"), "ok": 1.5})
        assert s.record_epoch(k, 0, {"loss": math.nan, "beta_eff": None, "acc": None, "ok": 1.5}) is False
        (rec,) = s.rows()
        assert rec.metrics == {"loss": None, "beta_eff": None, "acc": None, "ok": 1.5}
        df = s.to_dataframe()
        assert math.isnan(df.loc[0, "loss"]) and df.loc[0, "ok"] == 1.5


@pytest.mark.parametrize(
    "metrics, exc",
    [
        ({"epoch": 1.0}, ValueError),
        ({"seed": 1.0}, ValueError),
        ({"": 1.0}, TypeError),
        ({3: 1.0}, TypeError),
        ({"x": [1, 2]}, TypeError),
        ({"x": np.zeros(3)}, TypeError),
        ([("x", 1)], TypeError),
    ],
)
def test_bad_metrics_rejected(tmp_path, metrics, exc):
    with ResultStore(tmp_path / "s.sqlite") as s:
        with pytest.raises(exc):
            s.record_epoch(key(), 0, metrics)
        assert s.count() == 0


def test_bad_epochs_rejected(tmp_path):
    with ResultStore(tmp_path / "s.sqlite") as s:
        for bad, exc in [(-2, ValueError), (1.0, TypeError), (True, TypeError)]:
            with pytest.raises(exc):
                s.record_epoch(key(), bad, {"x": 1})


def test_scorer_without_epochs(tmp_path):
    with ResultStore(tmp_path / "s.sqlite") as s:
        k = key(scorer="synflow")
        s.record_epoch(k, None, {"score": 12.5, "seconds": 0.01})
        assert s.epochs_done(k) == [NO_EPOCH]
        assert s.record_epoch(k, NO_EPOCH, {"score": 12.5, "seconds": 0.01}) is False
        with pytest.raises(ValueError, match="cannot mix"):
            s.record_epoch(k, 0, {"score": 1.0})
        s.mark_done(k)
        assert s.is_done(k)
        s.record_epoch(key("b", scorer="train"), None, {"x": 1})
        with pytest.raises(ValueError, match="cannot mix"):
            s.record_epoch(key("b", scorer="train"), 0, {"x": 1})
        assert [r.epoch for r in s.rows(epoch=None)] == [NO_EPOCH, NO_EPOCH]


def test_rows_filters_and_count(tmp_path):
    with ResultStore(tmp_path / "s.sqlite") as s:
        for arch in ("a", "b", "c"):
            for seed in (0, 1):
                for e in range(3):
                    s.record_epoch(key(arch, seed), e, {"m": e + seed})
        s.mark_done(key("b", 1), epochs=3)
        assert s.count() == 18
        assert s.count(arch="a") == 6
        assert s.count(arch=["a", "c"], seed=1) == 6
        assert s.count(arch=[], seed=1) == 0
        assert [r.epoch for r in s.rows(done=True)] == [0, 1, 2]
        assert s.count(done=False) == 15
        picked = [(r.key.arch, r.key.seed, r.epoch) for r in s.rows(epoch=2, seed=0)]
        assert picked == [("a", 0, 2), ("b", 0, 2), ("c", 0, 2)]
        with pytest.raises(TypeError, match="unknown filter"):
            list(s.rows(archh="a"))


def test_csv_and_dataframe_export(tmp_path):
    with ResultStore(tmp_path / "s.sqlite") as s:
        s.record_epoch(key("a"), 0, {"train_loss": 2.0, "valid_acc": 0.1})
        s.record_epoch(key("a"), 1, {"train_loss": 1.0, "beta_eff": 0.3, "note": "x,y"})
        s.record_epoch(key("b", scorer="synflow"), None, {"score": 7, "flag": True})
        out = tmp_path / "out.csv"
        assert s.to_csv(out) == 3
        df = s.to_dataframe()
        assert s.to_csv(tmp_path / "none.csv", arch="zzz") == 0
    with open(out, newline="") as f:
        rows = list(csv.DictReader(f))
    cols = ["space", "arch", "dataset", "scorer", "config_hash", "seed", "epoch"]
    assert list(rows[0]) == [*cols, "beta_eff", "flag", "note", "score", "train_loss", "valid_acc"]
    assert [(r["arch"], r["epoch"]) for r in rows] == [("a", "0"), ("a", "1"), ("b", "-1")]
    assert rows[0]["beta_eff"] == "" and rows[1]["note"] == "x,y" and rows[2]["score"] == "7"
    assert float(rows[1]["beta_eff"]) == 0.3
    assert list(df.columns) == list(rows[0]) and len(df) == 3
    assert df["train_loss"].tolist()[:2] == [2.0, 1.0] and math.isnan(df["train_loss"][2])
    assert (tmp_path / "none.csv").read_text().startswith("space,arch")
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]


def test_export_done_plain_and_gzip_round_trip(tmp_path):
    with ResultStore(tmp_path / "s.sqlite") as s:
        s.record_epoch(key("a", scorer="meco"), None, {"value": 0.1 + 0.2, "seconds": 0.5})
        s.mark_done(key("a", scorer="meco"))
        s.record_epoch(key("b", scorer="meco"), None, {"value": -3.0})  # not done: never exported
        assert s.export_done(tmp_path / "pairs.csv") == 1
        assert s.export_done(tmp_path / "pairs.csv.gz") == 1
        first = (tmp_path / "pairs.csv.gz").read_bytes()
        assert first[:2] == b"\x1f\x8b"  # gzip magic
        assert s.export_done(tmp_path / "pairs.csv.gz") == 1
        assert (tmp_path / "pairs.csv.gz").read_bytes() == first  # deterministic: no name, mtime 0
    plain, packed = read_units_csv(tmp_path / "pairs.csv"), read_units_csv(tmp_path / "pairs.csv.gz")
    assert plain == packed and [r["arch"] for r in plain] == ["a"]
    assert json.loads(plain[0]["metrics"])["value"] == 0.1 + 0.2  # exact
    with ResultStore(tmp_path / "fresh.sqlite") as fresh:
        assert fresh.import_done(tmp_path / "pairs.csv.gz") == 1
        assert fresh.import_done(tmp_path / "pairs.csv.gz") == 0  # nothing twice
        assert fresh.is_done(key("a", scorer="meco")) and not fresh.is_done(key("b", scorer="meco"))
        with ResultStore(tmp_path / "more.sqlite") as other:  # merging into an existing .gz keeps its lines
            other.record_epoch(key("c", scorer="meco"), None, {"value": 2.0})
            other.mark_done(key("c", scorer="meco"))
            assert other.export_done(tmp_path / "pairs.csv.gz") == 2
    assert [r["arch"] for r in read_units_csv(tmp_path / "pairs.csv.gz")] == ["a", "c"]
    (tmp_path / "fake.csv.gz").write_bytes((tmp_path / "pairs.csv").read_bytes())  # plain text named .gz
    with pytest.raises(StoreError, match=r"fake\.csv\.gz: not a readable results file \(BadGzipFile\)"):
        read_units_csv(tmp_path / "fake.csv.gz")
    (tmp_path / "cut.csv.gz").write_bytes(first[: len(first) // 2])  # truncated
    with pytest.raises(StoreError, match=r"cut\.csv\.gz: not a readable results file \(EOFError\)"):
        read_units_csv(tmp_path / "cut.csv.gz")
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]


def test_a_reader_closing_elsewhere_keeps_a_live_writers_wal(tmp_path):
    """Opening a store must not close a descriptor of the database file while SQLite holds locks in
    this process (POSIX drops them all): otherwise another process's last close deletes the WAL the
    writer still uses, and its later commits stay invisible to everyone else until it closes."""
    path = tmp_path / "s.sqlite"
    with ResultStore(path) as s:
        s.record_epoch(key("a0"), 0, {"x": 0})  # closed: the WAL is folded in and removed
    count = ("import sqlite3, sys; c = sqlite3.connect(sys.argv[1]); "
             "print(c.execute('SELECT count(*) FROM epochs').fetchone()[0]); c.close()")

    def seen_elsewhere() -> int:
        return int(subprocess.run([sys.executable, "-c", count, str(path)], capture_output=True, text=True,
                                  check=True).stdout)

    with ResultStore(path) as writer:  # opened with no WAL: the truncation check runs
        writer.record_epoch(key("a1"), 0, {"x": 1})
        with ResultStore(path):  # a second connection of this process (no file read: its locks stay)
            pass
        assert seen_elsewhere() == 2  # the other process's close must not take the WAL away
        assert path.with_name("s.sqlite-wal").exists()
        writer.record_epoch(key("a2"), 0, {"x": 2})
        assert seen_elsewhere() == 3
    assert seen_elsewhere() == 3


def test_transaction_batches_and_rolls_back(tmp_path):
    with ResultStore(tmp_path / "s.sqlite", synchronous="NORMAL") as s:
        with s.transaction():
            for i in range(50):
                s.record_epoch(key(f"p{i}", scorer="proxy"), None, {"score": i})
                s.mark_done(key(f"p{i}", scorer="proxy"))
            with pytest.raises(ConflictError):  # a failed write inside keeps the others
                s.record_epoch(key("p0", scorer="proxy"), None, {"score": -1})
        assert s.count() == 50
        with pytest.raises(RuntimeError):
            with s.transaction():
                s.record_epoch(key("q"), 0, {"x": 1})
                with s.transaction():  # nested: joins the outer one
                    s.record_epoch(key("q"), 1, {"x": 2})
                raise RuntimeError("boom")
        assert s.epochs_done(key("q")) == [] and s.count() == 50


def test_configs_table(tmp_path):
    with ResultStore(tmp_path / "s.sqlite") as s:
        cfg = {"lr": 0.1, "epochs": 200}
        h = s.save_config(cfg)
        assert h == config_hash(cfg) == s.save_config({"epochs": 200.0, "lr": 0.1})
        assert s.get_config(h) == cfg
        with pytest.raises(KeyError):
            s.get_config("0" * 16)


def test_closed_store_and_bad_args(tmp_path):
    s = ResultStore(tmp_path / "s.sqlite")
    s.close()
    s.close()
    with pytest.raises(StoreError, match="closed"):
        s.is_done(key())
    with pytest.raises(ValueError):
        ResultStore(tmp_path / "t.sqlite", synchronous="OFF")


def test_busy_store_gives_clear_error(tmp_path):
    path = tmp_path / "s.sqlite"
    with ResultStore(path, timeout=0.05) as s:
        other = raw(path)
        other.execute("BEGIN IMMEDIATE")  # another process holding the write lock
        with pytest.raises(StoreBusyError, match="locked"):
            s.record_epoch(key(), 0, {"x": 1})
        assert s.epochs_done(key()) == []  # readers are not blocked (WAL)
        other.execute("ROLLBACK")
        other.close()
        assert s.record_epoch(key(), 0, {"x": 1})


# ----------------------------------------------------------------------------- foreign / corrupt files


def _assert_untouched(path: Path, before: bytes, others: list[str]) -> None:
    assert path.read_bytes() == before
    assert side_files(path) == others  # no -wal / -shm / -journal left behind


@pytest.mark.parametrize("kind", ["table", "empty_db", "wal_db", "our_id_no_meta"])
def test_foreign_sqlite_file_is_refused_and_untouched(tmp_path, kind):
    path = tmp_path / "foreign.db"
    con = raw(path)
    if kind == "wal_db":
        con.execute("PRAGMA journal_mode=WAL")
    if kind == "empty_db":
        con.execute("PRAGMA user_version = 7")
    else:
        if kind == "our_id_no_meta":
            con.execute(f"PRAGMA application_id = {APPLICATION_ID}")
        con.execute("CREATE TABLE results (x INTEGER)")
        con.execute("INSERT INTO results VALUES (42)")
    con.close()
    before = path.read_bytes()
    with pytest.raises(NotAStoreError, match="not a nasbeff store"):
        ResultStore(path)
    _assert_untouched(path, before, [])


@settings(max_examples=25, deadline=None)
@given(st.binary(min_size=1, max_size=5000))
def test_random_bytes_are_refused_and_untouched(data):
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "junk.sqlite"
        path.write_bytes(data)
        with pytest.raises(NotAStoreError, match="not a nasbeff store"):
            ResultStore(path)
        _assert_untouched(path, data, [])


def test_sqlite_magic_with_garbage(tmp_path):
    rng = random.Random(7)
    for app_id, exc in [(1234, NotAStoreError), (APPLICATION_ID, StoreCorruptError)]:
        path = tmp_path / f"g{app_id}.sqlite"
        data = bytearray(rng.randbytes(8192))
        data[:16] = b"SQLite format 3\x00"
        data[68:72] = app_id.to_bytes(4, "big")
        path.write_bytes(bytes(data))
        with pytest.raises(exc):
            ResultStore(path)
        assert path.read_bytes() == data


def test_directory_is_refused(tmp_path):
    with pytest.raises(NotAStoreError, match="not a regular file"):
        ResultStore(tmp_path)


def _filled_store(path: Path, n: int = 300) -> bytes:
    with ResultStore(path, synchronous="NORMAL") as s, s.transaction():
        for i in range(n):
            s.record_epoch(key(f"arch{i:04d}"), 0, {"train_loss": i / 7, "valid_acc": i / 11, "txt": "x" * 40})
    return path.read_bytes()


def test_truncated_store_is_reported_and_untouched(tmp_path):
    path = tmp_path / "s.sqlite"
    data = _filled_store(path)
    assert len(data) >= 8 * 4096 and side_files(path) == []
    for cut in (len(data) // 2, len(data) - 4096, 4096):
        path.write_bytes(data[:cut])
        with pytest.raises(StoreCorruptError, match="truncated"):
            ResultStore(path)
        _assert_untouched(path, data[:cut], [])
    path.write_bytes(data[:60])
    with pytest.raises(NotAStoreError):
        ResultStore(path)


def test_damaged_pages_are_reported_and_untouched(tmp_path):
    path = tmp_path / "s.sqlite"
    data = bytearray(_filled_store(path))
    data[4096:] = random.Random(3).randbytes(len(data) - 4096)
    path.write_bytes(bytes(data))
    with pytest.raises(StoreCorruptError, match="corrupt"):
        with ResultStore(path) as s:
            list(s.rows())
            s.check()
    _assert_untouched(path, bytes(data), [])


def test_newer_schema_is_refused(tmp_path):
    path = tmp_path / "s.sqlite"
    ResultStore(path).close()
    con = raw(path)
    con.execute("UPDATE meta SET value = '99' WHERE key = 'schema_version'")
    con.close()
    with pytest.raises(StoreError, match="schema version 99.*newer"):
        ResultStore(path)


def _make_v1_store(path: Path) -> None:
    """A schema-1 store (before the lease table) holding one epoch and one done unit."""
    with ResultStore(path) as s:
        s.record_epoch(key(), 0, {"x": 1.5})
        s.mark_done(key())
    con = raw(path)
    con.execute("DROP TABLE lease")
    con.execute("UPDATE meta SET value = '1' WHERE key = 'schema_version'")
    con.close()


def test_version_1_store_is_migrated_in_place(tmp_path):
    path = tmp_path / "s.sqlite"
    _make_v1_store(path)
    with ResultStore(path) as s:
        assert [r.metrics for r in s.rows()] == [{"x": 1.5}] and s.is_done(key())
        with s.acquire_lease("after migration"):
            s.record_epoch(key("b"), 0, {"x": 2.0})
        s.check()
    con = raw(path)
    assert dict(con.execute("SELECT key, value FROM meta"))["schema_version"] == str(SCHEMA_VERSION) == "2"
    assert con.execute("SELECT COUNT(*) FROM lease").fetchone() == (0,)
    con.close()


def test_unknown_older_schema_and_missing_tables(tmp_path):
    path = tmp_path / "s.sqlite"
    ResultStore(path).close()
    con = raw(path)
    con.execute("UPDATE meta SET value = '0' WHERE key = 'schema_version'")
    con.close()
    with pytest.raises(StoreError, match="schema version 0, written by an older nasbeff; this version reads schema 2") as e:
        ResultStore(path)
    assert "\n" not in str(e.value)
    con = raw(path)
    con.execute("UPDATE meta SET value = '2' WHERE key = 'schema_version'")
    con.execute("DROP TABLE lease")
    con.close()
    with pytest.raises(StoreCorruptError, match="lacks tables \\['lease'\\]"):
        ResultStore(path)


# ----------------------------------------------------------------------------- the run lease


def _lease_row(path: Path) -> dict | None:
    con = raw(path)
    con.row_factory = sqlite3.Row
    row = con.execute("SELECT * FROM lease").fetchone()
    con.close()
    return None if row is None else dict(row)


def _put_lease(path: Path, **fields) -> None:
    """Write the lease row as another run (on another host) would."""
    now = time.time()
    row = {"run_id": "f" * 32, "host": "elsewhere", "pid": 1, "command": "other run", "started_at": now - 60,
           "heartbeat_at": now, "interval_s": 0.2, **fields}
    con = raw(path)
    con.execute(f"INSERT OR REPLACE INTO lease (id, {', '.join(row)}) VALUES (1{', ?' * len(row)})", tuple(row.values()))
    con.close()


def test_second_run_is_refused_at_once_with_one_line(tmp_path):
    path = tmp_path / "s.sqlite"
    with ResultStore(path) as s1, s1.acquire_lease("nasbeff rank --archs 0-199") as lease:
        assert len(lease.run_id) == 32 and lease.took_over is None and s1.run_id == lease.run_id
        assert s1.record_epoch(key(), 0, {"x": 1})
        with ResultStore(path, timeout=30) as s2:
            t0 = time.monotonic()
            with pytest.raises(StoreBusyError) as e:
                s2.acquire_lease("nasbeff rank --archs 200-399")
            assert time.monotonic() - t0 < 1.0
            msg = str(e.value)
            assert "\n" not in msg and msg.startswith(f"{path} is in use by another run: ")
            for part in ("'nasbeff rank --archs 0-199'", f"pid {os.getpid()} on {socket.gethostname()}", " since ",
                         "wait for it to finish or stop it"):
                assert part in msg
            assert re.search(r", last heartbeat \d+ s ago; ", msg)
            assert s2.epochs_done(key()) == [0]  # reads are always allowed
        with pytest.raises(StoreError, match="one lease per run"):
            s1.acquire_lease("again")
        row = _lease_row(path)
        assert row["run_id"] == lease.run_id and row["pid"] == os.getpid() and row["command"] == lease.description
    assert _lease_row(path) is None  # released on leaving the with block
    for bad in (0, -1.0, math.inf, True):
        with ResultStore(path) as s, pytest.raises(ValueError, match="interval_s"):
            s.acquire_lease("x", bad)


def test_workers_join_the_run(tmp_path):
    path = tmp_path / "s.sqlite"
    with ResultStore(path) as s, s.acquire_lease("run") as lease:
        with ResultStore(path, run_id=lease.run_id) as worker_store:
            assert worker_store.record_epoch(key("w"), 0, {"x": 1})
            worker_store.mark_done(key("w"))
            worker_store.check_lease()
        with ResultStore(path) as same_process:  # the holder's own process may write through any store
            assert same_process.record_epoch(key("p"), 0, {"x": 2})
        with pytest.raises(StoreBusyError, match="lease of run 0+ was taken over by run .*this worker stops"):
            ResultStore(path, run_id="0" * 32)
    with pytest.raises(StoreBusyError, match="was released; this worker stops"):
        ResultStore(path, run_id=lease.run_id)
    with pytest.raises(TypeError, match="run_id"):
        ResultStore(path, run_id="")


def test_heartbeat_advances(tmp_path):
    path = tmp_path / "s.sqlite"
    with ResultStore(path) as s, s.acquire_lease("beating", interval_s=0.05):
        first = _lease_row(path)["heartbeat_at"]
        deadline = time.monotonic() + 10
        while _lease_row(path)["heartbeat_at"] <= first and time.monotonic() < deadline:
            time.sleep(0.02)
        assert _lease_row(path)["heartbeat_at"] > first


@pytest.mark.skipif(not Path("/proc/self/task").exists(), reason="reads the thread's signal mask from /proc")
def test_heartbeat_thread_blocks_ctrl_c_so_it_reaches_the_main_thread(tmp_path):
    def blocked(tid: int) -> int:
        status = Path(f"/proc/self/task/{tid}/status").read_text()
        return int(next(ln for ln in status.splitlines() if ln.startswith("SigBlk:")).split()[1], 16)

    want = 1 << (signal.SIGINT - 1) | 1 << (signal.SIGTERM - 1)
    with ResultStore(tmp_path / "s.sqlite") as st, st.acquire_lease("test", interval_s=0.2) as lease:
        deadline = time.monotonic() + 5
        while blocked(lease._thread.native_id) & want != want and time.monotonic() < deadline:
            time.sleep(0.01)  # the thread blocks them as it starts
        assert blocked(lease._thread.native_id) & want == want
        assert not blocked(threading.get_native_id()) & want  # the main thread still takes Ctrl-C


def test_stale_heartbeat_of_another_host_is_taken_over(tmp_path):
    path = tmp_path / "s.sqlite"
    ResultStore(path).close()
    _put_lease(path, interval_s=5.0)  # fresh heartbeat on another host: its pid cannot be checked from here
    with ResultStore(path) as s:
        with pytest.raises(StoreBusyError, match="'other run' \\(pid 1 on elsewhere\\)"):
            s.acquire_lease("mine")
        with pytest.raises(StoreBusyError, match="in use by another run"):  # ad-hoc writes refused too
            s.record_epoch(key(), 0, {"x": 1})
        _put_lease(path, interval_s=0.2, heartbeat_at=time.time() - 0.7)  # > 3 intervals without a heartbeat
        s.record_epoch(key(), 0, {"x": 1})  # a stale lease no longer blocks ad-hoc writes
        with s.acquire_lease("mine") as lease:
            assert lease.took_over.startswith(f"{path}: taking over the stale lease of run {'f' * 32} 'other run'")
            assert re.search(r"its last heartbeat was \d+ s ago \(interval 0.2 s\)$", lease.took_over)
            assert _lease_row(path)["run_id"] == lease.run_id


def test_takeover_stops_the_old_runs_writers_and_release_keeps_the_new_lease(tmp_path):
    path = tmp_path / "s.sqlite"
    s1, s2 = ResultStore(path), ResultStore(path)
    old = s1.acquire_lease("old run", interval_s=60)  # no heartbeat during this test
    w = ResultStore(path, run_id=old.run_id)
    w.record_epoch(key(), 0, {"x": 1})
    con = raw(path)  # make the old lease look like a silent run on another host
    con.execute("UPDATE lease SET host = 'elsewhere', heartbeat_at = heartbeat_at - 1000")
    con.close()
    new = s2.acquire_lease("new run")
    assert new.took_over is not None and old.run_id in new.took_over
    for store in (w, s1):
        with pytest.raises(StoreBusyError, match=f"lease of run {old.run_id} was taken over by run {new.run_id}"):
            store.record_epoch(key(), 1, {"x": 2})
        with pytest.raises(StoreBusyError, match="taken over"), store.transaction():
            pass
    old.release()
    old.release()  # idempotent
    assert _lease_row(path)["run_id"] == new.run_id  # not deleted: no longer the old run's
    assert s1.run_id is None and s2.run_id == new.run_id
    assert s2.record_epoch(key(), 1, {"x": 2}) and s2.epochs_done(key()) == [0, 1]
    new.release()
    new.release()
    assert _lease_row(path) is None and s2.run_id is None
    for store in (w, s1, s2):
        store.close()


def test_lease_of_a_killed_holder_is_taken_over_at_once(tmp_path):
    db = tmp_path / "s.sqlite"
    proc = _spawn(db, tmp_path / "w.log", "holder", "--lease", "nasbeff rank --archs 0-9", "--hold")
    run_id = proc.stdout.readline().strip()
    assert len(run_id) == 32, proc.communicate()[1]
    with ResultStore(db) as s, ResultStore(db, run_id=run_id) as worker_store:
        with pytest.raises(StoreBusyError, match=f"pid {proc.pid} on "):
            s.record_epoch(key(), 0, {"x": 1})  # an ad-hoc writer in another process is refused
        with pytest.raises(StoreBusyError, match="'nasbeff rank --archs 0-9'"):
            s.acquire_lease("second run")
        assert worker_store.record_epoch(key(), 0, {"x": 1})  # the holder's worker writes
        proc.send_signal(signal.SIGKILL)
        proc.communicate(timeout=30)
        t0 = time.monotonic()
        with s.acquire_lease("second run") as lease:  # heartbeat still fresh, but the pid is gone
            assert time.monotonic() - t0 < 1.0
            assert f"its process {proc.pid} on {socket.gethostname()} is gone" in lease.took_over
            with pytest.raises(StoreBusyError, match="this worker stops"):
                worker_store.record_epoch(key(), 1, {"x": 2})
            assert s.epochs_done(key()) == [0]


# ----------------------------------------------------------------------------- processes


def _spawn(db: Path, log: Path, run_id: str, *extra: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, str(WORKER), str(db), str(log), run_id, *extra],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _log(log: Path) -> list[tuple[str, int, int]]:
    if not log.exists():
        return []
    return [(r, int(u), int(e)) for r, u, e in (line.split() for line in log.read_text().splitlines())]


def _check_complete(db: Path) -> None:
    """Every unit done once, every epoch present once with its deterministic metrics."""
    keys = [RunKey(*k.as_tuple()) for k in worker.unit_keys()]  # the worker's own copy of RunKey
    with ResultStore(db) as s:
        s.check()
        assert s.pending(keys) == []
        recs = {(r.key, r.epoch): r for r in s.rows()}
        assert s.count() == len(recs) == worker.N_UNITS * worker.N_EPOCHS
        for i, k in enumerate(keys):
            for e in range(worker.N_EPOCHS):
                assert recs[k, e].metrics == worker.metrics(i, e)
                assert recs[k, e].n_writes == 1, f"unit {i} epoch {e} was committed {recs[k, e].n_writes} times"
    con = raw(db)
    assert con.execute("SELECT COUNT(*), MIN(n_marks), MAX(n_marks), MIN(n_epochs) FROM done").fetchone() == (
        worker.N_UNITS, 1, 1, worker.N_EPOCHS,
    )
    con.close()


def test_sigkill_at_random_moments_loses_and_repeats_nothing(tmp_path):
    db, log = tmp_path / "study.sqlite", tmp_path / "work.log"
    rng = random.Random(int(os.environ.get("NASBEFF_STORE_KILL_SEED", "20240611")))  # env: stress other seeds
    n_kills = 5
    for run in range(n_kills):
        start = len(_log(log))
        proc = _spawn(db, log, f"r{run}", "--lease", f"attempt {run}")
        if run == 0:
            time.sleep(rng.uniform(0.0, 0.15))  # during start-up / store creation / first epochs
        else:
            target, deadline = start + rng.randint(2, 20), time.monotonic() + 30
            while len(_log(log)) < target and proc.poll() is None and time.monotonic() < deadline:
                time.sleep(0.002)
            time.sleep(rng.uniform(0.0, 0.012))  # anywhere in an epoch: work, commit, mark_done
        assert proc.poll() is None, f"worker ended before kill {run}: {proc.communicate()[1]}"
        proc.send_signal(signal.SIGKILL)
        proc.communicate(timeout=30)
        assert proc.returncode == -signal.SIGKILL
    proc = _spawn(db, log, "final", "--lease", "final attempt")
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err
    assert "taking over the stale lease of run" in err and "'attempt 4'" in err  # the last one died holding it
    _check_complete(db)
    assert _lease_row(db) is None  # released at the final run's exit

    # Work log: an epoch is only computed again if it was the one in flight when its run died.
    lines = _log(log)
    last_line_of_killed_run = {}
    for i, (run, _, _) in enumerate(lines):
        if run != "final":
            last_line_of_killed_run[run] = i
    in_flight = set(last_line_of_killed_run.values())
    seen: dict[tuple[int, int], list[int]] = {}
    for i, (_, u, e) in enumerate(lines):
        seen.setdefault((u, e), []).append(i)
    assert len(seen) == worker.N_UNITS * worker.N_EPOCHS
    for (u, e), idx in seen.items():
        assert all(i in in_flight for i in idx[:-1]), f"unit {u} epoch {e} recomputed after it finished"
    assert len(lines) - len(seen) <= n_kills
    print(f"kill test: {len(lines)} epoch computations for {len(seen)} epochs over {n_kills} kills")


def test_sigkill_while_creating_the_store(tmp_path):
    """Kills landing in interpreter start-up, store creation or the first commits leave a usable store."""
    rng = random.Random(99)
    for i in range(5):
        db = tmp_path / f"s{i}.sqlite"
        proc = _spawn(db, tmp_path / f"w{i}.log", "r", "--sleep-scale", "0")
        deadline = time.monotonic() + 30
        while not db.exists() and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.0005)
        time.sleep(rng.uniform(0.0, 0.03))  # the file just appeared: creation, WAL switch, first commits
        proc.send_signal(signal.SIGKILL)
        proc.communicate(timeout=30)
        with ResultStore(db) as s:
            s.check()
            n = s.count()
            s.record_epoch(key("after"), 0, {"x": 1.0})
            assert s.count() == n + 1


def test_two_processes_write_one_store_concurrently(tmp_path):
    db = tmp_path / "shared.sqlite"  # absent: both processes race to create it
    half = worker.N_UNITS // 2
    procs = [
        _spawn(db, tmp_path / f"w{j}.log", f"w{j}", "--units", units, "--sleep-scale", "0.5")
        for j, units in enumerate((f"0:{half}", f"{half}:{worker.N_UNITS}"))
    ]
    for p in procs:
        _, err = p.communicate(timeout=120)
        assert p.returncode == 0, err
    _check_complete(db)  # includes PRAGMA integrity_check
    with ResultStore(db) as s:  # the two writers really interleaved
        halves = (range(half), range(half, worker.N_UNITS))
        spans = [[r.recorded_at for r in s.rows(arch=[f"arch{i:02d}" for i in h])] for h in halves]
    assert max(map(min, spans)) < min(map(max, spans))
    assert side_files(db) == ["w0.log", "w1.log"]  # WAL checkpointed and removed at last close
