"""beta_eff over layer DAGs against brute-force references written with plain loops.

The references never use nasbeff's capture: G_A's edges are written by hand, the local block of
an edge u -> v is the mixed Hessian of E_uv = sum_n <g_v, f_v(theta_v, z_v)> with the model re-run
while every layer other than u and v returns its recorded output (so z_v depends on theta_u only
through u's output, u's input fixed), and the hessian block is d^2C/dtheta_u dtheta_v; both one
column (parameter q of v) at a time, in float64. num and den must agree to 1e-9 of the sum of
the absolute values of their terms."""

from __future__ import annotations

import copy
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
import torchvision
from torch import nn
from torch.func import functional_call
from torchvision.models.resnet import BasicBlock, ResNet, conv1x1

from nasbeff import beta_eff, capacitance
from nasbeff.core.line_graph import beta_eff_from_matrix, line_graph
from nasbeff.spaces.nb201 import build_cell_network

D = torch.float64


# ------------------------------------------------------------------------------ references

def layer_mods(net: nn.Module) -> dict[str, nn.Module]:
    return {n: m for n, m in net.named_modules() if list(m.parameters(recurse=False))}


def flat_of(m: nn.Module) -> torch.Tensor:
    return torch.cat([p.detach().reshape(-1) for p in m.parameters(recurse=False)])


def unflat(m: nn.Module, theta: torch.Tensor, prefix: str = "") -> dict[str, torch.Tensor]:
    out, i = {}, 0
    for n, p in m.named_parameters(recurse=False):
        out[f"{prefix}{n}"] = theta[i:i + p.numel()].reshape(p.shape)
        i += p.numel()
    return out


class Hooks:
    """Forward hooks on every layer module; ``fn(name, module, input, output)`` may replace the output."""

    def __init__(self, net, fn):
        self.mods, self.fn, self.off = layer_mods(net), fn, False
        self.name = {id(m): n for n, m in self.mods.items()}
        self.handles = [m.register_forward_hook(self.hook) for m in self.mods.values()]

    def hook(self, m, args, out):
        if self.off:
            return None
        return self.fn(self.name[id(m)], m, args[0], out)

    def call(self, m, theta, z):
        """f(theta, z) of a layer module, without firing the hooks."""
        self.off = True
        try:
            return functional_call(m, {**unflat(m, theta), **dict(m.named_buffers(recurse=False))}, (z,))
        finally:
            self.off = False

    def remove(self):
        for h in self.handles:
            h.remove()


def record(net, x, y):
    """Every layer's input z and output a (values) and g = dC/da on one forward pass."""
    zs, outs = {}, {}

    def fn(n, m, z, out):
        zs[n], outs[n] = z.detach().clone(), out
        return out.clone()  # in-place ops downstream (ReLU(inplace), +=) must not rewrite a

    h = Hooks(net, fn)
    try:
        loss = F.cross_entropy(net(x), y)
    finally:
        h.remove()
    gs = dict(zip(outs, torch.autograd.grad(loss, list(outs.values()))))
    return zs, {n: a.detach() for n, a in outs.items()}, gs


def assemble(names, blocks) -> np.ndarray:
    sizes = {}
    for (u, v), B in blocks.items():
        sizes[u], sizes[v] = B.shape
    offs = np.concatenate([[0], np.cumsum([sizes[n] for n in names])])
    pos = {n: offs[k] for k, n in enumerate(names)}
    P = np.zeros((offs[-1], offs[-1]))
    for (u, v), B in blocks.items():
        P[pos[u]:pos[u] + B.shape[0], pos[v]:pos[v] + B.shape[1]] = B
    return P


def local_blocks_loops(net, x, y, edges) -> dict:
    """B_uv[p, q] = d^2 E_uv / d theta_u[p] d theta_v[q], E_uv = sum_n <g_v, f_v(theta_v, z_v(theta_u))>."""
    net.eval()
    zs, outs, gs = record(net, x, y)
    mods = layer_mods(net)
    blocks = {}
    for u, v in edges:
        tu = flat_of(mods[u]).requires_grad_(True)
        tv = flat_of(mods[v]).requires_grad_(True)
        state = {}

        def fn(n, m, z, out, u=u, v=v, tu=tu, tv=tv, state=state):
            if n == u:
                return state["hk"].call(m, tu, zs[u])
            if n == v:
                o = state["hk"].call(m, tv, z)
                state["E"] = (gs[v] * o).sum()
                return o
            return outs[n].clone()  # every other layer's output held fixed

        state["hk"] = Hooks(net, fn)
        try:
            net(x)
        finally:
            state["hk"].remove()
        (gv,) = torch.autograd.grad(state["E"], tv, create_graph=True)
        B = np.zeros((tu.numel(), tv.numel()))
        for q in range(tv.numel()):
            if gv[q].requires_grad:
                (col,) = torch.autograd.grad(gv[q], tu, retain_graph=True, allow_unused=True)
                if col is not None:
                    B[:, q] = col.numpy()
        blocks[(u, v)] = B
    return blocks


def hessian_blocks_loops(net, x, y, edges) -> dict:
    """B_uv[p, q] = d^2 C / d theta_u[p] d theta_v[q], column q from the basis vector e_q."""
    net.eval()
    mods = layer_mods(net)
    blocks = {}
    for u, v in edges:
        tu = flat_of(mods[u]).requires_grad_(True)
        tv = flat_of(mods[v]).requires_grad_(True)
        params = {**unflat(mods[u], tu, f"{u}."), **unflat(mods[v], tv, f"{v}.")}
        loss = F.cross_entropy(functional_call(net, params, (x,)), y)
        (gv,) = torch.autograd.grad(loss, tv, create_graph=True)
        basis = torch.eye(tv.numel(), dtype=D)  # the columns q, one basis vector each (vmapped loop)
        (cols,) = torch.autograd.grad(gv, tu, basis, is_grads_batched=True, allow_unused=True)
        blocks[(u, v)] = np.zeros((tu.numel(), tv.numel())) if cols is None else cols.T.numpy()
    return blocks


def terms(P: np.ndarray):
    """num = sum_j c_j r_j, den = sum_ij P_ij and the sums of the absolute values of their terms."""
    r, c = P.sum(1), P.sum(0)
    return float(c @ r), float(r.sum()), float(np.abs(P).sum(0) @ np.abs(P).sum(1)), float(np.abs(P).sum())


def assert_agree(fast, P, tol=1e-9):
    num, den, num_abs, den_abs = terms(P)
    assert abs(fast.num - num) <= tol * num_abs, (fast.num, num)
    assert abs(fast.den - den) <= tol * den_abs, (fast.den, den)
    assert num_abs > 0 and den_abs > 0  # the comparison cannot pass on an all-zero P


def batch_stat_copy(net: nn.Module) -> nn.Module:
    """The same network normalising with batch statistics (torch's own: no running statistics)."""
    net = copy.deepcopy(net)
    for m in net.modules():
        if isinstance(m, nn.modules.batchnorm._BatchNorm):
            m.track_running_stats, m.running_mean, m.running_var, m.num_batches_tracked = False, None, None, None
    return net


def randomise_bn(net, seed=1):
    g = torch.Generator().manual_seed(seed)
    for m in net.modules():
        if isinstance(m, nn.modules.batchnorm._BatchNorm):
            with torch.no_grad():
                m.running_mean.copy_(torch.randn(m.num_features, generator=g, dtype=m.running_mean.dtype))
                m.running_var.copy_(torch.rand(m.num_features, generator=g, dtype=m.running_var.dtype) + 0.5)
                m.weight.copy_(torch.randn(m.num_features, generator=g, dtype=m.weight.dtype))
                m.bias.copy_(torch.randn(m.num_features, generator=g, dtype=m.bias.dtype))
    return net


def check_against_loops(net, x, y, edges, modes=("local", "hessian"), bns=("eval", "batch"), explicit=("local",)):
    """capacitance and the explicit line graph (modes ``explicit``) against the loops, with the
    hand-written edges."""
    for bn in bns:
        ref_net = net if bn == "eval" else batch_stat_copy(net)
        for mode in modes:
            fast = capacitance(net, x, y, mode=mode, bn=bn)
            assert sorted(fast.edge_names) == sorted(edges)
            loops = (local_blocks_loops if mode == "local" else hessian_blocks_loops)(ref_net, x, y, edges)
            P = assemble(fast.layer_names, loops)
            assert_agree(fast, P)
            if bn == "eval" and mode in explicit:
                lg = line_graph(net, x, y, mode=mode).P.toarray()
                np.testing.assert_allclose(lg, P, rtol=0, atol=1e-11 * np.abs(P).max())


# ------------------------------------------------------------------------------ networks

class ResMLP(nn.Module):
    """Residual MLP with BatchNorm, an in-place sum, a product of branches and a x*0 branch."""

    def __init__(self):
        super().__init__()
        self.fc0, self.bn0 = nn.Linear(4, 5), nn.BatchNorm1d(5)
        self.fc1, self.bn1 = nn.Linear(5, 5), nn.BatchNorm1d(5)
        self.fc2, self.head = nn.Linear(5, 5), nn.Linear(5, 3)

    def forward(self, x):
        a0 = self.fc0(x)
        h = torch.relu(self.bn0(a0))
        s = self.bn1(self.fc1(h))
        s += h                                              # residual, in place
        s = torch.relu(s)
        p = torch.relu(self.fc2(s)) * torch.tanh(s)         # product of branches
        return self.head(p + a0.mul(0.0))                   # 'none': no edge fc0 -> head


RESMLP_EDGES = [("fc0", "bn0"), ("bn0", "fc1"), ("fc1", "bn1"), ("bn0", "fc2"), ("bn1", "fc2"),
                ("bn0", "head"), ("bn1", "head"), ("fc2", "head")]


def resmlp():
    torch.manual_seed(2)
    return randomise_bn(ResMLP().double())


@pytest.fixture
def mlp_batch():
    g = torch.Generator().manual_seed(3)
    return torch.randn(6, 4, generator=g, dtype=D), torch.randint(0, 3, (6,), generator=g)


ARCH = "|nor_conv_3x3~0|+|none~0|skip_connect~1|+|avg_pool_3x3~0|nor_conv_1x1~1|none~2|"


def nb201_edges() -> list[tuple[str, str]]:
    """By hand. Cell on input sources S: x1 = conv3x3(x0); x2 = none(x0) + skip(x1);
    x3 = pool(x0) + conv1x1(x1) + none(x2) -> output sources S + {conv1x1's BN}.
    Reduction on S: downsample conv and conv_a read S; output sources {downsample conv, conv_b's BN}."""
    def cell(k, S):
        c3, b3, c1, b1 = (f"cells.{k}.layers.0.op.1", f"cells.{k}.layers.0.op.2",
                          f"cells.{k}.layers.4.op.1", f"cells.{k}.layers.4.op.2")
        return [(s, c3) for s in S] + [(c3, b3), (b3, c1), (c1, b1)], S + [b1]

    def red(k, S):
        ds, a1, a2, b1, b2 = (f"cells.{k}.downsample.1", f"cells.{k}.conv_a.op.1", f"cells.{k}.conv_a.op.2",
                              f"cells.{k}.conv_b.op.1", f"cells.{k}.conv_b.op.2")
        return [(s, ds) for s in S] + [(s, a1) for s in S] + [(a1, a2), (a2, b1), (b1, b2)], [ds, b2]

    edges, S = [("stem.0", "stem.1")], ["stem.1"]
    for k, blk in enumerate((cell, red, cell, red, cell)):
        new, S = blk(k, S)
        edges += new
    return edges + [(s, "lastact.0") for s in S] + [("lastact.0", "classifier")]


def nb201_net(C):
    torch.manual_seed(C)
    net = randomise_bn(build_cell_network((C,) * 5, ARCH, num_classes=3).double())
    with torch.no_grad():
        net.lastact[0].bias.abs_()  # keep the final ReLU alive at these tiny widths
    return net


W = {64: 2, 128: 3, 256: 3, 512: 4}


class SmallBlock(BasicBlock):
    """torchvision's BasicBlock (its forward, in-place ReLU and +=) at widths W."""

    def __init__(self, inplanes, planes, stride=1, downsample=None, *args, **kw):
        if downsample is not None:
            downsample = nn.Sequential(conv1x1(W[inplanes], W[planes], stride), nn.BatchNorm2d(W[planes]))
        super().__init__(W[inplanes], W[planes], stride, downsample, *args, **kw)


class SmallResNet(ResNet):
    """torchvision.models.ResNet([1, 1, 1, 1]) with SmallBlock and a narrow stem and head."""

    def __init__(self, num_classes=3):
        super().__init__(SmallBlock, [1, 1, 1, 1], num_classes=num_classes)
        self.conv1 = nn.Conv2d(3, W[64], 7, 2, 3, bias=False)
        self.bn1 = nn.BatchNorm2d(W[64])
        self.fc = nn.Linear(W[512], num_classes)


def resnet_edges() -> list[tuple[str, str]]:
    """By hand: stem, then per stage the block's conv1-bn1-conv2-bn2 chain and its shortcut."""
    edges = [("conv1", "bn1"), ("bn1", "layer1.0.conv1"), ("layer1.0.conv1", "layer1.0.bn1"),
             ("layer1.0.bn1", "layer1.0.conv2"), ("layer1.0.conv2", "layer1.0.bn2")]
    S = ["bn1", "layer1.0.bn2"]  # identity shortcut: the block input's sources stay
    for k in (2, 3, 4):
        b = f"layer{k}.0"
        edges += [(s, f"{b}.conv1") for s in S] + [(s, f"{b}.downsample.0") for s in S]
        edges += [(f"{b}.conv1", f"{b}.bn1"), (f"{b}.bn1", f"{b}.conv2"), (f"{b}.conv2", f"{b}.bn2"),
                  (f"{b}.downsample.0", f"{b}.downsample.1")]
        S = [f"{b}.bn2", f"{b}.downsample.1"]
    return edges + [(s, "fc") for s in S]


def small_resnet():
    torch.manual_seed(5)
    return randomise_bn(SmallResNet().double())


# ------------------------------------------------------------------------------------ tests

def test_residual_mlp_with_batchnorm_matches_loops(mlp_batch):
    x, y = mlp_batch
    check_against_loops(resmlp(), x, y, RESMLP_EDGES, explicit=("local", "hessian"))


def test_none_branch_is_not_an_edge_and_changes_nothing(mlp_batch):
    """x.mul(0.0) keeps an autograd link; without the rule fc0 -> head would get a non-zero hessian block."""
    x, y = mlp_batch
    net = resmlp()
    (blk,) = hessian_blocks_loops(net, x, y, [("fc0", "head")]).values()
    assert np.abs(blk).max() > 1e-6  # the block the rule leaves out is not zero
    res = capacitance(net, x, y, mode="hessian")
    assert ("fc0", "head") not in res.edge_names and len(res.block_den) == len(RESMLP_EDGES)


def test_sub_dag_is_the_induced_subgraph(mlp_batch):
    x, y = mlp_batch
    net = resmlp()
    sel = ["fc1", "bn1", "fc2", "head"]
    edges = [e for e in RESMLP_EDGES if e[0] in sel and e[1] in sel]
    for mode in ("local", "hessian"):
        fast = capacitance(net, x, y, mode=mode, layers=sel)
        assert fast.layer_names == tuple(sel) and sorted(fast.edge_names) == sorted(edges)
        loops = (local_blocks_loops if mode == "local" else hessian_blocks_loops)(net, x, y, edges)
        assert_agree(fast, assemble(fast.layer_names, loops))


def test_per_edge_and_per_layer_parts_and_delta_in(mlp_batch):
    x, y = mlp_batch
    net = resmlp()
    res = capacitance(net, x, y, return_delta_in=True)
    lg = line_graph(net, x, y)
    P = lg.P.toarray()
    off = np.concatenate([[0], np.cumsum(res.layer_sizes)])
    for (u, v), d in zip(res.edges, res.block_den):
        assert d == pytest.approx(P[off[u]:off[u + 1], off[v]:off[v + 1]].sum(), rel=1e-9, abs=1e-12)
    r, c = P.sum(1), P.sum(0)
    for k, ln in enumerate(res.layer_num):
        assert ln == pytest.approx(float(c[off[k]:off[k + 1]] @ r[off[k]:off[k + 1]]), rel=1e-9, abs=1e-12)
    np.testing.assert_allclose(res.delta_in.numpy(), r, atol=1e-12 * np.abs(r).max())
    assert lg.edges == res.edges
    assert res.beta_eff == pytest.approx(beta_eff_from_matrix(lg.P)[0], rel=1e-9)


def test_batch_statistics_leave_running_statistics_untouched(mlp_batch):
    x, y = mlp_batch
    net = resmlp()
    net.train()
    before = {k: v.clone() for k, v in net.state_dict().items()}
    a = capacitance(net, x, y, bn="batch")
    b = capacitance(batch_stat_copy(net), x, y)  # torch's own batch-statistics BatchNorm
    for k, v in net.state_dict().items():
        assert torch.equal(v, before[k]), k
    assert net.training and all(m.training for m in net.modules())
    assert a.num == pytest.approx(b.num, rel=1e-12) and a.den == pytest.approx(b.den, rel=1e-12)
    assert abs(a.beta_eff - capacitance(net, x, y).beta_eff) > 1e-6  # the option changes the value
    with pytest.raises(ValueError, match="bn must be"):
        capacitance(net, x, y, bn="train")
    with pytest.raises(ValueError, match="couples the samples"):
        line_graph(net, x, y, bn="batch")


def test_nb201_cell_network_edges_by_hand():
    net = nb201_net(2)
    x = torch.randn(3, 3, 8, 8, dtype=D)
    res = capacitance(net, x, torch.tensor([0, 1, 2]))
    assert sorted(res.edge_names) == sorted(nb201_edges())


@pytest.mark.slow
@pytest.mark.parametrize("C", [2, 3, 4])
def test_nb201_cell_networks_match_loops(C):
    g = torch.Generator().manual_seed(10 + C)
    x = torch.randn(3, 3, 8, 8, generator=g, dtype=D)
    y = torch.tensor([0, 2, 1])
    modes, bns = (("local", "hessian"), ("eval", "batch")) if C == 2 else (("local",), ("eval",) if C == 3 else ("batch",))
    check_against_loops(nb201_net(C), x, y, nb201_edges(), modes=modes, bns=bns)


@pytest.mark.slow
def test_small_resnet_with_torchvision_blocks_matches_loops():
    net = small_resnet()
    g = torch.Generator().manual_seed(7)
    x = torch.randn(3, 3, 16, 16, generator=g, dtype=D)
    y = torch.tensor([1, 0, 2])
    check_against_loops(net, x, y, resnet_edges())


@pytest.mark.parametrize("bn", ["eval", "batch"])
def test_torchvision_resnet18_returns_a_number(bn):
    torch.manual_seed(0)
    net = torchvision.models.resnet18(num_classes=10)
    before = {k: v.clone() for k, v in net.state_dict().items()}
    x = torch.randn(2, 3, 32, 32)
    res = capacitance(net, x, torch.tensor([3, 7]), bn=bn)
    assert math.isfinite(res.beta_eff) and res.num != 0 and res.den != 0
    assert len(res.layer_names) == 41 and ("layer1.0.bn2", "layer2.0.downsample.0") in res.edge_names
    assert beta_eff(net, x, torch.tensor([3, 7]), bn=bn) == pytest.approx(res.beta_eff, rel=1e-4)
    assert all(torch.equal(v, before[k]) for k, v in net.state_dict().items())


def test_module_owning_parameters_is_one_layer(mlp_batch):
    class Scaled(nn.Module):  # like ConvNeXt's CNBlock: a parameter of its own next to submodules
        def __init__(self):
            super().__init__()
            self.fc = nn.Linear(5, 5)
            self.layer_scale = nn.Parameter(torch.linspace(0.5, 1.5, 5))

        def forward(self, x):
            return x + self.layer_scale * torch.relu(self.fc(x))

    torch.manual_seed(1)
    net = nn.Sequential(nn.Linear(4, 5), nn.ReLU(), Scaled(), nn.ReLU(), nn.Linear(5, 5), nn.ReLU(),
                        nn.Linear(5, 3)).double()
    x, y = mlp_batch
    res = capacitance(net, x, y)
    assert res.layer_names == ("0", "2", "4", "6") and res.layer_sizes[1] == 30 + 5
    with pytest.raises(ValueError, match="one layer as a whole"):
        capacitance(net, x, y, layers="2.fc")


def test_identically_zero_dag_is_an_error():
    class Wide(nn.Module):  # two branches straight into the classifier: every row sum is zero
        def __init__(self):
            super().__init__()
            self.a, self.b, self.c = nn.Linear(4, 5), nn.Linear(4, 5), nn.Linear(5, 3)

        def forward(self, x):
            return self.c(torch.relu(self.a(x)) + torch.relu(self.b(x)))

    with pytest.raises(ValueError, match="too few parametrised layers"):
        beta_eff(Wide(), torch.randn(5, 4), torch.randint(0, 3, (5,)))
