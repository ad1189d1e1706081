"""``nasbeff zoo pretrain``: train every zoo backbone on the source task (CIFAR-10 classes 0-4)
and write its weights with their SHA-256 and source test accuracy to a manifest.

Each backbone is one unit: seeded (``torch.manual_seed(seed)`` before it is built; batches from
the seed and the epoch) and run with one torch thread, so the same config gives the same weights
file, byte for byte, on the same torch build. ``<out>/<name>.pt`` holds the ``state_dict`` (keys
``body.*`` / ``head.*``, loadable with :func:`nasbeff.selection.zoo.load_weights`); ``<out>/manifest.json``
holds the config, its hash and per backbone: family, definition, params, feature_dim, file,
sha256, source_test_acc, epochs, train_images, seconds, recipe (the backbone's own overrides of the
config, :attr:`nasbeff.selection.zoo.ZooEntry.source_recipe`). Resumable per backbone: a backbone whose manifest
entry and file (same hash, same definition and recipe) exist is skipped; the manifest is rewritten
atomically after each backbone. A folder pre-trained under another config is refused rather than mixed.
"""

from __future__ import annotations

import json
import math
import os
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Literal

import torch

from ..store import atomic_write
from ..executors.backends import make_backend
from ..store import config_hash
from ._common import Progress, check_device, check_writable, no_progress, parse_names

SOURCE = "CIFAR-10 classes 0-4 (airplane, automobile, bird, cat, deer)"


@dataclass(frozen=True)
class PretrainConfig:
    """The per-backbone budget and how it trains (hashed into the manifest), plus where and how to run."""

    data: Path
    models: tuple[str, ...] = ()
    out: Path = Path("runs/zoo")
    epochs: int = 10
    train_size: int = 10_000
    test_size: int = 0
    batch_size: int = 128
    optimizer: Literal["sgd", "adam"] = "sgd"
    lr: float = 0.05
    weight_decay: float = 5e-4
    augment: bool = True
    seed: int = 0
    workers: int = 1
    device: str = "cpu"

    def __post_init__(self) -> None:
        from ..selection.zoo import ZOO, entry

        object.__setattr__(self, "models", self.models or tuple(ZOO))
        check_writable(Path(self.out) / "manifest.json", "--out")
        parse_names(self.models, "--models")
        for m in self.models:
            entry(m)
        for opt, v in (("--epochs", self.epochs), ("--batch-size", self.batch_size), ("--workers", self.workers)):
            if v < 1:
                raise ValueError(f"{opt} must be >= 1, got {v}")
        if not 1 <= self.train_size <= 25_000:
            raise ValueError(f"--train-size {self.train_size} is not in 1..25,000 (the source task's training images)")
        if not 0 <= self.test_size <= 5_000:
            raise ValueError(f"--test-size {self.test_size} is not in 0..5,000 (0 = all source test images)")
        if not (math.isfinite(self.lr) and self.lr > 0):
            raise ValueError(f"--lr must be a number > 0, got {self.lr}")
        if not self.weight_decay >= 0:
            raise ValueError(f"weight_decay (a --config key) must be >= 0, got {self.weight_decay}")
        if self.optimizer not in ("sgd", "adam"):
            raise ValueError(f"--optimizer must be sgd or adam, got {self.optimizer!r}")
        if not Path(self.data).exists():
            raise FileNotFoundError(f"--data {self.data} does not exist (give CIFAR-10 images: a cifar-10-batches-py "
                                    "folder, a train|test/<class>/ image tree or a .tar(.gz) of one)")
        if self.out.exists() and not self.out.is_dir():
            raise ValueError(f"--out {self.out} is a file, not a folder")
        check_device(self.device)

    def training(self) -> dict:
        """What determines the weights (the manifest's hashed config)."""
        d = asdict(self)
        for k in ("data", "models", "out", "workers", "device"):
            d.pop(k)
        return {"source": SOURCE, "protocol": 1, **d}


@dataclass(frozen=True)
class PretrainJob:
    """Pre-train one backbone: ``job(name) -> manifest entry`` (writes ``<out>/<name>.pt``)."""

    data: str
    config: dict
    out: str
    device: str = "cpu"

    def __call__(self, name: str) -> dict:
        from ..selection import Feeder, load_source
        from ..training.loop import EarlyTrainer, TrainConfig, accuracy
        from ..selection.zoo import build, entry, file_sha256

        e = entry(name)
        c = {**self.config, **dict(e.source_recipe)}
        src = load_source(self.data, c["train_size"], c["test_size"], seed=0)
        torch.manual_seed(c["seed"])
        net = build(name, src.num_classes).to(self.device).to(memory_format=torch.channels_last)
        feed = Feeder(src, e.mean, e.std, e.input_size, c["batch_size"], c["seed"], c["augment"], self.device)
        cfg = TrainConfig(epochs=c["epochs"], lr=c["lr"], weight_decay=c["weight_decay"], batch_size=c["batch_size"],
                          seed=c["seed"], optimizer=c["optimizer"], schedule="cosine")
        t0 = time.perf_counter()
        EarlyTrainer(net, cfg, feed.steps).run(c["epochs"], feed.train)
        seconds = time.perf_counter() - t0
        acc = accuracy(net, feed.plain("test"))
        path = Path(self.out) / f"{name}.pt"
        with atomic_write(path, "wb") as f:
            torch.save({k: v.detach().cpu().contiguous() for k, v in net.state_dict().items()}, f)
        return {"family": e.family, "definition": e.definition, "params": sum(p.numel() for p in net.parameters()),
                "feature_dim": net.feature_dim, "file": path.name, "sha256": file_sha256(path),
                "source_test_acc": acc, "epochs": c["epochs"], "train_images": len(src.train),
                "test_images": len(src.test), "seconds": seconds, "recipe": dict(e.source_recipe)}


def read_manifest(folder: str | os.PathLike) -> dict:
    """``<folder>/manifest.json`` of ``nasbeff zoo pretrain`` (one clear line when absent or broken)."""
    path = Path(folder) / "manifest.json"
    if not path.is_file():
        raise FileNotFoundError(f"no zoo manifest {path}: run nasbeff zoo pretrain --out {folder} first")
    try:
        man = json.loads(path.read_text())
        assert isinstance(man.get("models"), dict) and "config_hash" in man
    except (json.JSONDecodeError, UnicodeDecodeError, AssertionError, AttributeError):
        raise ValueError(f"{path} is not a nasbeff zoo manifest") from None
    return man


@dataclass
class PretrainResult:
    rows: list[dict]  # one per requested backbone: name + its manifest entry
    trained: int
    manifest: Path


def run_pretrain(cfg: PretrainConfig, on_progress: Progress = no_progress) -> PretrainResult:
    """Pre-train every requested backbone not in the manifest yet (see the module docstring)."""
    from ..selection.zoo import entry, file_sha256

    training = cfg.training()
    chash = config_hash(training)
    cfg.out.mkdir(parents=True, exist_ok=True)
    path = cfg.out / "manifest.json"
    man = read_manifest(cfg.out) if path.exists() else {"config": training, "config_hash": chash, "models": {}}
    if man["config_hash"] != chash:
        raise ValueError(f"{path} was pre-trained with another config ({man['config_hash']}, this one is {chash}); "
                         "choose another --out")

    def done(name: str) -> bool:  # same file, same definition and recipe (a changed backbone is trained again)
        item, e = man["models"].get(name), entry(name)
        f = cfg.out / item["file"] if item else None
        return bool(f is not None and f.is_file() and file_sha256(f) == item["sha256"]
                    and item.get("definition") == e.definition and item.get("recipe", {}) == dict(e.source_recipe))

    todo = [m for m in cfg.models if not done(m)]
    job = PretrainJob(str(Path(cfg.data).resolve()), training, str(cfg.out.resolve()), cfg.device)
    backend = make_backend("local", 1, device=cfg.device, workers=cfg.workers)
    n_done = len(cfg.models) - len(todo)
    on_progress(n_done, len(cfg.models), "pre-training")

    def commit(name: str, item: dict) -> None:
        nonlocal n_done
        man["models"][name] = item
        with atomic_write(path, "w") as f:
            f.write(json.dumps(man, indent=1, sort_keys=True))
        n_done += 1
        on_progress(n_done, len(cfg.models), name)

    try:
        backend.map_units(job, todo, on_result=commit)
    finally:
        backend.close()
    return PretrainResult([{"name": m, **man["models"][m]} for m in cfg.models], len(todo), path)
