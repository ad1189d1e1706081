"""``nasbeff rank``: the NB201 ranking study (:mod:`nasbeff.training.nb201_study`), resumable.

The dataset (:func:`study_dataset`: ``cifar10`` by default, ``cifar100``, ``imagenet16-120``) is part of
the study's config: the head and the probe get its classes, the images (``data``, in any format
nasbeff reads, an ``.npz`` of images + labels included) its normalisation, and it is in every store
key (a CIFAR-100 run of an arch never meets its CIFAR-10 run; CIFAR-10 keys are those of earlier
stores). An ``.npz`` is one set of images: train and validation are a seeded split of it
(``StudyConfig.pool``), e.g. the shared 5,000 CIFAR-100 images, whose own train/test membership is lost.

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

from ..executors.backends import make_backend
from ..store import ResultStore
from ..training.nb201_study import (
    BetaVariant,
    StudyConfig,
    StudyData,
    load_study_data,
    run_key,
    summarize_curve,
    train_arch,
)
from ._common import (
    Progress,
    check_execution,
    check_sample,
    check_writable,
    discard_unused_new_store,
    no_progress,
    sample_from_pool,
    write_csv,
)
from .results_csv import join_scores, merge_curves, read_curves

LEASE_INTERVAL_S = 10.0


@dataclass(frozen=True)
class RankConfig:
    """What to rank and where (validated on construction, before any data is loaded)."""

    data: Path | None
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
        check_execution(self.backend, self.workers, self.threads, self.ray_cpus, self.device, min_threads=0)
        for opt, v in (("--sample", self.sample), ("--time-limit", self.time_limit)):
            if v < 0:
                raise ValueError(f"{opt} must be >= 0, got {v}")
        if not self.archs:
            raise ValueError("no arch to rank")
        check_sample(self.sample, len(self.archs))
        ds = self.study.dataset
        forms = f"rank needs {IMAGES_HINT[ds]}"
        if self.data is None or str(self.data) == "":
            raise FileNotFoundError(f"no --data: {forms}")
        if not Path(self.data).exists():
            from ..data.names import DATASET_ALIASES, DATASETS

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
        if is_pool(self.data) != self.study.pool:
            raise ValueError(f"--data {self.data}: the study's images are " + (
                "one .npz split by seed (pool), give that .npz" if self.study.pool else
                f"{ds}'s own train/x-valid splits (--preregistered fixes them), not an .npz"))
        if self.study.pool:  # the pool's size and classes, before any work (reads only the labels)
            check_pool(Path(self.data), self.study)
        else:  # the dataset's files are there (nothing decoded)
            from ..data.loaders import check_source

            try:
                check_source(ds, self.data)
            except FileNotFoundError as exc:
                raise FileNotFoundError(f"--data: {exc}; {forms}") from None

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


#: What ``--data`` must be for each study dataset.
IMAGES_HINT = {
    "cifar10-valid": "CIFAR-10 images: a cifar-10-batches-py folder, a train|test/<class>/ image tree, a .tar/.tar.gz "
                     "of either (e.g. ../shared/data/cifar10/cifar10_jpeg.tar.gz), or an .npz of images + labels",
    "cifar100": "CIFAR-100 images: a cifar-100-python folder or an .npz of images + labels "
                "(e.g. ../shared/data/cifar100/cifar100_5000_uint8.npz)",
    "imagenet16-120": "ImageNet16-120 images: --data the folder of its train_data_batch_1..10 and val_data files or "
                      "an .npz of images + labels (none exist on a machine without them: it cannot be ranked there)",
}
#: The datasets of ``--dataset`` (names and aliases of :mod:`nasbeff.data.names`).
RANK_DATASETS = ("cifar10", "cifar10-valid", "cifar100", "imagenet16-120")


def short_name(dataset: str) -> str:
    """The name a user gives for a study dataset (``cifar10-valid`` is ``cifar10``)."""
    return "cifar10" if dataset == "cifar10-valid" else dataset


def is_pool(data: Path | str) -> bool:
    """Whether ``data`` is one set of images to split by seed (an ``.npz``)."""
    return str(data).lower().endswith(".npz")


def study_dataset(dataset: str, data: Path | str | None) -> dict:
    """The :class:`StudyConfig` values of ``--dataset`` (any alias; ``cifar10`` trains as
    ``cifar10-valid``) with images ``data``: ``dataset`` and ``pool``."""
    from ..data import canonical_dataset

    ds = canonical_dataset(dataset or "cifar10", RANK_DATASETS)
    return {"dataset": "cifar10-valid" if ds == "cifar10" else ds, "pool": data is not None and is_pool(data)}


def check_pool(path: Path, study: StudyConfig) -> None:
    """One line unless the ``.npz`` ``path`` holds enough images for the study's split and at most
    its dataset's classes (reads only the labels)."""
    import numpy as np

    from ..data import DataFormatError
    from ..data.names import NUM_CLASSES
    from ..training.nb201_study import pool_split

    try:
        with np.load(path, allow_pickle=False) as f:
            files = list(getattr(f, "files", ()))
            if "labels" not in files or "images" not in files:
                raise DataFormatError(f"{path}: an images .npz needs arrays 'images' and 'labels', it has "
                                      f"{sorted(files)}")
            labels = np.asarray(f["labels"]).astype(np.int64).reshape(-1)
    except DataFormatError:
        raise
    except Exception as exc:  # noqa: BLE001 - whatever np.load raises on a bad file: one line
        raise DataFormatError(f"{path}: not a readable .npz ({type(exc).__name__}: {exc})") from None
    k = int(labels.max()) + 1 if len(labels) else 0
    if k > NUM_CLASSES[study.dataset]:
        raise ValueError(f"--data {path} holds {k} classes, more than {study.dataset}'s {NUM_CLASSES[study.dataset]}: "
                         "is it another dataset's images?")
    pool_split(labels, study, f"--data {path}")


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
        r["dataset"] = study.dataset
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
                      dataset: str = "", **rank: object) -> RankConfig:
    """The :class:`RankConfig` of the CLI's options: study values from ``protocol`` with the
    ``given`` ones (None = not given) on top; or, with ``preregistered``, everything the committed
    test config fixes (archs, study, predictor variant; any study option given is refused) and its
    git blob hash for the rows (:func:`nasbeff.training.prereg.load_test_config`). ``variant`` ''
    is the protocol's own predictor (:data:`nasbeff.training.protocols.PROTOCOL_VARIANTS`). ``dataset``
    ('' = cifar10) and the form of ``rank["data"]`` give the study's dataset and pool
    (:func:`study_dataset`); ``rank["out"]`` None is ``runs/nb201_<dataset>_rank.csv``."""
    from ..training.protocols import protocol_variant, study_config

    where = study_dataset(dataset, rank.get("data"))  # an unknown name: one line, before anything else
    if rank.get("out") is None:
        rank["out"] = Path(f"runs/nb201_{short_name(where['dataset'])}_rank.csv")
    if preregistered is None:
        spec = variant or protocol_variant(protocol)
        return RankConfig(study=study_config(protocol, **given, **where), variant=BetaVariant.parse(spec), **rank)
    from ..training.prereg import load_test_config

    clash = sorted(k for k, v in given.items() if v is not None)
    if clash or protocol or variant or rank.get("sample"):
        names = [f"--{k.replace('_', '-')}" for k in clash] + (["--protocol"] if protocol else []) + \
            (["--beff-variant"] if variant else []) + (["--sample"] if rank.get("sample") else [])
        raise ValueError(f"--preregistered fixes the archs, protocol and predictor: drop {', '.join(names)}")
    test, blob = load_test_config(preregistered)
    if dataset and where["dataset"] != test.study.dataset:
        raise ValueError(f"--preregistered fixes the dataset ({short_name(test.study.dataset)}): drop --dataset")
    rank = {**rank, "archs": test.archs}
    return RankConfig(study=test.study, variant=test.variant, config_blob=blob, **rank)
