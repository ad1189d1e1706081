"""One fine-tuning run of pre-trained model selection (paper, Table 1): batches at a backbone's input
size and normalisation (:class:`Feeder`), :func:`finetune` (the backbone's head replaced by the
frozen NCP, every layer trained: batch 64, Adam, learning rate 1e-3 constant, no weight decay,
recording per epoch validation accuracy, beta_eff of the probe (Eqs. 2, 5-7) and the summed
training loss, TSE's ``L_t``) and :func:`transfer_scores` (LogME, LEEP, NCE of the pre-trained
backbone, before any fine-tuning). Targets are in :mod:`.targets`, the comparison in :mod:`.table1`.
"""
from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from ..data.loaders import DeviceBatches
from ..training.loop import EarlyTrainer, EpochRecord, TrainConfig, beta_subset
from .targets import SplitData

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


