"""Whole-network beta_eff (``beff_init``, ``beff_k``) on NB201 archs 0..199 of CIFAR-10 vs ``c10_test``.

Same protocol as the other proxies in ``run.py`` (seed-1 init ``torch.manual_seed(1000003 + index)``,
the first 64 images of the seed-1 random batch of CIFAR-10 train JPEGs, 1 CPU thread). Per arch:
beta_eff, num and den of ``nasbeff.core.capacitance(model, x, y, bn="batch")`` (local mode, whole
layer DAG) at initialisation and, for ``--k-every`` > 0 on every k-every-th arch, after ``--k`` SGD
steps (the ``beff_k`` scorer). Cut-off archs are ``-inf`` (the registry's "cannot be scored").

Writes ``beff_whole_init.csv`` next to this file and prints Spearman rho with 95% bootstrap CIs.

    OMP_NUM_THREADS=1 python experiments/nb201_scorers/run_beff_whole.py [--n 200 --step 1] [--k 10 --k-every 5]
"""

from __future__ import annotations

import argparse
import math
import time
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent
OUT = HERE / "beff_whole_init.csv"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--n", type=int, default=200)
    ap.add_argument("--step", type=int, default=1, help="score archs 0, step, 2*step, ... < n (a subsample)")
    ap.add_argument("--k", type=int, default=10)
    ap.add_argument("--k-every", type=int, default=5, help="beff_k on every k-every-th arch (0: none)")
    args = ap.parse_args()
    import torch

    from nasbeff.runs import zc_protocol as cp

    from nasbeff import capacitance, proxies
    from nasbeff.evaluation import rank_correlation
    from nasbeff.spaces import build_nb201_model, is_cut_off

    torch.set_num_threads(1)
    x, y = cp.make_batch(cp.load_train_jpegs(ROOT.parent / "shared" / "data" / "cifar10" / "cifar10_jpeg.tar.gz"), 128, 1)
    x, y = x[:64], y[:64]
    rows = []
    for i in range(0, args.n, args.step):
        row: dict = {"index": i, "cut_off": bool(is_cut_off(i))}
        torch.manual_seed(1000003 + i)
        model = build_nb201_model(i)
        t = time.perf_counter()
        if row["cut_off"]:
            row.update(beff_init=-math.inf, num_init=-math.inf, den_init=float("nan"))
        else:
            res = capacitance(model, x, y, bn="batch")
            row.update(beff_init=res.beta_eff, num_init=res.num, den_init=res.den)
        row["beff_init_s"] = time.perf_counter() - t
        if args.k_every and (i // args.step) % args.k_every == 0:
            r = proxies.score("beff_k", model, [(x, y)], k=args.k)
            row.update(beff_k=r.value, beff_k_s=r.seconds)
            if i < 3 * args.k_every * args.step and not row["cut_off"]:  # the scorer gives the same number as the call above
                assert proxies.score("beff_init", model, [(x, y)]).value == row["beff_init"]
        rows.append(row)
        print(f"{i:4d} beff_init={row['beff_init']:+.4g} num={row['num_init']:+.4g} ({row['beff_init_s']:.2f} s)"
              + (f" beff_k={row['beff_k']:+.4g} ({row['beff_k_s']:.2f} s)" if "beff_k" in row else ""), flush=True)
    df = pd.DataFrame(rows)
    gt = pd.read_csv(ROOT.parent / "shared" / "data" / "nb201" / "nb201_ground_truth.csv").set_index("index")
    df["c10_test"] = gt.loc[df["index"], "c10_test"].to_numpy()
    df.to_csv(OUT, index=False)
    ok = ~df["cut_off"].to_numpy()
    for col in ("beff_init", "num_init", "den_init", "beff_k"):
        if col not in df:
            continue
        for label, mask in (("all", np.ones(len(df), bool)), ("no cut-off", ok)):
            v = df[col].to_numpy(dtype=float)[mask]
            v = np.where(np.isneginf(v), np.nanmin(v[np.isfinite(v)]) - 1.0, v)
            c = rank_correlation(v, df["c10_test"].to_numpy()[mask], n_boot=2000, seed=0)
            print(f"{col:10s} {label:11s} n={c.n:3d} rho={c.spearman:+.3f} "
                  f"[{c.spearman_ci[0]:+.2f}, {c.spearman_ci[1]:+.2f}]")
    print(f"seconds per arch: beff_init median {df['beff_init_s'].median():.2f}"
          + (f", beff_k median {df['beff_k_s'].median():.2f}" if "beff_k_s" in df else ""))


if __name__ == "__main__":
    main()
