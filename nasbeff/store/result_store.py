"""The :class:`ResultStore` (see :mod:`nasbeff.store` for the design)."""

from __future__ import annotations

import contextlib
import csv
import gzip
import io
import json
import logging
import math
import numbers
import os
import socket
import sqlite3
import time
import uuid
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd

from .database import _KEY_WHERE, _OPEN_HERE, _ROW_WHERE, _open, _translate
from .lease import Lease, _LeaseRow, _one_line
from .records import (KEY_FIELDS, NO_EPOCH, _ROW_FIELDS, ConflictError, RunKey, StoreBusyError, StoreCorruptError,
                      StoreError, StoredRow, _check_epoch, _check_key, _deterministic, _dumps, _normalise_metrics,
                      canonical_json, config_hash, is_gzip_path, read_units_csv)

_log = logging.getLogger(__name__)

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

