"""Cost of one rank unit (one NB201 arch of ``nasbeff rank``) on this machine, one thread.

For each candidate protocol point (input side r, width C, cells N) and a handful of seeded archs
of 0..199, runs the real unit (:func:`nasbeff.training.nb201_study.train_arch`: build, train, validate, beta_eff
per epoch and at ``--beta-points`` steps, checkpoint, commit) for ``--epochs`` epochs of
``--train-size`` images and splits its time:

* ``train``: the optimizer steps (``seconds_train``), reported as images/second/core;
* ``valid``: validation after each epoch (``seconds_eval``), per 1,000 images;
* ``beta``: beta_eff per epoch (``seconds_beta``) and at the points (``seconds_points``, which
  include the points' validation), per measurement;
* ``other``: the rest of the unit's wall time (network build, checkpoints, store);
* ``decode``: loading and subsetting the data once per worker (not per arch; decoded-data cache warm).

From these it prints the predicted seconds per arch of a full protocol (``--plan-*``: epochs,
train size, points) as ``epochs * train_size / rate + ...``. ``--compile`` also times
``torch.compile`` on the training step of the first point (eager vs compiled, after warm-up,
compilation time reported separately). Writes a text report (machine, torch, threads, lines per
point) to ``--out``. Run: ``python benchmarks/bench_training.py --data PATH`` (defaults measure 5
points x 4 archs: about 10 minutes on one thread of a 2-core x86_64).
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import tempfile
import time
from pathlib import Path

import torch

from nasbeff.executors import cpu_model
from nasbeff.spaces import build_nb201_model, index_to_str
from nasbeff.store import ResultStore
from nasbeff.training.nb201_study import StudyConfig, load_study_data, train_arch

POINTS = ((16, 8, 1), (16, 8, 2), (16, 16, 5), (32, 8, 2), (32, 16, 5))


def machine() -> str:
    cpu = cpu_model()
    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "no GPU"
    return (f"{platform.machine()}, {os.cpu_count()} cores ({cpu}), {gpu}; torch {torch.__version__}, "
            f"{torch.get_num_threads()} torch thread(s), Python {platform.python_version()}; load average at start "
            f"{os.getloadavg()[0]:.2f} (a shared machine: other processes slow every number below)")


def unit_costs(data_root: str, r: int, c: int, n: int, archs: list[int], args) -> dict:
    """Per-arch time split of the real unit at one point (medians over ``archs``)."""
    cfg = StudyConfig(epochs=args.epochs, schedule_epochs=max(args.epochs, 200), train_size=args.train_size,
                      valid_size=args.valid_size, batch_size=args.batch_size, beta_samples=args.beta_samples,
                      resolution=r, init_channels=c, cells=n, beta_points=args.beta_points, beta_bn=args.beta_bn)
    t0 = time.perf_counter()
    data = load_study_data(data_root, cfg)
    decode = time.perf_counter() - t0
    parts: dict[str, list[float]] = {k: [] for k in ("train", "valid", "beta", "points", "wall", "params", "other")}
    with tempfile.TemporaryDirectory() as tmp, ResultStore(Path(tmp) / "b.sqlite") as st:
        for a in archs:
            t1 = time.perf_counter()
            ms = train_arch(a, data, cfg, st, Path(tmp) / "ck")
            parts["wall"].append(time.perf_counter() - t1)
            parts["train"].append(sum(m["seconds_train"] for m in ms))
            parts["valid"].append(sum(m["seconds_eval"] for m in ms))
            parts["beta"].append(sum(m["seconds_beta"] for m in ms))
            parts["points"].append(sum(m.get("seconds_points", 0.0) for m in ms))
            parts["other"].append(parts["wall"][-1] - sum(parts[k][-1] for k in ("train", "valid", "beta", "points")))
            net = build_nb201_model(index_to_str(a), C=c, N=n)
            parts["params"].append(sum(p.numel() for p in net.parameters()) / 1e6)
    med = {k: statistics.median(v) for k, v in parts.items()}
    imgs = args.epochs * args.train_size
    med.update(decode=decode, img_per_s=imgs / med["train"],
               valid_per_1k=med["valid"] / (args.epochs * args.valid_size / 1000),
               beta_each=med["beta"] / args.epochs,
               point_each=med["points"] / max(1, args.beta_points))
    plan_imgs = args.plan_epochs * args.plan_train_size
    med["plan_s"] = (plan_imgs / med["img_per_s"] + args.plan_epochs * args.valid_size / 1000 * med["valid_per_1k"]
                     + args.plan_epochs * med["beta_each"] + args.plan_points * med["point_each"] + med["other"])
    return med


def compile_speedup(r: int, c: int, n: int, batch: int, steps: int = 20) -> str:
    """Training-step time of one arch, eager vs ``torch.compile`` (after 3 warm-up steps)."""
    net = build_nb201_model(index_to_str(1000), C=c, N=n).to(memory_format=torch.channels_last)
    x = torch.randn(batch, 3, r, r).contiguous(memory_format=torch.channels_last)
    y = torch.randint(0, 10, (batch,))
    out = []
    for name in ("eager", "compiled"):
        model = net if name == "eager" else torch.compile(net)
        opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
        t0 = time.perf_counter()
        for i in range(steps + 3):
            if i == 3:
                warm, t0 = time.perf_counter() - t0, time.perf_counter()
            loss = torch.nn.functional.cross_entropy(model(x), y)
            opt.zero_grad()
            loss.backward()
            opt.step()
        step = (time.perf_counter() - t0) / steps
        out.append(f"{name} {1000 * step:.1f} ms/step (first 3 steps {warm:.1f} s)")
    return f"torch.compile, r={r} C={c} N={n} batch {batch}: " + "; ".join(out)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default=str(Path(__file__).resolve().parents[1].parent / "shared/data/cifar10/"
                                         "cifar10_jpeg.tar.gz"))
    ap.add_argument("--points", default=";".join(",".join(map(str, p)) for p in POINTS),
                    help="r,C,N;r,C,N;... candidate points")
    ap.add_argument("--archs", default="", help="arch indices (default: 4 seeded of 0..199)")
    ap.add_argument("--epochs", type=int, default=1)
    ap.add_argument("--train-size", type=int, default=1000)
    ap.add_argument("--valid-size", type=int, default=500)
    ap.add_argument("--batch-size", type=int, default=128)
    ap.add_argument("--beta-samples", type=int, default=256)
    ap.add_argument("--beta-points", type=int, default=2)
    ap.add_argument("--beta-bn", default="batch")
    ap.add_argument("--plan-epochs", type=int, default=5)
    ap.add_argument("--plan-train-size", type=int, default=10000)
    ap.add_argument("--plan-points", type=int, default=15)
    ap.add_argument("--compile", action="store_true")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--out", default="")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    import numpy as np

    archs = [int(a) for a in args.archs.split(",")] if args.archs else \
        sorted(int(a) for a in np.random.default_rng(0).choice(200, 4, replace=False))
    lines = [f"machine: {machine()}",
             f"unit: {args.epochs} epoch(s) x {args.train_size} train images (batch {args.batch_size}), "
             f"{args.valid_size} valid, beta_eff on {args.beta_samples} ({args.beta_bn} BN) per epoch + "
             f"{args.beta_points} points; archs {archs}; medians over archs",
             f"plan_s: predicted seconds per arch for {args.plan_epochs} epochs x {args.plan_train_size} images, "
             f"{args.valid_size} valid per epoch, {args.plan_points} points"]
    print("\n".join(lines), flush=True)
    for spec in args.points.split(";"):
        r, c, n = (int(v) for v in spec.split(","))
        m = unit_costs(args.data, r, c, n, archs, args)
        line = (f"r={r:2d} C={c:2d} N={n}: params {m['params']:.3f} M, train {m['img_per_s']:7.0f} img/s/core, "
                f"valid {m['valid_per_1k']:.2f} s/1k img, beta {m['beta_each']:.2f} s each, point "
                f"{m['point_each']:.2f} s each, other {m['other']:.2f} s, decode {m['decode']:.1f} s/worker, "
                f"unit wall {m['wall']:.1f} s -> plan_s {m['plan_s']:.0f} s/arch")
        lines.append(line)
        print(line, flush=True)
    if args.compile:
        r, c, n = (int(v) for v in args.points.split(";")[0].split(","))
        lines.append(compile_speedup(r, c, n, args.batch_size))
        print(lines[-1], flush=True)
    if args.out:
        Path(args.out).write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
