"""The embedded-default main job on scikit-learn's digits (no download, no GPU).

* :func:`run_rank_demo` (``nasbeff demo``): rank a few dozen seeded NB201 archs by beta_eff after a
  few epochs, by the last/best seen accuracy and by training-free proxies, against a ground truth of
  two longer seeded runs, with bootstrap CIs and the seed-noise ceiling.
* :func:`run_mlp_demo` (``nasbeff demo --mlp``): one small MLP, beta_eff and accuracy per epoch,
  the prediction of its final accuracy checked by training on.
"""

from __future__ import annotations

import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import nn

from ..data.loaders import NORMALIZATION, load_digits, stratified_subset, to_tensor
from ..evaluation.correlation import correlation_table, noise_ceiling
from ..predictors import BetaFit, best_seen_value, fit_beta_curve, last_seen_value
from ..core.probe import attach_probe
from ..spaces import build_nb201_model, index_to_str, is_cut_off, sample_indices
from ..training.loop import EpochRecord, TrainConfig, accuracy, train_plain, train_with_probe
from ._common import (
    NUM_NB201_ARCHS, Progress, check_device, check_sample, check_writable, few_samples_note, no_progress,
)

# ---------------------------------------------------------------------------------------------
# The single-MLP walk-through
# ---------------------------------------------------------------------------------------------


def digits_mlp(seed: int, width: int = 128, features: int = 64) -> nn.Module:
    """A small MLP backbone for 8x8 digits: Flatten -> Linear -> ReLU -> Linear -> ReLU, with a
    ``head`` placeholder that the probe replaces."""
    torch.manual_seed(seed)
    net = nn.Sequential(nn.Flatten(), nn.Linear(64, width), nn.ReLU(), nn.Linear(width, features), nn.ReLU())
    net.add_module("head", nn.Linear(features, 10))
    return net


@dataclass(frozen=True)
class MLPDemoConfig:
    """``nasbeff demo --mlp``: observe ``epochs`` of a ``final_epochs`` run, predict its end."""

    epochs: int = 6
    final_epochs: int = 40
    seed: int = 0
    beta_samples: int = 512
    device: str = "cpu"

    def __post_init__(self) -> None:
        if self.epochs < 3:
            raise ValueError(f"observe at least 3 epochs (the regression needs 3 points), got --epochs {self.epochs}")
        if self.final_epochs < self.epochs:
            raise ValueError(f"--final-epochs ({self.final_epochs}) must be >= --epochs ({self.epochs})")
        if self.beta_samples < 1:
            raise ValueError(f"--beta-samples must be >= 1, got {self.beta_samples}")
        check_device(self.device)


@dataclass
class MLPDemoResult:
    records: list[EpochRecord]
    fit: BetaFit
    lsv: float
    bsv: float
    final_acc: float
    seconds: float
    train_size: int
    valid_size: int


def run_mlp_demo(cfg: MLPDemoConfig, on_epoch=None) -> MLPDemoResult:
    """Train under the frozen NCP for ``final_epochs`` epochs, predict the final validation
    accuracy from the first ``epochs`` at beta_eff = 0 and compare with what training reached."""
    train, valid = load_digits(seed=cfg.seed)
    xt, yt = to_tensor(train, cfg.device)
    xv, yv = to_tensor(valid, cfg.device)
    model = attach_probe(digits_mlp(cfg.seed), num_classes=10, in_features=64, head="head", seed=cfg.seed)
    model = model.to(cfg.device)
    tc = TrainConfig(epochs=cfg.final_epochs, schedule_epochs=cfg.final_epochs, lr=0.05, batch_size=64,
                     beta_samples=cfg.beta_samples, seed=cfg.seed, weight_decay=5e-4)
    t_start = time.perf_counter()
    records = train_with_probe(model, xt, yt, xv, yv, tc, on_epoch=on_epoch)
    early = records[:cfg.epochs]
    acc = [r.valid_acc for r in early]
    fit = fit_beta_curve([r.beta_eff for r in early], acc)
    return MLPDemoResult(records, fit, last_seen_value(acc), best_seen_value(acc), accuracy(model, xv, yv),
                         time.perf_counter() - t_start, len(train), len(valid))


# ---------------------------------------------------------------------------------------------
# The ranking demo: a few dozen NB201 archs on digits
# ---------------------------------------------------------------------------------------------


#: The figure of ``nasbeff demo --quick`` (the full demo writes ``runs/demo_ranking.png``).
QUICK_PNG = Path("runs/demo_quick_ranking.png")


@dataclass(frozen=True)
class RankDemoConfig:
    """Settings of :func:`run_rank_demo`, validated on construction. Networks are NB201 cells in
    the NB201 macro skeleton with ``C`` initial channels and ``N`` cells per stage (8x8 inputs:
    8 -> 4 -> 2 pixels). ``png``: the predicted-vs-true figure (None: none; :meth:`quick` writes its
    own, :data:`QUICK_PNG`, so that it never overwrites the full demo's)."""

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
    device: str = "cpu"
    png: Path | None = Path("runs/demo_ranking.png")

    @classmethod
    def quick(cls, **changes) -> "RankDemoConfig":
        """The reduced version for CI: 6 small archs (C=8), 600 training images, 3 observed epochs and
        4 ground-truth epochs."""
        base = dict(archs=6, epochs=3, final_epochs=4, C=8, N=1, beta_samples=256, train_size=600, n_boot=200,
                    png=QUICK_PNG)
        return cls(**{**base, **changes})

    def __post_init__(self) -> None:
        from .. import proxies as zc

        if self.archs < 3:
            raise ValueError(f"rank at least 3 archs, got --archs {self.archs}")
        if self.epochs < 3:
            raise ValueError(f"observe at least 3 epochs (the regression needs 3 points), got --epochs {self.epochs}")
        if self.final_epochs < self.epochs:
            raise ValueError(f"--final-epochs ({self.final_epochs}) must be >= --epochs ({self.epochs})")
        if self.truth_seeds < 2:
            raise ValueError("the noise ceiling needs at least 2 ground-truth seeds")
        if self.C < 1 or self.N < 1 or self.batch_size < 1 or self.proxy_batch < 2:
            raise ValueError("C, N and batch_size must be >= 1 and proxy_batch >= 2")
        n_train = 1347 if self.train_size is None else self.train_size
        if not 1 <= n_train <= 1347:
            raise ValueError(f"--train-size must lie in 1..1347 (digits' training split), got {n_train}")
        if not 1 <= self.beta_samples <= n_train:
            raise ValueError(f"--beta-samples must lie in 1..{n_train} (the training images), got {self.beta_samples}")
        check_sample(self.archs, NUM_NB201_ARCHS, "--archs", "the NB201 space")
        for name in self.proxies:
            zc.get(name)
        check_device(self.device)
        if self.png is not None:
            check_writable(Path(self.png), "--png")


@dataclass
class RankDemoResult:
    rows: list[dict]
    table: list[dict]  # correlation_table rows, plus "column" and "seconds" per scorer
    noise_ceiling: float
    seconds: float
    train_size: int
    valid_size: int
    png: Path | None = None
    header: list[str] = field(default_factory=list)  # what was run, in words
    notes: list[str] = field(default_factory=list)  # how to read the table, and what was flagged


def _score_arch(index: int, cfg: RankDemoConfig, xt, yt, xv, yv, px) -> dict:
    """Early run under the probe -> beta_eff prediction, LSV, BSV; proxies at init; ground truth."""
    from .. import proxies as zc

    arch = index_to_str(index)
    row: dict = {"index": index, "arch_str": arch}

    def build(seed: int) -> nn.Module:
        torch.manual_seed(seed)
        return build_nb201_model(arch, num_classes=10, in_channels=xt.shape[1], C=cfg.C, N=cfg.N).to(cfg.device)

    t0 = time.perf_counter()
    net = build(cfg.seed)
    model = attach_probe(net, num_classes=10, in_features=net.feature_dim, head="classifier", seed=cfg.seed)
    tc = TrainConfig(epochs=cfg.epochs, schedule_epochs=cfg.final_epochs, lr=cfg.lr, weight_decay=cfg.weight_decay,
                     batch_size=cfg.batch_size, beta_samples=cfg.beta_samples, seed=cfg.seed)
    recs = train_with_probe(model, xt, yt, xv, yv, tc)
    acc = [r.valid_acc for r in recs]
    try:
        row["beff_pred"], row["beff_fallback"] = fit_beta_curve([r.beta_eff for r in recs], acc).prediction, ""
    except ValueError as exc:  # constant beta_eff (cut-off cell: the features ignore the input)
        row["beff_pred"], row["beff_fallback"] = float("nan"), str(exc)
    row["beff_out_of_range"] = bool(np.isfinite(row["beff_pred"]) and not 0 <= row["beff_pred"] <= 100)
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
    row["truth_runs"] = []
    for k in range(cfg.truth_seeds):
        seed = cfg.seed + 1 + k
        truth_cfg = TrainConfig(epochs=cfg.final_epochs, lr=cfg.lr, weight_decay=cfg.weight_decay,
                                batch_size=cfg.batch_size, seed=seed)
        row["truth_runs"].append(train_plain(build(seed), xt, yt, xv, yv, truth_cfg))
    row["truth"] = float(np.mean(row["truth_runs"]))
    row["truth_seconds"] = time.perf_counter() - t1
    return row


def run_rank_demo(cfg: RankDemoConfig = RankDemoConfig(), on_progress: Progress = no_progress) -> RankDemoResult:
    """Rank ``cfg.archs`` seeded NB201 archs on digits by beta_eff (a few epochs under the frozen
    NCP, Bayesian-ridge prediction at beta_eff = 0), by LSV/BSV of the same runs and by
    training-free proxies; compare with the ground truth (mean final validation accuracy of
    ``truth_seeds`` longer runs with the arch's own head) by Spearman rho with bootstrap CIs, next
    to the noise ceiling (rho between two ground-truth seeds). Writes the figure to ``cfg.png``."""
    t_start = time.perf_counter()
    train, valid = load_digits(seed=cfg.seed)
    if cfg.train_size is not None and cfg.train_size < len(train):
        train = stratified_subset(train, cfg.train_size, seed=cfg.seed)
    mean, std = NORMALIZATION["digits"]
    xt, yt = to_tensor(train, cfg.device, mean=mean, std=std)
    xv, yv = to_tensor(valid, cfg.device, mean=mean, std=std)
    gen = torch.Generator().manual_seed(cfg.seed)
    pick = torch.randperm(xt.shape[0], generator=gen)[:cfg.proxy_batch].to(cfg.device)
    px = (xt[pick], yt[pick])
    indices = sorted(int(i) for i in sample_indices(cfg.seed, cfg.archs))
    rows = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # beta_eff of cut-off cells is ill-conditioned
        for n_done, i in enumerate(indices):
            on_progress(n_done, len(indices), f"arch {i}")
            rows.append(_score_arch(i, cfg, xt, yt, xv, yv, px))
        on_progress(len(indices), len(indices), "done")
    truth = np.array([r["truth"] for r in rows])
    runs = np.array([r["truth_runs"] for r in rows])
    methods = {f"beta_eff pred. ({cfg.epochs} ep)": "beff_pred", f"LSV ({cfg.epochs} ep)": "lsv",
               f"BSV ({cfg.epochs} ep)": "bsv", **{f"{p} (init)": p for p in cfg.proxies}}
    scores = {m: np.array([r[c] for r in rows], dtype=float) for m, c in methods.items()}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # constant bootstrap resamples
        table = correlation_table(scores, truth, n_boot=cfg.n_boot, seed=cfg.seed)
        ceiling = noise_ceiling(runs[:, 0], runs[:, 1])
    early_s = float(np.mean([r["early_seconds"] for r in rows]))
    cost = {"beff_pred": early_s, "lsv": early_s, "bsv": early_s,
            **{p: float(np.mean([r[f"{p}_seconds"] for r in rows])) for p in cfg.proxies}}
    for tr, column in zip(table, methods.values()):
        tr["column"], tr["seconds"] = column, cost[column]
    header = [f"digits: {cfg.archs} NB201 archs (seed {cfg.seed}) with C={cfg.C}, N={cfg.N} (8x8 -> 4x4 -> 2x2), "
              f"{torch.get_num_threads()} torch threads",
              f"each arch: {cfg.epochs} epochs under the frozen NCP -> beta_eff prediction; proxies at init; ground "
              f"truth = mean validation accuracy of {cfg.truth_seeds} runs of {cfg.final_epochs} epochs with its own head"]
    best = float(truth.max())
    notes = [f"noise ceiling = rho between the two ground-truth seeds; the truth is their mean, so a scorer can exceed "
             f"it. Ground truth {truth.min():.1f}% .. {best:.1f}%, {int((truth >= best - 1).sum())} of {len(rows)} "
             f"archs within 1 point of the best: on digits many archs tie near 97-99%, so rho mostly separates the "
             f"weak archs from the rest. The NB201 / CIFAR-10 study (nasbeff rank) is the real test."]
    fallbacks = [r["index"] for r in rows if r["beff_fallback"]]
    if fallbacks:
        notes.append(f"no beta_eff prediction for archs {fallbacks} (beta_eff constant: cut-off cells); they are "
                     f"left out of the beta_eff row, not given another scorer's value")
    out_of_range = [r["index"] for r in rows if r["beff_out_of_range"]]
    if out_of_range:
        notes.append(f"beta_eff predictions outside [0, 100] % for archs {out_of_range} (flagged in the rows and "
                     f"drawn on the figure's edge)")
    few = few_samples_note(min(int(r["n"]) for r in table), "archs", "bootstrap 95% CI of each rho", min_n=10)
    if few:
        notes.append(few)
    png = cfg.png
    if png is not None:
        from ..evaluation.plots import predicted_vs_true

        try:  # checked before the work (RankDemoConfig); should it fail now, the table is still shown
            Path(png).parent.mkdir(parents=True, exist_ok=True)
            predicted_vs_true([r["beff_pred"] for r in rows], truth, png,
                              label=f"beta_eff prediction after {cfg.epochs} epochs (%)",
                              truth_label=f"mean valid acc, {cfg.truth_seeds} x {cfg.final_epochs} epochs (%)",
                              highlight=np.array([bool(is_cut_off(r["arch_str"])) for r in rows]),
                              title=f"{len(rows)} NB201 archs (C={cfg.C}, N={cfg.N}) on digits")
        except OSError as exc:
            notes.append(f"the figure was not written: --png {png}: {exc.strerror or type(exc).__name__}")
            png = None
    return RankDemoResult(rows, table, ceiling, time.perf_counter() - t_start, len(train), len(valid), png, header,
                          notes)
