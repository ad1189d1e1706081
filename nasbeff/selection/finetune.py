"""Pre-trained model selection by neural capacitance (paper, Table 1, Figs. 2-3): the pieces that
``nasbeff zoo pretrain`` and ``nasbeff select`` (:mod:`nasbeff.runs.pretrain`, :mod:`nasbeff.runs.select`)
put together.

* Data: the source task (CIFAR-10 classes 0-4) and the targets ``cifar10-5to9`` (classes 5-9),
  ``digits`` (scikit-learn's 8 x 8 digits, bilinearly upsampled to 32 x 32, grey copied to 3
  channels), ``digits-noisy`` (the same digits with an SVHN-like shift, :func:`svhn_like`; fewer
  training images, a larger test set) or an image folder, each as train / valid / test
  :class:`~nasbeff.data.loaders.ImageSet`.
* :func:`finetune`: one (backbone, seed) run. The backbone's head is replaced by the frozen NCP
  and every backbone layer trains (the paper's Keras setting: batch 64, Adam, learning rate 1e-3
  constant, no weight decay), recording per epoch validation accuracy, beta_eff of the probe
  (Eqs. 2, 5-7) and the training loss summed over the epoch's mini-batches (TSE's ``L_t``).
* :func:`transfer_scores`: LogME, LEEP and NCE of the pre-trained backbone on the target
  training images, before any fine-tuning.
* :func:`selection_rows`: per backbone, the predictions of the final test accuracy from the first
  k epochs of every seed (beta_eff read at beta_eff = 0, LSV, BSV, TSE, SVR, affine ensemble,
  LCE), averaged over seeds, next to the ground truth (test accuracy after T epochs of the same
  runs); :func:`selection_table` the Table-1 comparison; :func:`selection_figures` Figs. 2 / 3a.
"""

from __future__ import annotations

import itertools
import math
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from ..data.loaders import ImageSet, DeviceBatches, load_dataset, load_digits, stratified_split, stratified_subset, read_image_folder
from ..training.loop import EarlyTrainer, EpochRecord, TrainConfig, beta_subset

SOURCE_CLASSES = (0, 1, 2, 3, 4)  # airplane, automobile, bird, cat, deer
TARGETS = ("cifar10-5to9", "digits", "digits-noisy")
#: training images a target's train + valid come from
TARGET_POOLS = {"cifar10-5to9": 25_000, "digits": 1_347, "digits-noisy": 1_347}


@dataclass(frozen=True)
class SplitData:
    """A task's train / valid / test images (uint8, all of one size) and its name."""

    name: str
    train: ImageSet
    valid: ImageSet
    test: ImageSet

    @property
    def num_classes(self) -> int:
        return self.train.num_classes


def _classes(data: ImageSet, keep: Sequence[int]) -> ImageSet:
    """The images of classes ``keep``, relabelled 0..len(keep)-1."""
    mask = np.isin(data.labels, keep)
    remap = np.full(data.num_classes, -1, dtype=np.int64)
    remap[list(keep)] = np.arange(len(keep))
    return ImageSet(data.images[mask], remap[data.labels[mask]], tuple(data.classes[k] for k in keep))


def _carve(pool: ImageSet, test: ImageSet, name: str, train_size: int, valid_size: int, test_size: int,
           seed: int) -> SplitData:
    """valid (``valid_size``) and train (``train_size``, 0 = the rest) from ``pool``, seeded and
    class-stratified and disjoint; test cut to ``test_size`` (0 = all)."""
    if valid_size + max(train_size, 1) > len(pool):
        raise ValueError(f"{name}: train_size {train_size} + valid_size {valid_size} exceed the {len(pool)} "
                         "training images")
    rest, valid = stratified_split(pool.labels, valid_size / len(pool), seed)
    train = pool.subset(rest)
    if train_size and train_size < len(train):
        train = stratified_subset(train, train_size, seed)
    if test_size and test_size < len(test):
        test = stratified_subset(test, test_size, seed + 1)
    return SplitData(name, train, pool.subset(valid), test)


def upsample(data: ImageSet, size: int, channels: int = 3) -> ImageSet:
    """Images bilinearly resized to ``size`` x ``size`` with ``channels`` channels (grey copied)."""
    x = torch.as_tensor(data.images).permute(0, 3, 1, 2).float()
    if x.shape[-1] != size or x.shape[-2] != size:
        x = F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False)
    if x.shape[1] != channels:
        x = x.expand(-1, channels, -1, -1) if x.shape[1] == 1 else x[:, :channels]
    img = x.round().clamp(0, 255).to(torch.uint8).permute(0, 2, 3, 1).contiguous().numpy()
    return ImageSet(img, data.labels, data.classes)


def svhn_like(data: ImageSet, seed: int) -> ImageSet:
    """A fixed, seeded SVHN-like version of each (grey, 32 x 32) image: a random affine warp (rotation
    +-25 degrees, scale 0.85-1.1, shift +-3 px), the digit painted in one random RGB colour on a
    background of another (at least 96 apart in mean level, either may be the brighter), then
    Gaussian pixel noise (sd 24 of 255). Same seed, same images."""
    rng = np.random.default_rng(seed)
    n = len(data)
    x = torch.as_tensor(data.images[..., :1]).permute(0, 3, 1, 2).float() / 255.0
    angle = torch.as_tensor(rng.uniform(-25, 25, n) * math.pi / 180, dtype=torch.float32)
    scale = torch.as_tensor(rng.uniform(0.85, 1.1, n), dtype=torch.float32)
    shift = torch.as_tensor(rng.uniform(-3, 3, (n, 2)) * 2 / x.shape[-1], dtype=torch.float32)
    cos, sin = torch.cos(angle) / scale, torch.sin(angle) / scale
    theta = torch.stack([torch.stack([cos, -sin, shift[:, 0]], 1), torch.stack([sin, cos, shift[:, 1]], 1)], 1)
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    ink = F.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=False)  # (n, 1, H, W)
    fg = rng.uniform(0, 255, (n, 3))
    bg = rng.uniform(0, 255, (n, 3))
    close = np.abs(fg.mean(1) - bg.mean(1)) < 96
    while close.any():  # redraw the background where the digit would not stand out
        bg[close] = rng.uniform(0, 255, (int(close.sum()), 3))
        close = np.abs(fg.mean(1) - bg.mean(1)) < 96
    fg_t = torch.as_tensor(fg, dtype=torch.float32)[:, :, None, None]
    bg_t = torch.as_tensor(bg, dtype=torch.float32)[:, :, None, None]
    img = bg_t + (fg_t - bg_t) * ink + torch.as_tensor(rng.normal(0, 24, (n, 3) + tuple(x.shape[-2:])),
                                                        dtype=torch.float32)
    out = img.round().clamp(0, 255).to(torch.uint8).permute(0, 2, 3, 1).contiguous().numpy()
    return ImageSet(out, data.labels, data.classes)


def load_source(data: str | Path, train_size: int, test_size: int = 0, seed: int = 0) -> SplitData:
    """The source task: CIFAR-10 classes 0-4; ``train_size`` seeded stratified training images of
    their 25,000 (valid: none), test = their 5,000 test images (or ``test_size`` of them)."""
    train, test = load_dataset("cifar10", data, ("train", "ori-test"))
    pool, test = _classes(train, SOURCE_CLASSES), _classes(test, SOURCE_CLASSES)
    if train_size < len(pool):
        pool = stratified_subset(pool, train_size, seed)
    if test_size and test_size < len(test):
        test = stratified_subset(test, test_size, seed + 1)
    return SplitData("cifar10-0to4", pool, pool.subset(np.arange(0)), test)


def load_target(target: str, data: str | Path | None, train_size: int = 0, valid_size: int = 0,
                test_size: int = 0, image_size: int = 32, seed: int = 0) -> SplitData:
    """A target task (module docstring). Sizes 0 take the target's defaults: ``cifar10-5to9``
    2,500 train / 1,000 valid (of the 25,000 training images of classes 5-9) / all 5,000 test;
    ``digits`` the rest / 300 valid (of the 1,347 training digits) / its 450 held-out digits; a
    folder: the rest / 20 % valid, test = ``test/`` or 20 % of the images."""
    if target == "cifar10-5to9":
        if data is None:
            raise ValueError("target cifar10-5to9 needs the CIFAR-10 data (--data)")
        train, test = load_dataset("cifar10", data, ("train", "ori-test"))
        pool, test = _classes(train, (5, 6, 7, 8, 9)), _classes(test, (5, 6, 7, 8, 9))
        out = _carve(pool, test, target, train_size or 2500, valid_size or 1000, test_size, seed)
    elif target == "digits":
        pool, test = load_digits(valid_fraction=0.25, seed=0)
        out = _carve(pool, test, target, train_size, valid_size or 300, test_size, seed)
    elif target == "digits-noisy":  # 400 train / 300 valid; test: the 450 held-out + every unused pool image
        pool, test = load_digits(valid_fraction=0.25, seed=0)
        valid_n, train_n = valid_size or 300, train_size or 400
        if valid_n + train_n > len(pool):
            raise ValueError(f"{target}: train_size {train_n} + valid_size {valid_n} exceed the {len(pool)} images")
        rest, valid = stratified_split(pool.labels, valid_n / len(pool), seed)
        unused, train = (stratified_split(pool.labels[rest], train_n / len(rest), seed) if train_n < len(rest)
                         else (np.arange(0), np.arange(len(rest))))
        spare = pool.subset(rest[unused])
        test = ImageSet(np.concatenate([test.images, spare.images]), np.concatenate([test.labels, spare.labels]),
                        test.classes)
        if test_size and test_size < len(test):
            test = stratified_subset(test, test_size, seed + 1)
        parts = [upsample(s, image_size) for s in (pool.subset(rest[train]), pool.subset(valid), test)]
        return SplitData(target, *(svhn_like(s, seed=1000 + 10 * seed + k) for k, s in enumerate(parts)))
    else:
        pool, test = read_image_folder(target, image_size)
        if test is None:
            rest, held = stratified_split(pool.labels, 0.2, seed + 2)
            pool, test = pool.subset(rest), pool.subset(held)
        out = _carve(pool, test, Path(target).name, train_size, valid_size or max(1, len(pool) // 5), test_size,
                     seed)
    return SplitData(out.name, *(upsample(s, image_size) for s in (out.train, out.valid, out.test)))


# ---------------------------------------------------------------------------------------------
# Batches at a backbone's input size and normalisation
# ---------------------------------------------------------------------------------------------
def _resized(batches: Iterable[tuple[torch.Tensor, torch.Tensor]], size: int) -> Iterator:
    for x, y in batches:
        if x.shape[-1] != size:
            x = F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False)
        yield x.contiguous(memory_format=torch.channels_last), y


@dataclass
class Feeder:
    """Batches of one task for one backbone: normalised with the backbone's ``mean`` / ``std``,
    resized to its ``size``; training batches shuffled (and augmented when ``augment``: random
    crop of the 4-pixel zero-padded image and horizontal flip) from ``seed`` and the epoch."""

    data: SplitData
    mean: tuple[float, ...]
    std: tuple[float, ...]
    size: int
    batch_size: int
    seed: int
    augment: bool = False
    device: str = "cpu"

    def __post_init__(self) -> None:
        kw = {"device": self.device, "mean": self.mean, "std": self.std}
        self._train = DeviceBatches(self.data.train, self.batch_size, augment=self.augment, shuffle=True,
                                    seed=self.seed, **kw)
        self._plain = {s: DeviceBatches(getattr(self.data, s), 500, augment=False, shuffle=False, **kw)
                       for s in ("train", "valid", "test") if len(getattr(self.data, s))}

    @property
    def steps(self) -> int:
        return len(self._train)

    def train(self, epoch: int) -> Iterator:
        return _resized(self._train.epoch(epoch), self.size)

    def plain(self, split: str) -> Iterator:
        return _resized(self._plain[split].epoch(0), self.size)

    def tensors(self, split: str, index: np.ndarray | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """All of ``split`` (or its images ``index``) as one normalised, resized tensor pair."""
        xs, ys = zip(*self.plain(split))
        x, y = torch.cat(xs), torch.cat(ys)
        return (x, y) if index is None else (x[torch.as_tensor(index)], y[torch.as_tensor(index)])


# ---------------------------------------------------------------------------------------------
# One fine-tuning run and the transferability scores
# ---------------------------------------------------------------------------------------------
def finetune_config(epochs: int, seed: int, lr: float = 1e-3, batch_size: int = 64,
                    beta_samples: int = 512) -> TrainConfig:
    """The paper's fine-tuning (Keras defaults): Adam, constant learning rate, no weight decay."""
    return TrainConfig(epochs=epochs, lr=lr, weight_decay=0.0, batch_size=batch_size, beta_samples=beta_samples,
                       seed=seed, optimizer="adam", schedule="constant", placement="head")


def finetune(trainer: EarlyTrainer, feed: Feeder, epochs: int, beta_samples: int, seed: int,
             on_epoch: Callable[[EpochRecord], None]) -> list[EpochRecord]:
    """Train ``trainer`` (a probe-headed backbone) up to ``epochs``; beta_eff on ``beta_samples``
    fixed training images (seeded by ``seed``), validation accuracy on ``feed``'s valid split."""
    sub = beta_subset(len(feed.data.train), beta_samples, seed).numpy()
    return trainer.run(epochs, feed.train, lambda: feed.plain("valid"), feed.tensors("train", sub), on_epoch=on_epoch)


@torch.no_grad()
def transfer_scores(net: torch.nn.Module, feed: Feeder) -> dict[str, float]:
    """LogME of the pooled features, LEEP of the source softmax and NCE of the source argmax on the
    target training images (:mod:`nasbeff.selection.transfer`), with the seconds each took (the forward pass
    counted in every one)."""
    from .transfer import leep, logme, nce

    was = net.training
    net.eval()
    t0 = time.perf_counter()
    feats, labels = [], []
    for x, y in feed.plain("train"):
        feats.append(net.forward_features(x))
        labels.append(y)
    f, y = torch.cat(feats), torch.cat(labels).numpy()
    probs = torch.softmax(net.head(f).double(), 1).numpy()
    forward = time.perf_counter() - t0
    net.train(was)
    out = {}
    for name, fn in (("logme", lambda: logme(f.double().numpy(), y)), ("leep", lambda: leep(probs, y)),
                     ("nce", lambda: nce(probs.argmax(1), y))):
        t1 = time.perf_counter()
        out[name] = fn()
        out[f"seconds_{name}"] = forward + time.perf_counter() - t1
    return out


# ---------------------------------------------------------------------------------------------
# Predictions, rows, the Table-1 comparison and the figures
# ---------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Run:
    """One (model, seed) run's per-epoch series (epochs 1..n) and its ground truth (or NaN)."""

    model: str
    seed: int
    acc: np.ndarray
    beta: np.ndarray
    loss_sum: np.ndarray
    seconds: np.ndarray  # per epoch: [train, eval, beta]
    test_acc: float = math.nan


def _per_seed(runs: Sequence[Run], models: Sequence[str], values: np.ndarray) -> dict[str, float]:
    """Mean over seeds of one value per run, per model (NaNs ignored; NaN when all are)."""
    out = {}
    for m in models:
        v = np.array([x for r, x in zip(runs, values) if r.model == m], dtype=float)
        out[m] = _mean(v) if np.isfinite(v).any() else math.nan
    return out


def _mean(values) -> float:
    """Mean rounded to 9 decimals: equal sums of per-seed accuracies added in another order differ
    in their last bits, and a rank correlation would read that float noise as an order (not a tie)."""
    return float(np.round(np.nanmean(np.asarray(values, dtype=float)), 9))


def curve_predictions(runs: Sequence[Run], k: int, epochs: int, truth: bool) -> dict[str, np.ndarray]:
    """Per-run predictions from the first ``k`` epochs: ``beff`` (NaN where the curve cannot be
    fitted), ``lsv``, ``bsv``, ``tse``, ``lce`` (extrapolated to ``epochs``) and, with ``truth``,
    ``svr`` / ``cl`` fitted on the other models' full curves and test accuracies (leave one model out)."""
    from ..predictors import (AffineEnsemble, BestSeenValue, BetaEffPredictor, CurveExtrapolation, CurveSVR,
                             LastSeenValue, TSE, cross_val_predict_by_arch)

    acc = np.array([r.acc[:k] for r in runs])
    beta = np.array([r.beta[:k] for r in runs])
    loss = np.array([r.loss_sum[:k] for r in runs])
    out = {"beff": BetaEffPredictor().fit(acc).predict(acc, beta=beta),
           "lsv": LastSeenValue().fit(acc).predict(acc), "bsv": BestSeenValue().fit(acc).predict(acc),
           "tse": TSE().fit(acc).predict(acc, losses=loss),
           "lce": CurveExtrapolation(final_epoch=epochs).fit(acc).predict(acc)}
    if truth:
        full = np.array([r.acc[:epochs] for r in runs])
        final = np.array([r.test_acc for r in runs])
        groups = np.array([r.model for r in runs])
        n_models = len(set(groups))
        for name, est in (("svr", CurveSVR()), ("cl", AffineEnsemble())):
            out[name] = cross_val_predict_by_arch(est, full, final, k=n_models, n_observed=k, groups=groups)
    return out


def selection_rows(runs: Sequence[Run], info: Mapping[str, Mapping], predict_at: Sequence[int], epochs: int,
                   truth: bool, transfer: Mapping[str, Mapping[str, float]] | None = None) -> list[dict]:
    """One row per model (in ``info``'s order: family, params, source_acc, ...): ``true_acc`` (mean
    test accuracy over seeds after ``epochs``), ``true_acc_s<seed>``, per k in ``predict_at`` the
    seed-averaged ``beff_pred_k`` (``beff_fallback_k``: seeds whose beta_eff curve could not be
    fitted), ``lsv_k``, ``bsv_k``, ``tse_k``, ``lce_k`` (+ ``svr_k``, ``cl_k`` with ``truth``),
    ``logme``, ``leep``, ``nce``, and the seconds per model of each method (mean over seeds): the
    first k epochs of training (+ evaluation for curve methods, + beta_eff for ``beff``)."""
    models = list(info)
    rows = {m: {"model": m, **dict(info[m])} for m in models}
    if truth:
        for m in models:
            mine = [r for r in runs if r.model == m]
            rows[m]["true_acc"] = _mean([r.test_acc for r in mine])
            rows[m]["true_acc_std"] = float(np.std([r.test_acc for r in mine]))
            rows[m].update({f"true_acc_s{r.seed}": r.test_acc for r in mine})
    for k in predict_at:
        preds = curve_predictions(runs, k, epochs, truth)
        beff = preds.pop("beff")
        for m, v in _per_seed(runs, models, beff).items():
            rows[m][f"beff_pred_{k}"] = v
            rows[m][f"beff_fallback_{k}"] = sum(1 for r, b in zip(runs, beff) if r.model == m and not np.isfinite(b))
        for name, values in preds.items():
            for m, v in _per_seed(runs, models, values).items():
                rows[m][f"{name}_{k}"] = v
        secs = np.array([r.seconds[:k].sum(0) for r in runs])  # (runs, [train, eval, beta])
        for label, cols in (("tse", [0]), ("curve", [0, 1]), ("beff", [0, 1, 2])):
            for m, v in _per_seed(runs, models, secs[:, cols].sum(1)).items():
                rows[m][f"seconds_{label}_{k}"] = v
    for m in models:
        for name, v in (transfer or {}).get(m, {}).items():
            rows[m][name] = v
    return [rows[m] for m in models]


def noise_ceiling(rows: Sequence[dict], seeds: Sequence[int]) -> float:
    """Mean Spearman rho between the ground truths of two seeds, over all seed pairs: the rank
    agreement the seed noise of the ground truth allows (:func:`nasbeff.evaluation.correlation.noise_ceiling`)."""
    from ..evaluation.correlation import noise_ceiling as pair

    vals = [pair([r[f"true_acc_s{a}"] for r in rows], [r[f"true_acc_s{b}"] for r in rows])
            for a, b in itertools.combinations(seeds, 2)]
    return float(np.mean(vals)) if vals else math.nan


def method_columns(rows: Sequence[dict], predict_at: Sequence[int]) -> list[str]:
    """The score columns present in ``rows``, beta_eff first, in Table-1 order."""
    names = [f"{m}_{k}" if m != "beff_pred" else f"beff_pred_{k}" for k in predict_at
             for m in ("beff_pred", "lsv", "bsv", "svr", "cl", "lce", "tse")] + ["logme", "leep", "nce"]
    return [c for c in names if rows and c in rows[0]]


def selection_table(rows: Sequence[dict], predict_at: Sequence[int], n_boot: int = 2000, seed: int = 0
                    ) -> tuple[list[dict], list[dict]]:
    """Table 1: (per method, Spearman and Kendall of the score vs ``true_acc`` over models with
    bootstrap CIs; per k, the paired bootstrap of rho(beff_pred_k) - rho(best other method at k),
    the best by point Spearman among the curve methods at the same k and LogME / LEEP / NCE)."""
    from ..evaluation.correlation import correlation_table, paired_bootstrap

    truth = [r["true_acc"] for r in rows]
    cols = method_columns(rows, predict_at)
    table = correlation_table({c: [r[c] for r in rows] for c in cols}, truth, n_boot=n_boot, seed=seed)
    rho = {t["method"]: t["spearman"] for t in table}
    paired = []
    for k in predict_at:
        ref = f"beff_pred_{k}"
        rivals = [c for c in cols if c != ref and (c.endswith(f"_{k}") or c in ("logme", "leep", "nce"))]
        if ref not in rho or not rivals:
            continue
        best = max(rivals, key=lambda c: rho[c] if np.isfinite(rho[c]) else -np.inf)
        d = paired_bootstrap([r[ref] for r in rows], [r[best] for r in rows], truth, n_boot=n_boot, seed=seed)
        paired.append({"epochs": k, "beff": ref, "best_baseline": best, "diff": d.diff, "diff_lo": d.ci[0],
                       "diff_hi": d.ci[1], "p_not_better": d.p_not_better})
    return table, paired


def selection_figures(rows: Sequence[dict], runs: Sequence[Run], k: int, out: str | Path, title: str = "",
                      n_curves: int = 6) -> list[Path]:
    """Fig. 2 (``fig2_curves.png``: accuracy and beta_eff per epoch of the first seed's runs of up
    to ``n_curves`` models with the fit at beta_eff = 0) and Fig. 3a (``fig3a_pred_vs_true.png``:
    ``beff_pred_k`` vs ``true_acc``) in folder ``out``."""
    from ..evaluation import plots

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    first = min(r.seed for r in runs)
    truth = {r["model"]: r.get("true_acc") for r in rows}
    curves = [{"label": r.model, "epochs": np.arange(1, k + 1), "acc": r.acc[:k], "beta": r.beta[:k],
               "true": truth.get(r.model)} for r in runs if r.seed == first][:n_curves]
    paths = [out / "fig2_curves.png", out / "fig3a_pred_vs_true.png"]
    plots.learning_curves(curves, paths[0], title=title)
    plots.predicted_vs_true([r[f"beff_pred_{k}"] for r in rows], [r["true_acc"] for r in rows], paths[1],
                            label=f"beta_eff prediction from {k} epochs (%)", truth_label="test accuracy (%)",
                            title=title, items="models")
    return paths
