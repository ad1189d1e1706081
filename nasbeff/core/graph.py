"""G_A: the DAG of parametrised layers of a network, captured in one forward pass.

The line graph G_B of the paper (Fig. 1a) has the trainable parameters of G_A as nodes. nasbeff
reads G_A off a real forward pass:

* **Layers** are the parametrised leaf modules (Linear, ConvNd, BatchNorm, LayerNorm, ...). A
  module that owns parameters directly *and* has submodules (ConvNeXt's ``CNBlock`` with its
  ``layer_scale``) is one layer of its own: the whole module, its subtree included, is f(theta, z)
  with theta = all parameters of the subtree. ``layers=`` selects a sub-network; G_A is then the
  sub-DAG induced by the selected layers (the edges of the whole network between two of them).
* **Edges**: layer v is a successor of layer u when v's input depends on u's output through
  parameter-free operations only (activations, pooling, flatten, dropout, identity paths, sums
  or products of branches), read off the autograd graph. A path through another layer is not an
  edge, and neither is a multiplication by the constant 0 (a 0-dim tensor that needs no grad,
  e.g. NB201's ``none`` op ``x.mul(0.0)``): its Jacobian is zero for every input, so it is cut
  structurally before any number is computed.

Each layer's output is cut from the graph (its consumers see a fresh leaf copy), so the local
Jacobian J_uv = d z_v / d a_u holds every other predecessor's output fixed, and dC/da_u is
accumulated layer by layer in reverse execution order (:meth:`DagCapture.output_grads`).
Inputs and outputs are copied at the module boundary, so in-place ReLUs and ``out += identity``
(torchvision's residual blocks) never rewrite a recorded tensor. A plain ``nn.AvgPool2d`` with
``count_include_pad=False`` is recorded in an equal form (the count-including pool over the valid
fraction); a subclass with a forward of its own (NB201's ``AvgPoolExcludingPad``, whose CPU backward
is a grouped convolution, ~4x faster than torch's pooling backward in float32) is recorded as it is.

The capture runs the model through :func:`torch.func.functional_call` with fresh leaf copies of
the selected parameters, so the user's parameters, their ``requires_grad`` flags and ``.grad``
are never touched. Everything runs with every module in eval mode (dropout off) and autocast
off; half precision is upcast to float32. ``bn="eval"`` normalises with the running statistics,
``bn="batch"`` with the statistics of the batch (running statistics are neither used nor updated).
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field
from typing import Iterable, Literal, Sequence

import torch
from torch import nn
from torch.autograd import grad
from torch.func import functional_call

LayerSpec = str | nn.Module | Sequence[str] | None
BNMode = Literal["eval", "batch"]
_BN_BUFFERS = ("running_mean", "running_var", "num_batches_tracked")


@dataclass
class Layer:
    """One parametrised layer of G_A: its module and the tensors used as its parameters.

    ``params`` are the nodes of G_B owned by this layer, in ``named_parameters`` order
    (weight, then bias), each flattened row-major. ``buffers`` are the module's buffers as used
    in the forward pass (BatchNorm running statistics are ``None`` under ``bn="batch"``)."""

    name: str
    module: nn.Module
    param_names: tuple[str, ...]
    params: list[torch.Tensor] = field(default_factory=list)
    buffers: dict[str, torch.Tensor | None] = field(default_factory=dict)
    prefix: str = ""

    def keys(self) -> list[str]:
        """The parameters' names in the whole model (``functional_call`` keys)."""
        return [f"{self.prefix}.{pn}".lstrip(".") for pn in self.param_names]

    @property
    def numel(self) -> int:
        return sum(p.numel() for p in self.params)

    def call(self, u: torch.Tensor, params: Sequence[torch.Tensor] | None = None,
             buffers: dict | None = None) -> torch.Tensor:
        """f_l(theta_l, u): the layer applied to input ``u`` with the given parameter tensors
        (and buffers; default: the layer's own)."""
        tensors: dict = dict(zip(self.param_names, self.params if params is None else params))
        tensors.update(self.buffers if buffers is None else buffers)
        return functional_call(self.module, tensors, (u,))


@dataclass
class Call:
    """One call of a layer module in the forward pass: input z, output a (graph-connected to z and
    the layer's parameters) and ``cut``, the leaf copy of a that the rest of the network consumed."""

    layer: Layer
    selected: bool
    z: torch.Tensor
    a: torch.Tensor
    cut: torch.Tensor
    preds: list[int] = field(default_factory=list)


@dataclass
class DagCapture:
    """Result of one forward pass: every layer call in execution order (a topological order of
    G_A), the selected layers with their predecessor lists, the logits and C = mean cross-entropy.

    ``layers``, ``inputs``, ``outputs`` refer to the selected layers; ``preds[v]`` lists the
    selected predecessors of selected layer v (indices into ``layers``); ``edges`` are the pairs
    (u, v) sorted; ``head`` is the selected layer whose output is the logits up to views (or None)."""

    calls: list[Call]
    selected: list[int]
    logit_preds: list[int]
    logits: torch.Tensor
    loss: torch.Tensor
    labels: torch.Tensor
    head: int | None
    tensors: dict[str, torch.Tensor | None]
    x: torch.Tensor
    model: nn.Module
    _grads: list[torch.Tensor | None] | None = None

    @property
    def layers(self) -> list[Layer]:
        return [self.calls[i].layer for i in self.selected]

    @property
    def inputs(self) -> list[torch.Tensor]:
        return [self.calls[i].z for i in self.selected]

    @property
    def outputs(self) -> list[torch.Tensor]:
        return [self.calls[i].a for i in self.selected]

    @property
    def preds(self) -> list[list[int]]:
        pos = {c: k for k, c in enumerate(self.selected)}
        return [[pos[p] for p in self.calls[c].preds if p in pos] for c in self.selected]

    @property
    def edges(self) -> list[tuple[int, int]]:
        return sorted((u, v) for v, ps in enumerate(self.preds) for u in ps)

    @property
    def sizes(self) -> list[int]:
        return [layer.numel for layer in self.layers]

    @property
    def offsets(self) -> list[int]:
        out, acc = [], 0
        for s in self.sizes:
            out.append(acc)
            acc += s
        return out

    def output_grads(self) -> list[torch.Tensor]:
        """g_v = dC/da_v for every selected layer: the chain rule layer by layer, in reverse
        execution order, over the calls downstream of a selected layer (one backward pass)."""
        if self._grads is None:
            n = len(self.calls)
            need = [False] * n
            for i in self.selected:
                need[i] = True
            for i in range(n):
                need[i] = need[i] or any(need[p] for p in self.calls[i].preds)
            acc: list[torch.Tensor | None] = [None] * n
            direct = [j for j in self.logit_preds if need[j]]

            def add(targets: list[int], vals) -> None:
                for j, t in zip(targets, vals):
                    if t is not None:
                        acc[j] = t if acc[j] is None else acc[j] + t

            if direct:
                add(direct, grad(self.loss, [self.calls[j].cut for j in direct], retain_graph=True, allow_unused=True))
            for i in reversed(range(n)):
                c = self.calls[i]
                if not need[i]:
                    continue
                if acc[i] is None:
                    acc[i] = torch.zeros_like(c.a)
                ps = [p for p in c.preds if need[p]]
                if ps and c.a.requires_grad:
                    add(ps, grad(c.a, [self.calls[p].cut for p in ps], acc[i], retain_graph=True, allow_unused=True))
            self._grads = acc
        return [self._grads[i].detach() for i in self.selected]


def compute_dtype(model: nn.Module, dtype: torch.dtype | None) -> torch.dtype:
    """float32 for half/bfloat16 models (upcast), else the model's own floating dtype."""
    if dtype is not None:
        if not dtype.is_floating_point:
            raise ValueError(f"dtype must be a floating dtype, got {dtype}")
        return dtype
    for p in model.parameters():
        if p.is_floating_point():
            return torch.float32 if p.dtype in (torch.float16, torch.bfloat16) else p.dtype
    return torch.float32


def model_device(model: nn.Module) -> torch.device:
    for t in list(model.parameters()) + list(model.buffers()):
        return t.device
    return torch.device("cpu")


def _layer_modules(root: nn.Module, prefix: str = "") -> list[tuple[str, nn.Module]]:
    """(qualified name, module) of every layer under ``root``: parametrised leaf modules, and
    modules owning parameters directly together with submodules (one layer, subtree included)."""
    out = []
    if any(True for _ in root.parameters(recurse=False)):
        return [(prefix, root)]
    for name, child in root.named_children():
        out.extend(_layer_modules(child, f"{prefix}.{name}".lstrip(".")))
    return out


def _resolve_scope(model: nn.Module, layers: LayerSpec) -> set[int]:
    """ids of the selected layer modules."""
    named = dict(model.named_modules())
    if layers is None:
        roots = [model]
    elif isinstance(layers, str):
        if layers not in named:
            raise ValueError(f"layers={layers!r} names no submodule of the model; known: {sorted(n for n in named if n)[:20]}")
        roots = [named[layers]]
    elif isinstance(layers, nn.Module):
        if not any(m is layers for m in named.values()):
            raise ValueError("layers= is a module that is not part of the model")
        roots = [layers]
    else:
        roots = []
        for name in layers:
            if name not in named:
                raise ValueError(f"layers= entry {name!r} names no submodule of the model")
            roots.append(named[name])
    all_ids = {id(m) for _, m in _layer_modules(model)}
    found = set()
    for root in roots:
        for _, mod in _layer_modules(root):
            if id(mod) not in all_ids:
                raise ValueError(f"layers= selects part of a module that owns parameters directly ({type(mod).__name__}); "
                                 "such a module is one layer as a whole: select it or its parent")
            found.add(id(mod))
    if not found:
        raise ValueError("no parametrised layers found (the model or the layers= sub-network has no parameters)")
    return found


def _validate_batch(x: torch.Tensor, y: torch.Tensor) -> None:
    if not isinstance(x, torch.Tensor) or not isinstance(y, torch.Tensor):
        raise TypeError("x and y must be torch tensors")
    if x.ndim == 0 or x.shape[0] == 0:
        raise ValueError(f"empty batch: x has shape {tuple(x.shape)}")
    if y.ndim != 1 or y.shape[0] != x.shape[0]:
        raise ValueError(f"y must have shape ({x.shape[0]},) to match x, got {tuple(y.shape)}")
    if y.dtype.is_floating_point or y.dtype == torch.bool:
        raise ValueError(f"y must hold integer class labels, got dtype {y.dtype}")


def check_bn(bn: str) -> None:
    if bn not in ("eval", "batch"):
        raise ValueError(f"bn must be 'eval' (running statistics) or 'batch' (batch statistics), got {bn!r}")


@contextlib.contextmanager
def eval_mode(model: nn.Module):
    """Put every submodule in eval mode, autocast off, and restore each module's own mode."""
    modes = [(m, m.training) for m in model.modules()]
    model.eval()
    dev = model_device(model).type
    try:
        ac = torch.autocast(device_type=dev, enabled=False)
    except RuntimeError:  # device type without autocast support
        ac = contextlib.nullcontext()
    try:
        with ac, torch.enable_grad():
            yield
    finally:
        for m, mode in modes:
            m.training = mode


def model_tensors(model: nn.Module, cdtype: torch.dtype, bn: BNMode,
                  leaves: dict[str, torch.Tensor] | None = None) -> dict[str, torch.Tensor | None]:
    """Every parameter and buffer of ``model`` cast to the compute dtype (constants), ``leaves``
    substituted; BatchNorm running statistics are None under ``bn="batch"``."""
    device = model_device(model)

    def cast(t: torch.Tensor) -> torch.Tensor:
        return t.detach().to(device=device, dtype=cdtype) if t.is_floating_point() else t.to(device)

    tensors: dict[str, torch.Tensor | None] = dict(leaves or {})
    for n, p in model.named_parameters():
        tensors.setdefault(n, cast(p))
    for mname, mod in model.named_modules():
        for bname, b in mod.named_buffers(recurse=False):
            key = f"{mname}.{bname}".lstrip(".")
            if bn == "batch" and isinstance(mod, nn.modules.batchnorm._BatchNorm) and bname in _BN_BUFFERS:
                tensors[key] = None
            else:
                tensors.setdefault(key, cast(b))
    return tensors


def _is_zero_constant(t) -> bool:
    return isinstance(t, torch.Tensor) and t.ndim == 0 and not t.requires_grad and bool(t == 0)


def _live_inputs(node) -> list:
    """next_functions of an autograd node, without the branch of a multiplication by constant 0."""
    nxt = [n for n, _ in node.next_functions]
    if type(node).__name__ == "MulBackward0":
        try:
            if _is_zero_constant(node._saved_other):
                nxt[0] = None
            if len(nxt) > 1 and _is_zero_constant(node._saved_self):
                nxt[1] = None
        except RuntimeError:  # saved tensors already freed: keep both branches
            pass
    return nxt


def _sources(t: torch.Tensor, stop: dict[int, int], forbidden: dict[int, str], what: str) -> list[int]:
    """The calls whose cut output ``t`` depends on through parameter-free operations (walk of the
    autograd graph back from ``t``, stopping at cut outputs)."""
    if t.grad_fn is None:
        return []
    found, seen, stack = set(), set(), [t.grad_fn]
    while stack:
        node = stack.pop()
        if node is None or node in seen:
            continue
        seen.add(node)
        if type(node).__name__ == "AccumulateGrad":
            key = id(node.variable)
            if key in stop:
                found.add(stop[key])
            elif key in forbidden:
                raise ValueError(f"{what} depends on {forbidden[key]} outside its layer (a shared weight or a "
                                 "parametrised operation between layers)")
            continue
        stack.extend(_live_inputs(node))
    return sorted(found)


_SHAPE_ONLY = ("CloneBackward", "ViewBackward", "ReshapeAliasBackward", "UnsafeViewBackward", "AliasBackward",
               "SqueezeBackward", "UnsqueezeBackward", "FlattenBackward")


def _direct_source(logits: torch.Tensor, stop: dict[int, int]) -> int | None:
    """The call whose output the logits are, up to clone/view operations (the classifier)."""
    node = logits.grad_fn
    while node is not None:
        if type(node).__name__ == "AccumulateGrad":
            return stop.get(id(node.variable))
        if not type(node).__name__.startswith(_SHAPE_ONLY):
            return None
        nxt = [n for n, _ in node.next_functions if n is not None]
        if len(nxt) != 1:
            return None
        node = nxt[0]
    return None


def _fast_avg_pool(mod: nn.AvgPool2d, args, out: torch.Tensor) -> torch.Tensor:
    """The same average pool as count_include_pad=True divided by a constant map (valid count /
    kernel size): equal values, by torch's count-including kernels."""
    x = args[0]
    ones = torch.ones(1, 1, *x.shape[-2:], dtype=x.dtype, device=x.device)
    kw = {"kernel_size": mod.kernel_size, "stride": mod.stride, "padding": mod.padding, "ceil_mode": mod.ceil_mode}
    frac = nn.functional.avg_pool2d(ones, count_include_pad=True, **kw)  # valid count / kernel size
    return nn.functional.avg_pool2d(x, count_include_pad=True, **kw) / frac


def capture(model: nn.Module, x: torch.Tensor, y: torch.Tensor, layers: LayerSpec = None,
            dtype: torch.dtype | None = None, bn: BNMode = "eval") -> DagCapture:
    """Run ``model(x)`` once (call inside :func:`eval_mode`) and capture G_A.

    Returns every layer call (selected layers get fresh leaf parameters with requires_grad, in
    compute dtype), each call's input z and output a, its predecessors, the logits and
    C = mean cross-entropy(logits, y)."""
    _validate_batch(x, y)
    check_bn(bn)
    cdtype = compute_dtype(model, dtype)
    device = model_device(model)
    chosen = _resolve_scope(model, layers)
    name_of = {id(m): n for n, m in model.named_modules()}
    leaves: dict[str, torch.Tensor] = {}
    layer_objs: dict[int, Layer] = {}
    for qual, mod in _layer_modules(model):
        lay = Layer(name=qual or type(mod).__name__, module=mod,
                    param_names=tuple(n for n, _ in mod.named_parameters()), prefix=qual)
        if id(mod) in chosen:
            for pn, p in mod.named_parameters():
                leaf = p.detach().to(device=device, dtype=cdtype).clone().requires_grad_(True)
                lay.params.append(leaf)
                leaves[f"{qual}.{pn}".lstrip(".")] = leaf
        layer_objs[id(mod)] = lay
    tensors = model_tensors(model, cdtype, bn, leaves)
    for mod_id, lay in layer_objs.items():
        full = name_of[mod_id]
        if not lay.params:
            lay.params = [tensors[f"{full}.{pn}".lstrip(".")] for pn in lay.param_names]
        lay.buffers = {bn_: tensors[f"{full}.{bn_}".lstrip(".")] for bn_, _ in lay.module.named_buffers()}

    calls: list[Call] = []
    pending: dict[int, torch.Tensor] = {}
    active = [True]

    def pre_hook(mod, args):
        if not active[0]:
            return None
        lay = layer_objs[id(mod)]
        if len(args) != 1 or not isinstance(args[0], torch.Tensor):
            raise ValueError(f"layer {lay.name!r} takes {len(args)} inputs; G_A layers must take one tensor")
        if id(mod) in chosen and any(c.layer is lay for c in calls):
            raise ValueError(f"layer {lay.name!r} is called more than once in forward "
                             "(shared weights are not a layer graph)")
        z = args[0].clone()  # a later in-place op on the caller's tensor must not rewrite z
        pending[id(mod)] = z
        return (z,)

    def post_hook(mod, args, out):
        if not active[0]:
            return None
        lay = layer_objs[id(mod)]
        if not isinstance(out, torch.Tensor):
            raise ValueError(f"layer {lay.name!r} returns {type(out).__name__}, not a tensor")
        cut = out.detach().requires_grad_(True)
        calls.append(Call(lay, id(mod) in chosen, pending.pop(id(mod)), out, cut))
        return cut.clone()  # consumers may modify it in place (ReLU(inplace=True), +=)

    handles = []
    for lay in layer_objs.values():
        handles.append(lay.module.register_forward_pre_hook(pre_hook))
        handles.append(lay.module.register_forward_hook(post_hook))
    for mod in model.modules():
        if (isinstance(mod, nn.AvgPool2d) and type(mod).forward is nn.AvgPool2d.forward
                and not mod.count_include_pad and mod.divisor_override is None):
            handles.append(mod.register_forward_hook(_fast_avg_pool))
    try:
        xx = x.detach().to(device=device, dtype=cdtype) if x.is_floating_point() else x.to(device)
        logits = functional_call(model, tensors, (xx,))
    finally:
        active[0] = False
        for h in handles:
            h.remove()

    called = {id(c.layer.module) for c in calls}
    unused = [layer_objs[i].name for i in chosen if i not in called]
    if unused:
        raise ValueError(f"parametrised layers not used in forward: {unused}; pass layers= to select the sub-network")
    if not isinstance(logits, torch.Tensor) or logits.ndim != 2 or logits.shape[0] != x.shape[0]:
        shape = tuple(logits.shape) if isinstance(logits, torch.Tensor) else type(logits).__name__
        raise ValueError(f"the model must return logits of shape (N, num_classes) = ({x.shape[0]}, K), got {shape}")
    yy = y.to(device)
    k = logits.shape[1]
    if int(yy.min()) < 0 or int(yy.max()) >= k:
        raise ValueError(f"labels out of range: y must lie in 0..{k - 1}, got min {int(yy.min())}, max {int(yy.max())}")
    if not torch.isfinite(logits).all():
        raise ValueError("non-finite logits (NaN or inf): the model diverged or the input is bad")
    loss = nn.functional.cross_entropy(logits, yy)
    if not torch.isfinite(loss):
        raise ValueError("non-finite loss (NaN or inf)")

    stop = {id(c.cut): i for i, c in enumerate(calls)}
    forbidden = {id(p): f"parameter {lay.name}.{pn}" for lay in layer_objs.values() if id(lay.module) in chosen
                 for p, pn in zip(lay.params, lay.param_names)}
    for c in calls:
        c.preds = _sources(c.z, stop, forbidden, f"the input of layer {c.layer.name!r}")
    logit_preds = _sources(logits, stop, forbidden, "the logits")
    selected = [i for i, c in enumerate(calls) if c.selected]
    d = _direct_source(logits, stop)
    head = selected.index(d) if d is not None and d in selected else None
    return DagCapture(calls, selected, logit_preds, logits, loss, yy, head, tensors, xx, model)


def flat(tensors: Iterable[torch.Tensor | None], like: Sequence[torch.Tensor]) -> torch.Tensor:
    """Concatenate per-parameter tensors (None = zeros) into one flat vector in node order."""
    parts = [torch.zeros_like(ref).reshape(-1) if t is None else t.reshape(-1) for t, ref in zip(tensors, like)]
    return torch.cat(parts) if parts else torch.zeros(0)
