"""Memory (PSS) and CPU time of a whole process tree, e.g. a ``nasbeff score --workers 2`` run.

Usage::

    python benchmarks/bench_score_memory.py --out runs/mem.json -- nasbeff score --data ... --workers 2

Runs the command after ``--``, samples every ``--interval`` seconds the proportional set size of
the command and all its descendants (``Pss`` of ``/proc/<pid>/smaps_rollup``: shared pages are
split between the processes that map them, so the sum over the tree is the tree's real share of
RAM), and the CPU time of the whole tree at the end (``getrusage(RUSAGE_CHILDREN)``: the
command and every descendant it waited for, e.g. its worker processes), and writes the samples and the peaks to ``--out`` (JSON; ``--csv`` also writes the
samples as CSV). Linux only. The exit code is the command's.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

def _children() -> dict[int, list[int]]:
    """ppid -> child pids of every process visible in /proc."""
    out: dict[int, list[int]] = {}
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                stat = Path(f"/proc/{d}/stat").read_text()
            except OSError:
                continue
            ppid = int(stat[stat.rindex(")") + 2:].split()[1])
            out.setdefault(ppid, []).append(int(d))
    return out


def tree(pid: int) -> list[int]:
    """``pid`` and all its descendants."""
    kids, out, todo = _children(), [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        todo.extend(kids.get(p, []))
    return out


def pss_kib(pid: int) -> int | None:
    """``Pss`` of ``/proc/<pid>/smaps_rollup`` in KiB (None if the process is gone)."""
    try:
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            if line.startswith("Pss:"):
                return int(line.split()[1])
    except (OSError, ValueError):
        return None
    return None


def monitor(cmd: list[str], interval: float = 1.0) -> dict:
    """Run ``cmd`` and sample its process tree until it exits; the samples and the peaks."""
    if not Path("/proc/self/smaps_rollup").exists():
        raise OSError("this needs Linux >= 4.14 (/proc/<pid>/smaps_rollup)")
    t0 = time.time()
    proc = subprocess.Popen(cmd)
    samples = []
    while True:
        per = {p: v for p in tree(proc.pid) if (v := pss_kib(p)) is not None}
        samples.append({"t_s": round(time.time() - t0, 2), "processes": len(per),
                        "pss_mib": round(sum(per.values()) / 1024, 1),
                        "driver_pss_mib": round(per.get(proc.pid, 0) / 1024, 1)})
        if proc.poll() is not None:
            break
        time.sleep(interval)
    peak = max(samples, key=lambda s: s["pss_mib"])
    ru = resource.getrusage(resource.RUSAGE_CHILDREN)
    return {"command": cmd, "exit_code": proc.returncode, "wall_s": round(time.time() - t0, 1),
            "cpu_s": round(ru.ru_utime + ru.ru_stime, 1), "peak_pss_mib": peak["pss_mib"], "peak_at_s": peak["t_s"],
            "peak_processes": max(s["processes"] for s in samples), "interval_s": interval, "samples": samples}


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if "--" not in argv:
        print("error: give the command to measure after --", file=sys.stderr)
        return 2
    cut = argv.index("--")
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, required=True, help="JSON with the samples and the peaks")
    ap.add_argument("--csv", type=Path, default=None, help="also the samples as CSV")
    ap.add_argument("--interval", type=float, default=1.0, help="seconds between samples")
    args = ap.parse_args(argv[:cut])
    cmd = argv[cut + 1:]
    if not cmd:
        print("error: the command after -- is empty", file=sys.stderr)
        return 2
    res = monitor(cmd, args.interval)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(res, indent=1) + "\n")
    if args.csv is not None:
        with open(args.csv, "w", newline="") as f:
            w = csv.DictWriter(f, fieldnames=list(res["samples"][0]))
            w.writeheader()
            w.writerows(res["samples"])
    print(f"peak PSS of the process tree: {res['peak_pss_mib']:.0f} MiB at {res['peak_at_s']:.0f} s "
          f"({res['peak_processes']} processes); CPU {res['cpu_s']:.0f} s in {res['wall_s']:.0f} s wall", file=sys.stderr)
    return res["exit_code"]


if __name__ == "__main__":
    sys.exit(main())
