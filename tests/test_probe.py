"""The neural capacitance probe: structure, Keras-style init, freezing, head replacement."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from nasbeff import beta_eff, capacitance
from nasbeff.core.probe import NCP, ProbedNet, attach_probe, he_normal_, probe_inputs


def test_structure_default_and_bn_before():
    p = NCP(32, 10)
    kinds = [type(m).__name__ for m in p]
    assert kinds == ["Linear", "BatchNorm1d", "ReLU", "Dropout"] * 2 + ["Linear"]
    assert [m.out_features for m in p if isinstance(m, nn.Linear)] == [256, 128, 10]
    assert all(m.p == 0.4 for m in p if isinstance(m, nn.Dropout))
    q = NCP(32, 10, bn_position="before")
    assert [type(m).__name__ for m in q][:4] == ["BatchNorm1d", "Linear", "ReLU", "Dropout"]
    assert q[0].num_features == 32 and q[4].num_features == 256
    with pytest.raises(ValueError, match="bn_position"):
        NCP(32, 10, bn_position="middle")
    with pytest.raises(ValueError, match="hidden"):
        NCP(32, 10, hidden=())


def test_he_normal_is_truncated_with_target_std_and_seeded():
    w = torch.empty(512, 1024)
    he_normal_(w, torch.Generator().manual_seed(0))
    target = math.sqrt(2 / 1024)
    assert w.std().item() == pytest.approx(target, rel=0.01)
    assert w.abs().max().item() <= 2 * target / 0.87962566103423978 + 1e-7  # truncated at 2 sigma
    assert torch.equal(NCP(16, 3, seed=5)[0].weight, NCP(16, 3, seed=5)[0].weight)
    assert not torch.equal(NCP(16, 3, seed=5)[0].weight, NCP(16, 3, seed=6)[0].weight)
    p = NCP(16, 3)
    assert all(torch.all(m.bias == 0) for m in p if isinstance(m, nn.Linear))
    bn = p[1]
    assert torch.all(bn.weight == 1) and torch.all(bn.running_var == 1) and bn.eps == 1e-3


def test_frozen_during_training_but_differentiable_for_beta_eff():
    torch.manual_seed(0)
    backbone = nn.Sequential(nn.Linear(6, 8), nn.ReLU(), nn.Linear(8, 5), nn.ReLU())
    backbone.add_module("head", nn.Linear(5, 3))
    model = attach_probe(backbone, num_classes=3, in_features=5, head="head", hidden=(7, 6))
    assert isinstance(model.backbone.head, nn.Identity)
    frozen = {k: v.clone() for k, v in model.probe.state_dict().items()}
    opt = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=0.1)
    model.train()
    assert not any(m.training for m in model.probe.modules() if isinstance(m, nn.BatchNorm1d))
    assert all(m.training for m in model.probe.modules() if isinstance(m, nn.Dropout))
    x, y = torch.randn(32, 6), torch.randint(0, 3, (32,))
    before = [p.clone() for p in model.backbone.parameters()]
    for _ in range(3):
        opt.zero_grad()
        nn.functional.cross_entropy(model(x), y).backward()
        opt.step()
    for k, v in model.probe.state_dict().items():
        assert torch.equal(v, frozen[k]), f"probe {k} changed"
    assert any(not torch.equal(a, b) for a, b in zip(before, model.backbone.parameters()))
    with pytest.raises(ValueError, match="frozen"):
        model.probe.requires_grad_(True)
    feats, labels = probe_inputs(model, x, y)
    assert feats.shape == (32, 5) and model.training
    assert math.isfinite(beta_eff(model.probe, feats, labels))
    assert capacitance(model.probe, feats, labels).layer_sizes == (5 * 7 + 7, 14, 7 * 6 + 6, 12, 6 * 3 + 3)


def test_probed_net_errors():
    with pytest.raises(ValueError, match="head"):
        ProbedNet(nn.Linear(3, 3), NCP(3, 2))
    with pytest.raises(ValueError, match="no head module"):
        ProbedNet(nn.Sequential(nn.Linear(3, 3)), NCP(3, 2), head="fc")
    net = ProbedNet(nn.Sequential(nn.Linear(3, 4), nn.Linear(4, 2)), NCP(3, 2), head="1")
    with pytest.raises(ValueError, match="features have 4 dims"):
        net(torch.randn(2, 3))
