"""REA and random search driven by the beta_eff prediction (and, on the same pool, by our last seen
value and by the benchmark), over the pool of archs scored by the NB201 study.

    python experiments/nb201_search/run_beff.py [--rank benchmarks_data/nb201_cifar10_rank.csv] [--seeds 100]

Cost per evaluation (simulated seconds, as the issue specifies): epochs x train_time_s_c10valid / 200
x (1 + measured beta_eff overhead) for beff and lsv (the same early runs); the benchmark scorer costs
12/200 of the training time as in run.py. Appends rows (scorer beff / lsv_early / benchmark_pool) to
benchmarks_data/nb201_search.csv, replacing earlier rows of those scorers, and writes results_beff.md.
"""

from __future__ import annotations

import argparse
import csv
from pathlib import Path

import numpy as np

from nasbeff.tables import NB201Table
from nasbeff.optimizers import PoolScorer, make_optimizer, run_seeds
from nasbeff.spaces import index_to_str

BUDGETS = (2000, 4000, 8000, 12000, 20000)
OURS = ("beff", "lsv_early", "benchmark_pool")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rank", type=Path, default=Path("benchmarks_data/nb201_cifar10_rank.csv"))
    ap.add_argument("--csv", type=Path, default=Path("benchmarks_data/nb201_search.csv"))
    ap.add_argument("--out", type=Path, default=Path("experiments/nb201_search/results_beff.md"))
    ap.add_argument("--seeds", type=int, default=100)
    args = ap.parse_args()
    with open(args.rank) as f:
        rows = list(csv.DictReader(f))
    idx = np.array([int(r["index"]) for r in rows])
    table = NB201Table()
    view = table.without_test()
    train_time = view.column("train_time_s_c10valid", idx)
    epochs = np.array([float(r["epochs_observed"]) for r in rows])
    overhead = np.array([float(r["beta_overhead"]) for r in rows])
    early_cost = epochs * train_time / 200 * (1 + overhead)
    scorers = {
        "beff": PoolScorer("beff", idx, [float(r["beff_pred"]) for r in rows], early_cost),
        "lsv_early": PoolScorer("lsv_early", idx, [float(r["lsv"]) for r in rows], early_cost),
        "benchmark_pool": PoolScorer("benchmark_pool", idx, view.column("c10_valid", idx), train_time * 12 / 200),
    }
    trajs = {}
    for sname, scorer in scorers.items():
        for method in ("rea", "random"):
            trajs[(method, sname)] = run_seeds(make_optimizer(method, scorer), max(BUDGETS), range(args.seeds))
    truth = table.column("c10_test")  # looked up only now, after every search
    out_rows = []
    for (method, sname), ts in trajs.items():
        for seed, t in enumerate(ts):
            for b in BUDGETS:
                best = int(t.best_at(b))
                out_rows.append({"dataset": "cifar10", "method": method, "scorer": sname, "warmup_scorer": "",
                                 "seed": seed, "budget_s": b,
                                 "evaluations": int(t.evaluations_at(b)), "best_index": best,
                                 "best_arch_str": index_to_str(best) if best >= 0 else "",
                                 "best_test_acc": f"{truth[best]:.4f}" if best >= 0 else ""})
    with open(args.csv) as f:
        old = [r for r in csv.DictReader(f) if r["scorer"] not in OURS]
    fields = list(dict.fromkeys([*out_rows[0], *(k for r in old for k in r)]))  # keep every column
    with open(args.csv, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=fields, restval="")
        w.writeheader()
        w.writerows(old + out_rows)
    pool_best = float(truth[idx].max())
    lines = [f"# Search within the beta_eff study's pool ({len(idx)} archs of 0..199, {args.seeds} seeds)", "",
             f"Best arch in the pool: test accuracy {pool_best:.2f}. Cost per evaluation: beff / lsv_early = "
             f"5 epochs x train_time_s_c10valid / 200 x (1 + beta_eff overhead), median {np.median(early_cost):.1f} s; "
             f"benchmark_pool = 12/200 of the training time, median {np.median(train_time * 12 / 200):.1f} s.", "",
             "| method + scorer | " + " | ".join(f"{b:,} s" for b in BUDGETS) + " |", "|---" * (len(BUDGETS) + 1) + "|"]
    for (method, sname), ts in trajs.items():
        cells = []
        for b in BUDGETS:
            acc = np.array([truth[int(t.best_at(b))] if int(t.best_at(b)) >= 0 else np.nan for t in ts])
            cells.append(f"{np.nanmean(acc):.2f} ± {np.nanstd(acc):.2f}")
        lines.append(f"| {method}+{sname} | " + " | ".join(cells) + " |")
    args.out.write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
