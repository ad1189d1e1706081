"""Report of the NB201 ranking study: rank agreement of the beta_eff prediction and the baselines
from the same runs with NAS-Bench-201 ground truth, with bootstrap CIs, the seed-noise ceiling,
the benchmark's own early learning curves on the same archs, and the figures.

    python experiments/nb201_rank/report.py [--rank benchmarks_data/nb201_cifar10_rank.csv]
        [--store runs/nb201_rank.sqlite] [--shared ../shared/data] [--out experiments/nb201_rank]

Writes ``results.md``, ``fig2_curves.png`` and ``fig3a_pred_vs_true.png`` to --out.
"""

from __future__ import annotations

import argparse
import csv
import json
from pathlib import Path

import numpy as np

from nasbeff.tables import LearningCurves, NB201Table, PerSeedTable, shared_data_dir
from nasbeff.evaluation import correlation_table, markdown_table, noise_ceiling
from nasbeff.evaluation.plots import learning_curves, predicted_vs_true


def read_rank(path: Path) -> dict[str, np.ndarray]:
    with open(path) as f:
        rows = list(csv.DictReader(f))
    cols = {k: [r[k] for r in rows] for k in rows[0]}
    out = {"arch_str": np.array(cols.pop("arch_str"))}
    for k, v in cols.items():
        out[k] = np.array([(x == "True") if x in ("True", "False") else float(x) for x in v])
    out["index"] = out["index"].astype(int)
    return out


def knob_epochs(store_path: Path, idx, truth, k_max: int, n_boot: int) -> list[str]:
    """Knob: epochs observed (predictions from the first k epochs of the same runs)."""
    from nasbeff.store import ResultStore
    from nasbeff.training.nb201_study import StudyConfig, summarize

    out = ["## Knob: epochs observed (same runs, first k epochs)", "",
           "| k | beff_pred rho vs c10_test [95% CI] | lsv rho [95% CI] | benchmark curve at epoch k |", "|---|---|---|---|"]
    curves = LearningCurves(shared_data_dir())
    with ResultStore(store_path) as st:
        for k in range(3, k_max + 1):
            rows = summarize(st, idx, StudyConfig(), epochs=k)
            got = np.array([r["index"] for r in rows])
            t = truth[np.searchsorted(idx, got)]
            tab = correlation_table({"beff": [r["beff_pred"] for r in rows], "lsv": [r["lsv"] for r in rows],
                                     "bench": [curves.valid(i, k) for i in got]}, t, n_boot=n_boot)
            cell = {row["method"]: f"{row['spearman']:.3f} [{row['spearman_lo']:.2f}, {row['spearman_hi']:.2f}]" for row in tab}
            out.append(f"| {k} | {cell['beff']} | {cell['lsv']} | {cell['bench']} |")
    return out + [""]


KNOBS = (("side probe: the benchmark's head trains, the NCP only observes", "knob_side"),
         ("cosine schedule over the 5 observed epochs (instead of NB201's 200)", "knob_sched5"),
         ("2,500 training images (instead of 5,000)", "knob_train2500"))


def knob_runs(runs: Path, main: dict, truth) -> list[str]:
    """Knobs on a few archs of the main sample: each knob run against the main run on the same archs."""
    from scipy import stats

    from nasbeff.store import ResultStore

    def rho(a, b):
        return float(stats.spearmanr(a, b).statistic)

    found = [(name, read_rank(runs / f"{stem}.csv"), runs / f"{stem}.sqlite") for name, stem in KNOBS
             if (runs / f"{stem}.csv").exists()]
    if not found:
        return []
    pos = {int(i): j for j, i in enumerate(main["index"])}
    lines = ["## Knobs (reduced: the same few archs, 5 epochs; rho over so few archs is indicative only)", "",
             "| setting | archs | mean valid acc after 5 epochs | mean final beta_eff | rho(beff_pred, c10_test) | rho(lsv, c10_test) |",
             "|---|---|---|---|---|---|"]
    j = np.array([pos[int(i)] for i in found[0][1]["index"]])
    lines.append(f"| main run (head, NB201 schedule, 5,000 images) | {len(j)} | {main['lsv'][j].mean():.2f} | "
                 f"{main['final_beta_eff'][j].mean():.4f} | {rho(main['beff_pred'][j], truth[j]):.3f} | "
                 f"{rho(main['lsv'][j], truth[j]):.3f} |")
    for name, kr, _ in found:
        jk = np.array([pos[int(i)] for i in kr["index"]])
        lines.append(f"| {name} | {len(jk)} | {kr['lsv'].mean():.2f} | {kr['final_beta_eff'].mean():.4f} | "
                     f"{rho(kr['beff_pred'], truth[jk]):.3f} | {rho(kr['lsv'], truth[jk]):.3f} |")
    for name, kr, store_path in found:
        if not store_path.exists():
            continue
        with ResultStore(store_path) as st:
            per = {int(rec.key.arch): rec.metrics for rec in st.rows() if rec.epoch == 5 and "beta_eff_128" in rec.metrics}
        if per:
            lines += ["", f"beta_eff at epoch 5 measured on 128 / 512 / 2048 training images ({name.split(':')[0]} run):", "",
                      "| arch | 128 | 512 | 2048 |", "|---|---|---|---|"]
            lines += [f"| {a} | {m['beta_eff_128']:.4g} | {m['beta_eff']:.4g} | {m['beta_eff_2048']:.4g} |"
                      for a, m in sorted(per.items())]
    return lines + [""]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rank", type=Path, default=Path("benchmarks_data/nb201_cifar10_rank.csv"))
    ap.add_argument("--store", type=Path, default=Path("runs/nb201_rank.sqlite"))
    ap.add_argument("--shared", type=Path, default=None)
    ap.add_argument("--out", type=Path, default=Path("experiments/nb201_rank"))
    ap.add_argument("--n-boot", type=int, default=2000)
    args = ap.parse_args()
    shared = args.shared or shared_data_dir()
    table = NB201Table(shared)
    seeds = PerSeedTable(shared)
    curves = LearningCurves(shared)
    r = read_rank(args.rank)
    idx = r["index"]
    k = int(r["epochs_observed"][0])
    truth = {"c10_test": table.column("c10_test", idx), "c10_valid": table.column("c10_valid", idx)}
    bench_lsv = np.array([curves.valid(i, k) for i in idx])  # the benchmark's own epoch-k x-valid acc
    methods = {"beff_pred (ours)": r["beff_pred"], "lsv (ours)": r["lsv"], "bsv (ours)": r["bsv"],
               f"benchmark curve, epoch {k} (NB201's own runs)": bench_lsv}
    lines = [f"# NB201 ranking study ({len(idx)} archs of 0..199, {k} epochs observed)", ""]
    cut = r["cut_off"].astype(bool)
    for subset_name, mask in (("all archs", np.ones_like(cut)), ("without cut-off archs", ~cut)):
        if mask.sum() < 3:
            continue
        for tname, t in truth.items():
            rows = correlation_table({m: v[mask] for m, v in methods.items()}, t[mask], n_boot=args.n_boot,
                                     reference="lsv (ours)")
            lines += [f"## vs `{tname}`, {subset_name} (n = {int(mask.sum())})", "", markdown_table(rows, tname), ""]
    ps = seeds.accuracies("cifar10-valid", "x-valid", idx)
    both = np.isfinite(ps[:, 0]) & np.isfinite(ps[:, 1])
    ceil = noise_ceiling(ps[both, 0], ps[both, 1])
    lines += [f"Seed-noise ceiling: Spearman between seeds 777 and 888 of the 200-epoch cifar10-valid x-valid "
              f"accuracy on these archs = {ceil:.3f} (n = {int(both.sum())}).", ""]
    secs = r["gpu_seconds"]
    lines += [f"Cost: {secs.mean():.0f} s per arch on average ({secs.sum() / 3600:.2f} device-hours for {len(idx)} archs, "
              f"{3600 / secs.mean():.0f} archs per device-hour); beta_eff bookkeeping = "
              f"{100 * np.nanmean(r['beta_overhead']):.1f}% of the training time (median "
              f"{100 * np.nanmedian(r['beta_overhead']):.1f}%).", ""]
    if args.store.exists():
        lines += knob_epochs(args.store, idx, truth["c10_test"], k, args.n_boot)
    lines += knob_runs(args.store.parent, r, truth["c10_test"])
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "results.md").write_text("\n".join(lines))
    print("\n".join(lines))
    predicted_vs_true(r["beff_pred"], truth["c10_test"], args.out / "fig3a_pred_vs_true.png",
                      label=f"beta_eff prediction after {k} epochs (%)", truth_label="NB201 c10_test (%)",
                      highlight=cut, title="NB201 / CIFAR-10")
    if args.store.exists():
        from nasbeff.store import ResultStore

        order = np.argsort(truth["c10_test"])
        pick = [order[0], order[len(order) // 3], order[2 * len(order) // 3], order[-1]]
        cs = []
        with ResultStore(args.store) as st:
            for p in pick:
                recs = sorted((x for x in st.rows(space="nb201", arch=str(idx[p])) if x.epoch >= 1), key=lambda x: x.epoch)
                cs.append({"label": f"arch {idx[p]} (test {truth['c10_test'][p]:.1f}%)", "epochs": [x.epoch for x in recs],
                           "acc": [x.metrics["valid_acc"] for x in recs], "beta": [x.metrics["beta_eff"] for x in recs]})
        learning_curves(cs, args.out / "fig2_curves.png", title="validation accuracy and beta_eff per epoch")
    print(json.dumps({"written": str(args.out)}))


if __name__ == "__main__":
    main()
