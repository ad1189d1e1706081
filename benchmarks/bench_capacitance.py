"""Cost of beta_eff at the paper's probe scale and on whole NB201 networks, measured in one run.

Probe: features 2048 -> Linear 256 -> BN -> ReLU -> Dropout -> Linear 128 -> BN -> ReLU ->
Dropout -> Linear 10 (the NCP), N = 64 and N = 2048 samples, float32, ``local`` mode. Three
methods on the same samples, each in its own subprocess so that its peak memory is its own:

* ``matrix_free``: ``nasbeff.core.capacitance`` (row/column sums by vector-Jacobian products);
* ``explicit``: ``nasbeff.core.line_graph`` (sparse P by the vectorised path join) + ``beta_eff_from_matrix``;
* ``fwd_bwd``: one forward + backward pass of a trainable copy of the probe (loss.backward()).

Whole networks (the layer DAG): five named NB201 archs spanning sizes (C=16, N=5, CIFAR-10 head),
batch 64, float32, ``bn="batch"``, with ``dag_local`` = ``nasbeff.core.capacitance`` in local mode vs
``dag_fwd_bwd`` = one forward + backward of the network in train mode (batch statistics), and
``dag_hessian`` (the reference path) on one arch with ``--hessian``.

Prints one line per (case, method) with the median time after a warm-up and the peak memory above
the set-up, and as its LAST line ``speedup_vs_explicit=<x> beff_over_backward=<y>
dag_over_backward=<z>``: the worst case over both N and over the five archs. Run:
``python benchmarks/bench_capacitance.py [--device cuda] [--hessian]`` (2 torch threads on CPU).
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import time


def _rss_kib() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * (resource.getpagesize() // 1024)


NB201_ARCHS = {  # name -> arch string, from the largest network to the smallest
    "conv3x3_all": "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|nor_conv_3x3~0|nor_conv_3x3~1|nor_conv_3x3~2|",
    "best_6111": "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_3x3~2|",
    "resnet": "|nor_conv_3x3~0|+|none~0|nor_conv_3x3~1|+|skip_connect~0|none~1|none~2|",
    "conv1x1_all": "|nor_conv_1x1~0|+|nor_conv_1x1~0|nor_conv_1x1~1|+|nor_conv_1x1~0|nor_conv_1x1~1|nor_conv_1x1~2|",
    "pool_skip": "|avg_pool_3x3~0|+|skip_connect~0|avg_pool_3x3~1|+|skip_connect~0|avg_pool_3x3~1|skip_connect~2|",
}


def _measure(run, sync, reps: int, cuda: bool) -> tuple[float, float, object]:
    import torch

    base = _rss_kib()  # after the set-up, before the warm-up: the warm-up reaches the peak too
    run()  # warm-up
    sync()
    if cuda:
        torch.cuda.reset_peak_memory_stats()
        base_cuda = torch.cuda.memory_allocated()
    times, value = [], None
    for _ in range(reps):
        t = time.perf_counter()
        value = run()
        sync()
        times.append(time.perf_counter() - t)
    peak = (torch.cuda.max_memory_allocated() - base_cuda) / 2**20 if cuda else \
        max(0, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - base) / 1024
    return statistics.median(times), peak, value


def dag_worker(method: str, arch: str, device: str, reps: int) -> dict:
    import torch
    from torch import nn

    from nasbeff import capacitance
    from nasbeff.spaces import build_nb201_model

    torch.manual_seed(0)
    dev = torch.device(device)
    net = build_nb201_model(NB201_ARCHS[arch]).to(dev)
    x = torch.randn(64, 3, 32, 32, device=dev)
    y = torch.randint(0, 10, (64,), device=dev)

    def run():
        if method == "dag_fwd_bwd":
            net.train()
            net.zero_grad(set_to_none=True)
            loss = nn.functional.cross_entropy(net(x), y)
            loss.backward()
            return float(loss)
        return capacitance(net, x, y, mode=method.split("_")[1], bn="batch").beta_eff

    def sync():
        if dev.type == "cuda":
            torch.cuda.synchronize()

    seconds, peak, value = _measure(run, sync, reps, dev.type == "cuda")
    return {"method": method, "arch": arch, "seconds": seconds, "peak_mib": peak, "value": value,
            "threads": torch.get_num_threads(), "params": sum(p.numel() for p in net.parameters())}


def worker(method: str, n: int, device: str, reps: int) -> dict:
    import torch
    from torch import nn

    from nasbeff import capacitance
    from nasbeff.core import beta_eff_from_matrix, line_graph
    from nasbeff.core import NCP

    torch.manual_seed(0)
    dev = torch.device(device)
    probe = NCP(2048, 10, seed=0).to(dev)
    feats = torch.randn(n, 2048, device=dev).relu()
    y = torch.randint(0, 10, (n,), device=dev)
    trainable = NCP(2048, 10, seed=0).to(dev)
    for p in trainable.parameters():
        p.requires_grad = True  # bypass the frozen guard: a plain trainable copy for fwd+bwd timing
    trainable.eval()

    def run():
        if method == "matrix_free":
            return capacitance(probe, feats, y).beta_eff
        if method == "explicit":
            return beta_eff_from_matrix(line_graph(probe, feats, y, dtype=torch.float32).P)[0]
        loss = nn.functional.cross_entropy(trainable(feats), y)
        loss.backward()
        return float(loss)

    def sync():
        if dev.type == "cuda":
            torch.cuda.synchronize()

    seconds, peak, value = _measure(run, sync, reps, dev.type == "cuda")
    return {"method": method, "n": n, "seconds": seconds, "peak_mib": peak, "value": value,
            "threads": torch.get_num_threads()}


def _spawn(args: list[str], device: str) -> dict:
    out = subprocess.run([sys.executable, __file__, "--device", device, *args], capture_output=True, text=True,
                         check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--hessian", action="store_true", help="also time hessian mode on one NB201 arch (slow)")
    ap.add_argument("--worker", nargs=3, metavar=("METHOD", "N", "REPS"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.device == "cpu":
        import torch
        torch.set_num_threads(2)
    if args.worker:
        m, n, reps = args.worker
        res = dag_worker(m, n, args.device, int(reps)) if m.startswith("dag_") else worker(m, int(n), args.device, int(reps))
        print(json.dumps(res))
        return
    results = {}
    for n in (64, 2048):
        for method, reps in (("matrix_free", 20), ("explicit", 3 if n <= 64 else 1), ("fwd_bwd", 20)):
            r = _spawn(["--worker", method, str(n), str(reps)], args.device)
            results[(n, method)] = r
            print(f"N={n:5d} {method:12s} {r['seconds'] * 1e3:10.2f} ms  peak {r['peak_mib']:8.1f} MiB  "
                  f"beta_eff/loss={r['value']:.6g}  ({r['threads']} threads, {args.device})", flush=True)
    speedups, ratios = [], []
    for n in (64, 2048):
        mf = results[(n, "matrix_free")]["seconds"]
        speedups.append(results[(n, "explicit")]["seconds"] / mf)
        ratios.append(mf / results[(n, "fwd_bwd")]["seconds"])
        print(f"N={n}: speedup_vs_explicit={speedups[-1]:.1f} beff_over_backward={ratios[-1]:.2f} "
              f"(explicit vs matrix-free beta_eff: {results[(n, 'explicit')]['value']:.6g} vs "
              f"{results[(n, 'matrix_free')]['value']:.6g})")
    dag = {}
    for arch in NB201_ARCHS:
        for method in ("dag_local", "dag_fwd_bwd"):
            r = dag[(arch, method)] = _spawn(["--worker", method, arch, "5"], args.device)
            print(f"NB201 {arch:12s} {method:12s} {r['seconds'] * 1e3:10.1f} ms  peak {r['peak_mib']:8.1f} MiB  "
                  f"beta_eff/loss={r['value']:.6g}  ({r['params']} params, {r['threads']} threads)", flush=True)
        print(f"NB201 {arch}: dag_over_backward="
              f"{dag[(arch, 'dag_local')]['seconds'] / dag[(arch, 'dag_fwd_bwd')]['seconds']:.2f}", flush=True)
    if args.hessian:
        arch = "resnet"
        r = _spawn(["--worker", "dag_hessian", arch, "1"], args.device)
        print(f"NB201 {arch:12s} dag_hessian  {r['seconds'] * 1e3:10.1f} ms  peak {r['peak_mib']:8.1f} MiB  "
              f"beta_eff={r['value']:.6g}  hessian_over_backward={r['seconds'] / dag[(arch, 'dag_fwd_bwd')]['seconds']:.1f}")
    worst = max(NB201_ARCHS, key=lambda a: dag[(a, "dag_local")]["seconds"] / dag[(a, "dag_fwd_bwd")]["seconds"])
    x = dag[(worst, "dag_local")]["seconds"] / dag[(worst, "dag_fwd_bwd")]["seconds"]
    print(f"speedup_vs_explicit={min(speedups):.1f} beff_over_backward={max(ratios):.2f} dag_over_backward={x:.2f}")


if __name__ == "__main__":
    main()
