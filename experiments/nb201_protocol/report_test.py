"""Issue 10: the pre-registered test's table, from the committed test CSV, with the dev numbers beside.

    python experiments/nb201_protocol/report_test.py [--test benchmarks_data/nb201_cifar10_protocol_test.csv] \
        [--frontier experiments/nb201_protocol/frontier.csv] [--out experiments/nb201_protocol/results.md]

Per score column of the test CSV (beta_eff's pre-registered prediction ``beff_pred``, the same-run
baselines TSE / TSE-E / TSE-EMA / LSV / BSV, and the free ``zc_*`` proxies joined from ``nasbeff score``):
Spearman and Kendall vs NB201 ``c10_test`` with 95 % bootstrap CIs, without and with the cut-off archs;
then the paired bootstrap differences rho(beff_pred) - rho(TSE) and rho(beff_pred) - rho(LSV) on the
same archs and resamples. With the cut-off archs included, a column without a value for them (beta_eff
cannot fit a constant curve) ranks them last, as every proxy's ``-inf`` does; the n column says how many
archs each row has. Cost: mean wall seconds per arch of the whole unit (``wall_seconds``).
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

import numpy as np

from nasbeff.tables import NB201Table
from nasbeff.evaluation import paired_bootstrap, rank_correlation
from nasbeff.store import read_csv, to_float

HERE = Path(__file__).resolve().parent
SAME_RUN = ("beff_pred", "tse", "tse_e", "tse_ema", "lsv", "bsv")
LABELS = {"beff_pred": "β_eff → 0 (pre-registered variant)", "tse": "TSE (sum of training losses)",
          "tse_e": "TSE-E (last epoch's losses)", "tse_ema": "TSE-EMA", "lsv": "last-seen value",
          "bsv": "best-seen value", "zc_params": "#params (free)", "zc_meco": "MeCo (free)",
          "zc_naswot": "NASWOT (free)", "zc_synflow": "synflow (free)"}


def columns(test: dict[str, np.ndarray]) -> list[str]:
    """The score columns of the test CSV that exist, same-run first, then free proxies."""
    return [c for c in SAME_RUN if c in test] + sorted(c for c in test if c.startswith("zc_") and
                                                       not c.endswith("_seconds"))


def _last(scores: np.ndarray, cut: np.ndarray) -> np.ndarray:
    """``scores`` with every cut-off arch that has no finite value ranked below all others."""
    finite = scores[np.isfinite(scores)]
    low = (finite.min() - 1.0) if finite.size else 0.0
    return np.where(~np.isfinite(scores) & cut, low, scores)


def table(test: dict[str, np.ndarray], truth: np.ndarray, cut: np.ndarray, n_boot: int) -> tuple[list[str], dict]:
    """Markdown lines of the correlation table and the paired differences (also returned as a dict)."""
    lines = ["| score | Spearman [95 % CI], cut-off archs excluded | Kendall [95 % CI] | n | "
             "Spearman, cut-off included (n) |", "|---|---|---|---|---|"]
    stats = {}
    for c in columns(test):
        ex = rank_correlation(test[c][~cut], truth[~cut], n_boot=n_boot)
        inc = rank_correlation(_last(test[c], cut), truth, n_boot=n_boot)
        stats[c] = {"excluded": ex, "included": inc}
        lo, hi = ex.spearman_ci
        lines.append(f"| {LABELS.get(c, c)} | {ex.spearman:+.3f} [{lo:+.2f}, {hi:+.2f}] | "
                     f"{ex.kendall:+.3f} [{ex.kendall_ci[0]:+.2f}, {ex.kendall_ci[1]:+.2f}] | {ex.n} | "
                     f"{inc.spearman:+.3f} [{inc.spearman_ci[0]:+.2f}, {inc.spearman_ci[1]:+.2f}] ({inc.n}) |")
    lines += ["", "Paired bootstrap over the same archs and resamples:", "",
              "| difference | cut-off archs excluded | P(β_eff not better) | cut-off included |", "|---|---|---|---|"]
    paired = {}
    for other in ("tse", "tse_e", "lsv", "bsv"):
        if "beff_pred" not in test or other not in test:
            continue
        ex = paired_bootstrap(test["beff_pred"][~cut], test[other][~cut], truth[~cut], n_boot=n_boot)
        inc = paired_bootstrap(_last(test["beff_pred"], cut), _last(test[other], cut), truth, n_boot=n_boot)
        paired[other] = {"excluded": ex, "included": inc}
        lines.append(f"| ρ(β_eff) − ρ({LABELS[other]}) | {ex.diff:+.3f} [{ex.ci[0]:+.2f}, {ex.ci[1]:+.2f}] | "
                     f"{ex.p_not_better:.2f} | {inc.diff:+.3f} [{inc.ci[0]:+.2f}, {inc.ci[1]:+.2f}] |")
    return lines, {"correlations": stats, "paired": paired}


def dev_lines(frontier: Path, setting: str, epochs: int, variant: str) -> list[str]:
    """The dev-arch numbers of the chosen frontier point (cut-off archs excluded): its same-run
    baselines, the chosen beta_eff variant, the free scores."""
    _, rows = read_csv(frontier, "frontier CSV")
    mine = [r for r in rows if r["cut_off"] == "excluded" and r["setting"].split(":")[0] == setting
            and int(r["epochs"]) == epochs]
    free = [r for r in rows if r["cut_off"] == "excluded" and r["setting"] == "free"]
    out = ["| score (dev archs) | Spearman [95 % CI] | n |", "|---|---|---|"]
    for r in sorted(mine + free, key=lambda r: -to_float(r["spearman"])):
        if r["score"].startswith("beff_") and r["score"] != f"beff_{variant}":
            continue
        rho, lo, hi = (to_float(r[k]) for k in ("spearman", "lo", "hi"))
        out.append(f"| {r['score']} | {rho:+.3f} [{lo:+.2f}, {hi:+.2f}] | {r['n']} |")
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--test", type=Path, default=Path("benchmarks_data/nb201_cifar10_protocol_test.csv"))
    ap.add_argument("--config", type=Path, default=HERE / "test_config.json")
    ap.add_argument("--frontier", type=Path, default=HERE / "frontier.csv")
    ap.add_argument("--chosen", type=Path, default=HERE / "chosen.json", help="choose.py's output (the dev point)")
    ap.add_argument("--out", type=Path, default=HERE / "results.md")
    ap.add_argument("--n-boot", type=int, default=2000)
    args = ap.parse_args()
    fields, rows = read_csv(args.test, "--test")
    idx = [int(r["index"]) for r in rows]
    test = {c: np.array([to_float(r.get(c)) for r in rows]) for c in fields
            if c in SAME_RUN or (c.startswith("zc_") and not c.endswith("_seconds"))}
    cut = np.array([r["cut_off"] in ("True", "true", "1") for r in rows])
    table_ = NB201Table()
    truth = table_.column("c10_test", idx)
    test.setdefault("zc_params", table_.column("params_mb_c10", idx))  # free: NB201's own count, no run
    lines, _ = table(test, truth, cut, args.n_boot)
    wall = np.array([to_float(r.get("wall_seconds")) for r in rows])
    cfg = json.loads(args.config.read_text()) if args.config.exists() else {}
    out = ["# NB201 early-training protocol: the pre-registered test (issue 10)", "",
           f"Written by `python experiments/nb201_protocol/report_test.py` from `{args.test}` "
           f"({len(rows)} archs, all of index >= 200: {min(idx) >= 200}; {int(cut.sum())} cut-off). "
           f"Config `{args.config.name}` (seed {cfg.get('sample', {}).get('seed', '?')}, protocol {cfg.get('protocol', '?')}, "
           f"variant {cfg.get('variant', '?')}); truth: NB201 `c10_test` (200 epochs, mean over seeds).", "",
           f"Cost: {np.nanmean(wall):.0f} s per arch on average (median {np.nanmedian(wall):.0f}, max "
           f"{np.nanmax(wall):.0f}), one thread per arch, two archs at once on 2 cores.", "", *lines]
    if args.chosen.exists() and args.frontier.exists():
        chosen = json.loads(args.chosen.read_text())
        setting = chosen["setting"].split(":")[0]
        out += ["", f"## Dev archs, the chosen point ({setting}, {chosen['epochs']} epochs)", "",
                f"Rule: {chosen['rule']}; {chosen['seconds_per_arch']:.0f} s/arch on dev.", "",
                *dev_lines(args.frontier, setting, int(chosen["epochs"]), chosen["beff_variant"])]
    args.out.write_text("\n".join(out) + "\n")
    print("\n".join(out))
    if not math.isfinite(float(np.nanmean(wall))):
        print("note: the test CSV has no wall_seconds column")


if __name__ == "__main__":
    main()
