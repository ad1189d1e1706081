"""Ground-truth accuracies for the NAS-Bench-201 / NATS-Bench topology space (15,625 archs).

Three sources share one small protocol (:class:`BenchmarkSource`); :func:`open_benchmark` picks
one from a path:

* :class:`NB201Table`: the offline compact CSV ``nb201/nb201_ground_truth.csv`` (read lazily,
  numeric columns only, as one float array);
* :class:`NB201File`: an original NAS-Bench-201 file (``NAS-Bench-201-v1_0-e61699.pth``,
  ``NAS-Bench-201-v1_1-096897.pth``), parsed without ``nas_201_api`` into the same compact columns;
* :class:`NATSBench`: the real NATS-Bench files, topology (``tss``) or size (``sss``) space, read
  through the official ``nats_bench`` API (optional dependency, imported lazily).

Accuracies are addressed by NB201's EXPLICIT (dataset, split) names:

=================  ====================================================================
dataset            splits
=================  ====================================================================
``cifar10``        ``ori-test`` (trained on train+valid = all 50k; no ``x-valid``)
``cifar10-valid``  ``x-valid`` (trained on 25k, validated on the other 25k), ``ori-test``
``cifar100``       ``x-valid``, ``x-test`` (the two halves of the test set), ``ori-test``
``imagenet16-120`` same as cifar100
=================  ====================================================================

(plus ``train`` where a source has it). Names, aliases (``c10``, ``ImageNet16-120``, ``xvalid``, ...)
and the checks that explain a wrong pair come from :mod:`nasbeff.data.names`; ``digits`` has no
ground truth here. ``ori-test`` and ``x-test`` are test accuracies:
:meth:`BenchmarkSource.without_test` returns a :class:`SearchView` for search code that raises
:class:`HiddenTestAccuracyError` on them.
"""

from __future__ import annotations

import csv
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Protocol, Union, runtime_checkable

import numpy as np

from ..data.names import NB201_DATASETS, TEST_SPLITS, nats_name
from ..data.names import SPLITS as _ALL_SPLITS
from ..data.names import canonical_dataset as _canonical_dataset
from ..data.names import check_split as _check_split

IndexLike = Union[int, Sequence[int], np.ndarray, slice, None]

#: Datasets with ground truth, and their splits (names and aliases: :mod:`nasbeff.data.names`).
DATASETS: tuple[str, ...] = NB201_DATASETS
SPLITS: dict[str, tuple[str, ...]] = {d: _ALL_SPLITS[d] for d in DATASETS}
HPS: tuple[str, ...] = ("200", "12")

_CSV_COLUMNS: dict[tuple[str, str, str], str] = {
    ("cifar10", "ori-test", "200"): "c10_test",
    ("cifar10", "ori-test", "12"): "c10_test_12ep",
    ("cifar10-valid", "x-valid", "200"): "c10_valid",
    ("cifar10-valid", "ori-test", "200"): "nb201v11_c10valid_test",
    ("cifar100", "x-test", "200"): "c100_test",
    ("cifar100", "x-valid", "200"): "c100_valid",
    ("cifar100", "ori-test", "200"): "c100_valtest",
    ("cifar100", "x-test", "12"): "c100_test_12ep",
    ("imagenet16-120", "x-test", "200"): "in16_test",
    ("imagenet16-120", "x-valid", "200"): "in16_valid",
    ("imagenet16-120", "ori-test", "200"): "in16_valtest",
    ("imagenet16-120", "x-test", "12"): "in16_test_12ep",
}
#: The column the papers' tables correlate against on each dataset: its 200-epoch test accuracy
#: (``cifar10-valid`` archs are judged on CIFAR-10's test set, like ``cifar10``).
TEST_COLUMNS: dict[str, str] = {ds: _CSV_COLUMNS[("cifar10" if ds == "cifar10-valid" else ds, split, "200")]
                                for ds, split in (("cifar10", "ori-test"), ("cifar10-valid", "ori-test"),
                                                  ("cifar100", "x-test"), ("imagenet16-120", "x-test"))}
_CSV_PARAMS = {"cifar10": "params_mb_c10", "cifar10-valid": "params_mb_c10",
               "cifar100": "params_mb_c100", "imagenet16-120": "params_mb_in16"}
_CSV_TIME = {"cifar10-valid": "train_time_s_c10valid", "cifar100": "train_time_s_c100",
             "imagenet16-120": "train_time_s_in16"}

GROUND_TRUTH_CSV = "nb201/nb201_ground_truth.csv"
PER_SEED_CSV = "nb201/nb201_final_acc_per_seed.csv"
CURVES_CSV = "nb201/nb201_c10valid_curves_first200archs.csv"
NATS_TSS_NAME = "NATS-tss-v1_0-3ffb9"
NATS_SSS_NAME = "NATS-sss-v1_0-50262"
#: Per NATS-Bench space: default file name, schedules (hp) and the full schedule.
NATS_SPACES: dict[str, tuple[str, tuple[str, ...], str]] = {"tss": (NATS_TSS_NAME, HPS, "200"),
                                                            "sss": (NATS_SSS_NAME, ("90", "12", "01"), "90")}


class HiddenTestAccuracyError(PermissionError):
    """Raised when a search view is asked for a test accuracy."""


# ---------------------------------------------------------------------------------------------
# Names and paths
# ---------------------------------------------------------------------------------------------

def canonical_dataset(dataset: str) -> str:
    """Map a dataset name (case-insensitive; ``ImageNet16-120``, ``c10`` etc.) to one of :data:`DATASETS`."""
    return _canonical_dataset(dataset, DATASETS)


def check_split(dataset: str, split: str) -> tuple[str, str]:
    """Validate an explicit NB201 (dataset, split) pair; returns the canonical pair or raises ValueError."""
    return _check_split(dataset, split, DATASETS)


def _check_hp(hp: str | int, allowed: tuple[str, ...] = HPS) -> str:
    h = str(hp).strip()
    h = h.zfill(2) if h.isdigit() and "01" in allowed else h
    if h not in allowed:
        raise ValueError(f"hp must be one of {allowed} (the epochs of the training schedule), got {hp!r}")
    return h


def column_dataset(name: str) -> str | None:
    """The dataset whose images a ground-truth column's accuracy (or cost) was measured on: the
    dataset of :data:`_CSV_COLUMNS` for the metric columns, else by the column's infix (``c100``:
    cifar100, ``in16``: imagenet16-120, ``c10``: cifar10-valid); None for arch-only columns."""
    for (ds, _, _), col in _CSV_COLUMNS.items():
        if col == name:
            return ds
    for infix, ds in (("c100", "cifar100"), ("in16", "imagenet16-120"), ("c10", "cifar10-valid")):
        if infix in name:
            return ds
    return None


def shared_data_dir() -> Path | None:
    """The offline data folder: ``$NASBEFF_SHARED_DATA`` if set (FileNotFoundError naming the
    variable if it is not a folder: no silent fallback), else ``../shared/data`` relative to the
    current directory or to the repository; None if neither exists."""
    env = os.environ.get("NASBEFF_SHARED_DATA", "").strip()
    if env:
        p = Path(env).expanduser()
        if not p.is_dir():
            raise FileNotFoundError(f"NASBEFF_SHARED_DATA={env} is not a folder: point it at the shared data "
                                    "folder (the one holding nb201/ and cifar10/), or unset it")
        return p
    cands = [Path.cwd().parent / "shared" / "data", Path(__file__).resolve().parents[2].parent / "shared" / "data"]
    return next((c for c in cands if (c / "nb201").is_dir() or (c / "README.md").is_file()), None)


def _resolve(path: str | os.PathLike | None, rel: str) -> Path:
    if path is not None:
        p = Path(path).expanduser()
        if p.is_dir():
            p = p / rel if (p / rel).is_file() else p / Path(rel).name
        if not p.is_file():
            raise FileNotFoundError(f"missing file {p}")
        return p
    d = shared_data_dir()
    if d is not None and os.environ.get("NASBEFF_SHARED_DATA", "").strip() and not (d / rel).is_file():
        raise FileNotFoundError(f"missing file {d / rel} (the folder comes from NASBEFF_SHARED_DATA={d})")
    if d is None or not (d / rel).is_file():
        raise FileNotFoundError(f"cannot find {rel}: pass its path, or set $NASBEFF_SHARED_DATA to the data "
                                "folder (default: ../shared/data next to the repository or the cwd)")
    return d / rel


def _read_csv(path: Path, text_cols: Sequence[str], required: Sequence[str]) -> tuple[list[str], dict[str, list[str]], np.ndarray]:
    """Read a CSV into (numeric column names, {text column: values}, float array rows x numeric cols).
    Rows must carry ``index`` = 0..N-1 (any order); they are returned sorted by it."""
    with open(path, newline="") as f:
        reader = csv.reader(f)
        try:
            header = next(reader)
        except StopIteration:
            raise ValueError(f"{path}: empty CSV file") from None
        missing = [c for c in required if c not in header]
        if missing:
            raise ValueError(f"{path}: wrong format, missing columns {missing}")
        tpos = [header.index(c) for c in text_cols if c in header]
        npos = [i for i, c in enumerate(header) if i not in tpos]
        texts: dict[str, list[str]] = {header[i]: [] for i in tpos}
        rows = []
        for lineno, row in enumerate(reader, start=2):
            if len(row) != len(header):
                raise ValueError(f"{path}:{lineno}: expected {len(header)} fields, got {len(row)}")
            for i in tpos:
                texts[header[i]].append(row[i])
            try:
                rows.append([float(row[i]) if row[i] != "" else np.nan for i in npos])
            except ValueError as exc:
                raise ValueError(f"{path}:{lineno}: non-numeric value ({exc})") from None
    names = [header[i] for i in npos]
    arr = np.array(rows, dtype=np.float64).reshape(len(rows), len(names))
    return names, texts, arr


def _as_index(index: IndexLike, n: int) -> tuple[np.ndarray | int | slice, bool]:
    """(index usable on an axis of length n, scalar?)."""
    if index is None:
        return slice(None), False
    if isinstance(index, slice):
        return index, False
    if isinstance(index, (int, np.integer)):
        i = int(index)
        if not 0 <= i < n:
            raise IndexError(f"arch index {i} out of range 0..{n - 1}")
        return i, True
    idx = np.asarray(index)
    if idx.dtype.kind not in "iu":
        raise TypeError(f"index must be int, a sequence of ints, a slice or None; got {idx.dtype}")
    if idx.size and (idx.min() < 0 or idx.max() >= n):
        raise IndexError(f"arch indices must lie in 0..{n - 1}")
    return idx, False


# ---------------------------------------------------------------------------------------------
# Protocol and search view
# ---------------------------------------------------------------------------------------------

@runtime_checkable
class BenchmarkSource(Protocol):
    """What search/evaluation code may rely on, whichever source backs it."""

    def __len__(self) -> int: ...

    def arch(self, index: int) -> str: ...

    def index_of(self, arch: str) -> int: ...

    def metric(self, dataset: str, split: str, index: IndexLike = None, hp: str | int = "200"): ...

    def params(self, dataset: str, index: IndexLike = None): ...

    def train_time(self, dataset: str, index: IndexLike = None): ...

    def without_test(self) -> "BenchmarkSource": ...


def is_test_column(name: str) -> bool:
    """True for table columns that hold (or leak) test accuracy. ``naslib_val_c10`` counts as test:
    it is most likely a cifar10-valid ori-test accuracy of one seed."""
    return "test" in name or name == "naslib_val_c10"


class SearchView:
    """A read-only view of a source for search code: test accuracies raise
    :class:`HiddenTestAccuracyError`; everything else is forwarded."""

    def __init__(self, source: BenchmarkSource) -> None:
        self._source = source

    def __len__(self) -> int:
        return len(self._source)

    def __repr__(self) -> str:
        return f"SearchView({self._source!r})"

    def arch(self, index: int) -> str:
        return self._source.arch(index)

    def index_of(self, arch: str) -> int:
        return self._source.index_of(arch)

    def metric(self, dataset: str, split: str, index: IndexLike = None, hp: str | int = "200"):
        ds, sp = check_split(dataset, split)
        if sp in TEST_SPLITS:
            raise HiddenTestAccuracyError(f"test accuracy ({ds}, {sp}) is hidden from search code; use a "
                                          "validation split ('x-valid'; for cifar10 use 'cifar10-valid')")
        return self._source.metric(ds, sp, index, hp=hp)

    def params(self, dataset: str, index: IndexLike = None):
        return self._source.params(dataset, index)

    def train_time(self, dataset: str, index: IndexLike = None):
        return self._source.train_time(dataset, index)

    def column(self, name: str, index: IndexLike = None):
        """Raw table column (CSV sources only); test columns are refused."""
        if is_test_column(name):
            raise HiddenTestAccuracyError(f"column {name!r} holds test accuracy and is hidden from search code")
        if not hasattr(self._source, "column"):
            raise AttributeError(f"{type(self._source).__name__} has no raw columns")
        return self._source.column(name, index)

    def without_test(self) -> "SearchView":
        return self


# ---------------------------------------------------------------------------------------------
# Offline CSV table
# ---------------------------------------------------------------------------------------------

class _ColumnSource:
    """Arch strings plus numeric columns held as one float64 array, read by :meth:`_read` on first
    use; accuracies, parameters and training times are columns named by the maps below."""

    _metric_columns: dict[tuple[str, str, str], str] = _CSV_COLUMNS
    _params_columns: dict[str, str] = _CSV_PARAMS
    _time_columns: dict[str, str] = _CSV_TIME
    _what = "the offline table"

    def __init__(self) -> None:
        self._arch: list[str] | None = None
        self._values: np.ndarray | None = None
        self._col: dict[str, int] = {}
        self._by_arch: dict[str, int] | None = None

    def _read(self) -> tuple[list[str], list[str], np.ndarray]:
        """(arch strings by index, column names, values of shape archs x columns)."""
        raise AttributeError(f"{type(self).__name__} defines no _read")

    def _load(self) -> None:
        if self._values is None:
            archs, names, values = self._read()
            self._arch, self._col, self._values = archs, {c: j for j, c in enumerate(names)}, values

    def __len__(self) -> int:
        self._load()
        return len(self._arch)

    @property
    def columns(self) -> tuple[str, ...]:
        """Numeric column names (``arch_str`` is served by :meth:`arch`)."""
        self._load()
        return tuple(self._col)

    def arch(self, index: int) -> str:
        """The official arch string of ``index``."""
        self._load()
        i, _ = _as_index(int(index), len(self._arch))
        return self._arch[i]

    def index_of(self, arch: str) -> int:
        """The index of an official arch string (KeyError if not in the space)."""
        self._load()
        if self._by_arch is None:
            self._by_arch = {a: i for i, a in enumerate(self._arch)}
        try:
            return self._by_arch[arch]
        except KeyError:
            raise KeyError(f"arch {arch!r} is not in {self._what}") from None

    def column(self, name: str, index: IndexLike = None):
        """Raw numeric column ``name`` (float, or a new array) for ``index`` (None: all rows)."""
        self._load()
        if name not in self._col:
            raise KeyError(f"no column {name!r} in {self._what}; columns: {', '.join(self._col)}")
        idx, scalar = _as_index(index, len(self._arch))
        out = self._values[idx, self._col[name]]
        return float(out) if scalar else np.array(out)

    def column_for(self, dataset: str, split: str, hp: str | int = "200") -> str:
        """The column holding (dataset, split, hp); ValueError if this source lacks it."""
        ds, sp = check_split(dataset, split)
        h = _check_hp(hp)
        col = self._metric_columns.get((ds, sp, h))
        if col is None:
            have = ", ".join(f"{d}/{s}/hp={x}" for d, s, x in self._metric_columns)
            raise ValueError(f"({ds}, {sp}, hp={h}) is not in {self._what}; it has: {have}")
        return col

    def metric(self, dataset: str, split: str, index: IndexLike = None, hp: str | int = "200"):
        """Accuracy in percent (seed mean) of arch ``index`` (None: all) on (dataset, split)."""
        return self.column(self.column_for(dataset, split, hp), index)

    def params(self, dataset: str, index: IndexLike = None):
        """Parameters in millions, for ``dataset``'s classifier head."""
        return self.column(self._params_columns[canonical_dataset(dataset)], index)

    def train_time(self, dataset: str, index: IndexLike = None):
        """Training time in seconds of the 200-epoch schedule (NATS ``train-all-time``)."""
        ds = canonical_dataset(dataset)
        if ds not in self._time_columns:
            raise ValueError(f"train_time for {ds!r} is not in {self._what}; it has {', '.join(self._time_columns)} "
                             "(cifar10-valid trains on 25k images)")
        return self.column(self._time_columns[ds], index)

    def without_test(self) -> SearchView:
        """A view for search code that refuses test accuracies."""
        return SearchView(self)


class NB201Table(_ColumnSource):
    """The offline ground-truth table (15,625 rows), read on first use.

    Holds only the arch strings and one float64 array of the numeric columns. ``path`` is the CSV
    (or a folder holding ``nb201/nb201_ground_truth.csv``); default: :func:`shared_data_dir`.
    ``metric('cifar10-valid', 'ori-test')`` comes from NAS-Bench-201 v1.1 (column
    ``nb201v11_c10valid_test``); all others from NATS-Bench seed means. ``hp='12'`` exists only for
    the test accuracies (``c10_test_12ep``, ``c100_test_12ep``, ``in16_test_12ep``). ``train_time``
    is not stored for ``cifar10`` (train+valid).
    """

    def __init__(self, path: str | os.PathLike | None = None) -> None:
        super().__init__()
        self.path = _resolve(path, GROUND_TRUTH_CSV)

    def __repr__(self) -> str:
        return f"NB201Table({str(self.path)!r})"

    def _read(self) -> tuple[list[str], list[str], np.ndarray]:
        names, texts, arr = _read_csv(self.path, ("arch_str", "naslib_ops"), ("index", "arch_str", "c10_test"))
        order = np.argsort(arr[:, names.index("index")], kind="stable")
        if not np.array_equal(arr[order, names.index("index")], np.arange(len(arr))):
            raise ValueError(f"{self.path}: the 'index' column must hold 0..{len(arr) - 1} exactly once each")
        return [texts["arch_str"][i] for i in order], names, np.ascontiguousarray(arr[order])


def load_ground_truth(path: str | os.PathLike | None = None) -> NB201Table:
    """The offline NB201 ground-truth table (lazy); see :class:`NB201Table`."""
    return NB201Table(path)


class PerSeedTable:
    """Per-seed final accuracies (``nb201_final_acc_per_seed.csv``): seeds 777, 888, 999, NaN where
    a seed is missing. Available: (cifar10-valid, x-valid), (cifar100, ori-test),
    (imagenet16-120, ori-test)."""

    seeds: tuple[int, ...] = (777, 888, 999)
    _PREFIX = {("cifar10-valid", "x-valid"): "c10valid_xvalid", ("cifar100", "ori-test"): "c100_oritest",
               ("imagenet16-120", "ori-test"): "in16_oritest"}

    def __init__(self, path: str | os.PathLike | None = None, *, hide_test: bool = False) -> None:
        self.path = _resolve(path, PER_SEED_CSV)
        self.hide_test = hide_test
        self._data: tuple[list[str], dict[str, int], np.ndarray] | None = None

    def _load(self) -> tuple[list[str], dict[str, int], np.ndarray]:
        if self._data is None:
            req = ["index", "arch_str"] + [f"{p}_seed{s}" for p in self._PREFIX.values() for s in self.seeds]
            names, texts, arr = _read_csv(self.path, ("arch_str",), req)
            order = np.argsort(arr[:, names.index("index")], kind="stable")
            self._data = ([texts["arch_str"][i] for i in order], {c: j for j, c in enumerate(names)}, arr[order])
        return self._data

    def __len__(self) -> int:
        return len(self._load()[0])

    def arch(self, index: int) -> str:
        archs = self._load()[0]
        return archs[_as_index(int(index), len(archs))[0]]

    def accuracies(self, dataset: str, split: str, index: IndexLike = None) -> np.ndarray:
        """Per-seed accuracies, shape (3,) for one index or (n, 3), columns = :attr:`seeds`."""
        ds, sp = check_split(dataset, split)
        prefix = self._PREFIX.get((ds, sp))
        if prefix is None:
            raise ValueError(f"per-seed values exist only for {', '.join(f'({d}, {s})' for d, s in self._PREFIX)}")
        if self.hide_test and sp in TEST_SPLITS:
            raise HiddenTestAccuracyError(f"per-seed test accuracy ({ds}, {sp}) is hidden from search code")
        archs, col, arr = self._load()
        idx, _ = _as_index(index, len(archs))
        return np.array(arr[idx][..., [col[f"{prefix}_seed{s}"] for s in self.seeds]])

    def without_test(self) -> "PerSeedTable":
        view = PerSeedTable.__new__(PerSeedTable)
        view.path, view.hide_test, view._data = self.path, True, self._load()
        return view


class LearningCurves:
    """Per-epoch cifar10-valid train and x-valid accuracy (seed mean, 200-epoch schedule, NB201 v1.1)
    for archs 0..199 (``nb201_c10valid_curves_first200archs.csv``). Epochs are 1-based."""

    def __init__(self, path: str | os.PathLike | None = None) -> None:
        self.path = _resolve(path, CURVES_CSV)
        self._arrays: dict[str, np.ndarray] | None = None

    def _load(self) -> dict[str, np.ndarray]:
        if self._arrays is not None:
            return self._arrays
        names, _, arr = _read_csv(self.path, (), ("index", "epoch", "train_acc", "valid_acc"))
        c = {n: j for j, n in enumerate(names)}
        idx, ep = arr[:, c["index"]].astype(np.int64), arr[:, c["epoch"]].astype(np.int64)
        indices, epochs = np.unique(idx), np.unique(ep)
        if len(arr) != len(indices) * len(epochs) or not np.array_equal(epochs, np.arange(1, len(epochs) + 1)):
            raise ValueError(f"{self.path}: expected one row per (index, epoch 1..E)")
        row = np.searchsorted(indices, idx)
        out = {"indices": indices, "epochs": epochs}
        for name in ("train_acc", "valid_acc"):
            a = np.full((len(indices), len(epochs)), np.nan)
            a[row, ep - 1] = arr[:, c[name]]
            out[name] = a
        self._arrays = out
        return out

    @property
    def indices(self) -> np.ndarray:
        """Arch indices that have curves (0..199)."""
        return self._load()["indices"]

    @property
    def epochs(self) -> np.ndarray:
        """Epoch numbers 1..E."""
        return self._load()["epochs"]

    def _get(self, arr_name: str, index: int | None, epoch: int | None):
        arr = self._load()[arr_name]
        if index is not None:
            pos = int(np.searchsorted(self.indices, index))
            if pos >= len(self.indices) or self.indices[pos] != index:
                raise IndexError(f"no curve for arch {index}; available: {self.indices[0]}..{self.indices[-1]}")
            arr = arr[pos]
        if epoch is None:
            return np.array(arr)
        if not 1 <= epoch <= len(self.epochs):
            raise IndexError(f"epoch must be in 1..{len(self.epochs)}, got {epoch}")
        out = arr[..., epoch - 1]
        return float(out) if np.ndim(out) == 0 else np.array(out)

    def valid(self, index: int | None = None, epoch: int | None = None):
        """x-valid accuracy: all archs (None) or one; all epochs (None) or one (1-based)."""
        return self._get("valid_acc", index, epoch)

    def train(self, index: int | None = None, epoch: int | None = None):
        """Train accuracy, addressed like :meth:`valid`."""
        return self._get("train_acc", index, epoch)


# ---------------------------------------------------------------------------------------------
# Original NAS-Bench-201 files (.pth)
# ---------------------------------------------------------------------------------------------

NB201_FILES: tuple[str, ...] = ("NAS-Bench-201-v1_0-e61699.pth", "NAS-Bench-201-v1_1-096897.pth")
_SHORT = {"cifar10": "c10", "cifar10-valid": "c10valid", "cifar100": "c100", "imagenet16-120": "in16"}
_PTH_SCHEDULES = {"full": "200", "less": "12"}  # arch2infos[i] keys -> hp


def _pth_column(ds: str, split: str, hp: str) -> str:
    """Column name of (dataset, split, hp): the offline table's where it has one, else e.g.
    ``c10valid_xvalid_12ep`` / ``c100_train_200ep``."""
    return _CSV_COLUMNS.get((ds, split, hp)) or f"{_SHORT[ds]}_{split.replace('-', '')}_{hp}ep"


class NB201File(_ColumnSource):
    """An original NAS-Bench-201 file (``NAS-Bench-201-v1_0-e61699.pth`` or
    ``NAS-Bench-201-v1_1-096897.pth``), same methods as :class:`NB201Table`.

    The file is a torch-saved pickle of ``{'meta_archs': [arch strings], 'arch2infos': {index:
    {'full': ArchResults state (200 epochs), 'less': (12 epochs)}}, 'evaluated_indexes': ...}``.
    It is read once, on first use, with ``torch.load(path, weights_only=False)``: **this executes
    the pickle, so open only files you trust**; it is done only here, only for the path given
    (torch >= 2.6 loads with ``weights_only=True`` by default, which these files do not support).
    Loading needs the memory of the whole pickle (several GB for the real files); afterwards only
    compact columns are kept: per (dataset, split, schedule) the seed-mean accuracy at the last
    epoch (named as in :class:`NB201Table` where it has the column, else
    ``c10valid_xvalid_12ep``-style), ``params_mb_*`` and the 200-epoch ``train_time_s_*`` (sum of
    the per-epoch training times, seed mean; also for ``cifar10``). Archs missing from
    ``arch2infos`` have NaN everywhere. Parsed directly (no ``nas_201_api`` needed).
    """

    _what = "this NAS-Bench-201 file"
    _time_columns = {**_CSV_TIME, "cifar10": "train_time_s_c10"}

    def __init__(self, path: str | os.PathLike) -> None:
        super().__init__()
        self.path = Path(path).expanduser()
        if not self.path.is_file():
            raise FileNotFoundError(f"NAS-Bench-201 file {self.path} does not exist")
        self._metric_columns = {}

    def __repr__(self) -> str:
        return f"NB201File({str(self.path)!r})"

    def _read(self) -> tuple[list[str], list[str], np.ndarray]:
        import torch

        try:
            data = torch.load(self.path, map_location="cpu", weights_only=False)  # trusted path only (see class doc)
        except Exception as exc:  # noqa: BLE001 - any unreadable file is one line
            raise ValueError(f"{self.path} is not a NAS-Bench-201 benchmark file (torch.load failed: "
                             f"{type(exc).__name__})") from None
        if not (isinstance(data, dict) and isinstance(data.get("meta_archs"), (list, tuple))
                and isinstance(data.get("arch2infos"), dict)):
            raise ValueError(f"{self.path} is not a NAS-Bench-201 benchmark file (expected a dict with "
                             f"'meta_archs' and 'arch2infos', got {type(data).__name__})")
        archs = [str(a) for a in data["meta_archs"]]
        cols: dict[str, dict[int, float]] = {}
        for i, info in data["arch2infos"].items():
            i = int(i)
            if not 0 <= i < len(archs) or not isinstance(info, dict):
                raise ValueError(f"{self.path} is not a NAS-Bench-201 benchmark file (bad arch2infos entry {i!r})")
            for key, hp in _PTH_SCHEDULES.items():
                if key in info:
                    for name, v in self._arch_values(info[key], hp, i).items():
                        cols.setdefault(name, {})[i] = v
        del data
        names = sorted(cols)
        values = np.full((len(archs), len(names)), np.nan)
        for j, n in enumerate(names):
            values[list(cols[n]), j] = list(cols[n].values())
        self._metric_columns = {(d, s, h): _pth_column(d, s, h) for d in DATASETS for s in SPLITS[d] for h in HPS
                                if _pth_column(d, s, h) in cols}
        return archs, names, values

    def _arch_values(self, state: dict, hp: str, index: int) -> dict[str, float]:
        """Column values of one arch and schedule from its ArchResults state dict (seed means)."""
        try:
            runs = state["all_results"]
            per: dict[str, list[float]] = {}
            for (dataset, _seed), r in runs.items():
                ds = canonical_dataset(dataset)
                last = int(r["epochs"]) - 1
                got = {_pth_column(ds, "train", hp): r["train_acc1es"][last]}
                for key, acc in r["eval_acc1es"].items():
                    split, _, epoch = key.partition("@")
                    if int(epoch) == last and split in SPLITS[ds]:
                        got[_pth_column(ds, split, hp)] = acc
                if hp == "200":
                    got[self._params_columns[ds]] = r["params"]
                    got[self._time_columns[ds]] = sum(r["train_times"][e] for e in range(last + 1))
                for k, v in got.items():
                    per.setdefault(k, []).append(float(v))
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise ValueError(f"{self.path} is not a NAS-Bench-201 benchmark file (arch {index}, schedule "
                             f"{hp} epochs: {type(exc).__name__} {exc})") from None
        return {k: float(np.mean(v)) for k, v in per.items()}

    def column_for(self, dataset: str, split: str, hp: str | int = "200") -> str:
        self._load()
        return super().column_for(dataset, split, hp)


# ---------------------------------------------------------------------------------------------
# Official NATS-Bench files through the nats_bench API
# ---------------------------------------------------------------------------------------------

def _import_nats_bench():
    try:
        import nats_bench  # noqa: PLC0415 - optional dependency
    except ImportError as exc:
        raise ImportError("reading NATS-Bench files needs the optional package 'nats_bench' "
                          "(pip install nats_bench)") from exc
    return nats_bench


class NATSBench:
    """NATS-Bench results through the official API, topology (``tss``, 15,625 archs, schedules
    ``hp`` '200'/'12') or size space (``sss``, 32,768 channel configurations like
    ``'8:16:32:64:64'``, ``hp`` '90'/'12'/'01'); same methods as :class:`NB201Table`, with ``hp``
    defaulting to the space's full schedule.

    ``path``: the fast-mode folder (e.g. ``NATS-tss-v1_0-3ffb9-simple/`` with ``meta.pickle.pbz2``
    and one ``<index>.pickle.pbz2`` per arch) or the single ``.pickle.pbz2`` file; default: that
    folder (else file) under ``$TORCH_HOME``. ``space``: ``'tss'``/``'sss'``; default: ``sss`` when
    the path's name says so, else ``tss``. Accuracies are seed means (``is_random=False``). The API
    object is created on first use.
    """

    _KEYS = {"train": "train-accuracy", "x-valid": "valid-accuracy", "x-test": "test-accuracy"}

    def __init__(self, path: str | os.PathLike | None = None, *, fast_mode: bool | None = None,
                 space: str | None = None) -> None:
        if space is None:
            space = "sss" if path is not None and "sss" in Path(path).name.lower() else "tss"
        if space not in NATS_SPACES:
            raise ValueError(f"space must be 'tss' (topology) or 'sss' (size), got {space!r}")
        self.space = space
        name, self.hps, self.full_hp = NATS_SPACES[space]
        if path is None:
            home = os.environ.get("TORCH_HOME")
            if not home:
                raise FileNotFoundError("no NATS-Bench path given and $TORCH_HOME is not set")
            cands = [Path(home) / f"{name}-simple", Path(home) / f"{name}.pickle.pbz2"]
            path = next((c for c in cands if c.exists()), None)
            if path is None:
                raise FileNotFoundError(f"no NATS-Bench {space} files under $TORCH_HOME={home} "
                                        f"(looked for {cands[0].name}/ and {cands[1].name})")
        self.path = Path(path).expanduser()
        if not self.path.exists():
            raise FileNotFoundError(f"NATS-Bench path {self.path} does not exist")
        if self.path.is_dir() and not (self.path / "meta.pickle.pbz2").is_file():
            raise FileNotFoundError(f"{self.path} is not a NATS-Bench fast-mode folder (no meta.pickle.pbz2)")
        self.fast_mode = self.path.is_dir() if fast_mode is None else fast_mode
        _import_nats_bench()
        self._api_obj = None

    def __repr__(self) -> str:
        return f"NATSBench({str(self.path)!r})"

    @property
    def api(self):
        """The underlying ``nats_bench`` API object."""
        if self._api_obj is None:
            self._api_obj = _import_nats_bench().create(str(self.path), self.space, fast_mode=self.fast_mode,
                                                        verbose=False)
        return self._api_obj

    def __len__(self) -> int:
        return len(self.api)

    def arch(self, index: int) -> str:
        _as_index(int(index), len(self))
        return self.api.arch(int(index))

    def index_of(self, arch: str) -> int:
        i = self.api.query_index_by_arch(arch)
        if i < 0:
            raise KeyError(f"arch {arch!r} is not in the NATS-Bench {self.space} space")
        return int(i)

    def _each(self, index: IndexLike, fn):
        idx, scalar = _as_index(index, len(self))
        if scalar:
            return float(fn(idx))
        all_idx = np.arange(len(self))[idx]
        return np.array([fn(int(i)) for i in all_idx], dtype=np.float64)

    def info(self, index: int, dataset: str, hp: str | int | None = None, iepoch: int | None = None) -> dict:
        """``api.get_more_info`` (seed mean) for one arch; ``dataset`` in our or NATS naming."""
        ds = nats_name(dataset)
        h = _check_hp(self.full_hp if hp is None else hp, self.hps)
        return self.api.get_more_info(int(index), ds, iepoch=iepoch, hp=h, is_random=False)

    def metric(self, dataset: str, split: str, index: IndexLike = None, hp: str | int | None = None,
               iepoch: int | None = None):
        """Accuracy in percent (seed mean) on (dataset, split); ``iepoch`` (0-based) for a
        curve point, default the last epoch. Loops over archs when ``index`` is not one int."""
        ds, sp = check_split(dataset, split)
        if sp == "ori-test":
            key = "test-accuracy" if ds in ("cifar10", "cifar10-valid") else "valtest-accuracy"
        else:
            key = self._KEYS[sp]

        def one(i: int) -> float:
            info = self.info(i, ds, hp, iepoch)
            if info.get(key) is None:
                raise ValueError(f"NATS-Bench has no {key!r} for arch {i} on ({ds}, {sp}, hp={hp})")
            return info[key]

        return self._each(index, one)

    def params(self, dataset: str, index: IndexLike = None):
        """Parameters in millions (``get_cost_info(...)['params']``)."""
        ds = nats_name(dataset)
        return self._each(index, lambda i: self.api.get_cost_info(i, ds, hp=self.full_hp)["params"])

    def train_time(self, dataset: str, index: IndexLike = None):
        """``train-all-time`` in seconds of the full schedule (tss: 200 epochs, sss: 90)."""
        return self._each(index, lambda i: self.info(i, dataset)["train-all-time"])

    def without_test(self) -> SearchView:
        """A view for search code that refuses test accuracies."""
        return SearchView(self)


def open_benchmark(path: str | os.PathLike | None = None) -> BenchmarkSource:
    """Open a ground-truth source by path: a ``.pth`` file gives :class:`NB201File` (original
    NAS-Bench-201; a trusted file, see there); a NATS-Bench fast-mode folder or ``.pickle.pbz2`` file
    gives :class:`NATSBench` (``sss`` when its name says so, else ``tss``); a CSV (or a data folder,
    or None for the default) gives :class:`NB201Table`."""
    if path is not None:
        p = Path(path).expanduser()
        if p.suffix.lower() == ".pth":
            return NB201File(p)
        if (p.is_dir() and (p / "meta.pickle.pbz2").is_file()) or p.name.endswith(".pickle.pbz2"):
            return NATSBench(p)
    return NB201Table(path)
