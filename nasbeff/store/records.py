"""The result store's records: run keys, stored rows, metric normalisation, config hashing, the
units CSV of a store's finished results and the store's errors (see :mod:`nasbeff.store`)."""

from __future__ import annotations

import csv
import gzip
import hashlib
import json
import logging
import math
import numbers
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

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
    """Base class of every error raised by :mod:`nasbeff.store.result_store`."""


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
    value = _python_scalar(obj)
    if type(value) is not type(obj):
        return _canonical(value, where)
    raise TypeError(f"{where}: {type(obj).__name__} is not allowed in a config (use JSON-like values)")


def _python_scalar(obj: Any) -> Any:
    """A numpy / torch scalar as the Python value of its ``item()``; anything else (a multi-element
    array included) unchanged."""
    item = getattr(obj, "item", None)
    if callable(item):
        try:
            return item()
        except Exception:  # noqa: BLE001 - e.g. a multi-element array or tensor
            return obj
    return obj


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
    plain = _python_scalar(value)
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


