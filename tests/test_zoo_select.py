"""Model selection: the zoo (every backbone builds at 32 x 32, sizes spread, user weights load or fail
with one line), zoo pretrain (deterministic, resumable), select (end to end on a tiny target, resume
after an interruption without recording an epoch twice), config validation and the Table-1 function."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from typer.testing import CliRunner

from nasbeff.selection import zoo
from nasbeff.cli import app
from nasbeff.core.probe import attach_probe
from nasbeff.runs.pretrain import PretrainConfig, run_pretrain
from nasbeff.runs.select import SelectConfig, run_select
from nasbeff.selection import load_target, selection_table
from nasbeff.store import ResultStore, StoreError

runner = CliRunner()
TINY_ZOO = ("vgg_tiny_bn", "resnet8", "squeezenet")


def test_every_zoo_backbone_builds_and_runs_at_32px_with_its_feature_dim():
    assert len(zoo.ZOO) >= 12 and len({e.family for e in zoo.ZOO.values()}) >= 8
    x = torch.randn(2, 3, 32, 32)
    for name in zoo.ZOO:
        torch.manual_seed(0)
        net = zoo.build(name, 5).eval()
        assert net(x).shape == (2, 5), name
        assert net.forward_features(x).shape == (2, net.feature_dim), name
        assert all(m.momentum == 0.1 for m in net.modules() if isinstance(m, torch.nn.BatchNorm2d)), name
        probed = attach_probe(net, 3, net.feature_dim, head="head").eval()
        assert probed(x).shape == (2, 3), name
    params = [e.params() for e in zoo.ZOO.values()]
    assert max(params) / min(params) >= 10


def _torchvision_layout(net: zoo.ZooNet, attr: str) -> dict:
    return {(attr + k[4:] if k.startswith("head") else k[5:]): v for k, v in net.state_dict().items()}


@pytest.mark.parametrize("name,attr", [("resnet8", "fc"), ("squeezenet", "classifier"), ("mnasnet", "classifier")])
def test_user_weights_round_trip_in_both_layouts(tmp_path, name, attr):
    """Also from plain dicts, which carry no module versions (pre-training writes one; torchvision's
    MNASNet refused it: 'version should be set to 1 or 2 instead of None')."""
    torch.manual_seed(1)
    net = zoo.build(name, 7).eval()
    x = torch.randn(3, 3, 32, 32)
    for layout, sd in (("nasbeff", net.state_dict()), ("nasbeff plain dict", dict(net.state_dict())),
                       ("torchvision", _torchvision_layout(net, attr))):
        path = tmp_path / f"{layout}.pt"
        torch.save(sd, path)
        loaded = zoo.load_weights(name, path).eval()
        assert loaded.head is not None and torch.equal(loaded(x), net(x)), layout


@pytest.mark.slow
def test_torchvision_imagenet_definition_loads_its_own_state_dict(tmp_path):
    import torchvision

    tv = torchvision.models.squeezenet1_1(num_classes=1000).eval()
    torch.save(tv.state_dict(), tmp_path / "sq.pth")
    net = zoo.load_weights("tv:squeezenet1_1", tmp_path / "sq.pth").eval()
    assert zoo.entry("tv:squeezenet1_1").input_size == 224 and net.feature_dim == 512
    x = torch.randn(2, 3, 224, 224)
    ref = torch.relu(tv.classifier[1](tv.features(x).mean((2, 3), keepdim=True))).flatten(1)  # pool first
    assert torch.allclose(net(x), ref, atol=1e-4)


def test_bad_weight_files_fail_with_one_line_naming_the_file(tmp_path):
    torch.manual_seed(0)
    sd = zoo.build("resnet8", 5).state_dict()
    wrong = tmp_path / "wrong_keys.pt"
    torch.save({k: v for k, v in sd.items() if not k.startswith("body.conv1")}, wrong)
    with pytest.raises(ValueError, match=r"wrong_keys\.pt: not weights of resnet8 \(missing \['body\.conv1"):
        zoo.load_weights("resnet8", wrong)
    other = tmp_path / "vgg.pt"
    torch.save(zoo.build("vgg_tiny_bn", 5).state_dict(), other)
    with pytest.raises(ValueError, match=r"vgg\.pt: not weights of resnet8"):
        zoo.load_weights("resnet8", other)
    junk = tmp_path / "junk.pt"
    junk.write_bytes(b"not a torch file")
    with pytest.raises(ValueError, match=r"junk\.pt: not a readable torch state_dict"):
        zoo.load_weights("resnet8", junk)
    with pytest.raises(FileNotFoundError, match="nowhere.pt"):
        zoo.load_weights("resnet8", tmp_path / "nowhere.pt")
    with pytest.raises(ValueError, match="unknown zoo model 'resnet9'"):
        zoo.entry("resnet9")


def _pretrain(data: Path, out: Path, **kw) -> dict:
    cfg = PretrainConfig(data=data, models=kw.pop("models", TINY_ZOO), out=out, epochs=1, train_size=40, **kw)
    return run_pretrain(cfg)


@pytest.fixture(scope="module")
def tiny_zoo(tiny_cifar, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("zoo")
    _pretrain(tiny_cifar, out)
    return out


@pytest.mark.slow
def test_pretrain_is_deterministic_resumable_and_refuses_another_config(tiny_cifar, tiny_zoo, tmp_path):
    again = _pretrain(tiny_cifar, tmp_path / "again", models=("resnet8",))
    first = run_pretrain(PretrainConfig(data=tiny_cifar, models=TINY_ZOO, out=tiny_zoo, epochs=1, train_size=40))
    assert first.trained == 0  # resumed: every backbone in the manifest already
    row = {r["name"]: r for r in first.rows}["resnet8"]
    assert again.rows[0]["sha256"] == row["sha256"] and again.rows[0]["source_test_acc"] == row["source_test_acc"]
    assert row["train_images"] == 40 and row["test_images"] == 10 and row["params"] == zoo.ZOO["resnet8"].params()
    assert zoo.file_sha256(tiny_zoo / "resnet8.pt") == row["sha256"]
    with pytest.raises(ValueError, match="pre-trained with another config"):
        _pretrain(tiny_cifar, tiny_zoo, lr=0.01)


@pytest.mark.slow
def test_pretrain_trains_a_changed_backbone_again_and_applies_its_own_recipe(tiny_cifar, tiny_zoo, tmp_path):
    import json
    import shutil

    zoo_dir = tmp_path / "zoo"
    shutil.copytree(tiny_zoo, zoo_dir)
    man = json.loads((zoo_dir / "manifest.json").read_text())
    man["models"]["resnet8"]["definition"] = "an older definition"
    (zoo_dir / "manifest.json").write_text(json.dumps(man))
    res = run_pretrain(PretrainConfig(data=tiny_cifar, models=TINY_ZOO, out=zoo_dir, epochs=1, train_size=40))
    assert res.trained == 1 and {r["name"]: r for r in res.rows}["resnet8"]["definition"] == zoo.ZOO["resnet8"].definition
    sq = _pretrain(tiny_cifar, tmp_path / "sq", models=("squeezenet",)).rows[0]
    assert sq["recipe"] == {"optimizer": "adam", "lr": 1e-3} and sq["source_test_acc"] >= 0
    assert not any(isinstance(m, torch.nn.ReLU) for m in zoo.build("squeezenet").head.modules())  # logits can be < 0


def _select_cfg(zoo_dir: Path, tmp_path: Path, **kw) -> SelectConfig:
    base = dict(zoo=zoo_dir, target="digits", train_size=60, valid_size=30, test_size=60, epochs=4, predict_at=(3, 4),
                seeds=(0, 1), beta_samples=32, store=tmp_path / "sel.sqlite", out=tmp_path / "sel.csv", n_boot=50)
    return SelectConfig(**{**base, **kw})


@pytest.mark.slow
def test_select_end_to_end_resumes_after_an_interruption_without_training_twice(tiny_zoo, tmp_path, monkeypatch):
    cfg = _select_cfg(tiny_zoo, tmp_path)
    calls = {"n": 0}
    original = ResultStore.record_epoch

    def dies_on_the_sixth(self, *a, **k):
        calls["n"] += 1
        if calls["n"] == 6:  # second unit, epoch 2: checkpointed, then "killed" before the commit
            raise KeyboardInterrupt
        return original(self, *a, **k)

    monkeypatch.setattr(ResultStore, "record_epoch", dies_on_the_sixth)
    with pytest.raises(KeyboardInterrupt):
        run_select(cfg)
    monkeypatch.setattr(ResultStore, "record_epoch", original)
    res = run_select(cfg)
    with ResultStore(cfg.store) as st:
        rows = [r for r in st.rows() if r.key.scorer == "select"]
        assert all(r.n_writes == 1 for r in st.rows())  # nothing recorded twice
    per_unit = {}
    for r in rows:
        per_unit.setdefault((r.key.arch, r.key.seed), []).append(r.epoch)
    assert len(per_unit) == 6 and all(sorted(e) == [1, 2, 3, 4] for e in per_unit.values())
    assert not list((tmp_path / "checkpoints").rglob("*.pt"))
    assert [r["model"] for r in res.rows] == sorted(TINY_ZOO)  # manifest order
    for row in res.rows:
        mine = {r.key.seed: r.metrics for r in rows if r.key.arch == row["model"] and r.epoch == 4}
        assert row["true_acc"] == pytest.approx(np.mean([m["test_acc"] for m in mine.values()]))
        assert row["lsv_4"] == pytest.approx(np.mean([m["valid_acc"] for m in mine.values()]))
        assert row["true_acc_s1"] == mine[1]["test_acc"]
        for col in ("beff_pred_3", "beff_pred_4", "bsv_3", "tse_3", "svr_3", "cl_4", "lce_4", "logme", "leep", "nce",
                    "seconds_beff_3", "source_acc", "params"):
            assert col in row and row[col] is not None, col
        assert math.isfinite(row["logme"]) and row["leep"] <= 0 and row["nce"] <= 0
    assert {t["method"] for t in res.table} >= {"beff_pred_3", "lsv_4", "logme"}
    assert [p["epochs"] for p in res.paired] == [3, 4] and all(p.exists() for p in res.figures)
    assert cfg.out.read_text().splitlines()[0].startswith("model,family,params,source_acc,true_acc")


@pytest.mark.slow
def test_select_results_file_resumes_a_fresh_checkout_without_training(tiny_zoo, tmp_path, monkeypatch):
    """--results: a time-limited chunk commits its finished runs; a checkout without the store
    trains only what the file lacks, and the rows equal an uninterrupted run's."""
    from nasbeff.runs import select as select_run

    committed = tmp_path / "runs.csv"
    first = run_select(_select_cfg(tiny_zoo, tmp_path / "a", seeds=(0,), results=committed))
    lines = committed.read_text().splitlines()
    assert lines[0] == "space,arch,dataset,scorer,config_hash,seed,epoch,metrics"
    assert len(lines) == 1 + 3 * 4 + 3  # 3 models x 4 epochs, plus the 3 transfer scores
    trained: list = []
    call = select_run.SelectJob.__call__
    monkeypatch.setattr(select_run.SelectJob, "__call__", lambda self, unit: (trained.append(unit), call(self, unit))[1])
    again = run_select(_select_cfg(tiny_zoo, tmp_path / "b", seeds=(0,), results=committed))
    assert trained == [] and [list(r) for r in again.rows] == [list(r) for r in first.rows]
    for a, b in zip(again.rows, first.rows):
        assert all(a[k] == b[k] or (a[k] != a[k] and b[k] != b[k]) for k in a), a["model"]  # NaN == NaN here
    with ResultStore(tmp_path / "b" / "sel.sqlite") as st:
        assert st.count(done=True) == 3 * 4 + 3
    bad = tmp_path / "bad.csv"
    bad.write_text("model,acc\nx,1\n")
    with ResultStore(tmp_path / "c.sqlite") as st, pytest.raises(StoreError, match="lacks the column"):
        st.import_done(bad)


@pytest.mark.slow
def test_select_without_truth_ranks_from_the_first_epochs(tiny_zoo, tmp_path):
    cfg = _select_cfg(tiny_zoo, tmp_path, truth=False, models=("resnet8", "vgg_tiny_bn"), seeds=(0,))
    res = run_select(cfg)
    assert cfg.run_epochs == 4 and not res.table and "true_acc" not in res.rows[0]
    preds = [r["beff_pred_4"] for r in res.rows]
    assert preds == sorted(preds, reverse=True)


@pytest.mark.parametrize("kw,msg", [
    (dict(target="nope"), "--target must be one of"),
    (dict(predict_at=(2, 4)), "--predict-at epochs must lie in 3..--epochs"),
    (dict(predict_at=(5,)), "--predict-at epochs must lie in 3..--epochs \\(4\\)"),
    (dict(seeds=(0, 0)), "--seeds must be distinct"),
    (dict(train_size=1200, valid_size=300), "exceed the 1,347 training images of digits"),
    (dict(beta_samples=100), "--beta-samples 100 exceeds the 60 training images"),
    (dict(models=("resnet8", "vgg_tiny_bn")), "needs at least 3 models"),
    (dict(models=("resnet8", "nope")), "unknown --models 'nope'"),
    (dict(target="cifar10-5to9"), "needs --data"),
    (dict(lr=0.0), "--lr must be > 0"),
])
def test_select_config_rejects_bad_values_before_any_data(tiny_zoo, tmp_path, kw, msg):
    with pytest.raises((ValueError, FileNotFoundError), match=msg):
        _select_cfg(tiny_zoo, tmp_path, **kw)


def test_select_config_needs_a_manifest_and_pretrain_config_checks_its_values(tmp_path, tiny_cifar):
    with pytest.raises(FileNotFoundError, match="no zoo manifest"):
        _select_cfg(tmp_path / "nozoo", tmp_path)
    with pytest.raises(ValueError, match="unknown zoo model 'resnet9'"):
        PretrainConfig(data=tiny_cifar, models=("resnet9",))
    with pytest.raises(ValueError, match="--train-size 30000 is not in 1..25,000"):
        PretrainConfig(data=tiny_cifar, train_size=30_000)
    with pytest.raises(ValueError, match="^--epochs must be >= 1, got 0$"):
        PretrainConfig(data=tiny_cifar, epochs=0)


def test_digits_target_is_upsampled_to_32px_rgb_with_disjoint_splits():
    d = load_target("digits", None)
    assert d.train.images.shape[1:] == (32, 32, 3) and d.num_classes == 10
    assert (len(d.train), len(d.valid), len(d.test)) == (1047, 300, 450)
    assert np.array_equal(d.train.images[..., 0], d.train.images[..., 2])


def test_digits_noisy_target_is_a_fixed_svhn_like_shift_with_a_larger_test_set():
    from nasbeff.selection import load_target

    a, b = load_target("digits-noisy", None), load_target("digits-noisy", None)
    assert [len(s) for s in (a.train, a.valid, a.test)] == [398, 300, 1099]  # 1,797 digits in all
    assert a.train.images.shape[1:] == (32, 32, 3) and a.num_classes == 10
    for x, y in zip((a.train, a.valid, a.test), (b.train, b.valid, b.test)):
        assert np.array_equal(x.images, y.images)  # fixed, not an augmentation
    rgb = a.test.images.astype(float)
    assert (rgb[..., 0] != rgb[..., 1]).mean() > 0.5  # coloured, not grey
    clean = load_target("digits", None)  # the first 450 test images are the same held-out digits, shifted
    assert np.array_equal(a.test.labels[:450], clean.test.labels)
    assert np.abs(a.test.images[:450].astype(int) - clean.test.images.astype(int)).mean() > 30


def test_selection_table_on_made_up_rows():
    truth = np.arange(8.0)
    rows = [{"model": f"m{i}", "true_acc": truth[i], "beff_pred_5": truth[i] * 2 + 1,
             "lsv_5": [0, 1, 2, 3, 4, 5, 7, 6][i], "logme": -truth[i], "leep": 0.0 + (i % 2), "nce": float(i % 3)}
            for i in range(8)]
    table, paired = selection_table(rows, (5,), n_boot=200)
    rho = {t["method"]: t["spearman"] for t in table}
    assert rho["beff_pred_5"] == pytest.approx(1.0) and rho["logme"] == pytest.approx(-1.0)
    assert rho["lsv_5"] == pytest.approx(1 - 6 * 2 / (8 * 63))
    assert [t["method"] for t in table] == ["beff_pred_5", "lsv_5", "logme", "leep", "nce"]
    (p,) = paired
    assert p["best_baseline"] == "lsv_5" and p["diff"] == pytest.approx(6 * 2 / (8 * 63))
    assert p["diff_lo"] <= p["diff"] <= p["diff_hi"]


def test_cli_zoo_list_and_one_line_errors(tmp_path):
    res = runner.invoke(app, ["zoo", "list"], env={"COLUMNS": "200"})
    assert res.exit_code == 0 and "14 backbones, 12 families" in res.output and "convnext" in res.output
    res = runner.invoke(app, ["select", "--target", "nope", "--zoo", str(tmp_path)])
    assert res.exit_code == 2 and "error: --target must be one of" in res.output
    bad = tmp_path / "c.json"
    bad.write_text("{")
    res = runner.invoke(app, ["select", "--config", str(bad)])
    assert res.exit_code == 2 and "not a readable JSON file" in res.output
    bad.write_text('{"select": {"epochs": 3, "epoch": 4, "why": "a note"}}')
    res = runner.invoke(app, ["select", "--config", str(bad), "--target", "digits", "--zoo", str(tmp_path)])
    assert res.exit_code == 2 and "unknown key(s) epoch (known: zoo, models" in res.output
    assert "Traceback" not in res.output


def test_the_committed_experiment_config_is_valid_for_both_commands(tiny_cifar, tiny_zoo, tmp_path):
    import json

    from nasbeff.cli.model_selection import _make, _settings

    path = Path(__file__).resolve().parents[1] / "experiments" / "model_selection" / "config.json"
    pre = PretrainConfig(**_settings(path, "pretrain", data=tiny_cifar, out=tmp_path / "zoo"))
    assert (pre.epochs, pre.train_size, pre.workers) == (8, 10_000, 2)
    targets = json.loads(path.read_text())["targets"]
    assert set(targets) == {"cifar10-5to9", "digits", "digits-noisy"}
    for target in targets:  # every key of the file is one SelectConfig knows (or a note)
        cfg = _make(SelectConfig, _settings(path, "select", target, target=target, data=tiny_cifar, zoo=tiny_zoo,
                                            store=tmp_path / "s.sqlite", out=tmp_path / "s.csv"), path)
        assert (cfg.epochs, cfg.predict_at, cfg.seeds, cfg.batch_size, cfg.lr) == (30, (5, 10), (0, 1, 2), 64, 1e-3)
        assert cfg.augment is False and cfg.truth is True and cfg.results.name.startswith("runs_")


def test_an_image_folder_is_a_target_resized_to_the_image_size(tiny_cifar, tmp_path):
    d = load_target(str(tiny_cifar), None, valid_size=20, image_size=16)
    assert d.name == tiny_cifar.name and d.num_classes == 10
    assert (len(d.train), len(d.valid), len(d.test)) == (60, 20, 20) and d.train.images.shape[1:] == (16, 16, 3)
    flat = tmp_path / "flat"
    for c in ("a", "b"):
        (flat / c).mkdir(parents=True)
        for k in range(5):
            Image.fromarray(np.full((40, 30, 3), 60 * k, dtype=np.uint8)).save(flat / c / f"{k}.png")
    d = load_target(str(flat), None, valid_size=2)
    assert d.train.classes == ("a", "b")
    assert len(d.train) + len(d.valid) + len(d.test) == 10 and d.test.images.shape[1:] == (32, 32, 3)
