"""``nasbeff search``: REA / random / warm-up REA by table lookup on a search space (NB201 topology
or NATS-Bench size) under a simulated budget.

The search sees no test accuracy: scorers read the ground truth through ``table.without_test()``;
the CIFAR-10 test accuracy (``c10_test``) of each run's best arch is looked up afterwards, for the
CSV and the summary (mean, std, 95% CI over seeds).

Ground truth
------------
Anything with ``column(name, index=None)``, ``arch(index)`` and ``without_test()``
(:class:`SearchTable`). NB201: the offline :class:`~nasbeff.tables.ground_truth.NB201Table`. NATS-size
(the offline data has none): :class:`ColumnTable` read from a CSV (``index``, ``arch_str``,
``c10_valid``, ``train_time_s_c10valid``, ``c10_test``) or from NATS-Bench ``sss`` files
(:meth:`ColumnTable.from_nats_api`), or any table passed to :func:`run_search`.

On NATS-size the ``benchmark`` scorer is NB201's rule with the size space's 90-epoch schedule:
score = ``c10_valid`` (cifar10-valid x-valid), cost = ``train_time_s_c10valid * 12 / 90``.
"""

from __future__ import annotations

import contextlib
import csv
import math
import os
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Protocol, get_args, runtime_checkable

import numpy as np

from ..store import atomic_write, read_csv
from ..proxies.aggregate import is_aggregate_name, parse_aggregate_name
from ..optimizers import (
    DEFAULT_BUDGETS, NATS_EPOCHS, Trajectory, aggregate_scorer_from_csv, make_optimizer, make_scorer,
    scorer_from_csv, summarize, table_scorer,
)
from ..spaces import SPACE_NAMES, SearchSpace, get_space
from ..tables import TEST_COLUMNS as TEST_COLUMNS_OF
from ._common import Progress, check_sample, check_writable, few_samples_note, parse_names
from .live import COST_MODEL as LIVE_COST_MODEL, LiveConfig, LiveEvaluator, is_live, live_base

__all__ = ["Method", "ScorerName", "SpaceName", "SearchConfig", "SearchTable", "ColumnTable", "SearchResult",
           "load_table", "run_search", "CSV_FIELDS", "SIZE_FULL_EPOCHS"]

Method = Literal["rea", "random", "warmup_rea", "predictor"]
ScorerName = Literal["benchmark", "zen", "naswot_v1", "beff"]
SpaceName = Literal["nb201", "nats-size"]

#: Scorers each space offers (zen / naswot_v1 are published NB201 columns).
SPACE_SCORERS: dict[str, tuple[str, ...]] = {"nb201": get_args(ScorerName), "nats-size": ("benchmark", "beff")}
#: Epochs of the NATS-Bench size space's full schedule (``hp='90'``).
SIZE_FULL_EPOCHS = 90
CSV_FIELDS = ("method", "scorer", "warmup_scorer", "seed", "budget_s", "evaluations", "best_index", "best_arch_str",
              "best_test_acc")
#: Columns a search with live scorers adds (:func:`_live_columns`).
LIVE_FIELDS = ("cost_model", "unique_trained", "cpu_seconds")
#: Datasets NB201 search can run on, and the test-accuracy column each reports.
SEARCH_DATASETS = ("cifar10", "cifar10-valid", "cifar100", "imagenet16-120")
TEST_COLUMNS = {d: TEST_COLUMNS_OF[d] for d in ("cifar10", "cifar100", "imagenet16-120")}


@dataclass(frozen=True)
class SearchConfig:
    """One ``nasbeff search`` (validated on construction, before any data is loaded).

    ``methods`` / ``scorers``: tuples (or comma-separated strings); ``beff`` scores with
    ``pool_column`` of ``pool_csv`` (charged ``cost_column`` seconds); ``in_pool`` restricts every
    scorer to the archs of ``pool_csv``. ``warmup_scorer`` may also be a rank aggregate of
    ``pool_csv`` columns (``rank:meco+aznas_trainability+flops``, a ``nasbeff score`` CSV): ranked
    within each warm-up pool, drawn from the CSV's archs that have every part, each warm-up
    evaluation charged its parts' measured seconds (:func:`~nasbeff.optimizers.aggregate_scorer_from_csv`). Runs use seeds ``seed .. seed + seeds - 1``; the CSV holds
    ``points`` evenly spaced budgets per run plus the report budgets up to ``budget``. ``space``:
    ``nb201`` (alias ``tss``) or ``nats-size`` (alias ``sss``). ``shared``: the ground truth (NB201:
    the data folder, default ``../shared/data`` or ``$NASBEFF_SHARED_DATA``; NATS-size: a size CSV
    or NATS-Bench ``sss`` files). ``predictor_features``: ``pool_csv`` columns the ``predictor`` method
    fits on beside the GRAF features, each charged its ``<column>_seconds`` once per arch."""

    methods: tuple[Method, ...] = ("rea",)
    scorers: tuple[ScorerName, ...] = ("benchmark",)
    warmup_scorer: ScorerName = "naswot_v1"
    warmup_pool: int = 1000
    pool_csv: Path = Path("benchmarks_data/nb201_cifar10_rank.csv")
    pool_column: str = "beff_pred"
    cost_column: str = "gpu_seconds"
    in_pool: bool = False
    budget: float = 12000.0
    seeds: int = 10
    seed: int = 0
    points: int = 20
    space: SpaceName = "nb201"
    shared: Path | None = None
    out: Path = Path("runs/search.csv")
    dataset: str = "cifar10"  # whose validation accuracy and training time the search sees; its test accuracy reports
    report_datasets: tuple[str, ...] = ()  # also the chosen arch's test accuracy on these (best_<col> columns)
    seed_list: tuple[int, ...] = ()  # exactly these seeds instead of seed .. seed + seeds - 1 (seeds = their count)
    max_evaluations: int = 0  # > 0: every run also stops after this many evaluations
    # live scorers (``live:<name>``, :mod:`.live`): how and where they evaluate
    data: str = ""
    store: Path = Path("runs/live_scores.sqlite")
    protocol: str = "cpu"
    study: str = ""  # StudyConfig values on top of --protocol: "epochs=3,train_size=200"
    batch_size: int = 64
    batches: int = 0
    workers: int = 1
    threads: int = 1
    device: str = "cpu"
    backend: str = "local"
    ray_address: str = ""
    ray_cpus: int = 0
    results: Path | None = None  # live scorers: a committed file of finished units (import at start, merge at end)
    deadline: float | None = None  # live scorers: UNIX time after which no unit starts (.live.LiveTimeLimit)
    time_limit: float = 0.0  # live scorers: minutes from now after which no unit starts (sets ``deadline``)
    predictor_features: tuple[str, ...] = ()  # pool_csv columns the predictor also fits on, charged <col>_seconds

    def __post_init__(self) -> None:
        if self.seed_list:
            object.__setattr__(self, "seed_list", tuple(self.seed_list))
            object.__setattr__(self, "seeds", len(self.seed_list))
            if any(isinstance(k, bool) or not isinstance(k, int) or k < 0 for k in self.seed_list) or \
                    len(set(self.seed_list)) != len(self.seed_list):
                raise ValueError(f"--seeds must list distinct integers >= 0, got {list(self.seed_list)}")
        from ..data import canonical_dataset

        ds = canonical_dataset(self.dataset, SEARCH_DATASETS)
        object.__setattr__(self, "dataset", "cifar10" if ds == "cifar10-valid" else ds)
        reports = self.report_datasets.split(",") if isinstance(self.report_datasets, str) else self.report_datasets
        reports = tuple(SEARCH_DATASETS[:1] + SEARCH_DATASETS[2:]) if list(reports) == ["all"] else reports
        object.__setattr__(self, "report_datasets", tuple(dict.fromkeys(
            "cifar10" if (d := canonical_dataset(r, SEARCH_DATASETS)) == "cifar10-valid" else d
            for r in reports if str(r).strip())))
        if self.space not in SPACE_NAMES:
            raise ValueError(f"unknown --space {self.space!r}; choose nb201 (alias tss) or nats-size (alias sss)")
        space = SPACE_NAMES[self.space]
        object.__setattr__(self, "space", space)
        object.__setattr__(self, "methods", parse_names(self.methods, "--method", get_args(Method)))
        given = [n.strip() for n in (self.scorers.split(",") if isinstance(self.scorers, str) else self.scorers)
                 if str(n).strip()]
        live = [n for n in given if is_live(n)]
        plain = parse_names([n for n in given if not is_live(n)], "--scorer", SPACE_SCORERS[space]) if \
            len(live) < len(given) else ()
        object.__setattr__(self, "scorers", tuple(n if is_live(n) else plain[[m for m in given
                                                                             if not is_live(m)].index(n)]
                                                  for n in given))
        warm = "warmup_rea" in self.methods
        if warm and is_live(self.warmup_scorer):
            live.append(self.warmup_scorer)
        if isinstance(self.max_evaluations, bool) or not isinstance(self.max_evaluations, int) or \
                self.max_evaluations < 0:
            raise ValueError(f"--evaluations must be an integer >= 0 (0: no cap), got {self.max_evaluations!r}")
        object.__setattr__(self, "live", None)
        if isinstance(self.time_limit, bool) or not isinstance(self.time_limit, (int, float)) or \
                not self.time_limit >= 0:
            raise ValueError(f"--time-limit must be >= 0 minutes, got {self.time_limit!r}")
        if self.time_limit and not live:
            raise ValueError("--time-limit is for live scorers (--scorer live:<name>): a table search takes seconds")
        if self.time_limit and self.deadline is None:
            object.__setattr__(self, "deadline", time.time() + 60.0 * self.time_limit)
        if live:
            if space != "nb201":
                raise ValueError(f"{live[0]}: live scorers need --space nb201")
            object.__setattr__(self, "live", LiveConfig(
                names=tuple(live_base(n) for n in live), data=str(self.data or ""), dataset=self.dataset,
                store=Path(self.store), protocol=self.protocol, study=parse_study_options(self.study),
                batch_size=self.batch_size, batches=self.batches,
                seed=0, device=self.device, threads=self.threads, workers=self.workers, backend=self.backend,
                ray_address=self.ray_address, ray_cpus=self.ray_cpus, results=self.results,
                deadline=self.deadline))
        elif self.data:
            raise ValueError("--data is for live scorers (--scorer live:<name>); table scorers need no images")
        if warm and is_live(self.warmup_scorer):
            pass
        elif self.warmup_is_aggregate:
            parse_aggregate_name(self.warmup_scorer)  # ValueError for a malformed aggregate
            if space != "nb201":
                raise ValueError("an aggregate --warmup-scorer needs --space nb201 (its parts come from --pool-csv)")
        else:
            parse_names([self.warmup_scorer], "--warmup-scorer", SPACE_SCORERS[space] if warm else get_args(ScorerName))
        for name in ("warmup_pool", "seeds", "seed", "points"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int):
                raise ValueError(f"--{name.replace('_', '-')} must be an integer, got {v!r}")
        if self.warmup_pool < 1 or self.seeds < 1 or self.seed < 0 or self.points < 1:
            raise ValueError("need --warmup-pool >= 1, --seeds >= 1, --seed >= 0 and --points >= 1")
        if isinstance(self.budget, bool) or not isinstance(self.budget, (int, float)) or not (
                math.isfinite(self.budget) and self.budget > 0):
            raise ValueError(f"--budget must be a number > 0, got {self.budget!r}")
        object.__setattr__(self, "budget", float(self.budget))
        if not self.pool_column or not self.cost_column:
            raise ValueError("--pool-column and --cost-column must be non-empty")
        for name in ("pool_csv", "out") + (("shared",) if self.shared is not None else ()):
            object.__setattr__(self, name, Path(getattr(self, name)))
        if self.needs_pool_csv and not self.pool_csv.is_file():
            raise FileNotFoundError(f"--pool-csv {self.pool_csv} not found (made by nasbeff rank or nasbeff score)")
        if self.shared is not None and not self.shared.exists():
            raise FileNotFoundError(f"--shared {self.shared} does not exist")
        if "predictor" in self.methods and space != "nb201":
            raise ValueError("--method predictor needs --space nb201 (its GRAF features describe NB201 cells)")
        feats = self.predictor_features
        object.__setattr__(self, "predictor_features", tuple(
            c.strip() for c in (feats.split(",") if isinstance(feats, str) else feats) if c.strip()))
        if self.predictor_features and "predictor" not in self.methods:
            raise ValueError("--predictor-features needs --method predictor")
        if (self.dataset != "cifar10" or self.report_datasets) and space != "nb201":
            raise ValueError("--dataset and --report-datasets other than cifar10 need --space nb201 (the size "
                             "space's table holds CIFAR-10 only)")
        if self.dataset != "cifar10" and "naswot_v1" in (*self.scorers, *((self.warmup_scorer,) if warm else ())):
            raise ValueError(f"naswot_v1 has published values on CIFAR-10 only, not {self.dataset}: use zen, "
                             "benchmark or a --pool-csv aggregate")
        if warm:
            check_sample(self.warmup_pool, get_space(space).size, "--warmup-pool", f"the {space} space")
        check_writable(self.out, "--out")

    @property
    def warmup_is_aggregate(self) -> bool:
        """True when ``warmup_scorer`` is a rank aggregate of ``pool_csv`` columns (``rank:a+b``)."""
        return is_aggregate_name(self.warmup_scorer)

    @property
    def needs_pool_csv(self) -> bool:
        """True when a scorer or the pool comes from ``pool_csv``."""
        return self.in_pool or "beff" in self.scorers or bool(self.predictor_features) or (
            "warmup_rea" in self.methods and (self.warmup_scorer == "beff" or self.warmup_is_aggregate))


# ---------------------------------------------------------------------------------------------
# Ground truth
# ---------------------------------------------------------------------------------------------

@runtime_checkable
class SearchTable(Protocol):
    """What the search workflow needs from a ground-truth table."""

    def column(self, name: str, index: Any = None) -> Any:
        """Numeric column ``name`` (all rows when ``index`` is None)."""
        ...

    def arch(self, index: int) -> str:
        """Benchmark string of arch ``index``."""
        ...

    def without_test(self) -> Any:
        """A view that refuses test columns (:class:`~nasbeff.tables.ground_truth.SearchView`)."""
        ...


class ColumnTable:
    """An in-memory ground-truth table: one arch string and numeric columns per benchmark index.

    ``columns`` maps names to arrays of ``len(archs)`` values (row ``i`` = index ``i``)."""

    def __init__(self, archs: Sequence[str], columns: Mapping[str, Sequence[float]], name: str = "table") -> None:
        self._archs = list(archs)
        self._cols = {k: np.asarray(v, dtype=np.float64) for k, v in columns.items()}
        for k, v in self._cols.items():
            if v.shape != (len(self._archs),):
                raise ValueError(f"{name}: column {k!r} has {v.size} values for {len(self._archs)} archs")
        self.name = name

    def __repr__(self) -> str:
        return f"ColumnTable({self.name!r}, {len(self)} archs)"

    def __len__(self) -> int:
        return len(self._archs)

    def arch(self, index: int) -> str:
        return self._archs[int(index)]

    def column(self, name: str, index: Any = None):
        if name not in self._cols:
            raise KeyError(f"no column {name!r} in {self.name}; columns: {', '.join(self._cols)}")
        v = self._cols[name]
        if index is None:
            return v.copy()
        return float(v[int(index)]) if np.ndim(index) == 0 else v[np.asarray(index, dtype=np.int64)]

    def without_test(self):
        from ..tables.ground_truth import SearchView

        return SearchView(self)  # type: ignore[arg-type] - SearchView forwards column / arch only

    @classmethod
    def from_csv(cls, path: str | os.PathLike, space: SearchSpace) -> "ColumnTable":
        """A CSV with ``index`` (each of ``0 .. space.size - 1`` once), ``arch_str`` and numeric columns."""
        path = Path(path)
        fields, rows = read_csv(path, "table CSV")
        if "index" not in fields or "arch_str" not in fields:
            raise ValueError(f"{path}: needs the columns index and arch_str (it has {', '.join(fields)})")
        try:
            index = [int(r["index"]) for r in rows]
            cols = {c: [float(r[c]) if r[c] not in ("", None) else math.nan for r in rows]
                    for c in fields if c not in ("index", "arch_str")}
        except ValueError as exc:
            raise ValueError(f"{path}: non-numeric value ({exc})") from None
        if sorted(index) != list(range(space.size)):
            raise ValueError(f"{path}: the index column must hold 0..{space.size - 1} ({space.name}) once each")
        order = np.argsort(index, kind="stable")
        rows = [rows[i] for i in order]
        cols = {c: np.asarray(v)[order] for c, v in cols.items()}
        return cls([r["arch_str"] for r in rows], cols, path.name)

    @classmethod
    def from_nats_api(cls, api: Any, hp: str = str(SIZE_FULL_EPOCHS)) -> "ColumnTable":
        """The size-space columns from a ``nats_bench`` ``sss`` API object (seed means, ``hp``
        epochs): ``c10_valid`` (cifar10-valid valid-accuracy), ``train_time_s_c10valid``
        (its train-all-time) and ``c10_test`` (cifar10 test-accuracy). One query per arch and dataset."""
        archs, cols = [], {"c10_valid": [], "train_time_s_c10valid": [], "c10_test": []}
        for i in range(len(api)):
            v = api.get_more_info(i, "cifar10-valid", hp=hp, is_random=False)
            t = api.get_more_info(i, "cifar10", hp=hp, is_random=False)
            archs.append(api.arch(i))
            cols["c10_valid"].append(v["valid-accuracy"])
            cols["train_time_s_c10valid"].append(v["train-all-time"])
            cols["c10_test"].append(t["test-accuracy"])
        return cls(archs, cols, f"NATS-sss hp={hp}")


def load_table(space: str, shared: Path | None) -> SearchTable:
    """The ground truth of ``space`` (see the module docstring)."""
    if SPACE_NAMES[space] == "nb201":
        from ..tables.ground_truth import NB201Table

        table = NB201Table(shared)
        if not table.path.is_file():
            raise FileNotFoundError(f"NB201 ground truth {table.path} not found: pass --shared or set "
                                    "NASBEFF_SHARED_DATA")
        return table
    if shared is None:
        raise ValueError("--space nats-size needs --shared: a size ground-truth CSV or NATS-Bench sss files "
                         "(the offline data has no size-space table)")
    if shared.suffix.lower() == ".csv":
        return ColumnTable.from_csv(shared, get_space("nats-size"))
    try:
        import nats_bench
    except ImportError as exc:
        raise ImportError("reading NATS-Bench sss files needs the optional package 'nats_bench'") from exc
    api = nats_bench.create(str(shared), "sss", fast_mode=shared.is_dir(), verbose=False)
    return ColumnTable.from_nats_api(api)


# ---------------------------------------------------------------------------------------------
# The run
# ---------------------------------------------------------------------------------------------

@dataclass
class SearchResult:
    """``rows``: one per run and budget (:data:`CSV_FIELDS`; ``best_test_acc`` NaN and
    ``best_index`` -1 where nothing was evaluated). ``summary``: one per (method, scorer) at the
    full budget: :func:`~nasbeff.optimizers.summarize`'s fields plus ``unique_mean``."""

    config: SearchConfig
    rows: list[dict]
    summary: list[dict]
    trajectories: list[Trajectory] = field(repr=False)
    elapsed_s: float
    out: Path
    notes: list[str] = field(default_factory=list)
    """What to keep in mind when reading the summary, one line each (also each summary row's
    ``note``): an interval from fewer than 5 runs, runs that all ended at one accuracy, a warm-up
    pool cut to the archs it can draw from, a warm-up that used up the budget."""
    computed: list[tuple[str, int]] = field(default_factory=list)
    """Live scorers: the (kind, arch) units this run computed (the rest were read from the store)."""


def parse_study_options(text: str) -> tuple[tuple[str, Any], ...]:
    """``"epochs=3,train_size=200,beta_bn=batch"`` -> ``(("epochs", 3), ("train_size", 200), ("beta_bn",
    "batch"))``: numbers become int or float, the rest stays text (StudyConfig checks names and values)."""
    out = []
    for part in (p.strip() for p in str(text or "").split(",") if p.strip()):
        name, eq, value = part.partition("=")
        if not eq or not name.strip() or not value.strip():
            raise ValueError(f"--study {text!r}: write name=value pairs separated by commas, e.g. epochs=3,train_size=200")
        v: Any = value.strip()
        for cast in (int, float):
            try:
                v = cast(v)
                break
            except ValueError:
                continue
        out.append((name.strip().replace("-", "_"), v))
    return tuple(out)


def cost_model(cfg: SearchConfig, name: str) -> str:
    """What a scorer charges per evaluation (the ``cost_model`` column): ``measured`` (a live scorer:
    its unit's stored measured seconds), ``nb201_train_time`` (the benchmark's 12-epoch training time),
    ``fixed`` (a published proxy column's fixed seconds) or ``csv:<column>`` (seconds of ``pool_csv``)."""
    if is_live(name):
        return LIVE_COST_MODEL
    if name == "benchmark":
        return "nb201_train_time" if cfg.space == "nb201" else "nats_size_train_time"
    if name == "beff":
        return f"csv:{cfg.cost_column}"
    if is_aggregate_name(name):
        return "csv:" + "+".join(f"{p}_seconds" for p in parse_aggregate_name(name)[1])
    return "fixed"


def _scorer_factory(cfg: SearchConfig, space: SearchSpace, view, live: Any = None) -> Callable[[str], Any]:
    """``get(name) -> Scorer`` for this config (built once per name); ``live``: the open
    :class:`~.live.LiveEvaluator` of the ``live:`` names."""
    beff = pool = None
    built: dict[str, Any] = {}
    if cfg.in_pool or "beff" in (*cfg.scorers, cfg.warmup_scorer):
        beff = scorer_from_csv(cfg.pool_csv, cfg.pool_column, cfg.cost_column, name="beff", space=space)
        pool = beff.pool if cfg.in_pool else None

    def get(name: str):
        if is_live(name):
            if name not in built:
                built[name] = live.scorer(name)
            return built[name]
        if name == "beff":
            return beff
        if is_aggregate_name(name):
            return aggregate_scorer_from_csv(cfg.pool_csv, name, space=space)
        if cfg.space == "nb201":
            return make_scorer(name, view, pool=pool, dataset=cfg.dataset)
        return table_scorer(view, "c10_valid", "train_time_s_c10valid", cost_scale=NATS_EPOCHS / SIZE_FULL_EPOCHS,
                            name="benchmark", pool=pool, space=space)

    return get


def _write_csv(rows: list[dict], out: Path) -> None:
    """Rows as CSV, all-or-nothing (:func:`nasbeff.store.atomic_write`)."""
    extra = [k for k in (rows[0] if rows else {}) if k.startswith("best_") and k not in CSV_FIELDS]
    live = [k for k in LIVE_FIELDS if rows and k in rows[0]]
    with atomic_write(out, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow([*CSV_FIELDS, *extra, *live])
        for r in rows:
            found = r["best_index"] >= 0
            w.writerow([r["method"], r["scorer"], r["warmup_scorer"], r["seed"], f"{r['budget_s']:g}", r["evaluations"],
                        r["best_index"], r["best_arch_str"], f"{r['best_test_acc']:.4f}" if found else "",
                        *(f"{r[k]:.4f}" if found else "" for k in extra),
                        *(f"{r[k]:.2f}" if isinstance(r[k], float) else r[k] for k in live)])


def run_search(cfg: SearchConfig, on_progress: Progress | None = None, *,
               table: SearchTable | None = None) -> SearchResult:
    """Run every (method, scorer) for ``cfg.seeds`` seeds, write ``cfg.out`` and summarise.

    ``table``: the ground truth (default :func:`load_table` of ``cfg.space`` and ``cfg.shared``)."""
    progress = on_progress or (lambda done, total, label: None)
    space = get_space(cfg.space)
    table = load_table(cfg.space, cfg.shared) if table is None else table
    if not isinstance(table, SearchTable):
        raise ValueError(f"table must have column(), arch() and without_test(), got {type(table).__name__}")
    with (LiveEvaluator(cfg.live, f"nasbeff search ({', '.join(cfg.live.names)})") if cfg.live is not None
          else contextlib.nullcontext()) as live:
        get = _scorer_factory(cfg, space, table.without_test(), live)
        seeds = list(cfg.seed_list or range(cfg.seed, cfg.seed + cfg.seeds))
        total, done = len(cfg.methods) * len(cfg.scorers) * cfg.seeds, 0
        runs: list[tuple[str, str, list[Trajectory]]] = []
        notes: dict[tuple[str, str], list[str]] = {}
        plans = []
        for m in cfg.methods:  # every optimizer first: a warm-up that cannot fit the budget stops before any run
            for s in cfg.scorers:
                kw: dict[str, Any] = {"space": space}
                if m == "warmup_rea":  # the draws are cut to the archs the warm-up can draw from
                    kw.update(warmup_scorer=get(cfg.warmup_scorer), pool_size=max(10, cfg.warmup_pool))
                if m == "predictor" and cfg.predictor_features:  # each charged its measured seconds, once per arch
                    kw["features"] = [scorer_from_csv(cfg.pool_csv, c, f"{c}_seconds", space=space)
                                      for c in cfg.predictor_features]
                opt = make_optimizer(m, get(s), **kw)
                notes[m, s] = _check_warmup(cfg, opt) if m == "warmup_rea" and not is_live(cfg.warmup_scorer) else []
                plans.append((m, s, opt))
        t0 = time.perf_counter()
        lock = threading.Lock()
        cap = cfg.max_evaluations or None

        def job(m: str, s: str, opt: Any, k: int) -> Callable[[], Trajectory]:
            def one() -> Trajectory:
                nonlocal done
                traj = opt.run(cfg.budget, k, cap)
                with lock:
                    done += 1
                    progress(done, total, f"{m} / {s} seed {k}")
                return traj
            return one

        progress(done, total, "searching")
        # every run of every plan at once: with live scorers their requests are evaluated together (more
        # units per batch for the workers); each run depends only on its seed and the scores, so the runs
        # are those of one run after another
        jobs = [job(m, s, opt, k) for m, s, opt in plans for k in seeds]
        every = live.run(jobs) if live is not None else [j() for j in jobs]
        for p, (m, s, opt) in enumerate(plans):
            trajs = every[p * len(seeds):(p + 1) * len(seeds)]
            runs.append((m, s, trajs))
            if m == "warmup_rea":
                stalled = sum(int((t.stage == 1).sum()) <= opt.population_size for t in trajs)
                if stalled:
                    notes[m, s].append(f"the warm-up (and the first population) used up the budget in {stalled} of "
                                       f"{len(trajs)} runs: no evolution step, so those runs report the warm-up "
                                       f"scorer's pick; lower --warmup-pool or raise --budget")
        live_costs = _live_costs(live, runs) if live is not None else {}
        computed = sorted(live.computed) if live is not None else []
    progress(done, total, "done")
    elapsed = time.perf_counter() - t0
    warm_name = cfg.warmup_scorer
    truth = np.asarray(table.column(TEST_COLUMNS[cfg.dataset]), dtype=np.float64)  # after the search: reporting only
    others = {d: np.asarray(table.column(TEST_COLUMNS[d]), dtype=np.float64) for d in cfg.report_datasets}
    report = sorted({b for b in DEFAULT_BUDGETS if b <= cfg.budget} | {float(cfg.budget)})
    grid = sorted(set(report) | {float(b) for b in np.linspace(cfg.budget / cfg.points, cfg.budget, cfg.points)})
    rows, summary = [], []
    for m, s, trajs in runs:
        for t in trajs:
            for b in grid:
                bi = int(t.best_at(b))
                rows.append({"method": m, "scorer": s, "warmup_scorer": t.warmup_scorer or "", "seed": t.seed,
                             "budget_s": float(b), "evaluations": int(t.evaluations_at(b)), "best_index": bi,
                             "best_arch_str": table.arch(bi) if bi >= 0 else "",
                             "best_test_acc": float(truth[bi]) if bi >= 0 else math.nan,
                             **{f"best_{TEST_COLUMNS[d]}": float(v[bi]) if bi >= 0 else math.nan
                                for d, v in others.items()},
                             **(_live_columns(cfg, t, int(t.evaluations_at(b)), s, warm_name, live_costs)
                                if cfg.live is not None else {})})
        row = summarize(trajs, truth, [cfg.budget])[0]
        for d, v in others.items():  # the chosen archs' accuracy on the other datasets, at the full budget
            accs = np.array([v[int(t.best_at(cfg.budget))] for t in trajs if int(t.best_at(cfg.budget)) >= 0])
            row[f"{TEST_COLUMNS[d]}_mean"] = float(accs.mean()) if accs.size else math.nan
            row[f"{TEST_COLUMNS[d]}_std"] = float(accs.std()) if accs.size else math.nan
        row_notes = notes[m, s] + _interval_notes(row)
        summary.append({**row, "unique_mean": float(np.mean([t.unique_evaluations for t in trajs])),
                        "note": "; ".join(row_notes)})
    _write_csv(rows, cfg.out)
    lines = [f"{r['method']} / {r['scorer']}: {n}" for r in summary for n in notes[r["method"], r["scorer"]]]
    lines += [n for r in summary for n in _interval_notes(r)]
    if cfg.live is not None:
        lines.append(f"live scorers: {len(computed)} units computed in this run, the others read from "
                     f"{cfg.live.store}; each evaluation charged its unit's measured seconds (cost model "
                     f"'{LIVE_COST_MODEL}')")
    return SearchResult(cfg, rows, summary, [t for _, _, ts in runs for t in ts], elapsed, cfg.out,
                        list(dict.fromkeys(lines)), computed)


def _live_costs(live: LiveEvaluator, runs: list[tuple[str, str, list[Trajectory]]]) -> dict[tuple[str, int], Any]:
    """(live scorer name, arch) -> its unit's :class:`~.live.UnitCost`, for every live evaluation of ``runs``."""
    out = {}
    for _, s, trajs in runs:
        for t in trajs:
            for i, stage in zip(t.indices.tolist(), t.stage.tolist()):
                name = s if stage == 1 else (t.warmup_scorer or "")
                if is_live(name) and (name, i) not in out:
                    out[name, i] = live.unit_cost(name, i)
    return out


def _live_columns(cfg: SearchConfig, t: Trajectory, k: int, main: str, warm: str,
                  costs: dict[tuple[str, int], Any]) -> dict[str, Any]:
    """``cost_model``; ``unique_trained``: distinct archs the main scorer evaluated in the first ``k``
    evaluations (each a training run for an early-training scorer); ``cpu_seconds``: the measured
    CPU seconds of the distinct live units among them (each counted once; a repeat is charged
    to the budget but computed once)."""
    seen: set[tuple[str, int]] = set()
    cpu = 0.0
    for i, stage in zip(t.indices[:k].tolist(), t.stage[:k].tolist()):
        name = main if stage == 1 else warm
        if (name, i) in seen:
            continue
        seen.add((name, i))
        if (name, i) in costs:
            cpu += costs[name, i].cpu_seconds
    model = cost_model(cfg, main) + (f"; warm-up {cost_model(cfg, warm)}" if t.warmup_scorer else "")
    return {"cost_model": model, "unique_trained": sum(1 for n, _ in seen if n == main), "cpu_seconds": cpu}


def _check_warmup(cfg: SearchConfig, opt: Any) -> list[str]:
    """Refuse (ValueError) a warm-up whose cheapest possible draw costs the whole budget (REA would
    never start in any run); a note when the warm-up pool was cut to the archs it can draw from."""
    need = opt.min_warmup_cost()
    if need >= cfg.budget:
        raise ValueError(f"warmup_rea: a warm-up of {opt.warmup_size:,} archs by {opt.warmup_name} costs at least "
                         f"{need:,.0f} s, all of --budget {cfg.budget:,.0f} s, so REA would never start; lower "
                         f"--warmup-pool ({cfg.warmup_pool}) or raise --budget")
    if cfg.warmup_pool > opt.warmup_domain_size:
        return [f"the warm-up pool is cut to the {opt.warmup_domain_size:,} archs it can draw from "
                f"(--warmup-pool {cfg.warmup_pool})"]
    return []


def _interval_notes(row: dict) -> list[str]:
    """How far a summary row's mean ± std and 95% CI can be trusted: few runs, or no spread."""
    out = [n] if (n := few_samples_note(int(row["n"]), "runs (seeds)")) else []
    if row["n"] > 1 and row["std"] == 0:
        out.append(f"{row['method']} / {row['scorer']}: all {row['n']} runs ended at the same test accuracy "
                   f"(std 0): its ± and CI show no spread, not certainty")
    return out

