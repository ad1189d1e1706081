"""Golden rows after the redesign: the same four workloads through the new API/CLI, compared with
the rows recorded before it (experiments/refactor_golden/*_before.*) to 1e-6; timings excluded.
Run from the repository root: python experiments/refactor_golden/after.py <scratch folder>."""

import json
import math
import subprocess
import sys
from pathlib import Path

import torch

from nasbeff.runs.demo import RankDemoConfig, run_rank_demo

HERE = Path(__file__).resolve().parent
TMP = Path(sys.argv[1])
DATA = Path(sys.argv[2]) if len(sys.argv) > 2 else HERE.parents[2] / "shared/data/cifar10/cifar10_jpeg.tar.gz"


def close(a, b, where):
    """a == b to 1e-6 (relative for large values), recursively; NaN == NaN."""
    if isinstance(a, dict):
        keys = set(a) | set(b)
        bad = []
        for k in sorted(keys):
            if k not in a or k not in b:
                bad.append(f"{where}.{k}: only in {'after' if k in a else 'before'}")
            else:
                bad += close(a[k], b[k], f"{where}.{k}")
        return bad
    if isinstance(a, (list, tuple)):
        if len(a) != len(b):
            return [f"{where}: length {len(a)} vs {len(b)}"]
        return [m for x, y, i in zip(a, b, range(len(a))) for m in close(x, y, f"{where}[{i}]")]
    if isinstance(a, (int, float)) and isinstance(b, (int, float)) and not isinstance(a, bool):
        if a == b or (math.isnan(a) and math.isnan(b)):
            return []
        return [] if abs(a - b) <= 1e-6 * max(1.0, abs(b)) else [f"{where}: {a!r} vs {b!r}"]
    return [] if a == b else [f"{where}: {a!r} vs {b!r}"]


def main() -> None:
    torch.set_num_threads(1)
    report = {}
    # 1. demo --quick
    res = run_rank_demo(RankDemoConfig.quick(png=None))
    before = json.loads((HERE / "demo_before.json").read_text())
    drop = ("seconds", "beff_fallback", "beff_out_of_range")
    rows = [{k: v for k, v in r.items() if not any(d in k for d in drop)} for r in res.rows]
    # The two intended changes (issue 9's doors): an arch whose beta_eff curve cannot be fitted
    # used to get its last seen value under beff_pred (now NaN and flagged), and a cut-off arch
    # got a proxy-specific number (now every proxy's CANNOT_SCORE, -inf). Apply both doors to the
    # recorded rows and recompute the recorded table from them.
    from nasbeff.evaluation import correlation_table
    from nasbeff.proxies import CANNOT_SCORE
    from nasbeff.spaces import is_cut_off

    cfg = RankDemoConfig.quick(png=None)
    door = [dict(r) for r in before["rows"]]
    for d, r in zip(door, res.rows):
        if r["beff_fallback"]:
            assert d["beff_pred"] == d["lsv"], "a fallback arch must have carried its LSV before"
            d["beff_pred"] = math.nan
        if is_cut_off(d["arch_str"]):
            d.update({p: CANNOT_SCORE for p in cfg.proxies})
    methods = {f"beta_eff pred. ({cfg.epochs} ep)": "beff_pred", f"LSV ({cfg.epochs} ep)": "lsv",
               f"BSV ({cfg.epochs} ep)": "bsv", **{f"{p} (init)": p for p in cfg.proxies}}
    truth = [d["truth"] for d in door]
    door_table = correlation_table({m: [d[c] for d in door] for m, c in methods.items()}, truth, n_boot=cfg.n_boot,
                                   seed=cfg.seed)
    before_after_door = {"rows": door, "table": door_table, "noise_ceiling": before["noise_ceiling"]}
    table = [{k: v for k, v in r.items() if k not in ("column", "seconds")} for r in res.table]
    report["demo"] = close({"rows": rows, "table": table, "noise_ceiling": res.noise_ceiling}, before_after_door, "demo")
    report["demo LSV/BSV rows, as recorded"] = close(table[1:3], before["table"][1:3], "demo.table")
    # 2-3. rank 2 archs x 2 epochs, 10 archs x every proxy: store metrics (timings dropped)
    from nasbeff import proxies

    py = sys.executable
    subprocess.run([py, "-m", "nasbeff", "rank", "--data", str(DATA), "--archs", "0,1", "--epochs", "2", "--train-size",
                    "1000", "--valid-size", "500", "--beta-samples", "256", "--store", str(TMP / "r.sqlite"), "--out",
                    str(TMP / "rank.csv"), "--threads", "1"], check=True)
    subprocess.run([py, "-m", "nasbeff", "score", "--data", str(DATA), "--archs", "0-9", "--proxies",
                    ",".join(proxies.available_before_redesign()) if hasattr(proxies, "available_before_redesign")
                    else ",".join(json.loads((HERE / "score_store_before.json").read_text()) and
                                  sorted({k.split("|")[1] for k in json.loads((HERE / "score_store_before.json").read_text())})),
                    "--batches", "2", "--store", str(TMP / "s.sqlite"), "--out", str(TMP / "score.csv"), "--threads", "1"],
                   check=True)
    for name, store in (("rank_store", "r.sqlite"), ("score_store", "s.sqlite")):
        subprocess.run([py, str(HERE / "dump_store.py"), str(TMP / store), str(TMP / f"{name}.json")], check=True)
        report[name] = close(json.loads((TMP / f"{name}.json").read_text()),
                             json.loads((HERE / f"{name}_before.json").read_text()), name)
    # 4. search, 3 seeds
    subprocess.run([py, "-m", "nasbeff", "search", "--method", "rea,random,warmup_rea", "--scorer", "benchmark",
                    "--seeds", "3", "--out", str(TMP / "search.csv")], check=True)
    a, b = (TMP / "search.csv").read_text().splitlines(), (HERE / "search_before.csv").read_text().splitlines()
    report["search"] = [] if a == b else [f"search rows differ: {len(a)} vs {len(b)} lines"]
    for k, v in report.items():
        # metrics recorded since the golden rows were (e.g. beta_num, train_loss_sum) are additions, not changes
        added = [m for m in v if m.endswith(": only in after")]
        v = [m for m in v if m not in added]
        report[k] = v
        print(f"{k}: {'identical to 1e-6' if not v else f'{len(v)} differences'}"
              + (f" ({len(added)} values of metrics added since the recording)" if added else ""))
        for m in v[:10]:
            print("   ", m)
    sys.exit(1 if any(report.values()) else 0)


if __name__ == "__main__":
    main()
