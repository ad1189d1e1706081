"""Issue 25 part 3, the dev check: every choice of the predictor evaluation made on the dev archs 0..199
and the training pool only, never on the test set of ``config.json``.

    python experiments/nb201_predictor/dev_choice.py   -> experiments/nb201_predictor/dev_choice.md

A. Model and hyper-parameters, on dev archs 0..199 (labels ``c10_test``; proxies of
   ``benchmarks_data/nb201_cifar10_scorers.csv``, the ones of ``PROXY_COLUMNS`` it has): 20 seeds, each
   fits on 128 of the 200 (``sample_from_pool(range(200), 128, s)``) and scores the other 72; feature
   sets ``graf`` and ``graf+proxies``. Rule (fixed here, before the run): the candidate with the highest
   median Spearman on ``graf+proxies``; within 0.005 of it, the cheapest (fewest trees).
B. Proxy columns, on the training pool only (CIFAR-10 image proxies): 20 seeds of k = 128 from the pool,
   scored on the rest of the pool; all 16 ``PROXY_COLUMNS`` vs the 11 the dev archs have vs 6 cheap/strong
   ones. Rule: the highest median Spearman; within 0.005, the fewest columns.
C. A check at k = 1024 on the pool (fit on 1,024, score on the rest): the chosen forest vs boosted trees.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from predictor_common import (
    HERE,
    PROXY_COLUMNS,
    REPO,
    fit_score,
    load_config,
    read_columns,
    splits,
)

from nasbeff.spaces import sample_from_pool
from nasbeff.store import read_csv
from nasbeff.tables import NB201Table

SEEDS = range(20)
CANDIDATES: dict[str, dict] = {
    "rf 100 trees, all features per split": {"model": "rf", "n_estimators": 100, "max_features": 1.0},
    "rf 300 trees, all features per split": {"model": "rf", "n_estimators": 300, "max_features": 1.0},
    "rf 100 trees, 1/3 of features per split": {"model": "rf", "n_estimators": 100, "max_features": 0.33},
    "rf 300 trees, 1/3 of features per split": {"model": "rf", "n_estimators": 300, "max_features": 0.33},
    "rf 100 trees, sqrt features per split": {"model": "rf", "n_estimators": 100, "max_features": "sqrt"},
    "rf 100 trees, 1/3, min leaf 2": {"model": "rf", "n_estimators": 100, "max_features": 0.33, "min_samples_leaf": 2},
    "gbt 100 iterations": {"model": "gbt", "n_estimators": 100},
    "gbt 300 iterations": {"model": "gbt", "n_estimators": 300},
}
DEV_CHEAP = ("meco", "synflow", "params", "flops", "naswot", "zico")


def _median(xs: list[float]) -> float:
    return float(np.median(xs))


def main() -> None:
    t0 = time.time()
    cfg = load_config()
    sp = splits(cfg)
    table = NB201Table()
    lines = ["# Issue 25 part 3: dev check (choices before the test run)", "",
             ("`python experiments/nb201_predictor/dev_choice.py` (this file is its output). No label or score of the "
             f"test set of `config.json` is read here ({len(sp.test)} archs); part A uses dev archs 0..199, parts B and C the "
             f"training pool ({len(sp.pool)} archs of the 3,000 sample). Median Spearman / Kendall over 20 seeds."), ""]

    # A: model on the dev archs
    dev = list(range(200))
    header, _ = read_csv(REPO / "benchmarks_data/nb201_cifar10_scorers.csv", "dev scores")
    dev_cols = [c for c in PROXY_COLUMNS if c in header]
    dev_scores = read_columns(REPO / "benchmarks_data/nb201_cifar10_scorers.csv", dev_cols)
    y_dev = dict(zip(dev, np.asarray(table.column("c10_test", dev), dtype=float)))
    lines += ["## A. Model and hyper-parameters (dev archs 0..199: fit on 128, score the other 72)", "",
              f"Proxy columns on the dev archs: {', '.join(dev_cols)}.", "",
              "| candidate | graf ρ | graf+proxies ρ | graf+proxies τ | fit+predict s |", "|---|---|---|---|---|"]
    results = {}
    for name, model in CANDIDATES.items():
        rho = {"graf": [], "graf+proxies": []}
        tau = []
        t = time.time()
        for s in SEEDS:
            train = sample_from_pool(dev, 128, s)
            test = sorted(set(dev) - set(train))
            ytr, yte = np.array([y_dev[i] for i in train]), np.array([y_dev[i] for i in test])
            rho["graf"].append(fit_score("graf", model, s, train, ytr, test, yte).spearman)
            sc = fit_score("graf+proxies", model, s, train, ytr, test, yte,
                           np.array([dev_scores[i] for i in train]), np.array([dev_scores[i] for i in test]), dev_cols)
            rho["graf+proxies"].append(sc.spearman)
            tau.append(sc.kendall)
        results[name] = _median(rho["graf+proxies"])
        lines.append(f"| {name} | {_median(rho['graf']):.3f} | {_median(rho['graf+proxies']):.3f} | {_median(tau):.3f} "
                     f"| {(time.time() - t) / (2 * len(SEEDS)):.2f} |")
    best = max(results.values())
    near = [n for n, v in results.items() if v >= best - 0.005]
    chosen_name = min(near, key=lambda n: (CANDIDATES[n].get("n_estimators", 100), -results[n]))
    chosen = CANDIDATES[chosen_name]
    lines += ["", (f"Rule: the highest median graf+proxies ρ ({best:.3f}); within 0.005 of it the cheapest: "
              f"**{chosen_name}** (`{chosen}`)."), ""]

    # B: proxy columns on the training pool
    c10 = read_columns(REPO / cfg["proxies"]["cifar10"], PROXY_COLUMNS)
    y_pool = dict(zip(sp.pool, np.asarray(table.column("c10_test", sp.pool), dtype=float)))
    column_sets = {"all 16": list(PROXY_COLUMNS), f"the {len(dev_cols)} of the dev archs": dev_cols,
                   "6: " + ", ".join(DEV_CHEAP): list(DEV_CHEAP)}
    lines += ["## B. Proxy columns (training pool: fit on 128 of it, score the rest of it; CIFAR-10 images, c10_test)",
              "", "| columns | proxies ρ | graf+proxies ρ | graf+proxies τ |", "|---|---|---|---|"]
    col_results = {}
    for label, cols in column_sets.items():
        pos = [PROXY_COLUMNS.index(c) for c in cols]
        r_p, r_gp, t_gp = [], [], []
        for s in SEEDS:
            train = sample_from_pool(sp.pool, 128, s)
            rest = sorted(set(sp.pool) - set(train))
            ytr, yte = np.array([y_pool[i] for i in train]), np.array([y_pool[i] for i in rest])
            xtr, xte = np.array([c10[i][pos] for i in train]), np.array([c10[i][pos] for i in rest])
            r_p.append(fit_score("proxies", chosen, s, train, ytr, rest, yte, xtr, xte, cols).spearman)
            sc = fit_score("graf+proxies", chosen, s, train, ytr, rest, yte, xtr, xte, cols)
            r_gp.append(sc.spearman)
            t_gp.append(sc.kendall)
        col_results[label] = (_median(r_gp), len(cols), cols)
        lines.append(f"| {label} | {_median(r_p):.3f} | {_median(r_gp):.3f} | {_median(t_gp):.3f} |")
    best_c = max(v[0] for v in col_results.values())
    near_cols = [k for k, v in col_results.items() if v[0] >= best_c - 0.005]
    chosen_cols_label = min(near_cols, key=lambda k: col_results[k][1])
    chosen_cols = col_results[chosen_cols_label][2]
    lines += ["", (f"Rule: the highest median graf+proxies ρ ({best_c:.3f}); within 0.005 the fewest columns: "
              f"**{chosen_cols_label}** ({', '.join(chosen_cols)})."), ""]

    # C: k = 1024 check
    lines += ["## C. k = 1024 on the pool (fit on 1,024, score the rest), graf+proxies with the chosen columns", "",
              "| model | ρ | τ |", "|---|---|---|"]
    pos = [PROXY_COLUMNS.index(c) for c in chosen_cols]
    for name, model in ((chosen_name, chosen), ("gbt 300 iterations", CANDIDATES["gbt 300 iterations"])):
        r, tk = [], []
        for s in range(5):
            train = sample_from_pool(sp.pool, 1024, s)
            rest = sorted(set(sp.pool) - set(train))
            ytr, yte = np.array([y_pool[i] for i in train]), np.array([y_pool[i] for i in rest])
            sc = fit_score("graf+proxies", model, s, train, ytr, rest, yte, np.array([c10[i][pos] for i in train]),
                           np.array([c10[i][pos] for i in rest]), chosen_cols)
            r.append(sc.spearman)
            tk.append(sc.kendall)
        lines.append(f"| {name} (5 seeds) | {_median(r):.3f} | {_median(tk):.3f} |")
    lines += ["", f"Chosen for `config.json`: model `{chosen}`, proxy columns {chosen_cols}.",
              f"Wall time of this check: {time.time() - t0:.0f} s.", ""]
    (HERE / "dev_choice.md").write_text("\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
