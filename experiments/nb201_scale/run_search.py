"""Issue 13, part 5: warm-up REA with the best aggregate (chosen on the dev archs) as the warm-up
scorer, 100 seeds, beside the existing rows of ``benchmarks_data/nb201_search.csv``.

    python experiments/nb201_scale/run_search.py [--config experiments/nb201_scale/config.json]

Everything is fixed by the config's ``search`` entry, committed before the run: the warm-up scorers
(the aggregate, and MeCo and naswot_v1 alone as one-part rank scorers on the same pool, so the rows
differ only in the warm-up scorer), the warm-up pool size, the seeds and the budget. Each is one
:func:`nasbeff.runs.search.run_search` (``nasbeff search --method warmup_rea --scorer benchmark
--warmup-scorer ... --pool-csv <the sample tier's CSV>``): the warm-up pool is drawn from the CSV's
archs that have every part, ranked within that pool, each warm-up evaluation charged its parts'
measured wall seconds; the top 10 start REA with ``benchmark`` in the whole space.

Writes the rows at the config's budgets into ``out`` (a ``warmup_scorer`` column is added where the
file lacks it: ``naswot_v1`` for its warm-up rows; earlier rows of these warm-up scorers are
replaced) and a report: mean ± std of the final ``c10_test`` per budget beside the existing
``benchmarks_data`` rows, and per-seed paired differences (same seeds) with bootstrap CIs.
"""

from __future__ import annotations

import argparse
import csv
import json
from pathlib import Path

import numpy as np

from nasbeff.store import atomic_write
from nasbeff.evaluation import paired_mean_difference
from nasbeff.runs.search import CSV_FIELDS, SearchConfig, run_search

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
FIELDS = CSV_FIELDS  # the columns nasbeff search writes
#: Rows of the search CSV to show beside the new ones: (method, scorer, warm-up scorer) -> label.
EXISTING = {("rea", "benchmark", ""): "REA + benchmark",
            ("random", "benchmark", ""): "random + benchmark",
            ("warmup_rea", "benchmark", "naswot_v1"): "warm-up REA (naswot_v1, whole space) → benchmark"}


def read_rows(path: Path) -> list[dict]:
    """Rows of the search CSV, with ``warmup_scorer`` filled in for files written before the column
    existed (their only warm-up rows are naswot_v1's) and ``dataset`` for those written before that
    one (CIFAR-10's)."""
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    for r in rows:
        if "warmup_scorer" not in r or r["warmup_scorer"] is None:
            r["warmup_scorer"] = "naswot_v1" if r["method"] == "warmup_rea" else ""
        r["dataset"] = r.get("dataset") or "cifar10"
    return rows


def _key(r: dict) -> tuple[str, str, str, str]:
    return r.get("dataset") or "cifar10", r["method"], r["scorer"], r["warmup_scorer"]


def merge_rows(old: list[dict], new: list[dict]) -> list[dict]:
    """``old`` less the rows of the (dataset, method, scorer, warm-up scorer) configurations in ``new``,
    then ``new``."""
    replaced = {_key(r) for r in new}
    return [r for r in old if _key(r) not in replaced] + new


def accuracies(rows: list[dict], config: tuple[str, str, str], budget: float) -> dict[int, float]:
    """seed -> final ``c10_test`` of the best arch found within ``budget`` (CIFAR-10 runs that found one)."""
    return {int(r["seed"]): float(r["best_test_acc"]) for r in rows
            if _key(r) == ("cifar10", *config) and float(r["budget_s"]) == budget and r["best_test_acc"] != ""}


def paired_by_seed(a: dict[int, float], b: dict[int, float]) -> tuple[list[float], list[float]]:
    """The values of the seeds both configurations ran, in seed order (for ``paired_mean_difference``)."""
    seeds = sorted(set(a) & set(b))
    return [a[s] for s in seeds], [b[s] for s in seeds]


def report(rows: list[dict], new: list[tuple[str, str, str]], budgets: list[float], pool_csv: str,
           warmup_pool: int, seconds: dict[str, float]) -> str:
    """The Markdown report: one line per configuration (new first), then paired differences."""
    labels = {c: f"warm-up REA ({c[2]}, sample pool) → benchmark" for c in new} | EXISTING
    lines = ["# Warm-up REA with the rank aggregate (issue 13, part 5)", "",
             f"`python experiments/nb201_scale/run_search.py`. Final `c10_test` of the best arch found within each "
             f"simulated budget, mean ± std over seeds (NB201 optimum 94.37). New rows: warm-up pool of {warmup_pool} "
             f"archs drawn per seed from the archs of `{pool_csv}` that have every part, ranked within that pool; "
             "each warm-up evaluation charged its parts' measured wall seconds (median charge per arch: "
             + ", ".join(f"{k} {v:.2f} s" for k, v in seconds.items()) + "); the top 10 start REA with `benchmark` "
             "in the whole space. The other rows are the existing ones of `benchmarks_data/nb201_search.csv` "
             "(naswot_v1 warm-up: 1,000 archs of the whole space, charged 1 s each).", "",
             "| configuration | seeds | " + " | ".join(f"{b:,.0f} s" for b in budgets) + " |",
             "|---|---|" + "---|" * len(budgets)]
    for c, lab in labels.items():
        cells = []
        for b in budgets:
            acc = np.array(list(accuracies(rows, c, b).values()))
            cells.append(f"{acc.mean():.2f} ± {acc.std(ddof=1):.2f}" if acc.size > 1 else "")
        n = len(accuracies(rows, c, budgets[-1]))
        if n:
            lines.append(f"| {lab} | {n} | " + " | ".join(cells) + " |")
    lines += ["", f"Paired differences (same seeds), {new[0][2]} warm-up minus the other, mean [95 % bootstrap CI "
              "over seeds]:", "", "| against | " + " | ".join(f"{b:,.0f} s" for b in budgets) + " |",
              "|---|" + "---|" * len(budgets)]
    for c, lab in labels.items():
        if c == new[0] or not accuracies(rows, c, budgets[-1]):
            continue
        cells = []
        for b in budgets:
            d = paired_mean_difference(*paired_by_seed(accuracies(rows, new[0], b), accuracies(rows, c, b)))
            cells.append(f"{d.diff:+.3f} [{d.ci[0]:+.3f}, {d.ci[1]:+.3f}]")
        lines.append(f"| {lab} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--config", type=Path, default=HERE / "config.json")
    ap.add_argument("--shared", type=Path, default=None, help="NB201 ground truth folder (default: the shared data)")
    args = ap.parse_args()
    cfg = json.loads(args.config.read_text())
    s = cfg["search"]
    pool_csv = next(t["out"] for t in cfg["tiers"] if t["name"] == s["pool_tier"])
    budgets = [float(b) for b in s["budgets"]]
    new_rows, configs, seconds = [], [], {}
    scratch = REPO / "runs" / "nb201_scale"
    for warm in s["warmup_scorers"]:
        sc = SearchConfig(methods=("warmup_rea",), scorers=("benchmark",), warmup_scorer=warm,
                          warmup_pool=s["warmup_pool"], pool_csv=REPO / pool_csv, budget=s["budget"],
                          seeds=s["seeds"], points=len(budgets), shared=args.shared,
                          out=scratch / f"search_{warm.replace(':', '_').replace('+', '_')}.csv")
        res = run_search(sc)
        warm_costs = [t.costs[t.stage == 0] for t in res.trajectories]  # stage 0: the warm-up evaluations
        seconds[warm] = float(np.median(np.concatenate([np.diff(c, prepend=0.0) for c in warm_costs])))
        print(f"{warm}: {res.elapsed_s:.0f} s")
        new_rows += [r for r in read_rows(res.out) if float(r["budget_s"]) in budgets]  # as run_search wrote them
        # (read_rows gives them dataset cifar10: the config searches CIFAR-10)
        configs.append(("warmup_rea", "benchmark", warm))
    out = REPO / s["out"]
    rows = merge_rows(read_rows(out), new_rows)
    fields = list(dict.fromkeys(["dataset", *FIELDS, *(k for r in rows for k in r)]))  # keep every column
    with atomic_write(out, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=fields, restval="")
        w.writeheader()
        w.writerows(rows)
    text = report(rows, configs, budgets, pool_csv, s["warmup_pool"], seconds)
    (REPO / s["report"]).write_text(text)
    print(text)


if __name__ == "__main__":
    main()
