"""Cost of VKDNW's Jacobian ``J_n = dz_n / d theta_S`` by its two paths, measured in one run.

* ``generic``: :func:`nasbeff.proxies.vkdnw.first_weight_jacobian`, per-sample reverse mode through
  ``functional_call`` (every weight's whole gradient, C times per sample, to read one element);
* ``activations``: :func:`nasbeff.proxies.vkdnw.activation_jacobian`, one forward with hooks and one
  input-gradient backward per class (what ``vkdnw`` uses when the model allows it).

NB201 networks (C=16, N=5) of three named archs, eval mode as VKDNW prepares them (``kaiming_normal_fanin``,
seed 0), batch 64 of 32x32 images, 10 and 100 classes (CIFAR-10 and CIFAR-100 heads). Prints one line per
(arch, classes) with the best of ``--repeats`` times of each path, the ratio and the largest relative
difference of the two Jacobians, and as its LAST line ``worst_speedup_c10=<x> worst_speedup_c100=<y>
max_rel_diff=<z>``. Run: ``python benchmarks/bench_vkdnw_jacobian.py [--threads 2] [--repeats 2]``.
"""

from __future__ import annotations

import argparse
import time

import torch

from nasbeff.proxies._common import prepared_copy
from nasbeff.proxies.vkdnw import activation_jacobian, first_weight_jacobian
from nasbeff.spaces.nb201 import build_nb201_model

ARCHS = {  # name -> arch string: the largest network, a mixed one, a small one
    "conv3x3_all": "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|nor_conv_3x3~0|nor_conv_3x3~1|nor_conv_3x3~2|",
    "arch_1015": "|nor_conv_3x3~0|+|avg_pool_3x3~0|nor_conv_1x1~1|+|avg_pool_3x3~0|avg_pool_3x3~1|nor_conv_3x3~2|",
    "arch_1033": "|nor_conv_1x1~0|+|nor_conv_1x1~0|avg_pool_3x3~1|+|none~0|nor_conv_1x1~1|avg_pool_3x3~2|",
}


def best_time(fn, repeats: int) -> tuple[float, object]:
    times, out = [], None
    for _ in range(repeats):
        t0 = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t0)
    return min(times), out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--batch", type=int, default=64)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    x = torch.randn(args.batch, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    worst = {10: float("inf"), 100: float("inf")}
    max_rel = 0.0
    for classes in worst:
        for name, arch in ARCHS.items():
            net = prepared_copy(build_nb201_model(arch, num_classes=classes), "kaiming_normal_fanin", 0, "vkdnw",
                                train=False)
            t_gen, (jac, _names) = best_time(lambda: first_weight_jacobian(net, x), args.repeats)
            t_act, fast = best_time(lambda: activation_jacobian(net, x), args.repeats)
            if fast is None:
                raise SystemExit(f"{name}: activation_jacobian declined an NB201 network")
            rel = float((fast[0] - jac).abs().max() / jac.abs().max())
            max_rel = max(max_rel, rel)
            worst[classes] = min(worst[classes], t_gen / t_act)
            print(f"{name} classes={classes} generic_s={t_gen:.2f} activations_s={t_act:.2f} "
                  f"speedup={t_gen / t_act:.2f} max_rel_diff={rel:.1e}", flush=True)
    print(f"worst_speedup_c10={worst[10]:.2f} worst_speedup_c100={worst[100]:.2f} max_rel_diff={max_rel:.1e}")


if __name__ == "__main__":
    main()
