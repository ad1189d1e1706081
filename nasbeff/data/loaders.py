"""Datasets as in-memory uint8 arrays with deterministic, seeded train/valid splits.

Every loader returns :class:`ImageSet` objects holding ``images`` (uint8, N x H x W x C) and
``labels`` (int64, 0..K-1). Decoding happens once per source file: the decoded arrays are cached
in :func:`default_cache_dir` (``$NASBEFF_CACHE``), keyed by the source's content (see
:func:`read_source`). Tensors are made from these arrays on the device that trains (see
:func:`to_tensor` and the on-device batch iterators :func:`train_batches` / :func:`eval_batches`).

Entry point: :func:`load_dataset` with the dataset and split names of :mod:`nasbeff.data.names`
(``cifar10``, ``cifar10-valid``, ``cifar100``, ``imagenet16-120``, ``digits``). Nothing is
downloaded: data are read only from the paths the caller gives.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import lzma
import os
import pickle
import sys
import tarfile
import warnings
import zlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Union

import numpy as np
import torch
from PIL import Image

from ..store import atomic_write
from .names import (DATASETS, NORMALIZATION, SPLITS, canonical_dataset, canonical_split,  # noqa: F401
                       check_subset_size, dataset_stats, split_size)


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


# ---------------------------------------------------------------------------------------------
# Constants (names, splits and normalisation live in nasbeff.data.names)
# ---------------------------------------------------------------------------------------------

CIFAR10_CLASSES: tuple[str, ...] = ("airplane", "automobile", "bird", "cat", "deer",
                                    "dog", "frog", "horse", "ship", "truck")

_IMAGE_EXTS = (".jpg", ".jpeg", ".png")
_CIFAR10_BATCHES = tuple(f"data_batch_{i}" for i in range(1, 6)) + ("test_batch",)
_IN16_TRAIN = tuple(f"train_data_batch_{i}" for i in range(1, 11))
_CACHE_VERSION = 2
#: What reading a truncated or corrupt (compressed) tar can raise.
_ARCHIVE_ERRORS = (tarfile.TarError, EOFError, OSError, zlib.error, lzma.LZMAError)

#: Backward-compatible names for the vocabulary in :mod:`nasbeff.data.names`.
DATASET_NAMES = DATASETS
DATASET_SPLITS = SPLITS
canonical_name = canonical_dataset
check_split = canonical_split


class DataFormatError(ValueError):
    """A data source exists but is not in the expected format (the message starts with its path)."""


def channel_stats(data: ImageSet) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Per-channel (mean, std) of ``data`` in [0, 1] units."""
    x = data.images.reshape(-1, data.images.shape[-1]).astype(np.float64) / 255.0
    return tuple(float(v) for v in x.mean(0)), tuple(float(v) for v in x.std(0))


# ---------------------------------------------------------------------------------------------
# Low-level readers (no caching); each returns {"train": ImageSet, "test": ImageSet}
# ---------------------------------------------------------------------------------------------

def _reason(exc: BaseException) -> str:
    """``exc`` as one line: its type and message."""
    return " ".join(f"{type(exc).__name__}: {exc}".split())


def _unpickle(raw: bytes, what: str) -> dict:
    try:
        obj = pickle.loads(raw, encoding="latin1")
    except Exception as exc:  # noqa: BLE001 - any unpickling failure means a wrong format
        raise DataFormatError(f"{what}: not a readable pickle, truncated or corrupt ({_reason(exc)})") from None
    if not isinstance(obj, dict):
        raise DataFormatError(f"{what}: expected a pickled dict, got {type(obj).__name__}")
    return {(k.decode("latin1") if isinstance(k, bytes) else k): v for k, v in obj.items()}


def _read_file(path: Path) -> bytes:
    if not path.is_file():
        raise FileNotFoundError(f"missing file {path}")
    return path.read_bytes()


def _rows_to_hwc(data, labels, side: int, what: str) -> tuple[np.ndarray, np.ndarray]:
    arr = np.asarray(data)
    if arr.dtype != np.uint8 or arr.ndim != 2 or arr.shape[1] != 3 * side * side:
        raise DataFormatError(f"{what}: 'data' must be uint8 of shape (N, {3 * side * side}), "
                              f"got {arr.dtype} {arr.shape}")
    lab = np.asarray(labels, dtype=np.int64).reshape(-1)
    if lab.shape[0] != arr.shape[0]:
        raise DataFormatError(f"{what}: {arr.shape[0]} images but {lab.shape[0]} labels")
    return arr.reshape(-1, 3, side, side).transpose(0, 2, 3, 1), lab


def _decode_label_names(names) -> tuple[str, ...]:
    return tuple(n.decode() if isinstance(n, bytes) else str(n) for n in names)


def _cifar_from_pickles(blobs: dict[str, bytes], label_key: str, names_key: str, meta: str,
                        train_files: Sequence[str], test_files: Sequence[str], where: str,
                        default_classes: tuple[str, ...]) -> dict[str, ImageSet]:
    missing = [f for f in (*train_files, *test_files) if f not in blobs]
    if missing:
        raise FileNotFoundError(f"{where}: missing {', '.join(missing)}")
    classes = None
    if meta in blobs:
        m = _unpickle(blobs[meta], f"{where}/{meta}")
        if names_key in m:
            classes = _decode_label_names(m[names_key])
    out = {}
    for split, files in (("train", train_files), ("test", test_files)):
        xs, ys = [], []
        for f in files:
            d = _unpickle(blobs[f], f"{where}/{f}")
            if "data" not in d or label_key not in d:
                raise DataFormatError(f"{where}/{f}: expected keys 'data' and {label_key!r}, got {sorted(d)}")
            x, y = _rows_to_hwc(d["data"], d[label_key], 32, f"{where}/{f}")
            xs.append(x)
            ys.append(y)
        out[split] = (np.ascontiguousarray(np.concatenate(xs)), np.concatenate(ys))
    if classes is None:
        classes = default_classes
    return {s: ImageSet(x, y, classes) for s, (x, y) in out.items()}


def read_cifar10_batches(folder: str | os.PathLike) -> dict[str, ImageSet]:
    """Read the python CIFAR-10 batches (``data_batch_1..5``, ``test_batch``, ``batches.meta``).

    Returns ``{"train": 50k, "test": 10k}`` in file order (images HWC uint8)."""
    folder = Path(folder)
    blobs = {f: _read_file(folder / f) for f in _CIFAR10_BATCHES}
    if (folder / "batches.meta").is_file():
        blobs["batches.meta"] = (folder / "batches.meta").read_bytes()
    return _cifar_from_pickles(blobs, "labels", "label_names", "batches.meta",
                               _CIFAR10_BATCHES[:5], _CIFAR10_BATCHES[5:], str(folder), CIFAR10_CLASSES)


def read_cifar100(folder: str | os.PathLike) -> dict[str, ImageSet]:
    """Read the python CIFAR-100 files (``train``, ``test``, ``meta``) with the 100 fine labels."""
    folder = Path(folder)
    blobs = {f: _read_file(folder / f) for f in ("train", "test")}
    if (folder / "meta").is_file():
        blobs["meta"] = (folder / "meta").read_bytes()
    return _cifar_from_pickles(blobs, "fine_labels", "fine_label_names", "meta",
                               ("train",), ("test",), str(folder),
                               tuple(str(i) for i in range(100)))


def read_imagenet16(folder: str | os.PathLike, num_classes: int = 120) -> dict[str, ImageSet]:
    """Read ImageNet16 pickles (``train_data_batch_1..10``, ``val_data``; 16x16, CHW rows, labels
    1..1000). Keeps labels 1..``num_classes`` and shifts them to 0..num_classes-1.
    ``val_data`` becomes the ``"test"`` split (NB201's ori-test)."""
    folder = Path(folder)
    out = {}
    for split, files in (("train", _IN16_TRAIN), ("test", ("val_data",))):
        xs, ys = [], []
        for f in files:
            d = _unpickle(_read_file(folder / f), str(folder / f))
            if "data" not in d or "labels" not in d:
                raise DataFormatError(f"{folder / f}: expected keys 'data' and 'labels', got {sorted(d)}")
            x, y = _rows_to_hwc(d["data"], d["labels"], 16, str(folder / f))
            if len(y) and (y.min() < 1 or y.max() > 1000):
                raise DataFormatError(f"{folder / f}: labels must be 1..1000, got {y.min()}..{y.max()}")
            keep = y <= num_classes
            xs.append(x[keep])
            ys.append(y[keep] - 1)
        out[split] = ImageSet(np.ascontiguousarray(np.concatenate(xs)), np.concatenate(ys),
                              tuple(str(i) for i in range(num_classes)))
    return out


def _natural_key(name: str) -> tuple:
    stem = PurePosixPath(name).stem
    return (0, int(stem), name) if stem.isdigit() else (1, 0, name)


def _decode_image(raw: bytes, what: str) -> np.ndarray:
    try:
        with Image.open(io.BytesIO(raw)) as im:
            return np.asarray(im.convert("RGB"), dtype=np.uint8)
    except Exception as exc:  # noqa: BLE001
        raise DataFormatError(f"{what}: cannot decode image ({exc})") from exc


def _assemble_tree(entries: dict[str, list[tuple[str, str, np.ndarray]]],
                   classes: Sequence[str] | None, where: str) -> dict[str, ImageSet]:
    if not entries:
        raise DataFormatError(f"{where}: no images found under train/<class>/ or test/<class>/")
    found = sorted({c for items in entries.values() for c, _, _ in items})
    if classes is None:
        classes = tuple(found)
    extra = [c for c in found if c not in classes]
    if extra:
        raise DataFormatError(f"{where}: unexpected class folders {extra}; expected {list(classes)}")
    index = {c: i for i, c in enumerate(classes)}
    out = {}
    for split, items in entries.items():
        items.sort(key=lambda t: (index[t[0]], _natural_key(t[1])))
        shapes = {a.shape for _, _, a in items}
        if len(shapes) != 1:
            raise DataFormatError(f"{where}/{split}: images have different shapes {sorted(shapes)}")
        out[split] = ImageSet(np.stack([a for _, _, a in items]),
                              np.array([index[c] for c, _, _ in items], dtype=np.int64), tuple(classes))
    return out


def _tree_member(parts: tuple[str, ...]) -> tuple[str, str] | None:
    if len(parts) < 3 or parts[-3] not in ("train", "test") or parts[-1].startswith("."):
        return None
    if not parts[-1].lower().endswith(_IMAGE_EXTS):
        return None
    return parts[-3], parts[-2]


def read_npz_images(path: str | os.PathLike) -> ImageSet:
    """An ``.npz`` of ``images`` (uint8, N x H x W x 3) and ``labels`` (N integers), optionally with
    the class names in ``label_names`` / ``fine_label_names`` (the shared CIFAR-100 file's format)."""
    path = Path(path)
    try:
        with np.load(path, allow_pickle=False) as f:
            files = set(f.files)
            if not {"images", "labels"} <= files:
                raise DataFormatError(f"{path}: an images .npz needs arrays 'images' and 'labels', it has "
                                      f"{sorted(files)}")
            images, labels = f["images"], f["labels"]
            names = next((f[k] for k in ("label_names", "fine_label_names", "classes") if k in files), None)
    except (OSError, ValueError, zlib.error) as exc:
        raise DataFormatError(f"{path}: not a readable .npz ({_reason(exc)})") from None
    if images.dtype != np.uint8 or images.ndim != 4 or images.shape[-1] != 3:
        raise DataFormatError(f"{path}: 'images' must be uint8 N x H x W x 3, got {images.dtype} {images.shape}")
    if labels.ndim != 1 or len(labels) != len(images):
        raise DataFormatError(f"{path}: 'labels' must hold one integer per image, got shape {labels.shape}")
    n_classes = int(labels.max()) + 1 if len(labels) else 0
    classes = tuple(str(c) for c in names) if names is not None else tuple(str(i) for i in range(n_classes))
    return ImageSet(np.ascontiguousarray(images), labels.astype(np.int64), classes)


def read_archive_members(path: str | os.PathLike, split: str = "train",
                         classes: Sequence[str] = CIFAR10_CLASSES) -> list[tuple[bytes, int]]:
    """The encoded images of ``split`` of a ``.tar.gz`` image tree (``<split>/<class>/<file>``), in the
    archive's order, as ``(bytes, label)``: for drawing a few images without decoding the rest
    (:func:`decode_images`). Only classes of ``classes`` are read."""
    out = []
    with tarfile.open(path, "r:gz") as tf:
        for m in tf:
            parts = m.name.split("/")
            if m.isfile() and len(parts) >= 3 and parts[-3] == split and parts[-2] in classes:
                out.append((tf.extractfile(m).read(), list(classes).index(parts[-2])))
    return out


def decode_images(raws: Sequence[bytes], what: str = "image") -> np.ndarray:
    """Encoded images (JPEG, PNG, ...) as one ``N x H x W x 3`` uint8 array (RGB)."""
    return np.stack([_decode_image(r, what) for r in raws])


_FOLDER_IMAGE_EXTS = (".png", ".jpg", ".jpeg", ".bmp")


def read_image_folder(path: str | Path, size: int) -> tuple[ImageSet, ImageSet | None]:
    """(train, test or None) from ``path/<class>/*`` or ``path/train/<class>/*`` (+ ``path/test/<class>/*``),
    every image converted to RGB and resized to ``size`` x ``size``; classes are the sorted folder names."""
    path = Path(path)
    root = path / "train" if (path / "train").is_dir() else path
    classes = sorted(d.name for d in root.iterdir() if d.is_dir() and not d.name.startswith("."))
    if len(classes) < 2:
        raise ValueError(f"{root}: need at least 2 class folders, found {len(classes)}")

    def read(folder: Path) -> ImageSet:
        images, labels = [], []
        for c, name in enumerate(classes):
            for f in sorted((folder / name).iterdir()) if (folder / name).is_dir() else []:
                if f.suffix.lower() in _FOLDER_IMAGE_EXTS:
                    with Image.open(f) as im:
                        images.append(np.asarray(im.convert("RGB").resize((size, size), Image.BILINEAR)))
                    labels.append(c)
        if not images:
            raise ValueError(f"{folder}: no images ({', '.join(_FOLDER_IMAGE_EXTS)}) in the class folders")
        return ImageSet(np.stack(images).astype(np.uint8), np.array(labels, dtype=np.int64), tuple(classes))

    test = read(path / "test") if root != path and (path / "test").is_dir() else None
    return read(root), test


def read_image_tree(path: str | os.PathLike, classes: Sequence[str] | None = None) -> dict[str, ImageSet]:
    """Read ``train|test/<class>/*.jpg|png`` from a folder or a ``.tar``/``.tar.gz`` of one.

    Class order is ``classes`` (default: sorted folder names); within a class, files are ordered by
    name (numerically when the stem is a number). A tar may also hold the CIFAR-10 python batches
    (the official ``cifar-10-python.tar.gz``); those are then read instead."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"missing image folder or tar {path}")
    entries: dict[str, list] = {}
    if path.is_dir():
        for split in ("train", "test"):
            sdir = path / split
            if not sdir.is_dir():
                continue
            for cdir in sorted(p for p in sdir.iterdir() if p.is_dir()):
                for f in cdir.iterdir():
                    if f.is_file() and _tree_member((split, cdir.name, f.name)):
                        entries.setdefault(split, []).append(
                            (cdir.name, f.name, _decode_image(f.read_bytes(), str(f))))
        return _assemble_tree(entries, classes, str(path))
    blobs: dict[str, bytes] = {}
    try:
        with tarfile.open(path, "r:*") as tf:
            for m in tf:
                if not m.isfile():
                    continue
                parts = PurePosixPath(m.name).parts
                base = parts[-1] if parts else ""
                if base in _CIFAR10_BATCHES or base == "batches.meta":
                    blobs[base] = tf.extractfile(m).read()
                    continue
                where = _tree_member(parts)
                if where is not None:
                    entries.setdefault(where[0], []).append(
                        (where[1], base, _decode_image(tf.extractfile(m).read(), f"{path}:{m.name}")))
    except _ARCHIVE_ERRORS as exc:
        raise DataFormatError(f"{path}: not a readable tar archive, truncated or corrupt ({_reason(exc)})") from None
    if all(f in blobs for f in _CIFAR10_BATCHES):
        return _cifar_from_pickles(blobs, "labels", "label_names", "batches.meta",
                                   _CIFAR10_BATCHES[:5], _CIFAR10_BATCHES[5:], str(path), CIFAR10_CLASSES)
    return _assemble_tree(entries, classes, str(path))


def _locate(name: str, root: Path) -> tuple[str, Path, list[Path]]:
    """Find the source format for ``name`` under ``root``: (kind, path, files that key the cache)."""
    if not root.exists():
        raise FileNotFoundError(f"{name}: data path {root} does not exist")
    if name == "cifar10":
        if root.is_file():
            return "tree", root, [root]
        for d in (root, root / "cifar-10-batches-py"):
            if (d / "data_batch_1").is_file():
                return "cifar10-batches", d, [d / f for f in _CIFAR10_BATCHES]
        if (root / "train").is_dir() or (root / "test").is_dir():
            files = sorted(p for s in ("train", "test") if (root / s).is_dir()
                           for p in (root / s).rglob("*") if p.is_file())
            return "tree", root, files
        raise FileNotFoundError(f"cifar10: {root} holds neither cifar-10-batches-py files (data_batch_1..5, "
                                "test_batch), nor a train|test/<class>/ image tree; or pass a .tar/.tar.gz")
    if name == "cifar100":
        for d in (root, root / "cifar-100-python"):
            if (d / "train").is_file() and (d / "test").is_file():
                return "cifar100", d, [d / "train", d / "test"]
        raise FileNotFoundError(f"cifar100: {root} has no cifar-100-python files 'train' and 'test'")
    if name == "imagenet16-120":
        for d in (root, root / "ImageNet16", root / "imagenet16"):
            if (d / "val_data").is_file():
                return "imagenet16", d, [d / f for f in (*_IN16_TRAIN, "val_data")]
        raise FileNotFoundError(f"imagenet16-120: {root} has no ImageNet16 pickles "
                                "(train_data_batch_1..10, val_data)")
    raise ValueError(f"dataset {name!r} is not read from files")


def check_source(name: str, root: str | os.PathLike) -> None:
    """One line (FileNotFoundError) unless ``root`` holds dataset ``name``'s files in a form
    :func:`read_source` reads; decodes nothing (a cheap check before any work)."""
    name = canonical_dataset(name)
    _locate("cifar10" if name == "cifar10-valid" else name, Path(root).expanduser())


def _decode_source(kind: str, path: Path) -> dict[str, ImageSet]:
    if kind == "cifar10-batches":
        return read_cifar10_batches(path)
    if kind == "tree":
        return read_image_tree(path, CIFAR10_CLASSES)
    if kind == "cifar100":
        return read_cifar100(path)
    if kind == "imagenet16":
        return read_imagenet16(path)
    raise ValueError(kind)


CacheDir = Union[str, os.PathLike, bool, None]
_WARNED: set[str] = set()


def default_cache_dir() -> Path:
    """The decoded-data cache folder: ``$NASBEFF_CACHE`` if set; else the user cache dir,
    ``$XDG_CACHE_HOME/nasbeff`` (``~/.cache/nasbeff`` by default; ``%LOCALAPPDATA%/nasbeff/Cache``
    on Windows). Safe to delete at any time."""
    env = os.environ.get("NASBEFF_CACHE", "").strip()
    if env:
        return Path(env).expanduser()
    if sys.platform == "win32" and os.environ.get("LOCALAPPDATA"):
        return Path(os.environ["LOCALAPPDATA"]) / "nasbeff" / "Cache"
    xdg = os.environ.get("XDG_CACHE_HOME", "")
    return (Path(xdg) if os.path.isabs(xdg) else Path.home() / ".cache") / "nasbeff"


def _warn_once(what: str, message: str) -> None:
    if what not in _WARNED:
        _WARNED.add(what)
        warnings.warn(message, RuntimeWarning, stacklevel=4)


def _content_key(kind: str, root: Path, files: Sequence[Path], cache: Path) -> str:
    """sha256 of the source's bytes (with member names relative to ``root``; a single file's own
    name does not count, so copies share a key). Memoised under ``cache/keys/`` by the files'
    (path, size, mtime), so an unchanged source is hashed once."""
    stats = hashlib.sha256(f"{_CACHE_VERSION}|{kind}".encode())
    for f in files:
        st = f.stat()
        stats.update(f"|{f.resolve()}|{st.st_size}|{st.st_mtime_ns}".encode())
    memo = cache / "keys" / f"{stats.hexdigest()[:32]}.txt"
    with contextlib.suppress(OSError, UnicodeDecodeError):
        key = memo.read_text().strip()
        if len(key) == 64:
            return key
    h = hashlib.sha256(f"{_CACHE_VERSION}|{kind}".encode())
    for f in files:
        rel = "" if f == root else f.relative_to(root).as_posix()
        h.update(f"|{rel}|{f.stat().st_size}|".encode())
        with open(f, "rb") as fh:
            for chunk in iter(lambda: fh.read(1 << 20), b""):
                h.update(chunk)
    key = h.hexdigest()
    with contextlib.suppress(OSError):
        with atomic_write(memo, "wb") as f:
            f.write(key.encode())
    return key


def _load_cache(path: Path, key: str) -> dict[str, ImageSet] | None:
    """The cached sets, or None (with a one-time warning) if the file is unreadable."""
    try:
        with np.load(path, allow_pickle=False) as z:
            if str(z["key"]) != key:
                raise ValueError("its key does not match its name")
            classes = tuple(str(c) for c in z["classes"])
            return {str(s): ImageSet(z[f"{s}_images"], z[f"{s}_labels"], classes) for s in z["splits"]}
    except Exception as exc:  # noqa: BLE001 - the cache is disposable: any failure means rebuild it
        _warn_once(str(path), f"{path}: unreadable data cache ({_reason(exc)}); rebuilding it")
        return None


def _save_cache(path: Path, key: str, sets: dict[str, ImageSet]) -> None:
    arrays = {}
    for s, d in sets.items():
        arrays[f"{s}_images"] = d.images
        arrays[f"{s}_labels"] = d.labels
    classes = next(iter(sets.values())).classes
    with atomic_write(path, "wb") as f:
        np.savez(f, key=np.array(key), classes=np.array(classes), splits=np.array(list(sets)), **arrays)


def read_source(name: str, root: str | os.PathLike, cache_dir: CacheDir = None) -> dict[str, ImageSet]:
    """Decode the full source of ``name`` (``"train"`` and ``"test"`` sets) from ``root``, once.

    The decoded uint8 arrays are cached as ``<cache_dir>/<name>_<key>.npz`` (uncompressed), where
    the key is a hash of the source files' content: a later call on the same bytes, from any path,
    loads that file instead of decoding again. ``cache_dir``: None (default) for
    :func:`default_cache_dir`, a folder, or False for no cache. A corrupt cache file is rebuilt;
    an unwritable cache folder only costs a warning."""
    name = canonical_dataset(name)
    if name == "cifar10-valid":
        name = "cifar10"
    kind, path, files = _locate(name, Path(root).expanduser())
    if cache_dir is False:
        return _decode_source(kind, path)
    cache = default_cache_dir() if cache_dir is None or cache_dir is True else Path(cache_dir).expanduser()
    key = _content_key(kind, path, files, cache)
    entry = cache / f"{name}_{key[:24]}.npz"
    if entry.is_file():
        hit = _load_cache(entry, key)
        if hit is not None:
            return hit
    sets = _decode_source(kind, path)
    try:
        _save_cache(entry, key, sets)
    except OSError as exc:
        _warn_once(str(entry), f"cannot write the data cache {entry} ({exc}); set $NASBEFF_CACHE to a "
                               "writable folder")
    return sets


def _read_split_file(path: str | os.PathLike, keys: tuple[tuple[str, ...], tuple[str, ...]], n: int
                     ) -> tuple[np.ndarray, np.ndarray]:
    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"missing split file {p}")
    try:
        obj = json.loads(p.read_text())
    except json.JSONDecodeError as exc:
        raise DataFormatError(f"{p}: split file must be JSON ({exc})") from exc
    out = []
    for names in keys:
        val = next((obj[k] for k in names if k in obj), None)
        if val is None:
            raise DataFormatError(f"{p}: split file needs one of the keys {list(names)}, has {sorted(obj)}")
        if len(val) == 2 and isinstance(val[0], str):  # NB201/AutoDL config form: ["int", [...]]
            val = val[1]
        idx = np.asarray(val, dtype=np.int64)
        if idx.ndim != 1 or (len(idx) and (idx.min() < 0 or idx.max() >= n)):
            raise DataFormatError(f"{p}: indices for {names[0]!r} must be a list of ints in 0..{n - 1}")
        out.append(idx)
    if np.intersect1d(out[0], out[1]).size:
        raise DataFormatError(f"{p}: the two index lists overlap")
    return out[0], out[1]


def load_dataset(name: str, root: str | os.PathLike | None = None, split: str | Sequence[str] = "train", *,
                 cache_dir: CacheDir = None, seed: int = 0,
                 split_file: str | os.PathLike | None = None) -> ImageSet | tuple[ImageSet, ...]:
    """Load one split (or a tuple of splits, decoded once) of a dataset as :class:`ImageSet`.

    Datasets and splits (NB201 naming, aliases and sizes in :mod:`nasbeff.data.names`):

    * ``cifar10``: ``train`` (50k) and ``ori-test`` (10k; ``test`` is accepted). NB201's "cifar10"
      setting trains on all 50k, so there is no validation split here.
    * ``cifar10-valid``: ``train`` (25k) / ``x-valid`` (the other 25k of the train set) /
      ``ori-test`` (10k). The halves are OUR seeded stratified split (2,500 per class each), not
      NB201's ``cifar-split.txt``, unless ``split_file`` (JSON with ``train`` and ``valid`` index
      lists, plain or AutoDL's ``["int", [...]]`` form) is given.
    * ``cifar100`` / ``imagenet16-120``: ``train``, ``ori-test`` (full test set: 10k / 6k) and its
      halves ``x-valid`` / ``x-test``. The halves are OUR seeded stratified 50/50 split unless
      ``split_file`` (JSON with ``xvalid`` and ``xtest``, as NB201's ``*-test-split.txt``) is given.
    * ``digits``: ``train`` / ``valid`` of :func:`load_digits` (``root`` is ignored).

    ``root`` is the folder holding the files (or a CIFAR-10 ``.tar``/``.tar.gz``). The decoded
    source is cached in ``cache_dir``: by default :func:`default_cache_dir` (``$NASBEFF_CACHE``);
    False disables the cache (see :func:`read_source`). ``seed`` only affects the seeded splits.
    Names are checked before any file is touched: ambiguous splits (e.g. ``test`` for
    ``cifar10-valid``) raise ValueError with an explanation. A truncated or corrupt source raises
    :class:`DataFormatError` naming the file.
    """
    name = canonical_dataset(name)
    many = not isinstance(split, str)
    splits = [canonical_split(name, s) for s in (split if many else [split])]
    if name == "digits":
        tr, va = load_digits(seed=seed)
        sets = {"train": tr, "valid": va}
        result = tuple(sets[s] for s in splits)
        return result if many else result[0]
    if root is None:
        raise ValueError(f"{name}: pass root, the folder (or tar) that holds the data files")
    src = read_source(name, root, cache_dir)

    def _need(base: str) -> ImageSet:
        if base not in src:
            raise FileNotFoundError(f"{name}: the source {root} has no {base!r} images")
        return src[base]

    def _pick(s: str) -> ImageSet:
        if name == "cifar10-valid" and s in ("train", "x-valid"):
            full = _need("train")
            if split_file is not None:
                tr, va = _read_split_file(split_file, (("train",), ("valid", "x-valid", "xvalid")), len(full))
            else:
                tr, va = stratified_split(full.labels, 0.5, seed)
            return full.subset(tr if s == "train" else va)
        if s == "train":
            return _need("train")
        full = _need("test")
        if s == "ori-test":
            return full
        if split_file is not None:
            va, te = _read_split_file(split_file, (("xvalid", "x-valid", "valid"), ("xtest", "x-test", "test")),
                                      len(full))
        else:
            te, va = stratified_split(full.labels, 0.5, seed)
        return full.subset(va if s == "x-valid" else te)

    result = tuple(_pick(s) for s in splits)
    return result if many else result[0]


def stratified_subset(data: ImageSet, size: int, seed: int = 0) -> ImageSet:
    """A seeded class-stratified subset of about ``size`` images (per class ``round(size / N * n_c)``;
    exactly balanced when ``data`` is), e.g. 5,000 CIFAR-10 training images = 500 per class.
    Uses :func:`stratified_split`, so it is deterministic in ``seed``; images keep their order."""
    n = len(data)
    if not 0 < size <= n:
        raise ValueError(f"size must be in 1..{n}, got {size}")
    if size == n:
        return data
    _, keep = stratified_split(data.labels, size / n, seed)
    return data.subset(keep)


# ---------------------------------------------------------------------------------------------
# On-device batch iterators
# ---------------------------------------------------------------------------------------------

class DeviceBatches:
    """Batches from a uint8 image tensor held once on ``device``.

    Each batch is ``(x, y)`` with ``x`` float (B, C, H, W) normalised by ``mean``/``std`` (default:
    the data's own channel statistics) and ``y`` int64. With ``augment``, each image gets a random
    crop of its zero-padded (``pad`` pixels) copy and, if ``flip``, a horizontal flip with
    probability 1/2, all by tensor indexing on the device. Order and augmentation come from a CPU
    ``torch.Generator`` seeded from ``(seed, epoch)``, so epoch ``e`` is identical on any device and
    regardless of earlier epochs. Iterating the object runs epochs 0, 1, 2, ...; :meth:`epoch`
    gives one epoch directly.
    """

    def __init__(self, data: ImageSet, batch_size: int, *, device: torch.device | str = "cpu",
                 mean: Sequence[float] | None = None, std: Sequence[float] | None = None,
                 augment: bool = True, shuffle: bool | None = None, pad: int = 4, flip: bool = True,
                 seed: int = 0, drop_last: bool = False, dtype: torch.dtype = torch.float32) -> None:
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        if pad < 0:
            raise ValueError(f"pad must be >= 0, got {pad}")
        self.device = torch.device(device)
        self.images = torch.as_tensor(data.images).permute(0, 3, 1, 2).contiguous().to(self.device)
        self.labels = torch.as_tensor(data.labels, dtype=torch.int64).to(self.device)
        if mean is None:
            mean, std = channel_stats(data)
        if std is None:
            std = (1.0,) * len(mean)
        c = self.images.shape[1]
        if len(mean) != c or len(std) != c:
            raise ValueError(f"mean/std need {c} values, got {len(mean)}/{len(std)}")
        self.mean = torch.tensor(mean, dtype=dtype, device=self.device).view(1, c, 1, 1)
        self.std = torch.tensor(std, dtype=dtype, device=self.device).view(1, c, 1, 1)
        self.batch_size, self.augment, self.pad, self.flip = int(batch_size), augment, int(pad), flip
        self.shuffle = augment if shuffle is None else shuffle
        self.seed, self.drop_last, self.dtype = int(seed), drop_last, dtype
        self._next_epoch = 0

    def __len__(self) -> int:
        n = len(self.labels)
        return n // self.batch_size if self.drop_last else -(-n // self.batch_size)

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        e, self._next_epoch = self._next_epoch, self._next_epoch + 1
        return self.epoch(e)

    def epoch(self, epoch: int) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """The batches of epoch ``epoch`` (deterministic in ``(seed, epoch)``)."""
        gen = torch.Generator().manual_seed(int(np.random.SeedSequence([self.seed, epoch]).generate_state(1)[0]))
        n = len(self.labels)
        order = torch.randperm(n, generator=gen) if self.shuffle else torch.arange(n)
        for start in range(0, n, self.batch_size):
            idx = order[start:start + self.batch_size]
            if self.drop_last and len(idx) < self.batch_size:
                break
            offs = flips = None
            if self.augment:
                offs = torch.randint(0, 2 * self.pad + 1, (len(idx), 2), generator=gen)
                flips = torch.rand(len(idx), generator=gen) < 0.5
            idx = idx.to(self.device)
            x = self.images[idx]
            if self.augment:
                x = self._augment(x, offs.to(self.device), flips.to(self.device))
            x = (x.to(self.dtype).div_(255.0) - self.mean) / self.std
            yield x, self.labels[idx]

    def _augment(self, x: torch.Tensor, offs: torch.Tensor, flips: torch.Tensor) -> torch.Tensor:
        b, c, h, w = x.shape
        if self.pad:
            x = torch.nn.functional.pad(x, (self.pad,) * 4)
        dev = x.device
        rows = offs[:, :1] + torch.arange(h, device=dev)  # (B, H)
        cols = offs[:, 1:] + torch.arange(w, device=dev)  # (B, W)
        if self.flip:
            cols = torch.where(flips[:, None], cols.flip(1), cols)
        bi = torch.arange(b, device=dev).view(b, 1, 1, 1)
        ci = torch.arange(c, device=dev).view(1, c, 1, 1)
        return x[bi, ci, rows.view(b, 1, h, 1), cols.view(b, 1, 1, w)]


def train_batches(data: ImageSet, batch_size: int, *, device: torch.device | str = "cpu",
                  mean: Sequence[float] | None = None, std: Sequence[float] | None = None,
                  pad: int = 4, flip: bool = True, seed: int = 0, drop_last: bool = False) -> DeviceBatches:
    """Shuffled, augmented (pad-``pad`` random crop + horizontal flip) batches on ``device``."""
    return DeviceBatches(data, batch_size, device=device, mean=mean, std=std, augment=True, shuffle=True,
                         pad=pad, flip=flip, seed=seed, drop_last=drop_last)


def eval_batches(data: ImageSet, batch_size: int, *, device: torch.device | str = "cpu",
                 mean: Sequence[float] | None = None, std: Sequence[float] | None = None) -> DeviceBatches:
    """Plain batches in data order (no augmentation, no shuffling) on ``device``, for evaluation."""
    return DeviceBatches(data, batch_size, device=device, mean=mean, std=std, augment=False, shuffle=False)
