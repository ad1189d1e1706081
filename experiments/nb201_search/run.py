"""NB201 CIFAR-10 architecture search by table lookup: REA, random search and zero-cost warm-up REA
with the NATS-Bench simulated baseline and published proxies, many seeds, simulated time budgets.

    OMP_NUM_THREADS=1 python experiments/nb201_search/run.py [--seeds 100] [--shared ../shared/data]

Every run searches up to --max-budget simulated seconds; the result at a smaller budget is the same
run's prefix (exactly what a run with that budget does, see ``nasbeff.optimizers``). The search sees
only ``table.without_test()``; ``c10_test`` is read after all searches, to report.

Writes ``benchmarks_data/nb201_search.csv`` (one row per run and budget), and in --out
``results.md`` and ``search_curves.png``.
"""

from __future__ import annotations

import argparse
import csv
import math
import time
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from scipy import stats  # noqa: E402

from nasbeff.tables import NB201Table, shared_data_dir  # noqa: E402
from nasbeff.optimizers import (  # noqa: E402
    DEFAULT_BUDGETS, PROXY_COST_S, ArrayScorer, Trajectory, as_scorer, make_optimizer, make_scorer, summarize,
)

NB201_OPTIMUM = 94.37
PUBLISHED_REA = 93.92  # NAS-Bench-201 (ICLR 2020) Table 5: REA 93.92 +- 0.30, random 93.70 +- 0.36
PUBLISHED_RANDOM = 93.70
NOISE_RHOS = (0.95, 0.87, 0.73)
# (method, main scorer, warm-up scorer)
CONFIGS: list[tuple[str, str, str | None]] = [
    ("rea", "benchmark", None), ("random", "benchmark", None), ("warmup_rea", "benchmark", "naswot_v1"),
    ("rea", "zen", None), ("rea", "naswot_v1", None), ("random", "naswot_v1", None),
]


def label(method: str, scorer: str, warm: str | None) -> str:
    return f"{method}+{scorer}" + (f" (warm-up {warm})" if warm else "")


def noisy_benchmark(view, rho: float, seed: int) -> ArrayScorer:
    """Diagnostic: the benchmark stand-in plus fixed per-arch Gaussian noise whose sigma makes the
    Spearman rho between noisy and clean scores ~ ``rho`` (calibrated on validation data only)."""
    clean = make_scorer("benchmark", view)
    v = np.asarray(view.metric("cifar10-valid", "x-valid"), dtype=float)
    sigma = _sigma_for_rho(v, rho)
    noise = np.random.default_rng(10_000 + seed).normal(0.0, sigma, v.size)
    costs = np.array([clean.cost(i) for i in range(v.size)])  # same prices as the clean scorer
    return as_scorer("benchmark", v + noise, costs)


_SIGMA: dict[float, float] = {}


def _sigma_for_rho(v: np.ndarray, rho: float) -> float:
    if rho not in _SIGMA:
        g = np.random.default_rng(0)
        lo, hi = 0.0, 20.0
        for _ in range(30):
            mid = (lo + hi) / 2
            r = stats.spearmanr(v, v + g.normal(0, mid, v.size)).statistic
            lo, hi = (mid, hi) if r > rho else (lo, mid)
        _SIGMA[rho] = (lo + hi) / 2
    return _SIGMA[rho]


def search(view, seeds: list[int], max_budget: float, warmup_pool: int) -> dict[str, list[Trajectory]]:
    """All searches (no test accuracy in here)."""
    out: dict[str, list[Trajectory]] = {}
    scorers = {n: make_scorer(n, view) for n in ("benchmark", "zen", "naswot_v1")}
    for method, scorer, warm in CONFIGS:
        kw = {"warmup_scorer": scorers[warm], "pool_size": warmup_pool} if warm else {}
        opt = make_optimizer(method, scorers[scorer], **kw)
        t0 = time.time()
        out[label(method, scorer, warm)] = [opt.run(max_budget, s) for s in seeds]
        print(f"{label(method, scorer, warm):42s} {len(seeds)} seeds in {time.time() - t0:6.1f} s", flush=True)
    for rho in NOISE_RHOS:  # diagnostics: a weaker search signal, like NATS's 12-epoch accuracy
        out[noisy_label(rho)] = [make_optimizer("rea", noisy_benchmark(view, rho, s)).run(max_budget, s)
                                 for s in seeds]
    return out


def noisy_label(rho: float) -> str:
    return f"rea+benchmark, noisy rho={rho} (diagnostic)"


def fmt(mean: float, std: float) -> str:
    return "n/a" if math.isnan(mean) else f"{mean:.2f} ± {std:.2f}"


def report(runs: dict[str, list[Trajectory]], table: NB201Table, args, elapsed: float) -> None:
    truth = table.column("c10_test")  # reporting only, after all searches
    budgets = sorted(set(DEFAULT_BUDGETS) | {args.budget})
    main_labels = [label(*c) for c in CONFIGS]

    # CSV: one row per (run, budget); each row is exactly the run with that budget
    args.csv.parent.mkdir(parents=True, exist_ok=True)
    with open(args.csv, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["method", "scorer", "warmup_scorer", "seed", "budget_s", "evaluations", "best_index",
                    "best_arch_str", "best_test_acc"])
        for lab in main_labels:
            for t in runs[lab]:
                for b in budgets:
                    bi = t.best_at(b)
                    w.writerow([t.method, t.scorer, t.warmup_scorer or "", t.seed, f"{b:g}", t.evaluations_at(b), bi,
                                table.arch(bi) if bi >= 0 else "", f"{truth[bi]:.4f}" if bi >= 0 else ""])

    summ = {lab: {r["budget_s"]: r for r in summarize(ts, truth, budgets)} for lab, ts in runs.items()}
    n_seeds = len(next(iter(runs.values())))
    lines = [f"# NB201 CIFAR-10 search by table lookup ({n_seeds} seeds per method)", "",
             f"Final CIFAR-10 test accuracy (`c10_test`, ori-test, 200 epochs, seed mean) of the best arch "
             f"found, mean ± std over seeds (95% CI half-width in the last column), at simulated budgets. "
             f"NB201 optimum {NB201_OPTIMUM}; published REA {PUBLISHED_REA} ± 0.30 and random "
             f"{PUBLISHED_RANDOM:.2f} ± 0.36 at 12,000 s (NAS-Bench-201, ICLR 2020, Table 5).",
             "", "| method + scorer | " + " | ".join(f"{b:,.0f} s" for b in budgets)
             + f" | evals @ {args.budget:,.0f} s | unique archs @ {args.budget:,.0f} s"
             f" | 95% CI @ {args.budget:,.0f} s |",
             "|---|" + "---|" * (len(budgets) + 3)]
    for lab in list(runs):
        s = summ[lab]
        at = s[args.budget]
        uniq = np.mean([len(np.unique(t.indices[: t.evaluations_at(args.budget)])) for t in runs[lab]])
        cells = [fmt(s[b]["mean"], s[b]["std"]) + ("" if s[b]["n"] == s[b]["runs"] else f" (n={s[b]['n']})")
                 for b in budgets]
        lines.append(f"| {lab} | " + " | ".join(cells) + f" | {at['evaluations_mean']:.0f} | {uniq:.0f} | "
                     f"± {at['ci95']:.2f} |")
    lines += ["", f"Evaluation counts include warmup_rea's {args.warmup_pool} warm-up (proxy) evaluations. "
              "Diagnostic rows: see below."]
    rb = summ[main_labels[0]][args.budget]
    sig = ", ".join(f"rho {r}: sigma {_SIGMA.get(r, math.nan):.2f}, REA {summ[noisy_label(r)][args.budget]['mean']:.2f}"
                    for r in NOISE_RHOS)
    ladder = [(1.0, rb["mean"])] + [(r, summ[noisy_label(r)][args.budget]["mean"]) for r in NOISE_RHOS]
    bracket = next(((hi, lo) for hi, lo in zip(ladder, ladder[1:]) if hi[1] >= PUBLISHED_REA >= lo[1]), None)
    bracket_txt = ("The published value lies between noise levels rho = "
                   f"{'clean' if bracket[0][0] == 1.0 else bracket[0][0]} ({bracket[0][1]:.2f}) and rho = "
                   f"{bracket[1][0]} ({bracket[1][1]:.2f})." if bracket else
                   "The published value is not bracketed by these noise levels.")
    rr = summ[main_labels[1]][args.budget]
    drop95 = rb["mean"] - summ[noisy_label(NOISE_RHOS[0])][args.budget]["mean"]
    diff = rb["mean"] - PUBLISHED_REA
    verdict = (("Yes. " if abs(diff) <= 0.15 else "No. ")
               + f"REA + benchmark reaches {rb['mean']:.2f} ± {rb['std']:.2f} (95% CI ± {rb['ci95']:.2f}) at "
               f"{args.budget:,.0f} s, {diff:+.2f} vs the published {PUBLISHED_REA} ± 0.30; "
               f"random + benchmark {rr['mean']:.2f} ± {rr['std']:.2f}, {rr['mean'] - PUBLISHED_RANDOM:+.2f} vs the "
               f"published {PUBLISHED_RANDOM:.2f} ± 0.36. REA beats random by {rb['mean'] - rr['mean']:.2f} points, "
               f"as published ({PUBLISHED_REA - PUBLISHED_RANDOM:.2f}).")
    proxy_txt = []
    for name, col in (("zen", "zen_c10"), ("naswot_v1", "naswot_v1_c10")):
        v = np.nan_to_num(table.column(col), nan=-np.inf)
        top = int(np.argmax(v))
        proxy_txt.append(f"{name}'s top-scoring arch ({top}) has test accuracy {truth[top]:.2f}")
        if name == "zen":
            zen_hits = sum(t.best_at(args.budget) == top for t in runs["rea+zen"])
    wr = summ[main_labels[2]]
    better = [b for b in budgets if wr[b]["mean"] > summ[main_labels[0]][b]["mean"]]
    warm_better = ("every budget" if len(better) == len(budgets) else
                   ", ".join(f"{b:,.0f} s" for b in better) if better else "no budget")
    lines += ["", "## Proxies", "",
              "Searching a proxy with a fixed price per evaluation finds the proxy's optimum, which is a poor "
              f"arch: {'; '.join(proxy_txt)}. So REA + proxy converges there (zen: {zen_hits} of "
              f"{len(runs['rea+zen'])} "
              f"seeds by {args.budget:,.0f} s) and its "
              "best-so-far accuracy can even fall with more budget (naswot_v1). Random + naswot_v1 degrades more "
              "slowly, presumably because it reaches the proxy's top more slowly. A proxy is useful to pick a "
              f"starting population (warmup_rea beats REA + benchmark at {warm_better}), not as the search target."]
    lines += ["", "## Setup", "",
              "* Search sees only `NB201Table.without_test()`; test accuracies raise `HiddenTestAccuracyError` "
              "there. `c10_test` is read by this script after all searches.",
              "* `benchmark` = NATS-Bench's simulated baseline with a stand-in metric: NATS scores an arch by its "
              "**12-epoch** cifar10-valid validation accuracy (one run per arch), which the offline table lacks; "
              "we use the **200-epoch** x-valid seed mean `c10_valid`, charged `train_time_s_c10valid × 12/200` "
              "per evaluation (the 12-epoch share of the 200-epoch training time; median ≈ 109 s). NATS also "
              "charges one validation pass (`valid-per-time`); the table lacks it, so it is omitted.",
              f"* Proxies: `zen_c10` ({PROXY_COST_S['zen']} s per evaluation: median per-arch time NASLib recorded "
              f"with these scores) and `naswot_v1_c10` ({PROXY_COST_S['naswot_v1']} s: conservative; NASLib's "
              "nwot 0.56 s, ours 0.44 s on one CPU thread). The 341 cut-off archs score -inf.",
              "* REA: population 10, tournament of 3 drawn with replacement, one-edge mutation "
              "(`mutate_arch(scheme='nats')`), oldest dies (NATS-Bench defaults). Random search: uniform with "
              "replacement. Repeats are charged in full, as in NATS (it re-trains the arch).",
              f"* warmup_rea: {args.warmup_pool} distinct random archs scored by naswot_v1 (charged: "
              f"{args.warmup_pool * PROXY_COST_S['naswot_v1']:.0f} s), the top 10 evaluated with `benchmark` as the "
              "initial population, then REA with `benchmark`. Until its first benchmark evaluation the best arch is "
              "the best by naswot_v1.",
              "* Budget rule: the evaluation that would push the spent time over the budget is not made and the run "
              "ends; results at smaller budgets are prefixes of the same runs (identical to runs with that budget).",
              "", "## Is REA + benchmark near the published ~93.9?", "",
              verdict,
              "",
              "Do not over-read the agreement. The stand-in is a stronger search signal than NATS's: the 200-epoch "
              "seed-mean validation accuracy has Spearman 0.984 with `c10_test`, 12-epoch accuracies much less "
              "(shared-data README: 0.87 for the `hp='12'` test column over all archs, 0.73 for epoch 12 of the "
              "200-epoch curves on archs 0..199). The price per evaluation follows NATS (12/200 of the training "
              f"time: {rb['evaluations_mean']:.0f} evaluations in {args.budget:,.0f} s, without the "
              "validation-pass charge), and repeats are charged as in NATS (a cache would only raise the result).",
              "",
              "Diagnostic (rows marked *noisy*, REA only, not in the CSV): the same stand-in plus fixed per-arch "
              "Gaussian noise whose sigma (in accuracy points) brings its Spearman rho with the clean stand-in "
              "down to the given value, calibrated on validation accuracy only, a fresh noise draw per seed, same "
              f"prices ({sig}). {bracket_txt} REA's result is very sensitive to the search signal: noise of rho "
              f"{NOISE_RHOS[0]} already costs it {drop95:.2f} "
              "points. That NATS, with its 12-epoch signal, "
              "still reaches ~93.9 suggests its errors spare the top of the ranking more than uniform noise of the "
              "same overall rho does (they are systematic, e.g. in favour of fast-training archs, not random); "
              "Gaussian noise is a crude model, so these rows show sensitivity, not a reproduction of NATS.",
              "",
              "Repeated archs: REA re-proposes archs it has already seen (see the unique-archs column); they are "
              "charged, as NATS does. A cached variant would get a few more distinct archs per budget.",
              "", "## Files", "",
              f"* `{args.csv}`: one row per run and budget ({', '.join(f'{b:g}' for b in budgets)} s) for the six "
              "main configurations; warmup_rea rows carry scorer `benchmark` and their warm-up scorer in "
              "`warmup_scorer` (naswot_v1). run_beff.py and nb201_scale/run_search.py add their rows to it.",
              "* `search_curves.png`: mean test accuracy of the best-so-far arch vs simulated cost, band = ±1 std "
              "over seeds.",
              f"* Wall time of this script: {elapsed:.0f} s (1 thread, nice 19)."]
    (args.out / "results.md").write_text("\n".join(lines) + "\n")
    plot(runs, truth, main_labels, args)
    print("\n".join(lines[:len(runs) + 7]))


def plot(runs, truth, main_labels, args) -> None:
    grid = np.linspace(0, args.max_budget, 401)[1:]
    fig, axes = plt.subplots(1, 2, figsize=(12, 6.0))
    colours = plt.get_cmap("tab10").colors
    for ax, labs, ylim in ((axes[0], main_labels, (88.5, 94.6)),
                           (axes[1], [lb for lb in runs if "benchmark" in lb], (92.0, 94.5))):
        for k, lab in enumerate(labs):
            best = np.array([t.best_at(grid) for t in runs[lab]])
            acc = np.where(best >= 0, truth[np.maximum(best, 0)], np.nan)
            ok = np.isfinite(acc).mean(axis=0) >= 0.5
            with np.errstate(invalid="ignore"):
                m, s = np.nanmean(acc[:, ok], axis=0), np.nanstd(acc[:, ok], axis=0)
            c = colours[list(runs).index(lab) % 10]
            ls = ":" if "noisy" in lab else "-"
            ax.plot(grid[ok], m, ls, color=c, label=lab, lw=1.5)
            if "noisy" not in lab:  # diagnostics: mean only, to keep the panel readable
                ax.fill_between(grid[ok], m - s, m + s, color=c, alpha=0.12)
        ax.axhline(NB201_OPTIMUM, color="k", lw=0.8, ls="--", label=f"NB201 optimum {NB201_OPTIMUM}")
        ax.plot([args.budget], [PUBLISHED_REA], "k*", ms=11, label=f"published REA {PUBLISHED_REA}")
        ax.axvline(args.budget, color="gray", lw=0.6, ls=":")
        ax.set_ylim(*ylim)
        ax.set_xlim(0, args.max_budget)
        ax.set_xlabel("simulated search cost (s)")
        ax.set_ylabel("CIFAR-10 test accuracy of best-so-far arch (%)")
        ax.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.14), ncol=2)
    axes[0].set_title("all methods (mean ± 1 std over seeds)", fontsize=10)
    axes[1].set_title("benchmark-scored methods; dotted: noisy-signal diagnostics (mean only)", fontsize=10)
    fig.tight_layout()
    fig.savefig(args.out / "search_curves.png", dpi=110)
    plt.close(fig)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seeds", type=int, default=100)
    ap.add_argument("--budget", type=float, default=12000.0)
    ap.add_argument("--max-budget", type=float, default=20000.0)
    ap.add_argument("--warmup-pool", type=int, default=1000)
    ap.add_argument("--shared", type=Path, default=None)
    ap.add_argument("--csv", type=Path, default=Path("benchmarks_data/nb201_search.csv"))
    ap.add_argument("--out", type=Path, default=Path(__file__).resolve().parent)
    args = ap.parse_args()
    if args.max_budget < max(args.budget, *DEFAULT_BUDGETS):
        ap.error("--max-budget must cover --budget and the report budgets")
    t0 = time.time()
    table = NB201Table(args.shared or shared_data_dir())
    runs = search(table.without_test(), list(range(args.seeds)), args.max_budget, args.warmup_pool)
    report(runs, table, args, time.time() - t0)


if __name__ == "__main__":
    main()
