"""Tests for nasbeff.proxies: each proxy against a brute-force definition written differently,
error paths, degenerate models and the registry."""

from __future__ import annotations

import copy
import math
import sys

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from nasbeff import proxies as P
from nasbeff.proxies import loss_gradients as LG
from nasbeff.proxies.zico import split_batch

torch.set_num_threads(1)


# ------------------------------------------------------------------------------------------
# small nets
# ------------------------------------------------------------------------------------------
def mlp(d_in: int = 6, h: int = 8, d_out: int = 3, bias: bool = True) -> nn.Sequential:
    return nn.Sequential(
        nn.Flatten(), nn.Linear(d_in, h, bias=bias), nn.ReLU(), nn.Linear(h, h, bias=bias), nn.ReLU(),
        nn.Linear(h, d_out, bias=bias),
    )


class TinyCNN(nn.Module):
    def __init__(self, bn: bool = True) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 4, 3, padding=1, bias=not bn)
        self.bn1 = nn.BatchNorm2d(4) if bn else nn.Identity()
        self.relu1 = nn.ReLU()
        self.conv2 = nn.Conv2d(4, 5, 3, padding=1, bias=not bn)
        self.bn2 = nn.BatchNorm2d(5) if bn else nn.Identity()
        self.relu2 = nn.ReLU()
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(5, 3)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return self.relu2(self.bn2(self.conv2(self.relu1(self.bn1(self.conv1(x))))))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.pool(self.features(x)).flatten(1))


class ConstantOut(nn.Module):
    """Output independent of the input (like an NB201 cut-off cell): x * 0 then a head."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3, padding=1, bias=False)
        self.relu = nn.ReLU()
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(4, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.pool(self.relu(self.conv(x)).mul(0.0)).flatten(1))


def data(n: int = 8, shape: tuple[int, ...] = (6,), classes: int = 3, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn((n, *shape), generator=g), torch.randint(0, classes, (n,), generator=g)


def img_data(n: int = 6, seed: int = 0):
    return data(n, (3, 6, 6), 3, seed)


def linear_weights(model: nn.Module) -> list[torch.Tensor]:
    return [m.weight for m in model.modules() if isinstance(m, (nn.Linear, nn.Conv2d))]


# ------------------------------------------------------------------------------------------
# registry
# ------------------------------------------------------------------------------------------
EXPECTED = {"naswot", "naswot_v1", "jacov", "zico", "synflow", "synflow_bn", "snip", "grad_norm", "grasp",
            "fisher", "params", "flops", "zen", "meco", "plain"}


def test_registry_lists_all_proxies():
    assert EXPECTED <= set(P.available())
    assert P.available() == sorted(P.available())
    assert P.get("naswot_v1") is P.get("jacov")


def test_registry_unknown_and_duplicate():
    with pytest.raises(KeyError, match="unknown proxy 'nope'.*naswot"):
        P.get("nope")
    with pytest.raises(KeyError):
        P.score("nope", mlp(), [data()])
    with pytest.raises(ValueError, match="already registered"):
        P.register("snip")(lambda m, b, l: 0.0)
    with pytest.raises(ValueError):
        P.register("")


def test_register_custom_proxy_and_score_result():
    @P.register("_test_const")
    def const(model, batches, loss_fn, k: float = 2.0):
        return k * len(batches), "why"

    try:
        r = P.score("_test_const", mlp(), [data(), data()], k=3.0)
        assert isinstance(r, P.ScoreResult)
        assert (r.value, r.name, r.flag) == (6.0, "_test_const", "why")
        assert r.seconds >= 0 and not r.ok
    finally:
        P._REGISTRY.pop("_test_const")


def test_score_validates_batches_and_accepts_bare_pair():
    m = mlp()
    x, y = data()
    assert P.score("snip", m, (x, y)).value == pytest.approx(P.score("snip", m, [(x, y)]).value)
    with pytest.raises(ValueError, match="empty"):
        P.score("snip", m, [])
    with pytest.raises(ValueError, match=r"\(x, y\) pair"):
        P.score("snip", m, [x])
    with pytest.raises(ValueError, match="rows"):
        P.score("snip", m, [(x, y[:3])])
    with pytest.raises(ValueError, match="nn.Module"):
        P.score("snip", lambda t: t, [(x, y)])


def test_model_is_not_modified():
    m = TinyCNN()
    before = copy.deepcopy(m.state_dict())
    x, y = img_data()
    for name in ["snip", "grasp", "fisher", "naswot", "jacov", "synflow", "synflow_bn", "zen", "meco", "flops"]:
        P.score(name, m, [(x, y)])
    P.score("zico", m, split_batch(x, y, 2))
    after = m.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)
    assert m.training


# ------------------------------------------------------------------------------------------
# naswot / jacov
# ------------------------------------------------------------------------------------------
def test_naswot_matches_pairwise_hamming_loops():
    m = mlp(6, 8)
    m.train()
    x, y = data(5)
    codes = []
    h = x
    for layer in m:  # activation patterns of each ReLU, collected by hand
        h = layer(h)
        if isinstance(layer, nn.ReLU):
            codes.append((h > 0).flatten(1))
    c = torch.cat(codes, 1).numpy()
    n, units = c.shape
    K = np.zeros((n, n))
    for i in range(n):
        for j in range(n):
            K[i, j] = units - sum(c[i, u] != c[j, u] for u in range(units))
    sign, ref = np.linalg.slogdet(K)
    r = P.score("naswot", m, [(x, y)])
    if sign > 0:
        assert r.value == pytest.approx(ref, rel=1e-10)
        assert r.flag is None
    else:  # pragma: no cover - depends on the random net
        assert r.value == -math.inf


def test_naswot_errors_and_singular_kernel():
    m = mlp()
    x, y = data(4)
    with pytest.raises(ValueError, match=">= 2 samples"):
        P.score("naswot", m, [(x[:1], y[:1])])
    r = P.score("naswot", m, [(x[:1].repeat(3, 1), y[:3])])  # identical samples -> singular K
    assert r.value == -math.inf and "singular" in r.flag
    with pytest.raises(ValueError, match="no nn.ReLU"):
        P.score("naswot", nn.Sequential(nn.Linear(6, 3)), [(x, y)])


def test_jacov_matches_per_sample_loop():
    m = mlp(6, 16)
    x, y = data(7)
    rows = []
    for i in range(x.shape[0]):  # one sample at a time (no BN, so samples are independent)
        xi = x[i : i + 1].clone().requires_grad_(True)
        m(xi).sum().backward()
        rows.append(xi.grad.flatten().double().numpy())
    J = np.stack(rows)
    Jc = J - J.mean(1, keepdims=True)
    cov = Jc @ Jc.T
    corr = cov / np.sqrt(np.outer(np.diag(cov), np.diag(cov)))
    lam = np.real(np.linalg.eig(corr)[0])
    ref = -np.sum(np.log(lam + 1e-5) + 1.0 / (lam + 1e-5))
    for name in ("jacov", "naswot_v1"):
        assert P.score(name, m, [(x, y)]).value == pytest.approx(ref, rel=1e-6)
    with pytest.raises(ValueError, match=">= 2 samples"):
        P.score("jacov", m, [(x[:1], y[:1])])


# ------------------------------------------------------------------------------------------
# gradient-based proxies
# ------------------------------------------------------------------------------------------
def _grads(m: nn.Module, x, y):
    m.zero_grad()
    F.cross_entropy(m(x), y).backward()
    return [(w.detach(), w.grad.detach()) for w in linear_weights(m)]


def test_snip_grad_norm_plain_match_backward_grads():
    m = TinyCNN()
    x, y = img_data()
    ref_m = copy.deepcopy(m).train()
    wg = _grads(ref_m, x, y)
    snip = sum(float((w * g).abs().sum()) for w, g in wg)
    gn = sum(math.sqrt(float((g**2).sum())) for _w, g in wg)
    plain = sum(float((w * g).sum()) for w, g in wg)
    assert P.score("snip", m, [(x, y)]).value == pytest.approx(snip, rel=1e-5)
    assert P.score("grad_norm", m, [(x, y)]).value == pytest.approx(gn, rel=1e-5)
    assert P.score("plain", m, [(x, y)]).value == pytest.approx(plain, rel=1e-4, abs=1e-7)


def test_loss_gradient_group_is_one_pass_with_the_values_of_separate_calls():
    m = TinyCNN()
    x, y = img_data()
    names = ["snip", "grad_norm", "plain", "fisher"]
    assert P.passes([*names, "meco"]) == [tuple(names), ("meco",)]
    alone = {n: P.score(n, m, [(x, y)]).value for n in names}
    calls = []
    real = LG.loss_gradients

    def counted(*a, **k):
        calls.append(1)
        return real(*a, **k)

    with pytest.MonkeyPatch.context() as mp:
        for n in names:
            mp.setitem(P._GROUP_OF, n, counted)
        res = P.score_many(names, m, [(x, y)], options={"fisher": {"fan_in_weighting": False}})
    assert len(calls) == 1
    assert {n: res[n].value for n in names[:3]} == {n: alone[n] for n in names[:3]}  # exactly the same numbers
    assert res["fisher"].value == P.score("fisher", m, [(x, y)], fan_in_weighting=False).value != alone["fisher"]
    assert len({res[n].seconds for n in names}) == 1  # equal shares of the one call


def test_grasp_matches_full_hessian():
    torch.manual_seed(1)
    m = mlp(4, 5, 3, bias=False)
    x, y = data(6, (4,))
    ws = [p for p in m.parameters()]
    shapes = [w.shape for w in ws]
    sizes = [w.numel() for w in ws]

    def loss_of(flat: torch.Tensor) -> torch.Tensor:
        parts = torch.split(flat, sizes)
        h = x
        for k, (p, s) in enumerate(zip(parts, shapes)):
            h = h @ p.view(s).T
            if k < len(shapes) - 1:
                h = torch.relu(h)
        return F.cross_entropy(h, y)

    flat = torch.cat([w.detach().flatten() for w in ws]).double()
    x = x.double()
    H = torch.autograd.functional.hessian(loss_of, flat)
    g = torch.autograd.functional.jacobian(loss_of, flat)
    ref = float(-(flat * (H @ g)).sum())
    assert P.score("grasp", m.double(), [(x, y)]).value == pytest.approx(ref, rel=1e-8, abs=1e-12)


def test_fisher_matches_explicit_activation_gradients():
    m = TinyCNN()
    x, y = img_data()
    net = copy.deepcopy(m).train()
    acts = {}
    h1 = net.conv1(x)
    h1.retain_grad()
    h2 = net.conv2(net.relu1(net.bn1(h1)))
    h2.retain_grad()
    feats = net.pool(net.relu2(net.bn2(h2))).flatten(1)
    h3 = net.fc(feats)
    h3.retain_grad()
    F.cross_entropy(h3, y).backward()
    acts = [(h1, net.conv1), (h2, net.conv2), (h3, net.fc)]
    ref = ref_plain = 0.0
    for a, layer in acts:
        for c in range(a.shape[1]):
            vals = []
            for n in range(a.shape[0]):
                vals.append(float((a[n, c] * a.grad[n, c]).detach().sum()))
            f_c = 0.5 * np.mean(np.square(vals))
            ref += f_c * int(np.prod(layer.weight.shape[1:]))
            ref_plain += f_c
    assert P.score("fisher", m, [(x, y)]).value == pytest.approx(ref, rel=1e-5)
    assert P.score("fisher", m, [(x, y)], fan_in_weighting=False).value == pytest.approx(ref_plain, rel=1e-5)


def test_zico_matches_numpy_formula():
    m = TinyCNN()
    x, y = img_data(8)
    batches = split_batch(x, y, 3)
    net = copy.deepcopy(m).train()
    per_layer = {i: [] for i in range(3)}
    for xb, yb in batches:
        for i, (_w, g) in enumerate(_grads(net, xb, yb)):
            per_layer[i].append(g.flatten().double().numpy())
    ref = 0.0
    for gs in per_layer.values():
        G = np.array(gs)
        sd, mu = G.std(0), np.abs(G).mean(0)
        nz = sd != 0
        ref += math.log(np.sum(mu[nz] / sd[nz]))
    assert P.score("zico", m, batches).value == pytest.approx(ref, rel=1e-6)
    with pytest.raises(ValueError, match=">= 2 batches"):
        P.score("zico", m, [(x, y)])
    with pytest.raises(ValueError, match="cannot split"):
        split_batch(x[:1], y[:1], 2)


# ------------------------------------------------------------------------------------------
# synflow
# ------------------------------------------------------------------------------------------
def test_synflow_is_log_of_direct_float64_value():
    m = TinyCNN(bn=False)
    net = copy.deepcopy(m).double()
    with torch.no_grad():
        for p in net.parameters():
            p.abs_()
    net(torch.ones(1, 3, 6, 6, dtype=torch.float64)).sum().backward()
    direct = sum(float((w * w.grad).detach().abs().sum()) for w in linear_weights(net))
    x, y = img_data()
    r = P.score("synflow", m, [(x, y)])
    assert r.value == pytest.approx(math.log(direct), rel=1e-12)


def test_synflow_strips_bn_and_synflow_bn_keeps_it():
    with_bn, without = TinyCNN(bn=True), TinyCNN(bn=False)
    without.conv1.weight.data.copy_(with_bn.conv1.weight)
    without.conv2.weight.data.copy_(with_bn.conv2.weight)
    without.fc.load_state_dict(with_bn.fc.state_dict())
    without.conv1.bias.data.zero_()
    without.conv2.bias.data.zero_()
    b = [img_data()]
    assert P.score("synflow", with_bn, b).value == pytest.approx(P.score("synflow", without, b).value, rel=1e-12)
    assert math.isfinite(P.score("synflow_bn", with_bn, b).value)


def test_synflow_huge_deep_net_stays_finite_and_exact():
    depth, width = 800, 32
    torch.manual_seed(3)
    layers = []
    for _ in range(depth):
        layers += [nn.Linear(width, width, bias=False), nn.ReLU()]
    m = nn.Sequential(*layers[:-1])
    x, y = data(2, (width,), width)
    r = P.score("synflow", m, [(x, y)])
    # reference: every path has `depth` weights, so S = depth * R (Euler); R from weights scaled by s
    s = 0.25
    net = copy.deepcopy(m).double()
    with torch.no_grad():
        for p in net.parameters():
            p.abs_().mul_(s)
        R_scaled = float(net(torch.ones(1, width, dtype=torch.float64)).sum())
    log_ref = math.log(depth) + math.log(R_scaled) - depth * math.log(s)
    assert log_ref > math.log(sys.float_info.max) + 50  # S itself overflows float64
    assert math.isfinite(r.value) and r.value == pytest.approx(log_ref, rel=1e-9)


def test_synflow_overflow_with_bn_raises():
    # BN makes the net non-homogeneous, so an overflowing synflow_bn cannot be rescaled: clear error
    convs = [nn.Conv2d(2, 2, 3, padding=1, bias=False) for _ in range(150)]
    for c in convs:
        nn.init.constant_(c.weight, 10.0)
    m = nn.Sequential(nn.Conv2d(2, 2, 1, bias=False), nn.BatchNorm2d(2), *convs)
    with pytest.raises(ValueError, match="overflow.*not homogeneous"):
        P.score("synflow_bn", m, [data(2, (2, 4, 4), 2)])
    assert math.isfinite(P.score("synflow", m, [data(2, (2, 4, 4), 2)]).value)  # BN stripped: rescaled


# ------------------------------------------------------------------------------------------
# params / flops / zen / meco
# ------------------------------------------------------------------------------------------
def test_params_and_flops_exact_for_linear():
    m = nn.Linear(10, 5)
    x, y = data(4, (10,), 5)
    assert P.score("params", m, [(x, y)]).value == pytest.approx(55e-6)
    assert P.score("flops", m, [(x, y)]).value == pytest.approx(2 * 10 * 5 / 1e6)
    conv = nn.Conv2d(3, 4, 3, padding=1, bias=False)
    xc, yc = img_data()
    assert P.score("flops", conv, [(xc, yc)]).value == pytest.approx(2 * 3 * 9 * 4 * 36 / 1e6)
    frozen = nn.Linear(10, 5)
    frozen.bias.requires_grad_(False)
    assert P.score("params", frozen, [(x, y)]).value == pytest.approx(50e-6)


def test_zen_matches_formula_and_is_seeded():
    m = TinyCNN()
    x, y = img_data(8)
    r1 = P.score("zen", m, [(x, y)], seed=5)
    assert r1.value == P.score("zen", m, [(x, y)], seed=5).value
    assert r1.value != P.score("zen", m, [(x, y)], seed=6).value
    # by hand, with the same random stream
    g = torch.Generator().manual_seed(5)
    net = copy.deepcopy(m).train()
    with torch.no_grad():
        for mod in net.modules():
            if isinstance(mod, (nn.Conv2d, nn.Linear)):
                mod.weight.normal_(0, 1, generator=g)
                if mod.bias is not None:
                    mod.bias.zero_()
            if isinstance(mod, nn.BatchNorm2d):
                mod.weight.fill_(1)
                mod.bias.zero_()
                mod.reset_running_stats()
        a = torch.randn(x.shape, generator=g)
        e = torch.randn(x.shape, generator=g)
        d = (net.features(a) - net.features(a + 0.01 * e)).abs().sum(dim=(1, 2, 3)).mean()
        bn = sum(0.5 * math.log(float(b.running_var.mean())) for b in (net.bn1, net.bn2))
    assert r1.value == pytest.approx(math.log(float(d)) + bn, rel=1e-5)
    via_fn = P.score("zen", m, [(x, y)], seed=5, features_fn=lambda net, t: net.features(t))
    assert via_fn.value == pytest.approx(r1.value, rel=1e-6)


def test_zen_needs_features():
    with pytest.raises(ValueError, match="pre-pooling features"):
        P.score("zen", mlp(), [data()])


def test_meco_matches_numpy_min_eig():
    m = TinyCNN()
    x, y = img_data()
    net = copy.deepcopy(m).train()
    maps = []
    with torch.no_grad():
        h = net.conv1(x)
        maps.append(h)
        h = net.bn1(h)
        maps.append(h)
        h = net.relu1(h)
        maps.append(h)
        h = net.conv2(h)
        maps.append(h)
        h = net.bn2(h)
        maps.append(h)
        h = net.relu2(h)
        maps.append(h)
    ref = 0.0
    for f in maps:
        c = np.corrcoef(f[0].reshape(f.shape[1], -1).double().numpy())
        c = np.nan_to_num(c, nan=0.0)
        ref += float(np.min(np.linalg.eigvalsh(c)))
    # the pool's (N,C,1,1) output is all-undefined -> contributes lambda_min(0) = 0
    assert P.score("meco", m, [(x, y)]).value == pytest.approx(ref, rel=1e-6, abs=1e-9)


# ------------------------------------------------------------------------------------------
# error paths and degenerate models
# ------------------------------------------------------------------------------------------
class NaNNet(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(6, 3)
        self.relu = nn.ReLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.relu(self.fc(x)) * float("nan")


@pytest.mark.parametrize("name", ["snip", "grad_norm", "grasp", "fisher", "plain", "jacov", "zico"])
def test_nan_model_raises(name):
    x, y = data()
    batches = split_batch(x, y, 2) if name == "zico" else [(x, y)]
    with pytest.raises(ValueError, match="NaN/inf"):
        P.score(name, NaNNet(), batches)


def test_nan_activation_raises_in_naswot():
    class NaNReLU(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.fc = nn.Linear(6, 3)
            self.relu = nn.ReLU()

        def forward(self, x):
            return self.relu(self.fc(x) * float("inf"))

    x, y = data()
    with pytest.raises(ValueError, match="NaN/inf"):
        P.score("naswot", NaNReLU(), [(x, y)])


def test_constant_output_model_is_flagged():
    m = ConstantOut()
    x, y = img_data()
    b = [(x, y)]
    for name in P.available():  # every proxy, structural ones included: the documented CANNOT_SCORE
        r = P.score(name, m, b)
        assert r.value == P.CANNOT_SCORE == -math.inf and r.flag == "output does not depend on the input", name
        assert not r.ok


def test_nb201_cut_off_arch_small():
    nb = pytest.importorskip("nasbeff.spaces.nb201")
    cut = "|nor_conv_3x3~0|+|none~0|none~1|+|none~0|none~1|nor_conv_3x3~2|"  # node 3 unreachable
    ok = "|nor_conv_3x3~0|+|nor_conv_3x3~0|skip_connect~1|+|none~0|none~1|nor_conv_3x3~2|"
    assert nb.is_cut_off(cut) and not nb.is_cut_off(ok)
    x, y = data(4, (3, 8, 8), 10)
    m_cut = nb.build_nb201_model(cut, C=4, N=1)
    m_ok = nb.build_nb201_model(ok, C=4, N=1)
    for name in ("synflow", "jacov", "zen"):
        assert P.score(name, m_cut, [(x, y)]).value == -math.inf
        assert math.isfinite(P.score(name, m_ok, [(x, y)]).value)
    assert P.score("snip", m_cut, [(x, y)]).flag == "output does not depend on the input"
    assert P.score("naswot", m_ok, [(x, y)]).ok


@pytest.mark.parametrize("name", ["fisher", "naswot", "meco", "snip", "jacov"])
def test_inplace_relu_gives_same_value(name):
    def net(inplace: bool) -> nn.Sequential:
        return nn.Sequential(
            nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(inplace=inplace), nn.Conv2d(4, 4, 3, padding=1),
            nn.ReLU(inplace=inplace), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, 3),
        )

    a, b = net(True), net(False)
    b.load_state_dict(a.state_dict())
    batch = [img_data()]
    assert P.score(name, a, batch).value == pytest.approx(P.score(name, b, batch).value, rel=1e-9)


def test_beff_scorers_whole_network_beta_eff():
    from nasbeff import capacitance
    from nasbeff.spaces import build_nb201_model, cut_off_indices

    torch.manual_seed(0)
    x, y = torch.randn(6, 3, 16, 16), torch.randint(0, 10, (6,))
    net = build_nb201_model(0, C=4, N=1)
    before = {k: v.clone() for k, v in net.state_dict().items()}
    r = P.score("beff_init", net, [(x, y)])
    assert r.ok and r.value == capacitance(net, x, y, bn="batch").beta_eff
    k = P.score("beff_k", net, [(x, y)], k=2)
    assert k.ok and k.value != r.value  # two SGD steps move it
    assert all(torch.equal(v, before[n]) for n, v in net.state_dict().items())
    cut = P.score("beff_init", build_nb201_model(int(cut_off_indices()[0]), C=4, N=1), [(x, y)])
    assert cut.value == -math.inf and cut.flag == "output does not depend on the input"
