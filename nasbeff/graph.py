"""G_A: the chain of parametrised layers of a network, captured in one forward pass.

The line graph G_B of the paper (Fig. 1a) has the trainable parameters of G_A as nodes. nasbeff
reads G_A off a real forward pass: the *layers* are the parametrised leaf modules (Linear,
ConvNd, BatchNorm, LayerNorm, ...) in forward-execution order, or those inside the sub-network
named by ``layers=``. Consecutive layers must be joined only by parameter-free operations
(ReLU, flatten, pooling, dropout, ...): that is checked on the autograd graph, and anything else
(a skip connection across layers, a layer called twice, a parametrised op between layers) is a
``ValueError``.

The capture runs the model through :func:`torch.func.functional_call` with fresh leaf copies of
the layer parameters, so the user's parameters, their ``requires_grad`` flags (a frozen probe has
none) and their ``.grad`` are never touched. Everything is computed in eval mode (BatchNorm uses
its running statistics, dropout is off), with autocast off and half precision upcast to float32.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field
from typing import Iterable, Sequence

import torch
from torch import nn
from torch.func import functional_call

LayerSpec = str | nn.Module | Sequence[str] | None


@dataclass
class Layer:
    """One parametrised layer of G_A: its module and the leaf tensors used as its parameters.

    ``params`` are the nodes of G_B owned by this layer, in ``named_parameters`` order
    (weight, then bias), each flattened row-major."""

    name: str
    module: nn.Module
    param_names: tuple[str, ...]
    params: list[torch.Tensor] = field(default_factory=list)

    @property
    def numel(self) -> int:
        return sum(p.numel() for p in self.params)

    def call(self, u: torch.Tensor, params: Sequence[torch.Tensor] | None = None, buffers: dict | None = None) -> torch.Tensor:
        """f_l(theta_l, u): the layer applied to input ``u`` with the given parameter tensors."""
        tensors = dict(zip(self.param_names, self.params if params is None else params))
        if buffers:
            tensors.update(buffers)
        return functional_call(self.module, tensors, (u,))


@dataclass
class ChainCapture:
    """Result of one forward pass: per layer l its input z_l and output a_l (autograd-connected
    through the parameter-free operations between layers), the logits and the mean
    cross-entropy loss C."""

    layers: list[Layer]
    inputs: list[torch.Tensor]
    outputs: list[torch.Tensor]
    logits: torch.Tensor
    loss: torch.Tensor
    layer_buffers: list[dict[str, torch.Tensor]]
    ends_at_logits: bool
    labels: torch.Tensor

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


def _resolve_scope(model: nn.Module, layers: LayerSpec) -> list[tuple[str, nn.Module]]:
    """The parametrised leaf modules (qualified name, module) that form G_A's layers."""
    named = dict(model.named_modules())
    if layers is None:
        scope = [("", model)]
    elif isinstance(layers, str):
        if layers not in named:
            raise ValueError(f"layers={layers!r} names no submodule of the model; known: {sorted(n for n in named if n)[:20]}")
        scope = [(layers, named[layers])]
    elif isinstance(layers, nn.Module):
        match = [n for n, m in named.items() if m is layers]
        if not match:
            raise ValueError("layers= is a module that is not part of the model")
        scope = [(match[0], layers)]
    else:
        scope = []
        for name in layers:
            if name not in named:
                raise ValueError(f"layers= entry {name!r} names no submodule of the model")
            scope.append((name, named[name]))
    found: dict[int, tuple[str, nn.Module]] = {}
    for prefix, root in scope:
        for sub, mod in root.named_modules():
            direct = [p for _, p in mod.named_parameters(recurse=False)]
            if not direct:
                continue
            qual = f"{prefix}.{sub}".strip(".") if sub else prefix
            if any(True for _ in mod.children()):
                raise ValueError(f"module {qual!r} has parameters of its own and also submodules; "
                                 "nasbeff needs parameters on leaf modules only")
            found[id(mod)] = (qual, mod)
    if not found:
        raise ValueError("no parametrised layers found (the model or the layers= sub-network has no parameters)")
    return list(found.values())


def _walk_to(start: torch.Tensor, target: torch.Tensor, forbidden: dict, what: str) -> None:
    """Check on the autograd graph that ``start`` depends on ``target`` only through
    parameter-free operations: walking back from ``start`` must reach ``target`` and never a
    layer parameter or another layer's output."""
    tgt = target.grad_fn
    if start.grad_fn is None:
        raise ValueError(f"{what}: the output does not depend on the previous layer")
    seen, stack, reached = set(), [start.grad_fn], False
    while stack:
        node = stack.pop()
        if node is None or node in seen:
            continue
        seen.add(node)
        if node is tgt:
            reached = True
            continue
        if node in forbidden:
            raise ValueError(f"{what}: it also depends on {forbidden[node]} (a skip connection or a "
                             "parametrised operation between layers); G_A must be a chain — pass "
                             "layers= to select a chain sub-network, such as the probe")
        stack.extend(nxt for nxt, _ in node.next_functions)
    if not reached:
        raise ValueError(f"{what}: it does not consume the previous layer's output")


def _validate_batch(x: torch.Tensor, y: torch.Tensor) -> None:
    if not isinstance(x, torch.Tensor) or not isinstance(y, torch.Tensor):
        raise TypeError("x and y must be torch tensors")
    if x.ndim == 0 or x.shape[0] == 0:
        raise ValueError(f"empty batch: x has shape {tuple(x.shape)}")
    if y.ndim != 1 or y.shape[0] != x.shape[0]:
        raise ValueError(f"y must have shape ({x.shape[0]},) to match x, got {tuple(y.shape)}")
    if y.dtype.is_floating_point or y.dtype == torch.bool:
        raise ValueError(f"y must hold integer class labels, got dtype {y.dtype}")


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


def capture_chain(model: nn.Module, x: torch.Tensor, y: torch.Tensor, layers: LayerSpec = None,
                  dtype: torch.dtype | None = None) -> ChainCapture:
    """Run ``model(x)`` once (call inside :func:`eval_mode`) and capture G_A's chain.

    Returns the layers with fresh leaf parameter tensors (requires_grad) in compute dtype, the
    input z_l and output a_l of every layer, the logits and C = mean cross-entropy(logits, y)."""
    _validate_batch(x, y)
    cdtype = compute_dtype(model, dtype)
    device = model_device(model)
    scope = _resolve_scope(model, layers)
    scope_ids = {id(m): (n, m) for n, m in scope}

    def cast(t: torch.Tensor) -> torch.Tensor:
        return t.to(device=device, dtype=cdtype) if t.is_floating_point() else t.to(device)

    # fresh tensors for the whole model: layer params become leaves with grad, the rest constants
    name_of = {id(m): n for n, m in model.named_modules()}
    tensors: dict[str, torch.Tensor] = {}
    layer_objs: dict[int, Layer] = {}
    for mod_id, (qual, mod) in scope_ids.items():
        full = name_of[mod_id]
        pnames = tuple(n for n, _ in mod.named_parameters(recurse=False))
        lay = Layer(name=qual or type(mod).__name__, module=mod, param_names=pnames)
        for pn, p in mod.named_parameters(recurse=False):
            leaf = cast(p.detach()).clone().requires_grad_(True)
            lay.params.append(leaf)
            tensors[f"{full}.{pn}".lstrip(".")] = leaf
        layer_objs[mod_id] = lay
    for n, p in model.named_parameters():
        tensors.setdefault(n, cast(p.detach()))
    for n, b in model.named_buffers():
        tensors.setdefault(n, cast(b))

    order: list[Layer] = []
    ins: list[torch.Tensor] = []
    outs: list[torch.Tensor] = []
    calls: dict[int, int] = {}
    active = [True]

    def pre_hook(mod, args):
        if not active[0]:
            return None
        if len(args) != 1 or not isinstance(args[0], torch.Tensor):
            raise ValueError(f"layer {layer_objs[id(mod)].name!r} takes {len(args)} inputs; G_A layers must take one tensor")
        calls[id(mod)] = calls.get(id(mod), 0) + 1
        if calls[id(mod)] > 1:
            raise ValueError(f"layer {layer_objs[id(mod)].name!r} is called more than once in forward "
                             "(shared weights do not form a chain)")
        order.append(layer_objs[id(mod)])
        ins.append(args[0])
        return None

    def post_hook(mod, args, out):
        if not active[0]:
            return None
        if not isinstance(out, torch.Tensor):
            raise ValueError(f"layer {layer_objs[id(mod)].name!r} returns {type(out).__name__}, not a tensor")
        outs.append(out)
        return out.clone()  # later in-place ops (ReLU(inplace=True)) must not rewrite a_l

    handles = []
    for mod_id, (_, mod) in scope_ids.items():
        handles.append(mod.register_forward_pre_hook(pre_hook))
        handles.append(mod.register_forward_hook(post_hook))
    try:
        xx = cast(x.detach())
        logits = functional_call(model, tensors, (xx,))
    finally:
        active[0] = False
        for h in handles:
            h.remove()

    unused = [layer_objs[i].name for i in scope_ids if i not in calls]
    if unused:
        raise ValueError(f"parametrised layers not used in forward: {unused}; pass layers= to select the chain")
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

    # chain check on the autograd graph: nothing but parameter-free ops between layers
    forbidden = {}
    for lay, a in zip(order, outs):
        if a.grad_fn is None:
            raise ValueError(f"layer {lay.name!r} output has no autograd graph")
        forbidden[a.grad_fn] = f"the output of layer {lay.name!r}"
        for p, pn in zip(lay.params, lay.param_names):
            forbidden[p.view_as(p).grad_fn.next_functions[0][0]] = f"parameter {lay.name}.{pn}"
    for i in range(len(order)):
        others = {k_: v for k_, v in forbidden.items() if k_ is not outs[i].grad_fn}
        if i + 1 < len(order):
            _walk_to(ins[i + 1], outs[i], others, f"layer {order[i + 1].name!r}")
        else:
            try:
                _walk_to(logits, outs[i], others, "the logits")
            except ValueError as e:
                raise ValueError(f"the last layer {order[i].name!r} must feed the logits through parameter-free "
                                 f"operations only: {e}") from None
    ends_at_logits = _feeds_logits_directly(logits, outs[-1])
    buffers = []
    for lay in order:
        full = name_of[id(lay.module)]
        buffers.append({bn: tensors[f"{full}.{bn}".lstrip(".")] for bn, _ in lay.module.named_buffers(recurse=False)})
    return ChainCapture(order, ins, outs, logits, loss, buffers, ends_at_logits, yy)


_SHAPE_ONLY = ("CloneBackward", "ViewBackward", "ReshapeAliasBackward", "UnsafeViewBackward", "AliasBackward",
               "SqueezeBackward", "UnsqueezeBackward", "FlattenBackward")


def _feeds_logits_directly(logits: torch.Tensor, last: torch.Tensor) -> bool:
    """True when the logits are the last layer's output up to clone/view operations, i.e. the
    last layer is the classifier, whose block has zero row sums under cross-entropy."""
    node = logits.grad_fn
    while node is not None and node is not last.grad_fn:
        if not type(node).__name__.startswith(_SHAPE_ONLY):
            return False
        nxt = [n for n, _ in node.next_functions if n is not None]
        if len(nxt) != 1:
            return False
        node = nxt[0]
    return node is last.grad_fn


def flat(tensors: Iterable[torch.Tensor | None], like: Sequence[torch.Tensor]) -> torch.Tensor:
    """Concatenate per-parameter tensors (None = zeros) into one flat vector in node order."""
    parts = [torch.zeros_like(ref).reshape(-1) if t is None else t.reshape(-1) for t, ref in zip(tensors, like)]
    return torch.cat(parts) if parts else torch.zeros(0)
