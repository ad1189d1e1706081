"""AZ-NAS, VKDNW and rank aggregation: values recomputed by hand with numpy loops on toy nets,
rank rules on hand-ranked populations, special values and every error path."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch import nn

from nasbeff import proxies as P
from nasbeff.proxies import aggregate as A
from nasbeff.proxies import aznas as AZ
from nasbeff.proxies import vkdnw as VK

torch.set_num_threads(1)


# ------------------------------------------------------------------------------------------
# toy nets
# ------------------------------------------------------------------------------------------
class StemCells(nn.Module):
    """stem Conv1x1(2->3), cells [Conv1x1(3->3), Conv k2/s2 (3->2)], mean-pool, Linear(2->3); no ReLU."""

    def __init__(self, cut: bool = False) -> None:
        super().__init__()
        self.cut = cut
        self.stem = nn.Conv2d(2, 3, 1, bias=False)
        self.cells = nn.ModuleList([nn.Conv2d(3, 3, 1, bias=False), nn.Conv2d(3, 2, 2, stride=2, bias=False)])
        self.fc = nn.Linear(2, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        f = self.stem(x)
        f = self.cells[0](f)
        if self.cut:
            f = f.mul(0.0)
        f = self.cells[1](f)
        return self.fc(f.mean(dim=(2, 3)))


def img(n: int = 3, c: int = 2, side: int = 4, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, c, side, side, generator=g, dtype=torch.float64), torch.zeros(n, dtype=torch.long)


def np_conv(x: np.ndarray, w: np.ndarray, stride: int) -> np.ndarray:
    """Valid cross-correlation with plain loops: x (B, Ci, H, W), w (Co, Ci, k, k)."""
    b, ci, h, wd = x.shape
    co, _, k, _ = w.shape
    ho, wo = (h - k) // stride + 1, (wd - k) // stride + 1
    out = np.zeros((b, co, ho, wo))
    for n in range(b):
        for o in range(co):
            for i in range(ho):
                for j in range(wo):
                    for c in range(ci):
                        for di in range(k):
                            for dj in range(k):
                                out[n, o, i, j] += w[o, c, di, dj] * x[n, c, i * stride + di, j * stride + dj]
    return out


def np_entropy(f: np.ndarray) -> float:
    b, c, h, w = f.shape
    rows = [f[n, :, i, j] for n in range(b) for i in range(h) for j in range(w)]
    mean = sum(rows) / len(rows)
    cov = np.zeros((c, c))
    for r in rows:
        cov += np.outer(r - mean, r - mean)
    lam = np.clip(np.linalg.eigvalsh(cov / len(rows)), 0, None)
    p = lam / lam.sum()
    return float(-sum(q * math.log(q) for q in p if q > 0))


def np_trainability_term(v: np.ndarray, g: np.ndarray) -> float:
    """v (B, Ci*s*s, H, W) already unshuffled, g (B, Co, H, W)."""
    b, ci, h, w = v.shape
    m = np.zeros((ci, g.shape[1]))
    for n in range(b):
        for i in range(h):
            for j in range(w):
                m += np.outer(v[n, :, i, j], g[n, :, i, j])
    sigma = np.linalg.svd(m / (b * h * w), compute_uv=False).max()
    return -sigma - 1 / (sigma + 1e-6) + 2


# ------------------------------------------------------------------------------------------
# AZ-NAS
# ------------------------------------------------------------------------------------------
def test_aznas_matches_numpy_loops():
    torch.manual_seed(3)
    m = StemCells().double()
    x, y = img()
    res = P.score_many(list(AZ.NAMES), m, [(x, y)], options={"aznas_expressivity": {"init": None, "seed": 5}})
    ws, w1, w2 = (t.detach().numpy() for t in (m.stem.weight, m.cells[0].weight, m.cells[1].weight))
    f0 = np_conv(x.numpy(), ws, 1)
    f1 = np_conv(f0, w1, 1)
    f2 = np_conv(f1, w2, 2)
    e = [np_entropy(f) for f in (f0, f1, f2)]
    assert res["aznas_expressivity"].value == pytest.approx(sum(e), rel=1e-9)
    assert res["aznas_progressivity"].value == pytest.approx(min(e[1] - e[0], e[2] - e[1]), rel=1e-9, abs=1e-12)
    # Rademacher draws in the proxy's order: block 2 first, then block 1
    gen = torch.Generator().manual_seed(5)
    g2 = (torch.randint(0, 2, f2.shape, generator=gen) * 2 - 1).double().numpy()
    g1 = (torch.randint(0, 2, f1.shape, generator=gen) * 2 - 1).double().numpy()
    # block 2 (stride 2, k 2): v = W^T g scattered back, then pixel-unshuffled: channel c*4 + di*2 + dj
    v2 = np.zeros((3, 3 * 4, 2, 2))
    for n in range(3):
        for c in range(3):
            for di in range(2):
                for dj in range(2):
                    for i in range(2):
                        for j in range(2):
                            v2[n, c * 4 + di * 2 + dj, i, j] = sum(w2[o, c, di, dj] * g2[n, o, i, j] for o in range(2))
    v1 = np.einsum("oc,bohw->bchw", w1[:, :, 0, 0], g1)
    t = (np_trainability_term(v2, g2) + np_trainability_term(v1, g1)) / 2
    assert res["aznas_trainability"].value == pytest.approx(t, rel=1e-9)
    assert all(r.ok for r in res.values())


def test_aznas_single_calls_equal_group_and_are_seeded():
    m = StemCells()
    x, y = img(4, seed=1)
    x = x.float()
    group = P.score_many(list(AZ.NAMES), m, [(x, y)])
    for n in AZ.NAMES:
        assert P.score(n, m, [(x, y)]).value == group[n].value
    other = P.score("aznas_trainability", m, [(x, y)], seed=1).value
    assert other != group["aznas_trainability"].value
    assert P.get("aznas_complexity") is P.get("flops")


def test_aznas_identity_block_cut_off_and_errors():
    class IdentityCell(StemCells):
        def forward(self, x):
            f = self.cells[0](self.stem(x))
            f = self.cells[1](f)
            return self.fc(f.mean(dim=(2, 3)))

    m = IdentityCell()
    m.cells[0] = nn.Identity()
    x, y = img(4, seed=2)
    x = x.float()
    r = P.score("aznas_trainability", m, [(x, y)])
    assert r.value == -math.inf and "identity" in r.flag
    cut = P.score_many(list(AZ.NAMES), StemCells(cut=True), [(x, y)])
    assert all(v.value == -math.inf and v.flag == "output does not depend on the input" for v in cut.values())
    with pytest.raises(ValueError, match="init must be one of"):
        P.score("aznas_expressivity", StemCells(), [(x, y)], init="xavier")
    with pytest.raises(ValueError, match=">= 2 feature maps"):
        P.score("aznas_expressivity", nn.Sequential(nn.Flatten(), nn.Linear(32, 3)), [(x, y)])
    inplace = nn.Sequential(nn.Conv2d(2, 3, 1), nn.ReLU(inplace=True), nn.Conv2d(3, 3, 1), nn.AdaptiveAvgPool2d(1),
                            nn.Flatten(), nn.Linear(3, 3))
    with pytest.raises(ValueError, match="in place"):
        P.score("aznas_expressivity", inplace, [(x, y)])
    frozen = StemCells().requires_grad_(False)
    with pytest.raises(ValueError, match="require grad"):
        P.score("aznas_trainability", frozen, [(x, y)])


def test_aznas_constant_feature_map_and_bad_stride():
    class ConstMap(StemCells):
        def forward(self, x):
            f = self.stem(x)
            f = self.cells[0](f) * 0.0 + 1.0 + 0.0 * f  # constant map, output still depends on x below
            f = self.cells[1](f) + x[:, :1, ::2, ::2]
            return self.fc(f.mean(dim=(2, 3)))

    x, y = img(4, seed=3)
    x = x.float()
    r = P.score_many(list(AZ.NAMES), ConstMap(), [(x, y)])
    assert r["aznas_expressivity"].value == -math.inf and "constant" in r["aznas_expressivity"].flag
    assert math.isfinite(r["aznas_trainability"].value)

    class Odd(nn.Module):
        def __init__(self):
            super().__init__()
            self.stem = nn.Conv2d(2, 3, 1)
            self.cells = nn.ModuleList([nn.Conv2d(3, 3, 2, stride=1)])  # 4x4 -> 3x3: no integer stride
            self.fc = nn.Linear(3, 3)

        def forward(self, x):
            return self.fc(self.cells[0](self.stem(x)).mean(dim=(2, 3)))

    with pytest.raises(ValueError, match="integer stride"):
        P.score("aznas_trainability", Odd(), [(x, y)])


def test_aznas_fallback_children_and_nb201_cut_off():
    seq = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(), nn.Conv2d(4, 4, 1), nn.AdaptiveAvgPool2d(1),
                        nn.Flatten(), nn.Linear(4, 3))
    x = torch.randn(5, 3, 6, 6)
    y = torch.zeros(5, dtype=torch.long)
    r = P.score_many(list(AZ.NAMES), seq, [(x, y)])
    assert all(math.isfinite(v.value) for v in r.values())
    nb = pytest.importorskip("nasbeff.spaces.nb201")
    cut = "|nor_conv_3x3~0|+|none~0|none~1|+|none~0|none~1|nor_conv_3x3~2|"
    m = nb.build_nb201_model(cut, C=4, N=1)
    xb = torch.randn(4, 3, 8, 8)
    for name in (*AZ.NAMES, *VK.NAMES):
        s = P.score(name, m, [(xb, torch.zeros(4, dtype=torch.long))])
        assert s.value == -math.inf and s.flag == "output does not depend on the input", name


# ------------------------------------------------------------------------------------------
# VKDNW
# ------------------------------------------------------------------------------------------
def np_vkdnw(x: np.ndarray, w1, b1, w2, b2, alpha: float) -> tuple[float, float]:
    """Fisher of z = W2 relu(W1 x + b1) + b2 w.r.t. (W1[0,0], b1[0], W2[0,0], b2[0]), by loops."""
    n, c = x.shape[0], w2.shape[0]
    fis = np.zeros((4, 4))
    for s in range(n):
        a = w1 @ x[s] + b1
        h = np.maximum(a, 0)
        z = w2 @ h + b2
        e = np.exp(z - z.max())
        p = (1 - alpha) * e / e.sum() + alpha / c
        jac = np.zeros((c, 4))
        d = 1.0 if a[0] > 0 else 0.0
        for k in range(c):
            jac[k, 0] = w2[k, 0] * d * x[s, 0]
            jac[k, 1] = w2[k, 0] * d
            jac[k, 2] = h[0] if k == 0 else 0.0
            jac[k, 3] = 1.0 if k == 0 else 0.0
        cov = np.zeros((c, c))
        for i in range(c):
            for j in range(c):
                cov[i, j] = (p[i] if i == j else 0.0) - p[i] * p[j]
        fis += jac.T @ cov @ jac
    lam = np.clip(np.linalg.eigvalsh(fis / n), 0, None)
    q = np.quantile(lam, [k / 10 for k in range(1, 10)])
    r = q / q.sum()
    ent = -sum(v * math.log(v) for v in r if v > 0)
    return ent, 4 + ent / math.log(10)


def test_vkdnw_matches_numpy_loops():
    torch.manual_seed(4)
    m = nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 3)).double()
    x = torch.randn(7, 3, dtype=torch.float64)
    y = torch.zeros(7, dtype=torch.long)
    r = P.score_many(list(VK.NAMES), m, [(x, y)], options={"vkdnw": {"init": None}})
    ent, single = np_vkdnw(x.numpy(), *(t.detach().numpy() for t in (m[0].weight, m[0].bias, m[2].weight, m[2].bias)),
                           alpha=0.05)
    assert r["vkdnw"].value == pytest.approx(ent, rel=1e-9)
    assert r["vkdnw_dim"].value == 4.0
    assert r["vkdnw_single"].value == pytest.approx(single, rel=1e-12)
    assert r["vkdnw"].value <= math.log(9)
    assert P.score("vkdnw", m, [(x, y)], init=None, alpha=0.2).value != r["vkdnw"].value


def test_vkdnw_is_seeded_uses_eval_mode_and_errors():
    m = nn.Sequential(nn.Conv2d(2, 3, 3, padding=1), nn.BatchNorm2d(3), nn.ReLU(), nn.AdaptiveAvgPool2d(1),
                      nn.Flatten(), nn.Linear(3, 4))
    x, y = img(5, seed=4)
    x = x.float()
    a = P.score("vkdnw", m, [(x, y)]).value
    assert a == P.score("vkdnw", m, [(x, y)]).value and math.isfinite(a)
    assert a != P.score("vkdnw", m, [(x, y)], seed=3).value
    assert P.score("vkdnw_dim", m, [(x, y)]).value == 6.0  # conv w/b, bn w/b, fc w/b
    with pytest.raises(ValueError, match="alpha"):
        P.score("vkdnw", m, [(x, y)], alpha=1.0)
    with pytest.raises(ValueError, match="no trainable parameter"):
        P.score("vkdnw", nn.Sequential(nn.Flatten(), nn.Linear(32, 3)).requires_grad_(False), [(x, y)])
    with pytest.raises(ValueError, match=r"logits of shape \(N, C\)"):
        P.score("vkdnw", nn.Conv2d(2, 3, 1), [(x, y)])
    with pytest.raises(ValueError, match="init must be one of"):
        P.score("vkdnw", m, [(x, y)], init="orthogonal")


class _Layers(nn.Module):
    """A stack of layers with the reference's setup (float64, eval mode); ``flat`` flattens before the head."""

    def __init__(self, *layers: nn.Module) -> None:
        super().__init__()
        self.layers = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layers(x)


def _eval64(m: nn.Module, seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    m = m.double().eval()
    with torch.no_grad():  # non-trivial running statistics and affine parameters
        for mod in m.modules():
            if isinstance(mod, nn.modules.batchnorm._BatchNorm):
                mod.running_mean.uniform_(-0.5, 0.5)
                mod.running_var.uniform_(0.5, 2.0)
                mod.weight.uniform_(0.5, 1.5)
                mod.bias.uniform_(-0.5, 0.5)
    return m


FAST_PATH_NETS = {
    # stride, padding, dilation, groups and biases; kernel offset (0, 0) reads the padded input
    "conv": lambda: _Layers(nn.Conv2d(2, 4, 3, stride=2, padding=1), nn.BatchNorm2d(4), nn.ReLU(),
                            nn.Conv2d(4, 4, 3, padding=2, dilation=2, groups=2, bias=False), nn.BatchNorm2d(4),
                            nn.ReLU(inplace=True),  # changes the BN output in place, as NB201's last ReLU
                            nn.Conv2d(4, 3, 2, stride=3, padding=(1, 0)), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                            nn.Linear(3, 5)),
    "bn1d": lambda: _Layers(nn.Flatten(), nn.Linear(2 * 5 * 5, 6), nn.BatchNorm1d(6), nn.Tanh(), nn.Linear(6, 4)),
    "nb201": lambda: __import__("nasbeff.spaces.nb201", fromlist=["x"]).build_nb201_model(
        "|nor_conv_3x3~0|+|skip_connect~0|avg_pool_3x3~1|+|nor_conv_1x1~0|none~1|skip_connect~2|", num_classes=7,
        in_channels=2, C=4, N=1),
}


@pytest.mark.parametrize("name", sorted(FAST_PATH_NETS))
def test_vkdnw_activation_jacobian_equals_the_generic_jacobian(name, monkeypatch):
    monkeypatch.setattr(VK, "ACTIVATION_CHUNK", 4)  # 6 samples: chunks of 4 and 2
    net = _eval64(FAST_PATH_NETS[name]())
    x, _ = img(6, side=5 if name != "nb201" else 8, seed=2)
    fast = VK.activation_jacobian(net, x)
    assert fast is not None
    jac, names = VK.first_weight_jacobian(net, x)
    assert fast[1] == names and fast[0].shape == jac.shape
    assert torch.allclose(fast[0], jac, rtol=1e-10, atol=1e-12 * float(jac.abs().max()))
    assert float(jac.abs().min()) < float(jac.abs().max())  # not a trivially constant Jacobian


def test_vkdnw_values_do_not_depend_on_the_path(monkeypatch):
    from nasbeff.spaces.nb201 import build_nb201_model
    m = build_nb201_model("|nor_conv_3x3~0|+|nor_conv_1x1~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_3x3~1|none~2|",
                          num_classes=5, C=4, N=1)
    x, y = img(6, c=3, side=8, seed=1)
    fast = P.score_many(list(VK.NAMES), m, [(x.float(), y)])
    monkeypatch.setattr(VK, "activation_jacobian", lambda net, x: None)
    slow = P.score_many(list(VK.NAMES), m, [(x.float(), y)])
    assert fast["vkdnw_dim"].value == slow["vkdnw_dim"].value == 3 + 3 * 9 + 2 * 7 + 2 + 2  # stem; 3 cells of 3 ReLU-conv-BN; 2 reductions; last BN; fc
    assert fast["vkdnw"].value == pytest.approx(slow["vkdnw"].value, rel=1e-5)


class _Scale(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.s = nn.Parameter(torch.ones(1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.s


class _Twice(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(3, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(torch.tanh(self.fc(x)))


class _Centre(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x - x.mean(dim=0, keepdim=True)  # couples the samples of a batch


@pytest.mark.parametrize("make, why", [
    (lambda: _Layers(nn.Linear(3, 3), _Scale(), nn.Linear(3, 2)), "a parameter outside Conv2d/Linear/BatchNorm"),
    (lambda: _Twice(), "a module run twice"),
    (lambda: _Layers(nn.Linear(3, 3), _Centre(), nn.Linear(3, 2)), "samples coupled"),
    (lambda: _Layers(nn.Linear(3, 16), nn.Unflatten(1, (1, 4, 4)), nn.Conv2d(1, 2, 3, padding=1, padding_mode="reflect"),
                     nn.Flatten(), nn.Linear(32, 2)), "reflect padding"),
    (lambda: _Layers(nn.Linear(3, 3), nn.BatchNorm1d(3, track_running_stats=False), nn.Linear(3, 2)),
     "batch statistics"),
])
def test_vkdnw_activation_jacobian_declines_what_it_cannot_handle(make, why):
    torch.manual_seed(0)
    net = make().double().eval()
    x = torch.randn(5, 3, dtype=torch.float64)
    assert VK.activation_jacobian(net, x) is None, why
    if why == "batch statistics":  # one sample alone has no batch statistics: the generic path refuses it too
        with pytest.raises(ValueError, match="more than 1 value per channel"):
            VK.first_weight_jacobian(net, x)
        return
    jac, names = VK.first_weight_jacobian(net, x)  # the generic path still answers
    assert jac.shape == (5, 2 if not isinstance(net, _Twice) else 3, len(names))
    r = P.score("vkdnw_dim", net, [(x, torch.zeros(5, dtype=torch.long))], init=None)
    assert r.value == len(names)


def test_decile_entropy_values():
    assert VK.decile_entropy(torch.ones(20)) == pytest.approx(math.log(9))
    assert VK.decile_entropy(torch.zeros(5)) == -math.inf
    lam = torch.tensor([0.0, 0.0, 0.0, 1.0])  # deciles 0 .. 0.7 via interpolation
    q = np.quantile(lam.numpy(), np.arange(1, 10) / 10)
    r = q[q > 0] / q.sum()
    assert VK.decile_entropy(lam) == pytest.approx(float(-(r * np.log(r)).sum()))


# ------------------------------------------------------------------------------------------
# rank aggregation
# ------------------------------------------------------------------------------------------
def test_population_ranks_ties_and_infinities():
    assert A.population_ranks([3.0, 1.0, 2.0]).tolist() == [3.0, 1.0, 2.0]
    assert A.population_ranks([5.0, 5.0, 1.0, -np.inf, -np.inf, np.inf]).tolist() == [4.5, 4.5, 3.0, 1.5, 1.5, 6.0]
    with pytest.raises(ValueError, match="NaN"):
        A.population_ranks([1.0, np.nan])
    with pytest.raises(ValueError, match="non-empty 1-d"):
        A.population_ranks([])


def test_log_rank_sum_and_mean_rank_by_hand():
    vals = {"a": [0.1, 0.3, 0.2, 0.3], "b": [10.0, -1.0, -np.inf, 4.0]}
    # ranks a: [1, 3.5, 2, 3.5]; b: [4, 2, 1, 3]
    ra, rb = np.array([1, 3.5, 2, 3.5]), np.array([4, 2, 1, 3])
    got = A.aggregate_scores(vals)
    assert got == pytest.approx(np.log(ra / 4) + np.log(rb / 4))
    assert A.aggregate_scores(vals, rule="mean_rank") == pytest.approx((ra + rb) / 2)
    assert A.rank_aggregate("meanrank:a+b", vals) == pytest.approx((ra + rb) / 2)
    # one part: the arch it cannot score (-inf) is -inf in the aggregate too, the others keep their ranks
    assert A.rank_aggregate(["b"], vals) == pytest.approx(np.where(np.isneginf(vals["b"]), -np.inf, np.log(rb / 4)))


def test_nan_policies():
    vals = {"a": [1.0, 2.0, np.nan, 4.0], "b": [4.0, 3.0, 2.0, 1.0]}
    worst = A.aggregate_scores(vals)  # NaN ranks like -inf: a ranks [2, 3, 1, 4]
    assert worst == pytest.approx(np.log(np.array([2, 3, 1, 4]) / 4) + np.log(np.array([4, 3, 2, 1]) / 4))
    omit = A.aggregate_scores(vals, nan_policy="omit")  # population of 3: a [1, 2, 3], b [3, 2, 1]
    assert np.isnan(omit[2])
    assert omit[[0, 1, 3]] == pytest.approx(np.log(np.array([1, 2, 3]) / 3) + np.log(np.array([3, 2, 1]) / 3))
    with pytest.raises(ValueError, match=r"NaN \(missing\) values in \['a'\]"):
        A.aggregate_scores(vals, nan_policy="raise")
    assert np.isnan(A.aggregate_scores({"a": [np.nan]}, nan_policy="omit")).all()


def test_aggregate_errors_and_names():
    assert A.parse_aggregate_name("rank:meco+zico+synflow") == ("log_rank_sum", ["meco", "zico", "synflow"])
    assert A.parse_aggregate_name("meanrank: a + b") == ("mean_rank", ["a", "b"])
    assert A.is_aggregate_name(P.AZNAS) and not A.is_aggregate_name("meco")
    for bad, msg in [("meco", "not an aggregate"), ("rank:a++b", "empty scorer"), ("rank:a+a", "twice"),
                     ("top:a+b", "not an aggregate")]:
        with pytest.raises(ValueError, match=msg):
            A.parse_aggregate_name(bad)
    with pytest.raises(ValueError, match="unknown rule"):
        A.aggregate_scores({"a": [1.0]}, rule="borda")
    with pytest.raises(ValueError, match="unknown nan_policy"):
        A.aggregate_scores({"a": [1.0]}, nan_policy="zero")
    with pytest.raises(ValueError, match="empty"):
        A.aggregate_scores({})
    with pytest.raises(ValueError, match="equal non-empty"):
        A.aggregate_scores({"a": [1.0, 2.0], "b": [1.0]})
    with pytest.raises(ValueError, match="implies rule"):
        A.rank_aggregate("rank:a", {"a": [1.0]}, rule="mean_rank")
    with pytest.raises(ValueError, match="no values for"):
        A.rank_aggregate(["a", "z"], {"a": [1.0]})


def test_score_population_aggregates_and_score_refuses_them():
    torch.manual_seed(0)
    models = [nn.Sequential(nn.Flatten(), nn.Linear(6, h), nn.ReLU(), nn.Linear(h, 3)) for h in (2, 8, 4)]
    x = torch.randn(6, 6)
    y = torch.randint(0, 3, (6,))
    out = P.score_population(["params", "rank:params+flops", "meanrank:params"], models, [(x, y)])
    p = np.array([(6 * h + h + h * 3 + 3) / 1e6 for h in (2, 8, 4)])
    assert out["params"] == pytest.approx(p)
    assert out["rank:params+flops"] == pytest.approx(2 * np.log(np.array([1, 3, 2]) / 3))
    assert out["meanrank:params"].tolist() == [1.0, 3.0, 2.0]
    with pytest.raises(ValueError, match="needs a population"):
        P.score("rank:params+flops", models[0], [(x, y)])
    with pytest.raises(ValueError, match="models is empty"):
        P.score_population(["params"], [], [(x, y)])
    with pytest.raises(ValueError, match="names is empty"):
        P.score_population([], models, [(x, y)])


def test_score_many_shares_groups_and_checks_options():
    m = StemCells()
    x, y = img(4, seed=5)
    x = x.float()
    calls = []
    group = P._GROUP_OF["aznas_expressivity"]

    def counting(*a, **k):
        calls.append(1)
        return group(*a, **k)

    for n in AZ.NAMES:
        P._GROUP_OF[n] = counting
    try:
        res = P.score_many([*AZ.NAMES, "params"], m, [(x, y)])
    finally:
        for n in AZ.NAMES:
            P._GROUP_OF[n] = group
    assert len(calls) == 1 and list(res) == [*AZ.NAMES, "params"]
    assert len({r.seconds for n, r in res.items() if n in AZ.NAMES}) == 1
    with pytest.raises(ValueError, match="disagree on 'seed'"):
        P.score_many(list(AZ.NAMES), m, [(x, y)], options={"aznas_expressivity": {"seed": 1},
                                                            "aznas_trainability": {"seed": 2}})
    with pytest.raises(ValueError, match="unknown proxies"):
        P.score_many(["nope"], m, [(x, y)])
    with pytest.raises(ValueError, match="nn.Module"):
        P.score_many(["params"], "model", [(x, y)])
    with pytest.raises(ValueError, match="distinct member names"):
        P.register_group("a", "a")
