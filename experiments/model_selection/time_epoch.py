"""CPU seconds per epoch of each zoo backbone on 32 x 32 images with one torch thread, for planning:
fine-tuning under the frozen NCP (batch 64, Adam 1e-3; the select protocol) and pre-training
(batch 128, SGD; its 5-class head). Times ``--steps`` steps after one warm-up step and scales them
to an epoch of ``--images`` images; also beta_eff on 512 images and one evaluation pass of 1,000.
CPU time (``time.process_time``) rather than wall time, so that other jobs on a shared machine
inflate the numbers as little as possible; the 1-minute load average is written with them.

    python experiments/model_selection/time_epoch.py --out experiments/model_selection/timing.csv
"""

from __future__ import annotations

import argparse
import csv
import os
import time

import torch

from nasbeff.selection import zoo
from nasbeff.core import attach_probe
from nasbeff.selection import finetune_config
from nasbeff.training import EarlyTrainer, TrainConfig


def steps_seconds(trainer: EarlyTrainer, batch: int, steps: int) -> float:
    x, y = torch.randn(batch, 3, 32, 32), torch.randint(0, 5, (batch,))
    trainer.epoch([(x, y)])  # warm-up
    t0 = time.process_time()
    trainer.epoch([(x, y)] * steps)
    return (time.process_time() - t0) / steps


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=8)
    ap.add_argument("--images", type=int, default=2500)
    ap.add_argument("--models", default=",".join(zoo.ZOO))
    ap.add_argument("--out", default="runs/zoo_timing.csv")
    a = ap.parse_args()
    torch.set_num_threads(1)
    rows = []
    for name in a.models.split(","):
        torch.manual_seed(0)
        net = zoo.build(name, 5)
        params = sum(p.numel() for p in net.parameters())
        pre = steps_seconds(EarlyTrainer(net, TrainConfig(epochs=1, lr=0.05), 1), 128, max(2, a.steps // 2))
        probed = attach_probe(net, 5, net.feature_dim, head="head")
        trainer = EarlyTrainer(probed, finetune_config(30, 0), 1, probed.probe, probed.features)
        fine = steps_seconds(trainer, 64, a.steps)
        t0 = time.process_time()
        with torch.no_grad():
            probed.eval()
            for _ in range(2):
                probed(torch.randn(500, 3, 32, 32))
        evals = time.process_time() - t0
        t0 = time.process_time()
        trainer.beta(torch.randn(512, 3, 32, 32), torch.randint(0, 5, (512,)))
        beta = time.process_time() - t0
        row = {"model": name, "family": zoo.ZOO[name].family, "params": params,
               "finetune_s_per_epoch": fine * a.images / 64, "pretrain_s_per_epoch_10k": pre * 10_000 / 128,
               "eval_s_1000": evals, "beta_s_512": beta}
        rows.append(row)
        print({k: (round(v, 2) if isinstance(v, float) else v) for k, v in row.items()}, flush=True)
    rows.append({"model": "load_average_1min", "family": "", "params": "", "finetune_s_per_epoch": os.getloadavg()[0],
                 "pretrain_s_per_epoch_10k": "", "eval_s_1000": "", "beta_s_512": ""})
    os.makedirs(os.path.dirname(a.out) or ".", exist_ok=True)
    with open(a.out, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)


if __name__ == "__main__":
    main()
