"""Issue 26 point 4: REA and random search driven *live* by beta_eff, TSE-E and last-seen value
(one cpu-protocol training run per arch serves all three) and by MeCo, against the same searches
with the benchmark, 5 seeds x 30 evaluations each, on the shared CIFAR-10 images.

    python experiments/nb201_search_live/run.py --minutes 80     # rerun until it says "all searches done"

Everything is fixed by ``config.json`` beside this file (committed before any run). Each (group,
method) is one :func:`nasbeff.runs.search.run_search` (``nasbeff search --scorer live:... --evaluations
30 --workers 2``) on one store; finished units are merged into the committed ``units.csv.gz`` (a fresh
checkout resumes from it: nothing is computed twice), and a chunk stops at ``--minutes``: no unit
starts after it, the units in flight finish, and the search resumes next time from the store. Writes
``benchmarks_data/nb201_search_live.csv`` (the columns of ``nb201_search.csv`` plus ``cost_model``,
``unique_trained``, ``cpu_seconds``) and ``results.md``: final ``c10_test`` of each run's best arch
(mean ± std, 95% bootstrap CI), paired differences (same seeds) to REA with the benchmark and to the same
method with the benchmark, beta_eff against the other live scorers, unique archs trained and CPU seconds. One line per chunk goes to ``chunks.jsonl`` (wall and CPU seconds,
the machine).
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import platform
import resource
import sys
import time
from pathlib import Path

import numpy as np

from nasbeff.evaluation import paired_mean_difference
from nasbeff.executors import cpu_model
from nasbeff.runs.live import LiveTimeLimit
from nasbeff.runs.search import SearchConfig, run_search
from nasbeff.store import atomic_write
from nasbeff.tables import shared_data_dir

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]


def _cpu_seconds() -> float:
    me, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime


def search_config(cfg: dict, group: dict, method: str, shared: Path, deadline: float | None) -> SearchConfig:
    live = any(s.startswith("live:") for s in group["scorers"])
    extra = dict(data=str(shared / cfg["data"]), store=REPO / cfg["store"], results=REPO / cfg["results"],
                 protocol=group.get("protocol", "cpu"), batch_size=group.get("batch_size", 64),
                 batches=group.get("batches", 0), workers=cfg["workers"], threads=cfg["threads"],
                 device=cfg.get("device", "cpu"), deadline=deadline) if live else {}
    return SearchConfig(methods=(method,), scorers=tuple(group["scorers"]), seed_list=tuple(cfg["seeds"]),
                        max_evaluations=cfg["evaluations"], budget=float(cfg["budget_s"]), points=1,
                        dataset=cfg["dataset"], shared=shared, out=REPO / "runs" / cfg.get("runs_dir", "nb201_search_live") /
                        f"{group['name']}_{method}.csv", **extra)


def read_rows(path: Path) -> list[dict]:
    if not path.exists():
        return []
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def _paired(a: dict[int, dict], b: dict[int, dict]) -> str:
    """Mean paired difference of ``best_test_acc`` (a - b) over the seeds both have, with its 95% CI."""
    common = sorted(set(a) & set(b))
    if len(common) < 2:
        return "—"
    d = paired_mean_difference(np.array([float(a[k]["best_test_acc"]) for k in common]),
                               np.array([float(b[k]["best_test_acc"]) for k in common]), seed=0)
    return f"{d.diff:+.2f} [{d.ci[0]:+.2f}, {d.ci[1]:+.2f}] (n={len(common)})"


def report(rows: list[dict], cfg: dict) -> str:
    """Final rows (all evaluations made): mean ± std of c10_test, CIs, paired differences (same seeds) to
    REA + benchmark and to the same method with the benchmark; then each live scorer against
    ``live:beff_pred`` within one method (the early-training scorers share one training run per arch)."""
    final = [r for r in rows if float(r["budget_s"]) == float(cfg["budget_s"])]
    by: dict[tuple[str, str], dict[int, dict]] = {}
    for r in final:
        by.setdefault((r["method"], r["scorer"]), {})[int(r["seed"])] = r
    ref = by.get(("rea", "benchmark"), {})
    lines = ["| method | scorer | runs | evaluations | c10_test of the best arch (mean ± std) | 95% CI of the mean | "
             "paired diff. to REA + benchmark [95% CI] | paired diff. to the same method + benchmark [95% CI] | "
             "unique archs computed live (mean; `unique_trained`) | CPU s of its units (mean per run) |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    rng = np.random.default_rng(0)
    for (m, s), runs in sorted(by.items()):
        seeds = sorted(runs)
        acc = np.array([float(runs[k]["best_test_acc"]) for k in seeds])
        boot = np.array([rng.choice(acc, acc.size).mean() for _ in range(2000)])
        lo, hi = np.percentile(boot, [2.5, 97.5])
        diff = _paired(runs, ref) if (m, s) != ("rea", "benchmark") else "—"
        same = _paired(runs, by.get((m, "benchmark"), {})) if s != "benchmark" else "—"
        evals = np.mean([int(runs[k]["evaluations"]) for k in seeds])
        if s.startswith("live:"):
            uniq = f"{np.mean([float(runs[k].get('unique_trained') or 'nan') for k in seeds]):.1f}"
            cpu = f"{np.mean([float(runs[k].get('cpu_seconds') or 'nan') for k in seeds]):,.0f}"
        else:  # a table look-up: nothing is trained here, the budget is NB201's simulated training time
            uniq, cpu = "— (table look-up)", "—"
        lines.append(f"| {m} | {s} | {len(seeds)} | {evals:.0f} | {acc.mean():.2f} ± {acc.std(ddof=1) if acc.size > 1 else float('nan'):.2f} | "
                     f"[{lo:.2f}, {hi:.2f}] | {diff} | {same} | {uniq} | {cpu} |")
    beff = "live:beff_pred"
    pairs = [(m, s) for (m, s) in sorted(by) if s.startswith("live:") and s != beff and (m, beff) in by]
    if pairs:
        lines += ["", f"`{beff}` against the other live scorers, within one method (same seeds):", "",
                  f"| method | `{beff}` minus | paired diff. [95% CI] |", "|---|---|---|"]
        lines += [f"| {m} | {s} | {_paired(by[(m, beff)], by[(m, s)])} |" for m, s in pairs]
    return "\n".join(lines)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--config", type=Path, default=HERE / "config.json")
    ap.add_argument("--minutes", type=float, default=80.0, help="length of this chunk")
    args = ap.parse_args()
    cfg = json.loads(args.config.read_text())
    shared = shared_data_dir()
    if shared is None:
        print("error: ../shared/data not found (set NASBEFF_SHARED_DATA)", file=sys.stderr)
        return 2
    t0, c0 = time.time(), _cpu_seconds()
    deadline = t0 + 60 * args.minutes
    for group in cfg["groups"]:  # nasbeff's own validation of every search (device, images, ...) before any work
        for method in cfg["methods"]:
            try:
                search_config(cfg, group, method, shared, deadline)
            except (ValueError, FileNotFoundError) as exc:
                print(f"error: {args.config.name}, {group['name']} / {method}: {exc}", file=sys.stderr)
                return 2
    out = REPO / cfg["out"]
    rows = {(r["method"], r["scorer"], r["seed"], r["budget_s"]): r for r in read_rows(out)}
    finished, stopped = [], False
    # the table look-up groups first (instant: the reference rows exist whatever a chunk reaches), then the
    # live ones in the config's order
    groups = sorted(cfg["groups"], key=lambda g: any(s.startswith("live:") for s in g["scorers"]))
    for group in groups:
        for method in cfg["methods"]:
            if time.time() > deadline:
                stopped = True
                break
            sc = search_config(cfg, group, method, shared, deadline)
            print(f"{group['name']} / {method}: {len(cfg['seeds'])} seeds x {cfg['evaluations']} evaluations",
                  flush=True)
            try:
                res = run_search(sc)
            except LiveTimeLimit as exc:
                print(f"  stopped: {exc}", flush=True)
                stopped = True
                break
            finished.append(f"{group['name']}/{method}")
            print(f"  done in {res.elapsed_s:,.0f} s; {len(res.computed)} units computed", flush=True)
            for r in read_rows(sc.out):
                rows[(r["method"], r["scorer"], r["seed"], r["budget_s"])] = r
        if stopped:
            break
    if rows:
        fields = list(dict.fromkeys(k for r in rows.values() for k in r))
        with atomic_write(out, "w", newline="") as f:
            w = csv.DictWriter(f, fieldnames=fields)
            w.writeheader()
            for key in sorted(rows, key=lambda k: (k[0], k[1], int(k[2]), float(k[3]))):
                w.writerow(rows[key])
        (REPO / cfg.get("report", "experiments/nb201_search_live/results.md")).write_text(
            "# Live scorers in the search loops (issue 26)\n\nWritten by `python experiments/nb201_search_live/run.py"
            f"{'' if args.config.resolve() == HERE / 'config.json' else ' --config ' + str(args.config.resolve().relative_to(REPO))}` "
            f"on {cfg.get('device', 'cpu')} from `{cfg['out']}` ({len(cfg['seeds'])} seeds, at most {cfg['evaluations']} evaluations per run, "
            "the config fixed before any run). c10_test is looked up after the search.\n\n"
            + report(list(rows.values()), cfg) + "\n")
    store = REPO / cfg["store"]
    units: dict[str, int] = {}
    if store.exists():
        from nasbeff.store import ResultStore

        archs: dict[str, set] = {}
        with ResultStore(store) as st:  # finished units (archs) in the store, by scorer (rank's: beff-train)
            for row in st.rows(done=True):
                archs.setdefault(row.key.scorer, set()).add(row.key.arch)
        units = {k: len(v) for k, v in sorted(archs.items())}
    record = {"finished": finished, "stopped_by_time_limit": stopped, "units_done": units,
              "wall_s": round(time.time() - t0, 1),
              "cpu_s": round(_cpu_seconds() - c0, 1), "cpu": cpu_model(), "cores": os.cpu_count(),
              "machine": platform.machine(), "load_before_after": list(os.getloadavg()),
              "ended": time.strftime("%Y-%m-%d %H:%M:%S")}
    with open(REPO / cfg["chunks"], "a") as f:
        f.write(json.dumps(record) + "\n")
    print("time limit: rerun to continue" if stopped else "all searches done", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
