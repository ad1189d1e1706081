"""``nasbeff rank``: the NB201 ranking study on CIFAR-10 (:mod:`nasbeff.study`), resumable.

Each arch is one unit of work (:class:`RankJob`): it trains under the frozen probe, checkpointing
and committing every epoch to the store. The run holds the store's lease for its whole duration
(a second run on the same store refuses at once); its workers — in this process, in local worker
processes or in Ray tasks — join that lease with its run id, so a worker of a run whose lease was
taken over can never write. Killing the run at any moment and running the same command again
loses nothing and trains nothing twice.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from ..backends import check_backend, make_backend
from ..store import ResultStore
from ..study import StudyConfig, StudyData, load_study_data, run_key, summarize, train_arch
from ._common import Progress, check_device, check_writable, no_progress, sample_archs, write_csv

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

    def __post_init__(self) -> None:
        check_backend(self.backend)  # unknown name, or ray not installed
        if self.workers < 1:
            raise ValueError(f"--workers must be >= 1, got {self.workers}")
        if self.backend == "ray" and self.workers > 1:
            raise ValueError("--workers is for --backend local; with ray use --ray-cpus (and --threads per task)")
        if self.threads < 0 or self.ray_cpus < 0 or self.sample < 0 or self.time_limit < 0:
            raise ValueError("--threads, --ray-cpus, --sample and --time-limit must be >= 0")
        if not self.archs:
            raise ValueError("no arch to rank")
        if not Path(self.data).exists():
            raise FileNotFoundError(f"--data {self.data} does not exist")
        if not self.resume and self.store.exists() and self.store.stat().st_size > 0:
            raise ValueError(f"--no-resume: the store {self.store} already exists; remove it or choose another --store")
        check_writable(self.store, "--store")
        check_writable(self.out, "--out")
        if self.backend == "local":
            check_device(self.device)

    @property
    def indices(self) -> list[int]:
        return sample_archs(self.archs, self.sample or None, self.sample_seed)

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
        folder = Path(self.store).parent
        with ResultStore(self.store, run_id=self.run_id) as st:
            train_arch(index, _LOADED[key], self.config, st, folder / "checkpoints", self.device)
        return int(index)


def run_rank(cfg: RankConfig, on_progress: Progress = no_progress) -> RankResult:
    """Train every arch not finished yet (resuming), then summarise all finished archs of the
    selection into rows (see :func:`nasbeff.study.summarize`) and write them to ``cfg.out``."""
    indices = cfg.indices
    with ResultStore(cfg.store) as st, st.acquire_lease(f"nasbeff rank ({len(indices)} archs)",
                                                         interval_s=LEASE_INTERVAL_S) as lease:
        st.save_config(cfg.study.to_dict())
        todo = [i for i in indices if not st.is_done(run_key(i, cfg.study))]
        deadline = time.time() + 60 * cfg.time_limit if cfg.time_limit else None
        job = RankJob(str(Path(cfg.data).resolve()), cfg.study, str(cfg.store.resolve()), lease.run_id, cfg.device,
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
        rows = summarize(st, indices, cfg.study)
    if rows:
        write_csv(rows, cfg.out)
    return RankResult(rows, len(indices), sum(r is None for r in results), cfg.out if rows else None)
