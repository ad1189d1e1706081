"""Early training with the frozen neural capacitance probe, recording beta_eff every epoch.

The paper's setting (``placement="head"``): the NCP replaces the network's head and is never
updated; the backbone trains (SGD with Nesterov momentum, cosine learning rate). Option
``placement="side"``: the network keeps and trains its own head, and the NCP only reads the pooled
features to measure beta_eff (it does not change training). After every epoch nasbeff records the
training loss, the validation accuracy, and beta_eff of the probe on a fixed, seeded subset of
training samples (features from the backbone in eval mode, or with ``bn="batch"`` in train-mode
BatchNorm that normalises by the batch's own statistics without touching the running ones). A
``step_hook(step)`` passed to :meth:`EarlyTrainer.run` observes the run between optimizer steps
(e.g. beta_eff at evenly spaced steps); its time is not counted as training time.
"""

from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass, field
from typing import Callable, Iterable, Iterator, Literal

import torch
from torch import nn

from ..core.capacitance import Capacitance, capacitance
from ..core.probe import NCP, ProbedNet

Batches = Iterable[tuple[torch.Tensor, torch.Tensor]]


MODES = ("local", "hessian")
PLACEMENTS = ("head", "side")
BETA_BN = ("eval", "batch")
OPTIMIZERS = ("sgd", "adam")
SCHEDULES = ("cosine", "constant")


@dataclass(frozen=True)
class TrainConfig:
    """Early-training hyper-parameters, validated on construction. ``optimizer``: SGD with Nesterov
    momentum (NB201) or Adam (the paper's Keras fine-tuning); ``schedule``: cosine over
    ``schedule_epochs`` (default: ``epochs``; NB201 uses 200, so the first epochs match the
    benchmark's) or constant. ``mode`` is the beta_eff mode (:func:`nasbeff.core.capacitance`)."""

    epochs: int = 5
    schedule_epochs: int | None = None
    lr: float = 0.1
    momentum: float = 0.9
    weight_decay: float = 5e-4
    batch_size: int = 128
    beta_samples: int = 512
    seed: int = 0
    mode: Literal["local", "hessian"] = "local"
    placement: Literal["head", "side"] = "head"
    amp: bool = False  # bfloat16 autocast on CUDA
    optimizer: Literal["sgd", "adam"] = "sgd"
    schedule: Literal["cosine", "constant"] = "cosine"

    def __post_init__(self) -> None:
        if self.epochs < 1:
            raise ValueError(f"epochs must be >= 1, got {self.epochs}")
        if self.schedule_epochs is not None and self.schedule_epochs < self.epochs:
            raise ValueError(f"schedule_epochs ({self.schedule_epochs}) must be >= epochs ({self.epochs})")
        if not (math.isfinite(self.lr) and self.lr > 0):
            raise ValueError(f"lr must be > 0, got {self.lr}")
        for name, v in (("batch_size", self.batch_size), ("beta_samples", self.beta_samples)):
            if v < 1:
                raise ValueError(f"{name} must be >= 1, got {v}")
        if self.mode not in MODES:
            raise ValueError(f"mode must be one of {', '.join(MODES)}, got {self.mode!r}")
        if self.placement not in PLACEMENTS:
            raise ValueError(f"placement must be one of {', '.join(PLACEMENTS)}, got {self.placement!r}")
        if self.optimizer not in OPTIMIZERS or self.schedule not in SCHEDULES:
            raise ValueError(f"optimizer/schedule must be one of {OPTIMIZERS}/{SCHEDULES}, got "
                             f"{self.optimizer!r}/{self.schedule!r}")

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class EpochRecord:
    """What one epoch of :meth:`EarlyTrainer.run` measured. ``beta_eff`` is None without a probe
    or without beta_eff data; ``valid_acc`` is None without validation data; ``extra`` holds
    beta_eff on further sample sizes (``beta_eff_<n>``)."""

    epoch: int
    train_loss: float
    valid_acc: float | None
    beta_eff: float | None
    seconds_train: float
    seconds_eval: float = 0.0
    seconds_beta: float = 0.0
    extra: dict = field(default_factory=dict)
    step_losses: tuple[float, ...] = ()  # every mini-batch's training loss (TSE and friends)

    def metrics(self) -> dict:
        """The flat metrics dict stored per epoch (``epoch`` and ``step_losses`` excluded, absent
        values dropped)."""
        out = {"train_loss": self.train_loss, "valid_acc": self.valid_acc, "beta_eff": self.beta_eff,
               "seconds_train": self.seconds_train, "seconds_eval": self.seconds_eval,
               "seconds_beta": self.seconds_beta, **self.extra}
        return {k: v for k, v in out.items() if v is not None}


@torch.no_grad()
def accuracy(model: nn.Module, x: torch.Tensor | Batches, y: torch.Tensor | None = None, batch_size: int = 1024) -> float:
    """Top-1 accuracy in percent, in eval mode (the model's mode is restored). Pass tensors
    (x, y) or an iterable of (x, y) batches as ``x``."""
    was = model.training
    model.eval()
    batches = tensor_chunks(x, y, batch_size) if isinstance(x, torch.Tensor) else x
    correct = total = 0
    try:
        for xb, yb in batches:
            correct += int((model(xb).argmax(1) == yb).sum())
            total += int(yb.shape[0])
    finally:
        model.train(was)
    return 100.0 * correct / max(1, total)


def tensor_chunks(x: torch.Tensor, y: torch.Tensor, batch_size: int) -> Iterator:
    """(x, y) in consecutive chunks of ``batch_size`` (evaluation order)."""
    return ((x[i:i + batch_size], y[i:i + batch_size]) for i in range(0, x.shape[0], batch_size))


def beta_subset(n: int, size: int, seed: int) -> torch.Tensor:
    """Fixed, seeded indices of the training samples on which beta_eff is measured."""
    gen = torch.Generator().manual_seed(10_007 + seed)
    return torch.randperm(n, generator=gen)[:min(size, n)].sort().values


class EarlyTrainer:
    """The one training loop of nasbeff: SGD (Nesterov momentum) with a cosine schedule over
    ``config.schedule_epochs`` on ``model``'s trainable parameters (a frozen probe has none).

    With a ``probe`` (and its ``features``), :meth:`beta` measures beta_eff of the probe on the
    backbone's eval-mode features; without one the loop trains a plain network (ground-truth runs).
    :meth:`run` trains epoch after epoch, evaluating and measuring beta_eff after each, and calls
    ``on_epoch(record)`` as each finishes (where callers checkpoint and commit). Checkpointable with
    :meth:`state_dict` / :meth:`load_state_dict`; :attr:`epochs_done` says where to resume."""

    def __init__(self, model: nn.Module, config: TrainConfig, steps_per_epoch: int, probe: NCP | None = None,
                 features: Callable[[torch.Tensor], torch.Tensor] | None = None) -> None:
        if (probe is None) != (features is None):
            raise ValueError("pass both probe and features (or neither, for plain training)")
        self.model, self.probe, self.features, self.config = model, probe, features, config
        params = [p for p in model.parameters() if p.requires_grad]
        if not params:
            raise ValueError("the network has no trainable parameters")
        if config.optimizer == "adam":
            self.opt = torch.optim.Adam(params, lr=config.lr, weight_decay=config.weight_decay)
        else:
            self.opt = torch.optim.SGD(params, lr=config.lr, momentum=config.momentum, nesterov=config.momentum > 0,
                                       weight_decay=config.weight_decay)
        total = (config.schedule_epochs or config.epochs) * max(1, steps_per_epoch)
        cosine = config.schedule == "cosine"
        self.sched = torch.optim.lr_scheduler.LambdaLR(
            self.opt, lambda s: 0.5 * (1 + math.cos(math.pi * min(s / total, 1.0))) if cosine else 1.0)
        self.loss_fn = nn.CrossEntropyLoss()
        self.epochs_done = 0

    @classmethod
    def for_network(cls, net: nn.Module, probe: NCP, config: TrainConfig, steps_per_epoch: int,
                    head: str = "classifier") -> "EarlyTrainer":
        """``placement="head"``: the probe replaces ``net``'s head (attribute ``head``);
        ``"side"``: ``net`` trains with its own head and the probe reads ``net.forward_features``."""
        if config.placement == "head":
            model = ProbedNet(net, probe, head=head)
            return cls(model, config, steps_per_epoch, probe, model.features)
        return cls(net, config, steps_per_epoch, probe, lambda x: net.forward_features(x).flatten(1))

    def run(self, epochs: int, train_batches: Callable[[int], Batches], valid_batches: Callable[[], Batches] | None = None,
            beta_data: tuple[torch.Tensor, torch.Tensor] | None = None,
            extra_beta: dict[int, tuple[torch.Tensor, torch.Tensor]] | None = None,
            on_epoch: Callable[[EpochRecord], None] | None = None,
            step_hook: Callable[[int], dict | None] | None = None,
            epoch_beta: Callable[[], dict] | None = None) -> list[EpochRecord]:
        """Train epochs ``epochs_done + 1 .. epochs``: ``train_batches(epoch_index)`` gives each
        epoch's batches (``epoch_index`` counts from 0), then validation accuracy on
        ``valid_batches()`` and beta_eff on ``beta_data`` (and on each ``extra_beta[n]``, recorded
        as ``beta_eff_<n>``). ``step_hook(step)`` runs after every optimizer step (``step`` = steps
        done so far in the whole run, from 1); the metrics it returns go into that epoch's
        ``extra`` and its seconds into ``extra["seconds_points"]``, not into ``seconds_train``.
        ``epoch_beta()``, when given, replaces the per-epoch beta_eff measurement: it returns
        ``{"beta_eff": ..., **parts}`` (parts go into ``extra``). Returns the records of the epochs
        trained by this call."""
        records = []
        for epoch in range(self.epochs_done + 1, epochs + 1):
            hooked: dict = {}
            loss, secs, step_losses = self.epoch(train_batches(epoch - 1), step_hook, hooked)
            t1 = time.perf_counter()
            acc = accuracy(self.model, valid_batches()) if valid_batches is not None else None
            secs_eval = time.perf_counter() - t1
            t2 = time.perf_counter()
            if epoch_beta is not None:
                parts = dict(epoch_beta())
                beff = parts.pop("beta_eff")
                hooked.update(parts)
            else:
                beff = self.beta(*beta_data)[0] if beta_data is not None else None
            secs_beta = time.perf_counter() - t2 if beff is not None else 0.0
            extra = {**hooked, **{f"beta_eff_{n}": self.beta(xe, ye)[0] for n, (xe, ye) in (extra_beta or {}).items()}}
            rec = EpochRecord(epoch, loss, acc, beff, secs, secs_eval, secs_beta, extra, step_losses)
            records.append(rec)
            if on_epoch is not None:
                on_epoch(rec)
        return records

    def _autocast(self, device: torch.device):
        return torch.autocast("cuda", dtype=torch.bfloat16, enabled=self.config.amp and device.type == "cuda")

    def epoch(self, batches: Batches, step_hook: Callable[[int], dict | None] | None = None,
              hooked: dict | None = None) -> tuple[float, float, tuple[float, ...]]:
        """One training epoch; returns (mean training loss, seconds, every step's loss). After each
        step ``step_hook(steps done in the run)`` may observe the model (its returned metrics are
        merged into ``hooked``, its time into ``hooked["seconds_points"]`` and excluded from the
        seconds); the model is back in train mode afterwards."""
        self.model.train()
        t0 = time.perf_counter()
        running, seen, dev, steps, hook_s = 0.0, 0, None, [], 0.0
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
            steps.append(float(loss.detach()))
            running += steps[-1] * yb.shape[0]
            seen += yb.shape[0]
            if step_hook is not None:
                th = time.perf_counter()
                got = step_hook(int(self.sched.last_epoch))
                self.model.train()
                if got:
                    hooked = {} if hooked is None else hooked
                    hooked.update(got)
                    hooked["seconds_points"] = hooked.get("seconds_points", 0.0) + time.perf_counter() - th
                hook_s += time.perf_counter() - th
        if dev is not None and dev.type == "cuda":
            torch.cuda.synchronize()
        self.epochs_done += 1
        return running / max(seen, 1), time.perf_counter() - t0 - hook_s, tuple(steps)

    def beta(self, x: torch.Tensor, y: torch.Tensor, batch_size: int = 256) -> tuple[float, float]:
        """(beta_eff of the probe on the backbone's eval-mode features of (x, y), seconds)."""
        t0 = time.perf_counter()
        value = self.capacitance(x, y, "eval", batch_size).beta_eff
        return value, time.perf_counter() - t0

    def capacitance(self, x: torch.Tensor, y: torch.Tensor, bn: Literal["eval", "batch"] = "eval",
                    batch_size: int = 256) -> Capacitance:
        """beta_eff with its parts (:func:`nasbeff.core.capacitance.capacitance`: ``num``, ``den``,
        ``block_den``) of the probe on the backbone's features of (x, y). ``bn="eval"``: the model
        in eval mode, features in chunks of ``batch_size``; ``bn="batch"``: BatchNorm layers
        normalise by the statistics of all of ``x`` at once (one forward, the zero-cost proxies'
        convention) while every running statistic is restored afterwards, bit for bit, and
        dropout stays off."""
        if self.probe is None:
            raise ValueError("this trainer has no probe: beta_eff needs one")
        if bn not in BETA_BN:
            raise ValueError(f"bn must be one of {', '.join(BETA_BN)}, got {bn!r}")
        was = self.model.training
        self.model.eval()
        norms = [m for m in self.model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)
                 and not any(m is p for p in self.probe.modules())] if bn == "batch" else []
        saved = [{k: v.clone() for k, v in m.named_buffers(recurse=False)} for m in norms]
        try:
            for m in norms:
                m.train()
            with torch.no_grad():
                step = x.shape[0] if bn == "batch" else batch_size
                feats = torch.cat([self.features(x[i:i + step]) for i in range(0, x.shape[0], step)])
        finally:
            for m, bufs in zip(norms, saved):
                for k, v in bufs.items():
                    getattr(m, k).copy_(v)
            self.model.train(was)
        return capacitance(self.probe, feats.float(), y, mode=self.config.mode)

    def state_dict(self) -> dict:
        return {"model": self.model.state_dict(), "opt": self.opt.state_dict(), "sched": self.sched.state_dict(),
                "epochs_done": self.epochs_done, "torch_rng": torch.get_rng_state()}

    def load_state_dict(self, state: dict) -> None:
        self.model.load_state_dict(state["model"])
        self.opt.load_state_dict(state["opt"])
        self.sched.load_state_dict(state["sched"])
        self.epochs_done = int(state["epochs_done"])
        torch.set_rng_state(state["torch_rng"])


def tensor_batches(x: torch.Tensor, y: torch.Tensor, batch_size: int, gen: torch.Generator,
                   augment: Callable[[torch.Tensor, torch.Generator], torch.Tensor] | None = None) -> Iterator:
    """One epoch of shuffled mini-batches of in-memory tensors (the order drawn from ``gen``)."""
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
    epochs (:meth:`EarlyTrainer.run`); one :class:`EpochRecord` per epoch."""
    torch.manual_seed(config.seed)
    gen = torch.Generator().manual_seed(config.seed)
    steps = math.ceil(x_train.shape[0] / config.batch_size)
    trainer = EarlyTrainer(model, config, steps, model.probe, model.features)
    sub = beta_subset(x_train.shape[0], config.beta_samples, config.seed).to(x_train.device)
    return trainer.run(config.epochs, lambda _: tensor_batches(x_train, y_train, config.batch_size, gen, augment),
                       lambda: tensor_chunks(x_valid, y_valid, 1024), (x_train[sub], y_train[sub]), on_epoch=on_epoch)


def train_plain(net: nn.Module, x_train: torch.Tensor, y_train: torch.Tensor, x_valid: torch.Tensor,
                y_valid: torch.Tensor, config: TrainConfig) -> float:
    """Train ``net`` with its own head for ``config.epochs`` epochs (:meth:`EarlyTrainer.run`, the
    batch order seeded by ``config.seed``) and return its final validation accuracy (%): one
    ground-truth run."""
    gen = torch.Generator().manual_seed(config.seed)
    trainer = EarlyTrainer(net, config, math.ceil(x_train.shape[0] / config.batch_size))
    trainer.run(config.epochs, lambda _: tensor_batches(x_train, y_train, config.batch_size, gen))
    return accuracy(net, x_valid, y_valid)
