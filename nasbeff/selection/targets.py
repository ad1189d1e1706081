"""The source task and the targets of model selection: CIFAR-10 classes 0-4 to pre-train on, and
CIFAR-10 classes 5-9, digits, digits-noisy or a user's image folder to select for, split into
train / valid / test."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from ..data.loaders import ImageSet, load_dataset, load_digits, stratified_split, stratified_subset, read_image_folder
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


