"""The one vocabulary of dataset names, split names, aliases and split sizes (NB201 naming).

=================  ===========================================================================
dataset            splits (images)
=================  ===========================================================================
``cifar10``        ``train`` (50,000: NB201 trains this setting on train+valid), ``ori-test``
                   (10,000). No validation split.
``cifar10-valid``  ``train`` (25,000: half of CIFAR-10's train set), ``x-valid`` (the other
                   25,000), ``ori-test`` (the official 10,000 test images)
``cifar100``       ``train`` (50,000), ``ori-test`` (10,000) and its halves ``x-valid`` /
                   ``x-test`` (5,000 each; x-test is the accuracy NB201 papers report)
``imagenet16-120`` ``train`` (151,700), ``ori-test`` (6,000), ``x-valid`` / ``x-test`` (3,000 each)
``digits``         scikit-learn's 8x8 digits, shipped with the package: ``train`` (1,347),
                   ``valid`` (450)
=================  ===========================================================================

Names are case-insensitive, ``_`` counts as ``-``, and the aliases in :data:`DATASET_ALIASES` /
:data:`SPLIT_ALIASES` (e.g. ``c10``, ``cifar10_valid``, ``ImageNet16-120``, ``xvalid``, ``val``)
map to these canonical names. ``test`` is accepted for ``cifar10`` only, where it is unambiguous
(``ori-test``). Both :mod:`nasbeff.data.loaders` (images) and :mod:`nasbeff.tables.ground_truth` (ground truth)
validate names here.
"""

from __future__ import annotations

import difflib
import numbers
from collections.abc import Sequence

#: Images per split for every dataset; the keys give the valid split names, in order.
SPLIT_SIZES: dict[str, dict[str, int]] = {
    "cifar10": {"train": 50_000, "ori-test": 10_000},
    "cifar10-valid": {"train": 25_000, "x-valid": 25_000, "ori-test": 10_000},
    "cifar100": {"train": 50_000, "x-valid": 5_000, "x-test": 5_000, "ori-test": 10_000},
    "imagenet16-120": {"train": 151_700, "x-valid": 3_000, "x-test": 3_000, "ori-test": 6_000},
    "digits": {"train": 1_347, "valid": 450},
}

#: Canonical dataset names.
DATASETS: tuple[str, ...] = tuple(SPLIT_SIZES)
#: Datasets that NAS-Bench-201 / NATS-Bench have results for.
NB201_DATASETS: tuple[str, ...] = ("cifar10", "cifar10-valid", "cifar100", "imagenet16-120")
#: Valid split names per dataset.
SPLITS: dict[str, tuple[str, ...]] = {d: tuple(s) for d, s in SPLIT_SIZES.items()}
#: Splits that are test accuracies (hidden from search code).
TEST_SPLITS: frozenset[str] = frozenset({"ori-test", "x-test"})

#: Dataset aliases (after lower-casing and ``_`` -> ``-``) -> canonical name.
DATASET_ALIASES: dict[str, str] = {
    "cifar-10": "cifar10", "c10": "cifar10",
    "cifar10valid": "cifar10-valid", "cifar-10-valid": "cifar10-valid", "c10valid": "cifar10-valid",
    "c10-valid": "cifar10-valid",
    "cifar-100": "cifar100", "c100": "cifar100",
    "imagenet16": "imagenet16-120", "imagenet-16-120": "imagenet16-120", "imagenet16120": "imagenet16-120",
    "in16": "imagenet16-120", "in16-120": "imagenet16-120",
    "sklearn-digits": "digits",
}
#: Split aliases valid for every dataset -> canonical split.
SPLIT_ALIASES: dict[str, str] = {"xvalid": "x-valid", "xtest": "x-test", "oritest": "ori-test",
                                 "val": "valid", "validation": "valid"}
#: Split aliases valid for one dataset only, where they are unambiguous.
_DATASET_SPLIT_ALIASES: dict[tuple[str, str], str] = {("cifar10", "test"): "ori-test"}

#: Classes of each dataset: the output width of a network's head trained on it.
NUM_CLASSES: dict[str, int] = {"cifar10": 10, "cifar10-valid": 10, "cifar100": 100, "imagenet16-120": 120,
                               "digits": 10}

#: Dataset names as the official ``nats_bench`` API spells them.
NATS_NAMES: dict[str, str] = {"cifar10": "cifar10", "cifar10-valid": "cifar10-valid", "cifar100": "cifar100",
                              "imagenet16-120": "ImageNet16-120"}

#: Per-channel (mean, std) in [0, 1] units. CIFAR and ImageNet16 values are the ones NAS-Bench-201
#: trains with; digits values are computed from the embedded data set.
NORMALIZATION: dict[str, tuple[tuple[float, ...], tuple[float, ...]]] = {
    "cifar10": (tuple(v / 255 for v in (125.3, 123.0, 113.9)), tuple(v / 255 for v in (63.0, 62.1, 66.7))),
    "cifar100": (tuple(v / 255 for v in (129.3, 124.1, 112.4)), tuple(v / 255 for v in (68.2, 65.4, 70.4))),
    "imagenet16-120": (tuple(v / 255 for v in (122.68, 116.66, 104.01)),
                       tuple(v / 255 for v in (63.22, 61.26, 65.09))),
    "digits": ((0.3061,), (0.3769,)),
}
NORMALIZATION["cifar10-valid"] = NORMALIZATION["cifar10"]

_NO_VALID = ("NB201's 'cifar10' is trained on train+valid (all 50k images), so it has no validation split; "
             "validation accuracy is dataset 'cifar10-valid', split 'x-valid' (held-out 25k half of train)")
_SPLIT_HINTS: dict[tuple[str, str], str] = {
    ("cifar10", "x-valid"): _NO_VALID,
    ("cifar10", "valid"): _NO_VALID,
    ("cifar10", "x-test"): "cifar10 has no x-test; its test set is 'ori-test' (the official 10k test images)",
    ("cifar10-valid", "test"): "ambiguous for cifar10-valid: 'x-valid' (held-out 25k half of the train set, "
                               "NB201's validation accuracy) or 'ori-test' (the official 10k test set)",
    ("cifar10-valid", "valid"): "say 'x-valid' (the held-out 25k half of the train set)",
    ("cifar10-valid", "x-test"): "cifar10-valid has no x-test; its test set is 'ori-test' (not x-valid, which is "
                                 "half of the train set)",
    ("digits", "test"): "digits has only 'train' and 'valid' (a seeded stratified split)",
}
for _ds in ("cifar100", "imagenet16-120"):
    _SPLIT_HINTS[(_ds, "test")] = ("ambiguous: 'x-test' (test half of the official test set, the accuracy NB201 "
                                   "papers report) or 'ori-test' (the full test set = x-valid + x-test)")
    _SPLIT_HINTS[(_ds, "valid")] = f"say 'x-valid' (the validation half of {_ds}'s official test set)"
_SUBSET_HINTS: dict[tuple[str, str], str] = {
    ("cifar10-valid", "train"): "cifar10-valid trains on half of CIFAR-10's train set (the other half is "
                                "x-valid); dataset 'cifar10' trains on all 50,000",
}


def _key(name: object) -> str:
    return str(name).strip().lower().replace("_", "-")


def canonical_dataset(name: str, among: Sequence[str] = DATASETS) -> str:
    """The canonical name of dataset ``name`` (case-insensitive, aliases allowed); ValueError unless
    it is one of ``among``."""
    key = _key(name)
    key = DATASET_ALIASES.get(key, key)
    if key in among:
        return key
    if key in DATASETS:
        raise ValueError(f"dataset {key!r} is not available here; valid names: {', '.join(among)}")
    close = difflib.get_close_matches(key, [*among, *(a for a, d in DATASET_ALIASES.items() if d in among)], n=1)
    guess = f" (did you mean {DATASET_ALIASES.get(close[0], close[0])!r}?)" if close else ""
    raise ValueError(f"unknown dataset {name!r}{guess}; valid names: {', '.join(among)}")


def _split_error(dataset: str, split: str, given: str) -> str:
    msg = f"bad split {given!r} for dataset {dataset!r}"
    hint = _SPLIT_HINTS.get((dataset, split))
    if hint:
        msg += f": {hint}"
    return f"{msg}. Valid splits for {dataset!r}: {', '.join(SPLITS[dataset])}"


def check_split(dataset: str, split: str, among: Sequence[str] = DATASETS) -> tuple[str, str]:
    """Validate a (dataset, split) pair; return the canonical pair or raise ValueError explaining
    the mistake (e.g. ``x-valid`` of ``cifar10``, which only ``cifar10-valid`` has)."""
    ds = canonical_dataset(dataset, among)
    key = _key(split)
    key = _DATASET_SPLIT_ALIASES.get((ds, key), SPLIT_ALIASES.get(key, key))
    if key not in SPLITS[ds]:
        raise ValueError(_split_error(ds, key, split))
    return ds, key


def canonical_split(dataset: str, split: str) -> str:
    """The canonical name of ``split`` for ``dataset``; see :func:`check_split`."""
    return check_split(dataset, split)[1]


def split_size(dataset: str, split: str) -> int:
    """Images in ``split`` of ``dataset`` (the standard files; NB201's split sizes)."""
    ds, sp = check_split(dataset, split)
    return SPLIT_SIZES[ds][sp]


def check_subset_size(dataset: str, split: str, size: int, what: str = "subset size") -> int:
    """Return ``size`` if a subset of that many images fits in ``split`` of ``dataset``; else raise a
    one-line ValueError naming ``what`` (e.g. ``"--train-size"``). Needs no data: sizes are known."""
    ds, sp = check_split(dataset, split)
    n = SPLIT_SIZES[ds][sp]
    if isinstance(size, bool) or not isinstance(size, numbers.Integral) or not 1 <= size <= n:
        hint = _SUBSET_HINTS.get((ds, sp))
        raise ValueError(f"{what} {size!r} is not in 1..{n:,}: split {sp!r} of {ds!r} holds {n:,} images"
                         + (f" ({hint})" if hint else ""))
    return int(size)


def dataset_stats(name: str) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Per-channel (mean, std) in [0, 1] units used to normalise ``name``."""
    return NORMALIZATION[canonical_dataset(name)]


def nats_name(dataset: str) -> str:
    """``dataset`` as the ``nats_bench`` API spells it (e.g. ``ImageNet16-120``)."""
    return NATS_NAMES[canonical_dataset(dataset, NB201_DATASETS)]
