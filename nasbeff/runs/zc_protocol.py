"""The protocol under which nasbeff's proxy values are compared with published ones on
NB201 / CIFAR-10 (shared by ``experiments/zc_check`` and ``experiments/nb201_scorers``).

Seed ``s`` re-draws both the initialisation (``torch.manual_seed(1000003 s + index)``) and a
random batch of CIFAR-10 train images (the JPEG copy, no augmentation, CIFAR mean/std). Every
proxy sees the first 64 images, except those in ``big_batch`` (NASWOT: 128, as the NASWOT paper)
and ``zico`` (two batches of 64).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from .. import proxies
from ..data import CIFAR10_CLASSES, decode_images, read_archive_members
from ..spaces.nb201 import build_nb201_model

BIG_BATCH = frozenset({"naswot", "naswot_v1"})  # 128 samples
MEAN = (0.4914, 0.4822, 0.4465)  # the rounded CIFAR-10 statistics zero-cost-nas normalises with
STD = (0.2470, 0.2435, 0.2616)


def load_train_jpegs(tar_path: str | Path) -> list[tuple[bytes, int]]:
    """All CIFAR-10 train JPEGs of ``cifar10_jpeg.tar.gz`` as (bytes, label), in tar order
    (:func:`nasbeff.data.read_archive_members`)."""
    return read_archive_members(tar_path, "train", CIFAR10_CLASSES)


def make_batch(jpegs: list[tuple[bytes, int]], n: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """``n`` images drawn with ``seed`` (without replacement), decoded and normalised."""
    mean, std = (torch.tensor(v).view(1, 3, 1, 1) for v in (MEAN, STD))
    idx = np.random.default_rng(seed).choice(len(jpegs), size=n, replace=False)
    imgs = decode_images([jpegs[i][0] for i in idx], "CIFAR-10 train JPEG")
    x = torch.from_numpy(imgs).permute(0, 3, 1, 2).float().div(255.0)
    return (x - mean) / std, torch.tensor([jpegs[i][1] for i in idx], dtype=torch.long)


def proxy_batches(name: str, x: torch.Tensor, y: torch.Tensor, big_batch=BIG_BATCH) -> list:
    """The batches proxy ``name`` sees under this protocol (see the module docstring)."""
    if name == "zico":
        return [(x[:64], y[:64]), (x[64:128], y[64:128])]
    if name in big_batch:
        return [(x[:128], y[:128])]
    return [(x[:64], y[:64])]


def score_arch(index: int, seed: int, x: torch.Tensor, y: torch.Tensor, names, big_batch=BIG_BATCH,
               build=build_nb201_model) -> dict:
    """One row: ``index``, ``seed`` and, per proxy, its value, ``<name>_s`` (seconds) and
    ``<name>_flag``, the network built by ``build(index)`` after the seed's init seed."""
    torch.manual_seed(1000003 * seed + index)
    model = build(index)
    row: dict = {"index": index, "seed": seed}
    for name in names:
        torch.manual_seed(7 * seed + index)  # for zen's own draws
        r = proxies.score(name, model, proxy_batches(name, x, y, big_batch))
        row[name] = r.value
        row[f"{name}_s"] = r.seconds
        row[f"{name}_flag"] = r.flag or ""
    return row
