"""Fake study for tests/test_store.py: resumes, records epochs, marks units done; gets SIGKILLed.

Usage: python _store_worker.py DB WORKLOG RUN_ID [--units A:B] [--sleep-scale S]
                                [--lease DESCRIPTION [--interval S] [--hold]]

With ``--lease`` it takes the store's run lease first and prints its run_id on stdout;
``--hold`` then sleeps (until killed) instead of working.

Before computing an epoch it appends ``RUN_ID UNIT EPOCH`` to WORKLOG (flushed to the OS, so
the line survives SIGKILL); the test uses it to show that only the epoch in flight at a kill is
ever computed again. The store's ``n_writes`` / ``n_marks`` counters are bumped in the same
transaction as each write, so they prove nothing was committed twice.
"""

from __future__ import annotations

import argparse
import importlib
import math
import sys
import time
import types
from pathlib import Path


def _load_store():
    """nasbeff.store on its own: the package ``nasbeff/__init__`` imports torch, which would make each
    of the test's many worker start-ups take seconds; the store needs only the standard library. So
    ``nasbeff`` is registered as a bare namespace (its ``__init__`` not run) unless already imported."""
    root = Path(__file__).resolve().parents[1] / "nasbeff"
    if "nasbeff" not in sys.modules:
        package = types.ModuleType("nasbeff")
        package.__path__ = [str(root)]
        sys.modules["nasbeff"] = package
    return importlib.import_module("nasbeff.store")


_store = _load_store()
ResultStore, RunKey, config_hash = _store.ResultStore, _store.RunKey, _store.config_hash

N_UNITS = 30
N_EPOCHS = 5
CONFIG = {"lr": 0.1, "epochs": N_EPOCHS, "batch_size": 64}


def unit_keys() -> list[RunKey]:
    """The fixed list of units, deterministic across processes."""
    h = config_hash(CONFIG)
    return [RunKey("toy", f"arch{i:02d}", "digits", "train", h, seed=i % 3) for i in range(N_UNITS)]


def work_seconds(unit: int, epoch: int) -> float:
    """Deterministic 5-10 ms of fake work."""
    return 0.005 + ((unit * 31 + epoch * 17) % 6) * 0.001


def metrics(unit: int, epoch: int) -> dict[str, float]:
    """The deterministic metrics of one epoch."""
    return {
        "train_loss": 1.0 / (1.0 + epoch + 0.1 * unit),
        "valid_acc": ((unit * 7 + epoch * 13) % 100) / 100.0,
        "beta_eff": math.sin(unit + 0.5 * epoch),
        "seconds": work_seconds(unit, epoch),
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("db")
    ap.add_argument("worklog")
    ap.add_argument("run_id")
    ap.add_argument("--units", default=f"0:{N_UNITS}")
    ap.add_argument("--sleep-scale", type=float, default=1.0)
    ap.add_argument("--lease", default=None)
    ap.add_argument("--interval", type=float, default=10.0)
    ap.add_argument("--hold", action="store_true")
    args = ap.parse_args(argv)
    lo, hi = (int(x) for x in args.units.split(":"))
    keys = unit_keys()
    with ResultStore(args.db) as store, open(args.worklog, "a", encoding="ascii") as log:
        if args.lease is not None:
            lease = store.acquire_lease(args.lease, args.interval)
            print(lease.run_id, flush=True)
            while args.hold:
                time.sleep(3600)
        for i in range(lo, hi):
            key = keys[i]
            if store.is_done(key):
                continue
            have = set(store.epochs_done(key))
            for e in range(N_EPOCHS):
                if e in have:
                    continue
                log.write(f"{args.run_id} {i} {e}\n")
                log.flush()
                time.sleep(work_seconds(i, e) * args.sleep_scale)
                store.record_epoch(key, e, metrics(i, e))
            store.mark_done(key, epochs=N_EPOCHS)
    return 0


if __name__ == "__main__":
    sys.exit(main())
