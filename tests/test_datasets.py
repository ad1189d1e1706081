"""The one vocabulary of dataset and split names (nasbeff.data.names) and its error paths."""

from __future__ import annotations

import numpy as np
import pytest

from nasbeff.data import loaders as data
from nasbeff.tables import ground_truth as benchmarks
from nasbeff.data.names import (DATASET_ALIASES, DATASETS, NB201_DATASETS, NORMALIZATION, SPLIT_SIZES, SPLITS,
                              canonical_dataset, canonical_split, check_split, check_subset_size, dataset_stats,
                              nats_name, split_size)


@pytest.mark.parametrize("alias,name", [
    ("cifar10", "cifar10"), ("CIFAR-10", "cifar10"), ("c10", "cifar10"), (" Cifar_10 ", "cifar10"),
    ("cifar10-valid", "cifar10-valid"), ("cifar10_valid", "cifar10-valid"), ("cifar10valid", "cifar10-valid"),
    ("C10-valid", "cifar10-valid"), ("cifar-10-valid", "cifar10-valid"),
    ("cifar100", "cifar100"), ("c100", "cifar100"), ("CIFAR_100", "cifar100"),
    ("ImageNet16-120", "imagenet16-120"), ("imagenet16_120", "imagenet16-120"), ("in16", "imagenet16-120"),
    ("ImageNet16", "imagenet16-120"), ("digits", "digits"),
])
def test_dataset_aliases(alias, name):
    assert canonical_dataset(alias) == name
    assert data.canonical_name(alias) == name
    if name != "digits":
        assert benchmarks.canonical_dataset(alias) == name


@pytest.mark.parametrize("dataset,split,canon", [
    ("cifar10", "train", "train"), ("cifar10", "ori-test", "ori-test"), ("cifar10", "test", "ori-test"),
    ("cifar10", "ORI_TEST", "ori-test"), ("cifar10", "oritest", "ori-test"),
    ("cifar10-valid", "xvalid", "x-valid"), ("cifar10-valid", "X_VALID", "x-valid"),
    ("cifar100", "xtest", "x-test"), ("imagenet16-120", "x-valid", "x-valid"),
    ("digits", "val", "valid"), ("digits", "validation", "valid"),
])
def test_split_aliases(dataset, split, canon):
    assert canonical_split(dataset, split) == canon
    assert check_split(dataset, split) == (canonical_dataset(dataset), canon)


def test_tables_are_consistent():
    assert DATASETS == ("cifar10", "cifar10-valid", "cifar100", "imagenet16-120", "digits")
    assert set(NB201_DATASETS) == set(DATASETS) - {"digits"}
    assert set(NORMALIZATION) == set(DATASETS) == set(SPLITS)
    assert set(DATASET_ALIASES.values()) <= set(DATASETS)
    assert all(a == a.lower() and "_" not in a for a in DATASET_ALIASES)
    assert SPLITS["cifar10"] == ("train", "ori-test")
    assert SPLITS["cifar10-valid"] == ("train", "x-valid", "ori-test")
    assert benchmarks.SPLITS == {d: SPLITS[d] for d in NB201_DATASETS}
    assert data.DATASET_SPLITS is SPLITS and data.NORMALIZATION is NORMALIZATION
    assert dataset_stats("c10_valid") == NORMALIZATION["cifar10"]
    assert len(dataset_stats("digits")[0]) == 1
    assert nats_name("in16") == "ImageNet16-120" and nats_name("c10") == "cifar10"


@pytest.mark.parametrize("dataset,split,n", [
    ("cifar10", "train", 50_000), ("cifar10", "test", 10_000), ("cifar10-valid", "train", 25_000),
    ("cifar10-valid", "x-valid", 25_000), ("cifar10-valid", "ori-test", 10_000), ("cifar100", "x-valid", 5_000),
    ("cifar100", "ori-test", 10_000), ("imagenet16-120", "train", 151_700), ("imagenet16-120", "x-test", 3_000),
    ("ImageNet16-120", "ori-test", 6_000), ("digits", "train", 1_347), ("digits", "valid", 450),
])
def test_split_sizes(dataset, split, n):
    assert split_size(dataset, split) == n
    assert check_subset_size(dataset, split, n) == n
    assert check_subset_size(dataset, split, 1) == 1


def test_split_sizes_match_the_data():
    tr, va = data.load_digits()
    assert (len(tr), len(va)) == (split_size("digits", "train"), split_size("digits", "valid"))
    for ds in ("cifar100", "imagenet16-120"):
        sizes = SPLIT_SIZES[ds]
        assert sizes["x-valid"] + sizes["x-test"] == sizes["ori-test"]
    assert SPLIT_SIZES["cifar10-valid"]["train"] + SPLIT_SIZES["cifar10-valid"]["x-valid"] == 50_000


# ------------------------------------------------------------------------------------- doors

def test_subset_size_above_the_split():
    with pytest.raises(ValueError) as err:
        check_subset_size("cifar10-valid", "train", 30_000, "--train-size")
    msg = str(err.value)
    assert msg.startswith("--train-size 30000 is not in 1..25,000: split 'train' of 'cifar10-valid' holds 25,000")
    assert "'cifar10' trains on all 50,000" in msg and "\n" not in msg
    with pytest.raises(ValueError, match=r"x-valid' of 'cifar100' holds 5,000 images$"):
        check_subset_size("cifar100", "x-valid", 5_001)
    with pytest.raises(ValueError, match=r"size 1348 is not in 1\.\.1,347"):
        check_subset_size("digits", "train", 1_348)
    for bad in (0, -5, 2.5, True, "100"):
        with pytest.raises(ValueError, match="not in 1"):
            check_subset_size("cifar10", "train", bad)
    with pytest.raises(ValueError, match="cifar10-valid"):  # names are checked first
        check_subset_size("cifar10", "x-valid", 100)


@pytest.mark.parametrize("dataset,split,message", [
    ("cifar10", "x-valid", "bad split 'x-valid' for dataset 'cifar10': NB201's 'cifar10' is trained on "
                           "train+valid (all 50k images), so it has no validation split; validation accuracy "
                           "is dataset 'cifar10-valid', split 'x-valid'"),
    ("cifar10", "val", "bad split 'val' for dataset 'cifar10': NB201's 'cifar10' is trained on train+valid"),
    ("cifar10", "x_test", "bad split 'x_test' for dataset 'cifar10': cifar10 has no x-test; its test set is "
                          "'ori-test'"),
    ("cifar10-valid", "test", "bad split 'test' for dataset 'cifar10-valid': ambiguous for cifar10-valid: "
                              "'x-valid' (held-out 25k half of the train set"),
    ("cifar10-valid", "valid", "say 'x-valid'"),
    ("cifar10-valid", "x-test", "its test set is 'ori-test' (not x-valid, which is half of the train set)"),
    ("cifar100", "test", "ambiguous: 'x-test' (test half of the official test set"),
    ("imagenet16-120", "valid", "say 'x-valid' (the validation half of imagenet16-120's official test set)"),
    ("digits", "test", "digits has only 'train' and 'valid'"),
    ("cifar100", "nonsense", "bad split 'nonsense' for dataset 'cifar100'. Valid splits for 'cifar100': "
                             "train, x-valid, x-test, ori-test"),
])
def test_bad_splits_explained(dataset, split, message):
    for check in (check_split, canonical_split, data.check_split, split_size):
        with pytest.raises(ValueError) as err:
            check(dataset, split)
        assert str(err.value).startswith(f"bad split {split!r} for dataset ")
        assert message in str(err.value) and "\n" not in str(err.value)
        assert f"Valid splits for {canonical_dataset(dataset)!r}: {', '.join(SPLITS[canonical_dataset(dataset)])}" \
            in str(err.value)


def test_unknown_dataset():
    with pytest.raises(ValueError) as err:
        canonical_dataset("mnist")
    assert str(err.value) == ("unknown dataset 'mnist'; valid names: cifar10, cifar10-valid, cifar100, "
                              "imagenet16-120, digits")
    with pytest.raises(ValueError, match=r"unknown dataset 'cifar10-vaild' \(did you mean 'cifar10-valid'\?\)"):
        check_split("cifar10-vaild", "train")
    with pytest.raises(ValueError, match=r"did you mean 'imagenet16-120'"):
        data.load_dataset("imagenet-16", None, "train")
    with pytest.raises(ValueError, match="unknown dataset"):
        split_size("svhn", "train")
    with pytest.raises(ValueError, match="^dataset 'digits' is not available here; valid names: cifar10, "
                                         "cifar10-valid, cifar100, imagenet16-120$"):
        benchmarks.check_split("digits", "train")
    with pytest.raises(ValueError, match="not available here"):
        nats_name("digits")
    with pytest.raises(ValueError, match="unknown dataset"):
        dataset_stats(None)


def test_one_vocabulary_for_images_and_benchmarks():
    """Every spelling means the same in data.py and benchmarks.py (they disagreed before issue 9)."""
    spellings = ["train", "test", "ori-test", "ori_test", "x-valid", "xvalid", "X-TEST", "valid", "val", "bogus"]
    for ds in NB201_DATASETS:
        for sp in spellings:
            try:
                want = ("ok", check_split(ds, sp))
            except ValueError as exc:
                want = ("error", str(exc))
            try:
                got_b = ("ok", benchmarks.check_split(ds, sp))
            except ValueError as exc:
                got_b = ("error", str(exc))
            try:
                got_d = ("ok", (canonical_dataset(ds), data.check_split(ds, sp)))
            except ValueError as exc:
                got_d = ("error", str(exc))
            assert got_b == want and got_d == want, (ds, sp)
    assert np.array_equal(np.asarray(data.DATASET_NAMES), np.asarray(DATASETS))
