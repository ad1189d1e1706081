"""CPU-vs-device agreement of beta_eff and every registered proxy, on the same weights and images.

For a lent GPU (prepared on the CPU): each NB201 arch (C=16, N=5, CIFAR-10 head) is built on the CPU
with ``torch.manual_seed(seed)``, copied to the device, and scored on the same seeded batches there
and on the CPU:

* ``beta_eff`` of the whole network (Eq. 2 with the Eq. 7 blocks, ``nasbeff.core.capacitance``,
  local mode, batch-statistics BN) and of the frozen NCP probe on random ReLU features
  (2048 -> 10, N = 512), and
* every proxy of ``nasbeff.proxies.available()`` (or ``--proxies``) through ``score_many``.

TF32 is switched off on CUDA unless ``--tf32`` (convolutions default to TF32 there, which alone moves
condition-number scores such as ``ntk``). Writes one row per (arch, quantity) with both values, the
relative difference ``|dev - cpu| / max(|cpu|, 1e-12)`` and the flags, then prints per quantity the
largest relative difference and the Kendall tau of the archs' order on the two devices (higher =
better for every proxy, so a tau of 1 means the device ranks exactly as the CPU).

    python benchmarks/device_agreement.py --device cuda --out $OUT/device_agreement.csv
    python benchmarks/device_agreement.py --device cpu --archs 2 --proxies params,naswot   # a dry run

Images: ``--data`` (any form ``nasbeff score`` reads, CIFAR-10) or, by default, seeded Gaussian
images (no file needed: the agreement does not depend on what the images show).
"""

from __future__ import annotations

import argparse
import copy
import csv
import math
import platform
import sys
import time
from pathlib import Path

import numpy as np
import torch
from scipy import stats

# from the largest network to the smallest (the five archs of bench_capacitance.py) and two more
ARCHS = {
    "conv3x3_all": "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|nor_conv_3x3~0|nor_conv_3x3~1|nor_conv_3x3~2|",
    "best_6111": "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_3x3~2|",
    "resnet": "|nor_conv_3x3~0|+|none~0|nor_conv_3x3~1|+|skip_connect~0|none~1|none~2|",
    "mixed_a": "|nor_conv_1x1~0|+|skip_connect~0|nor_conv_3x3~1|+|avg_pool_3x3~0|nor_conv_1x1~1|skip_connect~2|",
    "mixed_b": "|nor_conv_3x3~0|+|avg_pool_3x3~0|skip_connect~1|+|nor_conv_1x1~0|none~1|nor_conv_3x3~2|",
    "conv1x1_all": "|nor_conv_1x1~0|+|nor_conv_1x1~0|nor_conv_1x1~1|+|nor_conv_1x1~0|nor_conv_1x1~1|nor_conv_1x1~2|",
    "pool_skip": "|avg_pool_3x3~0|+|skip_connect~0|avg_pool_3x3~1|+|skip_connect~0|avg_pool_3x3~1|skip_connect~2|",
}
FIELDS = ["arch", "quantity", "cpu", "device", "rel_diff", "cpu_flag", "device_flag", "cpu_s", "device_s"]


def rel_diff(a: float, b: float) -> float:
    """|b - a| / max(|a|, 1e-12); 0 where both are the same infinity, inf where only one is finite."""
    if math.isinf(a) or math.isinf(b) or math.isnan(a) or math.isnan(b):
        return 0.0 if a == b else math.inf
    return abs(b - a) / max(abs(a), 1e-12)


def batches(data: str, n_batches: int, batch_size: int, seed: int) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """``n_batches`` seeded batches of CIFAR-10-shaped images: from ``data`` (normalised as ``nasbeff
    score`` does) or Gaussian."""
    if data:
        from nasbeff.runs.score import proxy_batches

        return list(proxy_batches(data, n_batches, batch_size, seed)[0])
    g = torch.Generator().manual_seed(seed)
    return [(torch.randn(batch_size, 3, 32, 32, generator=g), torch.randint(0, 10, (batch_size,), generator=g))
            for _ in range(n_batches)]


def measure(model: torch.nn.Module, data: list, proxies: list[str], device: str) -> dict[str, tuple]:
    """{quantity: (value, flag, seconds)} of one model on ``device`` (a copy of the model and the data)."""
    from nasbeff import proxies as registry
    from nasbeff.core import NCP, capacitance

    dev = torch.device(device)
    net = copy.deepcopy(model).to(dev)
    on_dev = [(x.to(dev), y.to(dev)) for x, y in data]
    out: dict[str, tuple] = {}
    t = time.perf_counter()
    out["beta_eff_network"] = (capacitance(net, *on_dev[0], bn="batch").beta_eff, "", time.perf_counter() - t)
    g = torch.Generator().manual_seed(1)
    feats = torch.randn(512, 2048, generator=g).relu()
    labels = torch.randint(0, 10, (512,), generator=g)
    probe = NCP(2048, 10, seed=0).to(dev)
    t = time.perf_counter()
    out["beta_eff_probe"] = (capacitance(probe, feats.to(dev), labels.to(dev)).beta_eff, "", time.perf_counter() - t)
    if proxies:
        for name, res in registry.score_many(proxies, net, on_dev).items():
            out[name] = (float(res.value), res.flag or "", float(res.seconds))
    return out


def kendall(rows: list[dict], quantity: str) -> float:
    pairs = [(r["cpu"], r["device"]) for r in rows if r["quantity"] == quantity
             and math.isfinite(r["cpu"]) and math.isfinite(r["device"])]
    if len(pairs) < 3:
        return math.nan
    a, b = np.array(pairs).T
    return float(stats.kendalltau(a, b).statistic) if np.ptp(a) > 0 and np.ptp(b) > 0 else math.nan


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default="cuda", help="the device compared with the CPU (cpu: a dry run)")
    ap.add_argument("--archs", type=int, default=len(ARCHS), help=f"how many of the {len(ARCHS)} archs")
    ap.add_argument("--proxies", default="", help="comma-separated (default: every registered proxy)")
    ap.add_argument("--data", default="", help="CIFAR-10 images (default: seeded Gaussian images)")
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--tf32", action="store_true", help="leave CUDA's TF32 on (off by default)")
    ap.add_argument("--out", type=Path, default=Path("runs/device_agreement.csv"))
    args = ap.parse_args(argv)
    from nasbeff import proxies as registry
    from nasbeff.spaces.nb201 import build_nb201_model

    if args.device.startswith("cuda") and not torch.cuda.is_available():
        print(f"error: --device {args.device}: CUDA is not available on this machine", file=sys.stderr)
        return 2
    if not 1 <= args.archs <= len(ARCHS):
        print(f"error: --archs must be 1..{len(ARCHS)}, got {args.archs}", file=sys.stderr)
        return 2
    names = [p.strip() for p in args.proxies.split(",") if p.strip()] or registry.available()
    unknown = sorted(set(names) - set(registry.available()))
    if unknown:
        print(f"error: unknown proxies {', '.join(unknown)}; available: {', '.join(registry.available())}",
              file=sys.stderr)
        return 2
    if args.device.startswith("cuda"):
        torch.backends.cuda.matmul.allow_tf32 = args.tf32
        torch.backends.cudnn.allow_tf32 = args.tf32
    data = batches(args.data, 2, args.batch_size, args.seed)
    rows: list[dict] = []
    for arch_name, arch_str in list(ARCHS.items())[:args.archs]:
        torch.manual_seed(args.seed)
        model = build_nb201_model(arch_str, num_classes=10)
        ref = measure(model, data, names, "cpu")
        got = measure(model, data, names, args.device)
        for q in ref:
            rows.append({"arch": arch_name, "quantity": q, "cpu": ref[q][0], "device": got[q][0],
                         "rel_diff": rel_diff(ref[q][0], got[q][0]), "cpu_flag": ref[q][1], "device_flag": got[q][1],
                         "cpu_s": ref[q][2], "device_s": got[q][2]})
        print(f"{arch_name}: done", flush=True)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    with open(args.out, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=FIELDS)
        w.writeheader()
        w.writerows(rows)
    device_name = torch.cuda.get_device_name() if args.device.startswith("cuda") else platform.processor() or "cpu"
    print(f"device {args.device} ({device_name}), torch {torch.__version__}, TF32 {'on' if args.tf32 else 'off'}; "
          f"{args.archs} archs, batch {args.batch_size}")
    print(f"{'quantity':24s} {'max rel diff':>12s} {'Kendall tau':>11s} {'cpu s':>8s} {'device s':>8s}")
    for q in dict.fromkeys(r["quantity"] for r in rows):
        mine = [r for r in rows if r["quantity"] == q]
        print(f"{q:24s} {max(r['rel_diff'] for r in mine):12.2e} {kendall(rows, q):11.3f} "
              f"{sum(r['cpu_s'] for r in mine):8.2f} {sum(r['device_s'] for r in mine):8.2f}")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
