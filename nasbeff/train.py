"""Early training with the frozen neural capacitance probe, recording beta_eff every epoch.

The paper's setting (``placement="head"``): the NCP replaces the network's head and is never
updated; the backbone trains (SGD with Nesterov momentum, cosine learning rate). Option
``placement="side"``: the network keeps and trains its own head, and the NCP only reads the pooled
features to measure beta_eff (it does not change training). After every epoch nasbeff records the
training loss, the validation accuracy, and beta_eff of the probe on a fixed, seeded subset of
training samples (features from the backbone in eval mode).
"""

from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass
from typing import Callable, Iterable, Iterator, Literal

import torch
from torch import nn

from .capacitance import capacitance
from .probe import NCP, ProbedNet

Batches = Iterable[tuple[torch.Tensor, torch.Tensor]]


@dataclass(frozen=True)
class TrainConfig:
    """Early-training hyper-parameters. ``schedule_epochs`` is the cosine schedule's length
    (default: ``epochs``; NB201 uses 200, so the first epochs match the benchmark's)."""

    epochs: int = 5
    schedule_epochs: int | None = None
    lr: float = 0.1
    momentum: float = 0.9
    weight_decay: float = 5e-4
    batch_size: int = 128
    beta_samples: int = 512
    seed: int = 0
    mode: str = "local"
    placement: Literal["head", "side"] = "head"
    amp: bool = False  # bfloat16 autocast on CUDA

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class EpochRecord:
    epoch: int
    train_loss: float
    valid_acc: float
    beta_eff: float
    seconds_train: float
    seconds_beta: float

    def to_dict(self) -> dict:
        return asdict(self)


@torch.no_grad()
def accuracy(model: nn.Module, x: torch.Tensor | Batches, y: torch.Tensor | None = None, batch_size: int = 1024) -> float:
    """Top-1 accuracy in percent, in eval mode (the model's mode is restored). Pass tensors
    (x, y) or an iterable of (x, y) batches as ``x``."""
    was = model.training
    model.eval()
    batches = ((x[i:i + batch_size], y[i:i + batch_size]) for i in range(0, x.shape[0], batch_size)) \
        if isinstance(x, torch.Tensor) else x
    correct = total = 0
    try:
        for xb, yb in batches:
            correct += int((model(xb).argmax(1) == yb).sum())
            total += int(yb.shape[0])
    finally:
        model.train(was)
    return 100.0 * correct / max(1, total)


def beta_subset(n: int, size: int, seed: int) -> torch.Tensor:
    """Fixed, seeded indices of the training samples on which beta_eff is measured."""
    gen = torch.Generator().manual_seed(10_007 + seed)
    return torch.randperm(n, generator=gen)[:min(size, n)].sort().values


class EarlyTrainer:
    """Trains ``model`` (all its trainable parameters; a frozen probe has none) for one epoch per
    :meth:`epoch` call and measures beta_eff of ``probe`` on ``features(x)``; checkpointable."""

    def __init__(self, model: nn.Module, probe: NCP, features: Callable[[torch.Tensor], torch.Tensor],
                 config: TrainConfig, steps_per_epoch: int) -> None:
        if config.epochs < 1:
            raise ValueError("epochs must be >= 1")
        self.model, self.probe, self.features, self.config = model, probe, features, config
        params = [p for p in model.parameters() if p.requires_grad]
        if not params:
            raise ValueError("the network has no trainable parameters")
        self.opt = torch.optim.SGD(params, lr=config.lr, momentum=config.momentum, nesterov=config.momentum > 0,
                                   weight_decay=config.weight_decay)
        total = (config.schedule_epochs or config.epochs) * max(1, steps_per_epoch)
        self.sched = torch.optim.lr_scheduler.LambdaLR(
            self.opt, lambda s: 0.5 * (1 + math.cos(math.pi * min(s / total, 1.0))))
        self.loss_fn = nn.CrossEntropyLoss()
        self.epochs_done = 0

    @classmethod
    def for_network(cls, net: nn.Module, probe: NCP, config: TrainConfig, steps_per_epoch: int,
                    head: str = "classifier") -> "EarlyTrainer":
        """``placement="head"``: the probe replaces ``net``'s head (attribute ``head``);
        ``"side"``: ``net`` trains with its own head and the probe reads ``net.forward_features``."""
        if config.placement == "head":
            model = ProbedNet(net, probe, head=head)
            return cls(model, probe, model.features, config, steps_per_epoch)
        if config.placement == "side":
            return cls(net, probe, lambda x: net.forward_features(x).flatten(1), config, steps_per_epoch)
        raise ValueError(f"placement must be 'head' or 'side', got {config.placement!r}")

    def _autocast(self, device: torch.device):
        return torch.autocast("cuda", dtype=torch.bfloat16, enabled=self.config.amp and device.type == "cuda")

    def epoch(self, batches: Batches) -> tuple[float, float]:
        """One training epoch; returns (mean training loss, seconds)."""
        self.model.train()
        t0 = time.perf_counter()
        running, seen, dev = 0.0, 0, None
        for xb, yb in batches:
            dev = xb.device
            with self._autocast(dev):
                loss = self.loss_fn(self.model(xb), yb)
            if not torch.isfinite(loss):
                raise FloatingPointError(f"non-finite training loss at epoch {self.epochs_done + 1}: lower the learning rate")
            self.opt.zero_grad(set_to_none=True)
            loss.backward()
            self.opt.step()
            self.sched.step()
            running += float(loss.detach()) * yb.shape[0]
            seen += yb.shape[0]
        if dev is not None and dev.type == "cuda":
            torch.cuda.synchronize()
        self.epochs_done += 1
        return running / max(seen, 1), time.perf_counter() - t0

    def beta(self, x: torch.Tensor, y: torch.Tensor, batch_size: int = 256) -> tuple[float, float]:
        """(beta_eff of the probe on the backbone's eval-mode features of (x, y), seconds)."""
        t0 = time.perf_counter()
        was = self.model.training
        self.model.eval()
        try:
            with torch.no_grad():
                feats = torch.cat([self.features(x[i:i + batch_size]) for i in range(0, x.shape[0], batch_size)])
        finally:
            self.model.train(was)
        value = capacitance(self.probe, feats.float(), y, mode=self.config.mode).beta_eff
        return value, time.perf_counter() - t0

    def state_dict(self) -> dict:
        return {"model": self.model.state_dict(), "opt": self.opt.state_dict(), "sched": self.sched.state_dict(),
                "epochs_done": self.epochs_done, "torch_rng": torch.get_rng_state()}

    def load_state_dict(self, state: dict) -> None:
        self.model.load_state_dict(state["model"])
        self.opt.load_state_dict(state["opt"])
        self.sched.load_state_dict(state["sched"])
        self.epochs_done = int(state["epochs_done"])
        torch.set_rng_state(state["torch_rng"])


def _tensor_batches(x: torch.Tensor, y: torch.Tensor, batch_size: int, gen: torch.Generator,
                    augment: Callable[[torch.Tensor, torch.Generator], torch.Tensor] | None) -> Iterator:
    perm = torch.randperm(x.shape[0], generator=gen).to(x.device)
    for i in range(0, x.shape[0], batch_size):
        idx = perm[i:i + batch_size]
        xb = x[idx]
        yield (augment(xb, gen) if augment is not None else xb), y[idx]


def train_with_probe(model: ProbedNet, x_train: torch.Tensor, y_train: torch.Tensor, x_valid: torch.Tensor,
                     y_valid: torch.Tensor, config: TrainConfig = TrainConfig(),
                     augment: Callable[[torch.Tensor, torch.Generator], torch.Tensor] | None = None,
                     on_epoch: Callable[[EpochRecord], None] | None = None) -> list[EpochRecord]:
    """Train ``model.backbone`` under its frozen probe on in-memory tensors for ``config.epochs``
    epochs; one :class:`EpochRecord` per epoch (``on_epoch`` is called as each finishes)."""
    torch.manual_seed(config.seed)
    gen = torch.Generator().manual_seed(config.seed)
    steps = math.ceil(x_train.shape[0] / config.batch_size)
    trainer = EarlyTrainer(model, model.probe, model.features, config, steps)
    sub = beta_subset(x_train.shape[0], config.beta_samples, config.seed).to(x_train.device)
    records = []
    for epoch in range(1, config.epochs + 1):
        loss, secs = trainer.epoch(_tensor_batches(x_train, y_train, config.batch_size, gen, augment))
        t1 = time.perf_counter()
        acc = accuracy(model, x_valid, y_valid)
        secs += time.perf_counter() - t1
        beff, secs_beta = trainer.beta(x_train[sub], y_train[sub])
        rec = EpochRecord(epoch, loss, acc, beff, secs, secs_beta)
        records.append(rec)
        if on_epoch is not None:
            on_epoch(rec)
    return records
