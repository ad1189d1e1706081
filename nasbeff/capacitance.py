"""Neural capacitance beta_eff, matrix-free (Jiang et al., Nat. Commun. 2024, Eqs. 2, 5-7).

G_B's weighted adjacency P has blocks B_l only between consecutive layers l, l+1 (rows: the
parameters theta_l, columns: theta_{l+1}). With delta_in = P 1 (Eq. 2)

    beta_eff = 1^T P delta_in / 1^T delta_in = num / (den + eps),
    num = sum_l <c_l, r_l>,   c_l = B_{l-1}^T 1 (column sums),   r_l = B_l 1 (row sums),
    den = sum_l 1^T B_l 1.

So only the row and column sums of each block are needed, never P itself:

* ``mode="hessian"``: B_l = d^2 C / d theta_l d theta_{l+1} (Eq. 7). r_l and c_{l+2} come from
  one double-backward of <grad_{theta_{l+1}} C, 1>.
* ``mode="local"`` (default): B_l = mixed second derivative of the surrogate
  E(theta_l, theta_{l+1}) = sum_n <g_{l+1}(n), f_{l+1}(theta_{l+1}, J_l f_l(theta_l, z_l(n)))>,
  with g_{l+1} = dC/d(output of layer l+1), J_l the parameter-free operations between the layers
  linearised at the current point, z_l the input of layer l, all held fixed (the explicit term of
  Eqs. 5-6). For a bias-free MLP, P[(l: j,i), (l+1: k,j)] = sum_n sigma'_j(n) g_k(n) z_i(n): the
  Nepusz-Vicsek line graph of Fig. 1a. The sums are
      r_l = (d a_l/d theta_l)^T J_l^T grad_u <g, D_theta f_{l+1}(theta_{l+1}, u) 1>,
      c_{l+1} = grad_{theta_{l+1}} <J_l^T D_u f_{l+1}(theta_{l+1}, u)^T g, w_l>,  w_l = (d a_l/d theta_l) 1,
      1^T B_l 1 = <J_l^T grad_u <g, D_theta f_{l+1} 1>, w_l>,
  i.e. vector-Jacobian products through single layers plus one product with J_l or J_l^T; the cost
  is a small multiple of one backward pass (``benchmarks/bench_capacitance.py``).

With mean cross-entropy the block that ends at the classifier has zero row sums (softmax is
shift-invariant: sum_k g_k = 0), so a chain of fewer than 4 parametrised layers ending at the
classifier has beta_eff == 0 identically. The paper's probe (Linear, BN, Linear, BN, Linear)
has 5 such layers because its BatchNorm layers count; fewer raise a ``ValueError``.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Literal, Sequence

import torch
from torch import nn
from torch.autograd import grad

from .graph import ChainCapture, Layer, LayerSpec, capture_chain, eval_mode, flat

Mode = Literal["local", "hessian"]


@dataclass(frozen=True)
class Capacitance:
    """beta_eff with its parts.

    ``layer_num[l]`` = <c_l, r_l> (zero for the first and last layer), ``block_den[l]`` =
    1^T B_l 1 for the block (l, l+1); ``num_abs`` = sum_i |c_i r_i|, the scale of num's terms.
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


def _ones(params: Sequence[torch.Tensor]) -> list[torch.Tensor]:
    return [torch.ones_like(p) for p in params]


def _grad(out: torch.Tensor, inputs: Sequence[torch.Tensor], grad_outputs=None, **kw) -> list[torch.Tensor]:
    """autograd.grad that returns zeros for inputs the output does not depend on."""
    if not out.requires_grad:
        return [torch.zeros_like(i) for i in inputs]
    res = grad(out, list(inputs), grad_outputs=grad_outputs, allow_unused=True, **kw)
    return [torch.zeros_like(i) if r is None else r for r, i in zip(res, inputs)]


def param_direction(layer: Layer, z: torch.Tensor, buffers: dict) -> torch.Tensor:
    """w = (d a / d theta) 1: the change of the layer's output when every parameter moves by 1.

    Closed forms for Linear (sum_i z_i + 1), zero-padded ConvNd (a ones-kernel convolution),
    eval-mode BatchNorm and LayerNorm (z_hat + 1); a forward-mode JVP for any other layer."""
    mod = layer.module
    z = z.detach()
    has_bias = "bias" in layer.param_names
    if isinstance(mod, nn.Linear):
        w = z.sum(-1, keepdim=True).expand(*z.shape[:-1], mod.out_features)
        return w + 1.0 if has_bias else w.clone()
    if isinstance(mod, nn.modules.conv._ConvNd) and not mod.transposed and mod.padding_mode == "zeros":
        nd = z.ndim - 2
        conv = {1: nn.functional.conv1d, 2: nn.functional.conv2d, 3: nn.functional.conv3d}[nd]
        ones = torch.ones(mod.groups, mod.in_channels // mod.groups, *mod.kernel_size, dtype=z.dtype, device=z.device)
        w = conv(z, ones, None, mod.stride, mod.padding, mod.dilation, mod.groups)
        w = w.repeat_interleave(mod.out_channels // mod.groups, dim=1)
        return w + 1.0 if has_bias else w
    if isinstance(mod, nn.modules.batchnorm._BatchNorm) and mod.affine and not mod.training \
            and mod.track_running_stats and layer.param_names == ("weight", "bias"):
        shape = (1, -1) + (1,) * (z.ndim - 2)
        mean, var = buffers["running_mean"].view(shape), buffers["running_var"].view(shape)
        return (z - mean) / torch.sqrt(var + mod.eps) + 1.0  # a = gamma * z_hat + beta
    if isinstance(mod, nn.LayerNorm) and layer.param_names in (("weight", "bias"), ("weight",)):
        z_hat = nn.functional.layer_norm(z, mod.normalized_shape, None, None, mod.eps)
        return z_hat + 1.0 if has_bias else z_hat
    primals = tuple(p.detach() for p in layer.params)
    _, tangent = torch.func.jvp(lambda *ps: layer.call(z, ps, buffers), primals, tuple(_ones(primals)))
    return tangent.detach()


def _check_depth(cap: ChainCapture) -> None:
    m = len(cap.layers)
    need = 4 if cap.ends_at_logits else 3
    if m < need:
        names = [lay.name for lay in cap.layers]
        raise ValueError(
            f"too few parametrised layers for beta_eff: {m} ({names}). With mean cross-entropy the block that "
            "ends at the classifier has zero row sums, so a chain of fewer than 4 layers ending at the "
            "classifier has beta_eff == 0 identically. Use a deeper probe (nasbeff.probe.NCP has 5 layers: "
            "its BatchNorm layers count).")


def _local_sums(cap: ChainCapture, want_r0: bool):
    """Row sums r_l (interior layers, and layer 0 if asked), column sums c_l (interior layers)
    and 1^T B_l 1 per block, for the local surrogate."""
    L, m = cap.layers, len(cap.layers)
    gs = grad(cap.loss, cap.outputs, retain_graph=True)  # g_l = dC/da_l
    r: list[list[torch.Tensor] | None] = [None] * m
    c: list[list[torch.Tensor] | None] = [None] * m
    dens = []
    for l in range(m - 1):
        nxt, z_next = L[l + 1], cap.inputs[l + 1]
        u = z_next.detach().requires_grad_(True)
        s = (gs[l + 1].detach() * nxt.call(u, buffers=cap.layer_buffers[l + 1])).sum()
        *g_theta, g_u = _grad(s, [*nxt.params, u], create_graph=True)
        # rows: q_u = grad_u <g, D_theta f 1>; r_l = (d a_l/d theta_l)^T J_l^T q_u in one VJP
        q_u = _grad(sum(gt.sum() for gt in g_theta), [u], retain_graph=True)[0].detach()
        need_w = l == 0 and not want_r0 or l + 1 <= m - 2
        w_l = param_direction(L[l], cap.inputs[l], cap.layer_buffers[l]) if need_w else None
        if l >= 1 or want_r0:
            r[l] = _grad(z_next, L[l].params, q_u, retain_graph=True)
            dens.append(sum(t.sum() for t in r[l]))
        else:  # the first layer can be huge (2048 x 256 in the probe): only its scalar 1^T B_0 1
            (q_a,) = grad(z_next, cap.outputs[l], q_u, retain_graph=True)
            dens.append((q_a * w_l).sum())
        # columns of block l = c_{l+1} = grad_theta <J_l^T g_u(theta), w_l>, needed for interior l+1
        if l + 1 <= m - 2:
            (jt_gu,) = grad(z_next, cap.outputs[l], g_u, create_graph=True, retain_graph=True)
            c[l + 1] = _grad((jt_gu * w_l).sum(), nxt.params)
    return r, c, dens


def _hessian_sums(cap: ChainCapture, want_r0: bool):
    """Row/column sums of the exact mixed Hessian blocks d^2C/dtheta_l dtheta_{l+1} (Eq. 7)."""
    L, m = cap.layers, len(cap.layers)
    all_params = [p for lay in L for p in lay.params]
    g_all = _grad(cap.loss, all_params, create_graph=True)
    per_layer, i = [], 0
    for lay in L:
        per_layer.append(g_all[i:i + len(lay.params)])
        i += len(lay.params)
    r: list = [None] * m
    c: list = [None] * m
    for k in range(m):
        prev = L[k - 1].params if k >= 1 else []
        nxt = L[k + 1].params if k + 1 < m else []
        s_k = sum(gk.sum() for gk in per_layer[k])
        res = _grad(s_k, [*prev, *nxt], retain_graph=True)
        if k >= 1:
            r[k - 1] = res[:len(prev)]           # H_{k-1,k} 1 = B_{k-1} 1
        if k + 1 < m:
            c[k + 1] = res[len(prev):]           # H_{k+1,k} 1 = B_k^T 1
    dens = [sum(t.sum() for t in r[l]) for l in range(m - 1)]
    return r, c, dens


def capacitance(model: nn.Module, x: torch.Tensor, y: torch.Tensor, *, mode: Mode = "local",
                layers: LayerSpec = None, eps: float = 1e-12, dtype: torch.dtype | None = None,
                return_delta_in: bool = False) -> Capacitance:
    """beta_eff = 1^T P delta_in / (1^T delta_in + eps), delta_in = P 1 (Eq. 2), with its parts.

    ``model(x)`` gives logits; C = mean cross-entropy vs ``y``. The model runs in eval mode with
    autocast off (its own modes are restored); half precision is upcast to float32, or everything
    is computed in ``dtype`` when given. ``layers`` selects the sub-network whose parametrised leaf
    modules form G_A's chain (default: the whole model). P is never materialised."""
    if mode not in ("local", "hessian"):
        raise ValueError(f"mode must be 'local' or 'hessian', got {mode!r}")
    with eval_mode(model):
        cap = capture_chain(model, x, y, layers=layers, dtype=dtype)
        _check_depth(cap)
        r, c, dens = (_local_sums if mode == "local" else _hessian_sums)(cap, return_delta_in)
        m = len(cap.layers)
        layer_num, num_abs = [], 0.0
        for l in range(m):
            if 1 <= l <= m - 2:
                prod = flat(c[l], cap.layers[l].params) * flat(r[l], cap.layers[l].params)
                layer_num.append(float(prod.sum()))
                num_abs += float(prod.abs().sum())
            else:
                layer_num.append(0.0)
        num = float(sum(layer_num))
        den = float(sum(float(d) for d in dens))
        delta = None
        if return_delta_in:
            delta = torch.cat([flat(r[l], cap.layers[l].params) if l < m - 1 else
                               torch.zeros(cap.layers[l].numel, dtype=cap.loss.dtype, device=cap.loss.device)
                               for l in range(m)]).detach()
        if abs(den) <= 1e3 * eps:
            warnings.warn(f"beta_eff denominator |1^T delta_in| = {abs(den):.3g} is within 1e3*eps of zero: "
                          "beta_eff -> 0 as training converges (Theorem 1), so the ratio is ill-conditioned here",
                          RuntimeWarning, stacklevel=2)
        return Capacitance(beta_eff=num / (den + eps), num=num, den=den, num_abs=num_abs, mode=mode,
                           layer_names=tuple(lay.name for lay in cap.layers), layer_sizes=tuple(cap.sizes),
                           layer_num=tuple(layer_num), block_den=tuple(float(d) for d in dens),
                           loss=float(cap.loss.detach()), delta_in=delta)


def beta_eff(model: nn.Module, x: torch.Tensor, y: torch.Tensor, *, mode: Mode = "local",
             layers: LayerSpec = None, eps: float = 1e-12) -> float:
    """Neural capacitance beta_eff of ``model`` on the batch (x, y); see :func:`capacitance`."""
    return capacitance(model, x, y, mode=mode, layers=layers, eps=eps).beta_eff
