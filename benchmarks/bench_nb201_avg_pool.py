"""Cost of NB201's ``avg_pool_3x3`` backward: torch's ``nn.AvgPool2d(count_include_pad=False)`` against
:class:`nasbeff.spaces.AvgPoolExcludingPad` (the same forward; the gradient as a grouped ones-kernel
convolution's input gradient), measured in one run, paired, on the same networks, weights and images.

Workloads on NB201 networks (C=16, N=5, 10 classes, batch 64 of 32x32 images, init seed 0): ``ntk``
(one batch forward, 64 whole-batch backward passes), ``grasp`` (a double backward), ``vkdnw`` (one
input-gradient backward per class) and one SGD ``train_step`` (forward, backward, update: the
training loop of beta_eff's protocols). Three archs: every cell edge a pool, a mixed cell with three
pools (arch 1015) and one with two (arch 1033). Prints one line per (arch, workload) with the best of
``--repeats`` times of each pool, the ratio and the relative difference of the values, and as its LAST
line ``worst_speedup=<x> best_speedup=<y> max_rel_diff=<z>``.
Run: ``python benchmarks/bench_nb201_avg_pool.py [--threads 2] [--repeats 2]``.
"""

from __future__ import annotations

import argparse
import time

import torch
from torch import nn

from nasbeff.proxies import score
from nasbeff.spaces import AvgPoolExcludingPad, build_nb201_model

ARCHS = {
    "avg_pool_all": "|avg_pool_3x3~0|+|avg_pool_3x3~0|avg_pool_3x3~1|+|avg_pool_3x3~0|avg_pool_3x3~1|avg_pool_3x3~2|",
    "arch_1015": "|nor_conv_3x3~0|+|avg_pool_3x3~0|nor_conv_1x1~1|+|avg_pool_3x3~0|avg_pool_3x3~1|nor_conv_3x3~2|",
    "arch_1033": "|nor_conv_1x1~0|+|nor_conv_1x1~0|avg_pool_3x3~1|+|none~0|nor_conv_1x1~1|avg_pool_3x3~2|",
}
WORKLOADS = ("ntk", "grasp", "vkdnw", "train_step")


def with_torch_pool(net: nn.Module) -> nn.Module:
    """``net`` with every :class:`AvgPoolExcludingPad` replaced by torch's own module (same geometry)."""
    for mod in list(net.modules()):
        for name, child in mod.named_children():
            if isinstance(child, AvgPoolExcludingPad):
                setattr(mod, name, nn.AvgPool2d(child.kernel_size, child.stride, child.padding,
                                                count_include_pad=False))
    return net


def run(workload: str, arch: str, torch_pool: bool, x: torch.Tensor, y: torch.Tensor) -> float:
    torch.manual_seed(0)
    net = build_nb201_model(arch, num_classes=10)
    if torch_pool:
        with_torch_pool(net)
    if workload != "train_step":
        return float(score(workload, net, [(x, y)]).value)
    net.train()
    opt = torch.optim.SGD(net.parameters(), lr=0.1, momentum=0.9)
    loss = nn.functional.cross_entropy(net(x), y)
    loss.backward()
    opt.step()
    return float(loss)


def best_time(fn, repeats: int) -> tuple[float, float]:
    times, out = [], float("nan")
    for _ in range(repeats):
        t0 = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t0)
    return min(times), out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--workloads", default=",".join(WORKLOADS))
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    gen = torch.Generator().manual_seed(0)
    x, y = torch.randn(64, 3, 32, 32, generator=gen), torch.randint(0, 10, (64,), generator=gen)
    speedups, max_rel = [], 0.0
    for name, arch in ARCHS.items():
        for work in args.workloads.split(","):
            t_torch, v_torch = best_time(lambda: run(work, arch, True, x, y), args.repeats)
            t_fast, v_fast = best_time(lambda: run(work, arch, False, x, y), args.repeats)
            rel = abs(v_fast - v_torch) / max(abs(v_torch), 1e-30)
            max_rel = max(max_rel, rel)
            speedups.append(t_torch / t_fast)
            print(f"{name} {work} torch_pool_s={t_torch:.2f} fast_pool_s={t_fast:.2f} "
                  f"speedup={t_torch / t_fast:.2f} rel_diff={rel:.1e}", flush=True)
    print(f"worst_speedup={min(speedups):.2f} best_speedup={max(speedups):.2f} max_rel_diff={max_rel:.1e}")


if __name__ == "__main__":
    main()
