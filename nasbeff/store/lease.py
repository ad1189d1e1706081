"""The run lease: one run per store, a heartbeat, take-over of a dead or silent holder (see
:mod:`nasbeff.store`)."""

from __future__ import annotations

import atexit
import logging
import os
import signal
import socket
import sqlite3
import threading
import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Protocol



class _Holder(Protocol):
    """What a :class:`Lease` needs of the :class:`~nasbeff.store.ResultStore` that took it (no import
    of result_store here: it imports this module)."""

    path: Path
    _run_id: str | None

from .database import _translate
from .records import _STALE_INTERVALS

_log = logging.getLogger(__name__)

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

    def __init__(self, store: _Holder, row: _LeaseRow, took_over: str | None, timeout: float) -> None:
        self.path = store.path
        self.run_id = row.run_id
        self.description = row.command
        self.interval_s = row.interval_s
        self.started_at = row.started_at
        self.took_over = took_over
        self._store: _Holder | None = store
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


