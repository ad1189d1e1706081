"""KNAS, GradSign and the NTK condition number (ZiCo Table 3's missing rows, issue 24 part 2), by hand
on a bias-free linear model whose per-sample gradients have a closed form, and on an NB201 cell."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from nasbeff import proxies
from nasbeff.proxies.per_sample import per_sample_weight_grads

W = np.array([[0.5, -1.0, 0.25], [-0.3, 0.8, 1.2]])
X = np.array([[1.0, 2.0, -1.0], [0.5, -0.5, 2.0], [-1.5, 1.0, 0.5], [2.0, 0.0, 1.0]])
Y = np.array([0, 1, 1, 0])


def _linear() -> nn.Module:
    net = nn.Linear(3, 2, bias=False)
    with torch.no_grad():
        net.weight.copy_(torch.tensor(W, dtype=torch.float32))
    return net


def _batch():
    return [(torch.tensor(X, dtype=torch.float32), torch.tensor(Y))]


def _loss_grads() -> np.ndarray:
    """Row i: d CE(W x_i, y_i) / dW = (softmax(W x_i) - e_{y_i}) x_i^T, flattened row-major."""
    rows = []
    for x, y in zip(X, Y):
        z = W @ x
        p = np.exp(z - z.max())
        p /= p.sum()
        p[y] -= 1.0
        rows.append(np.outer(p, x).ravel())
    return np.array(rows)


def test_per_sample_gradients_are_the_closed_form():
    g = per_sample_weight_grads(_linear(), *_batch()[0], nn.functional.cross_entropy)
    assert g.shape == (4, 6)
    assert g.numpy() == pytest.approx(_loss_grads(), rel=1e-5, abs=1e-7)
    j = per_sample_weight_grads(_linear(), *_batch()[0], nn.functional.cross_entropy, of="logits")
    assert j.numpy() == pytest.approx(np.hstack([X, X]), rel=1e-6)  # d(sum of logits)/dW: x_i in both rows


def test_knas_is_the_mean_of_the_gradient_gram_matrix():
    g = _loss_grads()
    want = (g @ g.T).mean()
    assert proxies.score("knas", _linear(), _batch()).value == pytest.approx(want, rel=1e-5)


def test_gradsign_sums_the_agreement_of_gradient_signs():
    g = _loss_grads()
    want = np.abs(np.sign(g).sum(axis=0)).sum()
    got = proxies.score("gradsign", _linear(), _batch()).value
    assert got == want and 0 < got <= g.size  # an integer count: at most N per weight


def test_ntk_is_minus_the_condition_number_of_the_empirical_ntk():
    theta = 2.0 * X @ X.T  # <[x_i, x_i], [x_j, x_j]>
    eig = np.linalg.eigvalsh(theta)
    # 4 samples in 3 dimensions: the kernel is singular, so the score is -inf, flagged
    res = proxies.score("ntk", _linear(), _batch())
    assert eig[0] < 1e-9 and res.value == float("-inf") and "singular" in res.flag
    three = [(torch.tensor(X[:3], dtype=torch.float32), torch.tensor(Y[:3]))]
    eig3 = np.linalg.eigvalsh(2.0 * X[:3] @ X[:3].T)
    assert proxies.score("ntk", _linear(), three).value == pytest.approx(-eig3[-1] / eig3[0], rel=1e-4)


def test_knas_and_gradsign_share_one_pass_and_the_model_is_untouched():
    net = _linear()
    before = net.weight.detach().clone()
    got = proxies.score_many(["knas", "gradsign"], net, _batch())
    assert set(got) == {"knas", "gradsign"} and torch.equal(net.weight, before)
    assert proxies.passes(["knas", "gradsign", "ntk"]) == [("knas", "gradsign"), ("ntk",)]
    with pytest.raises(ValueError, match="needs a batch of >= 2 samples"):
        proxies.score("knas", net, [(torch.ones(1, 3), torch.zeros(1, dtype=torch.long))])


def test_on_an_nb201_cell_and_a_cut_off_one():
    from nasbeff.spaces import build_nb201_model, index_to_str

    torch.manual_seed(0)
    x, y = torch.randn(8, 3, 16, 16), torch.randint(0, 10, (8,))
    net = build_nb201_model(index_to_str(6111), C=4, N=1)
    got = proxies.score_many(["knas", "gradsign", "ntk"], net, [(x, y)])
    assert all(np.isfinite(r.value) for r in got.values())
    assert got["knas"].value > 0 and got["ntk"].value < -1 and got["gradsign"].value > 0
    cut = build_nb201_model(index_to_str(10), C=4, N=1)  # NB201 arch 10 is a cut-off cell
    assert proxies.score("ntk", cut, [(x, y)]).value == proxies.CANNOT_SCORE
