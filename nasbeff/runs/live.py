"""Live scorers for the search loops: an arch is scored when an optimizer first visits it, through
the same result store and keys as ``nasbeff score`` and ``nasbeff rank``.

Two kinds, named ``live:<name>`` in ``nasbeff search --scorer``:

* **proxies**: any registered training-free proxy (``live:meco``, ``live:zico``, ...), computed on
  the images of ``data`` with the dataset's network (a :class:`~.score.ProxyJob` unit; the store
  config is :func:`~.score.proxy_store_config` of the batch options, so ``nasbeff score`` with the
  same ``--batch-size``/``--batches``/``--seed`` and a search share their values both ways);
* **early-training scorers** of a protocol (:data:`TRAINING_SCORERS`: ``beff_pred``, ``tse``,
  ``tse_e``, ``tse_ema``, ``lsv``, ``bsv``): one ``rank``-style training run of the arch
  (:class:`~.rank.RankJob`: every epoch committed and checkpointed, same :func:`run_key`), summarised
  by :func:`~nasbeff.training.nb201_study.summarize_curve` with the protocol's predictor variant. All
  of them read the same run: a search with ``live:beff_pred`` and one with ``live:lsv`` train each
  arch once.

Cost model ``measured``: each evaluation is charged the stored measured seconds of its unit — a
training run's wall seconds (training, validation, beta_eff, checkpoints: ``wall_seconds``), a
proxy's pass seconds — read back from the store, so a unit scored earlier costs what it cost then
and a rerun charges exactly what the first run charged. Repeats are charged again, like every
scorer (:mod:`nasbeff.optimizers`).

Evaluation runs on the executors (``workers`` local processes or Ray): the seeds of a search run as
threads of this process that only ask for scores; whenever every one of them is waiting, the archs
they wait for (each once) go to the backend as one batch, and this process writes the results. A
value does not depend on which process computed it, so the runs are those of a one-process search
(with a seconds budget, up to the measured seconds a first run records; with ``max_evaluations``
exactly). The store's lease is held for the whole search: a second search or ``rank``/``score`` on
the same store refuses to start, and a killed search rerun with the same command reuses every
finished unit (an interrupted training resumes from its last epoch checkpoint).
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, TypeVar

from ..executors.backends import make_backend
from ..optimizers import LazyScorer
from ..store import ResultStore, config_hash
from ._common import check_execution, check_writable, discard_unused_new_store

LIVE_PREFIX = "live:"
#: Early-training scorers of one ``rank`` run (columns of :func:`summarize_curve`; higher = better).
TRAINING_SCORERS: tuple[str, ...] = ("beff_pred", "tse", "tse_e", "tse_ema", "lsv", "bsv")
COST_MODEL = "measured"
LEASE_INTERVAL_S = 10.0
T = TypeVar("T")


def is_live(name: str) -> bool:
    """Whether a search scorer name is a live one (``live:<name>``)."""
    return str(name).startswith(LIVE_PREFIX)


def live_base(name: str) -> str:
    """``meco`` of ``live:meco``."""
    return str(name)[len(LIVE_PREFIX):]


@dataclass(frozen=True)
class LiveConfig:
    """How live scorers evaluate (validated on construction, before any data is loaded).

    ``names``: the live scorer names without the prefix. Proxies: ``batch_size`` x ``batches``
    seeded images of ``data`` (``batches`` 0: what the proxies need), the NB201 network of
    ``init_channels`` / ``cells``, init seed ``seed``. Training scorers: the ``protocol`` (``cpu`` or
    ``gpu``, :mod:`nasbeff.training.protocols`; ``study``: values on top of it, e.g. ``(("epochs", 3),)``)
    with the protocol's own predictor variant on ``dataset``."""

    names: tuple[str, ...]
    data: str = ""
    dataset: str = "cifar10"
    store: Path = Path("runs/live_scores.sqlite")
    protocol: str = "cpu"
    study: tuple[tuple[str, Any], ...] = ()  # StudyConfig values on top of the protocol (name, value)
    batch_size: int = 64
    batches: int = 0
    init_channels: int = 16
    cells: int = 5
    seed: int = 0
    device: str = "cpu"
    threads: int = 1
    workers: int = 1
    backend: Literal["local", "ray"] = "local"
    ray_address: str = ""
    ray_cpus: int = 0
    results: Path | None = None  # finished units to commit: imported at the start, merged into at the end
    deadline: float | None = None  # UNIX time: no unit starts after it (LiveTimeLimit; a rerun resumes)
    # -- checked before each batch of evaluations and by every unit before it starts, so a run ends at most
    # one unit's time after it
    rank: Any = field(default=None, init=False, repr=False)  # the RankConfig of the training scorers

    def __post_init__(self) -> None:
        from .. import proxies as zc
        from ..proxies.aggregate import is_aggregate_name

        object.__setattr__(self, "names", tuple(dict.fromkeys(self.names)))
        if not self.names:
            raise ValueError("no live scorer given")
        for n in self.names:
            if is_aggregate_name(n):
                raise ValueError(f"live:{n}: a rank aggregate ranks within a population, which a live search does "
                                 "not have; search with its parts, or score a sample with nasbeff score and use "
                                 "--warmup-scorer with --pool-csv")
            if n not in TRAINING_SCORERS:
                try:
                    zc.get(n)
                except KeyError as exc:
                    known = str(exc.args[0]).split("available: ")[-1]
                    raise ValueError(f"unknown live scorer live:{n}: a registered proxy ({known}) or an "
                                     f"early-training scorer ({', '.join(TRAINING_SCORERS)})") from None
        if not self.data:
            raise ValueError(f"live:{self.names[0]} needs --data (the images it is computed on)")
        check_execution(self.backend, self.workers, self.threads, self.ray_cpus, self.device)
        object.__setattr__(self, "store", Path(self.store))
        if self.proxy_names:
            from .score import ScoreConfig

            # score's validation of the images, dataset, batches and proxies (its out/store untouched)
            probe = ScoreConfig(data=self.data, archs=(0,), dataset=self.dataset, proxies=self.proxy_names,
                                batch_size=self.batch_size, batches=self.batches, init_channels=self.init_channels,
                                cells=self.cells, store=self.store, out=self.store.with_suffix(".csv"),
                                seed=self.seed, device=self.device, threads=self.threads, truth="")
            object.__setattr__(self, "batches", probe.batches)
        if self.training_names:
            from .rank import build_rank_config

            given = {**({"seed": self.seed} if self.seed else {}), **dict(self.study)}
            rank = build_rank_config(self.protocol, None, given, "",
                                     self.dataset, data=Path(self.data), archs=(0,), store=self.store,
                                     out=self.store.with_suffix(".rank.csv"), device=self.device,
                                     threads=self.threads, workers=self.workers, backend=self.backend,
                                     ray_address=self.ray_address, ray_cpus=self.ray_cpus)
            object.__setattr__(self, "rank", rank)
        check_writable(self.store, "--store")
        if self.results is not None:
            from ..store import read_units_csv

            object.__setattr__(self, "results", Path(self.results))
            check_writable(self.results, "--results")
            if self.results.exists():
                read_units_csv(self.results)  # a bad file: one line, before any work

    @property
    def proxy_names(self) -> tuple[str, ...]:
        return tuple(n for n in self.names if n not in TRAINING_SCORERS)

    @property
    def training_names(self) -> tuple[str, ...]:
        return tuple(n for n in self.names if n in TRAINING_SCORERS)

    @property
    def parallel(self) -> bool:
        """True when units run outside this process (seeds then run as concurrent threads)."""
        return self.backend == "ray" or self.workers > 1


@dataclass
class UnitCost:
    """What one arch's unit cost: ``seconds`` (charged: its measured seconds) and ``cpu_seconds``."""

    seconds: float
    cpu_seconds: float


class LiveTimeLimit(RuntimeError):
    """A live search reached its ``deadline`` before it could compute the units it needs next; its
    finished units are stored, so the same search run again continues."""


class LiveEvaluator:
    """Opens the store (holding its lease) and the backend; :meth:`scorer` gives a
    :class:`~nasbeff.optimizers.LazyScorer` per live name; :meth:`run` runs search jobs (one per
    seed) that use them. ``computed``: the (kind, arch) units this evaluator computed (not read
    back from the store)."""

    def __init__(self, cfg: LiveConfig, description: str = "nasbeff search (live scorers)") -> None:
        self.cfg = cfg
        self.description = description
        self.values: dict[tuple[str, int], tuple[float, UnitCost]] = {}
        self.computed: set[tuple[str, int]] = set()
        self._stack: Any = None

    # -- context -----------------------------------------------------------------------------
    def __enter__(self) -> "LiveEvaluator":
        from contextlib import ExitStack

        cfg = self.cfg
        stack = ExitStack()
        try:
            if cfg.proxy_names:
                from ..spaces import nb201_channels
                from .score import ProxyJob, proxy_batches, proxy_store_config

                batches, dataset = proxy_batches(cfg.data, cfg.batches, cfg.batch_size, cfg.seed, cfg.dataset)
                channels = tuple(nb201_channels(cfg.init_channels, cfg.cells))
                config = proxy_store_config(dataset, cfg.batch_size, cfg.batches, channels, cfg.seed)
                self._proxy = (dataset, config_hash(config), config)
                from ..data.names import NUM_CLASSES

                self._proxy_job = ProxyJob(batches, channels, NUM_CLASSES[dataset], cfg.seed, cfg.device,
                                           cfg.deadline)  # a unit due after the deadline does not start
            stack.enter_context(discard_unused_new_store(cfg.store))
            self.store = stack.enter_context(ResultStore(cfg.store))
            self.lease = stack.enter_context(self.store.acquire_lease(self.description, interval_s=LEASE_INTERVAL_S))
            if cfg.results is not None and cfg.results.exists():
                self.store.import_done(cfg.results)  # a fresh checkout resumes from the committed units
            if cfg.results is not None:
                stack.callback(self._export)  # also when interrupted: every finished unit of these configs
            if cfg.proxy_names:
                self.store.save_config(self._proxy[2])
            if cfg.training_names:
                self.store.save_config(cfg.rank.study.to_dict())
            threads = cfg.threads if cfg.parallel or not cfg.training_names else cfg.rank.worker_threads()
            self.backend = make_backend(cfg.backend, threads, cfg.ray_address or None, cfg.ray_cpus or None,
                                        cfg.device, workers=cfg.workers)
            stack.callback(self.backend.close)
        except BaseException:
            stack.close()
            raise
        self._stack = stack
        return self

    def __exit__(self, *exc: object) -> None:
        stack, self._stack = self._stack, None
        if stack is not None:
            stack.close()

    def _export(self) -> None:
        from ..training.nb201_study import SCORER

        cfg = self.cfg
        if cfg.proxy_names:
            dataset, chash, _ = self._proxy
            self.store.export_done(cfg.results, space="nb201", dataset=dataset, scorer=list(cfg.proxy_names),
                                   config_hash=chash, seed=cfg.seed)
        if cfg.training_names:
            self.store.export_done(cfg.results, space="nb201", scorer=SCORER, config_hash=cfg.rank.study.hash)

    # -- scorers -----------------------------------------------------------------------------
    def scorer(self, name: str) -> LazyScorer:
        """The search scorer ``live:<name>``: score and cost (measured seconds) of an arch, computed on
        the first request and remembered."""
        base = live_base(name) if is_live(name) else name
        if base not in self.cfg.names:
            raise ValueError(f"{name} is not among this evaluator's live scorers {list(self.cfg.names)}")
        return LazyScorer(f"{LIVE_PREFIX}{base}", lambda i: self._request(base, int(i)))

    def _kind(self, name: str) -> str:
        return "train" if name in TRAINING_SCORERS else "proxy"

    def _request(self, name: str, index: int) -> tuple[float, float]:
        key = (name, index)
        if key not in self.values:
            if self._broker is not None:
                self._broker.wait_for(key)
            else:
                self.resolve([key])
        value, cost = self.values[key]
        return value, cost.seconds

    def unit_cost(self, name: str, index: int) -> UnitCost | None:
        """The measured cost of arch ``index``'s unit for scorer ``name`` (None: not evaluated)."""
        got = self.values.get((live_base(name) if is_live(name) else name, int(index)))
        return None if got is None else got[1]

    # -- evaluation --------------------------------------------------------------------------
    _broker: "_Broker | None" = None

    def resolve(self, keys: Sequence[tuple[str, int]]) -> None:
        """Evaluate every (name, arch) of ``keys`` not known yet: read what the store holds, compute
        the rest on the backend (each arch's unit once), fill :attr:`values`."""
        todo = [k for k in dict.fromkeys(keys) if k not in self.values]
        if todo and self.cfg.deadline is not None and time.time() > self.cfg.deadline and self._uncomputed(todo):
            raise LiveTimeLimit(f"the time limit passed before {len(todo)} more evaluation{'s' * (len(todo) > 1)} "
                                "could start; run again to continue")
        proxy_archs = sorted({i for n, i in todo if self._kind(n) == "proxy"})
        train_archs = sorted({i for n, i in todo if self._kind(n) == "train"})
        if proxy_archs:
            self._resolve_proxies(proxy_archs)
        if train_archs:
            self._resolve_training(train_archs)

    def _uncomputed(self, keys: list[tuple[str, int]]) -> bool:
        """Whether any of ``keys`` needs a unit the store does not hold finished."""
        from ..training.nb201_study import run_key

        for name, i in keys:
            if self._kind(name) == "train":
                if not self.store.is_done(run_key(i, self.cfg.rank.study)):
                    return True
            else:
                from .score import score_key

                dataset, chash, _ = self._proxy
                if not self.store.is_done(score_key(i, name, dataset, chash, self.cfg.seed)):
                    return True
        return False

    def _resolve_proxies(self, archs: list[int]) -> None:
        from .score import commit_proxy_unit, stored_proxy_values

        names = self.cfg.proxy_names
        dataset, chash, _ = self._proxy
        stored = stored_proxy_values(self.store, names, dataset, chash, self.cfg.seed)
        units = [(i, todo) for i in archs if (todo := tuple(n for n in names if (i, n) not in stored))]

        def commit(unit: tuple[int, tuple[str, ...]], result: dict | None) -> None:
            if result is None:  # not started: the deadline had passed
                return
            index, todo = unit
            commit_proxy_unit(self.store, index, todo, result, dataset, chash, self.cfg.seed)
            self.computed.add(("proxy", index))

        self.backend.map_units(self._proxy_job, units, on_result=commit)
        stored = stored_proxy_values(self.store, names, dataset, chash, self.cfg.seed)
        left = sorted({i for i in archs for n in names if (i, n) not in stored})
        if left:
            raise LiveTimeLimit(f"the time limit passed with {len(left)} arch{'s' * (len(left) > 1)} left to score; "
                                "run again to continue")
        for i in archs:
            for n in names:
                m = stored[(i, n)]
                value = -math.inf if m["value"] is None else float(m["value"])
                self.values[(n, i)] = (value, UnitCost(float(m["seconds"]), float(m.get("cpu_seconds", m["seconds"]))))

    def _resolve_training(self, archs: list[int]) -> None:
        from ..training.nb201_study import run_key, summarize_curve
        from .rank import RankJob, stored_curves

        rank = self.cfg.rank
        study = rank.study
        todo = [i for i in archs if not self.store.is_done(run_key(i, study))]
        job = RankJob(str(Path(self.cfg.data).resolve()), study, str(Path(self.cfg.store).resolve()),
                      self.lease.run_id, self.cfg.device, self.cfg.deadline)  # no unit starts after the deadline

        def finished(unit: int, result: int | None) -> None:
            if result is not None:  # None: not started, the deadline had passed
                self.computed.add(("train", int(unit)))

        self.backend.map_units(job, todo, on_result=finished)
        left = [i for i in todo if not self.store.is_done(run_key(i, study))]
        if left:
            raise LiveTimeLimit(f"the time limit passed with {len(left)} arch{'s' * (len(left) > 1)} left to train; "
                                "run again to continue")
        curves = stored_curves(self.store, archs, study)
        for i in archs:
            row = summarize_curve(i, curves[i], rank.variant)
            cost = UnitCost(float(row["wall_seconds"]), float(row["gpu_seconds"]))
            for n in self.cfg.training_names:
                v = float(row[n])
                self.values[(n, i)] = (v if math.isfinite(v) else -math.inf, cost)

    def run(self, jobs: Sequence[Callable[[], T]]) -> list[T]:
        """Run the search ``jobs`` (one per seed): one after another when the units run in this
        process, else as threads whose requests are evaluated together (module docstring)."""
        if not self.cfg.parallel or len(jobs) < 2:
            return [job() for job in jobs]
        self._broker = _Broker(self.resolve, self.values)
        try:
            return self._broker.run(jobs)
        finally:
            self._broker = None


class _Broker:
    """Runs jobs as threads; whenever every running one waits for a key that has no value yet,
    resolves the requested keys in one call (in the calling thread) and wakes them.

    Who waits is tracked per thread (``blocked``: thread -> key) and read against ``values``, never
    counted: ``resolve`` fills ``values`` as it goes, so a thread may see its value, go on and ask
    for its next key before ``resolve`` returns; a counter reset after the batch then forgot that
    thread and the broker waited forever (seen in a 45-minute chunk of experiments/nb201_search_live)."""

    POLL_S = 1.0  # how often a waiting thread looks at ``values`` (and at ``failed``) without a wake-up

    def __init__(self, resolve: Callable[[list], None], values: Mapping[Any, Any]) -> None:
        self.resolve = resolve
        self.values = values
        self.cond = threading.Condition()
        self.pending: dict[Any, None] = {}
        self.blocked: dict[int, Any] = {}  # thread id -> the key it waits for
        self.running = 0
        self.failed: BaseException | None = None

    def wait_for(self, key: Any) -> None:
        """Block until ``key`` has a value (resolved in a batch with the other threads' keys)."""
        me = threading.get_ident()
        values = self.values
        with self.cond:
            if key in values:
                return
            self.pending[key] = None
            self.blocked[me] = key
            self.cond.notify_all()
            try:
                while key not in values and self.failed is None:
                    self.cond.wait(self.POLL_S)
            finally:
                del self.blocked[me]
            if key not in values:
                raise RuntimeError("the search stopped: an evaluation failed")

    def _all_blocked(self) -> bool:
        """Every running thread waits for a key without a value (so a batch can be formed)."""
        return sum(key not in self.values for key in self.blocked.values()) >= self.running

    def run(self, jobs: Sequence[Callable[[], T]]) -> list[T]:
        results: list[Any] = [None] * len(jobs)
        errors: list[BaseException] = []

        def work(k: int, job: Callable[[], T]) -> None:
            try:
                results[k] = job()
            except BaseException as exc:  # noqa: BLE001 - handed to the calling thread
                errors.append(exc)
            finally:
                with self.cond:
                    self.running -= 1
                    self.cond.notify_all()

        self.running = len(jobs)
        threads = [threading.Thread(target=work, args=(k, j), daemon=True, name=f"search-{k}")
                   for k, j in enumerate(jobs)]
        for t in threads:
            t.start()
        try:
            while True:
                with self.cond:
                    while not (errors or self.running == 0 or (self.pending and self._all_blocked())):
                        self.cond.wait(0.5)
                    if errors or self.running == 0:
                        break
                    batch, self.pending = list(self.pending), {}
                self.resolve(batch)
                with self.cond:
                    self.cond.notify_all()
        except BaseException as exc:
            with self.cond:
                self.failed = exc
                self.cond.notify_all()
            raise
        finally:
            if errors:
                with self.cond:
                    self.failed = errors[0]
                    self.cond.notify_all()
            for t in threads:
                t.join(timeout=5.0)
        if errors:
            raise errors[0]
        return results

