"""Issue 24 part 4: the NASWOT-style table (Mellor et al., ICML 2021, Table 2) for every scorer with
whole-space CIFAR-10 scores. Public API only.

    python experiments/nb201_tables/naswot_table.py [--runs 500] [--seed 0]
        -> benchmarks_data/nb201_naswot_table.csv, experiments/nb201_tables/naswot_table.md

500 runs per N in (10, 100, 1000): draw N distinct archs of the 15,625 (seeded; the same draws for
every scorer), keep the one the scorer ranks highest, read its accuracy on every dataset: validation
(c10_valid, c100_valid, in16_valid: the x-valid splits) and test (c10_test, c100_test, in16_test), as
the paper's "validation / test" columns. Scorers, scored on CIFAR-10 images:
  * naswot_v1 -- the NASWOT authors' published scores (``naswot_v1_c10`` of the shared table; NaN for
    the 341 cut-off archs);
  * naswot (when scored over the whole space), meco, synflow, params, flops -- ours over the whole space
    (``benchmarks_data/nb201_cifar10_proxies_cheap_15625.csv``, ``nasbeff score``'s protocol);
  * random (first drawn) -- no scorer: a uniformly random one of the N.
Published (NASWOT Table 2, 500 runs) beside ours in the markdown.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from nasbeff.evaluation import best_of_n, best_of_n_draws
from nasbeff.store import read_csv, to_float, write_csv
from nasbeff.tables import NB201Table

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
NS = (10, 100, 1000)
DATASETS = {"cifar10": ("c10_valid", "c10_test"), "cifar100": ("c100_valid", "c100_test"),
            "imagenet16-120": ("in16_valid", "in16_test")}
# NASWOT Table 2 (500 runs): N -> dataset -> (valid mean, valid std, test mean, test std); N=1000: test only
PUBLISHED = {
    10: {"cifar10": (89.14, 1.14, 92.44, 1.13), "cifar100": (68.50, 2.03, 68.62, 2.04),
         "imagenet16-120": (41.09, 3.97, 41.31, 4.11)},
    100: {"cifar10": (89.55, 0.89, 92.81, 0.99), "cifar100": (69.35, 1.70, 69.48, 1.70),
          "imagenet16-120": (42.81, 3.05, 43.10, 3.16)},
    1000: {"cifar10": (None, None, 92.96, 0.81), "cifar100": (None, None, 69.98, 1.22),
           "imagenet16-120": (None, None, 44.44, 2.10)},
}


def scorer_columns(table: NB201Table) -> dict[str, np.ndarray]:
    """Whole-space CIFAR-10 scores, one value per arch index (NaN / -inf: cannot be scored)."""
    out = {"naswot_v1 (published)": np.asarray(table.column("naswot_v1_c10"), dtype=float)}
    fields, rows = read_csv(REPO / "benchmarks_data" / "nb201_cifar10_proxies_cheap_15625.csv", "cheap scores")
    idx = np.array([int(r["index"]) for r in rows])
    # naswot (the paper's final score) joins once the cheap tier has scored it over the whole space
    for name in [n for n in ("naswot", "meco", "synflow", "params", "flops") if n in fields]:
        v = np.full(len(table), np.nan)
        v[idx] = [to_float(r[name]) for r in rows]
        out[name] = v
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=500)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    table = NB201Table()
    acc = {c: np.asarray(table.column(c), dtype=float) for cols in DATASETS.values() for c in cols}
    scorers = scorer_columns(table)
    rows = []
    for n in NS:
        draws = best_of_n_draws(len(table), n, args.runs, args.seed)
        first = np.zeros(len(table))  # "random": every arch ties, the first drawn wins
        for name, s in {**scorers, "random (first drawn)": first}.items():
            got = best_of_n(s, acc, draws)
            for ds, (vc, tc) in DATASETS.items():
                rows.append({"scorer": name, "N": n, "dataset": ds, "runs": got[tc][2],
                             "valid_mean": got[vc][0], "valid_std": got[vc][1],
                             "test_mean": got[tc][0], "test_std": got[tc][1]})
    out = REPO / "benchmarks_data" / "nb201_naswot_table.csv"
    write_csv(rows, out, float_spec=".4f")
    lines = [f"# NASWOT-style table (`python experiments/nb201_tables/naswot_table.py`, {args.runs} runs, seed "
             f"{args.seed})", "",
             "Draw N of the 15,625 NB201 archs, keep the best by the scorer (scored on CIFAR-10 images), read its "
             "accuracy on every dataset: validation (x-valid) / test, mean ± std over the runs. The same draws for "
             "every scorer. Published: NASWOT (ICML 2021) Table 2, 500 runs.", "",
             "| scorer | N | CIFAR-10 valid / test | CIFAR-100 valid / test | ImageNet16-120 valid / test |",
             "|---|---|---|---|---|"]

    def cell(vm, vs, tm, ts):
        v = "—" if vm is None else f"{vm:.2f} ± {vs:.2f}"
        return f"{v} / {tm:.2f} ± {ts:.2f}"

    for n in NS:
        pub = PUBLISHED[n]
        lines.append(f"| NASWOT, published | {n} | " + " | ".join(cell(*pub[d]) for d in DATASETS) + " |")
        for name in [*scorers, "random (first drawn)"]:
            got = {r["dataset"]: r for r in rows if r["scorer"] == name and r["N"] == n}
            lines.append(f"| {name} | {n} | " + " | ".join(
                cell(got[d]["valid_mean"], got[d]["valid_std"], got[d]["test_mean"], got[d]["test_std"])
                for d in DATASETS) + " |")
    lines += ["", "REA / optimum (published): 93.92 / 94.37 (CIFAR-10 test), 71.84 / 73.51 (CIFAR-100), "
              "45.54 / 47.31 (ImageNet16-120).", "",
              "Reading: the published NASWOT row uses the paper's final score (log-determinant of the binary "
              "Hamming kernel, nasbeff's `naswot`); the authors' published whole-space values (`naswot_v1_c10`) are "
              "their arXiv-v1 formula, which selects worse (91.5 vs 92.96 at N = 1000). " + (
                  "Our `naswot` row is the final score over the whole space (`nasbeff score`'s protocol). "
                  if "naswot" in scorers else "Our `naswot` is scored on the 3,000-arch sample only; the whole space "
                  "for it is the cheap tier of `experiments/nb201_scale/config.json`, still to run. ") +
              "MeCo, synflow and #params (= FLOPs in rank on NB201) scored on CIFAR-10 reach or pass the published "
              "NASWOT on CIFAR-10 and CIFAR-100 and fall short on ImageNet16-120 (41-42 vs 43-44)."]
    (HERE / "naswot_table.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
