"""``nasbeff select``: pre-trained model selection by beta_eff (paper, Table 1), resumable.

Every (backbone, seed) is one unit: the backbone's pre-trained weights are loaded, its head is
replaced by the frozen NCP (seeded by the seed) and all its layers are fine-tuned on the target
(:func:`nasbeff.selection.finetune.finetune`: batch 64, Adam, learning rate 1e-3 constant). After every epoch
the trainer state is checkpointed atomically and the epoch's metrics (``valid_acc``, ``beta_eff``,
``train_loss``, ``train_loss_sum`` and the seconds; at epoch T ``test_acc``) are committed to the
store; a killed run resumes from the last checkpoint and never trains an epoch twice (as
:func:`nasbeff.training.nb201_study.train_arch`). LogME / LEEP / NCE of each pre-trained backbone are stored once.

With ``truth`` (default) each run trains T = ``epochs`` epochs and its test accuracy then is the
ground truth, as in the paper; predictions use only the first k epochs of each run (k in
``predict_at``), per seed, averaged over seeds. Without ``truth`` (user mode) runs stop at
max(``predict_at``) epochs and the rows rank the backbones by beta_eff.
"""

from __future__ import annotations

import math
import re
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch

from ..executors.backends import make_backend
from ..store import ResultStore, RunKey, config_hash, read_units_csv
from ._common import Progress, discard_unused_new_store, check_device, check_writable, no_progress, parse_names, write_csv

LEASE_INTERVAL_S = 10.0


@dataclass(frozen=True)
class SelectConfig:
    """What to fine-tune, on which target, how, and where (validated before any data is loaded).
    ``models``: names in the zoo manifest (``<zoo>/manifest.json``; default all of them) or
    ``name=path`` for a user's own weights (a zoo name or ``tv:<torchvision model>``). Sizes 0
    take the target's defaults (:func:`nasbeff.selection.load_target`)."""

    zoo: Path = Path("runs/zoo")
    models: tuple[str, ...] = ()
    target: str = "cifar10-5to9"
    data: Path | None = None
    train_size: int = 0
    valid_size: int = 0
    test_size: int = 0
    image_size: int = 32
    epochs: int = 30
    predict_at: tuple[int, ...] = (5, 10)
    seeds: tuple[int, ...] = (0, 1, 2)
    batch_size: int = 64
    lr: float = 1e-3
    beta_samples: int = 512
    augment: bool = False
    data_seed: int = 0
    truth: bool = True
    store: Path = Path("runs/select.sqlite")
    out: Path = Path("runs/model_selection.csv")
    workers: int = 1
    device: str = "cpu"
    time_limit: float = 0.0
    n_boot: int = 2000
    results: Path | None = None

    def __post_init__(self) -> None:
        from ..selection import TARGET_POOLS, TARGETS
        from ..selection.zoo import entry

        if self.target not in TARGETS and not Path(self.target).is_dir():
            raise ValueError(f"--target must be one of {', '.join(TARGETS)} or an image folder, got {self.target!r}")
        if self.target == "cifar10-5to9" and (self.data is None or not Path(self.data).exists()):
            raise FileNotFoundError(f"--target cifar10-5to9 needs --data, the CIFAR-10 folder or tar (got {self.data})")
        if min(self.train_size, self.valid_size, self.test_size) < 0 or self.image_size < 8:
            raise ValueError("--train-size, --valid-size, --test-size must be >= 0 (0 = default), --image-size >= 8")
        pool = TARGET_POOLS.get(self.target)
        train = self.train_size or {"cifar10-5to9": 2500, "digits-noisy": 400}.get(self.target, 0)
        valid = self.valid_size or {"cifar10-5to9": 1000, "digits": 300, "digits-noisy": 300}.get(self.target, 0)
        if pool is not None and train + valid > pool:
            raise ValueError(f"--train-size {train} + --valid-size {valid} exceed the {pool:,} training images of "
                             f"{self.target}")
        if pool is not None and self.beta_samples > (train or pool - valid):
            raise ValueError(f"--beta-samples {self.beta_samples} exceeds the {train or pool - valid} training images")
        for opt, v in (("--epochs", self.epochs), ("--batch-size", self.batch_size), ("--workers", self.workers),
                       ("--beta-samples", self.beta_samples)):
            if v < 1:
                raise ValueError(f"{opt} must be >= 1, got {v}")
        if not self.predict_at or any(not 3 <= k <= self.epochs for k in self.predict_at):
            raise ValueError(f"--predict-at epochs must lie in 3..--epochs ({self.epochs}), got {list(self.predict_at)}")
        if not self.seeds or len(set(self.seeds)) != len(self.seeds):
            raise ValueError(f"--seeds must be distinct and non-empty, got {list(self.seeds)}")
        if not (math.isfinite(self.lr) and self.lr > 0) or self.time_limit < 0 or self.n_boot < 1:
            raise ValueError("--lr must be > 0, --time-limit >= 0 and --n-boot >= 1")
        for name in self.weights():
            entry(name)
        if self.truth and len(self.weights()) < 3:
            raise ValueError("the ground-truth comparison needs at least 3 models (use --no-truth to rank fewer)")
        check_writable(self.store, "--store")
        check_writable(self.out, "--out")
        if self.results is not None:
            check_writable(self.results, "--results")
            if self.results.exists():
                read_units_csv(self.results)  # a bad file: one line, before any work
        check_device(self.device)

    def weights(self) -> dict[str, Path]:
        """model name -> weights file (from the manifest unless given as ``name=path``)."""
        own = {m.split("=", 1)[0]: Path(m.split("=", 1)[1]) for m in self.models if "=" in m}
        named = [m for m in self.models if "=" not in m]
        if named or not own:
            from .pretrain import read_manifest

            man = read_manifest(self.zoo)["models"]
            names = parse_names(named or list(man), "--models", list(man))
            own.update({m: self.zoo / man[m]["file"] for m in names})
        for m, p in own.items():
            if not p.is_file():
                raise FileNotFoundError(f"weights of {m}: {p} not found")
        return own

    @property
    def run_epochs(self) -> int:
        return self.epochs if self.truth else max(self.predict_at)

    def training(self) -> dict:
        """What determines a run's numbers (hashed, with the weights' hash, into its store key)."""
        d = {k: v for k, v in asdict(self).items() if k in ("target", "train_size", "valid_size", "test_size",
                                                            "image_size", "batch_size", "lr", "beta_samples",
                                                            "augment", "data_seed")}
        return {"protocol": 1, "target": str(self.target), **d, "epochs": self.run_epochs, "truth": self.truth}


def _target_name(cfg: SelectConfig) -> str:
    from ..selection import TARGETS

    return cfg.target if cfg.target in TARGETS else Path(cfg.target).name


def _key(cfg: SelectConfig, model: str, sha: str, seed: int, scorer: str = "select") -> RunKey:
    return RunKey(space="zoo", arch=model, dataset=_target_name(cfg), scorer=scorer,
                  config_hash=config_hash({**cfg.training(), "weights": sha}), seed=seed)


_DATA: dict[str, object] = {}  # per worker process: the target's images, loaded once


def _target(cfg: SelectConfig):
    from ..selection import load_target

    h = config_hash(cfg.training())
    if h not in _DATA:
        _DATA.clear()
        _DATA[h] = load_target(cfg.target, cfg.data, cfg.train_size, cfg.valid_size, cfg.test_size, cfg.image_size,
                               cfg.data_seed)
    return _DATA[h]


def _feeder(cfg: SelectConfig, model: str, seed: int):
    from ..selection import Feeder
    from ..selection.zoo import entry

    e = entry(model)
    return Feeder(_target(cfg), e.mean, e.std, e.input_size, cfg.batch_size, seed, cfg.augment, cfg.device)


@dataclass(frozen=True)
class SelectJob:
    """Fine-tune one (model, seed) and commit every epoch (joining the run's lease ``run_id``);
    returns the unit, or None when ``deadline`` (UNIX time) had passed before it started."""

    config: SelectConfig
    shas: dict
    store: str
    run_id: str
    deadline: float | None = None

    def __call__(self, unit: tuple[str, int]) -> tuple[str, int] | None:
        from ..training.checkpoint import UnitCheckpoint
        from ..core.probe import attach_probe
        from ..selection import finetune, finetune_config
        from ..training.loop import EarlyTrainer, accuracy
        from ..selection.zoo import load_weights

        if self.deadline is not None and time.time() > self.deadline:
            return None
        cfg, (model, seed) = self.config, unit
        key = _key(cfg, model, self.shas[model], seed)
        feed = _feeder(cfg, model, seed)
        dev, T = torch.device(cfg.device), cfg.run_epochs
        torch.manual_seed(seed)
        backbone = load_weights(model, cfg.weights()[model])
        net = attach_probe(backbone, feed.data.num_classes, backbone.feature_dim, head="head", seed=seed).to(dev)
        trainer = EarlyTrainer(net, finetune_config(T, seed, cfg.lr, cfg.batch_size, cfg.beta_samples), feed.steps,
                               net.probe, net.features)
        safe = re.sub(r"[^A-Za-z0-9_.-]", "_", model)
        with ResultStore(self.store, run_id=self.run_id) as st:
            if st.is_done(key):
                return unit
            ckpt = UnitCheckpoint.of(st, key, f"select-{safe}-{key.config_hash}-s{seed}.pt")
            state = ckpt.resume(st, key, first_epoch=1, map_location=dev)
            if state is not None:
                trainer.load_state_dict(state["trainer"])
            fresh_over_old = state is None and bool(st.epochs_done(key))  # replace a lost run's epochs

            def commit(rec) -> None:
                if rec.beta_eff is None or not math.isfinite(rec.beta_eff):
                    raise FloatingPointError(f"{model} seed {seed}: non-finite beta_eff at epoch {rec.epoch}")
                metrics = {**rec.metrics(), "train_loss_sum": float(sum(rec.step_losses))}
                if cfg.truth and rec.epoch == T:
                    t0 = time.perf_counter()
                    metrics["test_acc"] = accuracy(net, feed.plain("test"))
                    metrics["seconds_test"] = time.perf_counter() - t0
                st.check_lease()
                ckpt.save(rec.epoch, metrics, trainer.state_dict())
                st.record_epoch(key, rec.epoch, metrics, overwrite=fresh_over_old)

            finetune(trainer, feed, T, cfg.beta_samples, seed, commit)
            ckpt.finish(st, key, T, first_epoch=1)
        return unit


@dataclass
class SelectResult:
    rows: list[dict]
    table: list[dict]  # Table 1: per method, Spearman / Kendall with CIs (truth only)
    paired: list[dict]  # per k: beta_eff vs the best other method (truth only)
    noise_ceiling: float
    left: int  # units not started because of the time limit
    out: Path | None
    figures: list[Path]


def _transfer(cfg: SelectConfig, st: ResultStore, model: str, sha: str) -> dict:
    """LogME / LEEP / NCE of the pre-trained ``model`` (stored once, epoch-free)."""
    from ..selection import transfer_scores
    from ..selection.zoo import load_weights

    key = _key(cfg, model, sha, 0, "transfer")
    if not st.is_done(key):
        torch.manual_seed(0)
        scores = transfer_scores(load_weights(model, cfg.weights()[model]).to(cfg.device), _feeder(cfg, model, 0))
        with st.transaction():
            st.record_epoch(key, None, scores)
            st.mark_done(key)
    return next(iter(st.rows(**key.as_filter()))).metrics


def _runs(cfg: SelectConfig, st: ResultStore, shas: dict) -> list:
    from ..selection import Run

    out = []
    for model in shas:
        for seed in cfg.seeds:
            recs = sorted((r for r in st.rows(**_key(cfg, model, shas[model], seed).as_filter())), key=lambda r: r.epoch)
            m = [r.metrics for r in recs]
            out.append(Run(model, seed, np.array([x["valid_acc"] for x in m]), np.array([x["beta_eff"] for x in m]),
                           np.array([x["train_loss_sum"] for x in m]),
                           np.array([[x["seconds_train"], x["seconds_eval"], x["seconds_beta"]] for x in m]),
                           float(m[-1].get("test_acc", math.nan))))
    return out


def run_select(cfg: SelectConfig, on_progress: Progress = no_progress) -> SelectResult:
    """Fine-tune every (model, seed) not finished yet, score the pre-trained models, then (when
    every unit is done) one row per model, the Table-1 comparison and the figures."""
    from ..selection import noise_ceiling, selection_figures, selection_rows, selection_table
    from ..selection.zoo import entry, file_sha256

    weights = cfg.weights()
    shas = {m: file_sha256(p) for m, p in weights.items()}
    units = [(m, s) for m in weights for s in cfg.seeds]
    with discard_unused_new_store(cfg.store), ResultStore(cfg.store) as st, \
            st.acquire_lease(f"nasbeff select ({len(units)} runs)", interval_s=LEASE_INTERVAL_S) as lease:
        for sha in shas.values():  # the config behind every run key's hash, for audits of the store
            st.save_config({**cfg.training(), "weights": sha})
        if cfg.results is not None and cfg.results.exists():  # a fresh checkout resumes from the committed file
            st.import_done(cfg.results)
        todo = [u for u in units if not st.is_done(_key(cfg, u[0], shas[u[0]], u[1]))]
        deadline = time.time() + 60 * cfg.time_limit if cfg.time_limit else None
        job = SelectJob(cfg, shas, str(cfg.store.resolve()), lease.run_id, deadline)
        backend = make_backend("local", 1, device=cfg.device, workers=cfg.workers)
        done = len(units) - len(todo)
        on_progress(done, len(units), "fine-tuning")

        def advance(unit: tuple[str, int], result) -> None:
            nonlocal done
            done += result is not None
            on_progress(done, len(units), f"{unit[0]} seed {unit[1]}")

        try:
            results = backend.map_units(job, todo, on_result=advance)
            left = sum(r is None for r in results)
            if left:
                return SelectResult([], [], [], math.nan, left, None, [])
            transfer = {m: _transfer(cfg, st, m, shas[m]) for m in weights}
            runs = _runs(cfg, st, shas)
        finally:
            backend.close()
            if cfg.results is not None:  # also on Ctrl-C or a time limit: every finished run, to commit
                st.export_done(cfg.results, space="zoo", dataset=_target_name(cfg))
    from .pretrain import read_manifest

    man = read_manifest(cfg.zoo)["models"] if (cfg.zoo / "manifest.json").is_file() else {}
    info = {m: {"family": entry(m).family, "params": man.get(m, {}).get("params") or entry(m).params(),
                "source_acc": man.get(m, {}).get("source_test_acc", math.nan)} for m in weights}
    rows = selection_rows(runs, info, cfg.predict_at, cfg.run_epochs, cfg.truth, transfer)
    table, paired, ceiling, figures = [], [], math.nan, []
    if cfg.truth:
        table, paired = selection_table(rows, cfg.predict_at, cfg.n_boot)
        ceiling = noise_ceiling(rows, cfg.seeds) if len(cfg.seeds) > 1 else math.nan
        figures = selection_figures(rows, runs, max(cfg.predict_at), cfg.out.parent / f"{cfg.out.stem}_figures",
                                    title=f"{_target_name(cfg)}, {len(rows)} models")
    else:
        k = max(cfg.predict_at)
        rows.sort(key=lambda r: -r[f"beff_pred_{k}"] if np.isfinite(r[f"beff_pred_{k}"]) else math.inf)
    write_csv(rows, cfg.out)
    return SelectResult(rows, table, paired, ceiling, 0, cfg.out, figures)
