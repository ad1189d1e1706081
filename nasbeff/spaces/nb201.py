"""NAS-Bench-201 / NATS-Bench topology search space (``tss``) and its cell network.

Cell structure
--------------
A cell is a DAG on 4 nodes. Node 0 is the cell input, node 3 the cell output, and node ``j``
is the sum of one operation per earlier node::

    x_j = sum_{i < j} op_{i->j}(x_i),    j = 1, 2, 3

so there are 6 edges, stored in the benchmark's order ``(0->1, 0->2, 1->2, 0->3, 1->3, 2->3)``.
Each edge carries one of the 5 ops :data:`NB201_OPS` (in benchmark order), giving
``5**6 = 15,625`` architectures. The string form is ``|o1~0|+|o2~0|o3~1|+|o4~0|o5~1|o6~2|``
(one ``|op~input|`` per edge, nodes separated by ``+``).

Benchmark index
---------------
The official index (``api.arch(i)``) is a fixed shuffle of the lexicographic enumeration
(edge 0->1 most significant, ops in :data:`NB201_OPS` order): the benchmark generated the list
and then called ``random.seed(88); random.shuffle(list)``. We rebuild the same permutation with
a private ``random.Random(88)`` and check it against known entries; the test-suite checks all
15,625 against the published table.

Network
-------
:class:`TinyCellNetwork` reproduces xautodl's ``TinyNetwork`` / ``DynamicShapeTinyNet``
(the networks NAS-Bench-201 and NATS-Bench trained), module for module, so that the parameter
names and shapes of ``state_dict()`` are identical to the benchmark's::

    stem:  Conv3x3(in_channels -> c_0, no bias) - BN
    cells: 3N+2 layers; layers N and 2N+1 are ResNet basic blocks with stride 2
           (ReLU-Conv3x3/s2-BN, ReLU-Conv3x3-BN; shortcut AvgPool2x2 - Conv1x1, no BN),
           the others are the searched cell (stride 1)
    head:  BN - ReLU - global average pool - Linear

NAS-Bench-201 uses ``C=16, N=5`` (channels ``[16]*5 + [32]*6 + [64]*6``).
"""

from __future__ import annotations

import functools
import random
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Literal, Union

import numpy as np
import torch
from torch import nn

__all__ = [
    "NB201_OPS",
    "NB201_EDGES",
    "NB201_NUM_ARCHS",
    "NB201Arch",
    "ArchLike",
    "RngLike",
    "to_arch",
    "parse_arch_str",
    "format_arch_str",
    "is_valid_arch_str",
    "index_to_arch",
    "arch_to_index",
    "index_to_str",
    "str_to_index",
    "is_cut_off",
    "cut_off_indices",
    "sample_indices",
    "sample_archs",
    "mutate_arch",
    "neighbours",
    "nb201_channels",
    "count_cell_network_params",
    "count_cell_network_flops",
    "NB201Cell",
    "NB201ReductionBlock",
    "TinyCellNetwork",
    "build_cell_network",
    "build_nb201_model",
    "AvgPoolExcludingPad",
    "NB201Space",
]

NB201_OPS: tuple[str, ...] = ("none", "skip_connect", "nor_conv_1x1", "nor_conv_3x3", "avg_pool_3x3")
"""The 5 candidate ops, in the benchmark's order (op id = position)."""

NB201_EDGES: tuple[tuple[int, int], ...] = ((0, 1), (0, 2), (1, 2), (0, 3), (1, 3), (2, 3))
"""The 6 edges as ``(source, target)`` node pairs, in string / storage order."""

NB201_NUM_ARCHS: int = len(NB201_OPS) ** len(NB201_EDGES)  # 15,625

_NUM_NODES = 4
_OP_ID = {op: i for i, op in enumerate(NB201_OPS)}
_EDGE_RE = re.compile(r"^(?P<op>[^~|+]*)~(?P<inp>[^~|+]*)$")
_SHUFFLE_SEED = 88
# Anchors from the benchmark's own generation script (index -> string).
_ANCHORS = {
    0: "|avg_pool_3x3~0|+|nor_conv_1x1~0|skip_connect~1|+|nor_conv_1x1~0|skip_connect~1|skip_connect~2|",
    9: "|avg_pool_3x3~0|+|none~0|none~1|+|skip_connect~0|none~1|nor_conv_3x3~2|",
    123: "|avg_pool_3x3~0|+|avg_pool_3x3~0|nor_conv_1x1~1|+|none~0|avg_pool_3x3~1|nor_conv_3x3~2|",
}


# --------------------------------------------------------------------------------------------
# Architecture encoding
# --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class NB201Arch:
    """One NB201 cell: ``ops[e]`` is the op on edge ``NB201_EDGES[e]``.

    Build with ``NB201Arch(('nor_conv_3x3', ...))``, :meth:`from_str`, :meth:`from_index` or
    :meth:`from_op_ids`. ``str(arch)`` gives the benchmark string.
    """

    ops: tuple[str, ...]

    def __post_init__(self) -> None:
        ops = tuple(self.ops)
        if len(ops) != len(NB201_EDGES):
            raise ValueError(f"NB201 arch needs {len(NB201_EDGES)} edge ops, got {len(ops)}: {ops!r}")
        for e, op in enumerate(ops):
            if op not in _OP_ID:
                src, dst = NB201_EDGES[e]
                raise ValueError(f"unknown op {op!r} on edge {src}->{dst}; expected one of {NB201_OPS}")
        object.__setattr__(self, "ops", ops)

    # constructors
    @classmethod
    def from_str(cls, arch_str: str) -> "NB201Arch":
        return parse_arch_str(arch_str)

    @classmethod
    def from_index(cls, index: int) -> "NB201Arch":
        return index_to_arch(index)

    @classmethod
    def from_op_ids(cls, op_ids: Sequence[int]) -> "NB201Arch":
        """From 6 op ids (positions in :data:`NB201_OPS`)."""
        ids = [int(i) for i in op_ids]
        if len(ids) != len(NB201_EDGES):
            raise ValueError(f"op_ids must have {len(NB201_EDGES)} entries, got {len(ids)}")
        for e, i in enumerate(ids):
            if not 0 <= i < len(NB201_OPS):
                raise ValueError(f"op id {i} on edge {e} is out of range 0..{len(NB201_OPS) - 1}")
        return cls(tuple(NB201_OPS[i] for i in ids))

    # views
    @property
    def op_ids(self) -> tuple[int, ...]:
        return tuple(_OP_ID[op] for op in self.ops)

    @property
    def code(self) -> int:
        """Lexicographic code ``sum_e op_id[e] * 5**(5-e)`` (the benchmark's pre-shuffle order)."""
        c = 0
        for i in self.op_ids:
            c = c * len(NB201_OPS) + i
        return c

    @property
    def index(self) -> int:
        """Official benchmark index 0..15624."""
        return int(_tables()[1][self.code])

    @property
    def is_cut_off(self) -> bool:
        return is_cut_off(self)

    def node_inputs(self, node: int) -> list[tuple[str, int]]:
        """``[(op, source), ...]`` feeding ``node`` (1..3), sources ascending."""
        if not 1 <= node < _NUM_NODES:
            raise ValueError(f"node must be in 1..{_NUM_NODES - 1}, got {node}")
        return [(op, s) for op, (s, t) in zip(self.ops, NB201_EDGES) if t == node]

    def to_str(self) -> str:
        return format_arch_str(self)

    def __str__(self) -> str:
        return format_arch_str(self)


ArchLike = Union[NB201Arch, str, int, Sequence[str]]
"""An :class:`NB201Arch`, an arch string, a benchmark index, or a sequence of 6 op names."""


def to_arch(arch: ArchLike) -> NB201Arch:
    """Coerce ``arch`` (arch, string, benchmark index or 6 op names) to :class:`NB201Arch`."""
    if isinstance(arch, NB201Arch):
        return arch
    if isinstance(arch, str):
        return parse_arch_str(arch)
    if isinstance(arch, (int, np.integer)) and not isinstance(arch, bool):
        return index_to_arch(int(arch))
    if isinstance(arch, Sequence) and all(isinstance(o, str) for o in arch):
        return NB201Arch(tuple(arch))
    raise ValueError(f"cannot interpret {arch!r} as an NB201 architecture")


def parse_arch_str(arch_str: str) -> NB201Arch:
    """Parse ``|op~0|+|op~0|op~1|+|op~0|op~1|op~2|``.

    Node ``j`` (1..3) must list exactly ``j`` edges with inputs ``0..j-1`` in order.
    Raises ValueError naming the bad node / edge / op / input index.
    """
    if not isinstance(arch_str, str):
        raise ValueError(f"arch string must be a str, got {type(arch_str).__name__}")
    s = arch_str.strip()
    nodes = s.split("+")
    if len(nodes) != _NUM_NODES - 1:
        raise ValueError(
            f"NB201 arch string must have {_NUM_NODES - 1} '+'-separated nodes, got {len(nodes)}: {arch_str!r}"
        )
    ops: list[str] = []
    for j, node in enumerate(nodes, start=1):
        if len(node) < 2 or not (node.startswith("|") and node.endswith("|")):
            raise ValueError(f"node {j} {node!r} must look like '|op~i|...|' in {arch_str!r}")
        edges = node[1:-1].split("|")
        if len(edges) != j:
            raise ValueError(f"node {j} {node!r} must have {j} edge(s), got {len(edges)} in {arch_str!r}")
        for i, edge in enumerate(edges):
            m = _EDGE_RE.match(edge)
            if m is None:
                raise ValueError(f"edge {edge!r} of node {j} must look like 'op~input' in {arch_str!r}")
            op, inp = m.group("op"), m.group("inp")
            if op not in _OP_ID:
                raise ValueError(f"unknown op {op!r} in edge {edge!r} of node {j}; expected one of {NB201_OPS}")
            if not inp.isdigit() or int(inp) != i:
                raise ValueError(f"edge {edge!r} of node {j} has input index {inp!r}, expected {i}")
            ops.append(op)
    return NB201Arch(tuple(ops))


def format_arch_str(arch: ArchLike) -> str:
    """Benchmark string ``|op~0|+|op~0|op~1|+|op~0|op~1|op~2|``."""
    a = to_arch(arch)
    parts = []
    for j in range(1, _NUM_NODES):
        parts.append("|" + "|".join(f"{op}~{s}" for op, s in a.node_inputs(j)) + "|")
    return "+".join(parts)


def is_valid_arch_str(arch_str: str) -> bool:
    """True iff :func:`parse_arch_str` accepts ``arch_str``."""
    try:
        parse_arch_str(arch_str)
    except ValueError:
        return False
    return True


# --------------------------------------------------------------------------------------------
# Benchmark index
# --------------------------------------------------------------------------------------------
def _code_to_arch(code: int) -> NB201Arch:
    ids = []
    for _ in NB201_EDGES:
        code, r = divmod(code, len(NB201_OPS))
        ids.append(r)
    return NB201Arch.from_op_ids(ids[::-1])


@functools.lru_cache(maxsize=1)
def _tables() -> tuple[np.ndarray, np.ndarray]:
    """``(index -> code, code -> index)``: the benchmark's seed-88 shuffle of the codes."""
    perm = list(range(NB201_NUM_ARCHS))
    random.Random(_SHUFFLE_SEED).shuffle(perm)  # same draws as random.seed(88); random.shuffle
    index_to_code = np.asarray(perm, dtype=np.int64)
    code_to_index = np.empty_like(index_to_code)
    code_to_index[index_to_code] = np.arange(NB201_NUM_ARCHS, dtype=np.int64)
    for i, s in _ANCHORS.items():
        if format_arch_str(_code_to_arch(int(index_to_code[i]))) != s:  # pragma: no cover
            raise RuntimeError("Python's random.shuffle no longer reproduces the NB201 index order")
    index_to_code.setflags(write=False)
    code_to_index.setflags(write=False)
    return index_to_code, code_to_index


def _check_index(index: int) -> int:
    if isinstance(index, bool) or not isinstance(index, (int, np.integer)):
        raise ValueError(f"NB201 index must be an int, got {index!r}")
    if not 0 <= int(index) < NB201_NUM_ARCHS:
        raise ValueError(f"NB201 index {index} is out of range 0..{NB201_NUM_ARCHS - 1}")
    return int(index)


def index_to_arch(index: int) -> NB201Arch:
    """Arch at official benchmark index ``index`` (0..15624)."""
    return _code_to_arch(int(_tables()[0][_check_index(index)]))


def arch_to_index(arch: ArchLike) -> int:
    """Official benchmark index of ``arch``."""
    return to_arch(arch).index


def index_to_str(index: int) -> str:
    return format_arch_str(index_to_arch(index))


def str_to_index(arch_str: str) -> int:
    return parse_arch_str(arch_str).index


# --------------------------------------------------------------------------------------------
# Structure queries
# --------------------------------------------------------------------------------------------
def is_cut_off(arch: ArchLike) -> bool:
    """True iff no path of non-``none`` edges leads from node 0 (input) to node 3 (output).

    The network output then does not depend on the input (341 of the 15,625 archs; the benchmark
    records 10% accuracy for them on CIFAR-10).
    """
    a = to_arch(arch)
    reach = [True, False, False, False]
    for op, (s, t) in zip(a.ops, NB201_EDGES):  # edges are topologically ordered by target
        if op != "none" and reach[s]:
            reach[t] = True
    return not reach[_NUM_NODES - 1]


@functools.lru_cache(maxsize=1)
def _cut_off_mask() -> np.ndarray:
    mask = np.array([is_cut_off(index_to_arch(i)) for i in range(NB201_NUM_ARCHS)], dtype=bool)
    mask.setflags(write=False)
    return mask


def cut_off_indices() -> np.ndarray:
    """Sorted benchmark indices of the cut-off archs (int64 array of length 341)."""
    return np.flatnonzero(_cut_off_mask()).astype(np.int64)


# --------------------------------------------------------------------------------------------
# Search helpers
# --------------------------------------------------------------------------------------------
RngLike = Union[np.random.Generator, int, None]


def _rng(rng: RngLike) -> np.random.Generator:
    if isinstance(rng, np.random.Generator):
        return rng
    if rng is None or (isinstance(rng, (int, np.integer)) and not isinstance(rng, bool)):
        return np.random.default_rng(rng)
    raise ValueError(f"rng must be a numpy Generator, an int seed or None, got {type(rng).__name__}")


def sample_indices(
    rng: RngLike, n: int, *, replace: bool = False, exclude_cut_off: bool = False
) -> np.ndarray:
    """``n`` uniformly drawn benchmark indices (int64), optionally excluding cut-off archs."""
    if n < 0:
        raise ValueError(f"n must be >= 0, got {n}")
    pool = np.flatnonzero(~_cut_off_mask()) if exclude_cut_off else np.arange(NB201_NUM_ARCHS)
    if not replace and n > len(pool):
        raise ValueError(f"cannot draw n={n} distinct archs from {len(pool)}")
    return _rng(rng).choice(pool, size=n, replace=replace).astype(np.int64)


def sample_archs(
    rng: RngLike, n: int, *, replace: bool = False, exclude_cut_off: bool = False
) -> list[NB201Arch]:
    """``n`` uniformly drawn archs (see :func:`sample_indices`)."""
    idx = sample_indices(rng, n, replace=replace, exclude_cut_off=exclude_cut_off)
    return [index_to_arch(int(i)) for i in idx]


def mutate_arch(arch: ArchLike, rng: RngLike, *, scheme: Literal["nats", "uniform"] = "nats") -> NB201Arch:
    """Change the op of one edge to a different op (uniform over the other 4).

    ``scheme='nats'`` picks the edge as NATS-Bench's REA does: a target node uniformly from
    1..3, then one of its inputs uniformly (so edge 0->1 is chosen with prob. 1/3).
    ``scheme='uniform'`` picks one of the 6 edges uniformly.
    """
    a, g = to_arch(arch), _rng(rng)
    if scheme == "nats":
        node = int(g.integers(1, _NUM_NODES))
        src = int(g.integers(0, node))
        edge = NB201_EDGES.index((src, node))
    elif scheme == "uniform":
        edge = int(g.integers(0, len(NB201_EDGES)))
    else:
        raise ValueError(f"scheme must be 'nats' or 'uniform', got {scheme!r}")
    others = [op for op in NB201_OPS if op != a.ops[edge]]
    ops = list(a.ops)
    ops[edge] = others[int(g.integers(0, len(others)))]
    return NB201Arch(tuple(ops))


def neighbours(arch: ArchLike) -> list[NB201Arch]:
    """The 24 archs differing from ``arch`` on exactly one edge (edge-major, op order)."""
    a = to_arch(arch)
    out = []
    for e in range(len(NB201_EDGES)):
        for op in NB201_OPS:
            if op != a.ops[e]:
                ops = list(a.ops)
                ops[e] = op
                out.append(NB201Arch(tuple(ops)))
    return out


# --------------------------------------------------------------------------------------------
# Network (module names and nesting mirror xautodl so state_dict keys are identical)
# --------------------------------------------------------------------------------------------
class _ReLUConvBN(nn.Module):
    """ReLU - Conv(k, stride, pad, no bias) - BN, stored as ``op = Sequential(relu, conv, bn)``."""

    def __init__(self, c_in: int, c_out: int, kernel: int, stride: int, padding: int) -> None:
        super().__init__()
        self.op = nn.Sequential(
            nn.ReLU(inplace=False),
            nn.Conv2d(c_in, c_out, kernel, stride=stride, padding=padding, bias=False),
            nn.BatchNorm2d(c_out),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.op(x)


class _Zero(nn.Module):
    """``none``: x * 0 (keeps the autograd link) or, if channels change, a fresh zero tensor."""

    def __init__(self, c_in: int, c_out: int) -> None:
        super().__init__()
        self.c_in, self.c_out = c_in, c_out

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.c_in == self.c_out:
            return x.mul(0.0)
        shape = list(x.shape)
        shape[1] = self.c_out
        return x.new_zeros(shape)


class _Identity(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x


class _Conv1x1BN(nn.Module):
    """``skip_connect`` when channels change (xautodl's stride-1 FactorizedReduce): Conv1x1 - BN."""

    def __init__(self, c_in: int, c_out: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(c_in, c_out, 1, bias=False)
        self.bn = nn.BatchNorm2d(c_out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.bn(self.conv(x))


class _BoxAdjointAvgPool(torch.autograd.Function):
    """Count-excluding average pool whose backward is a depthwise convolution.

    Forward: torch's ``avg_pool2d(count_include_pad=False)`` itself (bit-identical values). The
    pool is linear, ``y = (B x) / n`` with ``B`` the k x k box sum (zero padding) and ``n`` each
    output's count of valid inputs, so ``dL/dx = B^T (dL/dy / n)``: the input gradient of a
    grouped convolution with a ones kernel (``torch.nn.grad.conv2d_input``). Equal to torch's
    backward up to float rounding; on CPU in float32 ~4x faster (7 ms against 27 ms for a
    64 x 16 x 32 x 32 gradient on one thread; in float64 only ~1.3x), where torch's avg-pool backward
    is a scalar loop (two thirds of NTK's time on a pool-heavy NB201 cell). Linear and built from
    differentiable ops: double backward (GraSP), forward mode (the pool itself) and ``torch.func``
    transforms (``generate_vmap_rule``) all work.
    """

    generate_vmap_rule = True

    @staticmethod
    def forward(x: torch.Tensor, kernel_size: int, stride: int, padding: int) -> torch.Tensor:
        return nn.functional.avg_pool2d(x, kernel_size, stride, padding, count_include_pad=False)

    @staticmethod
    def setup_context(ctx, inputs, output) -> None:
        x, kernel_size, stride, padding = inputs
        ctx.geometry = (tuple(x.shape), kernel_size, stride, padding)

    @staticmethod
    def backward(ctx, grad_y: torch.Tensor):
        shape, k, stride, padding = ctx.geometry
        ones = grad_y.new_ones(1, 1, *shape[-2:])
        counts = nn.functional.avg_pool2d(ones, k, stride, padding, count_include_pad=False, divisor_override=1)
        box = grad_y.new_ones(shape[1], 1, k, k)
        grad_x = torch.nn.grad.conv2d_input(shape, box, grad_y / counts, stride=stride, padding=padding,
                                            groups=shape[1])
        return grad_x, None, None, None

    @staticmethod
    def jvp(ctx, x_tangent: torch.Tensor, *_):
        _, k, stride, padding = ctx.geometry
        return nn.functional.avg_pool2d(x_tangent, k, stride, padding, count_include_pad=False)


class AvgPoolExcludingPad(nn.AvgPool2d):
    """``nn.AvgPool2d(k, stride, padding, count_include_pad=False)`` (NB201's ``avg_pool_3x3``):
    the same forward values; on CPU a backward by :class:`_BoxAdjointAvgPool` (~4x faster than
    torch's in float32). Other devices, unbatched input, ``ceil_mode``, ``divisor_override``,
    non-square geometry and no-grad calls use torch's own op."""

    def __init__(self, kernel_size: int, stride: int, padding: int) -> None:
        super().__init__(kernel_size, stride=stride, padding=padding, count_include_pad=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        k, s, p = self.kernel_size, self.stride, self.padding
        if (x.device.type != "cpu" or x.dim() != 4 or self.ceil_mode or self.divisor_override is not None
                or not all(isinstance(v, int) for v in (k, s, p)) or not torch.is_grad_enabled()):
            return super().forward(x)
        return _BoxAdjointAvgPool.apply(x, k, s, p)


class _AvgPool(nn.Module):
    """``avg_pool_3x3`` (stride 1, pad 1, count_include_pad=False); a ReLU-Conv1x1-BN
    ``preprocess`` first if channels change."""

    def __init__(self, c_in: int, c_out: int) -> None:
        super().__init__()
        self.preprocess = _ReLUConvBN(c_in, c_out, 1, 1, 0) if c_in != c_out else None
        self.op = AvgPoolExcludingPad(3, stride=1, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.preprocess is not None:
            x = self.preprocess(x)
        return self.op(x)


def _make_op(name: str, c_in: int, c_out: int) -> nn.Module:
    if name == "none":
        return _Zero(c_in, c_out)
    if name == "skip_connect":
        return _Identity() if c_in == c_out else _Conv1x1BN(c_in, c_out)
    if name == "nor_conv_1x1":
        return _ReLUConvBN(c_in, c_out, 1, 1, 0)
    if name == "nor_conv_3x3":
        return _ReLUConvBN(c_in, c_out, 3, 1, 1)
    if name == "avg_pool_3x3":
        return _AvgPool(c_in, c_out)
    raise ValueError(f"unknown op {name!r}; expected one of {NB201_OPS}")


class NB201Cell(nn.Module):
    """Searched cell, stride 1: ``x_j = sum_{i<j} layers[e(i,j)](x_i)``, output ``x_3``.

    Edges leaving node 0 map ``c_in -> c_out``, all others ``c_out -> c_out``.
    """

    def __init__(self, arch: NB201Arch, c_in: int, c_out: int) -> None:
        super().__init__()
        self.arch = arch
        self.in_dim, self.out_dim = c_in, c_out
        self.layers = nn.ModuleList(
            _make_op(op, c_in if s == 0 else c_out, c_out) for op, (s, _t) in zip(arch.ops, NB201_EDGES)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        nodes = [x]
        for j in range(1, _NUM_NODES):
            out = None
            for e, (s, t) in enumerate(NB201_EDGES):
                if t == j:
                    y = self.layers[e](nodes[s])
                    out = y if out is None else out + y
            nodes.append(out)
        return nodes[-1]

    def extra_repr(self) -> str:
        return f"in={self.in_dim}, out={self.out_dim}, arch={self.arch}"


class NB201ReductionBlock(nn.Module):
    """ResNet basic block, stride 2: ``conv_b(conv_a(x)) + downsample(x)`` with
    conv_a = ReLU-Conv3x3/s2-BN, conv_b = ReLU-Conv3x3-BN, downsample = AvgPool2x2 - Conv1x1."""

    def __init__(self, c_in: int, c_out: int) -> None:
        super().__init__()
        self.in_dim, self.out_dim = c_in, c_out
        self.conv_a = _ReLUConvBN(c_in, c_out, 3, 2, 1)
        self.conv_b = _ReLUConvBN(c_out, c_out, 3, 1, 1)
        self.downsample = nn.Sequential(
            nn.AvgPool2d(kernel_size=2, stride=2, padding=0),
            nn.Conv2d(c_in, c_out, kernel_size=1, bias=False),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.downsample(x) + self.conv_b(self.conv_a(x))

    def extra_repr(self) -> str:
        return f"in={self.in_dim}, out={self.out_dim}, stride=2"


class TinyCellNetwork(nn.Module):
    """The NB201 / NATS macro network with per-layer channels ``channels`` (length ``3N+2``).

    Layers ``N`` and ``2N+1`` are :class:`NB201ReductionBlock` (stride 2); all others are
    :class:`NB201Cell` with ``arch``. ``forward(x)`` returns logits ``(B, num_classes)``;
    :meth:`forward_features` returns the pooled features ``(B, feature_dim)`` that feed
    ``self.classifier`` (an ``nn.Linear``), so a probe can replace the head.
    (xautodl's forward returns ``(features, logits)``; here use :meth:`forward_with_features`.)
    """

    classifier_name = "classifier"

    def __init__(
        self, channels: Sequence[int], arch: ArchLike, num_classes: int = 10, in_channels: int = 3
    ) -> None:
        super().__init__()
        channels = tuple(int(c) for c in channels)
        if len(channels) < 2 or len(channels) % 3 != 2:
            raise ValueError(f"channels must have length 3N+2 (N >= 0), got {len(channels)}: {channels}")
        if any(c <= 0 for c in channels):
            raise ValueError(f"channels must be positive, got {channels}")
        if int(num_classes) < 1:
            raise ValueError(f"num_classes must be >= 1, got {num_classes}")
        if int(in_channels) < 1:
            raise ValueError(f"in_channels must be >= 1, got {in_channels}")
        self.arch = to_arch(arch)
        self.channels = channels
        self.num_classes, self.in_channels = int(num_classes), int(in_channels)
        n = len(channels) // 3
        reductions = {n, 2 * n + 1}

        self.stem = nn.Sequential(
            nn.Conv2d(self.in_channels, channels[0], kernel_size=3, padding=1, bias=False),
            nn.BatchNorm2d(channels[0]),
        )
        c_prev = channels[0]
        cells: list[nn.Module] = []
        for i, c in enumerate(channels):
            cells.append(NB201ReductionBlock(c_prev, c) if i in reductions else NB201Cell(self.arch, c_prev, c))
            c_prev = c
        self.cells = nn.ModuleList(cells)
        self.lastact = nn.Sequential(nn.BatchNorm2d(c_prev), nn.ReLU(inplace=True))
        self.global_pooling = nn.AdaptiveAvgPool2d(1)
        self.feature_dim = c_prev
        self.classifier = nn.Linear(c_prev, self.num_classes)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """Pooled features ``(B, feature_dim)``: stem, cells, BN-ReLU, global average pool."""
        x = self.stem(x)
        for cell in self.cells:
            x = cell(x)
        return self.global_pooling(self.lastact(x)).flatten(1)

    def forward_with_features(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(features, logits)``, like xautodl's ``TinyNetwork.forward``."""
        f = self.forward_features(x)
        return f, self.classifier(f)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.forward_features(x))


def build_cell_network(
    channels: Sequence[int],
    arch: ArchLike,
    num_classes: int = 10,
    in_channels: int = 3,
    *,
    device: torch.device | str | None = None,
) -> TinyCellNetwork:
    """:class:`TinyCellNetwork` built directly on ``device`` (``'meta'`` for shape/size only)."""
    if device is None:
        return TinyCellNetwork(channels, arch, num_classes, in_channels)
    with torch.device(device):
        return TinyCellNetwork(channels, arch, num_classes, in_channels)


def nb201_channels(C: int = 16, N: int = 5) -> tuple[int, ...]:
    """NB201 per-layer channels ``[C]*N + [2C]*(N+1) + [4C]*(N+1)``."""
    if C < 1 or N < 0:
        raise ValueError(f"need C >= 1 and N >= 0, got C={C}, N={N}")
    return (C,) * N + (2 * C,) * (N + 1) + (4 * C,) * (N + 1)


def build_nb201_model(
    arch: ArchLike,
    num_classes: int = 10,
    in_channels: int = 3,
    *,
    C: int = 16,
    N: int = 5,
    device: torch.device | str | None = None,
) -> TinyCellNetwork:
    """The NAS-Bench-201 network for ``arch`` (xautodl ``TinyNetwork(C=16, N=5)`` by default).

    ``num_classes`` is 10 / 100 / 120 for CIFAR-10 / CIFAR-100 / ImageNet16-120.
    """
    return build_cell_network(nb201_channels(C, N), arch, num_classes, in_channels, device=device)


def count_cell_network_params(
    channels: Sequence[int], arch: ArchLike, num_classes: int = 10, in_channels: int = 3
) -> int:
    """Trainable parameter count of :class:`TinyCellNetwork`, in closed form (BN: 2c each).

    Per cell edge (c_i -> c_o): conv kxk ``k^2 c_i c_o + 2 c_o``; skip/pool with ``c_i != c_o``
    ``c_i c_o + 2 c_o``; otherwise 0. Reduction ``c_i -> c_o``: ``9 c_i c_o + 9 c_o^2 + c_i c_o + 4 c_o``.
    """
    a = to_arch(arch)
    channels = tuple(int(c) for c in channels)
    if len(channels) < 2 or len(channels) % 3 != 2:
        raise ValueError(f"channels must have length 3N+2, got {len(channels)}: {channels}")
    n = len(channels) // 3
    total = 9 * in_channels * channels[0] + 2 * channels[0]
    c_prev = channels[0]
    for i, c in enumerate(channels):
        if i in (n, 2 * n + 1):
            total += 9 * c_prev * c + 9 * c * c + c_prev * c + 4 * c
        else:
            for op, (s, _t) in zip(a.ops, NB201_EDGES):
                ci = c_prev if s == 0 else c
                if op == "nor_conv_1x1":
                    total += ci * c + 2 * c
                elif op == "nor_conv_3x3":
                    total += 9 * ci * c + 2 * c
                elif op in ("skip_connect", "avg_pool_3x3") and ci != c:
                    total += ci * c + 2 * c
        c_prev = c
    return total + 2 * c_prev + c_prev * num_classes + num_classes


def count_cell_network_flops(
    channels: Sequence[int], arch: ArchLike, num_classes: int = 10, in_channels: int = 3, resolution: int = 32
) -> int:
    """FLOPs of one forward pass of one ``resolution`` x ``resolution`` image through
    :class:`TinyCellNetwork`, in closed form, counted as ``torch.utils.flop_counter`` does (the
    ``flops`` proxy): 2 per multiply-add of a convolution or the Linear head; BN, activations,
    pooling, sums and biases count 0.

    With ``A`` the current spatial area: stem ``2 * 9 c_in c_0 A``; cell edge (c_i -> c_o) conv kxk
    ``2 k^2 c_i c_o A``, skip/pool with ``c_i != c_o`` ``2 c_i c_o A`` (their 1x1 conv), otherwise 0;
    reduction ``c_i -> c_o`` halves the side first, then ``2 (9 c_i c_o + 9 c_o^2 + c_i c_o) A``; head
    ``2 c_last num_classes``.
    """
    a = to_arch(arch)
    channels = tuple(int(c) for c in channels)
    if len(channels) < 2 or len(channels) % 3 != 2:
        raise ValueError(f"channels must have length 3N+2, got {len(channels)}: {channels}")
    if resolution < 4 or resolution % 4:
        raise ValueError(f"resolution must be a positive multiple of 4 (two stride-2 reductions), got {resolution}")
    n = len(channels) // 3
    side = int(resolution)
    total = 2 * 9 * in_channels * channels[0] * side * side
    c_prev = channels[0]
    for i, c in enumerate(channels):
        if i in (n, 2 * n + 1):
            side //= 2
            total += 2 * (9 * c_prev * c + 9 * c * c + c_prev * c) * side * side
        else:
            for op, (s, _t) in zip(a.ops, NB201_EDGES):
                ci = c_prev if s == 0 else c
                macs = {"nor_conv_1x1": ci * c, "nor_conv_3x3": 9 * ci * c}.get(op, 0)
                if op in ("skip_connect", "avg_pool_3x3") and ci != c:
                    macs = ci * c
                total += 2 * macs * side * side
        c_prev = c
    return total + 2 * c_prev * num_classes


# --------------------------------------------------------------------------------------------
# Space object
# --------------------------------------------------------------------------------------------
class NB201Space:
    """NAS-Bench-201 / NATS-Bench topology space, a :class:`~nasbeff.spaces.base.SearchSpace`.

    ``size == len(space) == 15625``; indices are the official benchmark indices. ``mutation``:
    how :meth:`mutate` picks the edge (see :func:`mutate_arch`; ``'nats'`` as NATS-Bench's REA).
    The module's arch-level helpers stay available as static methods (``parse``, ``index_to_arch``,
    ``param_count``, ...).
    """

    name = "nb201"
    size = NB201_NUM_ARCHS
    ops = NB201_OPS
    edges = NB201_EDGES
    num_archs = NB201_NUM_ARCHS

    def __init__(self, mutation: Literal["nats", "uniform"] = "nats") -> None:
        if mutation not in ("nats", "uniform"):
            raise ValueError(f"mutation must be 'nats' or 'uniform', got {mutation!r}")
        self.mutation = mutation

    def __repr__(self) -> str:
        return f"NB201Space(mutation={self.mutation!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, NB201Space) and other.mutation == self.mutation

    def __hash__(self) -> int:
        return hash((self.name, self.mutation))

    def __len__(self) -> int:
        return NB201_NUM_ARCHS

    def __iter__(self) -> Iterator[NB201Arch]:
        return (index_to_arch(i) for i in range(NB201_NUM_ARCHS))

    def __contains__(self, arch: object) -> bool:
        try:
            to_arch(arch)  # type: ignore[arg-type]
        except ValueError:
            return False
        return True

    # -- SearchSpace protocol (indices in, indices out) --
    def sample(self, rng: np.random.Generator) -> int:
        """Uniform index: one ``rng.integers(0, 15625)`` draw."""
        return int(rng.integers(0, NB201_NUM_ARCHS))

    def mutate(self, index: int, rng: np.random.Generator) -> int:
        """One edge gets a different op (:func:`mutate_arch` with this space's scheme)."""
        return mutate_arch(index, rng, scheme=self.mutation).index

    def neighbours(self, index: int) -> list[int]:
        """The 24 one-edge neighbours (edge-major, op order)."""
        return [a.index for a in neighbours(index)]

    def encode(self, index: int) -> tuple[int, ...]:
        """Op ids of the 6 edges."""
        return index_to_arch(index).op_ids

    def index(self, arch: ArchLike) -> int:
        return to_arch(arch).index

    def arch(self, index: int) -> str:
        return index_to_str(index)

    def build_model(self, index: ArchLike, num_classes: int = 10, in_channels: int = 3, **kwargs) -> TinyCellNetwork:
        """See :func:`build_nb201_model`."""
        return build_nb201_model(index, num_classes, in_channels, **kwargs)

    # -- arch-level helpers --
    parse = staticmethod(parse_arch_str)
    format = staticmethod(format_arch_str)
    is_valid = staticmethod(is_valid_arch_str)
    to_arch = staticmethod(to_arch)
    index_to_arch = staticmethod(index_to_arch)
    arch_to_index = staticmethod(arch_to_index)
    index_to_str = staticmethod(index_to_str)
    str_to_index = staticmethod(str_to_index)
    is_cut_off = staticmethod(is_cut_off)
    cut_off_indices = staticmethod(cut_off_indices)
    sample_indices = staticmethod(sample_indices)
    sample_archs = staticmethod(sample_archs)
    mutate_arch = staticmethod(mutate_arch)

    @staticmethod
    def param_count(
        arch: ArchLike, num_classes: int = 10, in_channels: int = 3, *, C: int = 16, N: int = 5
    ) -> int:
        """Closed-form parameter count of :func:`build_nb201_model` (no torch module built)."""
        return count_cell_network_params(nb201_channels(C, N), arch, num_classes, in_channels)
