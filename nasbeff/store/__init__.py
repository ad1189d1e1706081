"""The result store: crash-safe SQLite store for per-epoch results of long, resumable scoring studies.

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

Modules: :mod:`.records` (keys, rows, hashing, errors), :mod:`.database` (opening the file),
:mod:`.lease` (one run per store), :mod:`.result_store` (:class:`ResultStore`), :mod:`.atomic` and
:mod:`.csv_files` (all-or-nothing files). Imports the standard library only (pandas on demand):
nothing else of nasbeff, so a worker can load it without torch.
"""


from .atomic import atomic_write
from .csv_files import read_csv, to_float, write_csv
from .database import open_in_this_process
from .lease import Lease
from .records import (APPLICATION_ID, KEY_FIELDS, NO_EPOCH, SCHEMA_VERSION, ConflictError, NotAStoreError, RunKey,
                      StoreBusyError, StoreCorruptError, StoredRow, StoreError, canonical_json, config_hash,
                      is_gzip_path, is_timing_metric, read_units_csv)
from .result_store import ResultStore

__all__ = ["APPLICATION_ID", "SCHEMA_VERSION", "NO_EPOCH", "KEY_FIELDS", "RunKey", "is_gzip_path", "read_units_csv",
           "is_timing_metric", "StoredRow", "ResultStore", "Lease", "StoreError", "NotAStoreError", "StoreCorruptError",
           "StoreBusyError", "ConflictError", "canonical_json", "config_hash", "atomic_write", "open_in_this_process", "read_csv", "to_float",
           "write_csv"]
