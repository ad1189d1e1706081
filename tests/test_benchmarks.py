"""Ground-truth tables: the offline CSVs, split mapping, search view and the nats_bench adapter."""

from __future__ import annotations

import bz2
import pickle
import sys
from pathlib import Path

import numpy as np
import pytest

from nasbeff.tables.ground_truth import (BenchmarkSource, HiddenTestAccuracyError, LearningCurves, NATSBench,
                                NB201File, NB201Table, PerSeedTable, SearchView, canonical_dataset, check_split,
                                open_benchmark, shared_data_dir)

GT = "nb201/nb201_ground_truth.csv"


@pytest.fixture(scope="module")
def table(shared_data) -> NB201Table:
    return NB201Table(shared_data / GT)


# ------------------------------------------------------------------------------------- real CSV

def test_real_table_values(table):
    assert table._values is None  # lazy: nothing read yet
    assert len(table) == 15_625
    c10 = table.metric("cifar10", "ori-test")
    assert c10.shape == (15_625,)
    assert c10.max() == pytest.approx(94.3733) and int(np.argmax(c10)) == 6111
    assert table.metric("cifar10", "ori-test", 13714) == pytest.approx(94.3733)
    assert int((c10 == 10).sum()) == 341
    assert table.metric("cifar10-valid", "x-valid", 6111) == pytest.approx(91.6067)
    assert int(np.argmax(table.metric("cifar100", "x-test"))) == 9930
    assert int(np.argmax(table.metric("imagenet16-120", "x-valid"))) == 10676
    assert np.nanmax(table.metric("ImageNet16-120", "x-test")) == pytest.approx(47.3111)
    # memory-light: one float array of the numeric columns plus the arch strings
    assert table._values.dtype == np.float64 and table._values.shape == (15_625, len(table.columns))
    assert "arch_str" not in table.columns


def test_lookups(table):
    a = table.arch(1)
    assert a == "|nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_3x3~1|skip_connect~2|"
    assert table.index_of(a) == 1
    assert table.index_of(table.arch(15_624)) == 15_624
    with pytest.raises(KeyError, match="not in"):
        table.index_of("|none~0|+|none~0|none~1|")
    with pytest.raises(IndexError):
        table.arch(15_625)
    np.testing.assert_allclose(table.metric("cifar100", "x-valid", [0, 1]), [52.7, 69.8267])
    assert table.params("cifar10", 0) == pytest.approx(0.129306)
    assert table.params("cifar10-valid", 0) == table.params("cifar10", 0)
    assert table.params("cifar100", 0) == pytest.approx(0.135156)
    assert table.train_time("cifar10-valid", 0) == pytest.approx(1444.22)
    assert table.train_time("imagenet16-120", 0) == pytest.approx(8763.52)
    with pytest.raises(ValueError, match="train_time"):
        table.train_time("cifar10", 0)
    assert table.column("zen_c10", 0) == pytest.approx(184.955)


@pytest.mark.parametrize("dataset,split,hp,column", [
    ("cifar10", "ori-test", "200", "c10_test"),
    ("cifar10", "ori-test", 12, "c10_test_12ep"),
    ("cifar10-valid", "x-valid", "200", "c10_valid"),
    ("cifar10-valid", "ori-test", "200", "nb201v11_c10valid_test"),
    ("cifar100", "x-test", "200", "c100_test"),
    ("cifar100", "x-valid", "200", "c100_valid"),
    ("cifar100", "ori-test", "200", "c100_valtest"),
    ("cifar100", "x-test", "12", "c100_test_12ep"),
    ("ImageNet16-120", "x-test", "200", "in16_test"),
    ("imagenet16-120", "x-valid", "200", "in16_valid"),
    ("imagenet16-120", "ori-test", "200", "in16_valtest"),
    ("imagenet16-120", "xtest", "12", "in16_test_12ep"),
])
def test_split_mapping(table, dataset, split, hp, column):
    assert table.column_for(dataset, split, hp) == column
    assert table.metric(dataset, split, 1, hp=hp) == table.column(column, 1)


@pytest.mark.parametrize("dataset,split,needle", [
    ("cifar10", "x-valid", "train\\+valid"),
    ("cifar10", "valid", "cifar10-valid"),
    ("cifar10", "x-test", "ori-test"),
    ("cifar10-valid", "test", "ambiguous"),
    ("cifar100", "test", "ambiguous"),
    ("imagenet16-120", "valid", "x-valid"),
    ("cifar100", "nonsense", "Valid splits for 'cifar100': train, x-valid, x-test, ori-test"),
])
def test_split_errors(table, dataset, split, needle):
    with pytest.raises(ValueError, match=needle):
        table.metric(dataset, split, 0)


def test_other_errors(table, tmp_path):
    with pytest.raises(ValueError, match="unknown dataset"):
        table.metric("mnist", "x-valid", 0)
    with pytest.raises(ValueError, match="hp"):
        table.metric("cifar10", "ori-test", 0, hp="90")
    with pytest.raises(ValueError, match="not in the offline table"):
        table.metric("cifar10-valid", "x-valid", 0, hp="12")
    with pytest.raises(ValueError, match="not in the offline table"):
        table.metric("cifar100", "train", 0)
    assert check_split("ImageNet16-120", "X_VALID") == ("imagenet16-120", "x-valid")
    assert table.metric("cifar10", "test", 7) == table.metric("cifar10", "ori-test", 7)  # unambiguous alias
    with pytest.raises(FileNotFoundError, match="missing file"):
        NB201Table(tmp_path / "nope.csv")
    bad = tmp_path / "bad.csv"
    bad.write_text("index,foo\n0,1\n")
    with pytest.raises(ValueError, match="missing columns"):
        len(NB201Table(bad))
    gap = tmp_path / "gap.csv"
    gap.write_text("index,arch_str,c10_test\n0,a,1\n2,b,3\n")
    with pytest.raises(ValueError, match="index"):
        len(NB201Table(gap))


def test_small_csv_any_row_order(tmp_path):
    p = tmp_path / "t.csv"
    p.write_text("index,arch_str,naslib_ops,c10_test,c10_valid\n1,b,0-0,2.5,\n0,a,1-1,1.5,7\n")
    t = NB201Table(p)
    assert len(t) == 2 and t.arch(0) == "a" and t.index_of("b") == 1
    assert t.metric("cifar10", "ori-test", 1) == 2.5
    assert np.isnan(t.metric("cifar10-valid", "x-valid", 1))


def test_search_view_hides_test(table):
    view = table.without_test()
    assert isinstance(view, SearchView) and isinstance(view, BenchmarkSource)
    assert isinstance(table, BenchmarkSource)
    for ds, sp in [("cifar10", "ori-test"), ("cifar10-valid", "ori-test"), ("cifar100", "x-test"),
                   ("cifar100", "ori-test"), ("imagenet16-120", "x-test"), ("imagenet16-120", "ori-test")]:
        with pytest.raises(HiddenTestAccuracyError):
            view.metric(ds, sp, 0)
        with pytest.raises(HiddenTestAccuracyError):
            view.metric(ds, sp)
    with pytest.raises(HiddenTestAccuracyError):
        view.metric("cifar10", "ori-test", 0, hp="12")
    for col in ("c10_test", "c100_valtest", "in16_test_12ep", "nb201v11_c10_test", "naslib_val_c10"):
        with pytest.raises(HiddenTestAccuracyError):
            view.column(col, 0)
    assert view.metric("cifar10-valid", "x-valid", 6111) == pytest.approx(91.6067)
    assert view.metric("cifar100", "x-valid", 0) == table.metric("cifar100", "x-valid", 0)
    assert view.column("zen_c10", 0) == table.column("zen_c10", 0)
    assert view.params("cifar10", 0) == table.params("cifar10", 0)
    assert view.arch(5) == table.arch(5) and len(view) == 15_625
    assert view.without_test() is view
    with pytest.raises(ValueError, match="cifar10-valid"):  # bad names still explained
        view.metric("cifar10", "x-valid", 0)


def test_default_path(shared_data, monkeypatch):
    monkeypatch.setenv("NASBEFF_SHARED_DATA", str(shared_data))
    assert NB201Table().path == shared_data / GT
    assert NB201Table(shared_data).path == shared_data / GT
    assert isinstance(open_benchmark(), NB201Table)


def test_shared_data_env_pointing_nowhere(tmp_path, monkeypatch):
    nowhere = tmp_path / "no" / "such" / "folder"
    monkeypatch.setenv("NASBEFF_SHARED_DATA", str(nowhere))
    for open_default in (shared_data_dir, NB201Table, open_benchmark, PerSeedTable, LearningCurves):
        with pytest.raises(FileNotFoundError, match=f"^NASBEFF_SHARED_DATA={nowhere} is not a folder"):
            open_default()
    empty = tmp_path / "empty"
    empty.mkdir()
    monkeypatch.setenv("NASBEFF_SHARED_DATA", str(empty))
    assert shared_data_dir() == empty
    with pytest.raises(FileNotFoundError, match=f"missing file {empty / GT} .*NASBEFF_SHARED_DATA"):
        NB201Table()


def test_images_and_benchmarks_share_one_vocabulary():
    """data.py and benchmarks.py kept two copies of the names and they disagreed (main at fdbfdd1:
    'c10' / 'in16' unknown to data.py, 'cifar10_valid' unknown to both, 'test' of cifar10 accepted by
    data.py and refused by benchmarks.py)."""
    from nasbeff.data import loaders as data

    for name in ("c10", "in16", "c100", "cifar10_valid", "imagenet16_120", "cifar-10-valid", "ImageNet16-120"):
        assert data.canonical_name(name) == canonical_dataset(name)
    for ds in ("cifar10", "cifar10-valid", "cifar100", "imagenet16-120"):
        for sp in ("train", "test", "ori-test", "x-valid", "xvalid", "x-test", "valid", "val", "nonsense"):
            try:
                images = data.check_split(ds, sp)
            except ValueError as exc:
                images = str(exc)
            try:
                bench = check_split(ds, sp)[1]
            except ValueError as exc:
                bench = str(exc)
            assert images == bench, (ds, sp)
    assert data.check_split("cifar10", "test") == "ori-test"


def test_per_seed(shared_data, table):
    ps = PerSeedTable(shared_data / "nb201" / "nb201_final_acc_per_seed.csv")
    assert len(ps) == 15_625 and ps.seeds == (777, 888, 999)
    np.testing.assert_allclose(ps.accuracies("cifar10-valid", "x-valid", 0), [82.092, 81.616, 82.24])
    for (ds, sp), col in [(("cifar10-valid", "x-valid"), "c10_valid"), (("cifar100", "ori-test"), "c100_valtest"),
                          (("imagenet16-120", "ori-test"), "in16_valtest")]:
        acc = ps.accuracies(ds, sp)
        assert acc.shape == (15_625, 3)
        assert int(np.isnan(acc[:, 2]).sum()) == 7_456 and not np.isnan(acc[:, :2]).any()
        np.testing.assert_allclose(np.nanmean(acc, axis=1), table.column(col), atol=1e-4)
    with pytest.raises(ValueError, match="per-seed values exist only"):
        ps.accuracies("cifar100", "x-test")
    hidden = ps.without_test()
    with pytest.raises(HiddenTestAccuracyError):
        hidden.accuracies("cifar100", "ori-test")
    assert hidden.accuracies("cifar10-valid", "x-valid", [0, 1]).shape == (2, 3)


def test_curves(shared_data, table):
    cv = LearningCurves(shared_data / "nb201" / "nb201_c10valid_curves_first200archs.csv")
    np.testing.assert_array_equal(cv.indices, np.arange(200))
    np.testing.assert_array_equal(cv.epochs, np.arange(1, 201))
    final = cv.valid(epoch=200)
    assert final.shape == (200,)
    np.testing.assert_allclose(final, table.column("nb201v11_c10valid_valid", np.arange(200)), atol=3e-5, rtol=0)
    assert cv.valid(0, 1) == pytest.approx(30.7133) and cv.train(0, 2) == pytest.approx(35.6693)
    assert cv.valid(3).shape == (200,)
    with pytest.raises(IndexError, match="no curve"):
        cv.valid(200)
    with pytest.raises(IndexError, match="epoch"):
        cv.valid(0, 0)


# ------------------------------------------------------------------------------------- nats_bench

ARCHS = [
    "|nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_3x3~1|skip_connect~2|",
    "|avg_pool_3x3~0|+|nor_conv_1x1~0|skip_connect~1|+|nor_conv_1x1~0|skip_connect~1|skip_connect~2|",
    "|none~0|+|none~0|none~1|+|none~0|none~1|none~2|",
]
# (dataset, eval sets, head params) as stored by NATS-Bench
NATS_SETS = {"cifar10-valid": ("x-valid", "ori-test"), "cifar10": ("ori-test",),
             "cifar100": ("x-valid", "x-test", "ori-test"), "ImageNet16-120": ("x-valid", "x-test", "ori-test")}
SEEDS = (777, 888)


def fake_acc(arch: int, dataset: str, split: str, hp: str, seed: int) -> float:
    base = {"cifar10-valid": 80, "cifar10": 90, "cifar100": 60, "ImageNet16-120": 30}[dataset]
    off = {"train": 9.0, "x-valid": 1.0, "x-test": 2.0, "ori-test": 3.0}[split]
    return base + off + 0.1 * arch + (0.5 if hp == "12" else 0.0) + (0.2 if seed == 888 else -0.2) * (arch + 1)


def fake_params(arch: int, dataset: str) -> float:
    return 0.1 * (arch + 1) + {"cifar10-valid": 0.0, "cifar10": 0.0, "cifar100": 0.01, "ImageNet16-120": 0.02}[dataset]


EPOCH_TIME = 7.5


def _results_count(arch: int, dataset: str, hp: str, seed: int, archs: list[str] = ARCHS) -> dict:
    epochs = int(hp)
    evals = NATS_SETS[dataset]
    last = {s: fake_acc(arch, dataset, s, hp, seed) for s in evals}
    acc = {f"{s}@{e}": (last[s] if e == epochs - 1 else 10.0) for s in evals for e in range(epochs)}
    return {
        "name": dataset, "net_state_dict": None,
        "train_acc1es": {e: (fake_acc(arch, dataset, "train", hp, seed) if e == epochs - 1 else 10.0)
                         for e in range(epochs)},
        "train_acc5es": None, "train_losses": {e: 1.0 for e in range(epochs)},
        "train_times": {e: EPOCH_TIME for e in range(epochs)},
        "arch_config": {"channel": 16, "num_cells": 5, "arch_str": archs[arch], "class_num": 10},
        "params": fake_params(arch, dataset), "flop": 10.0 * (arch + 1), "seed": seed, "epochs": epochs,
        "latency": [0.01], "eval_names": list(evals), "eval_acc1es": acc,
        "eval_times": {k: 0.5 for k in acc}, "eval_losses": {k: 1.0 for k in acc},
    }


def arch_results(i: int, hp: str, archs: list[str] = ARCHS) -> dict:
    """An ArchResults state dict (NAS-Bench-201 / NATS-Bench format) of arch ``i`` and schedule ``hp``."""
    return {"arch_index": i, "arch_str": archs[i], "clear_net_done": True,
            "dataset_seed": {ds: list(SEEDS) for ds in NATS_SETS},
            "all_results": {(ds, s): _results_count(i, ds, hp, s, archs) for ds in NATS_SETS for s in SEEDS}}


def make_nats_dir(root: Path, archs: list[str] = ARCHS, hps=("12", "200"),
                  name: str = "NATS-tss-v1_0-3ffb9-simple") -> Path:
    """A fast-mode NATS folder in the API's own format (bz2 pickles of plain dicts)."""
    d = root / name
    d.mkdir(parents=True)

    def save(obj, path):
        with bz2.BZ2File(path, "wb") as f:
            pickle.dump(obj, f, protocol=4)

    save({"meta_archs": archs, "arch2infos": {}, "evaluated_indexes": []}, d / "meta.pickle.pbz2")
    for i in range(len(archs)):
        save({hp: arch_results(i, hp, archs) for hp in hps}, d / f"{i:06d}.pickle.pbz2")
    return d


def mean_acc(arch, dataset, split, hp="200"):
    return float(np.mean([fake_acc(arch, dataset, split, hp, s) for s in SEEDS]))


@pytest.fixture()
def nats_dir(tmp_path):
    return make_nats_dir(tmp_path)


def test_nats_adapter(nats_dir):
    pytest.importorskip("nats_bench")
    nb = NATSBench(nats_dir)
    assert isinstance(nb, BenchmarkSource) and len(nb) == 3
    assert nb.arch(1) == ARCHS[1] and nb.index_of(ARCHS[2]) == 2
    with pytest.raises(KeyError):
        nb.index_of("|skip_connect~0|+|none~0|none~1|+|none~0|none~1|none~2|")
    cases = [("cifar10", "ori-test", "cifar10", "ori-test"),
             ("cifar10-valid", "x-valid", "cifar10-valid", "x-valid"),
             ("cifar10-valid", "ori-test", "cifar10-valid", "ori-test"),
             ("cifar100", "x-valid", "cifar100", "x-valid"),
             ("cifar100", "x-test", "cifar100", "x-test"),
             ("cifar100", "ori-test", "cifar100", "ori-test"),
             ("imagenet16-120", "x-test", "ImageNet16-120", "x-test"),
             ("ImageNet16-120", "x-valid", "ImageNet16-120", "x-valid"),
             ("imagenet16-120", "ori-test", "ImageNet16-120", "ori-test"),
             ("cifar100", "train", "cifar100", "train")]
    for ds, sp, nats_ds, nats_sp in cases:
        for i in range(3):
            assert nb.metric(ds, sp, i) == pytest.approx(mean_acc(i, nats_ds, nats_sp)), (ds, sp, i)
        np.testing.assert_allclose(nb.metric(ds, sp), [mean_acc(i, nats_ds, nats_sp) for i in range(3)])
    assert nb.metric("cifar10", "ori-test", 2, hp="12") == pytest.approx(mean_acc(2, "cifar10", "ori-test", "12"))
    assert nb.metric("cifar100", "x-valid", 0, iepoch=3) == pytest.approx(10.0)
    assert nb.params("cifar100", 1) == pytest.approx(fake_params(1, "cifar100"))
    np.testing.assert_allclose(nb.params("ImageNet16-120", [0, 2]), [fake_params(i, "ImageNet16-120") for i in (0, 2)])
    assert nb.train_time("cifar10-valid", 0) == pytest.approx(200 * EPOCH_TIME)
    assert nb.train_time("cifar10", 0) == pytest.approx(200 * EPOCH_TIME)
    with pytest.raises(ValueError, match="cifar10-valid"):
        nb.metric("cifar10", "x-valid", 0)
    with pytest.raises(IndexError):
        nb.metric("cifar10", "ori-test", 3)
    view = nb.without_test()
    with pytest.raises(HiddenTestAccuracyError):
        view.metric("cifar100", "x-test", 0)
    assert view.metric("cifar100", "x-valid", 0) == nb.metric("cifar100", "x-valid", 0)
    assert isinstance(open_benchmark(nats_dir), NATSBench)


def test_nats_torch_home_and_errors(nats_dir, tmp_path, monkeypatch):
    pytest.importorskip("nats_bench")
    monkeypatch.setenv("TORCH_HOME", str(nats_dir.parent))
    assert NATSBench().path == nats_dir
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "empty"))
    with pytest.raises(FileNotFoundError, match="TORCH_HOME"):
        NATSBench()
    with pytest.raises(FileNotFoundError, match="does not exist"):
        NATSBench(tmp_path / "missing")
    with pytest.raises(FileNotFoundError, match="meta.pickle.pbz2"):
        NATSBench(tmp_path)


def test_nats_missing_package(nats_dir, monkeypatch):
    monkeypatch.setitem(sys.modules, "nats_bench", None)  # makes `import nats_bench` fail
    with pytest.raises(ImportError, match="pip install nats_bench"):
        NATSBench(nats_dir)


# ------------------------------------------------------------------------------ NATS size space (sss)

SSS_ARCHS = ["8:8:8:8:8", "64:64:64:64:64", "16:32:8:64:24"]


def test_nats_size_space(tmp_path):
    pytest.importorskip("nats_bench")
    d = make_nats_dir(tmp_path, SSS_ARCHS, ("01", "12", "90"), "NATS-sss-v1_0-50262-simple")
    nb = open_benchmark(d)
    assert isinstance(nb, NATSBench) and nb.space == "sss" and len(nb) == 3
    assert nb.arch(2) == "16:32:8:64:24" and nb.index_of("64:64:64:64:64") == 1
    for i in range(3):  # hp defaults to the size space's full 90-epoch schedule
        assert nb.metric("cifar10-valid", "x-valid", i) == pytest.approx(mean_acc(i, "cifar10-valid", "x-valid", "90"))
    np.testing.assert_allclose(nb.metric("cifar100", "x-test", hp=12), [mean_acc(i, "cifar100", "x-test", "12")
                                                                        for i in range(3)])
    assert nb.metric("cifar10", "ori-test", 0, hp="1") == pytest.approx(mean_acc(0, "cifar10", "ori-test", "01"))
    assert nb.train_time("cifar10-valid", 1) == pytest.approx(90 * EPOCH_TIME)
    assert nb.params("cifar10", 2) == pytest.approx(fake_params(2, "cifar10"))
    with pytest.raises(ValueError, match="hp must be one of"):
        nb.metric("cifar10", "ori-test", 0, hp="200")
    with pytest.raises(KeyError, match="sss space"):
        nb.index_of("8:8:8:8")
    with pytest.raises(IndexError, match="out of range"):
        nb.metric("cifar10", "ori-test", 3)
    with pytest.raises(ValueError, match="'tss' .* or 'sss'"):
        NATSBench(d, space="size")
    assert NATSBench(d).space == "sss"


# ---------------------------------------------------------------------- original NAS-Bench-201 (.pth)

def make_nb201_pth(path: Path, evaluated=(0, 1, 2)) -> Path:
    """A 3-arch NAS-Bench-201 file in the original format: torch.save of a dict of plain dicts."""
    import torch

    torch.save({"meta_archs": ARCHS, "evaluated_indexes": set(evaluated),
                "arch2infos": {i: {"less": arch_results(i, "12"), "full": arch_results(i, "200")}
                               for i in evaluated}}, path)
    return path


def test_nb201_pth_file(tmp_path):
    nb = open_benchmark(make_nb201_pth(tmp_path / "NAS-Bench-201-v1_1-096897.pth"))
    assert isinstance(nb, NB201File) and isinstance(nb, BenchmarkSource)
    assert nb._values is None  # lazy
    assert len(nb) == 3 and nb.arch(1) == ARCHS[1] and nb.index_of(ARCHS[2]) == 2
    for ds, sp, nats_ds in [("cifar10", "ori-test", "cifar10"), ("c10-valid", "x-valid", "cifar10-valid"),
                            ("cifar10-valid", "ori-test", "cifar10-valid"), ("cifar100", "x-test", "cifar100"),
                            ("ImageNet16-120", "x-valid", "ImageNet16-120"), ("cifar100", "train", "cifar100")]:
        for hp in ("200", "12"):
            np.testing.assert_allclose(nb.metric(ds, sp, hp=hp), [mean_acc(i, nats_ds, check_split(ds, sp)[1], hp)
                                                                  for i in range(3)], err_msg=f"{ds} {sp} {hp}")
    assert nb.column_for("cifar10", "ori-test") == "c10_test" and nb.column_for("cifar100", "x-valid", 12) == \
        "c100_xvalid_12ep"
    assert nb.params("cifar100", 1) == pytest.approx(fake_params(1, "cifar100"))
    assert nb.train_time("cifar10", 2) == pytest.approx(200 * EPOCH_TIME)
    view = nb.without_test()  # the search protocol: columns by the offline table's names
    assert view.column("c10_valid", 0) == pytest.approx(mean_acc(0, "cifar10-valid", "x-valid"))
    assert view.column("train_time_s_c10valid", 0) == pytest.approx(200 * EPOCH_TIME)
    with pytest.raises(HiddenTestAccuracyError):
        view.column("c10_test", 0)
    with pytest.raises(IndexError, match="out of range 0..2"):
        nb.metric("cifar10", "ori-test", 3)
    with pytest.raises(KeyError, match="not in this NAS-Bench-201 file"):
        nb.index_of("|none~0|+|none~0|none~1|+|none~0|none~1|skip_connect~2|")
    part = NB201File(make_nb201_pth(tmp_path / "part.pth", evaluated=(0, 2)))  # an arch without results: NaN
    assert np.isnan(part.metric("cifar10", "ori-test", 1)) and part.metric("cifar10", "ori-test", 2) > 0


def test_nb201_pth_errors(tmp_path):
    import torch

    with pytest.raises(FileNotFoundError, match="does not exist"):
        open_benchmark(tmp_path / "NAS-Bench-201-v1_0-e61699.pth")
    torch.save({"state_dict": torch.zeros(2)}, tmp_path / "weights.pth")
    with pytest.raises(ValueError, match="is not a NAS-Bench-201 benchmark file .*meta_archs"):
        len(open_benchmark(tmp_path / "weights.pth"))
    (tmp_path / "text.pth").write_text("hello")
    with pytest.raises(ValueError, match="is not a NAS-Bench-201 benchmark file .*torch.load failed"):
        len(NB201File(tmp_path / "text.pth"))
    torch.save({"meta_archs": ARCHS, "arch2infos": {0: {"full": {"all_results": {("cifar10", 1): {}}}}}},
               tmp_path / "broken.pth")
    with pytest.raises(ValueError, match="arch 0, schedule 200 epochs: KeyError"):
        len(NB201File(tmp_path / "broken.pth"))
