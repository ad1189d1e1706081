"""Result CSV files: written all-or-nothing (:func:`~nasbeff.store.atomic_write`), read with one-line
errors for a missing, binary or malformed file."""

from __future__ import annotations

import csv
import math
import os
from collections.abc import Sequence
from pathlib import Path

from .atomic import atomic_write


def write_csv(rows: Sequence[dict], path: str | os.PathLike, float_spec: str = ".6g") -> None:
    """Rows as CSV, all-or-nothing (:func:`nasbeff.store.atomic_write`); floats formatted with ``float_spec`` (6 significant
    digits; ``.17g`` round-trips a double exactly)."""
    with atomic_write(path, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0].keys()) if rows else ["index"])
        w.writeheader()
        for r in rows:
            w.writerow({k: (format(v, float_spec) if isinstance(v, float) else v) for k, v in r.items()})


def read_csv(path: Path, what: str = "CSV") -> tuple[list[str], list[dict[str, str]]]:
    """(field names, rows) of a text CSV; a missing, binary or malformed file is one line naming it."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{what} {path} not found")
    try:
        with open(path, newline="", encoding="utf-8") as f:
            reader = csv.DictReader(f)
            rows = list(reader)
            fields = list(reader.fieldnames or [])
    except (UnicodeDecodeError, csv.Error) as exc:
        raise ValueError(f"{what} {path} is not a text CSV file ({type(exc).__name__})") from None
    if any("\x00" in name for name in fields):
        raise ValueError(f"{what} {path} is not a text CSV file (it holds NUL bytes)")
    return fields, rows


def to_float(v: str | None) -> float:
    """A CSV cell as float (NaN for empty, 'None' or non-numeric cells)."""
    try:
        return float(v) if v not in (None, "", "None") else math.nan
    except ValueError:
        return math.nan
