"""The embedded-default main job: beta_eff on scikit-learn's digits, no download, no GPU."""

from __future__ import annotations

import time

import torch
from rich.console import Console
from rich.table import Table
from torch import nn

from .data import load_digits, to_tensor
from .predict import BetaEffPredictor, best_seen_value, last_seen_value
from .probe import attach_probe
from .train import TrainConfig, accuracy, train_with_probe


def digits_mlp(seed: int, width: int = 128, features: int = 64) -> nn.Module:
    """A small MLP backbone for 8x8 digits: Flatten -> Linear -> ReLU -> Linear -> ReLU, with a
    ``head`` placeholder that the probe replaces."""
    torch.manual_seed(seed)
    net = nn.Sequential(nn.Flatten(), nn.Linear(64, width), nn.ReLU(), nn.Linear(width, features), nn.ReLU())
    net.add_module("head", nn.Linear(features, 10))
    return net


def digits_demo(epochs: int = 6, final_epochs: int = 40, seed: int = 0, beta_samples: int = 512,
                device: str = "cpu", console: Console | None = None) -> dict:
    """Train under the frozen NCP for ``epochs``, predict the accuracy of the ``final_epochs`` run
    at beta_eff = 0, then continue to ``final_epochs`` and report the prediction's error."""
    console = console or Console()
    if epochs < 3:
        raise ValueError("observe at least 3 epochs: the regression needs 3 points")
    if final_epochs < epochs:
        raise ValueError("final_epochs must be >= epochs")
    train, valid = load_digits(seed=seed)
    xt, yt = to_tensor(train, device)
    xv, yv = to_tensor(valid, device)
    model = attach_probe(digits_mlp(seed), num_classes=10, in_features=64, head="head", seed=seed).to(device)
    cfg = TrainConfig(epochs=final_epochs, schedule_epochs=final_epochs, lr=0.05, batch_size=64,
                      beta_samples=beta_samples, seed=seed, weight_decay=5e-4)
    console.print(f"[bold]digits[/]: {len(train)} train / {len(valid)} valid images, MLP backbone + frozen NCP "
                  f"(Linear 256-BN-ReLU-Dropout, Linear 128-BN-ReLU-Dropout, Linear 10)")
    table = Table(title=f"first {epochs} epochs (of a {final_epochs}-epoch schedule)")
    for col in ("epoch", "train loss", "valid acc %", "beta_eff", "train s", "beta_eff s"):
        table.add_column(col, justify="right")
    records = []
    t_start = time.perf_counter()

    def on_epoch(rec):
        records.append(rec)
        if rec.epoch <= epochs:
            table.add_row(str(rec.epoch), f"{rec.train_loss:.4f}", f"{rec.valid_acc:.2f}", f"{rec.beta_eff:.5g}",
                          f"{rec.seconds_train:.3f}", f"{rec.seconds_beta:.3f}")

    train_with_probe(model, xt, yt, xv, yv, cfg, on_epoch=on_epoch)
    console.print(table)
    early = records[:epochs]
    beta = [r.beta_eff for r in early]
    acc = [r.valid_acc for r in early]
    pred = BetaEffPredictor().fit(beta, acc)
    mean, std = pred.predict_final()
    final = accuracy(model, xv, yv)
    out = {"beff_pred": mean, "beff_std": std, "t0": pred.t0_, "lsv": last_seen_value(acc),
           "bsv": best_seen_value(acc), "final_acc": final, "seconds": time.perf_counter() - t_start}
    summary = Table(title=f"predicting the epoch-{final_epochs} validation accuracy from {epochs} epochs")
    for col in ("predictor", "prediction %", "error vs final %"):
        summary.add_column(col, justify="right")
    summary.add_row(f"beta_eff -> 0 (Bayesian ridge, t0={pred.t0_})", f"{mean:.2f} +- {std:.2f}", f"{mean - final:+.2f}")
    summary.add_row("last seen value", f"{out['lsv']:.2f}", f"{out['lsv'] - final:+.2f}")
    summary.add_row("best seen value", f"{out['bsv']:.2f}", f"{out['bsv'] - final:+.2f}")
    console.print(summary)
    console.print(f"final validation accuracy after {final_epochs} epochs: [bold]{final:.2f}%[/]  "
                  f"(beta_eff at the end: {records[-1].beta_eff:.4g}; total {out['seconds']:.1f} s)")
    return out
