"""Neural capacitance beta_eff, matrix-free (Jiang et al., Nat. Commun. 2024, Eqs. 2, 5-7).

G_A is the DAG of parametrised layers (:mod:`nasbeff.core.graph`; a chain is its special case). G_B's
weighted adjacency P (Eq. 7) has one block B_uv per edge u -> v of G_A (rows: the parameters
theta_u, columns: theta_v). With delta_in = P 1 (Eq. 2)

    beta_eff = 1^T P delta_in / 1^T delta_in = num / (den + eps),
    num = sum_u <c_u, r_u>,  r_u = sum_{v in succ(u)} B_uv 1,  c_u = sum_{w in pred(u)} B_wu^T 1,
    den = sum_{(u,v)} 1^T B_uv 1.

So only the row and column sums of each block are needed, never P itself:

* ``mode="hessian"``: B_uv = d^2 C / d theta_u d theta_v (Eq. 7) on the edges only; r and c
  come from one double-backward of <grad_{theta_k} C, 1> per layer k (a reference path: 11x one
  forward+backward on NB201's ResNet arch, ``benchmarks/bench_capacitance.py``; more with depth).
* ``mode="local"`` (default): B_uv = mixed second derivative of the surrogate
  E_uv(theta_u, theta_v) = sum_n <g_v(n), f_v(theta_v, z_v(n))>, where z_v depends on theta_u
  only through u's output a_u (J_uv = d z_v / d a_u, the parameter-free operations linearised,
  every other predecessor's output, u's input and g_v = dC/da_v held fixed): the explicit term
  of Eqs. 5-6. For a bias-free MLP, P[(l: j,i), (l+1: k,j)] = sum_n sigma'_j(n) g_k(n) z_i(n): the
  Nepusz-Vicsek line graph of Fig. 1a. With q_v = grad_u <g_v, D_theta f_v(theta_v, u) 1> and
  w_u = (d a_u / d theta_u) 1,
      r_u = (d a_u/d theta_u)^T sum_v J_uv^T q_v,      1^T B_uv 1 = <J_uv^T q_v, w_u>,
      c_v = grad_{theta_v} <D_u f_v(theta_v, u)^T g_v, t_v>,   t_v = sum_u J_uv w_u,
  i.e. vector-Jacobian products through single layers (closed forms for Linear, ConvNd and
  BatchNorm, whose blocks are diagonal per channel) plus products with J_uv; the cost is a small
  multiple of one backward pass (``benchmarks/bench_capacitance.py``).

With mean cross-entropy a block into a Linear classifier whose output is the logits has zero row
sums (softmax is shift-invariant: sum_k g_k = 0), so it contributes nothing and is not computed
in local mode. beta_eff is then identically 0 unless some layer has a predecessor and a
successor other than that classifier (for a chain ending at the classifier: at least 4 layers;
the paper's probe has 5 because its BatchNorm layers count); otherwise a ``ValueError`` is raised.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Literal, Sequence

import torch
from torch import nn
from torch.autograd import grad
from torch.func import functional_call

from .graph import (
    BNMode,
    DagCapture,
    Layer,
    LayerSpec,
    capture,
    check_bn,
    eval_mode,
    flat,
)

Mode = Literal["local", "hessian"]


@dataclass(frozen=True)
class Capacitance:
    """beta_eff with its parts.

    ``edges[e]`` = (u, v), indices into ``layer_names``, and ``block_den[e]`` = 1^T B_uv 1 (for a
    chain: the blocks (l, l+1) in order); ``layer_num[u]`` = <c_u, r_u> (zero for a layer without
    predecessors or successors); ``num_abs`` = sum_i |c_i r_i|, the scale of num's terms.
    ``delta_in`` = P 1 over all nodes in layer order (only when requested)."""

    beta_eff: float
    num: float
    den: float
    num_abs: float
    mode: str
    layer_names: tuple[str, ...]
    layer_sizes: tuple[int, ...]
    layer_num: tuple[float, ...]
    block_den: tuple[float, ...]
    loss: float
    delta_in: torch.Tensor | None = None
    edges: tuple[tuple[int, int], ...] = ()
    bn: str = "eval"

    @property
    def edge_names(self) -> tuple[tuple[str, str], ...]:
        return tuple((self.layer_names[u], self.layer_names[v]) for u, v in self.edges)


def _ones(params: Sequence[torch.Tensor]) -> list[torch.Tensor]:
    return [torch.ones_like(p) for p in params]


def _grad(out: torch.Tensor, inputs: Sequence[torch.Tensor], grad_outputs=None, **kw) -> list[torch.Tensor]:
    """autograd.grad that returns zeros for inputs the output does not depend on."""
    if not out.requires_grad:
        return [torch.zeros_like(i) for i in inputs]
    res = grad(out, list(inputs), grad_outputs=grad_outputs, allow_unused=True, **kw)
    return [torch.zeros_like(i) if r is None else r for r, i in zip(res, inputs)]


def _plain_conv(mod: nn.Module) -> bool:
    return isinstance(mod, nn.modules.conv._ConvNd) and not mod.transposed and mod.padding_mode == "zeros" \
        and not isinstance(mod.padding, str)


def _affine_bn(layer: Layer) -> bool:
    return isinstance(layer.module, nn.modules.batchnorm._BatchNorm) and layer.param_names == ("weight", "bias")


def _bn_stats(layer: Layer, z: torch.Tensor, buffers: dict,
              memo: dict | None = None) -> tuple[torch.Tensor, torch.Tensor, tuple[int, ...]]:
    """(z_hat, 1/sigma, reduced dims) of a BatchNorm layer: running statistics, or the batch's
    (biased variance) when they are None (``bn="batch"``); kept in ``memo`` per layer."""
    if memo is not None and id(layer) in memo:
        return memo[id(layer)]
    mod = layer.module
    dims = (0,) + tuple(range(2, z.ndim))
    shape = (1, -1) + (1,) * (z.ndim - 2)
    if buffers.get("running_mean") is not None and buffers.get("running_var") is not None:
        mean, var = buffers["running_mean"].view(shape), buffers["running_var"].view(shape)
    else:
        mean, var = z.mean(dims, keepdim=True), z.var(dims, unbiased=False, keepdim=True)
    inv = torch.rsqrt(var + mod.eps)
    out = (z - mean) * inv, inv, dims
    if memo is not None:
        memo[id(layer)] = out
    return out


def param_direction(layer: Layer, z: torch.Tensor, buffers: dict | None = None, memo: dict | None = None) -> torch.Tensor:
    """w = (d a / d theta) 1: the change of the layer's output when every parameter moves by 1.

    Closed forms for Linear (sum_i z_i + 1), zero-padded ConvNd (a ones-kernel convolution of the
    channel sum), BatchNorm and LayerNorm (z_hat + 1); a forward-mode JVP for any other layer."""
    mod = layer.module
    buffers = layer.buffers if buffers is None else buffers
    z = z.detach()
    has_bias = "bias" in layer.param_names
    if isinstance(mod, nn.Linear):
        w = z.sum(-1, keepdim=True).expand(*z.shape[:-1], mod.out_features)
        return w + 1.0 if has_bias else w.clone()
    if _plain_conv(mod):
        nd, g = z.ndim - 2, mod.groups
        conv = {1: nn.functional.conv1d, 2: nn.functional.conv2d, 3: nn.functional.conv3d}[nd]
        zs = z.reshape(z.shape[0], g, -1, *z.shape[2:]).sum(2)  # channel sums per group
        ones = torch.ones(g, 1, *mod.kernel_size, dtype=z.dtype, device=z.device)
        w = conv(zs, ones, None, mod.stride, mod.padding, mod.dilation, g)
        w = w.repeat_interleave(mod.out_channels // g, dim=1)
        return w + 1.0 if has_bias else w
    if _affine_bn(layer):
        return _bn_stats(layer, z, buffers, memo)[0] + 1.0  # a = gamma * z_hat + beta
    if isinstance(mod, nn.LayerNorm) and layer.param_names in (("weight", "bias"), ("weight",)):
        z_hat = nn.functional.layer_norm(z, mod.normalized_shape, None, None, mod.eps)
        return z_hat + 1.0 if has_bias else z_hat
    primals = tuple(p.detach() for p in layer.params)
    _, tangent = torch.func.jvp(lambda *ps: layer.call(z, ps, buffers), primals, tuple(_ones(primals)))
    return tangent.detach()


_CONV_GRAD = {1: (torch.nn.grad.conv1d_input, torch.nn.grad.conv1d_weight),
              2: (torch.nn.grad.conv2d_input, torch.nn.grad.conv2d_weight),
              3: (torch.nn.grad.conv3d_input, torch.nn.grad.conv3d_weight)}


def _q_and_c(layer: Layer, z: torch.Tensor, g: torch.Tensor, memo: dict | None = None):
    """q = grad_u <g, D_theta f(theta, u) 1> at u = z, and c(t) = grad_theta <D_u f^T g, t>:
    closed forms for Linear, zero-padded ConvNd and affine BatchNorm, autograd otherwise."""
    mod = layer.module
    zeros_b = [torch.zeros_like(p) for p in layer.params[1:]]
    if isinstance(mod, nn.Linear):
        return g.sum(-1, keepdim=True).expand_as(z), lambda t: [torch.einsum("...k,...i->ki", g, t)] + zeros_b
    if _plain_conv(mod):
        conv_in, conv_w = _CONV_GRAD[z.ndim - 2]
        W, grp = layer.params[0], mod.groups
        gs = g.reshape(g.shape[0], grp, -1, *g.shape[2:]).sum(2)  # sum over output channels per group
        ones = torch.ones(grp, 1, *mod.kernel_size, dtype=z.dtype, device=z.device)
        q = conv_in((z.shape[0], grp, *z.shape[2:]), ones, gs, mod.stride, mod.padding, mod.dilation, grp)
        q = q.repeat_interleave(z.shape[1] // grp, dim=1)
        return q, lambda t: [conv_w(t, W.shape, g, mod.stride, mod.padding, mod.dilation, grp)] + zeros_b
    if _affine_bn(layer):
        z_hat, inv, dims = _bn_stats(layer, z, layer.buffers, memo)
        if layer.buffers.get("running_mean") is None or layer.buffers.get("running_var") is None:
            q = inv * (g - g.mean(dims, keepdim=True) - z_hat * (g * z_hat).mean(dims, keepdim=True))
        else:
            q = g * inv
        return q, lambda t: [(q * t).sum(dims)] + zeros_b
    u = z.detach().requires_grad_(True)
    s = (g * layer.call(u)).sum()
    *g_theta, g_u = _grad(s, [*layer.params, u], create_graph=True)
    q = _grad(sum(gt.sum() for gt in g_theta), [u], retain_graph=True)[0].detach()
    return q, lambda t: _grad((g_u * t).sum(), layer.params)


def _zero_row_head(cap: DagCapture) -> int | None:
    """The Linear classifier whose output is the logits: its in-blocks have zero row sums."""
    h = cap.head
    return h if h is not None and isinstance(cap.layers[h].module, nn.Linear) else None


def _succs(preds: list[list[int]]) -> list[list[int]]:
    out: list[list[int]] = [[] for _ in preds]
    for v, ps in enumerate(preds):
        for u in ps:
            out[u].append(v)
    return out


def _check_depth(cap: DagCapture) -> None:
    preds, head = cap.preds, _zero_row_head(cap)
    succs = _succs(preds)
    if not any(preds[u] and any(v != head for v in succs[u]) for u in range(len(preds))):
        names = [lay.name for lay in cap.layers]
        raise ValueError(
            f"too few parametrised layers for beta_eff: {len(names)} ({names[:8]}{' ...' if len(names) > 8 else ''}), "
            "and no layer has both a predecessor and a successor other than the classifier, so beta_eff == 0 "
            "identically (with mean cross-entropy the blocks into the classifier have zero row sums; a chain "
            "needs at least 4 layers ending at the classifier). Use a deeper probe (nasbeff.core.probe.NCP has 5 "
            "layers: its BatchNorm layers count).")


def _local_sums(cap: DagCapture, want_all_rows: bool):
    """Row sums r_u, column sums c_u and 1^T B_uv 1 per edge, for the local surrogate."""
    L, m, preds = cap.layers, len(cap.layers), cap.preds
    succs, head = _succs(preds), _zero_row_head(cap)
    calls = [cap.calls[i] for i in cap.selected]
    zd = [cl.z.detach() for cl in calls]
    memo: dict = {}  # BatchNorm statistics per layer
    gs = cap.output_grads()
    live = [any(v != head for v in succs[u]) for u in range(m)]  # r_u may be non-zero
    need_r = [live[u] and (bool(preds[u]) or want_all_rows) for u in range(m)]
    w: dict[int, torch.Tensor] = {}
    e: list[torch.Tensor | None] = [None] * m
    c: list[list[torch.Tensor] | None] = [None] * m
    den: dict[tuple[int, int], torch.Tensor] = {}
    for v in range(m):
        ps = preds[v]
        if not ps:
            continue
        if v == head:
            for u in ps:
                den[(u, v)] = torch.zeros((), dtype=cap.loss.dtype, device=cap.loss.device)
            continue
        for u in ps:
            if u not in w:
                w[u] = param_direction(L[u], zd[u], memo=memo)
        z_v, cuts = calls[v].z, [calls[u].cut for u in ps]
        q, c_of = _q_and_c(L[v], zd[v], gs[v], memo)
        if need_r[v]:  # one pass gives J_uv^T q (values) and, differentiated in q, t_v = sum_u J_uv w_u
            dq = q.detach().clone().requires_grad_(True)
            vj = _grad(z_v, cuts, dq, create_graph=True)
            c[v] = c_of(_grad(sum((j * w[u]).sum() for j, u in zip(vj, ps)), [dq])[0])
            jtqs = [j.detach() for j in vj]
        else:
            jtqs = _grad(z_v, cuts, q, retain_graph=True)
        for u, jtq in zip(ps, jtqs):
            den[(u, v)] = (jtq * w[u]).sum()
            if need_r[u]:
                e[u] = jtq if e[u] is None else e[u] + jtq
    r: list[list[torch.Tensor] | None] = [None] * m
    for u in range(m):
        if need_r[u] and e[u] is not None:
            r[u] = _grad(calls[u].a, L[u].params, e[u], retain_graph=True)
    return r, c, den


def _hessian_sums(cap: DagCapture, want_all_rows: bool):
    """Row/column sums of the exact mixed Hessian blocks d^2C/dtheta_u dtheta_v (Eq. 7) on the edges."""
    L, m, preds = cap.layers, len(cap.layers), cap.preds
    succs = _succs(preds)
    loss = nn.functional.cross_entropy(functional_call(cap.model, cap.tensors, (cap.x,)), cap.labels)
    all_params = [p for lay in L for p in lay.params]
    g_all = _grad(loss, all_params, create_graph=True)
    per_layer, i = [], 0
    for lay in L:
        per_layer.append(g_all[i:i + len(lay.params)])
        i += len(lay.params)
    r: list = [None] * m
    c: list = [None] * m
    den = {}

    def add(store, k, vals):
        store[k] = list(vals) if store[k] is None else [a + b for a, b in zip(store[k], vals)]

    for k in range(m):
        if not preds[k] and not succs[k]:
            continue
        s_k = sum(gk.sum() for gk in per_layer[k])
        targets = [*preds[k], *succs[k]]
        res = _grad(s_k, [p for t in targets for p in L[t].params], retain_graph=True)
        j = 0
        for n_, t in enumerate(targets):
            part = res[j:j + len(L[t].params)]
            j += len(L[t].params)
            if n_ < len(preds[k]):       # H_{t,k} 1 = B_tk 1: rows of layer t
                add(r, t, part)
                den[(t, k)] = sum(p.sum() for p in part)
            else:                        # H_{t,k} 1 = B_kt^T 1: columns of layer t
                add(c, t, part)
    return r, c, den


def capacitance(model: nn.Module, x: torch.Tensor, y: torch.Tensor, *, mode: Mode = "local",
                layers: LayerSpec = None, eps: float = 1e-12, dtype: torch.dtype | None = None,
                bn: BNMode = "eval", return_delta_in: bool = False) -> Capacitance:
    """beta_eff = 1^T P delta_in / (1^T delta_in + eps), delta_in = P 1 (Eq. 2), with its parts.

    ``model(x)`` gives logits; C = mean cross-entropy vs ``y``. The model runs in eval mode with
    autocast off (its own modes are restored); ``bn="eval"`` normalises with the running
    statistics, ``bn="batch"`` with the batch's (running statistics untouched). Half precision is
    upcast to float32, or everything is computed in ``dtype`` when given. ``layers`` selects the
    sub-network whose layers form G_A (default: the whole model; edges are those of the whole
    network between selected layers). P is never materialised."""
    if mode not in ("local", "hessian"):
        raise ValueError(f"mode must be 'local' or 'hessian', got {mode!r}")
    check_bn(bn)
    with eval_mode(model):
        cap = capture(model, x, y, layers=layers, dtype=dtype, bn=bn)
        _check_depth(cap)
        r, c, den = (_local_sums if mode == "local" else _hessian_sums)(cap, return_delta_in)
        m = len(cap.layers)
        layer_num, num_abs = [], 0.0
        for u in range(m):
            if r[u] is not None and c[u] is not None:
                prod = flat(c[u], cap.layers[u].params) * flat(r[u], cap.layers[u].params)
                layer_num.append(float(prod.sum()))
                num_abs += float(prod.abs().sum())
            else:
                layer_num.append(0.0)
        edges = tuple(cap.edges)
        block_den = tuple(float(den[ed]) for ed in edges)
        num, den_total = float(sum(layer_num)), float(sum(block_den))
        delta = None
        if return_delta_in:
            delta = torch.cat([flat(r[u], cap.layers[u].params) if r[u] is not None else
                               torch.zeros(cap.layers[u].numel, dtype=cap.loss.dtype, device=cap.loss.device)
                               for u in range(m)]).detach()
        if abs(den_total) <= 1e3 * eps:
            warnings.warn(f"beta_eff denominator |1^T delta_in| = {abs(den_total):.3g} is within 1e3*eps of zero: "
                          "beta_eff -> 0 as training converges (Theorem 1), so the ratio is ill-conditioned here",
                          RuntimeWarning, stacklevel=2)
        return Capacitance(beta_eff=num / (den_total + eps), num=num, den=den_total, num_abs=num_abs, mode=mode,
                           layer_names=tuple(lay.name for lay in cap.layers), layer_sizes=tuple(cap.sizes),
                           layer_num=tuple(layer_num), block_den=block_den, loss=float(cap.loss.detach()),
                           delta_in=delta, edges=edges, bn=bn)


def beta_eff(model: nn.Module, x: torch.Tensor, y: torch.Tensor, *, mode: Mode = "local",
             layers: LayerSpec = None, eps: float = 1e-12, bn: BNMode = "eval") -> float:
    """Neural capacitance beta_eff of ``model`` on the batch (x, y); see :func:`capacitance`."""
    return capacitance(model, x, y, mode=mode, layers=layers, eps=eps, bn=bn).beta_eff
