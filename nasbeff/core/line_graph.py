"""The explicit line graph G_B: the inspectable reference for the matrix-free beta_eff.

Every parametrised layer carries G_A edges: parameter p joins input neuron ``src`` to output
neuron ``dst`` (``src = -1`` for a bias, whose input is the constant 1). Linear and ConvNd weights
are such edges (a conv weight is shared by many neuron pairs: one-to-many); a BatchNorm scale
gamma_c joins (c, s) to (c, s) for every position s.

In ``mode="local"`` the block of the G_A edge u -> v (one per edge of the layer DAG, a chain's
being l -> l+1) is (paper Eqs. 5-7, explicit term)

    B_uv[p, q] = sum_n sum_paths  A_n[dst(p) <- p] * J_n[src(q), dst(p)] * M_n[q],

over the paths p -> j -> i -> q of G_A: p ends at neuron j of layer u's output, the
parameter-free operations J_n = d z_v / d a_u (linearised at sample n, v's other predecessors
held fixed; read off the captured autograd graph) carry j to i, and q starts at input neuron i
of layer v. A_n = d a_j / d theta_p (the input activation z_src, or the normalised input for a
BatchNorm scale, or 1 for a bias), M_n = g_dst(q)(n) * d^2 f_dst / d u_i d theta_q (1 for weights,
1/sigma_c for a BatchNorm scale, 0 for biases). Two parameters are linked exactly when they share
a neuron: the Nepusz-Vicsek line graph (Fig. 1a). The paths are enumerated with vectorised index
arithmetic one block at a time (no Python loop over entries); the sum over samples runs in
chunks. ``mode="hessian"`` gives dense blocks d^2C / d theta_u d theta_v (small nets only).

Edges follow the paper's direction, reversed: P[p, q] is the weight of the link q -> p, so
delta_in = P 1 is every node's in-strength.
"""

from __future__ import annotations

from dataclasses import dataclass

import networkx as nx
import numpy as np
import scipy.sparse as sp
import torch
from torch import nn
from torch.autograd import grad
from torch.func import functional_call

from .graph import BNMode, DagCapture, LayerSpec, capture, check_bn, eval_mode

_MAX_DENSE_JACOBIAN = 2 ** 26  # entries of the per-sample Jacobians of non-elementwise operations
_CHUNK = 2 ** 23  # path x sample products held at once


@dataclass(frozen=True)
class Incidence:
    """G_A edges of one layer: parameter ``param`` joins input neuron ``src`` (-1: constant) to
    output neuron ``dst``. ``a_kind``: how d a_dst / d theta_param is read per sample ('input':
    z_src, 'bn': normalised input, 'one': 1). ``m_coef``: d^2 f_dst / d u_src d theta_param."""

    param: np.ndarray
    src: np.ndarray
    dst: np.ndarray
    a_kind: np.ndarray
    m_coef: np.ndarray


_INPUT, _BN, _ONE = 0, 1, 2


def layer_incidence(module: nn.Module, in_shape: tuple[int, ...], out_shape: tuple[int, ...]) -> Incidence:
    """Enumerate the G_A edges of a Linear, ConvNd (zero padding) or BatchNormNd layer for one
    sample whose input has shape ``in_shape`` and output ``out_shape`` (batch dim excluded)."""
    if isinstance(module, nn.Linear):
        if len(in_shape) != 1:
            raise ValueError("the explicit line graph handles Linear layers on (N, features) inputs only")
        i_n, j_n = module.in_features, module.out_features
        jj, ii = np.meshgrid(np.arange(j_n), np.arange(i_n), indexing="ij")
        parts = [(jj.ravel() * i_n + ii.ravel(), ii.ravel(), jj.ravel(), _INPUT, 1.0)]
        if module.bias is not None:
            parts.append((j_n * i_n + np.arange(j_n), np.full(j_n, -1), np.arange(j_n), _ONE, 0.0))
        return _join_parts(parts)
    if isinstance(module, nn.modules.conv._ConvNd):
        if module.transposed or module.padding_mode != "zeros" or isinstance(module.padding, str):
            raise ValueError(f"the explicit line graph handles zero-padded, non-transposed convolutions with "
                             f"numeric padding only, got {module}")
        return _conv_incidence(module, in_shape, out_shape)
    if isinstance(module, nn.modules.batchnorm._BatchNorm):
        if not module.affine or not module.track_running_stats:
            raise ValueError("the explicit line graph handles affine BatchNorm with running statistics only")
        c = in_shape[0]
        per = int(np.prod(in_shape[1:], dtype=np.int64)) if len(in_shape) > 1 else 1
        neuron = np.arange(c * per)
        chan = neuron // per
        return _join_parts([(chan, neuron, neuron, _BN, np.nan), (c + chan, np.full(c * per, -1), neuron, _ONE, 0.0)])
    raise ValueError(f"the explicit line graph supports Linear, ConvNd and BatchNormNd layers, not "
                     f"{type(module).__name__}; the matrix-free nasbeff.core.capacitance handles any layer")


def _join_parts(parts) -> Incidence:
    param, src, dst, kind, coef = [], [], [], [], []
    for p, s, d, k, cf in parts:
        param.append(np.asarray(p, dtype=np.int64))
        src.append(np.asarray(s, dtype=np.int64))
        dst.append(np.asarray(d, dtype=np.int64))
        kind.append(np.full(len(p), k, dtype=np.int8))
        coef.append(np.full(len(p), cf, dtype=np.float64))
    return Incidence(*(np.concatenate(a) for a in (param, src, dst, kind, coef)))


def _conv_incidence(conv: nn.modules.conv._ConvNd, in_shape, out_shape) -> Incidence:
    nd = len(in_shape) - 1
    c_in, o_n, g = conv.in_channels, conv.out_channels, conv.groups
    cg, og = c_in // g, o_n // g
    ks, st, pd, dl = conv.kernel_size, conv.stride, conv.padding, conv.dilation
    s_in, s_out = np.array(in_shape[1:]), np.array(out_shape[1:])
    # grids over (o, c', k_1..k_nd, s_1..s_nd)
    axes = [np.arange(o_n), np.arange(cg)] + [np.arange(k) for k in ks] + [np.arange(s) for s in s_out]
    grids = np.meshgrid(*axes, indexing="ij")
    o, cp = grids[0].ravel(), grids[1].ravel()
    kk = [grids[2 + d].ravel() for d in range(nd)]
    ss = [grids[2 + nd + d].ravel() for d in range(nd)]
    pos = [ss[d] * st[d] - pd[d] + kk[d] * dl[d] for d in range(nd)]
    ok = np.ones(len(o), dtype=bool)
    for d in range(nd):
        ok &= (pos[d] >= 0) & (pos[d] < s_in[d])
    o, cp = o[ok], cp[ok]
    kk, ss, pos = [k[ok] for k in kk], [s[ok] for s in ss], [p[ok] for p in pos]
    c = (o // og) * cg + cp
    w_idx = np.ravel_multi_index([o, cp, *kk], (o_n, cg, *ks))
    src = np.ravel_multi_index([c, *pos], (c_in, *s_in))
    dst = np.ravel_multi_index([o, *ss], (o_n, *s_out))
    parts = [(w_idx, src, dst, _INPUT, 1.0)]
    if conv.bias is not None:
        n_w = o_n * cg * int(np.prod(ks))
        neuron = np.arange(o_n * int(np.prod(s_out)))
        parts.append((n_w + neuron // int(np.prod(s_out)), np.full(len(neuron), -1), neuron, _ONE, 0.0))
    return _join_parts(parts)


def _edge_jacobian(z_v: torch.Tensor, cut_u: torch.Tensor):
    """J_uv = d z_v / d a_u per sample (other predecessors fixed), as (rows in z_v, cols in a_u,
    values[N, nnz]), read off the captured graph. A diagonal J (elementwise operations, branch
    sums) is recognised by J^T r == (J^T 1) * r for a random r; otherwise dense per-sample rows."""
    n = z_v.shape[0]
    d_in, d_out = cut_u[0].numel(), z_v[0].numel()
    (diag,) = grad(z_v, cut_u, torch.ones_like(z_v), retain_graph=True, allow_unused=True)
    if diag is None:
        empty = np.zeros(0, dtype=np.int64)
        return empty, empty, torch.zeros(n, 0, dtype=z_v.dtype, device=z_v.device)
    if d_in == d_out:
        gen = torch.Generator(device=z_v.device).manual_seed(0)
        rnd = torch.randn(z_v.shape, generator=gen, dtype=z_v.dtype, device=z_v.device)
        (jr,) = grad(z_v, cut_u, rnd, retain_graph=True)
        tol = 1e3 * torch.finfo(z_v.dtype).eps * float(diag.abs().max()) * float(rnd.abs().max())
        if torch.allclose(jr.reshape(n, -1), diag.reshape(n, -1) * rnd.reshape(n, -1), rtol=0, atol=tol):
            idx = np.arange(d_in)
            return idx, idx, diag.reshape(n, -1)
    if n * d_in * d_out > _MAX_DENSE_JACOBIAN:
        raise ValueError(f"the operations between two layers need a dense per-sample Jacobian of {d_out}x{d_in}: "
                         "too large for the explicit reference")
    basis = torch.eye(d_out, dtype=z_v.dtype, device=z_v.device).reshape(d_out, 1, *z_v.shape[1:])
    (jac,) = grad(z_v, cut_u, basis.expand(d_out, *z_v.shape), retain_graph=True, is_grads_batched=True)
    jac = jac.reshape(d_out, n, d_in).permute(1, 0, 2)
    nz = (jac != 0).any(0).nonzero().cpu().numpy()
    return nz[:, 0], nz[:, 1], jac[:, nz[:, 0], nz[:, 1]]


def _a_values(inc: Incidence, module: nn.Module, z: torch.Tensor, idx: np.ndarray) -> torch.Tensor:
    """A_n = d a_dst / d theta_param for the incidences ``idx``, per sample: (N, len(idx))."""
    n = z.shape[0]
    zf = z.detach().reshape(n, -1)
    src = torch.as_tensor(np.maximum(inc.src[idx], 0), device=z.device)
    vals = zf[:, src]
    kind = torch.as_tensor(inc.a_kind[idx], device=z.device)
    if isinstance(module, nn.modules.batchnorm._BatchNorm):
        per = zf.shape[1] // module.num_features
        chan = src // per
        mean = module.running_mean.to(zf)[chan]
        std = torch.sqrt(module.running_var.to(zf)[chan] + module.eps)
        vals = torch.where(kind == _BN, (vals - mean) / std, vals)
    return torch.where(kind == _ONE, torch.ones_like(vals), vals)


def _m_coef(inc: Incidence, module: nn.Module, in_numel: int, dtype, device) -> torch.Tensor:
    coef = torch.as_tensor(inc.m_coef, dtype=dtype, device=device)
    if isinstance(module, nn.modules.batchnorm._BatchNorm):
        per = in_numel // module.num_features
        chan = torch.as_tensor(np.maximum(inc.src, 0) // per, device=device)
        inv = 1.0 / torch.sqrt(module.running_var.to(dtype=dtype, device=device) + module.eps)
        coef = torch.where(torch.as_tensor(inc.a_kind == _BN, device=device), inv[chan], coef)
    return coef


def _group(keys: np.ndarray, size: int):
    order = np.argsort(keys, kind="stable")
    counts = np.bincount(keys, minlength=size)
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    return order, counts, starts


def _local_block(inc_l: Incidence, a_of, inc_n: Incidence, m_val, j_out, j_in, j_val, dim_a, dim_u):
    """COO (rows, cols, values) of B_l by the path join p -> j -> i -> q, summed over samples."""
    keep = inc_n.src >= 0
    m_rows = np.flatnonzero(keep)
    ord_a, cnt_a, st_a = _group(inc_l.dst, dim_a)
    ord_m, cnt_m, st_m = _group(inc_n.src[keep], dim_u)
    per_entry = cnt_a[j_in] * cnt_m[j_out]
    total = int(per_entry.sum())
    e = np.repeat(np.arange(len(j_in)), per_entry)
    k = np.arange(total) - np.repeat(np.cumsum(per_entry) - per_entry, per_entry)
    cm = cnt_m[j_out][e]
    a_idx = ord_a[st_a[j_in][e] + k // np.maximum(cm, 1)]
    m_idx = m_rows[ord_m[st_m[j_out][e] + k % np.maximum(cm, 1)]]
    dev = m_val.device
    vals = torch.zeros(total, dtype=m_val.dtype, device=dev)
    n = m_val.shape[0]
    step_p = max(1, _CHUNK // max(n, 1))
    for p0 in range(0, total, step_p):
        sl = slice(p0, p0 + step_p)
        ei, mi = (torch.as_tensor(t[sl], device=dev) for t in (e, m_idx))
        vals[sl] = (a_of(a_idx[sl]) * j_val[:, ei] * m_val[:, mi]).sum(0)
    return inc_l.param[a_idx], inc_n.param[m_idx], vals.cpu().numpy()


@dataclass
class LineGraph:
    """Explicit G_B: sparse P (rows/cols = parameters in layer order, P[p, q] = weight of link
    q -> p) with node labels (layer, parameter, index); ``edges`` are G_A's (u, v) pairs."""

    P: sp.csr_matrix
    layer_names: tuple[str, ...]
    param_names: tuple[tuple[str, ...], ...]
    param_shapes: tuple[tuple[tuple[int, ...], ...], ...]
    mode: str
    edges: tuple[tuple[int, int], ...] = ()

    def node_labels(self) -> list[tuple[str, str, tuple[int, ...]]]:
        labels = []
        for lname, pnames, shapes in zip(self.layer_names, self.param_names, self.param_shapes):
            for pn, shape in zip(pnames, shapes):
                labels.extend((lname, pn, tuple(int(i) for i in ix)) for ix in np.ndindex(*shape))
        return labels

    def to_networkx(self) -> nx.DiGraph:
        """G_B as a DiGraph: nodes = parameters, edge q -> p with weight P[p, q] (structural
        zeros, e.g. a dead ReLU, are kept as edges of weight 0)."""
        labels = self.node_labels()
        coo = self.P.tocoo()
        g = nx.DiGraph(mode=self.mode)
        g.add_nodes_from(labels)
        g.add_weighted_edges_from((labels[c], labels[r], float(v)) for r, c, v in zip(coo.row, coo.col, coo.data))
        return g

    def beta_eff(self, eps: float = 1e-12) -> float:
        return beta_eff_from_matrix(self.P, eps)[0]


def beta_eff_from_matrix(P, eps: float = 1e-12) -> tuple[float, float, float]:
    """(beta_eff, num, den) of a weighted adjacency P (dense or sparse): delta_in = P 1,
    num = 1^T P delta_in, den = 1^T delta_in, beta_eff = num / (den + eps) (Eq. 2)."""
    P = sp.csr_matrix(P) if not sp.issparse(P) else P.tocsr()
    if P.shape[0] != P.shape[1]:
        raise ValueError(f"P must be square, got {P.shape}")
    ones = np.ones(P.shape[0])
    delta_in = P @ ones
    num = float(ones @ (P @ delta_in))
    den = float(delta_in.sum())
    return num / (den + eps), num, den


def beta_eff_from_graph(g: nx.DiGraph, eps: float = 1e-12) -> float:
    """beta_eff = sum_i s_out(i) s_in(i) / sum_i s_in(i) from the in/out strengths of G_B."""
    s_in = dict(g.in_degree(weight="weight"))
    s_out = dict(g.out_degree(weight="weight"))
    num = sum(s_out[v] * s_in[v] for v in g.nodes)
    den = sum(s_in.values())
    return num / (den + eps)


def line_graph(model: nn.Module, x: torch.Tensor, y: torch.Tensor, *, mode: str = "local",
               layers: LayerSpec = None, dtype: torch.dtype = torch.float64, bn: BNMode = "eval") -> LineGraph:
    """Build G_B explicitly (sparse P, Eq. 7) for the layer DAG of ``model`` on the batch (x, y),
    in float64 by default: one block per edge u -> v. ``mode='local'`` uses the line-graph blocks
    above (BatchNorm with running statistics only); ``mode='hessian'`` computes the dense
    mixed-Hessian blocks (small nets only)."""
    if mode not in ("local", "hessian"):
        raise ValueError(f"mode must be 'local' or 'hessian', got {mode!r}")
    check_bn(bn)
    with eval_mode(model):
        cap = capture(model, x, y, layers=layers, dtype=dtype, bn=bn)
        L, sizes, offs = cap.layers, cap.sizes, cap.offsets
        dim = sum(sizes)
        rows, cols, vals = [np.zeros(0, dtype=np.int64)], [np.zeros(0, dtype=np.int64)], [np.zeros(0)]
        if mode == "local":
            if bn == "batch" and any(isinstance(lay.module, nn.modules.batchnorm._BatchNorm) for lay in L):
                raise ValueError("the explicit local line graph needs per-sample layers: BatchNorm with batch "
                                 "statistics couples the samples (use bn='eval' or mode='hessian')")
            gs = cap.output_grads()
            n = x.shape[0]
            incs = [layer_incidence(lay.module, tuple(z.shape[1:]), tuple(a.shape[1:]))
                    for lay, z, a in zip(L, cap.inputs, cap.outputs)]
            calls = [cap.calls[i] for i in cap.selected]
            for u, v in cap.edges:
                z_u = calls[u].z.detach()
                a_of = (lambda idx, inc=incs[u], mod=L[u].module, z=z_u: _a_values(inc, mod, z, idx))
                coef = _m_coef(incs[v], L[v].module, calls[v].z[0].numel(), z_u.dtype, z_u.device)
                g_v = gs[v].reshape(n, -1)
                m_val = coef * g_v[:, torch.as_tensor(incs[v].dst, device=g_v.device)]
                j_out, j_in, j_val = _edge_jacobian(calls[v].z, calls[u].cut)
                r, c, val = _local_block(incs[u], a_of, incs[v], m_val.detach(), j_out, j_in, j_val.detach(),
                                         calls[u].a[0].numel(), calls[v].z[0].numel())
                rows.append(r + offs[u]); cols.append(c + offs[v]); vals.append(val)
        else:
            for u, v in cap.edges:
                block = _hessian_block(cap, u, v)
                rr, cc = np.meshgrid(np.arange(sizes[u]), np.arange(sizes[v]), indexing="ij")
                rows.append(rr.ravel() + offs[u]); cols.append(cc.ravel() + offs[v]); vals.append(block.ravel())
        P = sp.coo_matrix((np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))), shape=(dim, dim)).tocsr()
        return LineGraph(P=P, layer_names=tuple(lay.name for lay in L),
                         param_names=tuple(lay.param_names for lay in L),
                         param_shapes=tuple(tuple(tuple(p.shape) for p in lay.params) for lay in L), mode=mode,
                         edges=tuple(cap.edges))


def _hessian_block(cap: DagCapture, u: int, v: int) -> np.ndarray:
    """Dense d^2 C / d theta_u d theta_v by forward-over-reverse Jacobians (small nets)."""
    base = {k: (t.detach() if t is not None else None) for k, t in cap.tensors.items()}
    lay_a, lay_b = cap.layers[u], cap.layers[v]
    keys_a, keys_b = lay_a.keys(), lay_b.keys()
    shapes_a = [p.shape for p in lay_a.params]
    shapes_b = [p.shape for p in lay_b.params]

    def loss_of(va, vb):
        tensors = dict(base)
        tensors.update(zip(keys_a, _unflatten(va, shapes_a)))
        tensors.update(zip(keys_b, _unflatten(vb, shapes_b)))
        return nn.functional.cross_entropy(functional_call(cap.model, tensors, (cap.x,)), cap.labels)

    va = torch.cat([base[k].reshape(-1) for k in keys_a])
    vb = torch.cat([base[k].reshape(-1) for k in keys_b])
    jac = torch.func.jacfwd(torch.func.grad(loss_of, argnums=1), argnums=0)(va, vb)  # (d_b, d_a)
    return jac.T.detach().cpu().numpy()


def _unflatten(vec: torch.Tensor, shapes) -> list[torch.Tensor]:
    out, i = [], 0
    for s in shapes:
        k = int(np.prod(s, dtype=np.int64))
        out.append(vec[i:i + k].reshape(s))
        i += k
    return out
