"""Issue 13, part 3: score the seeded 3,000-arch NB201 sample (and the cheap scorers over all 15,625)
by ``nasbeff score``, in time-limited chunks; one command, rerun until it says "all tiers done".

    python experiments/nb201_scale/run.py --minutes 85
    python experiments/nb201_scale/run.py --config experiments/nb201_scale/config_cifar100.json --minutes 85

Reads ``config.json`` beside this file: the sample (pool, size, seed), the batch protocol and the
tiers (which proxies on which archs, in order). Each tier is one resumable ``nasbeff score`` call
(same store for all, so nothing is scored twice), given the minutes left; a tier's ``alone`` lists
run first, each in a process of its own, so that their memory peak does not add to the others'; every call runs under
``benchmarks/bench_score_memory.py`` (peak PSS of the process tree, CPU time) and its record is
appended, with the CPU model and the load average before and after, to ``chunks.jsonl`` beside this
file (committed: the time and memory of the whole run). Every scored (arch, proxy) pair also goes
into the config's ``results`` file (``nasbeff score --results``, gzip-compressed as its name ends in
``.gz``; committed): a checkout without the local store continues from it. As soon as the sample
tier is complete, and after every later pass, the tier CSVs so far are merged by index into
``merged_out`` (the sample's archs; a subset tier's columns empty outside the archs it has scored). ``--dry-run``
prints the commands only.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import subprocess
import sys
import time
from pathlib import Path

from nasbeff.executors import cpu_model
from nasbeff.tables import shared_data_dir
from nasbeff.spaces import parse_indices, sample_from_pool

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]


def tier_archs(cfg: dict, tier: dict) -> list[int]:
    """The archs of a tier: the seeded sample, its seeded subset, or an explicit range."""
    pool = parse_indices(cfg["sample"]["pool"])
    sample = sample_from_pool(pool, cfg["sample"]["size"], cfg["sample"]["seed"])
    if tier["archs"] == "sample":
        return sample
    if tier["archs"] == "subset":
        sub = sample_from_pool(pool, tier["subset"], cfg["sample"]["seed"])
        if not set(sub) <= set(sample):
            raise ValueError(f"the {tier['subset']}-arch subset is not inside the sample (numpy's choice changed?)")
        return sub
    return parse_indices(tier["archs"])


def tier_passes(cfg: dict, tier: dict, scratch: Path) -> list[tuple[str, list[str], Path]]:
    """The processes of one tier, in order, as (label, proxies, CSV): first one process for each list
    in the tier's ``alone`` (scorers whose memory peak must not add to the others': each writes a
    CSV of its own under ``scratch``), then the tier's whole list (the others; the ``alone`` ones
    are then read from the store) writing the tier's ``out``."""
    unknown = {n for names in tier.get("alone", []) for n in names} - set(tier["proxies"])
    if unknown:
        raise ValueError(f"tier {tier['name']}: 'alone' names {sorted(unknown)}, which are not among its proxies")
    passes = [(f"{tier['name']}/{'+'.join(names)}", list(names), scratch / f"{tier['name']}_{'_'.join(names)}.csv")
              for names in tier.get("alone", [])]
    return [*passes, (tier["name"], list(tier["proxies"]), REPO / tier["out"])]


def score_command(cfg: dict, tier: dict, data: Path, minutes: float, proxies: list[str] | None = None,
                  out: Path | str | None = None, device: str = "cpu") -> list[str]:
    """The ``nasbeff score`` call of one tier (the sample and its subset as ``--sample`` of the pool,
    which :func:`tier_archs` checks to be nested; ``workers``/``threads``: the tier's, else the config's;
    ``proxies``/``out``: one pass of :func:`tier_passes`, else the tier's; ``device``: where the units run,
    added to the command only when it is not the CPU, so the CPU commands stay as they were)."""
    b, smp = cfg["batch_protocol"], cfg["sample"]
    tier_archs(cfg, tier)
    archs = {"sample": ["--archs", smp["pool"], "--sample", str(smp["size"]), "--sample-seed", str(smp["seed"])],
             "subset": ["--archs", smp["pool"], "--sample", str(tier.get("subset", 0)), "--sample-seed",
                        str(smp["seed"])]}.get(tier["archs"], ["--archs", tier["archs"]])
    dataset = ["--dataset", cfg["dataset"]] if cfg.get("dataset") else []  # default: CIFAR-10
    return [sys.executable, "-m", "nasbeff", "score", "--data", str(data), *dataset, *archs,
            "--proxies", ",".join(tier["proxies"] if proxies is None else proxies),
            "--batch-size", str(b["batch_size"]), "--batches", str(b["batches"]), "--seed", str(b["seed"]),
            "--init-channels", str(b["init_channels"]), "--cells", str(b["cells"]),
            "--workers", str(tier.get("workers", cfg["workers"])),
            "--threads", str(tier.get("threads", cfg["threads"])), "--store", cfg["store"],
            "--out", str(tier["out"] if out is None else out), "--results", cfg["results"],
            "--time-limit", f"{minutes:.2f}", "--quiet", *(["--device", device] if device != "cpu" else [])]


def tier_done(tier_csv: Path, n_archs: int, proxies: list[str]) -> bool:
    """True when the tier's CSV has every arch with every proxy column filled (or its error flagged)."""
    if not tier_csv.is_file():
        return False
    with open(tier_csv, newline="") as f:
        rows = list(csv.DictReader(f))
    return len(rows) == n_archs and all(r.get(p, "") != "" or f"{p}: error" in r["flags"]
                                        for r in rows for p in proxies if ":" not in p)


def sample_tiers(cfg: dict) -> list[dict]:
    """The tiers whose archs are the sample or its subset: those make up ``merged_out`` (a whole-space
    tier adds no column to the sample's rows: its scorers are the sample tier's)."""
    return [t for t in cfg["tiers"] if t["archs"] in ("sample", "subset")]


def merge(cfg: dict, root: Path = REPO) -> Path:
    """The sample's rows with the columns of every other sample/subset tier CSV so far, written to
    ``merged_out`` (a tier still running fills its columns on the archs it has scored, the rest empty)."""
    sample, *others = sample_tiers(cfg)
    with open(root / sample["out"], newline="") as f:
        rows = {int(r["index"]): r for r in csv.DictReader(f)}
    fields = list(next(iter(rows.values())))
    for tier in others:
        if not (root / tier["out"]).is_file():  # not started yet: no columns
            continue
        with open(root / tier["out"], newline="") as f:
            reader = csv.DictReader(f)
            extra = [c for c in reader.fieldnames if c not in fields and c != "flags"]
            for r in reader:
                if int(r["index"]) in rows:
                    rows[int(r["index"])].update({c: r[c] for c in extra})
                    if r["flags"]:
                        rows[int(r["index"])]["flags"] = "; ".join(filter(None, [rows[int(r["index"])]["flags"],
                                                                                 r["flags"]]))
        fields[fields.index("flags"):fields.index("flags")] = extra
    out = root / cfg["merged_out"]
    with open(out, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=fields, restval="")
        w.writeheader()
        w.writerows(rows[i] for i in sorted(rows))
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--config", type=Path, default=HERE / "config.json")
    ap.add_argument("--minutes", type=float, default=85.0, help="length of this chunk (all tiers together)")
    ap.add_argument("--data", type=Path, default=None, help="the images (default: the config's data, under the "
                                                            "shared data folder)")
    ap.add_argument("--dry-run", action="store_true", help="print the commands, run nothing")
    ap.add_argument("--tiers", default="", help="comma-separated tier names to run (default: all, in order)")
    ap.add_argument("--device", default="cpu", help="torch device of the units (e.g. cuda on a lent GPU)")
    ap.add_argument("--workers", type=int, default=0, help="override every tier's workers (0: the config's)")
    ap.add_argument("--threads", type=int, default=0, help="override every tier's torch threads per worker (0: "
                                                           "the config's; 1 when two chunks share two cores)")
    args = ap.parse_args()
    cfg = json.loads(args.config.read_text())
    tier_names = [t["name"] for t in cfg["tiers"]]
    chosen = [n.strip() for n in args.tiers.split(",") if n.strip()] or tier_names
    if set(chosen) - set(tier_names):
        print(f"error: --tiers {args.tiers}: {args.config.name} has the tiers {', '.join(tier_names)}",
              file=sys.stderr)
        return 2
    if args.workers:
        cfg["workers"] = args.workers
        for t in cfg["tiers"]:
            t.pop("workers", None)
    if args.threads:
        cfg["threads"] = args.threads
        for t in cfg["tiers"]:
            t.pop("threads", None)
    data = args.data or (shared_data_dir() or Path("../shared/data")) / cfg["data"]
    end = time.time() + 60 * args.minutes
    log = HERE / cfg.get("chunks", "chunks.jsonl")
    scratch = REPO / Path(cfg["store"]).parent

    sizes = {t["name"]: len(tier_archs(cfg, t)) for t in cfg["tiers"]}
    passes = {t["name"]: tier_passes(cfg, t, scratch) for t in cfg["tiers"]}  # every tier checked before any work

    def done(tier: dict) -> bool:
        return tier_done(REPO / tier["out"], sizes[tier["name"]], tier["proxies"])

    def merge_when_ready() -> None:  # the merged CSV, once the sample tier is complete, at every stop
        if not args.dry_run and done(sample_tiers(cfg)[0]):
            print(f"wrote {merge(cfg)} (the sample tier and every other sample/subset tier so far)")

    merge_when_ready()
    for tier in cfg["tiers"]:
        n = sizes[tier["name"]]
        if done(tier) or tier["name"] not in chosen:
            continue
        for label, names, out in passes[tier["name"]]:
            if tier_done(out, n, names):
                continue
            left = (end - time.time()) / 60
            if left < 1:
                merge_when_ready()
                print(f"chunk time spent; rerun to continue with {label}")
                return 0
            cmd = score_command(cfg, tier, data, left, names, out, args.device)
            if args.dry_run:
                print(f"# {label} ({n} archs)\n" + " ".join(cmd))
                continue
            mem = scratch / f"mem_{label.replace('/', '_').replace('+', '_')}_{int(time.time())}.json"
            scratch.mkdir(parents=True, exist_ok=True)
            load_before = os.getloadavg()[0]
            rc = subprocess.call([sys.executable, str(REPO / "benchmarks" / "bench_score_memory.py"), "--out",
                                  str(mem), "--", *cmd], cwd=REPO)
            rec = json.loads(mem.read_text())
            rec.pop("samples")
            rec["command"] = f"nasbeff score ({label}, {n} archs)"
            rec.update(cpu=cpu_model(), cores=os.cpu_count(), device=args.device, load_before=round(load_before, 2),
                       load_after=round(os.getloadavg()[0], 2), ended=time.strftime("%Y-%m-%d %H:%M:%S"))
            with open(log, "a") as f:
                f.write(json.dumps({"tier": tier["name"], **rec}) + "\n")
            if rc != 0:
                print(f"{label}: nasbeff score exited with {rc}; see above")
                return rc
            if not tier_done(out, n, names):
                merge_when_ready()
                print(f"chunk time spent inside {label}; rerun to continue")
                return 0
        merge_when_ready()
    if args.dry_run:
        return 0
    if not all(map(done, cfg["tiers"])):
        print(f"the tiers {', '.join(chosen)} are done; others are left")
        return 0
    print(f"all tiers done; wrote {merge(cfg)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
