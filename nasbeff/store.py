"""Crash-safe SQLite store for per-epoch results of long, resumable scoring studies.

One row per ``(space, arch, dataset, scorer, config_hash, seed, epoch)`` holds a JSON object of
that epoch's metrics (e.g. ``train_loss``, ``valid_acc``, ``beta_eff``, ``seconds``). A unit of
work -- every epoch of one :class:`RunKey` -- is marked complete in the ``done`` table.
Training-free scorers record a single row with ``epoch=None``, stored as :data:`NO_EPOCH` (-1)
so the primary key stays an integer.

Typical resumable loop::

    with ResultStore("runs/study.sqlite") as store:
        for key in store.pending(keys):
            have = set(store.epochs_done(key))
            for epoch in range(n_epochs):
                if epoch not in have:
                    store.record_epoch(key, epoch, train_one_epoch(...))  # committed here
            store.mark_done(key, epochs=n_epochs)

Design (see also the tests in ``tests/test_store.py``):

* **Crash safety.** Every :meth:`ResultStore.record_epoch` / :meth:`ResultStore.mark_done` is
  one ``BEGIN IMMEDIATE ... COMMIT`` transaction that has committed when the call returns. The
  journal is WAL, so a writer killed with SIGKILL at any instant leaves the database at its last
  commit; the next open replays nothing twice and loses nothing committed. ``synchronous=FULL``
  (the default) also fsyncs the WAL at every commit, so a *power loss or OS crash* cannot undo
  an epoch that a caller was told is stored (with ``NORMAL`` it could roll back the last few
  commits, and a resumed run would silently recompute them). One fsync per epoch (measured
  0.2-8 ms on a busy ext4 disk) is nothing beside an epoch of training. Pass
  ``synchronous="NORMAL"`` for bulk loads of cheap scores (or batch them with
  :meth:`ResultStore.transaction`).
* **Concurrency.** Several processes may write one store at once (WAL + a busy timeout,
  default 60 s); use one :class:`ResultStore` per process and thread (not across ``fork``).
* **One run per store.** A run takes the store's lease with :meth:`ResultStore.acquire_lease`;
  a second run is refused at once with one line naming the holder. The lease carries a
  heartbeat and is taken over when its holder process is gone (same host) or its heartbeat is
  older than three intervals. The run's workers (local processes, Ray tasks) open the store
  with ``run_id=lease.run_id``; each of their writes checks, in its own transaction, that the
  lease is still that run's, so a worker of a run that lost its lease can never commit a
  duplicate result. Stores opened without ``run_id`` (ad-hoc scripts) may write only while no
  other process holds a live lease::

      with ResultStore(path) as store, store.acquire_lease("nasbeff rank --archs 0-199") as lease:
          start_workers(path, lease.run_id)  # each: ResultStore(path, run_id=run_id)

* **Schema versions.** ``meta.schema_version`` is :data:`SCHEMA_VERSION`; a version-1 store is
  migrated in place (one transaction) when opened; any other version raises one line.
* **Audit counters.** Re-recording an epoch with identical metrics changes no data and returns
  ``False``, but bumps the row's ``n_writes``; ``mark_done`` likewise bumps ``n_marks``. A
  correct resume loop therefore leaves every counter at 1, which is what the kill test checks.
* **Foreign files are never touched.** Before SQLite is given the file, its 100-byte header
  is read: anything that is not an SQLite file with :data:`APPLICATION_ID` raises
  :class:`NotAStoreError` and the file is left byte-for-byte unchanged (no ``-wal``/``-shm``
  either). An absent or empty (0-byte) file becomes a new store. Truncated or damaged stores
  raise :class:`StoreCorruptError`.
* **Never ``open()`` the database file while SQLite holds it.** Closing any descriptor of a file
  drops every POSIX lock this process holds on it, SQLite's included: another process could then
  checkpoint and delete the WAL a live writer here still uses. So the header is read only before
  the first connection of this process to the file (a second store of the same file in one
  process skips it), and the truncation check uses ``PRAGMA page_count`` and ``stat()``.
* **Non-finite metrics.** NaN and +-inf (a diverged run) are stored as JSON ``null`` rather than
  rejected, so a long study does not die on one bad architecture; they come back as ``None``
  from :meth:`ResultStore.rows`, as an empty CSV cell and as NaN in :meth:`to_dataframe`.
"""

from __future__ import annotations

import atexit
import contextlib
import csv
import gzip
import hashlib
import io
import json
import logging
import math
import numbers
import os
import signal
import socket
import sqlite3
import stat
import sys
import threading
import time
import uuid
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd

__all__ = [
    "APPLICATION_ID",
    "SCHEMA_VERSION",
    "NO_EPOCH",
    "KEY_FIELDS",
    "RunKey",
    "is_gzip_path",
    "read_units_csv",
    "StoredRow",
    "ResultStore",
    "Lease",
    "StoreError",
    "NotAStoreError",
    "StoreCorruptError",
    "StoreBusyError",
    "ConflictError",
    "canonical_json",
    "config_hash",
]

APPLICATION_ID = 0x4E424546  # b"NBEF", written to the SQLite header (PRAGMA application_id)
SCHEMA_VERSION = 2  # 1: results only; 2: + the run lease (a version-1 store is migrated when opened)
NO_EPOCH = -1  # epoch sentinel for scorers without epochs (training-free proxies)
KEY_FIELDS = ("space", "arch", "dataset", "scorer", "config_hash", "seed")
_ROW_FIELDS = (*KEY_FIELDS, "epoch")
_SQLITE_MAGIC = b"SQLite format 3\x00"
_HASH_CHARS = 16
_STALE_INTERVALS = 3  # a lease whose heartbeat is older than this many intervals is abandoned
_log = logging.getLogger(__name__)


# ----------------------------------------------------------------------------- errors


class StoreError(Exception):
    """Base class of every error raised by :mod:`nasbeff.store`."""


class NotAStoreError(StoreError):
    """The file exists but is not a nasbeff store; it was not modified."""


class StoreCorruptError(StoreError):
    """The file is a nasbeff store but is truncated or damaged."""


class StoreBusyError(StoreError):
    """Another run holds the store's lease, this worker's run lost it, or another process held
    the write lock for longer than the busy timeout."""


class ConflictError(StoreError, ValueError):
    """An epoch was recorded again with different metrics (pass ``overwrite=True`` to replace)."""


# ----------------------------------------------------------------------------- hashing


def _canonical(obj: Any, where: str) -> Any:
    if obj is None or isinstance(obj, (bool, str)):
        return obj
    if isinstance(obj, numbers.Integral):
        return int(obj)
    if isinstance(obj, numbers.Real):
        f = float(obj)
        if not math.isfinite(f):
            raise ValueError(f"{where}: non-finite float {f!r} cannot be part of a hashed config")
        return int(f) if f.is_integer() and abs(f) < 2**53 else f
    if isinstance(obj, Mapping):
        out = {}
        for k, v in obj.items():
            if not isinstance(k, str):
                raise TypeError(f"{where}: config keys must be str, got {type(k).__name__} {k!r}")
            out[k] = _canonical(v, f"{where}[{k!r}]")
        return out
    if isinstance(obj, (list, tuple)):
        return [_canonical(v, f"{where}[{i}]") for i, v in enumerate(obj)]
    item = getattr(obj, "item", None)  # numpy / torch scalars
    if callable(item):
        try:
            value = item()
        except Exception:  # noqa: BLE001 - e.g. a multi-element array
            value = obj
        if type(value) is not type(obj):
            return _canonical(value, where)
    raise TypeError(f"{where}: {type(obj).__name__} is not allowed in a config (use JSON-like values)")


def canonical_json(config: Mapping[str, Any]) -> str:
    """Canonical JSON text of ``config``, the input of :func:`config_hash`.

    Keys are sorted, separators are compact and the text is ASCII. Tuples become lists; numpy
    and torch scalars become Python numbers; floats equal to an integer (``1.0``) are written
    as that integer, so configs that compare equal hash equally (bools stay ``true``/``false``);
    other floats use Python's shortest round-trip ``repr``, which is identical on every platform.
    Non-finite floats, non-str keys and other types raise ``ValueError``/``TypeError``.
    """
    if not isinstance(config, Mapping):
        raise TypeError(f"config must be a mapping, got {type(config).__name__}")
    return json.dumps(
        _canonical(config, "config"), sort_keys=True, separators=(",", ":"), ensure_ascii=True, allow_nan=False
    )


def config_hash(config: Mapping[str, Any]) -> str:
    """Stable 16-hex-digit (64-bit) SHA-256 prefix of :func:`canonical_json` of ``config``."""
    return hashlib.sha256(canonical_json(config).encode("ascii")).hexdigest()[:_HASH_CHARS]


# ----------------------------------------------------------------------------- records


@dataclass(frozen=True, order=True)
class RunKey:
    """Identity of one unit of work: every epoch of one architecture under one scorer setting."""

    space: str
    arch: str
    dataset: str
    scorer: str
    config_hash: str
    seed: int

    def __post_init__(self) -> None:
        for name in KEY_FIELDS[:-1]:
            value = getattr(self, name)
            if not isinstance(value, str) or not value:
                hint = " (use str(index) for benchmark indices)" if name == "arch" else ""
                raise TypeError(f"RunKey.{name} must be a non-empty str, got {value!r}{hint}")
        seed = self.seed
        if isinstance(seed, bool) or not isinstance(seed, numbers.Integral):
            raise TypeError(f"RunKey.seed must be an int, got {seed!r}")
        if not -(2**63) <= int(seed) < 2**63:
            raise ValueError(f"RunKey.seed {seed} does not fit in 64 bits")
        object.__setattr__(self, "seed", int(seed))

    def as_tuple(self) -> tuple[str, str, str, str, str, int]:
        """The key fields in :data:`KEY_FIELDS` order."""
        return (self.space, self.arch, self.dataset, self.scorer, self.config_hash, self.seed)

    def as_filter(self) -> dict[str, Any]:
        """The key as keyword filters for :meth:`ResultStore.rows` (``store.rows(**key.as_filter())``)."""
        return dict(zip(KEY_FIELDS, self.as_tuple()))


@dataclass(frozen=True)
class StoredRow:
    """One stored epoch row, as yielded by :meth:`ResultStore.rows`."""

    key: RunKey
    epoch: int  # NO_EPOCH (-1) for scorers without epochs
    metrics: dict[str, Any]
    n_writes: int  # 1 unless the same epoch was recorded more than once
    recorded_at: float  # UNIX time of the last change

    def flat(self) -> dict[str, Any]:
        """Key fields, ``epoch`` and the metrics in one flat dict (one CSV/DataFrame row)."""
        return {**dict(zip(KEY_FIELDS, self.key.as_tuple())), "epoch": self.epoch, **self.metrics}


def is_timing_metric(name: str) -> bool:
    """Metrics that measure time (``seconds*``, ``*_seconds``, ``*_overhead``): they differ between
    two runs of the same deterministic work, so resumption never compares them."""
    return name.startswith("seconds") or name.endswith("_seconds") or name.endswith("_overhead")


def _deterministic(metrics: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in metrics.items() if not is_timing_metric(k)}


def _check_key(key: RunKey) -> RunKey:
    if not isinstance(key, RunKey):
        raise TypeError(f"expected a RunKey, got {type(key).__name__}")
    return key


def _check_epoch(epoch: int | None) -> int:
    if epoch is None:
        return NO_EPOCH
    if isinstance(epoch, bool) or not isinstance(epoch, numbers.Integral):
        raise TypeError(f"epoch must be an int >= 0 or None, got {epoch!r}")
    if not NO_EPOCH <= int(epoch) < 2**31:
        raise ValueError(f"epoch must be >= 0 (or None / NO_EPOCH for scorers without epochs), got {epoch}")
    return int(epoch)


def _metric_value(name: str, value: Any) -> Any:
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, numbers.Integral):
        return int(value)
    if isinstance(value, numbers.Real):
        f = float(value)
        return f if math.isfinite(f) else None  # NaN / inf -> null (see module docstring)
    item = getattr(value, "item", None)  # numpy / torch scalars
    if callable(item):
        try:
            plain = item()
        except Exception:  # noqa: BLE001 - e.g. a multi-element tensor
            plain = value
        if type(plain) is not type(value):
            return _metric_value(name, plain)
    raise TypeError(f"metric {name!r} must be a number, str, bool or None, got {type(value).__name__}")


def _normalise_metrics(metrics: Mapping[str, Any]) -> dict[str, Any]:
    if not isinstance(metrics, Mapping):
        raise TypeError(f"metrics must be a mapping of name -> value, got {type(metrics).__name__}")
    out: dict[str, Any] = {}
    for name, value in metrics.items():
        if not isinstance(name, str) or not name:
            raise TypeError(f"metric names must be non-empty str, got {name!r}")
        if name in _ROW_FIELDS:
            raise ValueError(f"metric name {name!r} is reserved for a key column")
        out[name] = _metric_value(name, value)
    return out


def is_gzip_path(path: str | os.PathLike[str]) -> bool:
    """True for a results file named ``*.gz``: :meth:`ResultStore.export_done` writes it gzip-compressed
    (deterministically: no name, mtime 0) and :func:`read_units_csv` reads it so."""
    return Path(path).name.endswith(".gz")


def read_units_csv(path: str | os.PathLike[str]) -> list[dict[str, str]]:
    """The lines of a :meth:`ResultStore.export_done` file, plain or ``*.gz`` (a :class:`StoreError`
    naming the problem for any other file): callers validate a ``--results`` file with it before any work."""
    try:
        with (gzip.open(path, "rt", newline="", encoding="utf-8") if is_gzip_path(path)
              else open(path, newline="", encoding="utf-8")) as f:
            reader = csv.DictReader(f)
            rows = list(reader)
            fields = list(reader.fieldnames or [])
    except (OSError, EOFError, UnicodeDecodeError, csv.Error) as exc:  # gzip: BadGzipFile is an OSError
        raise StoreError(f"{path}: not a readable results file ({type(exc).__name__})") from None
    missing = [c for c in (*_ROW_FIELDS, "metrics") if c not in fields]
    if missing:
        raise StoreError(f"{path} lacks the column(s) {', '.join(missing)}: not a results file of ResultStore.export_done")
    return rows


def _dumps(metrics: dict[str, Any]) -> str:
    return json.dumps(metrics, sort_keys=True, separators=(",", ":"), allow_nan=False)


# ----------------------------------------------------------------------------- schema / opening

_SCHEMA = (
    "CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID",
    """CREATE TABLE epochs (
        space TEXT NOT NULL, arch TEXT NOT NULL, dataset TEXT NOT NULL, scorer TEXT NOT NULL,
        config_hash TEXT NOT NULL, seed INTEGER NOT NULL, epoch INTEGER NOT NULL CHECK (epoch >= -1),
        metrics TEXT NOT NULL, n_writes INTEGER NOT NULL DEFAULT 1, recorded_at REAL NOT NULL,
        PRIMARY KEY (space, arch, dataset, scorer, config_hash, seed, epoch)) WITHOUT ROWID""",
    """CREATE TABLE done (
        space TEXT NOT NULL, arch TEXT NOT NULL, dataset TEXT NOT NULL, scorer TEXT NOT NULL,
        config_hash TEXT NOT NULL, seed INTEGER NOT NULL, n_epochs INTEGER NOT NULL,
        n_marks INTEGER NOT NULL DEFAULT 1, done_at REAL NOT NULL,
        PRIMARY KEY (space, arch, dataset, scorer, config_hash, seed)) WITHOUT ROWID""",
    "CREATE TABLE configs (config_hash TEXT PRIMARY KEY, config TEXT NOT NULL) WITHOUT ROWID",
)
# What brings a store of version v to version v + 1 (run inside one write transaction).
_MIGRATIONS: dict[int, tuple[str, ...]] = {
    1: (
        """CREATE TABLE lease (
            id INTEGER PRIMARY KEY CHECK (id = 1), run_id TEXT NOT NULL, host TEXT NOT NULL,
            pid INTEGER NOT NULL, command TEXT NOT NULL, started_at REAL NOT NULL,
            heartbeat_at REAL NOT NULL, interval_s REAL NOT NULL)""",
    ),
}
_TABLES_V1 = frozenset({"meta", "epochs", "done", "configs"})
_TABLES = _TABLES_V1 | {"lease"}
_KEY_WHERE = " AND ".join(f"{f} = ?" for f in KEY_FIELDS)
_ROW_WHERE = f"{_KEY_WHERE} AND epoch = ?"


@contextlib.contextmanager
def _translate(path: Path) -> Iterator[None]:
    """Turn ``sqlite3`` errors into :class:`StoreError` subclasses with the store's path."""
    try:
        yield
    except sqlite3.Error as exc:
        name = getattr(exc, "sqlite_errorname", "") or ""
        if name.startswith(("SQLITE_CORRUPT", "SQLITE_NOTADB")):
            raise StoreCorruptError(f"nasbeff store {path} is corrupt: {exc}") from exc
        if name.startswith(("SQLITE_BUSY", "SQLITE_LOCKED")):
            raise StoreBusyError(f"nasbeff store {path} stayed locked past the busy timeout: {exc}") from exc
        raise StoreError(f"nasbeff store {path}: {exc}" + (f" ({name})" if name else "")) from exc


#: (st_dev, st_ino) -> how many ResultStore connections of this process have the file open.
_OPEN_HERE: dict[tuple[int, int], int] = {}


def _probe(path: Path) -> bool:
    """Check ``path`` without SQLite; return True when a new store must be created there."""
    try:
        st = path.stat()
    except FileNotFoundError:
        return True
    if not stat.S_ISREG(st.st_mode):
        raise NotAStoreError(f"not a nasbeff store: {path} is not a regular file")
    if st.st_size == 0:
        return True
    if (st.st_dev, st.st_ino) in _OPEN_HERE:  # validated by this process's open connection: reading
        return False  # (and closing) the file here would drop that connection's POSIX locks
    with open(path, "rb") as f:
        header = f.read(100)
    if len(header) < 100 or not header.startswith(_SQLITE_MAGIC):
        raise NotAStoreError(f"not a nasbeff store: {path} is not an SQLite database (left untouched)")
    app_id = int.from_bytes(header[68:72], "big", signed=True)
    if app_id != APPLICATION_ID:
        raise NotAStoreError(
            f"not a nasbeff store: {path} is an SQLite database with application_id {app_id:#x}, "
            f"expected {APPLICATION_ID:#x} (left untouched)"
        )
    return False


def _check_not_truncated(conn: sqlite3.Connection, path: Path) -> None:
    """Compare the page count SQLite reads from the header with the file size (call inside a read
    transaction).

    Only meaningful while the WAL holds no frames: then this reader pins the main file (no
    checkpoint may write to it) and every page must be in it. The file is never opened here: closing
    a descriptor of the database file drops every POSIX lock this process holds on it, SQLite's
    included, and a connection without its shared lock lets another process's last ``close`` delete
    the WAL it is still writing (its later commits are then invisible to every other process).
    """
    wal = path.with_name(path.name + "-wal")
    with contextlib.suppress(FileNotFoundError):
        if wal.stat().st_size > 32:  # WAL header only -> no frames
            return
    # SQLite takes the header's page count when it is valid (change counter == version-valid-for),
    # else the file size: only a valid count larger than the file means pages are missing.
    n_pages = conn.execute("PRAGMA page_count").fetchone()[0]
    page_size = conn.execute("PRAGMA page_size").fetchone()[0]
    size = path.stat().st_size
    if n_pages and size < n_pages * page_size:
        raise StoreCorruptError(
            f"nasbeff store {path} is truncated: its header promises {n_pages * page_size} bytes, "
            f"the file has {size}"
        )


def _validate(conn: sqlite3.Connection, path: Path) -> int | None:
    """Validate an open connection; return the store's schema version, or None when the (empty)
    file still needs a schema. Versions this nasbeff can neither read nor migrate raise."""
    app_id = conn.execute("PRAGMA application_id").fetchone()[0]
    tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    if not tables and app_id in (0, APPLICATION_ID):
        return None
    if app_id != APPLICATION_ID:
        raise NotAStoreError(f"not a nasbeff store: {path} has application_id {app_id:#x}")
    if "meta" not in tables:
        raise NotAStoreError(f"not a nasbeff store: {path} has nasbeff's application_id but no meta table")
    _check_not_truncated(conn, path)
    row = conn.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
    try:
        version = int(row[0]) if row is not None else None
    except ValueError:
        version = None
    if version is None:
        raise StoreCorruptError(f"nasbeff store {path} has no valid schema_version in its meta table")
    if version != SCHEMA_VERSION and version not in _MIGRATIONS:
        newer = "a newer" if version > SCHEMA_VERSION else "an older"
        raise StoreError(
            f"nasbeff store {path} has schema version {version}, written by {newer} nasbeff; "
            f"this version reads schema {SCHEMA_VERSION}"
        )
    required = _TABLES if version == SCHEMA_VERSION else _TABLES_V1
    if not required <= tables:
        raise StoreCorruptError(f"nasbeff store {path} lacks tables {sorted(required - tables)}")
    return version


def _create_schema(conn: sqlite3.Connection) -> None:
    version = getattr(sys.modules.get("nasbeff"), "__version__", "unknown")
    conn.execute(f"PRAGMA application_id = {APPLICATION_ID}")
    for stmt in (*_SCHEMA, *(m for v in sorted(_MIGRATIONS) for m in _MIGRATIONS[v])):
        conn.execute(stmt)
    created = datetime.now(timezone.utc).isoformat(timespec="seconds")
    conn.executemany(
        "INSERT INTO meta (key, value) VALUES (?, ?)",
        [("schema_version", str(SCHEMA_VERSION)), ("created_by", f"nasbeff {version}"), ("created_at", created),
         ("store_id", uuid.uuid4().hex)],
    )


def _migrate(conn: sqlite3.Connection, version: int) -> None:
    """Bring a store from ``version`` to :data:`SCHEMA_VERSION` (inside the caller's transaction)."""
    for v in range(version, SCHEMA_VERSION):
        for stmt in _MIGRATIONS[v]:
            conn.execute(stmt)
    conn.execute("UPDATE meta SET value = ? WHERE key = 'schema_version'", (str(SCHEMA_VERSION),))


def _open(path: Path, timeout: float, synchronous: str) -> sqlite3.Connection:
    create = _probe(path)  # raises for foreign files before SQLite ever sees them
    if create:
        path.parent.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(str(path), timeout=timeout, isolation_level=None)
    try:
        with _translate(path):
            conn.execute("BEGIN")  # a read transaction: stable view, takes no write lock
            try:
                version = _validate(conn, path)
            finally:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
            if version != SCHEMA_VERSION:
                # A new store is created in rollback-journal mode so the header (application_id)
                # lands in the main file at once; an old one is migrated in one transaction.
                # Processes racing here serialise on BEGIN IMMEDIATE and validate again.
                conn.execute("BEGIN IMMEDIATE")
                try:
                    version = _validate(conn, path)
                    if version is None:
                        _create_schema(conn)
                    elif version != SCHEMA_VERSION:
                        _migrate(conn, version)
                    conn.execute("COMMIT")
                except BaseException:
                    if conn.in_transaction:
                        conn.execute("ROLLBACK")
                    raise
            deadline = time.monotonic() + timeout
            while (mode := conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]).lower() != "wal":
                if time.monotonic() > deadline:
                    raise StoreError(f"nasbeff store {path}: cannot enable WAL journal mode (got {mode!r})")
                time.sleep(0.01)
            conn.execute(f"PRAGMA synchronous = {synchronous}")
    except BaseException:
        conn.close()
        raise
    return conn


# ----------------------------------------------------------------------------- the run lease


@dataclass(frozen=True)
class _LeaseRow:
    """The ``lease`` table's single row: which run may write the store."""

    run_id: str
    host: str
    pid: int
    command: str
    started_at: float
    heartbeat_at: float
    interval_s: float

    @classmethod
    def read(cls, conn: sqlite3.Connection) -> _LeaseRow | None:
        row = conn.execute(
            "SELECT run_id, host, pid, command, started_at, heartbeat_at, interval_s FROM lease"
        ).fetchone()
        return None if row is None else cls(*row)

    def in_this_process(self) -> bool:
        return self.host == socket.gethostname() and self.pid == os.getpid()

    def stale_reason(self, now: float) -> str | None:
        """Why the holder counts as gone (its process died on this host, or its heartbeat is
        older than three intervals), or None while it is alive."""
        if self.host == socket.gethostname() and not _pid_alive(self.pid):
            return f"its process {self.pid} on {self.host} is gone"
        age = now - self.heartbeat_at
        if age > _STALE_INTERVALS * self.interval_s:
            return f"its last heartbeat was {age:.0f} s ago (interval {self.interval_s:g} s)"
        return None

    def who(self) -> str:
        return f"'{self.command}' (pid {self.pid} on {self.host})"

    def busy_message(self, path: Path, now: float) -> str:
        since = datetime.fromtimestamp(self.started_at).strftime("%Y-%m-%d %H:%M:%S")
        return (
            f"{path} is in use by another run: {self.who()} since {since}, last heartbeat "
            f"{max(0.0, now - self.heartbeat_at):.0f} s ago; wait for it to finish or stop it"
        )


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by another user
        return True
    return True


def _one_line(text: str, limit: int = 200) -> str:
    line = " ".join(str(text).split())
    return line if len(line) <= limit else line[: limit - 3] + "..."


class Lease:
    """The right of one run to write a store; made by :meth:`ResultStore.acquire_lease`.

    A daemon thread (with its own SQLite connection) refreshes the heartbeat every
    ``interval_s``. The run's workers join with ``ResultStore(path, run_id=lease.run_id)``.
    :meth:`release` (also on leaving ``with``, and at interpreter exit) stops the heartbeat and
    deletes the lease if it is still this run's; it is idempotent. ``took_over`` is the one-line
    note logged when a stale lease of another run was replaced, else None.
    """

    def __init__(self, store: ResultStore, row: _LeaseRow, took_over: str | None, timeout: float) -> None:
        self.path = store.path
        self.run_id = row.run_id
        self.description = row.command
        self.interval_s = row.interval_s
        self.started_at = row.started_at
        self.took_over = took_over
        self._store: ResultStore | None = store
        self._pid = os.getpid()
        self._conn = sqlite3.connect(str(self.path), timeout=timeout, isolation_level=None, check_same_thread=False)
        self._conn.execute("PRAGMA synchronous = NORMAL")  # a lost heartbeat after power loss is harmless
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._beat, name=f"nasbeff-lease-{self.run_id[:8]}", daemon=True)
        self._thread.start()
        atexit.register(self.release)

    def _beat(self) -> None:
        # Signals go to the main thread (where Python runs their handlers): a Ctrl-C landing in this
        # thread would interrupt its SQLite write (EINTR -> "disk I/O error") instead of stopping the run.
        if hasattr(signal, "pthread_sigmask"):
            signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT, signal.SIGTERM})
        while not self._stop.wait(self.interval_s):
            try:
                cur = self._conn.execute(
                    "UPDATE lease SET heartbeat_at = ? WHERE run_id = ?", (time.time(), self.run_id)
                )
            except sqlite3.Error as exc:  # e.g. busy past the timeout: try again next interval
                _log.warning("%s: heartbeat of run %s failed: %s", self.path, self.run_id, exc)
                continue
            if cur.rowcount == 0:
                _log.warning("%s: run %s lost its lease (taken over by another run)", self.path, self.run_id)
                return

    def release(self) -> None:
        """Stop the heartbeat and delete the lease if this run still holds it (idempotent)."""
        if self._stop.is_set() or os.getpid() != self._pid:  # done already, or a fork()ed child
            return
        self._stop.set()
        atexit.unregister(self.release)
        self._thread.join()
        try:
            with _translate(self.path):
                self._conn.execute("DELETE FROM lease WHERE run_id = ?", (self.run_id,))
        finally:
            self._conn.close()
            store, self._store = self._store, None
            if store is not None and store._run_id == self.run_id:
                store._run_id = None

    def __enter__(self) -> Lease:
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()

    def __repr__(self) -> str:
        state = "released" if self._stop.is_set() else "held"
        return f"Lease({str(self.path)!r}, run_id={self.run_id!r}, {state})"


# ----------------------------------------------------------------------------- the store


class ResultStore:
    """Per-epoch results of a study in one SQLite file; see the module docstring.

    ``ResultStore(path)`` opens (or creates) the store; use it as a context manager or call
    :meth:`close`. ``timeout`` is the busy timeout in seconds while another process writes;
    ``synchronous`` is ``"FULL"`` (default, durable across power loss) or ``"NORMAL"``.
    ``run_id`` joins a run that holds the store's :class:`Lease` (its workers pass
    ``lease.run_id``): opening, and every write after, raise :class:`StoreBusyError` once that
    run no longer holds it. Without ``run_id`` (and without :meth:`acquire_lease`), writes are
    refused while another process holds a live lease; reads are always allowed.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        timeout: float = 60.0,
        synchronous: str = "FULL",
        run_id: str | None = None,
    ) -> None:
        sync = str(synchronous).upper()
        if sync not in ("FULL", "NORMAL", "EXTRA"):
            raise ValueError(f"synchronous must be 'FULL', 'NORMAL' or 'EXTRA', got {synchronous!r}")
        if timeout < 0:
            raise ValueError(f"timeout must be >= 0 seconds, got {timeout}")
        if run_id is not None and (not isinstance(run_id, str) or not run_id):
            raise TypeError(f"run_id must be a non-empty str (a Lease's run_id), got {run_id!r}")
        self.path = Path(path)
        self._timeout = float(timeout)
        self._conn: sqlite3.Connection | None = _open(self.path, self._timeout, sync)
        st = self.path.stat()
        self._inode: tuple[int, int] | None = (st.st_dev, st.st_ino)
        _OPEN_HERE[self._inode] = _OPEN_HERE.get(self._inode, 0) + 1
        self._pid = os.getpid()
        self._depth = 0
        self._run_id = run_id
        if run_id is not None:
            try:
                self.check_lease()
            except BaseException:
                self.close()
                raise

    # -- lifecycle

    def close(self) -> None:
        """Close the connection (idempotent); an open :meth:`transaction` is rolled back."""
        if self._conn is not None:
            conn, self._conn = self._conn, None
            conn.close()
            if self._inode is not None and os.getpid() == self._pid:
                left = _OPEN_HERE.pop(self._inode, 1) - 1
                if left > 0:
                    _OPEN_HERE[self._inode] = left
            self._inode = None

    def __enter__(self) -> ResultStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        state = "closed" if self._conn is None else "open"
        run = "" if self._run_id is None else f", run_id={self._run_id!r}"
        return f"ResultStore({str(self.path)!r}, {state}{run})"

    @property
    def run_id(self) -> str | None:
        """The run this store writes for (joined with ``run_id=`` or by :meth:`acquire_lease`)."""
        return self._run_id

    def _connection(self) -> sqlite3.Connection:
        if self._conn is None:
            raise StoreError(f"nasbeff store {self.path} is closed")
        if os.getpid() != self._pid:
            raise StoreError("a ResultStore cannot be used across fork(); open a new one in each process")
        return self._conn

    @contextlib.contextmanager
    def _write(self, guard: bool = True) -> Iterator[sqlite3.Connection]:
        """One write transaction, or join the enclosing :meth:`transaction`; ``guard`` checks
        the lease inside it (see :meth:`check_lease`)."""
        conn = self._connection()
        if self._depth:
            yield conn
            return
        conn.execute("BEGIN IMMEDIATE")
        try:
            if guard:
                self._guard(conn)
            yield conn
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")

    @contextlib.contextmanager
    def _read(self) -> Iterator[sqlite3.Connection]:
        """A consistent snapshot for several SELECTs (or the enclosing transaction)."""
        conn = self._connection()
        if self._depth:
            yield conn
            return
        conn.execute("BEGIN")
        try:
            yield conn
        finally:
            if conn.in_transaction:
                conn.execute("COMMIT")

    def _guard(self, conn: sqlite3.Connection) -> None:
        row = _LeaseRow.read(conn)
        if self._run_id is not None:
            if row is None or row.run_id != self._run_id:
                by = "released" if row is None else f"taken over by run {row.run_id} {row.who()}"
                raise StoreBusyError(f"{self.path}: the lease of run {self._run_id} was {by}; this worker stops")
        elif row is not None and not row.in_this_process():
            now = time.time()
            if row.stale_reason(now) is None:
                raise StoreBusyError(row.busy_message(self.path, now))

    def check_lease(self) -> None:
        """Raise :class:`StoreBusyError` unless this store may write now (the check every write
        makes in its own transaction); call it before work only this run may do, such as
        writing a checkpoint."""
        with _translate(self.path), self._read() as conn:
            self._guard(conn)

    def acquire_lease(self, description: str, interval_s: float = 10.0) -> Lease:
        """Make this store's run the only one allowed to write it; returns the :class:`Lease`.

        ``description`` names the run for others (e.g. ``"nasbeff rank --archs 0-199"``). Refuses
        at once with :class:`StoreBusyError` (one line: who holds it, since when) while another
        run's lease is live; a lease whose holder process is gone (same host) or whose heartbeat
        is older than three of its intervals is taken over, with one logged warning. Hosts that
        share a store need clocks in sync to well within ``3 * interval_s``.
        """
        if isinstance(interval_s, bool) or not isinstance(interval_s, numbers.Real) or not 0 < interval_s < math.inf:
            raise ValueError(f"interval_s must be a positive number of seconds, got {interval_s!r}")
        if self._run_id is not None:
            raise StoreError(f"{self.path}: this store already writes for run {self._run_id}; one lease per run")
        if self._depth:
            raise StoreError(f"{self.path}: acquire_lease cannot run inside a transaction")
        took_over = None
        with _translate(self.path), self._write(guard=False) as conn:
            now = time.time()
            old = _LeaseRow.read(conn)
            if old is not None:
                reason = old.stale_reason(now)
                if reason is None:
                    raise StoreBusyError(old.busy_message(self.path, now))
                took_over = f"{self.path}: taking over the stale lease of run {old.run_id} {old.who()}: {reason}"
            row = _LeaseRow(
                uuid.uuid4().hex, socket.gethostname(), os.getpid(), _one_line(description), now, now, float(interval_s)
            )
            conn.execute(
                "INSERT OR REPLACE INTO lease (id, run_id, host, pid, command, started_at, heartbeat_at, interval_s)"
                " VALUES (1, ?, ?, ?, ?, ?, ?, ?)",
                (row.run_id, row.host, row.pid, row.command, row.started_at, row.heartbeat_at, row.interval_s),
            )
        if took_over is not None:
            _log.warning("%s", took_over)
        self._run_id = row.run_id
        return Lease(self, row, took_over, self._timeout)

    @contextlib.contextmanager
    def transaction(self) -> Iterator[ResultStore]:
        """Batch several writes into one transaction, committed at the end of the ``with``.

        An exception escaping the block rolls back every write made in it. A write that raises
        inside the block (e.g. :class:`ConflictError`) has written nothing, so catching it keeps
        the other writes. Nested calls join the outer transaction.
        """
        if self._depth:
            self._depth += 1
            try:
                yield self
            finally:
                self._depth -= 1
            return
        with _translate(self.path), self._write():
            self._depth = 1
            try:
                yield self
            finally:
                self._depth = 0

    # -- writing

    def record_epoch(
        self, key: RunKey, epoch: int | None, metrics: Mapping[str, Any], *, overwrite: bool = False
    ) -> bool:
        """Store one finished epoch's metrics, committed before returning.

        ``epoch`` is >= 0, or ``None`` for scorers without epochs. Metric values are numbers,
        str, bool or None (NaN/inf are stored as None). Recording the same metrics again changes
        nothing and returns False (it bumps the row's ``n_writes`` audit counter); timings
        (:func:`is_timing_metric`) are not compared, so a resumed run that re-measures an epoch
        keeps the first timings; different deterministic metrics raise :class:`ConflictError`
        unless ``overwrite=True``. A new epoch for a unit
        marked done raises :class:`StoreError` (see :meth:`unmark_done`). Returns True when data
        changed.
        """
        key = _check_key(key)
        ep = _check_epoch(epoch)
        payload = _normalise_metrics(metrics)
        text = _dumps(payload)
        params = (*key.as_tuple(), ep)
        with _translate(self.path), self._write() as conn:
            row = conn.execute(f"SELECT metrics FROM epochs WHERE {_ROW_WHERE}", params).fetchone()
            if row is None:
                if _is_done(conn, key):
                    raise StoreError(f"{key} is marked done; call unmark_done(key) before adding epoch {ep}")
                clash = conn.execute(
                    f"SELECT epoch FROM epochs WHERE {_KEY_WHERE} AND (epoch = -1) != ? LIMIT 1",
                    (*key.as_tuple(), ep == NO_EPOCH),
                ).fetchone()
                if clash is not None:
                    raise ValueError(
                        f"{key}: cannot mix epoch {ep} with stored epoch {clash[0]} "
                        f"(epoch None/{NO_EPOCH} is only for scorers without epochs)"
                    )
                conn.execute(
                    "INSERT INTO epochs (space, arch, dataset, scorer, config_hash, seed, epoch, metrics,"
                    " recorded_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (*params, text, time.time()),
                )
                return True
            old = json.loads(row[0])
            if _deterministic(old) == _deterministic(payload):
                conn.execute(f"UPDATE epochs SET n_writes = n_writes + 1 WHERE {_ROW_WHERE}", params)
                return False
            if not overwrite:
                diff = sorted(k for k in old.keys() | payload.keys() if old.get(k, ...) != payload.get(k, ...))
                shown = ", ".join(f"{k}: {old.get(k)!r} -> {payload.get(k)!r}" for k in diff[:4])
                raise ConflictError(
                    f"epoch {ep} of {key} is already stored with different metrics ({shown}); "
                    "pass overwrite=True to replace them"
                )
            conn.execute(
                f"UPDATE epochs SET metrics = ?, n_writes = n_writes + 1, recorded_at = ? WHERE {_ROW_WHERE}",
                (text, time.time(), *params),
            )
            return True

    def mark_done(self, key: RunKey, *, epochs: int | None = None, first_epoch: int = 0) -> bool:
        """Mark a unit complete; returns False if it already was (bumping ``n_marks``).

        The unit needs at least one recorded epoch; with ``epochs=n`` its epochs must be exactly
        ``first_epoch .. first_epoch + n - 1`` (default ``0..n-1``). Committed before returning.
        """
        key = _check_key(key)
        if epochs is not None and (isinstance(epochs, bool) or not isinstance(epochs, numbers.Integral) or epochs < 1):
            raise ValueError(f"epochs must be a positive int or None, got {epochs!r}")
        with _translate(self.path), self._write() as conn:
            have = _epochs(conn, key)
            if not have:
                raise StoreError(f"cannot mark {key} done: no epoch recorded")
            want = list(range(first_epoch, first_epoch + epochs)) if epochs is not None else have
            if have != want:
                missing = sorted(set(want) - set(have))
                extra = sorted(set(have) - set(want))
                raise StoreError(
                    f"cannot mark {key} done with {epochs} epochs: missing {missing}, unexpected {extra}"
                )
            if conn.execute(f"UPDATE done SET n_marks = n_marks + 1 WHERE {_KEY_WHERE}", key.as_tuple()).rowcount:
                return False
            conn.execute(
                "INSERT INTO done (space, arch, dataset, scorer, config_hash, seed, n_epochs, done_at)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (*key.as_tuple(), len(have), time.time()),
            )
            return True

    def unmark_done(self, key: RunKey) -> bool:
        """Remove a unit's done marker (e.g. to train it for more epochs); True if it had one."""
        key = _check_key(key)
        with _translate(self.path), self._write() as conn:
            return conn.execute(f"DELETE FROM done WHERE {_KEY_WHERE}", key.as_tuple()).rowcount > 0

    @property
    def store_id(self) -> str:
        """A random identifier of this store, fixed when the file is created (a store deleted and
        created again under the same path gets a new one). Files that belong to one store, such as
        training checkpoints, carry it, so they are never taken for another store's. A store
        created before identifiers existed gets one on first use."""
        with _translate(self.path):
            row = self._connection().execute("SELECT value FROM meta WHERE key = 'store_id'").fetchone()
            if row is not None:
                return str(row[0])
            with self._write(guard=False) as conn:
                conn.execute("INSERT OR IGNORE INTO meta (key, value) VALUES ('store_id', ?)", (uuid.uuid4().hex,))
                return str(conn.execute("SELECT value FROM meta WHERE key = 'store_id'").fetchone()[0])

    def save_config(self, config: Mapping[str, Any]) -> str:
        """Store ``config``'s canonical JSON under its :func:`config_hash`; return the hash."""
        text = canonical_json(config)
        digest = config_hash(config)
        with _translate(self.path), self._write() as conn:
            row = conn.execute("SELECT config FROM configs WHERE config_hash = ?", (digest,)).fetchone()
            if row is None:
                conn.execute("INSERT INTO configs (config_hash, config) VALUES (?, ?)", (digest, text))
            elif row[0] != text:
                raise StoreError(f"config_hash collision for {digest}: {row[0]} vs {text}")
        return digest

    # -- reading

    def get_config(self, digest: str) -> dict[str, Any]:
        """The config saved with :meth:`save_config` under ``digest`` (KeyError if absent)."""
        with _translate(self.path):
            row = self._connection().execute("SELECT config FROM configs WHERE config_hash = ?", (digest,)).fetchone()
        if row is None:
            raise KeyError(f"no config saved under hash {digest!r}")
        return json.loads(row[0])

    def is_done(self, key: RunKey) -> bool:
        """Whether :meth:`mark_done` has been called for ``key``."""
        key = _check_key(key)
        with _translate(self.path):
            return _is_done(self._connection(), key)

    def epochs_done(self, key: RunKey) -> list[int]:
        """Sorted epochs recorded for ``key`` (``[NO_EPOCH]`` for a scorer without epochs)."""
        key = _check_key(key)
        with _translate(self.path):
            return _epochs(self._connection(), key)

    def pending(self, keys: Iterable[RunKey]) -> list[RunKey]:
        """The keys not yet marked done, in the given order."""
        keys = [_check_key(k) for k in keys]
        with _translate(self.path), self._read() as conn:
            return [k for k in keys if not _is_done(conn, k)]

    def rows(self, *, done: bool | None = None, **filters: Any) -> Iterator[StoredRow]:
        """Iterate stored epochs in key order, optionally filtered.

        ``filters`` match key fields or ``epoch`` (``None`` means :data:`NO_EPOCH`) against a value
        or a list/tuple/set of values; ``done=True``/``False`` keeps only units that are / are not
        marked done. Do not write through the same store while iterating.
        """
        where, params = _where(filters, done)
        conn = self._connection()
        with _translate(self.path):
            cur = conn.execute(_select(where), params)
            try:
                while batch := cur.fetchmany(512):
                    for r in batch:
                        yield _record(r)
            finally:
                cur.close()

    def count(self, *, done: bool | None = None, **filters: Any) -> int:
        """Number of epoch rows matching the :meth:`rows` filters."""
        where, params = _where(filters, done)
        with _translate(self.path):
            return self._connection().execute(f"SELECT COUNT(*) FROM epochs e {where}", params).fetchone()[0]

    def check(self) -> None:
        """Run ``PRAGMA integrity_check``; raise :class:`StoreCorruptError` unless it says ok."""
        with _translate(self.path):
            result = [r[0] for r in self._connection().execute("PRAGMA integrity_check")]
        if result != ["ok"]:
            raise StoreCorruptError(f"nasbeff store {self.path} failed integrity_check: {result[:5]}")

    # -- export

    def _snapshot(self, filters: dict[str, Any], done: bool | None) -> tuple[list[str], Iterator[StoredRow]]:
        """Metric names (sorted union) and an iterator over the same rows; call inside _read()."""
        where, params = _where(filters, done)
        conn = self._connection()
        names: set[str] = set()
        for (text,) in conn.execute(f"SELECT metrics FROM epochs e {where}", params):
            names.update(json.loads(text))
        return sorted(names), (_record(r) for r in conn.execute(_select(where), params))

    def to_csv(self, path: str | os.PathLike[str], *, done: bool | None = None, **filters: Any) -> int:
        """Write one CSV row per epoch: key columns, ``epoch``, then every metric name (sorted).

        Missing and null metrics are empty cells. The file is replaced atomically. Takes the
        :meth:`rows` filters; returns the number of rows written.
        """
        out = Path(path)
        from .atomic import atomic_write  # here: this module also loads on its own (tests/_store_worker.py)

        n = 0
        with atomic_write(out, "w", newline="") as f, _translate(self.path), self._read():
            names, records = self._snapshot(filters, done)
            writer = csv.writer(f)
            writer.writerow([*_ROW_FIELDS, *names])
            for rec in records:
                row = rec.flat()
                writer.writerow(["" if row.get(c) is None else row[c] for c in (*_ROW_FIELDS, *names)])
                n += 1
        return n

    def export_done(self, path: str | os.PathLike[str], **filters: Any) -> int:
        """Merge every finished unit matching the :meth:`rows` filters into the CSV ``path``: one line
        per epoch, the key fields, ``epoch`` and ``metrics`` (the stored JSON text: exact). Lines of
        other units already in ``path`` are kept, so one file can collect several runs. Commit it and
        a fresh checkout resumes with :meth:`import_done`. A ``path`` named ``*.gz`` is written gzip-compressed
        (byte-identical for the same lines). Returns the number of units in the file."""
        from .atomic import atomic_write  # here: this module also loads on its own (tests/_store_worker.py)

        out = Path(path)
        lines: dict[tuple, dict[str, str]] = {}
        if out.exists():
            for r in read_units_csv(out):
                lines[(*(r[f] for f in KEY_FIELDS), r["epoch"])] = r
        for rec in self.rows(done=True, **filters):
            fields = dict(zip(KEY_FIELDS, map(str, rec.key.as_tuple())))
            lines[(*fields.values(), str(rec.epoch))] = {**fields, "epoch": str(rec.epoch), "metrics": _dumps(rec.metrics)}
        with atomic_write(out, "wb") as raw:
            binary = gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0) if is_gzip_path(out) else raw
            f = io.TextIOWrapper(binary, encoding="utf-8", newline="")
            writer = csv.DictWriter(f, fieldnames=[*_ROW_FIELDS, "metrics"])
            writer.writeheader()
            writer.writerows(lines[k] for k in sorted(lines, key=lambda k: (*k[:5], int(k[5]), int(k[6]))))
            f.flush()
            f.detach()  # atomic_write closes the file itself
            if binary is not raw:
                binary.close()  # the gzip trailer (raw stays open)
        return len({k[:6] for k in lines})

    def import_done(self, path: str | os.PathLike[str]) -> int:
        """Store every unit of ``path`` (a file of :meth:`export_done`) that this store does not have
        yet: its epochs and its done marker in one transaction per unit. A unit stored here already
        (done or not) is left as it is. Returns the number of units added."""
        units: dict[RunKey, list[tuple[int | None, dict]]] = {}
        for r in read_units_csv(path):
            key = RunKey(r["space"], r["arch"], r["dataset"], r["scorer"], r["config_hash"], int(r["seed"]))
            epoch = int(r["epoch"])
            units.setdefault(key, []).append((None if epoch == NO_EPOCH else epoch, json.loads(r["metrics"])))
        added = 0
        for key, epochs in units.items():
            if self.epochs_done(key):  # stored already (a done unit always has epochs)
                continue
            with self.transaction():
                for epoch, metrics in epochs:
                    self.record_epoch(key, epoch, metrics)
                self.mark_done(key)
            added += 1
        return added

    def to_dataframe(self, *, done: bool | None = None, **filters: Any) -> pd.DataFrame:
        """The :meth:`to_csv` table as a pandas DataFrame (pandas is imported lazily)."""
        try:
            import pandas as pd
        except ImportError as exc:  # pragma: no cover - pandas is a test dependency
            raise ImportError("ResultStore.to_dataframe needs pandas: pip install pandas") from exc
        with _translate(self.path), self._read():
            names, records = self._snapshot(filters, done)
            data = [rec.flat() for rec in records]
        # Metrics whose values are all numbers (or null) become float/int columns with NaN for null.
        numeric = [n for n in names if all(_is_number(r.get(n)) for r in data)]
        for r in data:
            for n in numeric:
                if r.get(n) is None:
                    r[n] = math.nan
        return pd.DataFrame.from_records(data, columns=[*_ROW_FIELDS, *names])


def _is_done(conn: sqlite3.Connection, key: RunKey) -> bool:
    return conn.execute(f"SELECT 1 FROM done WHERE {_KEY_WHERE}", key.as_tuple()).fetchone() is not None


def _epochs(conn: sqlite3.Connection, key: RunKey) -> list[int]:
    cur = conn.execute(f"SELECT epoch FROM epochs WHERE {_KEY_WHERE} ORDER BY epoch", key.as_tuple())
    return [r[0] for r in cur]


def _is_number(value: Any) -> bool:
    return value is None or (isinstance(value, (int, float)) and not isinstance(value, bool))


def _select(where: str) -> str:
    cols = ", ".join(_ROW_FIELDS)
    return f"SELECT {cols}, metrics, n_writes, recorded_at FROM epochs e {where} ORDER BY {cols}"


def _record(r: tuple[Any, ...]) -> StoredRow:
    return StoredRow(RunKey(*r[:6]), r[6], json.loads(r[7]), r[8], r[9])


def _where(filters: dict[str, Any], done: bool | None) -> tuple[str, list[Any]]:
    clauses: list[str] = []
    params: list[Any] = []
    for name, value in filters.items():
        if name not in _ROW_FIELDS:
            raise TypeError(f"unknown filter {name!r}; expected one of {', '.join(_ROW_FIELDS)} or done")
        values = list(value) if isinstance(value, (list, tuple, set, frozenset)) else [value]
        if name == "epoch":
            values = [_check_epoch(v) for v in values]
        if not values:
            clauses.append("0")
            continue
        clauses.append(f"e.{name} IN ({', '.join('?' * len(values))})")
        params.extend(values)
    if done is not None:
        match = " AND ".join(f"d.{f} = e.{f}" for f in KEY_FIELDS)
        clauses.append(f"{'' if done else 'NOT '}EXISTS (SELECT 1 FROM done d WHERE {match})")
    return ("WHERE " + " AND ".join(clauses)) if clauses else "", params
