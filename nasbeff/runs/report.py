"""``nasbeff report``: figures and the rank-agreement table from rank/score and search CSVs.

Which archs each row of the table counts, explicitly:

* ``cut_off="drop"`` (default) leaves the cut-off archs (input disconnected from the output, told by
  the arch string) out of every row; ``"last"`` keeps them, ranked below every scored arch (every
  registered scorer gives them ``-inf``, "cannot be scored").
* ``-inf`` elsewhere is a limit value that ranks last (e.g. AZ-NAS trainability of an identity
  block): the scores are replaced by their ranks (ties averaged, ``-inf`` lowest) before the
  correlations, so those archs count; an empty cell (not computed) never does.
* ``archs="common"`` (default): every row uses the same archs, those with a value in every compared
  column and a finite truth, so the rows can be compared; ``"each"``: each row uses the archs with a
  value in its own column, and the result's notes say which rows differ in n.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np

from ._common import check_writable, parse_names, read_csv, to_float


@dataclass(frozen=True)
class ReportConfig:
    """Inputs and outputs of a report (validated on construction)."""

    scores: Path | None = None
    columns: tuple[str, ...] = ()
    main: str = ""
    truth: str = "c10_test"
    truth_csv: Path | None = None
    search_csv: Path | None = None
    shared: Path | None = None
    out: Path = Path("runs/report")
    n_boot: int = 2000
    seed: int = 0
    archs: Literal["common", "each"] = "common"
    cut_off: Literal["drop", "last"] = "drop"

    def __post_init__(self) -> None:
        if self.scores is None and self.search_csv is None:
            raise ValueError("give --scores (a rank or score CSV) and/or --search (a search CSV)")
        if self.archs not in ("common", "each"):
            raise ValueError(f"--archs must be common or each, got {self.archs!r}")
        if self.cut_off not in ("drop", "last"):
            raise ValueError(f"--cut-off must be drop or last, got {self.cut_off!r}")
        for path, what in ((self.scores, "--scores"), (self.truth_csv, "--truth-csv"), (self.search_csv, "--search")):
            if path is not None and not Path(path).is_file():
                raise FileNotFoundError(f"{what} {path} not found")
        if self.n_boot < 1:
            raise ValueError(f"--n-boot must be >= 1, got {self.n_boot}")
        check_writable(Path(self.out) / "scorers.png", "--out")


@dataclass
class ReportResult:
    table: list[dict] = field(default_factory=list)  # correlation_table rows
    truth_name: str = ""
    scores_name: str = ""
    written: list[Path] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # which archs the rows count, and warnings


def scores_dataset(path: Path | None) -> str | None:
    """The dataset a rank CSV's rows were trained on (its ``dataset`` column, one value; ``nasbeff rank``
    writes it), or None: no such file or column, or rows of several datasets."""
    if path is None or not Path(path).is_file():
        return None
    try:
        fields, rows = read_csv(Path(path), "--scores")
    except ValueError:
        return None  # a bad file: run_report says so
    names = {r.get("dataset") or "" for r in rows}
    if "dataset" not in fields or len(names) != 1:
        return None
    return names.pop() or None


def _score_columns(fields: list[str], columns: tuple[str, ...]) -> list[str]:
    from .. import proxies as zc

    if columns:
        cols = list(parse_names(columns, "--columns"))
        missing = [c for c in cols if c not in fields]
        if missing:
            raise ValueError(f"columns {missing} are not in the CSV (it has {', '.join(fields)})")
        return cols
    known = ["beff_pred", "lsv", "bsv", *zc.available()]
    cols = [c for c in known if c in fields] + [c for c in fields if zc.is_aggregate_name(c)]
    if not cols:
        raise ValueError("no score column found (expected beff_pred/lsv/bsv or proxy names); pass --columns")
    return cols


def run_report(cfg: ReportConfig) -> ReportResult:
    """From a rank/score CSV and the ground truth: ``pred_vs_true.png``, ``scorers.png`` (Spearman
    rho with bootstrap CIs) and the table (see the module docstring for the archs each row counts);
    from a search CSV: ``search_curves.png`` (mean ± std over seeds of the best arch's test accuracy
    vs the simulated budget). Every input is read and checked before ``cfg.out`` is created."""
    res = ReportResult()
    draw = []
    if cfg.scores is not None:
        draw.append(_report_scores(cfg, res))
    if cfg.search_csv is not None:
        groups = _search_groups(cfg.search_csv)
        path = Path(cfg.out) / "search_curves.png"
        draw.append(lambda: _plot_search_curves(cfg.search_csv, groups, path) or [path])
    Path(cfg.out).mkdir(parents=True, exist_ok=True)
    for plot in draw:
        res.written += plot()
    return res


def comparable_columns(cols: dict[str, np.ndarray], truth: np.ndarray, cut: np.ndarray, archs: str = "common",
                       cut_off: str = "drop") -> tuple[dict[str, np.ndarray], np.ndarray, list[str]]:
    """The score columns ready for :func:`nasbeff.evaluation.correlation.correlation_table` under the module's
    rules: ``-inf`` ranked last (values replaced by their ranks; NaN where a row does not count the
    arch), cut-off archs dropped or kept, one arch set for every row (``"common"``) or each row its
    own (``"each"``); with the truth (NaN outside the archs counted) and notes naming what was left out."""
    from scipy.stats import rankdata

    base = np.isfinite(truth) & (~cut if cut_off == "drop" else np.ones_like(cut))
    has = {c: ~np.isnan(v) for c, v in cols.items()}
    notes = []
    if cut_off == "drop" and cut.any():
        notes.append(f"{int(cut.sum())} cut-off archs left out (--cut-off last keeps them, ranked last)")
    if (~np.isfinite(truth)).any():
        notes.append(f"{int((~np.isfinite(truth)).sum())} archs without a ground-truth value left out")
    if archs == "common":
        keep = base & np.logical_and.reduce(list(has.values()))
        short = sorted(c for c in cols if (base & ~has[c]).any())
        if short:
            have = ", ".join(f"{c} has {int((base & has[c]).sum())}" for c in short)
            notes.append(f"every row counts the same {int(keep.sum())} archs, those with a value in every column "
                         f"({have} of {int(base.sum())}); --archs each gives each row its own")
        masks = {c: keep for c in cols}
    else:
        masks = {c: base & has[c] for c in cols}
        ns = {c: int(m.sum()) for c, m in masks.items()}
        if len(set(ns.values())) > 1:
            notes.append("rows count different archs (--archs each): n " + ", ".join(f"{c} {n}" for c, n in ns.items())
                         + "; --archs common compares them on the same archs")
    out = {}
    for c, v in cols.items():
        r = np.full(v.shape, np.nan)
        m = masks[c]
        if m.any():
            r[m] = rankdata(v[m])  # -inf lowest, ties averaged: rank correlations are unchanged otherwise
        out[c] = r
    counted = np.logical_or.reduce(list(masks.values())) if masks else base
    small = [c for c, m in masks.items() if 0 < m.sum() < SMALL_N]
    if small:
        notes.append(f"few archs ({min(int(masks[c].sum()) for c in small)}): bootstrap intervals from so few "
                     "archs are unreliable (they can collapse to a point)")
    return out, np.where(counted, truth, np.nan), notes


SMALL_N = 20  # fewer archs than this in a row: its intervals get a warning


def _report_scores(cfg: ReportConfig, res: ReportResult):
    """Read and check the scores and the truth, compute the table; returns the plotting step."""
    from ..evaluation.correlation import correlation_table
    from ..spaces import index_to_str, is_cut_off

    path = Path(cfg.scores)
    fields, rows = read_csv(path, "--scores")
    if "index" not in fields:
        raise ValueError(f"{path} has no 'index' column")
    if not rows:
        raise ValueError(f"{path} has no rows")
    cols = _score_columns(fields, cfg.columns)
    main = cfg.main or cols[0]
    if main not in fields:
        raise ValueError(f"--main {main!r} is not a column of {path}")
    try:
        idx = [int(r["index"]) for r in rows]
    except ValueError:
        raise ValueError(f"{path}: non-integer index") from None
    if cfg.truth_csv is not None:
        tf, trows = read_csv(cfg.truth_csv, "--truth-csv")
        if "index" not in tf or cfg.truth not in tf:
            raise ValueError(f"{cfg.truth_csv} needs the columns index and {cfg.truth}")
        lookup = {int(r["index"]): to_float(r[cfg.truth]) for r in trows}
        t = np.array([lookup.get(i, np.nan) for i in idx])
        res.truth_name = f"{cfg.truth} ({Path(cfg.truth_csv).name})"
    else:
        from ..tables.ground_truth import NB201Table

        table = NB201Table(cfg.shared)
        if not table.path.is_file():
            raise FileNotFoundError(f"NB201 ground truth {table.path} not found: pass --shared or set NASBEFF_SHARED_DATA")
        t = np.asarray(table.column(cfg.truth, idx), dtype=float)
        res.truth_name = f"NB201 {cfg.truth}"
    s = {c: np.array([to_float(r[c]) for r in rows]) for c in cols}
    cut = np.array([bool(is_cut_off(index_to_str(i))) for i in idx])
    ranked, t_counted, res.notes = comparable_columns(s, t, cut, cfg.archs, cfg.cut_off)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            res.table = correlation_table(ranked, t_counted, n_boot=cfg.n_boot, seed=cfg.seed)
        except ValueError as e:
            raise ValueError(f"{path}: {e} (after leaving out what the notes say)") from None
    res.scores_name = path.name

    def plot() -> list[Path]:
        from ..evaluation.plots import predicted_vs_true, scorer_bars

        p1, p2 = Path(cfg.out) / "pred_vs_true.png", Path(cfg.out) / "scorers.png"
        predicted_vs_true(s[main], t, p1, label=main, truth_label=res.truth_name, highlight=cut, title=path.name)
        scorer_bars(res.table, p2, title=f"vs {res.truth_name}")
        return [p1, p2]

    return plot


def _search_groups(path: Path) -> dict[str, dict[float, list[float]]]:
    """A search CSV's ``best_test_acc`` grouped by (method, scorer, warm-up) and budget, and by
    ``dataset`` where the CSV has that column (a dataset other than CIFAR-10 is named in the label)."""
    fields, rows = read_csv(path, "--search")
    need = {"method", "scorer", "seed", "budget_s", "best_test_acc"}
    if not need <= set(fields):
        raise ValueError(f"{path} is not a search CSV: it needs the columns {', '.join(sorted(need))}")
    groups: dict[str, dict[float, list[float]]] = {}
    for r in rows:
        warm = r.get("warmup_scorer") or ""
        label = f"{r['method']}+{r['scorer']}" + (f" (warm-up {warm})" if warm else "")
        if (r.get("dataset") or "cifar10") != "cifar10":
            label += f" [{r['dataset']}]"
        groups.setdefault(label, {}).setdefault(to_float(r["budget_s"]), []).append(to_float(r["best_test_acc"]))
    if not groups:
        raise ValueError(f"{path} has no rows")
    return groups


def _plot_search_curves(path: Path, groups: dict[str, dict[float, list[float]]], png: Path) -> None:
    from ..evaluation.plots import search_curves

    search_curves(groups, png, title=f"{path.name}: mean ± 1 std over seeds")
