"""The NB201 ranking study: train each architecture a few epochs on real CIFAR-10 under the frozen
NCP, record beta_eff and validation accuracy per epoch in a resumable store, predict the final
accuracy at beta_eff = 0, and write one row per architecture.

Resumption: after every epoch the trainer state (model, optimizer, schedule, RNG) is saved
atomically to ``<store dir>/checkpoints/`` together with that epoch's metrics, then the metrics are
committed to the :class:`~nasbeff.store.ResultStore`. A run killed at any moment restarts from
the last checkpoint; an epoch checkpointed but not yet committed is committed from the checkpoint,
so nothing is lost and no epoch is trained twice. Finished architectures are skipped.

Data protocol (NB201's ``cifar10-valid`` setting, reduced): train on a seeded class-balanced subset
of the 25k training half, measure validation accuracy on a seeded subset of the x-valid half
(never the test set), beta_eff on ``beta_samples`` fixed training images. The learning-rate
schedule is NB201's (cosine over 200 epochs), so the first epochs are the benchmark's first epochs.
"""

from __future__ import annotations

import math
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable, Iterable, Literal, Sequence

import torch

from .checkpoint import load_checkpoint, save_checkpoint
from .datasets import check_subset_size
from .data import ImageSet, dataset_stats, eval_batches, load_dataset, stratified_subset, train_batches
from .predictors import best_seen_value, fit_beta_curve, last_seen_value
from .probe import NCP
from .spaces import build_nb201_model, index_to_str, is_cut_off
from .store import ResultStore, RunKey, config_hash
from .train import MODES, PLACEMENTS, EarlyTrainer, EpochRecord, TrainConfig, beta_subset

SCORER = "beff-train"


@dataclass(frozen=True)
class StudyConfig:
    """Everything that determines a study's numbers (hashed into the store key)."""

    epochs: int = 5
    schedule_epochs: int = 200
    train_size: int = 5000
    valid_size: int = 2000
    batch_size: int = 128
    lr: float = 0.1
    weight_decay: float = 5e-4
    beta_samples: int = 512
    placement: Literal["head", "side"] = "head"
    mode: Literal["local", "hessian"] = "local"
    probe_hidden: tuple[int, ...] = (256, 128)
    probe_bn_position: Literal["before", "after"] = "after"
    seed: int = 0
    data_seed: int = 0
    dataset: str = "cifar10-valid"
    protocol: int = 1
    extra_beta_samples: tuple[int, ...] = ()  # also record beta_eff on these sample sizes (knob study)

    def __post_init__(self) -> None:
        """Every value checked here, before any data is loaded (one clear line each)."""
        self.train_config()  # epochs, schedule_epochs, lr, batch_size, mode, placement
        if self.placement not in PLACEMENTS or self.mode not in MODES:
            raise ValueError(f"placement/mode must be one of {PLACEMENTS}/{MODES}")
        if self.probe_bn_position not in ("before", "after"):
            raise ValueError(f"probe_bn_position must be before or after, got {self.probe_bn_position!r}")
        if self.train_size < 1 or self.valid_size < 1:
            raise ValueError(f"train_size and valid_size must be >= 1, got {self.train_size}, {self.valid_size}")
        check_subset_size(self.dataset, "train", self.train_size, "--train-size")
        check_subset_size(self.dataset, "x-valid", self.valid_size, "--valid-size")
        for n in (self.beta_samples, *self.extra_beta_samples):
            if not 1 <= n <= self.train_size:
                raise ValueError(f"--beta-samples {n} must lie in 1..--train-size ({self.train_size})")

    def train_config(self) -> TrainConfig:
        return TrainConfig(epochs=self.epochs, schedule_epochs=self.schedule_epochs, lr=self.lr,
                           weight_decay=self.weight_decay, batch_size=self.batch_size, beta_samples=self.beta_samples,
                           seed=self.seed, mode=self.mode, placement=self.placement)

    def to_dict(self) -> dict:
        d = asdict(self)
        d["probe_hidden"] = list(self.probe_hidden)
        if not self.extra_beta_samples:  # absent by default so that earlier stores keep their hash
            del d["extra_beta_samples"]
        else:
            d["extra_beta_samples"] = list(self.extra_beta_samples)
        return d

    @property
    def hash(self) -> str:
        return config_hash(self.to_dict())


@dataclass
class StudyData:
    train: ImageSet
    valid: ImageSet
    mean: tuple[float, ...] = field(default_factory=tuple)
    std: tuple[float, ...] = field(default_factory=tuple)


def load_study_data(root: str | os.PathLike, cfg: StudyConfig, cache_dir: str | os.PathLike | None = None) -> StudyData:
    """CIFAR-10 (``cifar10-valid`` halves) from ``root``, reduced to the configured subsets."""
    train, valid = load_dataset(cfg.dataset, root, ("train", "x-valid"), cache_dir=cache_dir, seed=cfg.data_seed)
    if cfg.train_size < len(train):
        train = stratified_subset(train, cfg.train_size, seed=cfg.data_seed)
    if cfg.valid_size < len(valid):
        valid = stratified_subset(valid, cfg.valid_size, seed=cfg.data_seed + 1)
    mean, std = dataset_stats("cifar10")
    return StudyData(train, valid, tuple(mean), tuple(std))


def run_key(index: int, cfg: StudyConfig) -> RunKey:
    return RunKey(space="nb201", arch=str(int(index)), dataset=cfg.dataset, scorer=SCORER, config_hash=cfg.hash,
                  seed=cfg.seed)


def _channels_last(batches):
    """Batches in channels-last layout: faster convolutions on CPU (oneDNN) and GPU tensor cores."""
    for x, y in batches:
        yield x.contiguous(memory_format=torch.channels_last), y


def train_arch(index: int, data: StudyData, cfg: StudyConfig, store: ResultStore, ckpt_dir: Path,
               device: str = "cpu", on_epoch: Callable[[int, dict], None] | None = None) -> list[dict]:
    """Train one NB201 arch (resuming from its checkpoint) with :meth:`EarlyTrainer.run`,
    checkpointing then committing each epoch; returns the per-epoch metrics of all epochs."""
    key = run_key(index, cfg)
    store.save_config(cfg.to_dict())
    if store.is_done(key):
        return [r.metrics for r in store.rows(**key.as_filter())]
    dev = torch.device(device)
    torch.manual_seed(cfg.seed)
    net = build_nb201_model(index_to_str(index), num_classes=10, in_channels=data.train.images.shape[-1]).to(dev)
    net = net.to(memory_format=torch.channels_last)
    probe = NCP(net.feature_dim, 10, hidden=cfg.probe_hidden, bn_position=cfg.probe_bn_position, seed=cfg.seed).to(dev)
    tb = train_batches(data.train, cfg.batch_size, device=dev, mean=data.mean, std=data.std, seed=cfg.seed)
    vb = eval_batches(data.valid, 500, device=dev, mean=data.mean, std=data.std)
    trainer = EarlyTrainer.for_network(net, probe, cfg.train_config(), len(tb))

    def beta_batch(n: int) -> tuple[torch.Tensor, torch.Tensor]:
        """The fixed, seeded training images (normalised, no augmentation) for beta_eff."""
        sub = beta_subset(len(data.train), n, cfg.seed).numpy()
        return next(iter(eval_batches(data.train.subset(sub), len(sub), device=dev, mean=data.mean, std=data.std)))

    ckpt = ckpt_dir / f"nb201-{index}-{cfg.hash}-s{cfg.seed}.pt"
    done = set(store.epochs_done(key))
    if ckpt.exists():
        state = load_checkpoint(ckpt, map_location=dev)
        trainer.load_state_dict(state["trainer"])
        if state["epoch"] not in done:  # checkpointed, killed before the commit
            store.record_epoch(key, state["epoch"], state["metrics"])

    def commit(rec: EpochRecord) -> None:
        if rec.beta_eff is None or not math.isfinite(rec.beta_eff):
            raise FloatingPointError(f"arch {index}: non-finite beta_eff at epoch {rec.epoch}")
        metrics = rec.metrics()
        ckpt_dir.mkdir(parents=True, exist_ok=True)
        store.check_lease()  # a worker whose run lost the lease must not overwrite the checkpoint
        save_checkpoint(ckpt, {"epoch": rec.epoch, "metrics": metrics, "trainer": trainer.state_dict()})
        store.record_epoch(key, rec.epoch, metrics)
        if on_epoch is not None:
            on_epoch(rec.epoch, metrics)

    trainer.run(cfg.epochs, lambda e: _channels_last(tb.epoch(e)), lambda: _channels_last(vb.epoch(0)),
                beta_batch(cfg.beta_samples), {n: beta_batch(n) for n in cfg.extra_beta_samples}, on_epoch=commit)
    store.mark_done(key)
    ckpt.unlink(missing_ok=True)
    return [r.metrics for r in store.rows(**key.as_filter())]


def summarize(store: ResultStore, indices: Iterable[int], cfg: StudyConfig, epochs: int | None = None) -> list[dict]:
    """One row per finished arch: ``index, arch_str, epochs_observed, beff_pred, beff_std, t0,
    beff_fallback, beff_out_of_range, lsv, bsv, gpu_seconds`` (device seconds of training + evaluation + beta_eff; on a CPU run these are
    CPU seconds), ``beta_seconds``, ``beta_overhead`` (beta_eff time / training time), ``cut_off``."""
    rows = []
    k = epochs or cfg.epochs
    for index in indices:
        key = run_key(index, cfg)
        recs = sorted(store.rows(**key.as_filter()), key=lambda r: r.epoch)
        recs = [r for r in recs if 1 <= r.epoch <= k]
        if len(recs) < k:
            continue
        rows.append(summarize_curve(index, [r.metrics for r in recs]))
    return rows


def summarize_curve(index: int, metrics: Sequence[dict]) -> dict:
    """One arch's row from its per-epoch metrics (see :func:`summarize`). When the beta_eff
    predictor cannot fit the curve (fewer than 3 epochs, beta_eff constant), ``beff_pred`` is NaN
    and ``beff_fallback`` says why; ``beff_out_of_range`` flags a prediction outside [0, 100] %."""
    acc = [x["valid_acc"] for x in metrics]
    beta = [x["beta_eff"] for x in metrics]
    try:
        fit = fit_beta_curve(beta, acc)
        mean, std, t0, why = fit.prediction, fit.std, fit.t0, ""
    except ValueError as exc:
        mean, std, t0, why = float("nan"), float("nan"), -1, str(exc)
    train_s = sum(x["seconds_train"] for x in metrics)
    beta_s = sum(x["seconds_beta"] for x in metrics)
    return {"index": int(index), "arch_str": index_to_str(index), "epochs_observed": len(metrics),
            "beff_pred": mean, "beff_std": std, "t0": t0, "beff_fallback": why,
            "beff_out_of_range": bool(math.isfinite(mean) and not 0.0 <= mean <= 100.0),
            "lsv": last_seen_value(acc), "bsv": best_seen_value(acc),
            "gpu_seconds": train_s + beta_s + sum(x["seconds_eval"] for x in metrics),
            "beta_seconds": beta_s, "beta_overhead": beta_s / train_s if train_s else float("nan"),
            "final_beta_eff": beta[-1], "cut_off": bool(is_cut_off(index_to_str(index)))}
