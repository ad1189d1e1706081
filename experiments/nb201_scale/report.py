"""Issue 13, part 3: rank agreement of every scorer column of the 3,000-arch CSV with the NB201 ground
truth, next to the published whole-space figures. Public API only (nasbeff.tables.ground_truth, nasbeff.evaluation.correlation).

    python experiments/nb201_scale/report.py [--scores benchmarks_data/nb201_cifar10_proxies_3000.csv]
        [--out experiments/nb201_scale/results.md] [--n-boot 2000]

For each scorer column (every column except ``index``, ``arch_str``, ``cut_off``, ``flags`` and
``*_seconds``): Spearman rho and Kendall tau with percentile-bootstrap 95% CIs
(:func:`nasbeff.evaluation.correlation.rank_correlation`) against ``c10_test`` (NB201 CIFAR-10 test accuracy, seed
mean) and ``naslib_val_c10`` (NASLib's single-seed validation accuracy, the NAS-Bench-Suite-Zero
label), over all archs of the CSV with a value ("with cut-off") and without the cut-off archs
(input disconnected from the output; 341 of the whole space). ``-inf`` (cannot be scored) ranks
last: values are replaced by their ranks (ties averaged) before the correlations, so those archs
count; empty cells (not computed) are left out. Beside each: the median wall seconds per arch it
cost (``<proxy>_seconds`` columns; a group member is charged its group's whole pass, an aggregate
every part's, by :func:`nasbeff.proxies.charged_seconds`), and the time and peak memory (PSS of the
process tree) of every chunk of the run, from ``chunks.jsonl`` beside this file. Where the shared
data holds published per-arch values (NB-Suite-Zero's CIFAR-10 file: 725 archs; NASLib's Zen: all),
ours and theirs are compared on exactly the same archs against NB-Suite-Zero's label.
"""

from __future__ import annotations

import argparse
import csv
import json
import math
from pathlib import Path

import numpy as np
from scipy.stats import rankdata

from nasbeff.tables import NB201Table, shared_data_dir
from nasbeff.evaluation import paired_bootstrap, rank_correlation
from nasbeff.proxies import charged_seconds
from nasbeff.proxies import is_aggregate_name, parse_aggregate_name
from nasbeff.spaces import is_cut_off

#: Published whole-space Spearman rho on NB201 CIFAR-10, by column.
PUBLISHED: dict[str, str] = {
    "meco": "0.894 (MeCo)",
    "naswot": "0.76-0.80 (NASWOT)",
    "jacov": "0.76-0.80 (NASWOT family)",
    "zico": "0.80 (ZiCo)",
    "synflow": "0.76 (NB-Suite-Zero)",
    "rank:aznas_expressivity+aznas_progressivity+aznas_trainability+aznas_complexity": "0.913 (AZ-NAS notebook)",
    "rank:vkdnw_single+jacov+aznas_expressivity+aznas_trainability+flops": "0.919 (VKDNW_agg)",
}
PUBLISHED_N = 15625  # every published figure above is over the whole space
TRUTHS = ("c10_test", "naslib_val_c10")
#: Our column -> the column of NB-Suite-Zero's published per-arch file (NASLib ``zc_nasbench201.json``).
NASLIB_NAMES = {"naswot": "nwot", "jacov": "jacov", "snip": "snip", "grad_norm": "grad_norm", "fisher": "fisher",
                "grasp": "grasp", "plain": "plain", "synflow": "synflow", "params": "params", "flops": "flops"}
HERE = Path(__file__).resolve().parent
NOT_SCORES = {"index", "arch_str", "cut_off", "flags"}


def read_scores(path: Path) -> tuple[np.ndarray, dict[str, np.ndarray], np.ndarray, dict[str, np.ndarray]]:
    """(indices, column -> values, cut-off mask, proxy -> measured wall seconds per arch) of a score
    CSV, in one read; NaN for empty cells. The seconds come from the ``<proxy>_seconds`` columns."""
    with open(path, newline="") as f:
        reader = csv.DictReader(f)
        rows = list(reader)
        fields = list(reader.fieldnames or [])
    if "index" not in fields or not rows:
        raise ValueError(f"{path}: needs an index column and at least one row")

    def column(c: str) -> np.ndarray:
        return np.array([float(r[c]) if r[c] not in ("", "None") else math.nan for r in rows])

    idx = np.array([int(r["index"]) for r in rows])
    cols = {c: column(c) for c in fields if c not in NOT_SCORES and not c.endswith("_seconds")}
    seconds = {c[: -len("_seconds")]: column(c) for c in fields if c.endswith("_seconds")}
    if "cut_off" in fields:
        cut = np.array([r["cut_off"] == "True" for r in rows])
    else:
        cut = np.array([is_cut_off(r["arch_str"]) for r in rows])
    return idx, cols, cut, seconds


def seconds_per_arch(name: str, seconds: dict[str, np.ndarray]) -> np.ndarray | None:
    """Wall seconds per arch of scorer ``name`` (an aggregate: all its parts; a group member: its
    group's pass; a column that is not a registered proxy: its own seconds), or None when some
    part has no measured seconds."""
    parts = parse_aggregate_name(name)[1] if is_aggregate_name(name) else [name]
    if not set(parts) <= set(seconds):
        return None
    try:
        return np.asarray(charged_seconds(parts, seconds), dtype=float)
    except KeyError:  # not a registered proxy (e.g. a column added by hand): no group to charge
        return np.sum([seconds[p] for p in parts], axis=0)


def as_ranks(values: np.ndarray) -> np.ndarray:
    """Ranks of the present values (``-inf`` lowest, ties averaged), NaN where missing."""
    out = np.full(values.shape, math.nan)
    ok = ~np.isnan(values)
    out[ok] = rankdata(values[ok])
    return out


def table(cols: dict[str, np.ndarray], truth: dict[str, np.ndarray], keep: np.ndarray, n_boot: int,
          seconds: dict[str, np.ndarray] | None = None) -> list[dict]:
    """One row per column: n, median seconds per arch, and per truth rho/tau with CIs, on the archs
    of ``keep`` that have a value."""
    rows = []
    for name, v in cols.items():
        has = keep & ~np.isnan(v)
        sec = seconds_per_arch(name, seconds or {})
        row = {"scorer": name, "n": int(has.sum()),
               "seconds": float(np.nanmedian(sec[has])) if sec is not None and has.any() else None}
        for t, tv in truth.items():
            try:
                c = rank_correlation(as_ranks(v[keep]), tv[keep], n_boot=n_boot)
                row[t] = (c.spearman, c.spearman_ci, c.kendall, c.kendall_ci)
            except ValueError:
                row[t] = None
        rows.append(row)
    rows.sort(key=lambda r: -(r["c10_test"][0] if r.get("c10_test") else -9))
    return rows


def _cell(v) -> str:
    return "n/a" if v is None else f"{v[0]:.3f} [{v[1][0]:.2f}, {v[1][1]:.2f}]"


def markdown(rows: list[dict], title: str) -> list[str]:
    lines = [f"## {title}", "",
             "| scorer | n | Spearman vs c10_test | Kendall vs c10_test | Spearman vs naslib_val_c10 "
             f"| Kendall vs naslib_val_c10 | s/arch | published (n = {PUBLISHED_N:,}) |",
             "|---|---|---|---|---|---|---|---|"]
    for r in rows:
        cells = []
        for t in TRUTHS:
            v = r.get(t)
            cells += [_cell(None if v is None else (v[0], v[1])), _cell(None if v is None else (v[2], v[3]))]
        sec = "" if r.get("seconds") is None else f"{r['seconds']:.2f}"
        lines.append(f"| `{r['scorer']}` | {r['n']} | " + " | ".join(cells)
                     + f" | {sec} | {PUBLISHED.get(r['scorer'], '')} |")
    return lines + [""]


def published_columns(shared: Path | None) -> dict[str, tuple[np.ndarray, str]]:
    """Published per-arch values over the whole space (NaN where not published), by our column
    name: NB-Suite-Zero's CIFAR-10 subset file (725 archs) and NASLib's Zen for all 15,625."""
    out: dict[str, tuple[np.ndarray, str]] = {}
    if shared is None:
        return out
    zc = shared / "zc_proxies" / "naslib_zc_nb201_subset.csv"
    if zc.is_file():
        with open(zc, newline="") as f:
            rows = [r for r in csv.DictReader(f) if r["dataset"] == "cifar10"]
        for ours, theirs in NASLIB_NAMES.items():
            v = np.full(15625, math.nan)
            for r in rows:
                if r[theirs] not in ("", "nan"):
                    v[int(r["index"])] = float(r[theirs])
            out[ours] = (v, "NB-Suite-Zero per-arch file")
    if (shared / "nb201").is_dir():
        out["zen"] = (np.asarray(NB201Table(shared).column("zen_c10"), dtype=float), "NASLib zen_c10")
    return out


def same_arch_lines(idx: np.ndarray, cols: dict[str, np.ndarray], cut: np.ndarray,
                    published: dict[str, tuple[np.ndarray, str]], truth: np.ndarray, n_boot: int) -> list[str]:
    """Ours and the published values of the same proxy on exactly the same archs (those of the CSV
    with a published value; cut-off archs left out), each against ``truth`` (NB-Suite-Zero's own
    label, ``naslib_val_c10``), with the paired bootstrap difference ours - published."""
    lines = ["## Ours and the published per-arch values, on the same archs", "",
             "Spearman vs `naslib_val_c10` (NB-Suite-Zero's label), cut-off archs left out; paired bootstrap on "
             "the same archs and resamples.", "",
             "| proxy | source | n | ours | published | ours − published |", "|---|---|---|---|---|---|"]
    for name, (values, source) in published.items():
        if name not in cols:
            continue
        pub = values[idx]
        keep = ~cut & np.isfinite(pub) & np.isfinite(cols[name]) & np.isfinite(truth)
        if keep.sum() < 10:
            continue
        ours_c = rank_correlation(cols[name][keep], truth[keep], n_boot=n_boot)
        pub_c = rank_correlation(pub[keep], truth[keep], n_boot=n_boot)
        d = paired_bootstrap(cols[name][keep], pub[keep], truth[keep], n_boot=n_boot)
        lines.append(f"| `{name}` | {source} | {int(keep.sum())} | {_cell((ours_c.spearman, ours_c.spearman_ci))} | "
                     f"{_cell((pub_c.spearman, pub_c.spearman_ci))} | {d.diff:+.3f} [{d.ci[0]:+.2f}, {d.ci[1]:+.2f}] |")
    return lines + [""] if len(lines) > 6 else []


def _or_q(v) -> str:
    return "?" if v is None else str(v)


def cost_lines(chunks: Path) -> list[str]:
    """Time and memory of the run: one line per tier (chunks, wall hours, CPU hours, peak PSS) from
    the ``chunks.jsonl`` records of ``run.py``."""
    if not chunks.is_file():
        return []
    recs = [json.loads(ln) for ln in chunks.read_text().splitlines() if ln.strip()]
    machines = sorted({f"{r.get('cpu', 'unknown')} ({r.get('cores', '?')} cores)" for r in recs})
    lines = ["## Time and memory", "", f"From `{chunks.name}` ({len(recs)} chunks; machine: {', '.join(machines)}). "
             "PSS is the proportional set size of the whole process tree, sampled every second.", "",
             "| tier | chunks | wall h | CPU h | peak PSS MiB | load average before/after |",
             "|---|---|---|---|---|---|"]
    for tier in dict.fromkeys(r["tier"] for r in recs):
        rs = [r for r in recs if r["tier"] == tier]
        loads = ", ".join(f"{_or_q(r.get('load_before'))}/{_or_q(r.get('load_after'))}" for r in rs)
        lines.append(f"| {tier} | {len(rs)} | {sum(r['wall_s'] for r in rs) / 3600:.2f} | "
                     f"{sum(r['cpu_s'] for r in rs) / 3600:.2f} | {max(r['peak_pss_mib'] for r in rs):.0f} | {loads} |")
    return lines + [""]


def report(scores: Path, truth: dict[str, np.ndarray] | None, n_boot: int, chunks: Path | None = None,
           published: dict[str, tuple[np.ndarray, str]] | None = None) -> str:
    """The Markdown report of ``scores``; ``truth``: column -> values over the whole space (default:
    :data:`TRUTHS` of the NB201 table); ``chunks``: the run's ``chunks.jsonl`` (time and memory);
    ``published``: :func:`published_columns` (the same-arch comparison needs ``naslib_val_c10``)."""
    idx, cols, cut, seconds = read_scores(scores)
    if truth is None:
        t = NB201Table()
        truth = {c: t.column(c) for c in TRUTHS}
    tv = {c: np.asarray(v, dtype=float)[idx] for c, v in truth.items()}
    lines = [f"# NB201 CIFAR-10 scorers on {len(idx)} archs ({scores.name})", "",
             f"Spearman / Kendall with 95% bootstrap CIs ({n_boot} resamples, seed 0). -inf ranks last. "
             f"{int(cut.sum())} cut-off archs in the file.", ""]
    lines += markdown(table(cols, tv, np.ones(len(idx), bool), n_boot, seconds),
                      f"with cut-off archs (n = {len(idx)})")
    lines += markdown(table(cols, tv, ~cut, n_boot, seconds), f"without cut-off archs (n = {int((~cut).sum())})")
    if published and "naslib_val_c10" in tv:
        lines += same_arch_lines(idx, cols, cut, published, tv["naslib_val_c10"], n_boot)
    if chunks is not None:
        lines += cost_lines(chunks)
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--scores", type=Path, default=Path("benchmarks_data/nb201_cifar10_proxies_3000.csv"))
    ap.add_argument("--out", type=Path, default=Path("experiments/nb201_scale/results.md"))
    ap.add_argument("--n-boot", type=int, default=2000)
    ap.add_argument("--chunks", type=Path, default=HERE / "chunks.jsonl", help="run.py's chunk records")
    args = ap.parse_args()
    published = published_columns(shared_data_dir())
    args.out.write_text(report(args.scores, None, args.n_boot, args.chunks, published) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
