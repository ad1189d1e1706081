"""The NB201 ranking study: train each architecture a few epochs on real images (CIFAR-10 by default;
``dataset`` CIFAR-100 or ImageNet16-120: that dataset's classes in the head and the probe, its
normalisation) under the frozen NCP, record beta_eff and validation accuracy per epoch in a resumable store, predict the final
accuracy at beta_eff = 0, and write one row per architecture.

Resumption: after every epoch the trainer state (model, optimizer, schedule, RNG) is saved
atomically to ``<store dir>/checkpoints/<store file>/`` together with that epoch's metrics (stamped with
the store's id and the unit's key: :class:`~nasbeff.training.checkpoint.UnitCheckpoint`), then the metrics are
committed to the :class:`~nasbeff.store.ResultStore`. A run killed at any moment restarts from
the last checkpoint; an epoch checkpointed but not yet committed is committed from the checkpoint,
so nothing is lost and no epoch is trained twice. Finished architectures are skipped.

Data protocol (NB201's ``cifar10-valid`` setting, reduced): train on a seeded class-balanced subset
of the 25k training half, measure validation accuracy on a seeded subset of the x-valid half
(never the test set), beta_eff on ``beta_samples`` fixed training images. CIFAR-100 and
ImageNet16-120 from their own files: the ``train`` split and the ``x-valid`` half of the test set.
With ``pool`` (the images are one ``.npz``, e.g. the shared 5,000 CIFAR-100 images), train and
validation images are a seeded class-stratified split of that one set (:func:`pool_split`):
the validation accuracy is then on held-out images of the same set, not the dataset's own split. The learning-rate
schedule is NB201's (cosine over 200 epochs), so the first epochs are the benchmark's first epochs.

Protocol knobs (named presets in :mod:`nasbeff.training.protocols`): ``resolution`` (images are
box-filtered down once, at load, as one tensor operation; the crop padding scales with it,
``round(4 r / 32)``), width ``init_channels`` (C) and ``cells`` (N) of the NB201 network, the
sizes, epochs, schedule and batch size above.

Observations per epoch: ``train_loss`` (mean), ``train_loss_sum`` (sum of the epoch's step losses:
TSE and friends), ``valid_acc``, ``beta_eff`` with ``beta_num``, ``beta_den`` and
``beta_den_rel = |den| / sum_l |1^T B_l 1|`` (1 when every block sum has den's sign; near 0 when
they cancel and the ratio is ill-conditioned: a ``RuntimeWarning`` below :data:`DEN_REL_WARN`).
With ``beta_points = P``, beta_eff (and its parts) and ``valid_acc`` are also measured after the
optimizer steps :func:`point_steps` (P evenly spaced steps of the whole run, the last one its
end), stored in the epoch that contains them as ``p<j>_step``, ``p<j>_beta_eff``, ``p<j>_num``,
``p<j>_den``, ``p<j>_den_rel``, ``p<j>_valid_acc`` (j = 0..P-1). Validation accuracy at the points
is measured on the same validation subset: it costs one forward pass of ``valid_size`` images per
point, which the paper's predictor needs (it regresses accuracy on beta_eff at the same points).
``beta_bn="batch"`` computes the probe's input features with batch-statistics BatchNorm (running
statistics untouched; see :meth:`nasbeff.training.loop.EarlyTrainer.capacitance`).
"""

from __future__ import annotations

import itertools
import math
import os
import time
import warnings
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Callable, Iterable, Literal, Sequence

import numpy as np
import torch

from ..core.capacitance import Capacitance
from .checkpoint import UnitCheckpoint
from ..data.names import NUM_CLASSES, check_subset_size
from ..data.loaders import (ImageSet, dataset_stats, eval_batches, load_dataset, read_npz_images, stratified_split,
                            stratified_subset, train_batches)
from ..predictors import (REGRESSIONS, TRANSFORMS, TSE, TSEE, TSEEMA, best_seen_value, fit_beta_curve,
                         last_seen_value)
from ..core.probe import NCP
from ..spaces import build_nb201_model, index_to_str, is_cut_off
from ..store import ResultStore, RunKey, config_hash
from .loop import BETA_BN, MODES, PLACEMENTS, EarlyTrainer, EpochRecord, TrainConfig, accuracy, beta_subset

SCORER = "beff-train"
NATIVE_RESOLUTION = 32  # CIFAR-10 images are 32 x 32
DEN_REL_WARN = 1e-3
# fields added after stores existed: absent from to_dict at these defaults, so earlier hashes hold
_LATE_DEFAULTS = {"extra_beta_samples": (), "resolution": NATIVE_RESOLUTION, "init_channels": 16, "cells": 5,
                  "beta_points": 0, "beta_bn": "eval", "pool": False}
#: The datasets a study trains on (``cifar10``'s images are trained as ``cifar10-valid``: its train half).
STUDY_DATASETS = ("cifar10-valid", "cifar100", "imagenet16-120")


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
    resolution: int = NATIVE_RESOLUTION  # input side in pixels (box-filtered down from 32)
    init_channels: int = 16  # NB201's C
    cells: int = 5  # NB201's N (cells per stage)
    beta_points: int = 0  # beta_eff at this many evenly spaced steps of the run (0: per epoch only)
    beta_bn: Literal["eval", "batch"] = "eval"  # BatchNorm of the features the probe reads
    pool: bool = False  # train/valid: a seeded split of one set of images (an .npz), not the dataset's splits

    def __post_init__(self) -> None:
        """Every value checked here, before any data is loaded (one clear line each)."""
        self.train_config()  # epochs, schedule_epochs, lr, batch_size, mode, placement
        if self.placement not in PLACEMENTS or self.mode not in MODES:
            raise ValueError(f"placement/mode must be one of {PLACEMENTS}/{MODES}")
        if not 4 <= self.resolution <= NATIVE_RESOLUTION:
            raise ValueError(f"--resolution {self.resolution} must lie in 4..{NATIVE_RESOLUTION} (CIFAR-10 is "
                             f"{NATIVE_RESOLUTION}x{NATIVE_RESOLUTION}; images are only downsampled)")
        for opt, v in (("--init-channels", self.init_channels), ("--cells", self.cells)):
            if v < 1:
                raise ValueError(f"{opt} must be >= 1, got {v}")
        if self.beta_bn not in BETA_BN:
            raise ValueError(f"--beta-bn must be one of {', '.join(BETA_BN)}, got {self.beta_bn!r}")
        if self.probe_bn_position not in ("before", "after"):
            raise ValueError(f"probe_bn_position must be before or after, got {self.probe_bn_position!r}")
        for opt, v in (("--train-size", self.train_size), ("--valid-size", self.valid_size)):
            if v < 1:
                raise ValueError(f"{opt} must be >= 1, got {v}")
        if self.dataset not in STUDY_DATASETS:
            raise ValueError(f"study dataset {self.dataset!r} must be one of {', '.join(STUDY_DATASETS)} (CIFAR-10 "
                             "trains as cifar10-valid: its 25k train half, validated on the other half)")
        if not self.pool:  # a pool's size is its file's: checked against it (pool_split)
            check_subset_size(self.dataset, "train", self.train_size, "--train-size")
            check_subset_size(self.dataset, "x-valid", self.valid_size, "--valid-size")
        for n in (self.beta_samples, *self.extra_beta_samples):
            if not 1 <= n <= self.train_size:
                raise ValueError(f"--beta-samples {n} must lie in 1..--train-size ({self.train_size})")
        if not 0 <= self.beta_points <= self.total_steps:
            raise ValueError(f"--beta-points {self.beta_points} must lie in 0..{self.total_steps} (the run's "
                             f"optimizer steps: {self.epochs} epochs x {self.steps_per_epoch} batches)")

    @property
    def steps_per_epoch(self) -> int:
        return math.ceil(self.train_size / self.batch_size)

    @property
    def total_steps(self) -> int:
        return self.epochs * self.steps_per_epoch

    def train_config(self) -> TrainConfig:
        return TrainConfig(epochs=self.epochs, schedule_epochs=self.schedule_epochs, lr=self.lr,
                           weight_decay=self.weight_decay, batch_size=self.batch_size, beta_samples=self.beta_samples,
                           seed=self.seed, mode=self.mode, placement=self.placement)

    def to_dict(self) -> dict:
        d = asdict(self)
        d["probe_hidden"] = list(self.probe_hidden)
        d["extra_beta_samples"] = list(self.extra_beta_samples)
        for k, default in _LATE_DEFAULTS.items():  # absent at their defaults: earlier stores keep their hash
            if getattr(self, k) == default:
                del d[k]
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "StudyConfig":
        """The inverse of :meth:`to_dict` (unknown keys are one clear error)."""
        known = set(cls.__dataclass_fields__)
        bad = sorted(set(d) - known)
        if bad:
            raise ValueError(f"unknown study setting(s) {', '.join(bad)}; known: {', '.join(sorted(known))}")
        kw = dict(d)
        for k in ("probe_hidden", "extra_beta_samples"):
            if k in kw:
                kw[k] = tuple(kw[k])
        return cls(**kw)

    @property
    def hash(self) -> str:
        return config_hash(self.to_dict())


@dataclass
class StudyData:
    train: ImageSet
    valid: ImageSet
    mean: tuple[float, ...] = field(default_factory=tuple)
    std: tuple[float, ...] = field(default_factory=tuple)


def pool_split(labels: np.ndarray, cfg: StudyConfig, what: str = "the pool") -> tuple[np.ndarray, np.ndarray]:
    """(train, valid) indices into one set of images with ``labels`` (``cfg.pool``): valid a seeded
    class-stratified subset of about ``valid_size`` (seed ``data_seed``), train one of about
    ``train_size`` of the rest (seed ``data_seed + 1``); sorted. ValueError (one line, naming ``what``)
    when they do not fit."""
    n, t, v = len(labels), cfg.train_size, cfg.valid_size
    if t + v > n:
        raise ValueError(f"{what} holds {n:,} images, fewer than --train-size {t:,} + --valid-size {v:,} (train and "
                         f"validation are a seeded split of them): e.g. --train-size {n - n // 5} --valid-size {n // 5}")
    rest, valid = stratified_split(labels, v / n, cfg.data_seed)
    if t > len(rest):  # per-class rounding took a few more for validation
        raise ValueError(f"{what}: --train-size {t:,} exceeds the {len(rest):,} images left after the seeded "
                         f"validation split of {len(valid):,}; ask for fewer")
    if t < len(rest):
        _, keep = stratified_split(labels[rest], t / len(rest), cfg.data_seed + 1)
        rest = rest[keep]
    return rest, valid


def load_study_data(root: str | os.PathLike, cfg: StudyConfig, cache_dir: str | os.PathLike | None = None) -> StudyData:
    """``cfg.dataset``'s train and validation images from ``root``, reduced to the configured subsets
    and resolution, with that dataset's normalisation: its own splits (CIFAR-10: the
    ``cifar10-valid`` halves; CIFAR-100 / ImageNet16-120: ``train`` and ``x-valid``), or with
    ``cfg.pool`` a seeded split of the one ``.npz`` ``root`` (:func:`pool_split`)."""
    if cfg.pool:
        if not str(root).lower().endswith(".npz"):
            raise ValueError(f"{root}: this study splits one .npz of images (pool), not a dataset's files")
        full = read_npz_images(root)
        if full.num_classes > NUM_CLASSES[cfg.dataset]:
            raise ValueError(f"{root} holds {full.num_classes} classes, more than {cfg.dataset}'s "
                             f"{NUM_CLASSES[cfg.dataset]}: is it another dataset's images?")
        tr, va = pool_split(full.labels, cfg, str(root))
        train, valid = full.subset(tr), full.subset(va)
    else:
        train, valid = load_dataset(cfg.dataset, root, ("train", "x-valid"), cache_dir=cache_dir, seed=cfg.data_seed)
        if cfg.train_size < len(train):
            train = stratified_subset(train, cfg.train_size, seed=cfg.data_seed)
        if cfg.valid_size < len(valid):
            valid = stratified_subset(valid, cfg.valid_size, seed=cfg.data_seed + 1)
    side = train.images.shape[1]
    if cfg.resolution > side:
        raise ValueError(f"--resolution {cfg.resolution}: the images of {root} are {side}x{side} and are only "
                         f"downsampled; pass --resolution {side} or less")
    if cfg.resolution != side:
        train, valid = resize_images(train, cfg.resolution), resize_images(valid, cfg.resolution)
    mean, std = dataset_stats(cfg.dataset)
    return StudyData(train, valid, tuple(mean), tuple(std))


def resize_images(data: ImageSet, side: int) -> ImageSet:
    """``data`` box-filtered to ``side`` x ``side`` pixels (``interpolate(mode="area")``: each output
    pixel the mean of the input pixels it covers, e.g. a 2x2 mean for 32 -> 16), rounded back to
    uint8; one tensor operation for the whole set."""
    x = torch.as_tensor(data.images).permute(0, 3, 1, 2).float()
    y = torch.nn.functional.interpolate(x, size=(side, side), mode="area")
    out = y.round_().clamp_(0, 255).to(torch.uint8).permute(0, 2, 3, 1).contiguous().numpy()
    return ImageSet(out, data.labels, data.classes)


def point_steps(cfg: StudyConfig) -> tuple[int, ...]:
    """The optimizer steps after which beta_eff is observed: ``ceil((j + 1) T / P)`` for
    j = 0..P-1, with T = :attr:`StudyConfig.total_steps` and P = ``beta_points``."""
    t, p = cfg.total_steps, cfg.beta_points
    return tuple(math.ceil((j + 1) * t / p) for j in range(p))


def capacitance_metrics(cap: Capacitance, prefix: str = "beta_") -> dict:
    """``num``, ``den`` and ``den_rel = |den| / sum_l |block_den_l|`` of one measurement (keys
    ``<prefix>num`` ...); warns (RuntimeWarning) when ``den_rel`` < :data:`DEN_REL_WARN`."""
    scale = sum(abs(d) for d in cap.block_den)
    rel = abs(cap.den) / scale if scale > 0 else 0.0
    if rel < DEN_REL_WARN:
        warnings.warn(f"beta_eff denominator nearly cancels: |den| = {abs(cap.den):.3g} is {rel:.2g} of the sum of "
                      f"|block sums| {scale:.3g}; this beta_eff = {cap.beta_eff:.3g} is ill-conditioned",
                      RuntimeWarning, stacklevel=2)
    return {f"{prefix}num": cap.num, f"{prefix}den": cap.den, f"{prefix}den_rel": rel}


def run_key(index: int, cfg: StudyConfig) -> RunKey:
    return RunKey(space="nb201", arch=str(int(index)), dataset=cfg.dataset, scorer=SCORER, config_hash=cfg.hash,
                  seed=cfg.seed)


def _channels_last(batches):
    """Batches in channels-last layout: faster convolutions on CPU (oneDNN) and GPU tensor cores."""
    for x, y in batches:
        yield x.contiguous(memory_format=torch.channels_last), y


def train_arch(index: int, data: StudyData, cfg: StudyConfig, store: ResultStore, ckpt_dir: Path | None = None,
               device: str = "cpu", on_epoch: Callable[[int, dict], None] | None = None) -> list[dict]:
    """Train one NB201 arch (resuming from its checkpoint) with :meth:`EarlyTrainer.run`,
    checkpointing then committing each epoch; returns the per-epoch metrics of all epochs
    (see the module for what they hold; ``seconds_wall`` is the epoch's wall time, setup and
    checkpoint included). Checkpoints go to ``ckpt_dir`` (default: the store's own folder,
    :func:`nasbeff.training.checkpoint.checkpoint_dir`) and are resumed only when they belong to this
    store and unit and the store holds every epoch before them (:class:`~nasbeff.training.checkpoint.UnitCheckpoint`);
    a unit is marked done only with exactly epochs ``1..cfg.epochs``."""
    key = run_key(index, cfg)
    store.save_config(cfg.to_dict())
    if store.is_done(key):
        return [r.metrics for r in store.rows(**key.as_filter())]
    t_start = time.perf_counter()
    dev = torch.device(device)
    torch.manual_seed(cfg.seed)
    classes = NUM_CLASSES[cfg.dataset]  # the head and the frozen probe: the dataset's classes
    net = build_nb201_model(index_to_str(index), num_classes=classes, in_channels=data.train.images.shape[-1],
                            C=cfg.init_channels, N=cfg.cells).to(dev)
    net = net.to(memory_format=torch.channels_last)
    probe = NCP(net.feature_dim, classes, hidden=cfg.probe_hidden, bn_position=cfg.probe_bn_position, seed=cfg.seed).to(dev)
    pad = max(1, round(4 * cfg.resolution / NATIVE_RESOLUTION))
    tb = train_batches(data.train, cfg.batch_size, device=dev, mean=data.mean, std=data.std, seed=cfg.seed, pad=pad)
    vb = eval_batches(data.valid, 500, device=dev, mean=data.mean, std=data.std)
    trainer = EarlyTrainer.for_network(net, probe, cfg.train_config(), len(tb))

    def beta_batch(n: int) -> tuple[torch.Tensor, torch.Tensor]:
        """The fixed, seeded training images (normalised, no augmentation) for beta_eff."""
        sub = beta_subset(len(data.train), n, cfg.seed).numpy()
        return next(iter(eval_batches(data.train.subset(sub), len(sub), device=dev, mean=data.mean, std=data.std)))

    name = f"nb201-{index}-{cfg.hash}-s{cfg.seed}.pt"
    ckpt = UnitCheckpoint.of(store, key, name)
    if ckpt_dir is not None:
        ckpt = replace(ckpt, path=Path(ckpt_dir) / name)
    state = ckpt.resume(store, key, first_epoch=1, map_location=dev)
    if state is not None:
        trainer.load_state_dict(state["trainer"])
    # from scratch over epochs an earlier, lost run left: they are replaced, so that every epoch of
    # the unit comes from this one training run
    fresh_over_old = state is None and bool(store.epochs_done(key))
    xb, yb = beta_batch(cfg.beta_samples)
    valid = lambda: _channels_last(vb.epoch(0))  # noqa: E731
    points = {s: j for j, s in enumerate(point_steps(cfg))}

    def measure(prefix: str) -> dict:
        cap = trainer.capacitance(xb, yb, cfg.beta_bn)
        return {f"{prefix}beta_eff": cap.beta_eff, **capacitance_metrics(cap, prefix if prefix else "beta_")}

    def at_point(step: int) -> dict | None:
        if step not in points:
            return None
        p = f"p{points[step]:02d}_"
        return {f"{p}step": step, **measure(p), f"{p}valid_acc": accuracy(trainer.model, valid())}

    last = [t_start]

    def commit(rec: EpochRecord) -> None:
        if rec.beta_eff is None or not math.isfinite(rec.beta_eff):
            raise FloatingPointError(f"arch {index}: non-finite beta_eff at epoch {rec.epoch}")
        metrics = {**rec.metrics(), "train_loss_sum": math.fsum(rec.step_losses),
                   "seconds_wall": time.perf_counter() - last[0]}
        last[0] = time.perf_counter()
        store.check_lease()  # a worker whose run lost the lease must not overwrite the checkpoint
        ckpt.save(rec.epoch, metrics, trainer.state_dict())
        store.record_epoch(key, rec.epoch, metrics, overwrite=fresh_over_old)
        if on_epoch is not None:
            on_epoch(rec.epoch, metrics)

    trainer.run(cfg.epochs, lambda e: _channels_last(tb.epoch(e)), valid, (xb, yb),
                {n: beta_batch(n) for n in cfg.extra_beta_samples}, on_epoch=commit,
                step_hook=at_point if points else None, epoch_beta=lambda: measure(""))
    ckpt.finish(store, key, cfg.epochs, first_epoch=1)
    return [r.metrics for r in store.rows(**key.as_filter())]


@dataclass(frozen=True)
class BetaVariant:
    """Which beta_eff predictor a row's ``beff_pred`` comes from (:func:`nasbeff.predictors.fit_beta_curve`):
    ``source`` the per-epoch measurements or the ``beta_points`` ones, ``transform``,
    ``regression`` and ``t0`` ("bic" or a fixed first index) as that function takes them."""

    source: Literal["epochs", "points"] = "epochs"
    transform: Literal["identity", "signlog"] = "identity"
    regression: Literal["bayes", "huber", "theilsen"] = "bayes"
    t0: int | str = "bic"

    def __post_init__(self) -> None:
        if self.source not in ("epochs", "points"):
            raise ValueError(f"beta_eff source must be epochs or points, got {self.source!r}")
        if self.transform not in TRANSFORMS or self.regression not in REGRESSIONS:
            raise ValueError(f"transform/regression must be one of {TRANSFORMS}/{REGRESSIONS}, got "
                             f"{self.transform!r}/{self.regression!r}")
        if self.t0 != "bic" and not (isinstance(self.t0, int) and self.t0 >= 0):
            raise ValueError(f"t0 must be 'bic' or an index >= 0, got {self.t0!r}")

    @property
    def name(self) -> str:
        return f"{self.source}_{self.transform}_{self.regression}_t{self.t0}"

    @classmethod
    def parse(cls, spec: str) -> "BetaVariant":
        """``source,transform,regression,t0`` (any prefix of it), e.g. ``points,signlog,huber``."""
        parts = [p.strip() for p in spec.split(",") if p.strip()]
        if len(parts) > 4:
            raise ValueError(f"--beff-variant {spec!r}: give source,transform,regression,t0 (at most 4 parts)")
        kw = dict(zip(("source", "transform", "regression", "t0"), parts))
        if "t0" in kw and kw["t0"] != "bic":
            kw["t0"] = int(kw["t0"]) if kw["t0"].isdigit() else kw["t0"]
        return cls(**kw)


def variant_grid() -> list[BetaVariant]:
    """Every variant: 2 sources x 2 transforms x 3 regressions x t0 in (bic, 0)."""
    return [BetaVariant(*v) for v in itertools.product(("epochs", "points"), TRANSFORMS, REGRESSIONS, ("bic", 0))]


def summarize(store: ResultStore, indices: Iterable[int], cfg: StudyConfig, epochs: int | None = None,
              variant: BetaVariant = BetaVariant(), all_variants: bool = False) -> list[dict]:
    """One row per finished arch of ``indices`` in the store (see :func:`summarize_curve`)."""
    rows = []
    k = epochs or cfg.epochs
    for index in indices:
        key = run_key(index, cfg)
        recs = sorted(store.rows(**key.as_filter()), key=lambda r: r.epoch)
        recs = [r for r in recs if 1 <= r.epoch <= k]
        if len(recs) < k:
            continue
        rows.append(summarize_curve(index, [r.metrics for r in recs], variant, all_variants))
    return rows


def beta_series(metrics: Sequence[dict], source: str = "epochs") -> tuple[list[float], list[float], list[float]]:
    """(accuracy, beta_eff, den) per measurement, in order: per epoch, or per ``beta_points`` point
    (``p<j>_*`` keys; den is NaN where an older store lacks it)."""
    if source == "epochs":
        return ([m["valid_acc"] for m in metrics], [m["beta_eff"] for m in metrics],
                [m.get("beta_den", math.nan) for m in metrics])
    pts = sorted(((k[:-len("_beta_eff")], m) for m in metrics for k in m
                  if k.startswith("p") and k.endswith("_beta_eff")), key=lambda pm: int(pm[0][1:]))
    return ([m[f"{p}_valid_acc"] for p, m in pts], [m[f"{p}_beta_eff"] for p, m in pts],
            [m.get(f"{p}_den", math.nan) for p, m in pts])


def _beff(acc: Sequence[float], beta: Sequence[float], v: BetaVariant) -> tuple[float, float, int, str]:
    """(prediction, std, t0, why-not) of one variant."""
    try:
        fit = fit_beta_curve(beta, acc, t0=v.t0, transform=v.transform, regression=v.regression)
        return fit.prediction, fit.std, fit.t0, ""
    except ValueError as exc:
        return float("nan"), float("nan"), -1, str(exc)


def _tse_columns(metrics: Sequence[dict], acc: Sequence[float]) -> dict:
    """``tse``, ``tse_e`` (last epoch), ``tse_ema`` from per-epoch ``train_loss_sum`` (NaN without it)."""
    if not all("train_loss_sum" in m for m in metrics):
        return {"tse": math.nan, "tse_e": math.nan, "tse_ema": math.nan}
    curves, losses = np.asarray([acc], float), np.asarray([[m["train_loss_sum"] for m in metrics]], float)
    return {name: float(p.fit(curves).predict(curves, losses=losses)[0])
            for name, p in (("tse", TSE()), ("tse_e", TSEE()), ("tse_ema", TSEEMA()))}


def summarize_curve(index: int, metrics: Sequence[dict], variant: BetaVariant = BetaVariant(),
                    all_variants: bool = False) -> dict:
    """One arch's row from its per-epoch metrics: ``index, arch_str, epochs_observed, beff_pred,
    beff_std, t0, beff_fallback, beff_out_of_range, lsv, bsv, gpu_seconds`` (device seconds of
    training + evaluation + beta_eff; CPU seconds on a CPU run), ``beta_seconds``,
    ``beta_overhead``, ``final_beta_eff``, ``cut_off``, then ``tse, tse_e, tse_ema`` (higher =
    better; Ru et al.), ``wall_seconds`` (the whole unit), ``n_points``, ``final_beta_num``,
    ``final_beta_den``, ``min_den_rel`` and ``den_sign_change`` (den of the ``variant``'s
    measurements takes both signs), ``beff_variant``; with ``all_variants`` a ``beff_<name>``
    column per :func:`variant_grid` entry. ``beff_pred`` comes from ``variant``: NaN with the
    reason in ``beff_fallback`` when it cannot be fitted (fewer than 3 measurements, beta_eff
    constant); ``beff_out_of_range`` flags a prediction outside [0, 100] %."""
    acc = [x["valid_acc"] for x in metrics]
    beta = [x["beta_eff"] for x in metrics]
    v_acc, v_beta, v_den = beta_series(metrics, variant.source)
    mean, std, t0, why = _beff(v_acc, v_beta, variant)
    train_s = sum(x["seconds_train"] for x in metrics)
    beta_s = sum(x["seconds_beta"] for x in metrics)
    dens = np.asarray(v_den, float)
    rels = [x[k] for x in metrics for k in x if k.endswith("den_rel")]
    row = {"index": int(index), "arch_str": index_to_str(index), "epochs_observed": len(metrics),
           "beff_pred": mean, "beff_std": std, "t0": t0, "beff_fallback": why,
           "beff_out_of_range": bool(math.isfinite(mean) and not 0.0 <= mean <= 100.0),
           "lsv": last_seen_value(acc), "bsv": best_seen_value(acc),
           "gpu_seconds": train_s + beta_s + sum(x["seconds_eval"] for x in metrics),
           "beta_seconds": beta_s, "beta_overhead": beta_s / train_s if train_s else float("nan"),
           "final_beta_eff": beta[-1], "cut_off": bool(is_cut_off(index_to_str(index))),
           **_tse_columns(metrics, acc),
           "wall_seconds": sum(x.get("seconds_wall", math.nan) for x in metrics),
           "n_points": len(beta_series(metrics, "points")[1]),
           "final_beta_num": metrics[-1].get("beta_num", math.nan),
           "final_beta_den": metrics[-1].get("beta_den", math.nan),
           "min_den_rel": min(rels) if rels else math.nan,
           "den_sign_change": bool((dens > 0).any() and (dens < 0).any()), "beff_variant": variant.name}
    if all_variants:
        for v in variant_grid():
            a, b, _ = (v_acc, v_beta, None) if v.source == variant.source else beta_series(metrics, v.source)
            row[f"beff_{v.name}"] = _beff(a, b, v)[0]
    return row
