"""The embedded-default main job on scikit-learn's digits (no download, no GPU).

* :func:`rank_demo` (``nasbeff demo``): rank a few dozen seeded NB201 archs by beta_eff after a few
  epochs, by the last/best seen accuracy and by training-free proxies, against a ground truth of two
  longer seeded runs, with bootstrap CIs and the seed-noise ceiling.
* :func:`digits_demo` (``nasbeff demo --mlp``): one small MLP, beta_eff and accuracy per epoch, the
  prediction of its final accuracy checked by training on.
"""

from __future__ import annotations

import math
import os
import time
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
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


# ---------------------------------------------------------------------------------------------
# The ranking demo: a few dozen NB201 archs on digits
# ---------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class RankDemoConfig:
    """Settings of :func:`rank_demo`. Networks are NB201 cells in the NB201 macro skeleton with
    ``C`` initial channels and ``N`` cells per stage (8x8 inputs: 8 -> 4 -> 2 pixels)."""

    archs: int = 24
    epochs: int = 5  # observed under the frozen probe
    final_epochs: int = 12  # ground-truth training with the arch's own head, per seed
    truth_seeds: int = 2
    C: int = 16
    N: int = 1
    batch_size: int = 64
    lr: float = 0.1
    weight_decay: float = 5e-4
    beta_samples: int = 512
    proxies: tuple[str, ...] = ("naswot", "synflow", "snip", "params")
    proxy_batch: int = 64
    train_size: int | None = None  # None: all 1,347 training images
    n_boot: int = 1000
    seed: int = 0

    @classmethod
    def quick(cls, seed: int = 0) -> "RankDemoConfig":
        """The reduced version for CI: 6 small archs (C=8), 600 training images, 3 observed epochs and
        4 ground-truth epochs."""
        return cls(archs=6, epochs=3, final_epochs=4, C=8, N=1, beta_samples=256, train_size=600, n_boot=200,
                   seed=seed)

    def check(self) -> None:
        if self.archs < 3:
            raise ValueError(f"rank at least 3 archs, got {self.archs}")
        if self.epochs < 3:
            raise ValueError("observe at least 3 epochs: the regression needs 3 points")
        if self.final_epochs < self.epochs:
            raise ValueError(f"final_epochs ({self.final_epochs}) must be >= epochs ({self.epochs})")
        if self.truth_seeds < 2:
            raise ValueError("the noise ceiling needs at least 2 ground-truth seeds")


def _batches(x: torch.Tensor, y: torch.Tensor, batch_size: int, gen: torch.Generator):
    perm = torch.randperm(x.shape[0], generator=gen).to(x.device)
    for i in range(0, x.shape[0], batch_size):
        idx = perm[i:i + batch_size]
        yield x[idx], y[idx]


def train_plain(net: nn.Module, xt: torch.Tensor, yt: torch.Tensor, xv: torch.Tensor, yv: torch.Tensor,
                epochs: int, seed: int, lr: float = 0.1, weight_decay: float = 5e-4, batch_size: int = 64) -> float:
    """Train ``net`` with its own head (SGD, Nesterov momentum 0.9, cosine schedule; the batch
    order is seeded) and return its final validation accuracy (%): one ground-truth run."""
    gen = torch.Generator().manual_seed(seed)
    steps = math.ceil(xt.shape[0] / batch_size)
    opt = torch.optim.SGD(net.parameters(), lr=lr, momentum=0.9, nesterov=True, weight_decay=weight_decay)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: 0.5 * (1 + math.cos(math.pi * min(s / (epochs * steps), 1.0))))
    loss_fn = nn.CrossEntropyLoss()
    net.train()
    for _ in range(epochs):
        for xb, yb in _batches(xt, yt, batch_size, gen):
            loss = loss_fn(net(xb), yb)
            if not torch.isfinite(loss):
                raise FloatingPointError("non-finite training loss: lower the learning rate")
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
    return accuracy(net, xv, yv)


def _score_arch(index: int, cfg: RankDemoConfig, xt, yt, xv, yv, px, device: str = "cpu") -> dict:
    """Early run under the probe -> beta_eff prediction, LSV, BSV; proxies at init; ground truth."""
    from . import proxies as zc
    from .spaces import build_nb201_model, index_to_str

    arch = index_to_str(index)
    row: dict = {"index": index, "arch_str": arch}

    def build(seed: int) -> nn.Module:
        torch.manual_seed(seed)
        return build_nb201_model(arch, num_classes=10, in_channels=xt.shape[1], C=cfg.C, N=cfg.N).to(device)

    t0 = time.perf_counter()
    net = build(cfg.seed)
    model = attach_probe(net, num_classes=10, in_features=net.feature_dim, head="classifier", seed=cfg.seed)
    tc = TrainConfig(epochs=cfg.epochs, schedule_epochs=cfg.final_epochs, lr=cfg.lr, weight_decay=cfg.weight_decay,
                     batch_size=cfg.batch_size, beta_samples=cfg.beta_samples, seed=cfg.seed)
    recs = train_with_probe(model, xt, yt, xv, yv, tc)
    acc = [r.valid_acc for r in recs]
    try:
        row["beff_pred"] = BetaEffPredictor().fit([r.beta_eff for r in recs], acc).predict_final()[0]
    except ValueError:  # constant beta_eff (cut-off cell: the features ignore the input)
        row["beff_pred"] = last_seen_value(acc)
    row["lsv"], row["bsv"] = last_seen_value(acc), best_seen_value(acc)
    row["early_seconds"] = time.perf_counter() - t0
    init = build(cfg.seed)
    for name in cfg.proxies:
        torch.manual_seed(cfg.seed)
        try:
            res = zc.score(name, init, [px])
            row[name], row[f"{name}_seconds"] = res.value, res.seconds
        except ValueError:
            row[name], row[f"{name}_seconds"] = float("nan"), 0.0
    t1 = time.perf_counter()
    row["truth_runs"] = [train_plain(build(cfg.seed + 1 + k), xt, yt, xv, yv, cfg.final_epochs, cfg.seed + 1 + k,
                                     cfg.lr, cfg.weight_decay, cfg.batch_size) for k in range(cfg.truth_seeds)]
    row["truth"] = float(np.mean(row["truth_runs"]))
    row["truth_seconds"] = time.perf_counter() - t1
    return row


def rank_demo(cfg: RankDemoConfig = RankDemoConfig(), png: str | os.PathLike | None = "runs/demo_ranking.png",
              console: Console | None = None, device: str = "cpu") -> dict:
    """Rank ``cfg.archs`` seeded NB201 archs on digits by beta_eff (a few epochs under the frozen
    NCP, Bayesian-ridge prediction at beta_eff = 0), by LSV/BSV of the same runs and by
    training-free proxies; compare with the ground truth (mean final validation accuracy of
    ``truth_seeds`` longer runs with the arch's own head) by Spearman rho with bootstrap CIs, next to
    the noise ceiling (rho between two ground-truth seeds). Prints the table, writes the
    predicted-vs-true figure to ``png`` (None: no figure) and returns the per-arch rows and table."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from .data import NORMALIZATION, stratified_subset
    from .evaluate import correlation_table, noise_ceiling
    from .spaces import is_cut_off, sample_indices

    cfg.check()
    console = console or Console()
    t_start = time.perf_counter()
    train, valid = load_digits(seed=cfg.seed)
    if cfg.train_size is not None and cfg.train_size < len(train):
        train = stratified_subset(train, cfg.train_size, seed=cfg.seed)
    mean, std = NORMALIZATION["digits"]
    xt, yt = to_tensor(train, device, mean=mean, std=std)
    xv, yv = to_tensor(valid, device, mean=mean, std=std)
    gen = torch.Generator().manual_seed(cfg.seed)
    pick = torch.randperm(xt.shape[0], generator=gen)[:cfg.proxy_batch].to(device)
    px = (xt[pick], yt[pick])
    indices = sorted(int(i) for i in sample_indices(cfg.seed, cfg.archs))
    console.print(f"[bold]digits[/]: {len(train)} train / {len(valid)} valid 8x8 images; {cfg.archs} NB201 archs "
                  f"(seed {cfg.seed}) with C={cfg.C}, N={cfg.N} (8x8 -> 4x4 -> 2x2); {torch.get_num_threads()} "
                  f"torch threads")
    console.print(f"each arch: {cfg.epochs} epochs under the frozen NCP -> beta_eff prediction; proxies at init; "
                  f"ground truth = mean validation accuracy of {cfg.truth_seeds} runs of {cfg.final_epochs} epochs "
                  f"with its own head")
    rows = []
    cols = [TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn()]
    with Progress(*cols, console=console, transient=True) as prog, warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # beta_eff of cut-off cells is ill-conditioned (-> LSV)
        task = prog.add_task("archs", total=len(indices))
        for i in indices:
            prog.update(task, description=f"arch {i}")
            rows.append(_score_arch(i, cfg, xt, yt, xv, yv, px, device))
            prog.advance(task)
    truth = np.array([r["truth"] for r in rows])
    runs = np.array([r["truth_runs"] for r in rows])
    methods = {f"beta_eff pred. ({cfg.epochs} ep)": "beff_pred", f"LSV ({cfg.epochs} ep)": "lsv",
               f"BSV ({cfg.epochs} ep)": "bsv", **{f"{p} (init)": p for p in cfg.proxies}}
    scores = {m: np.array([r[c] for r in rows], dtype=float) for m, c in methods.items()}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # constant bootstrap resamples
        table_rows = correlation_table(scores, truth, n_boot=cfg.n_boot, seed=cfg.seed)
        ceiling = noise_ceiling(runs[:, 0], runs[:, 1])
    early_s = float(np.mean([r["early_seconds"] for r in rows]))
    cost = {"beff_pred": early_s, "lsv": early_s, "bsv": early_s,
            **{p: float(np.mean([r[f"{p}_seconds"] for r in rows])) for p in cfg.proxies}}
    table = Table(title=f"Spearman rho vs ground truth, {len(rows)} NB201 archs on digits")
    for col in ("scorer", "rho", "rho 95% CI", "Kendall tau", "s/arch"):
        table.add_column(col, justify="right" if col != "scorer" else "left")
    for tr, (m, c) in zip(table_rows, methods.items()):
        table.add_row(m, f"{tr['spearman']:+.3f}", f"[{tr['spearman_lo']:+.2f}, {tr['spearman_hi']:+.2f}]",
                      f"{tr['kendall']:+.3f}", f"{cost[c]:.2f}")
    table.add_row("noise ceiling", f"{ceiling:+.3f}", "", "", "", style="italic")
    console.print(table)
    console.print(f"noise ceiling = rho between the two ground-truth seeds (a single seed's agreement with another); "
                  f"the truth is their mean, which is less noisy, so a scorer can exceed it. LSV/BSV: last/best "
                  f"validation accuracy seen in the same {cfg.epochs} epochs; cost = seconds per arch here.")
    best = float(truth.max())
    near = int((truth >= best - 1.0).sum())
    console.print(f"ground truth: {truth.min():.1f}% .. {best:.1f}% (median {np.median(truth):.1f}%); {near} of "
                  f"{len(rows)} archs within 1 point of the best. On digits many archs tie near 97-99%, so rho "
                  f"mostly reflects the few weak archs and the seed noise among the rest: this figure shows "
                  f"little. The NB201/CIFAR-10 study (nasbeff rank, experiments/nb201_rank) is the real test.")
    cut = np.array([bool(is_cut_off(r["arch_str"])) for r in rows])
    if png:
        from .plots import predicted_vs_true

        Path(png).parent.mkdir(parents=True, exist_ok=True)
        predicted_vs_true([r["beff_pred"] for r in rows], truth, png,
                          label=f"beta_eff prediction after {cfg.epochs} epochs (%)",
                          truth_label=f"mean valid acc, {cfg.truth_seeds} x {cfg.final_epochs} epochs (%)",
                          highlight=cut, title=f"{len(rows)} NB201 archs (C={cfg.C}, N={cfg.N}) on digits")
        console.print(f"wrote {png}")
    seconds = time.perf_counter() - t_start
    console.print(f"total {seconds:.1f} s")
    return {"rows": rows, "table": table_rows, "noise_ceiling": ceiling, "seconds": seconds}
