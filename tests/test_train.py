"""The early-training loop records per-epoch metrics and beta_eff deterministically."""

from __future__ import annotations

import pytest
import torch

from nasbeff.data.loaders import load_digits, to_tensor
from nasbeff.runs.demo import digits_mlp
from nasbeff.core.probe import attach_probe
from nasbeff.training.loop import EarlyTrainer, TrainConfig, beta_subset, tensor_batches, train_plain, train_with_probe


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


def test_train_config_rejects_bad_values_before_any_work():
    for kw, msg in (({"epochs": 0}, "epochs must be >= 1"), ({"epochs": 5, "schedule_epochs": 3}, "schedule_epochs"),
                    ({"mode": "exact"}, "mode must be one of local, hessian"), ({"placement": "top"}, "placement"),
                    ({"lr": 0.0}, "lr must be > 0"), ({"beta_samples": 0}, "beta_samples")):
        with pytest.raises(ValueError, match=msg):
            TrainConfig(**kw)


def test_plain_training_is_the_same_loop_without_a_probe():
    """train_plain (ground-truth runs) is EarlyTrainer.run without a probe: same numbers as a
    hand-written SGD loop with the same seeded batch order and cosine schedule."""
    import math

    tr, va = load_digits(seed=0)
    xt, yt = to_tensor(tr)
    xv, yv = to_tensor(va)
    cfg = TrainConfig(epochs=2, lr=0.05, batch_size=64, seed=3)
    acc = train_plain(digits_mlp(1), xt, yt, xv, yv, cfg)
    net = digits_mlp(1)
    gen = torch.Generator().manual_seed(3)
    steps = math.ceil(xt.shape[0] / 64)
    opt = torch.optim.SGD(net.parameters(), lr=0.05, momentum=0.9, nesterov=True, weight_decay=5e-4)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: 0.5 * (1 + math.cos(math.pi * min(s / (2 * steps), 1.0))))
    for _ in range(2):
        for xb, yb in tensor_batches(xt, yt, 64, gen):
            loss = torch.nn.functional.cross_entropy(net(xb), yb)
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
    net.eval()
    with torch.no_grad():
        ref = 100.0 * int((net(xv).argmax(1) == yv).sum()) / yv.shape[0]
    assert acc == pytest.approx(ref, abs=1e-9)


def test_trainer_without_probe_has_no_beta():
    model = digits_mlp(0)
    trainer = EarlyTrainer(model, TrainConfig(epochs=1), steps_per_epoch=1)
    with pytest.raises(ValueError, match="no probe"):
        trainer.beta(torch.zeros(4, 64), torch.zeros(4, dtype=torch.long))
    with pytest.raises(ValueError, match="both probe and features"):
        EarlyTrainer(model, TrainConfig(epochs=1), 1, probe=torch.nn.Linear(2, 2))


def test_adam_constant_schedule_and_step_losses():
    """Adam with a constant learning rate (the paper's Keras fine-tuning) and the per-step losses
    (TSE) of every epoch: their count is the number of mini-batches and their weighted mean is the
    epoch's train_loss."""
    tr, va = load_digits(seed=0)
    xt, yt = to_tensor(tr)
    xv, yv = to_tensor(va)
    model = attach_probe(digits_mlp(0), num_classes=10, in_features=64, head="head", seed=0)
    cfg = TrainConfig(epochs=2, lr=1e-3, batch_size=64, beta_samples=64, optimizer="adam", schedule="constant")
    recs = train_with_probe(model, xt, yt, xv, yv, cfg)
    n = xt.shape[0]
    sizes = [64] * (n // 64) + ([n % 64] if n % 64 else [])
    for r in recs:
        assert len(r.step_losses) == len(sizes)
        assert sum(w * v for w, v in zip(sizes, r.step_losses)) / n == pytest.approx(r.train_loss, rel=1e-12)
        assert "step_losses" not in r.metrics()
    assert recs[1].valid_acc > 50.0
    with pytest.raises(ValueError, match="optimizer/schedule"):
        TrainConfig(optimizer="rmsprop")
