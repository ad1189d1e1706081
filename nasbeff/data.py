"""Datasets as in-memory uint8 arrays with deterministic, seeded train/valid splits.

Every loader returns :class:`ImageSet` objects holding ``images`` (uint8, N x H x W x C) and
``labels`` (int64, 0..K-1). Decoding happens once; tensors are made from these arrays on the
device that trains (see :func:`to_tensor`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch


@dataclass(frozen=True)
class ImageSet:
    """A labelled image array: ``images`` uint8 (N, H, W, C), ``labels`` int64 (N,)."""

    images: np.ndarray
    labels: np.ndarray
    classes: tuple[str, ...]

    def __post_init__(self) -> None:
        if self.images.dtype != np.uint8 or self.images.ndim != 4:
            raise ValueError(f"images must be uint8 of shape (N, H, W, C), got {self.images.dtype} {self.images.shape}")
        if self.labels.shape != (self.images.shape[0],):
            raise ValueError(f"labels must have shape ({self.images.shape[0]},), got {self.labels.shape}")
        if len(self.labels) and (self.labels.min() < 0 or self.labels.max() >= len(self.classes)):
            raise ValueError(f"labels must lie in 0..{len(self.classes) - 1}")

    def __len__(self) -> int:
        return int(self.labels.shape[0])

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    def subset(self, index: np.ndarray) -> "ImageSet":
        return ImageSet(self.images[index], self.labels[index], self.classes)


def stratified_split(labels: np.ndarray, valid_fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Deterministic stratified split: per class, a seeded permutation; the first
    ``round(valid_fraction * n_class)`` indices go to valid. Returns sorted (train, valid) indices."""
    if not 0.0 < valid_fraction < 1.0:
        raise ValueError(f"valid_fraction must be in (0, 1), got {valid_fraction}")
    rng = np.random.default_rng(seed)
    train, valid = [], []
    for c in np.unique(labels):
        idx = np.flatnonzero(labels == c)
        idx = idx[rng.permutation(len(idx))]
        k = int(round(valid_fraction * len(idx)))
        valid.append(idx[:k])
        train.append(idx[k:])
    return np.sort(np.concatenate(train)), np.sort(np.concatenate(valid))


def load_digits(valid_fraction: float = 0.25, seed: int = 0) -> tuple[ImageSet, ImageSet]:
    """scikit-learn's 8x8 handwritten digits (1,797 images, 10 classes), shipped with the package:
    the embedded default that needs no download. Pixel values 0..16 are scaled to 0..255.
    Returns (train, valid), split by :func:`stratified_split`."""
    from sklearn.datasets import load_digits as _sk_digits

    bunch = _sk_digits()
    images = np.clip(bunch.images * 16.0, 0, 255).astype(np.uint8)[..., None]
    labels = bunch.target.astype(np.int64)
    full = ImageSet(images, labels, tuple(str(c) for c in range(10)))
    tr, va = stratified_split(labels, valid_fraction, seed)
    return full.subset(tr), full.subset(va)


def to_tensor(data: ImageSet, device: torch.device | str = "cpu", dtype: torch.dtype = torch.float32,
              mean: tuple[float, ...] | None = None, std: tuple[float, ...] | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """(images as N x C x H x W float in [0, 1], optionally normalised per channel; labels)."""
    x = torch.as_tensor(data.images, device=device).permute(0, 3, 1, 2).to(dtype).div_(255.0)
    if mean is not None:
        m = torch.tensor(mean, device=device, dtype=dtype).view(1, -1, 1, 1)
        s = torch.tensor(std if std is not None else (1.0,) * len(mean), device=device, dtype=dtype).view(1, -1, 1, 1)
        x = (x - m) / s
    return x.contiguous(), torch.as_tensor(data.labels, device=device)
