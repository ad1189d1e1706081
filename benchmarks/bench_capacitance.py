"""Cost of beta_eff at the paper's probe scale, measured in one run.

Probe: features 2048 -> Linear 256 -> BN -> ReLU -> Dropout -> Linear 128 -> BN -> ReLU ->
Dropout -> Linear 10 (the NCP), N = 64 and N = 2048 samples, float32, ``local`` mode. Three
methods on the same samples, each in its own subprocess so that its peak memory is its own:

* ``matrix_free``: ``nasbeff.capacitance`` (row/column sums by vector-Jacobian products);
* ``explicit``: ``nasbeff.line_graph`` (sparse P by the vectorised path join) + ``beta_eff_from_matrix``;
* ``fwd_bwd``: one forward + backward pass of a trainable copy of the probe (loss.backward()).

Prints one line per (N, method) with the median time and peak memory above the set-up, and as
its LAST line ``speedup_vs_explicit=<x> beff_over_backward=<y>``: the worst case over both N
(smallest speed-up, largest ratio). Run: ``python benchmarks/bench_capacitance.py [--device cuda]``.
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


def worker(method: str, n: int, device: str, reps: int) -> dict:
    import torch
    from torch import nn

    from nasbeff import capacitance
    from nasbeff.line_graph import beta_eff_from_matrix, line_graph
    from nasbeff.probe import NCP

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

    run()  # warm-up
    sync()
    base = _rss_kib()
    if dev.type == "cuda":
        torch.cuda.reset_peak_memory_stats()
        base_cuda = torch.cuda.memory_allocated()
    times = []
    value = None
    for _ in range(reps):
        t = time.perf_counter()
        value = run()
        sync()
        times.append(time.perf_counter() - t)
    peak = (torch.cuda.max_memory_allocated() - base_cuda) / 2**20 if dev.type == "cuda" else \
        max(0, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - base) / 1024
    return {"method": method, "n": n, "seconds": statistics.median(times), "peak_mib": peak, "value": value,
            "threads": torch.get_num_threads()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--worker", nargs=3, metavar=("METHOD", "N", "REPS"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        m, n, reps = args.worker
        print(json.dumps(worker(m, int(n), args.device, int(reps))))
        return
    results = {}
    for n in (64, 2048):
        for method, reps in (("matrix_free", 20), ("explicit", 3 if n <= 64 else 1), ("fwd_bwd", 20)):
            out = subprocess.run([sys.executable, __file__, "--device", args.device, "--worker", method, str(n), str(reps)],
                                 capture_output=True, text=True, check=True)
            r = json.loads(out.stdout.strip().splitlines()[-1])
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
    print(f"speedup_vs_explicit={min(speedups):.1f} beff_over_backward={max(ratios):.2f}")


if __name__ == "__main__":
    main()
