"""Dataset readers, splits, cache and on-device batch iterators (synthetic files + the real tar)."""

from __future__ import annotations

import json
import os
import pickle
import shutil
import tarfile
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from nasbeff.data import loaders as D
from nasbeff.data.loaders import (CIFAR10_CLASSES, DataFormatError, ImageSet, eval_batches, load_dataset,
                          read_cifar10_batches, read_cifar100, read_image_tree, read_imagenet16,
                          stratified_subset, to_tensor, train_batches)

RNG = np.random.default_rng(1234)


def _chw_rows(n: int, side: int) -> np.ndarray:
    return RNG.integers(0, 256, size=(n, 3 * side * side), dtype=np.uint8)


def _expected_hwc(rows: np.ndarray, side: int) -> np.ndarray:
    """Independent CHW -> HWC conversion: pixel (y, x, c) is row[c*side*side + y*side + x]."""
    n = len(rows)
    out = np.empty((n, side, side, 3), np.uint8)
    for c in range(3):
        for y in range(side):
            out[:, y, :, c] = rows[:, c * side * side + y * side: c * side * side + (y + 1) * side]
    return out


def _dump(path: Path, obj) -> None:
    path.write_bytes(pickle.dumps(obj, protocol=2))


def write_cifar10(folder: Path, per_batch: int = 6) -> dict[str, tuple[np.ndarray, list[int]]]:
    folder.mkdir(parents=True, exist_ok=True)
    files = {}
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        rows = _chw_rows(per_batch, 32)
        labels = [int(v) for v in RNG.integers(0, 10, per_batch)]
        _dump(folder / name, {b"batch_label": name.encode(), b"labels": labels, b"data": rows,
                              b"filenames": [b"x.png"] * per_batch})
        files[name] = (rows, labels)
    _dump(folder / "batches.meta", {b"label_names": [c.encode() for c in CIFAR10_CLASSES],
                                    b"num_cases_per_batch": per_batch, b"num_vis": 3072})
    return files


@pytest.fixture()
def cifar10_dir(tmp_path):
    folder = tmp_path / "cifar-10-batches-py"
    return folder, write_cifar10(folder)


# ------------------------------------------------------------------------------------- readers

def test_cifar10_batches_roundtrip(cifar10_dir):
    folder, files = cifar10_dir
    sets = read_cifar10_batches(folder)
    rows = np.concatenate([files[f"data_batch_{i}"][0] for i in range(1, 6)])
    labels = sum((files[f"data_batch_{i}"][1] for i in range(1, 6)), [])
    assert sets["train"].images.shape == (30, 32, 32, 3)
    np.testing.assert_array_equal(sets["train"].images, _expected_hwc(rows, 32))
    np.testing.assert_array_equal(sets["train"].labels, labels)
    np.testing.assert_array_equal(sets["test"].images, _expected_hwc(files["test_batch"][0], 32))
    assert sets["train"].classes == CIFAR10_CLASSES
    # pixel (y=1, x=2, c=1) of image 0 is element 1*1024 + 1*32 + 2 of its row
    assert sets["train"].images[0, 1, 2, 1] == rows[0, 1024 + 32 + 2]
    # parent folder works too, and so does the cifar10-valid alias
    assert len(load_dataset("cifar10", folder.parent, "train")) == 30
    assert len(load_dataset("cifar10", folder, "ori-test")) == 6


def test_cifar100_fine_labels(tmp_path):
    folder = tmp_path / "cifar-100-python"
    folder.mkdir()
    tr, te = _chw_rows(8, 32), _chw_rows(4, 32)
    fine_tr, fine_te = [99, 0, 5, 50, 7, 3, 2, 1], [10, 20, 30, 99]
    _dump(folder / "train", {b"data": tr, b"fine_labels": fine_tr, b"coarse_labels": [1] * 8})
    _dump(folder / "test", {b"data": te, b"fine_labels": fine_te, b"coarse_labels": [2] * 4})
    _dump(folder / "meta", {b"fine_label_names": [f"c{i}".encode() for i in range(100)],
                            b"coarse_label_names": [b"x"] * 20})
    sets = read_cifar100(folder)
    np.testing.assert_array_equal(sets["train"].images, _expected_hwc(tr, 32))
    np.testing.assert_array_equal(sets["train"].labels, fine_tr)
    np.testing.assert_array_equal(sets["test"].labels, fine_te)
    assert sets["train"].classes[99] == "c99" and sets["train"].num_classes == 100
    assert len(load_dataset("cifar100", tmp_path, "ori-test")) == 4


def write_imagenet16(folder: Path) -> tuple[list, dict]:
    folder.mkdir(parents=True, exist_ok=True)
    batches = []
    for i in range(1, 11):
        rows = _chw_rows(5, 16)
        labels = [int(v) for v in RNG.choice([1, 2, 120, 121, 500, 1000], 5)]
        _dump(folder / f"train_data_batch_{i}", {"data": rows, "labels": labels, "mean": np.zeros(768)})
        batches.append((rows, labels))
    val = (_chw_rows(6, 16), [1, 121, 120, 60, 1000, 2])
    _dump(folder / "val_data", {"data": val[0], "labels": val[1]})
    return batches, {"val": val}


def test_imagenet16_keeps_120_and_shifts(tmp_path):
    batches, extra = write_imagenet16(tmp_path / "ImageNet16")
    sets = read_imagenet16(tmp_path / "ImageNet16")
    rows = np.concatenate([b[0] for b in batches])
    labels = np.concatenate([b[1] for b in batches])
    keep = labels <= 120
    np.testing.assert_array_equal(sets["train"].images, _expected_hwc(rows[keep], 16))
    np.testing.assert_array_equal(sets["train"].labels, labels[keep] - 1)
    vrows, vlab = extra["val"]
    np.testing.assert_array_equal(sets["test"].labels, [0, 119, 59, 1])
    np.testing.assert_array_equal(sets["test"].images, _expected_hwc(vrows[[0, 2, 3, 5]], 16))
    assert sets["test"].num_classes == 120 and sets["test"].images.shape[1:] == (16, 16, 3)
    xv, xt, ori = load_dataset("ImageNet16-120", tmp_path, ("x-valid", "x-test", "ori-test"))
    assert len(xv) + len(xt) == len(ori) == 4


def _write_tree(root: Path) -> dict[tuple[str, str], list[np.ndarray]]:
    """PNG (lossless) tree with names whose numeric order differs from their string order."""
    out = {}
    for split in ("train", "test"):
        for cls in ("truck", "airplane", "cat"):
            d = root / split / cls
            d.mkdir(parents=True)
            imgs = []
            for name in ("2.png", "10.png", "1.png"):
                a = RNG.integers(0, 256, (32, 32, 3), dtype=np.uint8)
                Image.fromarray(a).save(d / name)
                imgs.append((int(name[:-4]), a))
            out[(split, cls)] = [a for _, a in sorted(imgs, key=lambda t: t[0])]
    (root / "README.txt").write_text("ignored")
    return out


def _check_tree(sets, expected):
    assert set(sets) == {"train", "test"}
    for split in ("train", "test"):
        s = sets[split]
        assert s.classes == CIFAR10_CLASSES
        # class order = CIFAR-10 order (airplane 0, cat 3, truck 9), within class by number 1, 2, 10
        np.testing.assert_array_equal(s.labels, [0] * 3 + [3] * 3 + [9] * 3)
        want = np.stack(expected[(split, "airplane")] + expected[(split, "cat")] + expected[(split, "truck")])
        np.testing.assert_array_equal(s.images, want)


def test_image_tree_folder_and_tar(tmp_path):
    expected = _write_tree(tmp_path / "tree")
    _check_tree(read_image_tree(tmp_path / "tree", CIFAR10_CLASSES), expected)
    tar_path = tmp_path / "tree.tar.gz"
    with tarfile.open(tar_path, "w:gz") as tf:
        tf.add(tmp_path / "tree", arcname="cifar10_png")  # with a top-level prefix
    _check_tree(read_image_tree(tar_path, CIFAR10_CLASSES), expected)
    _check_tree({s: load_dataset("cifar10", tar_path, s) for s in ("train", "test")}, expected)
    _check_tree({s: load_dataset("cifar10", tmp_path / "tree", s) for s in ("train", "test")}, expected)


def test_tar_of_python_batches(tmp_path):
    folder = tmp_path / "cifar-10-batches-py"
    files = write_cifar10(folder, per_batch=2)
    tar_path = tmp_path / "cifar-10-python.tar.gz"
    with tarfile.open(tar_path, "w:gz") as tf:
        tf.add(folder, arcname="cifar-10-batches-py")
    te = load_dataset("cifar10", tar_path, "test")
    np.testing.assert_array_equal(te.images, _expected_hwc(files["test_batch"][0], 32))


# ------------------------------------------------------------------------------------- splits

def test_cifar10_valid_halves_and_split_file(cifar10_dir, tmp_path):
    folder, _ = cifar10_dir
    full = load_dataset("cifar10", folder, "train")
    tr, va = load_dataset("cifar10-valid", folder, ("train", "x-valid"), seed=3)
    assert len(tr) + len(va) == len(full)
    rows = {a.tobytes() for a in full.images}
    assert {a.tobytes() for a in tr.images} | {a.tobytes() for a in va.images} == rows
    tr2 = load_dataset("cifar10-valid", folder, "train", seed=3)
    np.testing.assert_array_equal(tr.images, tr2.images)
    ori = load_dataset("cifar10-valid", folder, "ori-test")
    assert len(ori) == 6
    sf = tmp_path / "cifar-split.txt"
    sf.write_text(json.dumps({"train": ["int", list(range(0, 30, 2))], "valid": ["int", list(range(1, 30, 2))]}))
    va_f = load_dataset("cifar10-valid", folder, "x-valid", split_file=sf)
    np.testing.assert_array_equal(va_f.images, full.images[1::2])


def test_x_valid_x_test_halves(tmp_path):
    folder = tmp_path / "c100"
    folder.mkdir()
    te_rows = _chw_rows(40, 32)
    te_lab = [i % 4 for i in range(40)]
    _dump(folder / "train", {b"data": _chw_rows(4, 32), b"fine_labels": [0, 1, 2, 3]})
    _dump(folder / "test", {b"data": te_rows, b"fine_labels": te_lab})
    xv, xt, ori = load_dataset("cifar100", folder, ["x-valid", "x-test", "ori-test"])
    assert len(xv) == len(xt) == 20 and len(ori) == 40
    assert np.bincount(xv.labels).tolist() == [5, 5, 5, 5]
    assert {a.tobytes() for a in xv.images}.isdisjoint({a.tobytes() for a in xt.images})
    other = load_dataset("cifar100", folder, "x-valid", seed=1)
    assert not np.array_equal(other.images, xv.images)
    sf = tmp_path / "cifar100-test-split.txt"
    sf.write_text(json.dumps({"xvalid": list(range(10)), "xtest": list(range(10, 40))}))
    xv_f, xt_f = load_dataset("cifar100", folder, ("x-valid", "x-test"), split_file=sf)
    assert len(xv_f) == 10 and len(xt_f) == 30
    sf.write_text(json.dumps({"xvalid": [0, 1], "xtest": [1, 2]}))
    with pytest.raises(DataFormatError, match="overlap"):
        load_dataset("cifar100", folder, "x-valid", split_file=sf)


def test_stratified_subset_and_digits():
    labels = np.repeat(np.arange(10), 100)
    ds = ImageSet(RNG.integers(0, 256, (1000, 4, 4, 3), dtype=np.uint8), labels, tuple("abcdefghij"))
    sub = stratified_subset(ds, 50, seed=7)
    assert len(sub) == 50 and np.bincount(sub.labels).tolist() == [5] * 10
    np.testing.assert_array_equal(stratified_subset(ds, 50, seed=7).images, sub.images)
    assert not np.array_equal(stratified_subset(ds, 50, seed=8).images, sub.images)
    assert stratified_subset(ds, 1000) is ds
    with pytest.raises(ValueError, match="size"):
        stratified_subset(ds, 0)
    tr, va = load_dataset("digits", None, ("train", "valid"))
    tr0, va0 = D.load_digits()
    np.testing.assert_array_equal(tr.images, tr0.images)
    assert len(tr) + len(va) == 1797


# ------------------------------------------------------------------------------------- errors

@pytest.mark.parametrize("name,split,needle", [
    ("cifar10-valid", "test", "ambiguous"),
    ("cifar10", "x-valid", "cifar10-valid"),
    ("cifar10", "valid", "cifar10-valid"),
    ("cifar100", "test", "ambiguous"),
    ("imagenet16-120", "valid", "x-valid"),
    ("cifar10", "bogus", "Valid splits"),
    ("digits", "test", "train"),
])
def test_bad_split_names(name, split, needle, tmp_path):
    with pytest.raises(ValueError, match=needle):
        load_dataset(name, tmp_path, split)  # checked before any file is touched


def test_error_paths(tmp_path, cifar10_dir):
    with pytest.raises(ValueError, match="unknown dataset"):
        load_dataset("mnist", tmp_path, "train")
    with pytest.raises(FileNotFoundError, match="does not exist"):
        load_dataset("cifar10", tmp_path / "nope", "train")
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(FileNotFoundError, match="cifar-10-batches-py"):
        load_dataset("cifar10", empty, "train")
    with pytest.raises(FileNotFoundError, match="val_data"):
        load_dataset("imagenet16-120", empty, "train")
    with pytest.raises(ValueError, match="root"):
        load_dataset("cifar100", None, "train")
    folder, _ = cifar10_dir
    os.remove(folder / "data_batch_3")
    with pytest.raises(FileNotFoundError, match="data_batch_3"):
        read_cifar10_batches(folder)
    (folder / "data_batch_3").write_bytes(b"not a pickle")
    with pytest.raises(DataFormatError, match="data_batch_3"):
        read_cifar10_batches(folder)
    _dump(folder / "data_batch_3", {b"data": np.zeros((2, 100), np.uint8), b"labels": [0, 1]})
    with pytest.raises(DataFormatError, match="3072"):
        read_cifar10_batches(folder)
    bad = tmp_path / "bad.tar"
    bad.write_bytes(b"nope" * 100)
    with pytest.raises(DataFormatError, match="tar"):
        load_dataset("cifar10", bad, "train")
    d = tmp_path / "tree" / "train" / "horse_and_cart"
    d.mkdir(parents=True)
    Image.fromarray(np.zeros((32, 32, 3), np.uint8)).save(d / "0.png")
    with pytest.raises(DataFormatError, match="horse_and_cart"):
        load_dataset("cifar10", tmp_path / "tree", "train")


# ------------------------------------------------------------------------------------- cache

@pytest.fixture()
def decode_calls(monkeypatch) -> list[str]:
    """The source kinds decoded from now on (a cache hit decodes nothing)."""
    calls: list[str] = []
    real = D._decode_source

    def spy(kind, path):
        calls.append(kind)
        return real(kind, path)

    monkeypatch.setattr(D, "_decode_source", spy)
    return calls


def test_cache_keyed_by_content(cifar10_dir, tmp_path, decode_calls):
    folder, _ = cifar10_dir
    cache = tmp_path / "cache"
    first = load_dataset("cifar10", folder, "train", cache_dir=cache)
    entries = list(cache.glob("cifar10_*.npz"))
    assert len(entries) == 1 and decode_calls == ["cifar10-batches"]
    again = load_dataset("cifar10-valid", folder, "ori-test", cache_dir=cache)  # shares the cifar10 entry
    second = load_dataset("cifar10", folder, "train", cache_dir=cache)
    assert decode_calls == ["cifar10-batches"]
    np.testing.assert_array_equal(second.images, first.images)
    np.testing.assert_array_equal(second.labels, first.labels)
    assert second.classes == first.classes and len(again) == 6
    copy = tmp_path / "elsewhere" / "cifar-10-batches-py"  # same bytes at another path: same entry
    shutil.copytree(folder, copy)
    st = (folder / "test_batch").stat()
    os.utime(folder / "test_batch", ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))  # touched, same bytes
    load_dataset("cifar10", copy, "train", cache_dir=cache)
    load_dataset("cifar10", folder, "train", cache_dir=cache)
    assert decode_calls == ["cifar10-batches"] and list(cache.glob("cifar10_*.npz")) == entries
    _dump(copy / "test_batch", {b"data": _chw_rows(3, 32), b"labels": [1, 2, 3]})  # new content: new entry
    assert load_dataset("cifar10", copy, "test", cache_dir=cache).labels.tolist() == [1, 2, 3]
    assert decode_calls == ["cifar10-batches"] * 2 and len(list(cache.glob("cifar10_*.npz"))) == 2
    assert not [p for p in cache.rglob("*") if p.name.endswith(".tmp")]  # atomic writes leave nothing


def test_cache_default_folder(cifar10_dir, tmp_path, monkeypatch, decode_calls):
    folder, _ = cifar10_dir
    monkeypatch.setenv("NASBEFF_CACHE", str(tmp_path / "nc"))
    assert D.default_cache_dir() == tmp_path / "nc"
    load_dataset("cifar10", folder, "train")
    assert len(list((tmp_path / "nc").glob("cifar10_*.npz"))) == 1
    load_dataset("cifar10", folder, "train")
    assert decode_calls == ["cifar10-batches"]
    assert not list(folder.rglob("*.npz"))  # nothing beside the data
    load_dataset("cifar10", folder, "train", cache_dir=False)  # no cache at all
    assert decode_calls == ["cifar10-batches"] * 2
    monkeypatch.delenv("NASBEFF_CACHE")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert D.default_cache_dir() == tmp_path / "xdg" / "nasbeff"
    monkeypatch.setenv("XDG_CACHE_HOME", "relative/ignored")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert D.default_cache_dir() == tmp_path / "home" / ".cache" / "nasbeff"


def test_corrupt_cache_warns_once_and_rebuilds(cifar10_dir, tmp_path, decode_calls):
    folder, _ = cifar10_dir
    cache = tmp_path / "cache"
    want = load_dataset("cifar10", folder, "train", cache_dir=cache)
    entry = next(cache.glob("cifar10_*.npz"))
    entry.write_bytes(entry.read_bytes()[: entry.stat().st_size // 2])  # truncated
    with pytest.warns(RuntimeWarning, match=f"{entry}: unreadable data cache.*rebuilding"):
        got = load_dataset("cifar10", folder, "train", cache_dir=cache)
    np.testing.assert_array_equal(got.images, want.images)
    assert decode_calls == ["cifar10-batches"] * 2
    load_dataset("cifar10", folder, "train", cache_dir=cache)  # rebuilt: a hit again
    assert decode_calls == ["cifar10-batches"] * 2
    entry.write_bytes(b"garbage")
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # warned once per file already: no second warning
        load_dataset("cifar10", folder, "train", cache_dir=cache)
    assert decode_calls == ["cifar10-batches"] * 3


def test_unwritable_cache_still_loads(cifar10_dir, tmp_path, monkeypatch):
    folder, _ = cifar10_dir
    blocker = tmp_path / "a_file"
    blocker.write_text("not a folder")
    with pytest.warns(RuntimeWarning, match="cannot write the data cache"):
        assert len(load_dataset("cifar10", folder, "train", cache_dir=blocker)) == 30

    def disk_full(f, **arrays):
        f.write(b"partial")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(D.np, "savez", disk_full)
    cache = tmp_path / "cache"
    with pytest.warns(RuntimeWarning, match="No space left"):
        assert len(load_dataset("cifar10", folder, "test", cache_dir=cache)) == 6
    assert not list(cache.glob("*.npz")) and not list(cache.glob(".*"))  # no partial entry, no temp file


# ------------------------------------------------------------------------------------- doors: bad archives

def _assert_one_line_naming(err, path: Path) -> None:
    msg = str(err.value)
    assert type(err.value) is DataFormatError and msg.startswith(str(path)) and "\n" not in msg
    assert err.value.__cause__ is None and err.value.__suppress_context__  # no EOFError & co. in the traceback


@pytest.mark.parametrize("suffix,mode", [(".tar.gz", "w:gz"), (".tar", "w"), (".tar.bz2", "w:bz2")])
def test_truncated_archive(tmp_path, suffix, mode):
    _write_tree(tmp_path / "tree")
    whole = tmp_path / f"whole{suffix}"
    with tarfile.open(whole, mode) as tf:
        tf.add(tmp_path / "tree", arcname="cifar10")
    cut = tmp_path / f"cut{suffix}"
    cut.write_bytes(whole.read_bytes()[: whole.stat().st_size // 2])
    with pytest.raises(DataFormatError) as err:
        load_dataset("cifar10", cut, "train")
    _assert_one_line_naming(err, cut)
    assert "truncated or corrupt" in str(err.value)
    assert len(load_dataset("cifar10", whole, "train")) == 9


def test_garbage_archive(tmp_path):
    bad = tmp_path / "cifar10.tar"
    bad.write_bytes(b"nope" * 1000)
    with pytest.raises(DataFormatError) as err:
        load_dataset("cifar10", bad, "train")
    _assert_one_line_naming(err, bad)
    gz = tmp_path / "cifar10.tar.gz"
    gz.write_bytes(b"\x1f\x8b\x08\x00" + b"\xff" * 2000)  # a gzip header, then garbage
    with pytest.raises(DataFormatError) as err:
        load_dataset("cifar10", gz, "train")
    _assert_one_line_naming(err, gz)


def test_broken_pickle_batch(cifar10_dir, tmp_path):
    folder, _ = cifar10_dir
    raw = (folder / "data_batch_2").read_bytes()
    (folder / "data_batch_2").write_bytes(raw[: len(raw) // 2])
    with pytest.raises(DataFormatError) as err:
        load_dataset("cifar10", folder, "train")
    _assert_one_line_naming(err, folder / "data_batch_2")
    assert "truncated or corrupt" in str(err.value)
    tar_path = tmp_path / "cifar-10-python.tar.gz"  # the same broken batch inside the official tar layout
    with tarfile.open(tar_path, "w:gz") as tf:
        tf.add(folder, arcname="cifar-10-batches-py")
    with pytest.raises(DataFormatError) as err:
        load_dataset("cifar10", tar_path, "train")
    _assert_one_line_naming(err, tar_path)
    assert "data_batch_2" in str(err.value)


# ------------------------------------------------------------------------------------- batches

def _small_set(n=12, side=6, classes=3):
    images = RNG.integers(0, 256, (n, side, side, 3), dtype=np.uint8)
    return ImageSet(images, np.arange(n) % classes, tuple(str(i) for i in range(classes)))


def test_eval_batches_match_to_tensor():
    ds = _small_set()
    mean, std = (0.5, 0.4, 0.3), (0.2, 0.25, 0.3)
    it = eval_batches(ds, 5, mean=mean, std=std)
    assert len(it) == 3
    xs, ys = zip(*it)
    assert [len(y) for y in ys] == [5, 5, 2]
    x_ref, y_ref = to_tensor(ds, mean=mean, std=std)
    torch.testing.assert_close(torch.cat(xs), x_ref)
    assert torch.equal(torch.cat(ys), y_ref)
    assert D.dataset_stats("cifar10-valid") == D.NORMALIZATION["cifar10"]


def test_train_batches_deterministic_and_shapes():
    ds = _small_set(n=20)
    a = train_batches(ds, 8, seed=5, mean=(0.5,) * 3, std=(0.5,) * 3)
    b = train_batches(ds, 8, seed=5, mean=(0.5,) * 3, std=(0.5,) * 3)
    e0a, e0b = list(a), list(b)
    assert [x.shape for x, _ in e0a] == [torch.Size([8, 3, 6, 6])] * 2 + [torch.Size([4, 3, 6, 6])]
    assert all(x.dtype == torch.float32 and y.dtype == torch.int64 for x, y in e0a)
    for (xa, ya), (xb, yb) in zip(e0a, e0b):
        assert torch.equal(xa, xb) and torch.equal(ya, yb)
    e1 = list(a)  # next epoch differs
    assert not torch.equal(torch.cat([x for x, _ in e1]), torch.cat([x for x, _ in e0a]))
    # epoch(e) is reproducible independently of the iteration history
    again = list(train_batches(ds, 8, seed=5, mean=(0.5,) * 3, std=(0.5,) * 3).epoch(1))
    assert all(torch.equal(x, y) for (x, _), (y, _) in zip(e1, again))
    assert sorted(torch.cat([y for _, y in e0a]).tolist()) == sorted(ds.labels.tolist())
    assert len(train_batches(ds, 8, drop_last=True)) == 2
    assert sum(1 for _ in train_batches(ds, 8, drop_last=True)) == 2


def _index_set(n: int, side: int) -> ImageSet:
    """Labels = image positions, so each batch says which source image it came from."""
    images = RNG.integers(1, 256, (n, side, side, 3), dtype=np.uint8)  # nonzero: padding is visible
    return ImageSet(images, np.arange(n), tuple(str(i) for i in range(n)))


def test_flip_correctness():
    ds = _index_set(64, 5)
    it = train_batches(ds, 16, pad=0, seed=0, mean=(0.0,) * 3, std=(1.0,) * 3)
    flipped = kept = 0
    for x, y in it:
        for img, lab in zip(x, y):
            src = torch.as_tensor(ds.images[int(lab)]).permute(2, 0, 1).float() / 255
            if torch.allclose(img, src):
                kept += 1
            elif torch.allclose(img, src.flip(-1)):
                flipped += 1
            else:
                raise AssertionError("output is neither the image nor its mirror")
    assert kept + flipped == 64 and kept > 10 and flipped > 10


def test_crop_correctness():
    side, pad = 6, 2
    ds = _index_set(40, side)
    it = train_batches(ds, 40, pad=pad, seed=1, mean=(0.0,) * 3, std=(1.0,) * 3)
    x, y = next(iter(it))
    assert x.shape == (40, 3, side, side)
    offsets = set()
    for img, lab in zip(x, y):
        src = torch.as_tensor(ds.images[int(lab)]).permute(2, 0, 1).float() / 255
        padded = torch.nn.functional.pad(src, (pad,) * 4)
        hits = [(dy, dx, f) for dy in range(2 * pad + 1) for dx in range(2 * pad + 1) for f in (0, 1)
                if torch.allclose(img, (lambda c: c.flip(-1) if f else c)(padded[:, dy:dy + side, dx:dx + side]))]
        assert hits, "output is not a (flipped) crop of the zero-padded image"
        offsets.add(hits[0][:2])
    assert len(offsets) > 5  # offsets vary per image


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_batches_match_cpu():
    ds = _small_set(n=30, side=8)
    cpu = list(train_batches(ds, 8, seed=2, device="cpu").epoch(0))
    gpu = list(train_batches(ds, 8, seed=2, device="cuda").epoch(0))
    for (xc, yc), (xg, yg) in zip(cpu, gpu):
        assert xg.is_cuda and torch.equal(yc, yg.cpu())
        torch.testing.assert_close(xc, xg.cpu())


# ------------------------------------------------------------------------------------- real data

@pytest.mark.slow
def test_real_cifar10_tar(shared_data, tmp_path, monkeypatch):
    tar_path = shared_data / "cifar10" / "cifar10_jpeg.tar.gz"
    if not tar_path.is_file():
        pytest.skip("cifar10_jpeg.tar.gz absent")
    monkeypatch.setenv("NASBEFF_CACHE", str(tmp_path / "cache"))
    train, test = load_dataset("cifar10", tar_path, ("train", "test"))
    entries = list((tmp_path / "cache").glob("cifar10_*.npz"))
    assert len(entries) == 1 and entries[0].stat().st_size > 180_000_000  # 60k x 32 x 32 x 3 bytes
    copy = tmp_path / "copy.tar.gz"
    shutil.copyfile(tar_path, copy)
    monkeypatch.setattr(D, "_decode_source", lambda kind, path: pytest.fail("decoded again"))
    np.testing.assert_array_equal(load_dataset("cifar10-valid", copy, "ori-test").images, test.images)
    assert len(train) + len(test) == 60_000
    assert train.images.shape == (50_000, 32, 32, 3) and test.images.shape == (10_000, 32, 32, 3)
    np.testing.assert_array_equal(train.labels, np.repeat(np.arange(10), 5000))
    np.testing.assert_array_equal(test.labels, np.repeat(np.arange(10), 1000))
    ref = np.load(shared_data / "cifar10" / "cifar10_test_exact_first1017.npz")
    names = [str(n) for n in ref["jpeg_names_all"][:1017]]  # 'test/<class>/NNNN.jpg' for test index k
    pos = [CIFAR10_CLASSES.index(n.split("/")[1]) * 1000 + int(n.split("/")[2].split(".")[0]) for n in names]
    np.testing.assert_array_equal(test.labels[pos], ref["labels_first"])
    err = np.abs(test.images[pos].astype(np.float64) - ref["images"]).mean()
    assert err < 12, f"mean abs pixel error {err:.2f}/255 exceeds JPEG tolerance"
    sub = stratified_subset(train, 5000, seed=0)
    assert np.bincount(sub.labels).tolist() == [500] * 10
