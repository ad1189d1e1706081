"""Opening a store's SQLite file: the foreign-file probe, validation, schema creation and migration
(see :mod:`nasbeff.store` for the design)."""

from __future__ import annotations

import contextlib
import os
import sqlite3
import stat
import sys
import time
import uuid
from collections.abc import Iterator
from datetime import datetime, timezone
from pathlib import Path

from .records import (APPLICATION_ID, KEY_FIELDS, SCHEMA_VERSION, _SQLITE_MAGIC, NotAStoreError, StoreBusyError,
                      StoreCorruptError, StoreError)

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


def open_in_this_process(path: str | os.PathLike[str]) -> bool:
    """Whether a :class:`~nasbeff.store.ResultStore` of this file is open in this process."""
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return False
    return (st.st_dev, st.st_ino) in _OPEN_HERE


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


