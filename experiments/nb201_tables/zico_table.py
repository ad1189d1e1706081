"""Issue 24 part 4: the ZiCo-style table (ZiCo, ICLR 2023, Table 3; VKDNW, CVPR 2025) -- Kendall tau and
Spearman rho of every proxy against each dataset's NB201 test accuracy, ours beside the published
value, with bootstrap CIs and n. Public API only.

    python experiments/nb201_tables/zico_table.py [--n-boot 1000]
        -> benchmarks_data/nb201_zico_table.csv, experiments/nb201_tables/zico_table.md

Ours: the 3,000-arch seeded sample of ``experiments/nb201_scale`` scored on each dataset's own images
(CIFAR-10: ``benchmarks_data/nb201_cifar10_proxies_3000.csv``; CIFAR-100: ``..._cifar100_...``, or while
its run is not through, the archs of its sample tier so far), cut-off archs left out, ``-inf`` ranked last, each row on
the archs its column has (n says how many; grasp and VKDNW: the 1,000-arch subset). ImageNet16-120: no
images exist here, so its rows say "no images" and carry only the published values; separate rows,
labelled "[transfer: CIFAR-10 images]", rank the CIFAR-10-image scores against the CIFAR-100 and
ImageNet16-120 truth (never the table's protocol). ZiCo's protocol is
two batches of 128 images; ours is ``nasbeff score``'s, two batches of 64 (zico uses both, the rest
the first).
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path

import numpy as np

from nasbeff.evaluation import rank_correlation
from nasbeff.runs.report import comparable_columns
from nasbeff.spaces import index_to_str, is_cut_off
from nasbeff.store import read_csv, to_float, write_csv
from nasbeff.tables import NB201Table

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
DATASETS = {"cifar10": ("c10_test", "benchmarks_data/nb201_cifar10_proxies_3000.csv"),
            "cifar100": ("c100_test", "benchmarks_data/nb201_cifar100_proxies_3000.csv"),
            "imagenet16-120": ("in16_test", None)}
AZNAS = "rank:aznas_expressivity+aznas_progressivity+aznas_trainability+aznas_complexity"
VKDNW_AGG = "rank:vkdnw_single+jacov+aznas_expressivity+aznas_trainability+flops"
# (our column, label) -> {dataset: (published tau, published rho)}; ZiCo Table 3, VKDNW's table for the last four
PUBLISHED: dict[tuple[str, str], dict[str, tuple[float | None, float | None]]] = {
    ("grad_norm", "grad_norm"): {"cifar10": (.46, .63), "cifar100": (.47, .63), "imagenet16-120": (.43, .58)},
    ("snip", "SNIP"): {"cifar10": (.46, .63), "cifar100": (.46, .63), "imagenet16-120": (.43, .58)},
    ("grasp", "GraSP"): {"cifar10": (.37, .54), "cifar100": (.36, .51), "imagenet16-120": (.40, .56)},
    ("fisher", "Fisher"): {"cifar10": (.40, .55), "cifar100": (.41, .55), "imagenet16-120": (.37, .50)},
    ("synflow", "Synflow"): {"cifar10": (.54, .73), "cifar100": (.57, .76), "imagenet16-120": (.56, .75)},
    ("knas", "KNAS"): {"cifar10": (.14, .20), "cifar100": (.24, .35), "imagenet16-120": (.30, .42)},
    ("naswot", "NASWOT"): {"cifar10": (.58, .77), "cifar100": (.62, .80), "imagenet16-120": (.60, .78)},
    ("ntk", "NTK"): {"cifar10": (.33, .44), "cifar100": (.33, .43), "imagenet16-120": (.46, .63)},
    ("gradsign", "GradSign"): {"cifar10": (.58, .77), "cifar100": (.59, .79), "imagenet16-120": (.59, .78)},
    ("zen", "Zen"): {"cifar10": (.29, .38), "cifar100": (.28, .36), "imagenet16-120": (.29, .40)},
    ("flops", "FLOPs"): {"cifar10": (.54, .73), "cifar100": (.51, .71), "imagenet16-120": (.49, .67)},
    ("params", "#Params"): {"cifar10": (.57, .75), "cifar100": (.55, .73), "imagenet16-120": (.52, .69)},
    ("zico", "ZiCo"): {"cifar10": (.61, .80), "cifar100": (.61, .81), "imagenet16-120": (.60, .79)},
    ("meco", "MeCo (its paper, rho)"): {"cifar10": (None, .894), "cifar100": (None, .883),
                                        "imagenet16-120": (None, .845)},
    (AZNAS, "AZ-NAS (VKDNW's run)"): {"cifar10": (.712, .892), "cifar100": (.696, .880),
                                      "imagenet16-120": (.673, .859)},
    (VKDNW_AGG, "VKDNW_agg"): {"cifar10": (.750, .919), "cifar100": (.753, .919), "imagenet16-120": (.743, .906)},
}


MIN_SHOWN = 100  # fewer archs than this: the markdown says "scoring" (the CSV has the value and its n)
TRANSFER = "transfer: scored on CIFAR-10 images, ranked against this dataset's test accuracy"


def _row(label: str, col: str, ds: str, pub: tuple, cols: dict[str, np.ndarray], truth, cut, note: str,
         protocol: str, n_boot: int) -> dict:
    """One (proxy, dataset) row: Kendall/Spearman with bootstrap CIs on the archs the column has
    (``nasbeff report``'s rules: cut-off archs out, -inf ranked last), beside the published pair."""
    row = {"proxy": label, "column": col, "dataset": ds, "n": 0, "kendall": math.nan, "kendall_lo": math.nan,
           "kendall_hi": math.nan, "spearman": math.nan, "spearman_lo": math.nan, "spearman_hi": math.nan,
           "published_kendall": pub[0], "published_spearman": pub[1]}
    scored = col in cols and not np.isnan(cols[col]).all()  # a column of a tier still running may be empty so far
    row["note"] = "; ".join(filter(None, [protocol, note or ("" if scored else "not scored yet")]))
    if scored:
        ranks, counted, _ = comparable_columns({col: cols[col]}, truth, cut, archs="each")
        c = rank_correlation(ranks[col], counted, n_boot=n_boot)
        row.update(n=c.n, kendall=c.kendall, kendall_lo=c.kendall_ci[0], kendall_hi=c.kendall_ci[1],
                   spearman=c.spearman, spearman_lo=c.spearman_ci[0], spearman_hi=c.spearman_ci[1])
    return row


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n-boot", type=int, default=1000)
    args = ap.parse_args()
    table = NB201Table()
    rows = []
    c10 = None  # (indices, cut-off mask, columns) of the CIFAR-10 file, kept for the transfer rows
    for ds, (truth_col, csv_path) in DATASETS.items():
        cols: dict[str, np.ndarray] = {}
        truth = cut = None
        note = "no images" if csv_path is None else ""
        if csv_path is not None:
            path = REPO / csv_path
            if not path.is_file() and (tier := path.with_name(path.stem + "_sample_tier.csv")).is_file():
                path = tier  # the scale run is not through: its sample tier so far (n says how far)
            if path.is_file():
                fields, recs = read_csv(path, "scores")
                idx = np.array([int(r["index"]) for r in recs])
                truth = np.asarray(table.column(truth_col, idx), dtype=float)
                cut = np.array([is_cut_off(index_to_str(i)) for i in idx])
                cols = {c: np.array([to_float(r[c]) for r in recs]) for c in fields}
                if ds == "cifar10":
                    c10 = (idx, cut, cols)
            else:
                note = "not scored yet"
        for (col, label), pub in PUBLISHED.items():
            rows.append(_row(label, col, ds, pub[ds], cols, truth, cut, note, "", args.n_boot))
    # transfer rows: the CIFAR-10-image scores ranked against the other datasets' truth -- not the table's
    # protocol (that scores each dataset on its own images), labelled as such
    if c10 is None:
        raise SystemExit(f"error: {DATASETS['cifar10'][1]} is missing: the CIFAR-10 scale run has not written it")
    idx, cut, c10_cols = c10
    for ds in ("cifar100", "imagenet16-120"):
        truth = np.asarray(table.column(DATASETS[ds][0], idx), dtype=float)
        for (col, label), pub in PUBLISHED.items():
            rows.append(_row(f"{label} [transfer: CIFAR-10 images]", col, ds, pub[ds], c10_cols, truth, cut, "",
                             TRANSFER, args.n_boot))
    out = REPO / "benchmarks_data" / "nb201_zico_table.csv"
    write_csv(rows, out, float_spec=".4f")

    def cell(r):
        pub = "/".join("—" if v is None else f"{v:.2f}" for v in (r["published_kendall"], r["published_spearman"]))
        if not r["n"]:
            return f"{r['note'].split('; ')[-1]} · pub. {pub}"
        if r["n"] < MIN_SHOWN:  # a tier that has just started: its CSV row keeps the value, the table waits
            return f"scoring (n = {r['n']} so far) · pub. {pub}"
        return (f"{r['kendall']:.2f} / {r['spearman']:.2f} [{r['spearman_lo']:.2f}, {r['spearman_hi']:.2f}] "
                f"(n = {r['n']:,}) · pub. {pub}")

    lines = ["# ZiCo-style table (`python experiments/nb201_tables/zico_table.py`)", "",
             ("Kendall τ / Spearman ρ [95 % bootstrap CI of ρ] vs each dataset's NB201 test accuracy, ours on the "
              "3,000-arch seeded sample scored on that dataset's images (cut-off archs left out, -inf ranked last, "
              "each row on the archs its column has), beside the published τ/ρ (ZiCo Table 3; VKDNW's table for "
              "AZ-NAS and VKDNW_agg; MeCo's paper gives ρ only). ZiCo used two batches of 128 images, we use two "
              "of 64. ImageNet16-120: no images here, so no value of ours."), "",
             "| proxy | CIFAR-10 | CIFAR-100 | ImageNet16-120 |", "|---|---|---|---|"]
    for (col, label) in PUBLISHED:
        got = {r["dataset"]: r for r in rows if r["column"] == col and not r["note"].startswith("transfer")}
        lines.append(f"| {label} | " + " | ".join(cell(got[d]) for d in DATASETS) + " |")
    lines += ["", "## Transfer rows (not the table's protocol)", "",
              ("The CIFAR-10-image scores of the same sample ranked against CIFAR-100 and ImageNet16-120 test "
               "accuracy: what a user without that dataset's images can compute. The published values beside "
               "them are each dataset scored on its own images, so the comparison is indicative only."), "",
              "| proxy | CIFAR-100 | ImageNet16-120 |", "|---|---|---|"]
    for (col, label) in PUBLISHED:
        got = {r["dataset"]: r for r in rows if r["column"] == col and r["note"].startswith("transfer")}
        lines.append(f"| {label} [transfer] | " + " | ".join(cell(got[d]) for d in ("cifar100", "imagenet16-120"))
                     + " |")
    (HERE / "zico_table.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
