"""``nasbeff report``: figures and the rank-agreement table from rank/score and search CSVs."""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from pathlib import Path

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

    def __post_init__(self) -> None:
        if self.scores is None and self.search_csv is None:
            raise ValueError("give --scores (a rank or score CSV) and/or --search (a search CSV)")
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


def _score_columns(fields: list[str], columns: tuple[str, ...]) -> list[str]:
    from .. import proxies as zc

    if columns:
        cols = list(parse_names(columns, "--columns"))
        missing = [c for c in cols if c not in fields]
        if missing:
            raise ValueError(f"columns {missing} are not in the CSV (it has {', '.join(fields)})")
        return cols
    known = ["beff_pred", "lsv", "bsv", *zc.available()]
    cols = [c for c in known if c in fields]
    if not cols:
        raise ValueError("no score column found (expected beff_pred/lsv/bsv or proxy names); pass --columns")
    return cols


def run_report(cfg: ReportConfig) -> ReportResult:
    """From a rank/score CSV and the ground truth: ``pred_vs_true.png``, ``scorers.png`` (Spearman
    rho with bootstrap CIs) and the table; from a search CSV: ``search_curves.png`` (mean ± std over
    seeds of the best arch's test accuracy vs the simulated budget)."""
    res = ReportResult()
    Path(cfg.out).mkdir(parents=True, exist_ok=True)
    if cfg.scores is not None:
        _report_scores(cfg, res)
    if cfg.search_csv is not None:
        path = Path(cfg.out) / "search_curves.png"
        _plot_search_curves(cfg.search_csv, path)
        res.written.append(path)
    return res


def _report_scores(cfg: ReportConfig, res: ReportResult) -> None:
    from ..evaluate import correlation_table
    from ..plots import predicted_vs_true, scorer_bars
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
        from ..benchmarks import NB201Table

        table = NB201Table(cfg.shared)
        if not table.path.is_file():
            raise FileNotFoundError(f"NB201 ground truth {table.path} not found: pass --shared or set NASBEFF_SHARED_DATA")
        t = np.asarray(table.column(cfg.truth, idx), dtype=float)
        res.truth_name = f"NB201 {cfg.truth}"
    s = {c: np.array([to_float(r[c]) for r in rows]) for c in cols}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res.table = correlation_table(s, t, n_boot=cfg.n_boot, seed=cfg.seed)
    res.scores_name = path.name
    cut = np.array([bool(is_cut_off(index_to_str(i))) for i in idx])
    p1, p2 = Path(cfg.out) / "pred_vs_true.png", Path(cfg.out) / "scorers.png"
    predicted_vs_true(s[main], t, p1, label=main, truth_label=res.truth_name, highlight=cut, title=path.name)
    scorer_bars(res.table, p2, title=f"vs {res.truth_name}")
    res.written += [p1, p2]


def _plot_search_curves(path: Path, png: Path) -> None:
    """Group a search CSV's ``best_test_acc`` by (method, scorer, warm-up) and budget; plot it."""
    from ..plots import search_curves

    fields, rows = read_csv(path, "--search")
    need = {"method", "scorer", "seed", "budget_s", "best_test_acc"}
    if not need <= set(fields):
        raise ValueError(f"{path} is not a search CSV: it needs the columns {', '.join(sorted(need))}")
    groups: dict[str, dict[float, list[float]]] = {}
    for r in rows:
        warm = r.get("warmup_scorer") or ""
        label = f"{r['method']}+{r['scorer']}" + (f" (warm-up {warm})" if warm else "")
        groups.setdefault(label, {}).setdefault(float(r["budget_s"]), []).append(to_float(r["best_test_acc"]))
    if not groups:
        raise ValueError(f"{path} has no rows")
    search_curves(groups, png, title=f"{path.name}: mean ± 1 std over seeds")
