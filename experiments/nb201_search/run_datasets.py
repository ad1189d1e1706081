"""NB201 search on every dataset (issue 24 part 4, issue 25 part 4): REA, random, warm-up REA and the
predictor-guided search, each searching on CIFAR-10 / CIFAR-100 / ImageNet16-120's own validation
accuracy (``benchmark``: NB201's 12/200 share of that dataset's training time per evaluation), the
chosen arch's validation and test accuracy read on all three afterwards.

    OMP_NUM_THREADS=1 nice python experiments/nb201_search/run_datasets.py [--config ...] [--shared ...]

Everything it runs is in ``datasets_config.json`` (seeds, budgets, methods, warm-up scorers). Each
(dataset, configuration) is one :func:`nasbeff.runs.search.run_search` (``report_datasets='all'``)
up to the dataset's scaled budget; results at smaller budgets are prefixes of the same runs.

Writes the rows at the config's budgets into ``benchmarks_data/nb201_search.csv`` with a ``dataset``
column (rows without one are CIFAR-10's; earlier rows of the same dataset and configuration are
replaced, the others kept) and the chosen arch's ``best_<c10|c100|in16>_<test|valid>``, and the
report ``results_datasets.md``: the papers' layout (search on CIFAR-10, read all three, beside
NASWOT Table 2's REA), each dataset's own search, paired differences (same seeds) to warm-up REA.
"""

from __future__ import annotations

import argparse
import csv
import json
import tempfile
import time
from pathlib import Path

import numpy as np

from nasbeff.evaluation import paired_mean_difference
from nasbeff.runs.search import CSV_FIELDS, TEST_COLUMNS, SearchConfig, run_search
from nasbeff.store import atomic_write
from nasbeff.tables import NB201Table

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
SHORT = {"cifar10": "C10", "cifar100": "C100", "imagenet16-120": "IN16"}
VALID_COLUMNS = {"cifar10": "c10_valid", "cifar100": "c100_valid", "imagenet16-120": "in16_valid"}
#: NASWOT (ICML 2021) Table 2, test accuracy: REA (from NB201) and the optima.
PUBLISHED_REA_TEST = {"cifar10": 93.92, "cifar100": 71.84, "imagenet16-120": 45.54}
PUBLISHED_OPTIMUM_TEST = {"cifar10": 94.37, "cifar100": 73.51, "imagenet16-120": 47.31}
ACC_COLUMNS = [f"best_{c}" for d in SHORT for c in (TEST_COLUMNS[d], VALID_COLUMNS[d])]
FIELDS = ["dataset", *CSV_FIELDS, *ACC_COLUMNS]


def config_key(row: dict) -> tuple[str, str, str, str]:
    """(dataset, method, scorer, warm-up scorer) of a search CSV row."""
    return row["dataset"], row["method"], row["scorer"], row["warmup_scorer"]


def read_search_rows(path: Path) -> list[dict]:
    """Rows of a search CSV; files written before the ``dataset`` / ``warmup_scorer`` columns are
    CIFAR-10's, and their only warm-up rows naswot_v1's."""
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    for r in rows:
        r["dataset"] = r.get("dataset") or "cifar10"
        if r.get("warmup_scorer") is None:
            r["warmup_scorer"] = "naswot_v1" if r["method"] == "warmup_rea" else ""
    return rows


def merge(old: list[dict], new: list[dict]) -> list[dict]:
    """``old`` less the configurations (dataset included) in ``new``, then ``new``."""
    replaced = {config_key(r) for r in new}
    return [r for r in old if config_key(r) not in replaced] + new


def label(method: str, warm: str, dataset: str) -> str:
    """How the report names a configuration (``warm``: the CSV's ``warmup_scorer``)."""
    transfer = ")" if dataset == "cifar10" else "; transfer)"
    if method == "predictor":
        if not warm:
            return "predictor-guided (GRAF random forest)"
        return f"predictor-guided (GRAF + CIFAR-10 proxies {warm.split(':', 1)[1].replace('+', ', ')}" + transfer
    if method != "warmup_rea":
        return {"rea": "REA", "random": "random"}[method]
    if warm == "naswot_v1":
        return "warm-up REA (naswot_v1)"
    return "warm-up REA (MeCo, CIFAR-10 images" + transfer


def csv_label(entry: dict) -> str:
    """What the CSV's ``warmup_scorer`` says for a config entry: its ``warmup_label`` (default the
    warm-up scorer), the predictor's charged features (``features:a+b``) or ''."""
    if "predictor_features" in entry:
        return "features:" + "+".join(entry["predictor_features"])
    return entry.get("warmup_label", entry.get("warmup_scorer", ""))


def configurations(cfg: dict, dataset: str) -> list[tuple[str, str]]:
    """(method, :func:`csv_label`) of the config's methods that run on ``dataset``."""
    return [(m["method"], csv_label(m)) for m in cfg["methods"] if dataset in m.get("datasets", cfg["datasets"])]


def entry(cfg: dict, method: str, warm: str) -> dict:
    """The config's method entry of (method, :func:`csv_label`)."""
    return next(m for m in cfg["methods"] if (m["method"], csv_label(m)) == (method, warm))


def search(cfg: dict, table: NB201Table, shared: Path | None) -> tuple[list[dict], dict[tuple, float]]:
    """Every (dataset, configuration): its CSV rows at the config's budgets, and CPU seconds."""
    rows, cpu = [], {}
    budgets = {float(b) for b in cfg["budgets"]}
    seeds = tuple(range(cfg["first_seed"], cfg["first_seed"] + cfg["seeds"]))
    with tempfile.TemporaryDirectory() as scratch:
        for ds in cfg["datasets"]:
            top = float(cfg["scaled_budget"][ds])
            for method, warm in configurations(cfg, ds):
                e = entry(cfg, method, warm)
                sc = SearchConfig(methods=(method,), scorers=("benchmark",),
                                  warmup_scorer=e.get("warmup_scorer", "naswot_v1"),
                                  predictor_features=tuple(e.get("predictor_features", ())),
                                  warmup_pool=cfg["warmup_pool"], pool_csv=REPO / cfg["cheap_proxies_csv"],
                                  budget=top, seed_list=seeds, points=1, dataset=ds, report_datasets="all",
                                  shared=shared, out=Path(scratch) / "search.csv")
                t0 = time.process_time()
                res = run_search(sc, table=table)
                cpu[ds, method, warm] = time.process_time() - t0
                print(f"{ds:15s} {label(method, warm, ds):45s} {cpu[ds, method, warm]:6.1f} CPU-s", flush=True)
                rows += [csv_row({**r, "warmup_scorer": warm}, ds, table) for r in res.rows
                         if r["budget_s"] in budgets | {top}]
    return rows, cpu


def csv_row(r: dict, dataset: str, table: NB201Table) -> dict:
    """A run_search row as a CSV row of this file (formatted as ``nasbeff search`` writes it), with
    the chosen arch's validation and test accuracy on every dataset."""
    i = int(r["best_index"])
    acc = {c: f"{table.column(c[len('best_'):], i):.4f}" if i >= 0 else "" for c in ACC_COLUMNS}
    return {"dataset": dataset, "method": r["method"], "scorer": r["scorer"], "warmup_scorer": r["warmup_scorer"],
            "seed": str(r["seed"]), "budget_s": f"{r['budget_s']:g}", "evaluations": str(r["evaluations"]),
            "best_index": str(i), "best_arch_str": r["best_arch_str"], "best_test_acc": acc[f"best_{TEST_COLUMNS[dataset]}"],
            **acc}


def by_seed(rows: list[dict], key: tuple, budget: float, column: str = "best_test_acc") -> dict[int, float]:
    """seed -> ``column`` of configuration ``key`` at ``budget`` (runs that found an arch)."""
    return {int(r["seed"]): float(r[column]) for r in rows
            if config_key(r) == key and float(r["budget_s"]) == budget and r.get(column)}


def mean_std(values: dict[int, float] | list[float]) -> str:
    v = np.array(list(values.values()) if isinstance(values, dict) else values, dtype=float)
    return f"{v.mean():.2f} ± {v.std(ddof=1):.2f}" if v.size > 1 else "n/a"


def reproduced(old: list[dict], new: list[dict]) -> list[str]:
    """For configurations the file already had: do the new rows pick the same arch per seed and budget?"""
    before = {(*config_key(r), r["seed"], float(r["budget_s"])): r["best_index"] for r in old}
    out = []
    for key in dict.fromkeys(config_key(r) for r in new):
        pairs = [(before[k], r["best_index"]) for r in new if config_key(r) == key
                 and (k := (*key, r["seed"], float(r["budget_s"]))) in before]
        if pairs:
            same = sum(a == b for a, b in pairs)
            out.append(f"{key[0]} / {label(key[1], key[3], key[0])}: {same} of {len(pairs)} (seed, budget) rows "
                       f"choose the same arch as the rows the file had")
    return out


def report(cfg: dict, rows: list[dict], cpu: dict[tuple, float], notes: list[str], wall_s: float) -> str:
    """The Markdown report."""
    dsets, paper_b = cfg["datasets"], float(cfg["paper_budget"])
    show = [float(b) for b in (4000, 12000, 20000)]
    lines = ["# NB201 search on every dataset (100 seeds)", "",
             ("`python experiments/nb201_search/run_datasets.py` (config: `datasets_config.json`). Every run searches "
             "with `benchmark`: the dataset's own 200-epoch validation accuracy (C10: cifar10-valid x-valid; C100 / "
             "IN16: x-valid), charged 12/200 of that dataset's NB201 training time per evaluation (the stand-in for "
             "NATS-Bench's 12-epoch accuracy, see `results.md`). Test accuracies (C10 ori-test, C100 / IN16 x-test) "
             "are read after the search. Mean ± std over seeds."), "",
             f"## Searching on CIFAR-10, read on all three (the papers' layout), {paper_b:,.0f} s", "",
             "| method | C10 valid | C10 test | C100 valid | C100 test | IN16 valid | IN16 test |",
             "|---|---|---|---|---|---|---|"]
    for method, warm in configurations(cfg, "cifar10"):
        key = ("cifar10", method, "benchmark", warm)
        cells = [mean_std(by_seed(rows, key, paper_b, f"best_{c}")) for d in SHORT
                 for c in (VALID_COLUMNS[d], TEST_COLUMNS[d])]
        lines.append(f"| {label(method, warm, 'cifar10')} | " + " | ".join(cells) + " |")
    lines += ["| REA, published (NASWOT Table 2, from NB201) | | " + " | | ".join(
        f"{PUBLISHED_REA_TEST[d]:.2f}" for d in SHORT) + " |",
              "| optimum, published | | " + " | | ".join(f"{PUBLISHED_OPTIMUM_TEST[d]:.2f}" for d in SHORT) + " |", "",
              "## Searching on each dataset's own validation accuracy", "",
              "Test accuracy of that dataset. The last column is the budget scaled by the dataset's median training "
              "time (" + ", ".join(f"{SHORT[d]} {cfg['scaled_budget'][d]:,} s" for d in dsets) + "): the same "
              "number of evaluations as 20,000 s on C10.", "",
              "| dataset | method | " + " | ".join(f"{b:,.0f} s" for b in show) + " | scaled budget | evals @ scaled |",
              "|---|---|" + "---|" * (len(show) + 2)]
    for ds in dsets:
        top = float(cfg["scaled_budget"][ds])
        for method, warm in configurations(cfg, ds):
            key = (ds, method, "benchmark", warm)
            evals = [float(r["evaluations"]) for r in rows if config_key(r) == key and float(r["budget_s"]) == top]
            lines.append(f"| {SHORT[ds]} | {label(method, warm, ds)} | " + " | ".join(
                mean_std(by_seed(rows, key, b)) for b in show + [top]) + f" | {np.mean(evals):.0f} |")
    lines += ["", "## Predictor-guided minus warm-up REA (paired by seed)", "",
              ("Mean difference of the test accuracy of the arch found [95 % bootstrap CI over the seeds] and the "
              "share of bootstrap resamples where the predictor does not win."), "",
              "| dataset | predictor | against | " + " | ".join(f"{b:,.0f} s" for b in show) + " | scaled budget |",
              "|---|---|---|" + "---|" * (len(show) + 1)]
    for ds in dsets:
        top = float(cfg["scaled_budget"][ds])
        warmups = dict.fromkeys([cfg["paired_against"][ds]] + [w for m, w in configurations(cfg, ds)
                                                                 if m == "warmup_rea"])
        for pred_warm, warm in [(p, w) for m, p in configurations(cfg, ds) if m == "predictor" for w in warmups]:
            pred, other = (ds, "predictor", "benchmark", pred_warm), (ds, "warmup_rea", "benchmark", warm)
            cells = []
            for b in show + [top]:
                a, o = by_seed(rows, pred, b), by_seed(rows, other, b)
                seeds = sorted(set(a) & set(o))
                d = paired_mean_difference([a[s] for s in seeds], [o[s] for s in seeds])
                cells.append(f"{d.diff:+.2f} [{d.ci[0]:+.2f}, {d.ci[1]:+.2f}], p≤0 {d.p_not_better:.2f}")
            lines.append(f"| {SHORT[ds]} | {label('predictor', pred_warm, ds)} | {label('warmup_rea', warm, ds)} | "
                         + " | ".join(cells) + " |")
    total = sum(cpu.values())
    lines += ["", "## Setup and cost", "",
              ("* REA: population 10, tournament 3, one-edge mutation, oldest dies (NATS-Bench defaults); random: "
              "uniform with replacement. Repeats are charged in full."),
              f"* Warm-up REA: {cfg['warmup_pool']:,} distinct random archs scored by the warm-up scorer (charged), "
              "the top 10 start REA. `naswot_v1` (the published NASWOT v1 column, 1 s per arch) exists for "
              "CIFAR-10 only; `rank:meco` is MeCo on CIFAR-10 images for the whole space (`" + cfg["cheap_proxies_csv"]
              + "`, charged its measured seconds): on C100 and IN16 a transfer, not that dataset's own proxy.",
              ("* Predictor-guided: `nasbeff.optimizers.PredictorGuided` with its defaults (chosen on dev seeds, "
              "`predictor_dev.md`): 10 random archs, then rounds of fitting a random forest on the GRAF features of "
              "every arch evaluated so far, scoring 100 candidates (50 one-edge mutations of the 5 best, 50 random) "
              "and evaluating the top 5; it never re-evaluates an arch. Fitting and predicting are not charged "
              "(GRAF features are computed from the cell). The `GRAF + CIFAR-10 proxies` row also fits on the "
              "flops, synflow and meco columns of the cheap-proxies CSV, each arch charged their measured seconds "
              "the first time its features are needed (every candidate scored); those feature computations count "
              "in its evaluations column, as warm-up REA's warm-up does."),
              "* Paired differences: `nasbeff.evaluation.paired_mean_difference` (2,000 bootstrap resamples).",
              f"* CPU time of the searches: {total:,.0f} CPU-s (" + ", ".join(
                  f"{SHORT[d]} {sum(v for k, v in cpu.items() if k[0] == d):.0f}" for d in dsets) + "; predictor "
              f"{sum(v for k, v in cpu.items() if k[1] == 'predictor'):.0f}); wall {wall_s:,.0f} s under nice, one "
              "thread, on 2 shared cores."]
    lines += [f"* Reproduction check: {n}." for n in notes]
    return "\n".join(lines) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--config", type=Path, default=HERE / "datasets_config.json")
    ap.add_argument("--shared", type=Path, default=None, help="NB201 ground truth folder (default: the shared data)")
    args = ap.parse_args()
    cfg = json.loads(args.config.read_text())
    t0 = time.time()
    table = NB201Table(args.shared)
    new, cpu = search(cfg, table, args.shared)
    out = REPO / cfg["out"]
    old = read_search_rows(out)
    notes = reproduced(old, new)
    rows = merge(old, new)
    fields = FIELDS + [k for k in dict.fromkeys(k for r in rows for k in r) if k not in FIELDS]
    with atomic_write(out, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=fields, restval="")
        w.writeheader()
        w.writerows(rows)
    text = report(cfg, rows, cpu, notes, time.time() - t0)
    (REPO / cfg["report"]).write_text(text)
    print(text)


if __name__ == "__main__":
    main()
