"""beta_eff against brute-force references written with plain loops on tiny networks.

Three independent computations must agree in float64: the matrix-free ``nasbeff.core.capacitance``,
the explicit ``nasbeff.core.line_graph`` (vectorised path join / dense Jacobians), and the loops below
(closed formulas entry by entry, or the surrogate's mixed Hessian one column at a time)."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

from nasbeff import beta_eff, capacitance
from nasbeff.core.line_graph import beta_eff_from_graph, line_graph
from nasbeff.core.probe import NCP

D = torch.float64


def beta_loops(P: np.ndarray):
    """(beta, num, den, num_abs, den_abs) of a dense P with plain loops: delta_in = P 1.

    num = 1^T P P 1 = sum_{k,i,j} P_ki P_ij and den = sum_ij P_ij; num_abs and den_abs are the
    sums of the absolute values of those terms (the scale for the 1e-9 agreement)."""
    n = P.shape[0]
    r = [sum(P[i, j] for j in range(n)) for i in range(n)]
    c = [sum(P[i, j] for i in range(n)) for j in range(n)]
    num = sum(c[j] * r[j] for j in range(n))
    den = sum(r)
    r_abs = [sum(abs(P[i, j]) for j in range(n)) for i in range(n)]
    c_abs = [sum(abs(P[i, j]) for i in range(n)) for j in range(n)]
    num_abs = sum(c_abs[j] * r_abs[j] for j in range(n))
    return num / (den + 1e-12), num, den, num_abs, float(np.abs(P).sum())


def assert_agree(fast, P_ref: np.ndarray, tol: float = 1e-9):
    _, num, den, num_abs, den_abs = beta_loops(P_ref)
    assert abs(fast.num - num) <= tol * max(num_abs, 1e-300), (fast.num, num)
    assert abs(fast.den - den) <= tol * max(den_abs, 1e-300), (fast.den, den)


# ---------------------------------------------------------------- bias-free MLP, closed formula

def mlp(sizes, bias=False, seed=0):
    torch.manual_seed(seed)
    mods = []
    for k in range(len(sizes) - 1):
        mods.append(nn.Linear(sizes[k], sizes[k + 1], bias=bias))
        if k < len(sizes) - 2:
            mods.append(nn.ReLU())
    return nn.Sequential(*mods).double()


def mlp_local_P_loops(net: nn.Sequential, x, y) -> np.ndarray:
    """P[(l: j,i), (l+1: k,j)] = sum_n sigma'_j(n) g_k(n) z_i(n), entry by entry (issue formula)."""
    Ws = [m.weight.detach() for m in net if isinstance(m, nn.Linear)]
    zs, outs = [x], []
    h = x
    for k, W in enumerate(Ws):
        a = (h @ W.T).requires_grad_(True) if k == 0 else h @ W.T
        a.retain_grad()
        outs.append(a)
        h = torch.relu(a) if k < len(Ws) - 1 else a
        if k < len(Ws) - 1:
            zs.append(h)
    loss = F.cross_entropy(h, y)
    gs = torch.autograd.grad(loss, outs)
    sizes = [W.numel() for W in Ws]
    offs = np.concatenate([[0], np.cumsum(sizes)])
    P = np.zeros((offs[-1], offs[-1]))
    N = x.shape[0]
    for l in range(len(Ws) - 1):
        J, I = Ws[l].shape
        K = Ws[l + 1].shape[0]
        for j in range(J):
            for i in range(I):
                for k in range(K):
                    total = 0.0
                    for n in range(N):
                        sig = 1.0 if outs[l][n, j] > 0 else 0.0
                        total += sig * float(gs[l + 1][n, k]) * float(zs[l][n, i].detach())
                    P[offs[l] + j * I + i, offs[l + 1] + k * J + j] = total
    return P


def hessian_P_loops(net: nn.Module, x, y) -> np.ndarray:
    """Exact mixed Hessian blocks d2C/dtheta_l dtheta_{l+1}, one column (parameter q) at a time."""
    layers = [m for m in net.modules() if list(m.parameters(recurse=False))]
    params = [[p for p in m.parameters(recurse=False)] for m in layers]
    flat_sizes = [sum(p.numel() for p in ps) for ps in params]
    offs = np.concatenate([[0], np.cumsum(flat_sizes)])
    P = np.zeros((offs[-1], offs[-1]))
    net.eval()
    loss = F.cross_entropy(net(x), y)
    grads = torch.autograd.grad(loss, [p for ps in params for p in ps], create_graph=True)
    per_layer, i = [], 0
    for ps in params:
        per_layer.append(torch.cat([g.reshape(-1) for g in grads[i:i + len(ps)]]))
        i += len(ps)
    for l in range(len(layers) - 1):
        for q in range(flat_sizes[l + 1]):
            col = torch.autograd.grad(per_layer[l + 1][q], params[l], retain_graph=True, allow_unused=True)
            col = torch.cat([(torch.zeros_like(p) if c is None else c).reshape(-1) for c, p in zip(col, params[l])])
            for p_ in range(flat_sizes[l]):
                P[offs[l] + p_, offs[l + 1] + q] = float(col[p_])
    return P


# ------------------------------------------------- generic local surrogate, mixed Hessian by loops

def surrogate_P_loops(fns, thetas, lins, ops, x, y) -> np.ndarray:
    """Local-mode P from the surrogate E(theta_l, theta_{l+1}) = sum_n <g_{l+1}, f_{l+1}(theta_{l+1},
    z_{l+1} + J_l (f_l(theta_l, z_l) - a_l))>, written out for a specific net: ``fns[l](theta, z)``
    are the layer maps on flat parameter vectors, ``ops[l]`` the operations between layers and
    ``lins[l](d, a)`` their linearisation at a. Columns of each block by loops over q."""
    zs, outs = [x], []
    h = x
    live = [t.detach().clone().requires_grad_(True) for t in thetas]
    for l, f in enumerate(fns):
        a = f(live[l], h)
        outs.append(a)
        h = ops[l](a) if l < len(fns) - 1 else a
        if l < len(fns) - 1:
            zs.append(h)
    loss = F.cross_entropy(h, y)
    gs = [g.detach() for g in torch.autograd.grad(loss, outs)]
    sizes = [t.numel() for t in thetas]
    offs = np.concatenate([[0], np.cumsum(sizes)])
    P = np.zeros((offs[-1], offs[-1]))
    for l in range(len(fns) - 1):
        ta = thetas[l].detach().clone().requires_grad_(True)
        tb = thetas[l + 1].detach().clone().requires_grad_(True)
        a0, z0, zn = outs[l].detach(), zs[l].detach(), zs[l + 1].detach()
        u = zn + lins[l](fns[l](ta, z0) - a0, a0)
        E = (gs[l + 1] * fns[l + 1](tb, u)).sum()
        (gb,) = torch.autograd.grad(E, tb, create_graph=True)
        for q in range(tb.numel()):
            (col,) = torch.autograd.grad(gb[q], ta, retain_graph=True, allow_unused=True)
            if col is None:
                continue
            for p_ in range(ta.numel()):
                P[offs[l] + p_, offs[l + 1] + q] = float(col[p_])
    return P


def lin_fn(o, i, bias=True):
    def f(t, z):
        W = t[:o * i].reshape(o, i)
        return z @ W.T + (t[o * i:] if bias else 0)
    return f


def bn_fn(mean, var, eps):
    def f(t, z):
        c = mean.shape[0]
        return (z - mean) / torch.sqrt(var + eps) * t[:c] + t[c:]
    return f


def conv_fn(o, c, k, stride, pad):
    def f(t, z):
        W = t[:o * c * k * k].reshape(o, c, k, k)
        return F.conv2d(z, W, t[o * c * k * k:], stride=stride, padding=pad)
    return f


def relu_lin(d, a):
    return (a > 0).to(d.dtype) * d


def flat_params(m: nn.Module) -> torch.Tensor:
    return torch.cat([p.detach().reshape(-1) for p in m.parameters(recurse=False)])


def randomise_bn(net, seed=1):
    g = torch.Generator().manual_seed(seed)
    for m in net.modules():
        if isinstance(m, nn.modules.batchnorm._BatchNorm):
            with torch.no_grad():
                m.running_mean.copy_(torch.randn(m.num_features, generator=g))
                m.running_var.copy_(torch.rand(m.num_features, generator=g) + 0.5)
                m.weight.copy_(torch.randn(m.num_features, generator=g))
                m.bias.copy_(torch.randn(m.num_features, generator=g))
    return net


# ------------------------------------------------------------------------------------- tests

@pytest.fixture
def batch():
    g = torch.Generator().manual_seed(3)
    return torch.randn(6, 4, generator=g, dtype=D), torch.randint(0, 3, (6,), generator=g)


def test_bias_free_mlp_local_matches_closed_formula_loops(batch):
    x, y = batch
    net = mlp([4, 3, 5, 4, 3])
    P = mlp_local_P_loops(net, x, y)
    fast = capacitance(net, x, y, mode="local")
    assert_agree(fast, P)
    assert fast.beta_eff == pytest.approx(beta_loops(P)[0], rel=1e-9, abs=1e-15)
    lg = line_graph(net, x, y, mode="local")
    np.testing.assert_allclose(lg.P.toarray(), P, rtol=0, atol=1e-12 * np.abs(P).max())
    assert abs(fast.num) > 0 and abs(fast.den) > 0  # the test cannot pass on zeros


def test_bias_free_mlp_hessian_matches_loops(batch):
    x, y = batch
    net = mlp([4, 3, 5, 4, 3])
    P = hessian_P_loops(net, x, y)
    fast = capacitance(net, x, y, mode="hessian")
    assert_agree(fast, P)
    lg = line_graph(net, x, y, mode="hessian")
    np.testing.assert_allclose(lg.P.toarray(), P, rtol=0, atol=1e-12 * np.abs(P).max())
    # hessian blocks are dense: they also link weights that share no neuron
    assert np.count_nonzero(P) > line_graph(net, x, y, mode="local").P.count_nonzero()


def bn_chain():
    torch.manual_seed(2)
    net = nn.Sequential(nn.Linear(4, 5), nn.BatchNorm1d(5), nn.ReLU(), nn.Linear(5, 3), nn.BatchNorm1d(3),
                        nn.ReLU(), nn.Linear(3, 3)).double()
    return randomise_bn(net)


def test_linear_bias_batchnorm_chain_local_and_hessian(batch):
    x, y = batch
    net = bn_chain()
    L = [m for m in net if list(m.parameters())]
    fns = [lin_fn(5, 4), bn_fn(L[1].running_mean, L[1].running_var, L[1].eps), lin_fn(3, 5),
           bn_fn(L[3].running_mean, L[3].running_var, L[3].eps), lin_fn(3, 3)]
    ident = lambda d, a: d  # noqa: E731
    ops = [lambda a: a, torch.relu, lambda a: a, torch.relu]
    lins = [ident, relu_lin, ident, relu_lin]
    P = surrogate_P_loops(fns, [flat_params(m) for m in L], lins, ops, x, y)
    fast = capacitance(net, x, y)
    assert_agree(fast, P)
    assert_agree(capacitance(net, x, y, mode="hessian"), hessian_P_loops(net, x, y))
    lg = line_graph(net, x, y)
    np.testing.assert_allclose(lg.P.toarray(), P, rtol=0, atol=1e-12 * np.abs(P).max())


def small_cnn():
    torch.manual_seed(4)
    return nn.Sequential(nn.Conv2d(2, 3, 3, padding=1), nn.ReLU(), nn.Conv2d(3, 2, 3, stride=2), nn.ReLU(),
                         nn.Flatten(), nn.Linear(8, 4), nn.ReLU(), nn.Linear(4, 3)).double()


def test_small_cnn_local_and_hessian():
    g = torch.Generator().manual_seed(5)
    x = torch.randn(5, 2, 5, 5, generator=g, dtype=D)
    y = torch.randint(0, 3, (5,), generator=g)
    net = small_cnn()
    L = [m for m in net if list(m.parameters())]
    fns = [conv_fn(3, 2, 3, 1, 1), conv_fn(2, 3, 3, 2, 0), lin_fn(4, 8), lin_fn(3, 4)]
    ops = [torch.relu, lambda a: torch.relu(a).flatten(1), torch.relu]
    lins = [relu_lin, lambda d, a: relu_lin(d, a).flatten(1), relu_lin]
    P = surrogate_P_loops(fns, [flat_params(m) for m in L], lins, ops, x, y)
    fast = capacitance(net, x, y)
    assert_agree(fast, P)
    assert abs(fast.num) > 0
    lg = line_graph(net, x, y)
    np.testing.assert_allclose(lg.P.toarray(), P, rtol=0, atol=1e-12 * np.abs(P).max())
    assert_agree(capacitance(net, x, y, mode="hessian"), hessian_P_loops(net, x, y))


def test_cnn_with_pooling_fast_matches_explicit():
    g = torch.Generator().manual_seed(6)
    x = torch.randn(4, 2, 8, 8, generator=g, dtype=D)
    y = torch.randint(0, 3, (4,), generator=g)
    torch.manual_seed(7)
    net = nn.Sequential(nn.Conv2d(2, 3, 3, padding=1, bias=False), nn.BatchNorm2d(3), nn.ReLU(), nn.MaxPool2d(2),
                        nn.Conv2d(3, 4, 3, groups=1), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                        nn.Linear(4, 5), nn.ReLU(), nn.Dropout(0.3), nn.Linear(5, 3)).double()
    randomise_bn(net)
    for mode in ("local", "hessian"):
        fast = capacitance(net, x, y, mode=mode)
        P = line_graph(net, x, y, mode=mode).P.toarray()
        assert_agree(fast, P)


def test_delta_in_and_zero_row_sums_of_the_classifier_block(batch):
    x, y = batch
    net = bn_chain()
    res = capacitance(net, x, y, return_delta_in=True)
    lg = line_graph(net, x, y)
    d_ref = lg.P @ np.ones(lg.P.shape[0])
    np.testing.assert_allclose(res.delta_in.numpy(), d_ref, atol=1e-12 * np.abs(d_ref).max())
    assert res.block_den[-1] == pytest.approx(0.0, abs=1e-14)  # softmax is shift invariant
    last_rows = d_ref[sum(res.layer_sizes[:-2]):sum(res.layer_sizes[:-1])]
    np.testing.assert_allclose(last_rows, 0.0, atol=1e-14)
    assert res.num == pytest.approx(sum(res.layer_num)) and res.den == pytest.approx(sum(res.block_den))


def test_networkx_graph_edge_count_equals_line_graph_formula(batch):
    x, y = batch
    sizes = [4, 3, 5, 4, 3]
    net = mlp(sizes)
    G = line_graph(net, x, y).to_networkx()
    # a hidden neuron j of width n_l joins its n_{l-1} in-weights to its n_{l+1} out-weights
    expected = sum(sizes[k - 1] * sizes[k] * sizes[k + 1] for k in range(1, len(sizes) - 1))
    assert G.number_of_edges() == expected == 4 * 3 * 5 + 3 * 5 * 4 + 5 * 4 * 3
    assert G.number_of_nodes() == sum(sizes[k] * sizes[k + 1] for k in range(len(sizes) - 1))
    # edges are reversed (layer l+1 -> layer l) and carry P's values
    u, v, w = next(iter(G.edges(data="weight")))
    assert u[0] > v[0] or u[0] != v[0]
    assert beta_eff_from_graph(G) == pytest.approx(capacitance(net, x, y).beta_eff, rel=1e-9)
    # with biases: bias j of layer l links to the n_{l+1} out-weights of neuron j
    netb = mlp(sizes, bias=True)
    Gb = line_graph(netb, x, y).to_networkx()
    assert Gb.number_of_edges() == expected + sum(sizes[k] * sizes[k + 1] for k in range(1, len(sizes) - 1))


@settings(max_examples=15, deadline=None)
@given(widths=st.lists(st.integers(1, 5), min_size=3, max_size=4), n=st.integers(1, 6),
       classes=st.integers(2, 4), bias=st.booleans(), seed=st.integers(0, 10_000))
def test_property_fast_equals_explicit_on_random_mlps(widths, n, classes, bias, seed):
    sizes = [3, *widths, classes]
    net = mlp(sizes, bias=bias, seed=seed)
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 3, generator=g, dtype=D)
    y = torch.randint(0, classes, (n,), generator=g)
    for mode in ("local", "hessian"):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # dead ReLUs can zero the denominator
            fast = capacitance(net, x, y, mode=mode)
        assert_agree(fast, line_graph(net, x, y, mode=mode).P.toarray())


def test_float32_agrees_with_float64_and_dtype_option():
    g = torch.Generator().manual_seed(8)
    feats = torch.randn(64, 32, generator=g)
    y = torch.randint(0, 10, (64,), generator=g)
    probe = NCP(32, 10, hidden=(16, 8), seed=1)
    b32 = capacitance(probe, feats, y)
    b64 = capacitance(probe, feats, y, dtype=torch.float64)
    assert b32.num == pytest.approx(b64.num, rel=1e-4, abs=1e-7 * b64.num_abs)
    assert b32.den == pytest.approx(b64.den, rel=1e-4, abs=1e-7)
    assert b32.beta_eff == pytest.approx(b64.beta_eff, rel=1e-3)
    half = capacitance(NCP(32, 10, hidden=(16, 8), seed=1).half(), feats.half(), y)  # upcast to float32
    assert math.isfinite(half.beta_eff)


def test_model_state_untouched_and_modes_restored():
    probe = NCP(8, 3, hidden=(6, 5), seed=2)
    probe.train()
    before = {k: v.clone() for k, v in probe.state_dict().items()}
    x, y = torch.randn(10, 8), torch.randint(0, 3, (10,))
    capacitance(probe, x, y)
    assert [m.training for m in probe.modules()] == [m.training for m in NCP(8, 3, hidden=(6, 5)).train().modules()]
    for k, v in probe.state_dict().items():
        assert torch.equal(v, before[k]), k
    assert all(p.grad is None and not p.requires_grad for p in probe.parameters())
    # dropout is off during beta_eff: two calls agree exactly although the probe is in train mode
    assert beta_eff(probe, x, y) == beta_eff(probe, x, y)


def test_layers_selects_the_probe_inside_a_bigger_model():
    torch.manual_seed(0)
    backbone = nn.Sequential(nn.Conv2d(1, 4, 3), nn.ReLU(), nn.Conv2d(4, 4, 3), nn.ReLU(), nn.AdaptiveAvgPool2d(1),
                             nn.Flatten())
    probe = NCP(4, 3, hidden=(6, 5), seed=3)
    model = nn.Sequential()
    model.add_module("backbone", backbone)
    model.add_module("probe", probe)
    model.double()
    x, y = torch.randn(7, 1, 6, 6, dtype=D), torch.randint(0, 3, (7,))
    with torch.no_grad():
        feats = backbone(x)
    a = capacitance(model, x, y, layers="probe", dtype=D)
    b = capacitance(probe, feats, y, dtype=D)
    assert a.beta_eff == pytest.approx(b.beta_eff, rel=1e-12)
    assert a.layer_names[0] == "probe.0" and len(a.layer_names) == 5
    assert capacitance(model, x, y, layers=probe, dtype=D).beta_eff == pytest.approx(b.beta_eff, rel=1e-12)


# ----------------------------------------------------------------------------- error paths

def test_error_empty_batch_and_bad_labels():
    probe = NCP(4, 3, hidden=(5, 4))
    with pytest.raises(ValueError, match="empty batch"):
        beta_eff(probe, torch.zeros(0, 4), torch.zeros(0, dtype=torch.long))
    with pytest.raises(ValueError, match="labels out of range"):
        beta_eff(probe, torch.randn(3, 4), torch.tensor([0, 1, 3]))
    with pytest.raises(ValueError, match="shape"):
        beta_eff(probe, torch.randn(3, 4), torch.tensor([0, 1]))
    with pytest.raises(ValueError, match="integer class labels"):
        beta_eff(probe, torch.randn(3, 4), torch.tensor([0.0, 1.0, 2.0]))
    with pytest.raises(ValueError, match="mode"):
        beta_eff(probe, torch.randn(3, 4), torch.tensor([0, 1, 2]), mode="exact")


def test_error_non_finite_logits():
    probe = NCP(4, 3, hidden=(5, 4))
    x = torch.randn(3, 4)
    x[1, 2] = float("nan")
    with pytest.raises(ValueError, match="non-finite logits"):
        beta_eff(probe, x, torch.tensor([0, 1, 2]))


def test_error_too_few_layers():
    net = nn.Sequential(nn.Linear(4, 5), nn.ReLU(), nn.Linear(5, 4), nn.ReLU(), nn.Linear(4, 3))
    with pytest.raises(ValueError, match="too few parametrised layers"):
        beta_eff(net, torch.randn(5, 4), torch.randint(0, 3, (5,)))


def test_skip_connection_is_a_dag_and_shared_layer_is_an_error():
    class Skip(nn.Module):
        def __init__(self):
            super().__init__()
            self.a, self.b, self.c, self.d = nn.Linear(4, 4), nn.Linear(4, 4), nn.Linear(4, 4), nn.Linear(4, 3)

        def forward(self, x):
            h = torch.relu(self.a(x))
            h2 = torch.relu(self.b(h)) + h  # skip connection across a layer
            return self.d(torch.relu(self.c(h2)))

    torch.manual_seed(0)
    res = capacitance(Skip(), torch.randn(5, 4), torch.randint(0, 3, (5,)))  # a skip is an edge of G_A now
    assert res.edge_names == (("a", "b"), ("a", "c"), ("b", "c"), ("c", "d")) and math.isfinite(res.beta_eff)

    class Twice(nn.Module):
        def __init__(self):
            super().__init__()
            self.a, self.b, self.c = nn.Linear(4, 4), nn.Linear(4, 4), nn.Linear(4, 3)

        def forward(self, x):
            return self.c(torch.relu(self.b(torch.relu(self.b(torch.relu(self.a(x)))))))

    with pytest.raises(ValueError, match="more than once"):
        beta_eff(Twice(), torch.randn(5, 4), torch.randint(0, 3, (5,)))
    with pytest.raises(ValueError, match="names no submodule"):
        beta_eff(Twice(), torch.randn(5, 4), torch.randint(0, 3, (5,)), layers="nope")


def test_warns_when_denominator_vanishes():
    net = nn.Sequential(nn.Linear(3, 3), nn.ReLU(), nn.Linear(3, 3), nn.ReLU(), nn.Linear(3, 3), nn.ReLU(),
                        nn.Linear(3, 2))
    with torch.no_grad():
        for p in net.parameters():
            p.zero_()
    with warnings.catch_warnings(record=True) as rec:
        warnings.simplefilter("always")
        assert beta_eff(net, torch.randn(4, 3), torch.randint(0, 2, (4,))) == 0.0
    assert any("denominator" in str(w.message) for w in rec)


def test_explicit_builder_rejects_unsupported_layers():
    net = nn.Sequential(nn.Linear(4, 5), nn.LayerNorm(5), nn.ReLU(), nn.Linear(5, 4), nn.ReLU(), nn.Linear(4, 3))
    x, y = torch.randn(5, 4), torch.randint(0, 3, (5,))
    assert math.isfinite(beta_eff(net, x, y))  # the matrix-free path handles any layer
    with pytest.raises(ValueError, match="supports Linear, ConvNd and BatchNormNd"):
        line_graph(net, x, y)


@pytest.mark.parametrize("module,shape", [
    (nn.Linear(5, 4), (3, 5)), (nn.Conv2d(4, 6, 3, stride=2, padding=1, groups=2), (2, 4, 7, 7)),
    (nn.Conv1d(3, 2, 2, dilation=2), (2, 3, 9)), (nn.BatchNorm1d(5), (3, 5)), (nn.BatchNorm2d(3), (2, 3, 4, 4)),
    (nn.LayerNorm(6), (3, 6)), (nn.LayerNorm(6, bias=False), (3, 6)), (nn.PReLU(4), (3, 4))])
def test_param_direction_closed_forms_equal_forward_mode_jvp(module, shape):
    from nasbeff.core.capacitance import param_direction
    from nasbeff.core.graph import Layer

    module = randomise_bn(module.double().eval())
    z = torch.randn(*shape, dtype=D)
    layer = Layer("m", module, tuple(n for n, _ in module.named_parameters()),
                  [p.detach().clone() for p in module.parameters()])
    buffers = dict(module.named_buffers())
    _, ref = torch.func.jvp(lambda *ps: layer.call(z, ps, buffers), tuple(layer.params),
                            tuple(torch.ones_like(p) for p in layer.params))
    torch.testing.assert_close(param_direction(layer, z, buffers), ref, rtol=1e-12, atol=1e-12)
