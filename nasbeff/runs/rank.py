"""``nasbeff rank``: the NB201 ranking study on CIFAR-10 (:mod:`nasbeff.training.nb201_study`), resumable.

Each arch is one unit of work (:class:`RankJob`): it trains under the frozen probe, checkpointing
and committing every epoch to the store. The run holds the store's lease for its whole duration
(a second run on the same store refuses at once); its workers — in this process, in local worker
processes or in Ray tasks — join that lease with its run id, so a worker of a run whose lease was
taken over can never write. Killing the run at any moment and running the same command again
loses nothing and trains nothing twice.

Beyond the store: ``results`` keeps the per-epoch curves in a CSV meant to be committed, from
which a fresh checkout resumes (:mod:`.results_csv`); ``scores`` joins a ``nasbeff score`` CSV's
proxy columns onto the rows; ``config_blob`` (a pre-registered run, :mod:`nasbeff.training.prereg`) is
written into every row; ``variant`` picks the beta_eff predictor of ``beff_pred`` and
``all_variants`` adds a column per variant (for choosing one on the dev archs).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from ..executors.backends import check_backend, make_backend
from ..store import ResultStore
from ..training.nb201_study import BetaVariant, StudyConfig, StudyData, load_study_data, run_key, summarize_curve, train_arch
from ._common import Progress, check_sample, discard_unused_new_store, check_device, check_writable, no_progress, sample_from_pool, write_csv
from .results_csv import join_scores, merge_curves, read_curves

LEASE_INTERVAL_S = 10.0


@dataclass(frozen=True)
class RankConfig:
    """What to rank and where (validated on construction, before any data is loaded)."""

    data: Path
    archs: tuple[int, ...]
    study: StudyConfig = field(default_factory=StudyConfig)
    sample: int = 0
    sample_seed: int = 0
    store: Path = Path("runs/nb201_rank.sqlite")
    out: Path = Path("runs/nb201_cifar10_rank.csv")
    device: str = "cpu"
    threads: int = 0
    workers: int = 1
    backend: Literal["local", "ray"] = "local"
    ray_address: str = ""
    ray_cpus: int = 0
    time_limit: float = 0.0
    resume: bool = True
    variant: BetaVariant = field(default_factory=BetaVariant)
    all_variants: bool = False
    results: Path | None = None
    scores: Path | None = None
    config_blob: str = ""

    def __post_init__(self) -> None:
        check_backend(self.backend)  # unknown name, or ray not installed
        if self.workers < 1:
            raise ValueError(f"--workers must be >= 1, got {self.workers}")
        if self.backend == "ray" and self.workers > 1:
            raise ValueError("--workers is for --backend local; with ray use --ray-cpus (and --threads per task)")
        for opt, v in (("--threads", self.threads), ("--ray-cpus", self.ray_cpus), ("--sample", self.sample),
                       ("--time-limit", self.time_limit)):
            if v < 0:
                raise ValueError(f"{opt} must be >= 0, got {v}")
        if not self.archs:
            raise ValueError("no arch to rank")
        check_sample(self.sample, len(self.archs))
        if not Path(self.data).exists():
            from ..data.names import DATASET_ALIASES, DATASETS

            forms = ("rank needs CIFAR-10 images: a cifar-10-batches-py folder, a train|test/<class>/ image tree, or "
                     "a .tar/.tar.gz of either (e.g. ../shared/data/cifar10/cifar10_jpeg.tar.gz)")
            name = str(self.data).lower().replace("_", "-")
            if name in DATASETS or name in DATASET_ALIASES:
                raise FileNotFoundError(f"--data {self.data} is a dataset name, not a path; {forms}")
            raise FileNotFoundError(f"--data {self.data} does not exist; {forms}")
        if not self.resume and self.store.exists() and self.store.stat().st_size > 0:
            raise ValueError(f"--no-resume: the store {self.store} already exists; remove it or choose another --store")
        check_writable(self.store, "--store")
        check_writable(self.out, "--out")
        if self.results is not None:
            check_writable(self.results, "--results")
            read_curves(self.results, self.study.hash, self.study.epochs)  # a bad file: one line, before work
        if self.scores is not None and not Path(self.scores).is_file():
            raise FileNotFoundError(f"--scores {self.scores} not found")
        if self.backend == "local":
            check_device(self.device)

    @property
    def indices(self) -> list[int]:
        return sample_from_pool(self.archs, self.sample or None, self.sample_seed)

    def worker_threads(self) -> int:
        """torch threads per unit: as given; 0 means torch's default in one process, 1 per worker."""
        if self.threads:
            return self.threads
        if self.backend == "ray" or self.workers > 1:
            return 1
        import torch

        return torch.get_num_threads()


@dataclass
class RankResult:
    rows: list[dict]
    n_total: int
    left: int  # archs not started because of the time limit
    out: Path | None


_LOADED: dict[tuple[str, str], StudyData] = {}  # per worker process: the decoded study data, reused


@dataclass(frozen=True)
class RankJob:
    """Train one NB201 arch of the study and commit every epoch to ``store`` (joining the run's
    lease ``run_id``). Returns the arch index, or None when ``deadline`` (UNIX time) had passed
    before it started (``--time-limit``)."""

    data: str
    config: StudyConfig
    store: str
    run_id: str
    device: str = "cpu"
    deadline: float | None = None

    def __call__(self, index: int) -> int | None:
        if self.deadline is not None and time.time() > self.deadline:
            return None
        key = (self.data, self.config.hash)
        if key not in _LOADED:
            _LOADED.clear()
            _LOADED[key] = load_study_data(self.data, self.config)
        with ResultStore(self.store, run_id=self.run_id) as st:  # checkpoints: the store's own folder
            train_arch(index, _LOADED[key], self.config, st, None, self.device)
        return int(index)


def run_rank(cfg: RankConfig, on_progress: Progress = no_progress) -> RankResult:
    """Train every arch not finished yet (resuming from the store and from ``cfg.results``), then
    summarise all finished archs of the selection into rows (see
    :func:`nasbeff.training.nb201_study.summarize_curve`) and write them to ``cfg.out``; merge the finished
    archs' curves into ``cfg.results`` (also when interrupted)."""
    indices = cfg.indices
    study = cfg.study
    committed = read_curves(cfg.results, study.hash, study.epochs) if cfg.results is not None else {}
    results: list = []
    with discard_unused_new_store(cfg.store), ResultStore(cfg.store) as st, \
            st.acquire_lease(f"nasbeff rank ({len(indices)} archs)", interval_s=LEASE_INTERVAL_S) as lease:
        st.save_config(study.to_dict())
        todo = [i for i in indices if i not in committed and not st.is_done(run_key(i, study))]
        deadline = time.time() + 60 * cfg.time_limit if cfg.time_limit else None
        job = RankJob(str(Path(cfg.data).resolve()), study, str(cfg.store.resolve()), lease.run_id, cfg.device,
                      deadline)
        backend = make_backend(cfg.backend, cfg.worker_threads(), cfg.ray_address or None, cfg.ray_cpus or None,
                               cfg.device, workers=cfg.workers)
        done = len(indices) - len(todo)
        on_progress(done, len(indices), "archs")

        def advance(unit: int, result: int | None) -> None:
            nonlocal done
            done += result is not None
            on_progress(done, len(indices), f"arch {unit}")

        try:
            results = backend.map_units(job, todo, on_result=advance)
        finally:
            backend.close()
            curves = {**stored_curves(st, indices, study), **committed}
            if cfg.results is not None and curves:
                merge_curves(cfg.results, study.hash, {i: curves[i] for i in indices if i in curves})
    rows = [summarize_curve(i, curves[i], cfg.variant, cfg.all_variants) for i in indices if i in curves]
    for r in rows:
        r["study_hash"] = study.hash
        if cfg.config_blob:
            r["config_blob"] = cfg.config_blob
    if cfg.scores is not None:
        rows = join_scores(rows, cfg.scores)
    if rows:
        write_csv(rows, cfg.out)
    return RankResult(rows, len(indices), sum(r is None for r in results), cfg.out if rows else None)


def stored_curves(st: ResultStore, indices: list[int], study: StudyConfig) -> dict[int, list[dict]]:
    """``{index: per-epoch metrics}`` of the archs of ``indices`` finished in the store."""
    out = {}
    for i in indices:
        key = run_key(i, study)
        if st.is_done(key):
            recs = sorted((r for r in st.rows(**key.as_filter()) if 1 <= r.epoch <= study.epochs),
                          key=lambda r: r.epoch)
            out[i] = [r.metrics for r in recs]
    return out


def build_rank_config(protocol: str, preregistered: Path | None, given: dict, variant: str = "",
                      **rank: object) -> RankConfig:
    """The :class:`RankConfig` of the CLI's options: study values from ``protocol`` with the
    ``given`` ones (None = not given) on top; or, with ``preregistered``, everything the committed
    test config fixes (archs, study, predictor variant; any study option given is refused) and its
    git blob hash for the rows (:func:`nasbeff.training.prereg.load_test_config`). ``variant`` ''
    is the protocol's own predictor (:data:`nasbeff.training.protocols.PROTOCOL_VARIANTS`)."""
    from ..training.protocols import protocol_variant, study_config

    if preregistered is None:
        spec = variant or protocol_variant(protocol)
        return RankConfig(study=study_config(protocol, **given), variant=BetaVariant.parse(spec), **rank)
    from ..training.prereg import load_test_config

    clash = sorted(k for k, v in given.items() if v is not None)
    if clash or protocol or variant or rank.get("sample"):
        names = [f"--{k.replace('_', '-')}" for k in clash] + (["--protocol"] if protocol else []) + \
            (["--beff-variant"] if variant else []) + (["--sample"] if rank.get("sample") else [])
        raise ValueError(f"--preregistered fixes the archs, protocol and predictor: drop {', '.join(names)}")
    test, blob = load_test_config(preregistered)
    rank = {**rank, "archs": test.archs}
    return RankConfig(study=test.study, variant=test.variant, config_blob=blob, **rank)
