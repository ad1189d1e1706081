"""The early-training loop records per-epoch metrics and beta_eff deterministically."""

from __future__ import annotations

import pytest
import torch

from nasbeff.data import load_digits, to_tensor
from nasbeff.demo import digits_mlp
from nasbeff.probe import attach_probe
from nasbeff.train import TrainConfig, beta_subset, train_with_probe


def _run(seed=0):
    tr, va = load_digits(seed=0)
    xt, yt = to_tensor(tr)
    xv, yv = to_tensor(va)
    model = attach_probe(digits_mlp(seed), num_classes=10, in_features=64, head="head", seed=seed)
    cfg = TrainConfig(epochs=3, lr=0.05, batch_size=64, beta_samples=200, seed=seed)
    return train_with_probe(model, xt, yt, xv, yv, cfg), model


def test_records_and_determinism():
    recs, model = _run()
    assert [r.epoch for r in recs] == [1, 2, 3]
    assert recs[-1].train_loss < recs[0].train_loss
    assert recs[-1].valid_acc > 30.0
    assert all(r.seconds_beta > 0 and r.seconds_train > 0 for r in recs)
    again, _ = _run()
    assert [r.beta_eff for r in recs] == [r.beta_eff for r in again]
    assert [r.valid_acc for r in recs] == [r.valid_acc for r in again]


def test_beta_subset_is_fixed_and_seeded():
    assert torch.equal(beta_subset(1000, 50, 1), beta_subset(1000, 50, 1))
    assert not torch.equal(beta_subset(1000, 50, 1), beta_subset(1000, 50, 2))
    assert len(beta_subset(10, 50, 0)) == 10


def test_nan_loss_is_a_clear_error():
    tr, va = load_digits(seed=0)
    xt, yt = to_tensor(tr)
    xv, yv = to_tensor(va)
    model = attach_probe(digits_mlp(0), num_classes=10, in_features=64, head="head")
    with pytest.raises(FloatingPointError, match="non-finite training loss"):
        train_with_probe(model, xt * float("nan"), yt, xv, yv, TrainConfig(epochs=1))
