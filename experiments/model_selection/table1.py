"""Issue 11: the Table-1 comparison from the committed per-model CSVs of ``nasbeff select``, with the
paper's CIFAR-10 figures beside ours, the paired difference beta_eff - best baseline, the seed-noise
ceiling and the cost per model of each method (the paper's Supplementary Table S1 question).

    python experiments/model_selection/table1.py [--out experiments/model_selection/results.md]

Reads ``benchmarks_data/model_selection_<target>.csv`` for each target that exists (``cifar10``,
``digits``); everything is computed by :func:`nasbeff.selection.selection_table` (Spearman and
Kendall over models, percentile bootstrap over models, 2,000 resamples, seed 0) and
:func:`nasbeff.selection.noise_ceiling`.
"""

from __future__ import annotations

import argparse
import math
import re
from pathlib import Path

import numpy as np

from nasbeff.store import read_csv, to_float
from nasbeff.selection import method_columns, noise_ceiling, selection_table

REPO = Path(__file__).resolve().parents[2]
#: Jiang et al. 2024, Table 1, CIFAR-10, Spearman over 17 ImageNet models (5 / 10 epochs observed).
PAPER = {"beff_pred": (0.93, 0.98), "bsv": (0.86, 0.89), "lsv": (0.85, 0.87), "svr": (0.74, 0.78),
         "cl": (0.85, 0.85), "logme": (0.59, 0.59), "leep": (0.64, 0.64), "nce": (0.74, 0.74)}
LABEL = {"beff_pred": "β_eff (NCP, Bayesian ridge at β_eff = 0)", "lsv": "LSV (last-seen value)",
         "bsv": "BSV (best-seen value)", "tse": "TSE (sum of training losses)",
         "svr": "SVR on curves (BGRN-like, leave one model out)", "cl": "affine ensemble (CL-like, LOMO)",
         "lce": "learning-curve extrapolation", "logme": "LogME (before fine-tuning)",
         "leep": "LEEP (before fine-tuning)", "nce": "NCE (before fine-tuning)"}
TARGETS = {"cifar10": "CIFAR-10 classes 5-9", "digits_noisy": "digits-noisy (SVHN-like shift of the digits)",
           "digits": "scikit-learn digits (8 px -> 32 px)"}


def load(path: Path) -> list[dict]:
    fields, rows = read_csv(path, "model-selection CSV")
    return [{k: (v if k in ("model", "family") else to_float(v)) for k, v in r.items()} for r in rows]


def section(name: str, rows: list[dict], ks: tuple[int, ...]) -> list[str]:
    table, paired = selection_table(rows, ks)
    seeds = sorted(int(m.group(1)) for c in rows[0] if (m := re.fullmatch(r"true_acc_s(\d+)", c)))
    ceiling = noise_ceiling(rows, seeds)
    params = [r["params"] for r in rows]
    out = [f"### {TARGETS.get(name, name)}: {len(rows)} models, {len({r['family'] for r in rows})} families, "
           f"{min(params):,.0f}-{max(params):,.0f} parameters ({max(params) / min(params):.1f}x)", "",
           f"Seed-noise ceiling (mean Spearman between the ground truths of two seeds, {len(seeds)} seeds): "
           f"**{ceiling:.2f}**. Ground truth: test accuracy after T epochs, mean over seeds "
           f"({min(r['true_acc'] for r in rows):.1f}-{max(r['true_acc'] for r in rows):.1f} %).", "",
           "| method | epochs seen | Spearman [95 % CI] | Kendall [95 % CI] | paper, CIFAR-10 (n = 17) |",
           "|---|---|---|---|---|"]
    for t in table:
        m = re.fullmatch(r"(.+)_(\d+)", t["method"])
        base, k = (m.group(1), int(m.group(2))) if m and t["method"] not in ("logme", "leep", "nce") else (t["method"], 0)
        paper = PAPER.get(base)
        ref = "" if paper is None else f"{paper[0 if k in (0, ks[0]) else 1]:.2f}"
        out.append(f"| {LABEL.get(base, base)} | {k or 'none'} | {t['spearman']:+.2f} [{t['spearman_lo']:+.2f}, "
                   f"{t['spearman_hi']:+.2f}] | {t['kendall']:+.2f} [{t['kendall_lo']:+.2f}, {t['kendall_hi']:+.2f}] "
                   f"| {ref} |")
    out += ["", "Paired bootstrap over models, ρ(β_eff) − ρ(best other method seeing the same epochs, or a "
            "transferability score):", "", "| epochs | best other method | difference [95 % CI] | P(β_eff not better) |",
            "|---|---|---|---|"]
    out += [f"| {p['epochs']} | {p['best_baseline']} | {p['diff']:+.2f} [{p['diff_lo']:+.2f}, {p['diff_hi']:+.2f}] "
            f"| {p['p_not_better']:.2f} |" for p in paired]
    cost = {c: float(np.nanmean([r[c] for r in rows])) for c in rows[0] if c.startswith("seconds_")}
    if cost:
        out += ["", "Cost per model (CPU seconds, one thread, mean over models and seeds; totals, each including "
                "the one before): "
                + "; ".join(f"first {k} epochs: training alone {cost.get(f'seconds_tse_{k}', math.nan):.0f} s (TSE), "
                            f"with validation {cost.get(f'seconds_curve_{k}', math.nan):.0f} s (LSV/BSV/curve "
                            f"methods), with β_eff too {cost.get(f'seconds_beff_{k}', math.nan):.0f} s" for k in ks)
                + "; LogME / LEEP / NCE " + " / ".join(f"{cost.get(f'seconds_{t}', math.nan):.1f}"
                                                       for t in ("logme", "leep", "nce")) + " s."]
    return out + [""]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=REPO / "experiments" / "model_selection" / "results.md")
    args = ap.parse_args()
    lines = ["# Model selection by neural capacitance: results", "",
             f"Written by `python experiments/model_selection/{Path(__file__).name}` from the committed CSVs.", ""]
    for name in TARGETS:
        path = REPO / "benchmarks_data" / f"model_selection_{name}.csv"
        if path.exists():
            rows = load(path)
            ks = tuple(sorted({int(c.rsplit("_", 1)[1]) for c in rows[0] if c.startswith("beff_pred_")}))
            assert method_columns(rows, ks), f"{path}: no method columns"
            lines += section(name, rows, ks)
    args.out.write_text("\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
