"""Early training with the frozen neural capacitance probe, recording beta_eff every epoch.

The paper's setting: the NCP replaces the network's head and is never updated; the backbone
trains (SGD with Nesterov momentum, cosine learning rate); after every epoch nasbeff records the
training loss, the validation accuracy of the probed network, and beta_eff of the probe on a
fixed, seeded subset of training samples (features from the backbone in eval mode).
"""

from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass
from typing import Callable, Iterator

import torch
from torch import nn

from .capacitance import capacitance
from .probe import ProbedNet, probe_inputs


@dataclass(frozen=True)
class TrainConfig:
    epochs: int = 5
    schedule_epochs: int | None = None  # cosine schedule length (default: epochs)
    lr: float = 0.1
    momentum: float = 0.9
    weight_decay: float = 5e-4
    batch_size: int = 128
    beta_samples: int = 512
    seed: int = 0
    mode: str = "local"

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


def _batches(n: int, batch_size: int, gen: torch.Generator, device) -> Iterator[torch.Tensor]:
    perm = torch.randperm(n, generator=gen).to(device)
    for i in range(0, n, batch_size):
        yield perm[i:i + batch_size]


@torch.no_grad()
def accuracy(model: nn.Module, x: torch.Tensor, y: torch.Tensor, batch_size: int = 1024) -> float:
    """Top-1 accuracy in percent, in eval mode (the model's mode is restored)."""
    was = model.training
    model.eval()
    try:
        correct = sum(int((model(x[i:i + batch_size]).argmax(1) == y[i:i + batch_size]).sum())
                      for i in range(0, x.shape[0], batch_size))
    finally:
        model.train(was)
    return 100.0 * correct / max(1, x.shape[0])


def beta_subset(n: int, size: int, seed: int) -> torch.Tensor:
    """Fixed, seeded indices of the training samples on which beta_eff is measured."""
    gen = torch.Generator().manual_seed(10_007 + seed)
    return torch.randperm(n, generator=gen)[:min(size, n)].sort().values


def train_with_probe(model: ProbedNet, x_train: torch.Tensor, y_train: torch.Tensor, x_valid: torch.Tensor,
                     y_valid: torch.Tensor, config: TrainConfig = TrainConfig(),
                     augment: Callable[[torch.Tensor, torch.Generator], torch.Tensor] | None = None,
                     on_epoch: Callable[[EpochRecord], None] | None = None, start_epoch: int = 0) -> list[EpochRecord]:
    """Train ``model.backbone`` under the frozen probe for ``config.epochs`` epochs; return one
    :class:`EpochRecord` per epoch (``on_epoch`` is called as each finishes)."""
    if config.epochs < 1:
        raise ValueError("epochs must be >= 1")
    torch.manual_seed(config.seed)
    gen = torch.Generator().manual_seed(config.seed)
    params = [p for p in model.backbone.parameters() if p.requires_grad]
    if not params:
        raise ValueError("the backbone has no trainable parameters")
    opt = torch.optim.SGD(params, lr=config.lr, momentum=config.momentum, nesterov=config.momentum > 0,
                          weight_decay=config.weight_decay)
    total = config.schedule_epochs or config.epochs
    steps_per_epoch = math.ceil(x_train.shape[0] / config.batch_size)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: 0.5 * (1 + math.cos(math.pi * min(s / (total * steps_per_epoch), 1.0))))
    sub = beta_subset(x_train.shape[0], config.beta_samples, config.seed).to(x_train.device)
    loss_fn = nn.CrossEntropyLoss()
    records = []
    for epoch in range(start_epoch + 1, config.epochs + 1):
        model.train()
        t0 = time.perf_counter()
        running, seen = 0.0, 0
        for idx in _batches(x_train.shape[0], config.batch_size, gen, x_train.device):
            xb, yb = x_train[idx], y_train[idx]
            if augment is not None:
                xb = augment(xb, gen)
            loss = loss_fn(model(xb), yb)
            if not torch.isfinite(loss):
                raise FloatingPointError(f"non-finite training loss at epoch {epoch}: lower the learning rate")
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            running += float(loss.detach()) * yb.shape[0]
            seen += yb.shape[0]
        if x_train.device.type == "cuda":
            torch.cuda.synchronize()
        t1 = time.perf_counter()
        acc = accuracy(model, x_valid, y_valid)
        t2 = time.perf_counter()
        feats, labels = probe_inputs(model, x_train[sub], y_train[sub])
        beff = capacitance(model.probe, feats, labels, mode=config.mode).beta_eff
        t3 = time.perf_counter()
        rec = EpochRecord(epoch, running / max(seen, 1), acc, beff, t1 - t0 + (t2 - t1), t3 - t2)
        records.append(rec)
        if on_epoch is not None:
            on_epoch(rec)
    return records
