"""The cost/signal frontier from committed per-epoch curves (``nasbeff rank --results``).

Each curves CSV holds one protocol setting (r, C, N, train size, a long schedule) observed for E
epochs; every prefix of k <= E epochs is a frontier point of its own (same schedule, so the first
k epochs of the run ARE a k-epoch run of that schedule). Per point: mean wall seconds per arch of
the first k epochs (everything: build, training, validation, beta_eff, points, checkpoints),
and Spearman rho (bootstrap 95% CI) vs ``c10_test`` of every same-run baseline (TSE, TSE-E,
TSE-EMA, LSV, BSV) and of beta_eff under every predictor variant, without and with the cut-off
archs; plus the free points (#params, and any ``zc_*`` column of a ``--scores`` CSV).

    python experiments/nb201_protocol/frontier.py experiments/nb201_protocol/dev_F*_curves.csv \
        [--scores runs/dev_scores.csv] --out experiments/nb201_protocol/frontier.csv [--plot frontier.png] \
        [--costs benchmarks_data/nb201_protocol_cost_cpu.txt]

``--costs`` writes the absolute cost of every point (mean and median wall seconds per arch, and where
the time goes: training, validation, beta_eff per epoch, beta_eff points) with this machine's line.
"""

from __future__ import annotations

import argparse
import math
import os
import platform
from collections import defaultdict
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np

from nasbeff.executors import cpu_model
from nasbeff.tables import NB201Table
from nasbeff.evaluation import rank_correlation
from nasbeff.store import read_csv, to_float, write_csv
from nasbeff.spaces import index_to_str, is_cut_off
from nasbeff.training.nb201_study import summarize_curve

BASELINES = ("tse", "tse_e", "tse_ema", "lsv", "bsv")


def load(path: Path) -> dict[str, dict[int, list[dict]]]:
    """``{study_hash: {index: per-epoch metrics}}`` of a curves CSV."""
    _, rows = read_csv(path, "curves")
    out: dict[str, dict[int, dict[int, dict]]] = defaultdict(lambda: defaultdict(dict))
    for r in rows:
        m = {k: to_float(v) for k, v in r.items() if k not in ("index", "study_hash", "epoch") and v != ""}
        out[r["study_hash"]][int(r["index"])][int(r["epoch"])] = {k: v for k, v in m.items() if not math.isnan(v)}
    return {h: {i: [eps[e] for e in sorted(eps)] for i, eps in archs.items()} for h, archs in out.items()}


def _summary(item: tuple[int, list[dict]]) -> dict:
    index, metrics = item
    return summarize_curve(index, metrics, all_variants=True)


def _cost_line(setting: str, k: int, curves: list[list[dict]]) -> str:
    """One line of ``--costs``: mean / median wall seconds per arch of the first k epochs and the split."""
    def total(c: list[dict], name: str) -> float:
        return float(sum(m.get(name, 0.0) for m in c))

    wall = [total(c, "seconds_wall") for c in curves]
    parts = {n: float(np.mean([total(c, f"seconds_{n}") for c in curves])) for n in ("train", "eval", "beta", "points")}
    return (f"{setting} k={k}: mean {np.mean(wall):6.1f} s/arch (median {np.median(wall):6.1f}, max {max(wall):6.1f}); "
            + ", ".join(f"{n} {v:.1f} s" for n, v in parts.items()) + f"; n={len(curves)}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("curves", nargs="+", type=Path)
    ap.add_argument("--scores", type=Path, default=None, help="nasbeff score CSV of the same archs (free points)")
    ap.add_argument("--n-boot", type=int, default=2000)
    ap.add_argument("--workers", type=int, default=2, help="processes for the per-arch predictor fits")
    ap.add_argument("--out", type=Path, default=Path("runs/frontier.csv"))
    ap.add_argument("--plot", type=Path, default=None, help="PNG of the frontier (nasbeff.evaluation.plots.cost_signal_frontier)")
    ap.add_argument("--costs", type=Path, default=None, help="text file of absolute s/arch")
    ap.add_argument("--beff", default="beff_points_identity_bayes_tbic",
                    help="the beta_eff variant drawn on the plot (the one chosen on dev)")
    ap.add_argument("--replot", action="store_true", help="only redraw --plot from the existing --out CSV")
    args = ap.parse_args()
    if args.replot:
        _plot(read_csv(args.out, "--out")[1], args)
        return
    cost_lines = []
    table = NB201Table()
    out = []
    pool = ProcessPoolExecutor(args.workers)  # every predictor variant of every prefix: ~1 CPU-s per arch and k

    def point(setting: str, k: int, cost: float, scores: dict[str, np.ndarray], idx: list[int]) -> None:
        truth = table.column("c10_test", idx)
        keep = np.array([not is_cut_off(index_to_str(i)) for i in idx])
        for name, s in scores.items():
            for cut, mask in (("excluded", keep), ("included", np.ones_like(keep))):
                if np.isfinite(s[mask]).sum() < 5:
                    continue
                c = rank_correlation(s[mask], truth[mask], n_boot=args.n_boot)
                out.append({"setting": setting, "epochs": k, "seconds_per_arch": cost, "score": name,
                            "cut_off": cut, "n": c.n, "spearman": c.spearman, "lo": c.spearman_ci[0],
                            "hi": c.spearman_ci[1], "kendall": c.kendall})

    for path in args.curves:
        for h, archs in load(path).items():
            idx = sorted(archs)
            epochs = min(len(archs[i]) for i in idx)
            for k in range(1, epochs + 1):
                rows = list(pool.map(_summary, [(i, archs[i][:k]) for i in idx], chunksize=4))
                names = [*BASELINES, *(c for c in rows[0] if c.startswith("beff_") and c[5:6] in "ep")]
                cost = float(np.mean([r["wall_seconds"] for r in rows]))
                cost_lines.append(_cost_line(f"{path.stem}:{h}", k, [archs[i][:k] for i in idx]))
                point(f"{path.stem}:{h}", k, cost, {n: np.array([r[n] for r in rows], float) for n in names}, idx)
            all_idx = idx
    pool.shutdown()
    params = table.column("params_mb_c10", all_idx)
    free = {"params": params}
    if args.scores is not None:
        fields, srows = read_csv(args.scores, "--scores")
        by = {int(r["index"]): r for r in srows}
        for c in fields:
            if c not in ("index", "arch_str", "cut_off", "flags") and not c.endswith("_seconds"):
                free[c] = np.array([to_float(by.get(i, {}).get(c)) for i in all_idx])
    point("free", 0, 0.0, free, all_idx)
    write_csv(out, args.out)
    if args.costs is not None:
        import torch

        cpu = cpu_model()
        args.costs.write_text(
            "Absolute cost of the NB201 protocol frontier points (issue 10), from the committed curves: wall seconds\n"
            "per arch of the first k epochs, one torch thread per arch, two archs at once on the machine below\n"
            "(the curves record their own timings; where the time goes: training / validation / beta_eff per\n"
            f"epoch / beta_eff points with their validation). Written by experiments/nb201_protocol/frontier.py.\n"
            f"machine: {platform.machine()}, {os.cpu_count()} cores ({cpu}), no GPU used; torch {torch.__version__}\n"
            + "\n".join(cost_lines) + "\n")
        print(f"wrote {args.costs}")
    best = sorted((r for r in out if r["cut_off"] == "excluded" and r["score"] in (*BASELINES, "params")),
                  key=lambda r: (r["seconds_per_arch"], -r["spearman"]))
    for r in best:
        print(f"{r['setting']:>40} k={r['epochs']:2d} {r['seconds_per_arch']:6.0f} s/arch {r['score']:>8} "
              f"rho {r['spearman']:+.3f} [{r['lo']:+.2f}, {r['hi']:+.2f}] n={r['n']}")
    print(f"wrote {args.out}")
    if args.plot is not None:
        _plot(out, args)


def _plot(rows: list[dict], args: argparse.Namespace) -> None:
    from nasbeff.evaluation.plots import cost_signal_frontier

    n = max(int(float(r["n"])) for r in rows if r["cut_off"] == "included")
    cost_signal_frontier(rows, args.plot, BASELINES, beff=args.beff,
                         title=f"NB201 CIFAR-10, dev archs (n = {n}); beta_eff: {args.beff[5:]}")
    print(f"wrote {args.plot}")


if __name__ == "__main__":
    main()
