"""``nasbeff rank --dataset`` (issue 24 point 1): the head and probe get the dataset's classes, an .npz
of images is split by seed into train and validation, the dataset is in the store key and the rows,
and the errors come before any work."""

from __future__ import annotations

import csv

import numpy as np
import pytest
from typer.testing import CliRunner

from nasbeff.cli import app
from nasbeff.store import ResultStore

TINY = ["--epochs", "3", "--train-size", "200", "--valid-size", "100", "--batch-size", "50", "--beta-samples", "16",
        "--init-channels", "4", "--cells", "1", "--resolution", "8", "--threads", "1"]


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture
def c100_npz(tmp_path):
    """400 images of 100 classes (4 each), the shared CIFAR-100 file's format, with a colour cue."""
    rng = np.random.default_rng(0)
    labels = np.repeat(np.arange(100), 4)
    images = rng.integers(0, 256, size=(400, 32, 32, 3), dtype=np.uint8)
    images[..., 0] = (labels[:, None, None] * 2).astype(np.uint8)
    path = tmp_path / "c100.npz"
    np.savez(path, images=images, labels=labels)
    return path


def _rows(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def test_rank_cifar100_npz_has_a_100_class_head_and_its_own_store_keys(tmp_path, c100_npz, tiny_cifar,
                                                                       monkeypatch):
    from nasbeff.training import nb201_study

    heads = []
    build = nb201_study.build_nb201_model

    def spy(*a, **kw):
        net = build(*a, **kw)
        heads.append(kw["num_classes"])
        return net

    probes = []
    ncp = nb201_study.NCP

    def spy_probe(dim, classes, **kw):
        probes.append(classes)
        return ncp(dim, classes, **kw)

    monkeypatch.setattr(nb201_study, "build_nb201_model", spy)
    monkeypatch.setattr(nb201_study, "NCP", spy_probe)
    store = tmp_path / "s.sqlite"
    runner = CliRunner()
    res = runner.invoke(app, ["rank", "--dataset", "c100", "--data", str(c100_npz), "--archs", "3", *TINY,
                              "--store", str(store), "--out", str(tmp_path / "c100.csv")])
    assert res.exit_code == 0, res.output
    assert heads == [100] and probes == [100]
    rows = _rows(tmp_path / "c100.csv")
    assert [r["index"] for r in rows] == ["3"] and rows[0]["dataset"] == "cifar100"
    # the same arch on CIFAR-10, into the same store: its own key, nothing mixed
    res = runner.invoke(app, ["rank", "--data", str(tiny_cifar), "--archs", "3", *TINY, "--train-size", "30",
                              "--valid-size", "20", "--batch-size", "10", "--store", str(store),
                              "--out", str(tmp_path / "c10.csv")])
    assert res.exit_code == 0, res.output
    assert heads == [100, 10]
    c10 = _rows(tmp_path / "c10.csv")
    assert c10[0]["dataset"] == "cifar10-valid" and c10[0]["study_hash"] != rows[0]["study_hash"]
    with ResultStore(store) as st:
        done = {(r.key.dataset, r.key.config_hash) for r in st.rows(done=True)}
    assert done == {("cifar100", rows[0]["study_hash"]), ("cifar10-valid", c10[0]["study_hash"])}
    # nasbeff report takes its default truth from the rows' dataset
    from nasbeff.runs.report import scores_dataset

    assert scores_dataset(tmp_path / "c100.csv") == "cifar100" and scores_dataset(tmp_path / "c10.csv") == "cifar10-valid"


def test_the_pool_split_is_seeded_stratified_and_disjoint(c100_npz):
    from nasbeff.data import read_npz_images
    from nasbeff.training.nb201_study import StudyConfig, load_study_data, pool_split

    cfg = StudyConfig(dataset="cifar100", pool=True, train_size=200, valid_size=100, beta_samples=16)
    labels = read_npz_images(c100_npz).labels
    tr, va = pool_split(labels, cfg)
    assert len(va) == 100 and len(tr) == 200 and not np.intersect1d(tr, va).size
    assert np.bincount(labels[va], minlength=100).tolist() == [1] * 100  # one per class
    again = pool_split(labels, cfg)
    assert np.array_equal(tr, again[0]) and np.array_equal(va, again[1])
    other = pool_split(labels, StudyConfig(dataset="cifar100", pool=True, train_size=200, valid_size=100,
                                           beta_samples=16, data_seed=1))
    assert not np.array_equal(va, other[1])
    data = load_study_data(c100_npz, cfg)
    from nasbeff.data.names import NORMALIZATION

    assert (data.mean, data.std) == NORMALIZATION["cifar100"]
    # the default CIFAR-10 study keeps its hash (existing stores resume): pool and dataset add nothing
    assert "pool" not in StudyConfig().to_dict() and StudyConfig(dataset="cifar100").hash != StudyConfig().hash
    from nasbeff.training.protocols import study_config

    assert study_config("cpu").hash == "4f9e884f783153f6"  # the committed test curves' study_hash


@pytest.mark.parametrize("args, msg", [
    (["--dataset", "imagenet16-120"], "needs ImageNet16-120 images: --data the folder of its train_data_batch"),
    (["--dataset", "in16", "--data", "{tmp}"], "has no ImageNet16 pickles"),
    (["--dataset", "cifar1000", "--data", "{tmp}"], "unknown dataset 'cifar1000'"),
    (["--dataset", "cifar100", "--data", "{npz}"], "holds 400 images, fewer than --train-size 5,000"),
    (["--dataset", "cifar10", "--data", "{npz}", "--train-size", "200", "--valid-size", "100",
      "--beta-samples", "16"],
     "holds 100 classes, more than cifar10-valid's 10"),
    (["--dataset", "cifar100", "--data", "{tmp}"], "has no cifar-100-python files"),
])
def test_rank_dataset_errors_come_before_any_work(tmp_path, c100_npz, args, msg):
    store = tmp_path / "never.sqlite"
    args = [a.format(tmp=tmp_path, npz=c100_npz) for a in args]
    res = CliRunner().invoke(app, ["rank", *args, "--archs", "0", "--store", str(store), "--out",
                                   str(tmp_path / "o.csv")])
    assert res.exit_code == 2, res.output
    assert msg in " ".join(res.output.split()), res.output
    assert not store.exists() and not (tmp_path / "o.csv").exists()
