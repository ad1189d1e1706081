"""``score --dataset``: images, classes and statistics of CIFAR-100 (an .npz of images + labels, the
shared file's format) and ImageNet16-120, the truth column following the dataset (issue 24, part 1)."""

from __future__ import annotations

import csv

import numpy as np
import pytest
from typer.testing import CliRunner

from nasbeff.cli import app
from nasbeff.data import DataFormatError, read_npz_images
from nasbeff.runs.score import ScoreConfig, run_score


def _npz(path, n=40, classes=100, names=True):
    rng = np.random.default_rng(0)
    arrays = {"images": rng.integers(0, 256, size=(n, 32, 32, 3), dtype=np.uint8),
              "labels": (np.arange(n) % classes).astype(np.uint8)}
    if names:
        arrays["fine_label_names"] = np.array([f"c{i}" for i in range(classes)])
    np.savez(path, **arrays)
    return path


def test_read_npz_images_and_its_errors(tmp_path):
    data = read_npz_images(_npz(tmp_path / "a.npz"))
    assert data.images.shape == (40, 32, 32, 3) and data.images.dtype == np.uint8
    assert data.labels.dtype == np.int64 and len(data.classes) == 100 and data.classes[3] == "c3"
    assert len(read_npz_images(_npz(tmp_path / "b.npz", classes=7, names=False)).classes) == 7
    np.savez(tmp_path / "bad.npz", x=np.zeros(3))
    with pytest.raises(DataFormatError, match="needs arrays 'images' and 'labels'"):
        read_npz_images(tmp_path / "bad.npz")
    np.savez(tmp_path / "float.npz", images=np.zeros((2, 32, 32, 3)), labels=np.zeros(2))
    with pytest.raises(DataFormatError, match="must be uint8"):
        read_npz_images(tmp_path / "float.npz")
    (tmp_path / "junk.npz").write_bytes(b"not a zip")
    with pytest.raises(DataFormatError, match="not a readable .npz"):
        read_npz_images(tmp_path / "junk.npz")


def test_cifar100_scores_use_its_images_and_a_100_class_head(tmp_path):
    npz = _npz(tmp_path / "c100.npz")
    common = dict(archs=(1, 5), proxies=("params", "naswot"), batch_size=16, truth="")
    c100 = run_score(ScoreConfig(data=str(npz), dataset="cifar100", store=tmp_path / "a.sqlite",
                                 out=tmp_path / "a.csv", **common))
    c10 = run_score(ScoreConfig(data="digits", store=tmp_path / "b.sqlite", out=tmp_path / "b.csv", **common))
    p100 = {r["index"]: r["params"] for r in c100.rows}
    p10 = {r["index"]: r["params"] for r in c10.rows}
    # the head grows from 10 to 100 outputs: feature_dim x 90 weights and 90 biases more (params in M)
    assert all(p100[i] > p10[i] for i in (1, 5))
    from nasbeff.store import ResultStore

    with ResultStore(tmp_path / "a.sqlite") as st:
        assert {r.key.dataset for r in st.rows()} == {"cifar100"}
    with open(tmp_path / "a.csv", newline="") as f:
        assert [int(r["index"]) for r in csv.DictReader(f)] == [1, 5]


def test_a_dataset_without_images_is_one_line_naming_what_to_pass(tmp_path):
    with pytest.raises(FileNotFoundError, match="--dataset imagenet16-120 needs ImageNet16-120 images"):
        ScoreConfig(data=str(tmp_path / "none"), dataset="ImageNet16-120", archs=(0,), store=tmp_path / "s.sqlite",
                    out=tmp_path / "s.csv", truth="")
    with pytest.raises(ValueError, match="--data digits is scikit-learn's digits, not cifar100 images"):
        ScoreConfig(data="digits", dataset="c100", archs=(0,), store=tmp_path / "s.sqlite", out=tmp_path / "s.csv",
                    truth="")
    with pytest.raises(ValueError, match="unknown dataset 'mnist'"):
        ScoreConfig(data="digits", dataset="mnist", archs=(0,), store=tmp_path / "s.sqlite", out=tmp_path / "s.csv")
    assert not (tmp_path / "s.sqlite").exists()


def test_the_truth_follows_the_dataset(tmp_path, shared_data):
    npz = _npz(tmp_path / "c100.npz")
    cfg = ScoreConfig(data=str(npz), dataset="cifar100", archs=(0,), store=tmp_path / "s.sqlite",
                      out=tmp_path / "s.csv", shared=shared_data)
    assert cfg.truth == "c100_test"
    with pytest.raises(ValueError, match="--truth c10_test is measured on cifar10 but the proxies see cifar100 images: compare with cifar100.s column .c100_test."):
        ScoreConfig(data=str(npz), dataset="cifar100", archs=(0,), store=tmp_path / "s.sqlite",
                    out=tmp_path / "s.csv", shared=shared_data, truth="c10_test")


def test_score_cifar100_as_a_new_user_types_it(tmp_path, shared_data):
    npz = shared_data / "cifar100" / "cifar100_5000_uint8.npz"
    if not npz.is_file():
        pytest.skip("the shared CIFAR-100 file is absent")
    res = CliRunner().invoke(app, ["score", "--dataset", "cifar100", "--data", str(npz), "--archs", "0-3",
                                   "--proxies", "params,synflow", "--store", str(tmp_path / "s.sqlite"),
                                   "--out", str(tmp_path / "s.csv"), "--shared", str(shared_data)])
    assert res.exit_code == 0, res.output
    assert "Spearman vs c100_test" in res.output.replace("\n", " ") or "c100_test" in res.output


def test_search_on_cifar100_reads_its_table_and_reports_every_dataset(tmp_path, shared_data):
    from nasbeff.runs.search import SearchConfig, run_search
    from nasbeff.tables import NB201Table

    cfg = SearchConfig(methods=("rea",), scorers=("benchmark",), dataset="CIFAR-100", report_datasets="all",
                       seeds=2, budget=6000, shared=shared_data, out=tmp_path / "s.csv")
    assert cfg.dataset == "cifar100" and cfg.report_datasets == ("cifar10", "cifar100", "imagenet16-120")
    res = run_search(cfg)
    table = NB201Table(shared_data)
    for r in res.rows[:5]:
        i = r["best_index"]
        assert r["best_test_acc"] == table.column("c100_test", i) == r["best_c100_test"]
        assert r["best_c10_test"] == table.column("c10_test", i) and r["best_in16_test"] == table.column("in16_test", i)
    with open(tmp_path / "s.csv", newline="") as f:
        assert next(csv.reader(f))[-3:] == ["best_c10_test", "best_c100_test", "best_in16_test"]
    # the search saw CIFAR-100's validation accuracy and was charged its training time
    run = res.trajectories[0]
    first = int(run.indices[0])
    assert run.scores[0] == table.metric("cifar100", "x-valid", first)
    with pytest.raises(ValueError, match="naswot_v1 has published values on CIFAR-10 only"):
        SearchConfig(scorers=("naswot_v1",), dataset="imagenet16-120", out=tmp_path / "t.csv")
    with pytest.raises(ValueError, match="need --space nb201"):
        SearchConfig(space="nats-size", dataset="cifar100", out=tmp_path / "t.csv")
