"""Per-epoch study results as a committed CSV, so that a study longer than a session continues in the next.

``nasbeff rank --results FILE.csv`` keeps every finished arch's per-epoch metrics in FILE (long
format: one line per arch and epoch, columns ``index, study_hash, epoch`` then every metric,
empty where an epoch lacks one, e.g. the ``p<j>_*`` beta_eff points). Before any work, archs
already in FILE with the run's ``study_hash`` and all their epochs are skipped; after the run
(also when it stops at ``--time-limit`` or on Ctrl-C) the store's finished archs are merged into
FILE. Commit FILE after each chunk; in a fresh checkout (no local store) the same command
trains only the archs FILE lacks, and the rows (every predictor variant included) are computed
from FILE and the store together: the raw curves are kept, not only the summary.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

from ._common import read_csv, to_float, write_csv

_KEYS = ("index", "study_hash", "epoch")


def read_curves(path: Path, study_hash: str, epochs: int) -> dict[int, list[dict]]:
    """``{index: per-epoch metrics}`` of the archs in ``path`` with ``study_hash`` and epochs 1..``epochs``
    all present (others are ignored); ``{}`` when the file does not exist yet."""
    path = Path(path)
    if not path.exists():
        return {}
    fields, rows = read_csv(path, "--results")
    missing = [k for k in _KEYS if k not in fields]
    if missing:
        raise ValueError(f"--results {path} lacks the column(s) {', '.join(missing)}: not a nasbeff rank results file")
    by_arch: dict[int, dict[int, dict]] = {}
    for r in rows:
        if r["study_hash"] != study_hash:
            continue
        metrics = {k: to_float(v) for k, v in r.items() if k not in _KEYS and v not in ("", None)}
        by_arch.setdefault(int(r["index"]), {})[int(r["epoch"])] = {k: v for k, v in metrics.items()
                                                                     if not math.isnan(v)}
    return {i: [eps[e] for e in range(1, epochs + 1)] for i, eps in by_arch.items()
            if all(e in eps for e in range(1, epochs + 1))}


def write_curves(path: Path, curves: Mapping[tuple[str, int], Sequence[dict]]) -> None:
    """Write ``{(study_hash, index): per-epoch metrics}`` to ``path`` (sorted by index, then epoch)."""
    names = sorted({k for ms in curves.values() for m in ms for k in m})
    rows = [{"index": i, "study_hash": h, "epoch": e, **{k: m.get(k, "") for k in names}}
            for (h, i), ms in sorted(curves.items(), key=lambda kv: (kv[0][1], kv[0][0]))
            for e, m in enumerate(ms, start=1)]
    write_csv(rows, path, float_spec=".17g")  # exact: rows computed from the file match the store's


def merge_curves(path: Path, study_hash: str, new: Mapping[int, Sequence[dict]]) -> int:
    """Add ``new`` archs' curves (this study) to ``path``, keeping every other line of it; returns
    the number of archs of this study in the file afterwards."""
    path = Path(path)
    kept: dict[tuple[str, int], list[dict]] = {}
    if path.exists():
        _, rows = read_csv(path, "--results")
        for r in rows:
            metrics = {k: to_float(v) for k, v in r.items() if k not in _KEYS and v not in ("", None)}
            kept.setdefault((r["study_hash"], int(r["index"])), []).append(
                {k: v for k, v in metrics.items() if not math.isnan(v)})
    for i, ms in new.items():
        kept[(study_hash, int(i))] = list(ms)
    write_curves(path, kept)
    return sum(h == study_hash for h, _ in kept)


def join_scores(rows: Iterable[dict], scores: Path) -> list[dict]:
    """``rows`` with the proxy columns of a ``nasbeff score`` CSV (joined on ``index``, prefixed
    ``zc_``; NaN where the CSV lacks the arch). Seconds and flag columns are left out."""
    fields, srows = read_csv(scores, "--scores")
    if "index" not in fields:
        raise ValueError(f"--scores {scores} has no index column: not a nasbeff score CSV")
    cols = [c for c in fields if c not in ("index", "arch_str", "cut_off", "flags") and not c.endswith("_seconds")]
    by_index = {int(r["index"]): r for r in srows}
    nan_row: dict[str, str] = {}
    return [{**r, **{f"zc_{c}": to_float(by_index.get(r["index"], nan_row).get(c)) for c in cols}} for r in rows]

