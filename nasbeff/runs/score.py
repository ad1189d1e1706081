"""``nasbeff score``: training-free proxies of NB201 archs at initialisation, resumable.

Each arch is one unit (:class:`ProxyJob`: build the network once, score it with every proxy not
stored yet, members of one proxy group in one shared pass). Workers return their values and this
process writes them, each arch's rows and done markers in one store transaction, while holding the
store's lease; a killed run loses at most the units in flight and nothing is scored twice.
``time_limit`` ends a run early (no new arch starts after it); the next run resumes.

Rank aggregates (``rank:a+b``, ``meanrank:a+b``) are columns computed at the end of every run,
within the **population of the output CSV**: the archs of the selection that have a stored value
of every part (an arch missing a part gets no aggregate value). The CSV is rewritten from the
store after every run, so after each chunk of a long run it holds every arch scored so far.
"""

from __future__ import annotations

import ctypes
import math
import sys
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from collections.abc import Sequence
from typing import Any, Literal

import numpy as np
import torch

from ..data.names import NUM_CLASSES
from ..executors.backends import make_backend
from ..store import ResultStore, RunKey, config_hash, read_units_csv
from ..tables import TEST_COLUMNS
from ._common import Progress, check_execution, check_sample, discard_unused_new_store, check_writable, no_progress, sample_from_pool, write_csv

LEASE_INTERVAL_S = 10.0


@dataclass(frozen=True)
class ScoreConfig:
    """What to score and where (validated on construction, before any data is loaded). ``data``:
    ``'digits'`` or a CIFAR-10 folder/tar (seeded images of the 25k train half)."""

    data: str
    archs: tuple[int, ...]
    dataset: str = "cifar10"  # whose images (from --data), classes and statistics; the truth follows
    proxies: tuple[str, ...] = ("naswot", "synflow", "snip", "grad_norm", "params")
    sample: int = 0
    sample_seed: int = 0
    batch_size: int = 64
    batches: int = 0  # 0: what the proxies need (2 with zico, else 1)
    init_channels: int = 16
    cells: int = 5
    store: Path = Path("runs/scores.sqlite")
    out: Path = Path("runs/scores.csv")
    seed: int = 0
    device: str = "cpu"
    threads: int = 1
    workers: int = 1
    backend: Literal["local", "ray"] = "local"
    ray_address: str = ""
    ray_cpus: int = 0
    resume: bool = True
    truth: str | None = None  # None: c10_test where the NB201 table is found, else no Spearman column (noted)
    shared: Path | None = None
    time_limit: float = 0.0
    results: Path | None = None

    def __post_init__(self) -> None:
        check_execution(self.backend, self.workers, self.threads, self.ray_cpus, self.device)
        if not self.proxies:
            raise ValueError("--proxies is empty")
        self.base_proxies  # noqa: B018 - KeyError listing the available names, ValueError for a bad aggregate
        if self.time_limit < 0:
            raise ValueError(f"--time-limit must be >= 0 minutes, got {self.time_limit}")
        if self.batches == 0:  # the default: what the listed proxies need
            object.__setattr__(self, "batches", 2 if "zico" in self.base_proxies else 1)
        if "zico" in self.base_proxies and self.batches < 2:
            raise ValueError(f"zico needs --batches >= 2, got {self.batches}")
        if self.batch_size < 2:
            raise ValueError(f"--batch-size must be >= 2, got {self.batch_size}")
        if self.batches < 1:
            raise ValueError(f"--batches must be >= 1 (0: what the proxies need), got {self.batches}")
        for opt, v, low in (("--init-channels", self.init_channels, 1), ("--cells", self.cells, 1),
                            ("--sample", self.sample, 0)):
            if v < low:
                raise ValueError(f"{opt} must be >= {low}, got {v}")
        if not self.archs:
            raise ValueError("no arch to score")
        check_sample(self.sample, len(self.archs))
        from ..data import canonical_dataset

        ds = canonical_dataset(self.dataset, SCORE_DATASETS)
        if self.data == "digits" and ds not in ("cifar10", "cifar10-valid"):
            raise ValueError(f"--data digits is scikit-learn's digits, not {ds} images: give --data {IMAGES_HINT[ds]}")
        object.__setattr__(self, "dataset", "digits" if self.data == "digits" else ds)
        if self.data != "digits" and not Path(self.data).exists():
            raise FileNotFoundError(f"--data {self.data} does not exist: --dataset {ds} needs {IMAGES_HINT[ds]}")
        check_writable(self.store, "--store")
        check_writable(self.out, "--out")
        if self.results is not None:
            check_writable(self.results, "--results")
            if self.results.exists():
                read_units_csv(self.results)  # a bad file: one line, before any work
        if self.truth is None:  # not asked for: the default column where the table exists, none where not
            from ..tables.ground_truth import GROUND_TRUTH_CSV, shared_data_dir

            # a --shared or NASBEFF_SHARED_DATA given but pointing nowhere is an error (check_truth, shared_data_dir)
            where = self.shared if self.shared is not None else shared_data_dir()
            found = where is not None and (self.shared is not None or (Path(where) / GROUND_TRUTH_CSV).is_file())
            object.__setattr__(self, "truth", DEFAULT_TRUTHS.get(self.dataset, DEFAULT_TRUTH) if found else "")
            object.__setattr__(self, "_truth_missing", not found)
        if self.truth:
            check_truth(self.truth, self.shared, self.dataset)

    @property
    def aggregates(self) -> dict[str, list[str]]:
        """Aggregate name -> its parts, for the aggregates among :attr:`proxies`."""
        from ..proxies.aggregate import is_aggregate_name, parse_aggregate_name

        return {n: parse_aggregate_name(n)[1] for n in self.proxies if is_aggregate_name(n)}

    @property
    def base_proxies(self) -> tuple[str, ...]:
        """The proxies to compute: the plain names, then the aggregates' parts (each once)."""
        from .. import proxies as zc

        names = [n for n in self.proxies if n not in self.aggregates]
        names += [p for parts in self.aggregates.values() for p in parts]
        for name in names:
            zc.get(name)  # KeyError listing the available names
        return tuple(dict.fromkeys(names))


@dataclass(frozen=True)
class ProxyJob:
    """Score one NB201 arch with training-free proxies: ``job((index, names)) -> {name: metrics}``,
    or None when ``deadline`` (UNIX time) had passed before it started (``--time-limit``).

    The network is ``build_cell_network(channels, arch, num_classes, in_channels)`` initialised
    after ``torch.manual_seed(seed)``; the torch seed is set again before every pass
    (:func:`nasbeff.proxies.passes`: a group's members share one), so a value depends only on (arch,
    proxy, seed, batches). Metrics per proxy: ``value`` (None when its pass failed numerically),
    ``seconds`` (wall; a group member: its equal share of the pass), ``cpu_seconds`` (CPU time of
    this process, shared the same way: the cost on a busy machine) and ``flag`` (why the value is
    a limit or an error, or None)."""

    batches: tuple[tuple[torch.Tensor, torch.Tensor], ...]
    channels: tuple[int, ...]
    num_classes: int = 10
    seed: int = 0
    device: str = "cpu"
    deadline: float | None = None

    def __call__(self, unit: tuple[int, tuple[str, ...]]) -> dict[str, dict[str, Any]] | None:
        from .. import proxies
        from ..spaces import build_cell_network, index_to_str

        if self.deadline is not None and time.time() > self.deadline:
            return None
        index, names = unit
        groups = proxies.passes(names)  # KeyError for an unknown name, before any work
        dev = torch.device(self.device)
        batches = [(x.to(dev), y.to(dev)) for x, y in self.batches]
        torch.manual_seed(self.seed)
        net = build_cell_network(self.channels, index_to_str(int(index)), self.num_classes,
                                 batches[0][0].shape[1]).to(dev)
        out: dict[str, dict[str, Any]] = {}
        for group in groups:
            torch.manual_seed(self.seed)
            t0, c0 = time.perf_counter(), time.process_time()
            try:
                for name, res in proxies.score_many(group, net, batches).items():
                    out[name] = {"value": res.value, "seconds": res.seconds, "flag": res.flag}
            except ValueError as exc:  # numerical failure of this arch: recorded, the study goes on
                share = (time.perf_counter() - t0) / len(group)
                out.update({n: {"value": None, "seconds": share, "flag": f"error: {exc}"} for n in group})
            cpu = (time.process_time() - c0) / len(group)
            for n in group:
                out[n]["cpu_seconds"] = cpu
        del net
        _release_memory()
        return {n: out[n] for n in names}


def _release_memory() -> None:
    """Give freed heap back to the OS (glibc ``malloc_trim``), so a long-lived worker's memory does
    not creep up arch after arch; nothing elsewhere."""
    if sys.platform.startswith("linux"):
        try:
            ctypes.CDLL("libc.so.6").malloc_trim(0)
        except (OSError, AttributeError):
            pass


@dataclass
class ScoreResult:
    """``rows``: one per arch with a stored value; ``summary``: per proxy and aggregate: name,
    archs, flagged, median_seconds (an aggregate: :func:`nasbeff.proxies.charged_seconds` of its
    parts), spearman (a Correlation with CI) or None; ``left``: archs not started (time limit)."""

    rows: list[dict]
    names: tuple[str, ...]
    n_total: int
    summary: list[dict]
    truth_note: str
    out: Path | None
    left: int = 0

    def table(self, truth: str) -> tuple[str, list[str], list[list[str]]]:
        """(title, columns, rows) of the summary table the CLI prints."""
        def num(v: float) -> str:
            return "n/a" if v is None or np.isnan(v) else f"{v:.3f}"

        with_rho = any(s["spearman"] is not None for s in self.summary)
        cols = ["proxy", "archs", "flagged", "median s/arch"] + ([f"Spearman vs {truth} [95% CI]", "n"] if with_rho
                                                                  else [])
        rows = [[s["proxy"], str(s["archs"]), str(s["flagged"]), num(s["median_seconds"])] +
                ([] if not with_rho else ["n/a", ""] if (c := s["spearman"]) is None else
                 [f"{c.spearman:+.3f} [{c.spearman_ci[0]:+.2f}, {c.spearman_ci[1]:+.2f}]", str(c.n)])
                for s in self.summary]
        return f"NB201 archs scored: {len(self.rows)} of {self.n_total}", cols, rows


DEFAULT_TRUTH = TEST_COLUMNS["cifar10"]
#: The NB201 test-accuracy column of each dataset (``digits`` stands in for CIFAR-10).
DEFAULT_TRUTHS = {**TEST_COLUMNS, "digits": DEFAULT_TRUTH}
#: Datasets ``score`` reads images of, and what ``--data`` must be for each.
SCORE_DATASETS = ("cifar10", "cifar10-valid", "cifar100", "imagenet16-120")
IMAGES_HINT = {
    "cifar10": "CIFAR-10 images: a cifar-10-batches-py folder, a train|test/<class>/ image tree or a .tar(.gz) of "
               "either (e.g. ../shared/data/cifar10/cifar10_jpeg.tar.gz), or 'digits'",
    "cifar100": "CIFAR-100 images: a cifar-100-python folder or an .npz of images + labels "
                "(e.g. ../shared/data/cifar100/cifar100_5000_uint8.npz)",
    "imagenet16-120": "ImageNet16-120 images: the folder of its train_data_batch_* files or an .npz of images + "
                      "labels (none exist on a machine without them: this dataset cannot be scored here)",
}
IMAGES_HINT["cifar10-valid"] = IMAGES_HINT["cifar10"]


def check_truth(truth: str, shared: Path | None, images: str) -> None:
    """One line, before any work, unless ``truth`` is a column of the NB201 table that can be read
    and measured on the dataset of the images (``digits`` stands in for CIFAR-10)."""
    from ..tables.ground_truth import NB201Table, column_dataset

    try:
        table = NB201Table(shared)
    except FileNotFoundError as e:
        raise FileNotFoundError(f"--truth {truth}: {e}; or --truth '' for no Spearman column") from None
    if not table.path.is_file():
        raise FileNotFoundError(f"--truth {truth}: the NB201 ground truth {table.path} is not there; pass --shared or "
                                "set NASBEFF_SHARED_DATA to the folder holding nb201/, or --truth '' for no Spearman")
    if truth not in table.columns:
        accs = [c for c in table.columns if column_dataset(c) and ("test" in c or "valid" in c)]
        raise ValueError(f"--truth {truth!r} is not a column of the NB201 table; accuracies: {', '.join(accs)}")
    ds = column_dataset(truth)
    family = {"cifar10-valid": "cifar10", "digits": "cifar10"}
    if ds is not None and family.get(ds, ds) != family.get(images, images):
        raise ValueError(f"--truth {truth} is measured on {ds} but the proxies see {images} images: compare with "
                         f"{images}'s column ({DEFAULT_TRUTHS.get(images, DEFAULT_TRUTH)}) or give {ds}'s images")




def proxy_batches(data: str, n_batches: int, batch_size: int, seed: int, dataset: str = "cifar10"):
    """(batches, dataset name of the store key): ``n_batches`` seeded batches of ``dataset``'s training
    images from ``data`` (CIFAR-10: the 25k train half of ``cifar10-valid``; an ``.npz`` of images +
    labels: all of its images), normalised with that dataset's statistics."""
    from ..data import canonical_dataset
    from ..data.loaders import NORMALIZATION, load_dataset, load_digits, read_npz_images, to_tensor

    ds = "digits" if data == "digits" else canonical_dataset(dataset, SCORE_DATASETS)
    name = "cifar10-valid" if ds == "cifar10" else ds
    if ds == "digits":
        train, _ = load_digits(seed=0)
    elif str(data).endswith(".npz"):
        train = read_npz_images(data)
    else:
        train = load_dataset(name, Path(data), "train")
    if name != "digits" and len(train.classes) > NUM_CLASSES[name]:
        raise ValueError(f"--data {data} holds {len(train.classes)} classes, more than {name}'s {NUM_CLASSES[name]}: "
                         "is it another dataset's images?")
    need = n_batches * batch_size
    if need > len(train):
        raise ValueError(f"--batches x --batch-size = {need} exceeds the {len(train)} training images of {name}")
    idx = torch.randperm(len(train), generator=torch.Generator().manual_seed(seed))[:need].numpy()
    mean, std = NORMALIZATION[name]
    x, y = to_tensor(train.subset(idx), mean=mean, std=std)
    return tuple((x[k * batch_size:(k + 1) * batch_size], y[k * batch_size:(k + 1) * batch_size])
                 for k in range(n_batches)), name


def score_key(index: int, proxy: str, dataset: str, chash: str, seed: int) -> RunKey:
    return RunKey(space="nb201", arch=str(int(index)), dataset=dataset, scorer=proxy, config_hash=chash, seed=seed)


def proxy_store_config(dataset: str, batch_size: int, batches: int, channels: Sequence[int], seed: int) -> dict:
    """The store config of proxy scores (its hash is in every key): a value depends on exactly these.
    ``nasbeff score`` and a live search scorer (:mod:`.live`) with the same values share their units."""
    return {"kind": "proxies", "protocol": 1, "dataset": dataset, "batch_size": batch_size, "batches": batches,
            "channels": list(channels), "num_classes": NUM_CLASSES[dataset], "seed": seed}


def commit_proxy_unit(st: ResultStore, index: int, names: Sequence[str], result: dict[str, dict], dataset: str,
                      chash: str, seed: int, redo: bool = False) -> None:
    """Write one arch's proxy values (``ProxyJob``'s result) and their done markers in one transaction
    (``redo``: unmark a finished pair first, ``--no-resume``)."""
    with st.transaction():
        for n in names:
            key = score_key(index, n, dataset, chash, seed)
            if redo:
                st.unmark_done(key)
            st.record_epoch(key, None, _storable(result[n]), overwrite=bool(st.epochs_done(key)))
            st.mark_done(key)


def stored_proxy_values(st: ResultStore, names: Sequence[str], dataset: str, chash: str,
                        seed: int) -> dict[tuple[int, str], dict]:
    """(arch index, proxy) -> stored metrics (``value``, ``seconds``, ``cpu_seconds``, ``flag``) of every
    finished pair of this config; ``value`` is ``-inf`` where a limit was stored."""
    return _stored(st, tuple(names), dataset, chash, seed)


def run_score(cfg: ScoreConfig, on_progress: Progress = no_progress) -> ScoreResult:
    """Score every (arch, proxy) pair not stored yet (until ``cfg.time_limit``), then write one row
    per arch with a stored value, from the store, with the aggregate columns (see the module docstring)."""
    from ..spaces import nb201_channels

    indices = sample_from_pool(cfg.archs, cfg.sample or None, cfg.sample_seed)
    channels = nb201_channels(cfg.init_channels, cfg.cells)
    names = cfg.base_proxies
    batch_data, dataset = proxy_batches(cfg.data, cfg.batches, cfg.batch_size, cfg.seed, cfg.dataset)  # before the store
    with discard_unused_new_store(cfg.store), ResultStore(cfg.store) as st, \
            st.acquire_lease(f"nasbeff score ({len(indices)} archs)", interval_s=LEASE_INTERVAL_S):
        config = proxy_store_config(dataset, cfg.batch_size, cfg.batches, channels, cfg.seed)
        chash = config_hash(config)
        st.save_config(config)
        if cfg.results is not None and cfg.resume and cfg.results.exists():
            st.import_done(cfg.results)  # a fresh checkout resumes from the committed pairs
        stored = _stored(st, names, dataset, chash, cfg.seed) if cfg.resume else {}
        units = [(i, todo) for i in indices if (todo := tuple(n for n in names if (i, n) not in stored))]
        deadline = time.time() + 60 * cfg.time_limit if cfg.time_limit else None
        job = ProxyJob(batch_data, tuple(channels), NUM_CLASSES[dataset], cfg.seed, cfg.device, deadline)
        backend = make_backend(cfg.backend, cfg.threads, cfg.ray_address or None, cfg.ray_cpus or None, cfg.device,
                               workers=cfg.workers)
        done, left = len(indices) - len(units), 0
        on_progress(done, len(indices), f"scoring ({cfg.backend})")

        def commit(unit, result):
            nonlocal done, left
            index, todo = unit
            if result is None:
                left += 1
                return
            commit_proxy_unit(st, index, todo, result, dataset, chash, cfg.seed, redo=not cfg.resume)
            done += 1
            on_progress(done, len(indices), f"arch {index}")

        try:
            backend.map_units(job, units, on_result=commit)
        finally:
            backend.close()
            final = _stored(st, names, dataset, chash, cfg.seed)
            if cfg.results is not None:  # also on Ctrl-C: every finished pair of this config, to commit
                st.export_done(cfg.results, space="nb201", dataset=dataset, scorer=list(names), config_hash=chash,
                               seed=cfg.seed)
        rows = score_rows(indices, names, cfg.aggregates, final, cfg.proxies)
    if rows:
        write_csv(rows, cfg.out)
    summary, note = _summary(rows, cfg.proxies, cfg.aggregates, cfg.truth, cfg.shared)
    if getattr(cfg, "_truth_missing", False):
        note = (f"no Spearman column: the NB201 ground truth ({DEFAULT_TRUTH}) was not found; pass --shared or set "
                "NASBEFF_SHARED_DATA")
    return ScoreResult(rows, cfg.proxies, len(indices), summary, note, cfg.out if rows else None, left)


def _storable(metrics: dict[str, Any]) -> dict[str, Any]:
    """The store keeps numbers finite (inf -> null): a limit value (``-inf``: cut off / ranked last)
    also goes in as the text ``limit``, which :func:`_stored` reads back."""
    v = metrics["value"]
    return metrics if v is None or math.isfinite(v) else {**metrics, "limit": repr(float(v))}


def _stored(st: ResultStore, names: tuple[str, ...], dataset: str, chash: str, seed: int) -> dict[tuple[int, str], dict]:
    """(arch index, proxy) -> stored metrics of every finished pair of this config (one query);
    ``value`` is the limit value (``-inf``) where one was stored."""
    return {(int(r.key.arch), r.key.scorer): {**r.metrics, "value": float(r.metrics["limit"])}
            if r.metrics.get("limit") else r.metrics
            for r in st.rows(done=True, space="nb201", dataset=dataset, scorer=list(names), config_hash=chash,
                             seed=seed)}


def score_rows(indices: list[int], names: tuple[str, ...], aggregates: dict[str, list[str]],
               stored: dict[tuple[int, str], dict], order: tuple[str, ...] = ()) -> list[dict]:
    """CSV rows: ``index, arch_str, cut_off``, one column per proxy (empty where not stored) and
    aggregate (``order`` first, then the other proxies of ``names``), ``<proxy>_seconds``,
    ``flags``; one per arch of ``indices`` with any stored value.
    Aggregates rank within these rows, over the archs that have every part (NaN elsewhere)."""
    from ..proxies import rank_aggregate
    from ..spaces import index_to_str, is_cut_off

    columns = list(dict.fromkeys([*order, *names]))
    rows = []
    for i in indices:
        got = {n: stored.get((i, n)) for n in names}
        if all(v is None for v in got.values()):
            continue
        arch = index_to_str(i)
        row: dict[str, Any] = {"index": i, "arch_str": arch, "cut_off": bool(is_cut_off(arch))}
        for n in columns:  # the requested order, then the aggregates' other parts
            row[n] = None if n in aggregates or got[n] is None else got[n]["value"]
        row.update({f"{n}_seconds": None if m is None else m["seconds"] for n, m in got.items()})
        row["flags"] = "; ".join(f"{n}: {m['flag']}" for n, m in got.items() if m is not None and m["flag"])
        rows.append(row)
    for agg in aggregates:
        if rows:
            vals = {p: np.array([np.nan if r[p] is None else r[p] for r in rows], dtype=float) for p in aggregates[agg]}
            out = rank_aggregate(agg, vals, nan_policy="omit")
            for r, v in zip(rows, out):
                r[agg] = None if np.isnan(v) else float(v)
    return rows


def _summary(rows: list[dict], names: tuple[str, ...], aggregates: dict[str, list[str]], truth: str,
             shared: Path | None) -> tuple[list[dict], str]:
    """Per proxy and aggregate: archs with a value, flagged archs, median seconds (an aggregate: the
    charged seconds of its parts) and Spearman vs ``truth``."""
    from ..evaluation.correlation import rank_correlation
    from ..proxies import charged_seconds

    from .report import comparable_columns

    t, note = None, ""
    if truth and len(rows) >= 3:
        from ..tables.ground_truth import NB201Table

        t = np.asarray(NB201Table(shared).column(truth, [r["index"] for r in rows]), dtype=float)

    def col(name: str) -> np.ndarray:
        return np.array([np.nan if r[name] is None else r[name] for r in rows], dtype=float)

    ranked = {}
    if t is not None:  # every row on the same archs (the report's rules: cut-off archs out, -inf last)
        ranked, t, notes = comparable_columns({n: col(n) for n in names}, t, np.array([r["cut_off"] for r in rows]))
        note = "; ".join(notes)
    elif truth:
        note = "no Spearman column: fewer than 3 archs scored"
    out = []
    for n in names:
        vals = col(n)
        parts = aggregates.get(n, [n])
        secs = charged_seconds(parts, {p: col(f"{p}_seconds") for p in parts}) if rows else np.array([])
        secs = secs[np.isfinite(secs)]
        item = {"proxy": n, "archs": int(np.isfinite(vals).sum()),
                "flagged": sum(any(f"{p}: " in r["flags"] for p in parts) for r in rows),
                "median_seconds": float(np.median(secs)) if secs.size else float("nan"), "spearman": None}
        if t is not None:
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    item["spearman"] = rank_correlation(ranked[n], t, n_boot=1000)
            except ValueError:
                pass
        out.append(item)
    return out, note
