"""NATS-Bench size search space (``sss``).

Every architecture has the same cell, the best NB201 cell on CIFAR-100
(:data:`NATS_SIZE_CELL`, tss index 9930), and the same macro skeleton as NB201 with one cell per
stage (``N = 1``): ``stem - cell - reduction - cell - reduction - cell - head``. Only the output
channels of those 5 layers vary, each in :data:`NATS_SIZE_CHOICES` = (8, 16, ..., 64), giving
``8**5 = 32,768`` archs, written ``'c0:c1:c2:c3:c4'`` (e.g. ``'64:64:64:64:64'``).
The stem outputs ``c0``; a cell whose input and output widths differ maps its node-0 edges
``c_in -> c_out`` (``skip_connect`` becomes Conv1x1-BN there), exactly as xautodl's
``DynamicShapeTinyNet`` (config name ``infer.shape.tiny``).

Index order (NATS ``api.arch(i)``): lexicographic over the 5 positions with position 0 most
significant and widths ascending, i.e. ``index = sum_k pos_k * 8**(4-k)`` where
``pos_k = c_k / 8 - 1``. Index 0 is ``8:8:8:8:8``, index 32767 is ``64:64:64:64:64``.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Union

import numpy as np
import torch

from .nb201 import (
    NB201Arch,
    RngLike,
    TinyCellNetwork,
    _rng,
    build_cell_network,
    count_cell_network_params,
    parse_arch_str,
)

__all__ = [
    "NATS_SIZE_CHOICES",
    "NATS_SIZE_NUM_LAYERS",
    "NATS_SIZE_NUM_ARCHS",
    "NATS_SIZE_CELL",
    "NATSSizeArch",
    "SizeArchLike",
    "to_size_arch",
    "parse_size_str",
    "format_size_str",
    "is_valid_size_str",
    "size_index_to_arch",
    "size_arch_to_index",
    "size_index_to_str",
    "size_str_to_index",
    "sample_size_indices",
    "sample_size_archs",
    "mutate_size_arch",
    "size_neighbours",
    "build_nats_size_model",
    "NATSSizeSpace",
]

NATS_SIZE_CHOICES: tuple[int, ...] = (8, 16, 24, 32, 40, 48, 56, 64)
NATS_SIZE_NUM_LAYERS: int = 5
NATS_SIZE_NUM_ARCHS: int = len(NATS_SIZE_CHOICES) ** NATS_SIZE_NUM_LAYERS  # 32,768
NATS_SIZE_CELL: str = (
    "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_3x3~2|"
)
_CELL: NB201Arch = parse_arch_str(NATS_SIZE_CELL)
_POS = {c: i for i, c in enumerate(NATS_SIZE_CHOICES)}
_K = len(NATS_SIZE_CHOICES)


@dataclass(frozen=True)
class NATSSizeArch:
    """Per-layer output channels ``(c0, ..., c4)``, each in :data:`NATS_SIZE_CHOICES`."""

    channels: tuple[int, ...]

    def __post_init__(self) -> None:
        chs = tuple(self.channels)
        if len(chs) != NATS_SIZE_NUM_LAYERS:
            raise ValueError(
                f"NATS size arch needs {NATS_SIZE_NUM_LAYERS} channel values, got {len(chs)}: {chs!r}"
            )
        for k, c in enumerate(chs):
            if isinstance(c, bool) or not isinstance(c, (int, np.integer)) or int(c) not in _POS:
                raise ValueError(f"channel {c!r} at position {k} is not one of {NATS_SIZE_CHOICES}")
        object.__setattr__(self, "channels", tuple(int(c) for c in chs))

    @classmethod
    def from_str(cls, size_str: str) -> "NATSSizeArch":
        return parse_size_str(size_str)

    @classmethod
    def from_index(cls, index: int) -> "NATSSizeArch":
        return size_index_to_arch(index)

    @property
    def positions(self) -> tuple[int, ...]:
        """Choice positions 0..7 of each channel value."""
        return tuple(_POS[c] for c in self.channels)

    @property
    def index(self) -> int:
        """Official NATS-sss index 0..32767."""
        i = 0
        for p in self.positions:
            i = i * _K + p
        return i

    def to_str(self) -> str:
        return format_size_str(self)

    def __str__(self) -> str:
        return format_size_str(self)


SizeArchLike = Union[NATSSizeArch, str, int, Sequence[int]]
"""A :class:`NATSSizeArch`, a ``'c0:...:c4'`` string, a NATS-sss index, or 5 channel values."""


def to_size_arch(arch: SizeArchLike) -> NATSSizeArch:
    """Coerce ``arch`` (arch, string, index or 5 channel values) to :class:`NATSSizeArch`."""
    if isinstance(arch, NATSSizeArch):
        return arch
    if isinstance(arch, str):
        return parse_size_str(arch)
    if isinstance(arch, (int, np.integer)) and not isinstance(arch, bool):
        return size_index_to_arch(int(arch))
    if isinstance(arch, Sequence):
        return NATSSizeArch(tuple(arch))
    raise ValueError(f"cannot interpret {arch!r} as a NATS size architecture")


def parse_size_str(size_str: str) -> NATSSizeArch:
    """Parse ``'c0:c1:c2:c3:c4'``; ValueError names the bad position / value."""
    if not isinstance(size_str, str):
        raise ValueError(f"size string must be a str, got {type(size_str).__name__}")
    parts = size_str.strip().split(":")
    if len(parts) != NATS_SIZE_NUM_LAYERS:
        raise ValueError(
            f"NATS size string must have {NATS_SIZE_NUM_LAYERS} ':'-separated values, "
            f"got {len(parts)}: {size_str!r}"
        )
    chs = []
    for k, p in enumerate(parts):
        if not p.isdigit() or int(p) not in _POS:
            raise ValueError(f"channel {p!r} at position {k} of {size_str!r} is not one of {NATS_SIZE_CHOICES}")
        chs.append(int(p))
    return NATSSizeArch(tuple(chs))


def format_size_str(arch: SizeArchLike) -> str:
    return ":".join(str(c) for c in to_size_arch(arch).channels)


def is_valid_size_str(size_str: str) -> bool:
    try:
        parse_size_str(size_str)
    except ValueError:
        return False
    return True


def size_index_to_arch(index: int) -> NATSSizeArch:
    """Arch at NATS-sss index ``index`` (0..32767)."""
    if isinstance(index, bool) or not isinstance(index, (int, np.integer)):
        raise ValueError(f"NATS size index must be an int, got {index!r}")
    if not 0 <= int(index) < NATS_SIZE_NUM_ARCHS:
        raise ValueError(f"NATS size index {index} is out of range 0..{NATS_SIZE_NUM_ARCHS - 1}")
    i, pos = int(index), []
    for _ in range(NATS_SIZE_NUM_LAYERS):
        i, r = divmod(i, _K)
        pos.append(r)
    return NATSSizeArch(tuple(NATS_SIZE_CHOICES[p] for p in reversed(pos)))


def size_arch_to_index(arch: SizeArchLike) -> int:
    return to_size_arch(arch).index


def size_index_to_str(index: int) -> str:
    return format_size_str(size_index_to_arch(index))


def size_str_to_index(size_str: str) -> int:
    return parse_size_str(size_str).index


def sample_size_indices(rng: RngLike, n: int, *, replace: bool = False) -> np.ndarray:
    """``n`` uniformly drawn NATS-sss indices (int64)."""
    if n < 0:
        raise ValueError(f"n must be >= 0, got {n}")
    if not replace and n > NATS_SIZE_NUM_ARCHS:
        raise ValueError(f"cannot draw n={n} distinct archs from {NATS_SIZE_NUM_ARCHS}")
    return _rng(rng).choice(NATS_SIZE_NUM_ARCHS, size=n, replace=replace).astype(np.int64)


def sample_size_archs(rng: RngLike, n: int, *, replace: bool = False) -> list[NATSSizeArch]:
    return [size_index_to_arch(int(i)) for i in sample_size_indices(rng, n, replace=replace)]


def mutate_size_arch(arch: SizeArchLike, rng: RngLike, *, allow_same: bool = False) -> NATSSizeArch:
    """Re-draw the width of one uniformly chosen layer.

    By default the new width differs from the old one (uniform over the other 7). NATS-Bench's
    REA draws from all 8, so it can return the parent unchanged: ``allow_same=True`` does that.
    """
    a, g = to_size_arch(arch), _rng(rng)
    k = int(g.integers(0, NATS_SIZE_NUM_LAYERS))
    pool = NATS_SIZE_CHOICES if allow_same else tuple(c for c in NATS_SIZE_CHOICES if c != a.channels[k])
    chs = list(a.channels)
    chs[k] = pool[int(g.integers(0, len(pool)))]
    return NATSSizeArch(tuple(chs))


def size_neighbours(arch: SizeArchLike) -> list[NATSSizeArch]:
    """The 35 archs differing from ``arch`` in exactly one layer width (layer-major, ascending)."""
    a = to_size_arch(arch)
    out = []
    for k in range(NATS_SIZE_NUM_LAYERS):
        for c in NATS_SIZE_CHOICES:
            if c != a.channels[k]:
                chs = list(a.channels)
                chs[k] = c
                out.append(NATSSizeArch(tuple(chs)))
    return out


def build_nats_size_model(
    arch: SizeArchLike,
    num_classes: int = 10,
    in_channels: int = 3,
    *,
    device: torch.device | str | None = None,
) -> TinyCellNetwork:
    """The NATS-sss network (xautodl ``DynamicShapeTinyNet(channels, NATS_SIZE_CELL)``).

    Returns a :class:`~nasbeff.spaces.nb201.TinyCellNetwork` with ``N = 1``:
    ``forward`` gives logits, ``forward_features`` the pooled ``(B, c4)`` features,
    ``.classifier`` the head.
    """
    return build_cell_network(to_size_arch(arch).channels, _CELL, num_classes, in_channels, device=device)


class NATSSizeSpace:
    """NATS-Bench size space, a :class:`~nasbeff.spaces.base.SearchSpace`.

    ``size == len(space) == 32768``; indices as in NATS. :meth:`mutate` re-draws one layer width
    among the 7 others (NATS-Bench's REA draws among all 8: :func:`mutate_size_arch` with
    ``allow_same=True``). The module's arch-level helpers stay available as static methods.
    """

    name = "nats-size"
    size = NATS_SIZE_NUM_ARCHS
    choices = NATS_SIZE_CHOICES
    num_layers = NATS_SIZE_NUM_LAYERS
    num_archs = NATS_SIZE_NUM_ARCHS
    cell = NATS_SIZE_CELL

    def __repr__(self) -> str:
        return "NATSSizeSpace()"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, NATSSizeSpace)

    def __hash__(self) -> int:
        return hash(self.name)

    def __len__(self) -> int:
        return NATS_SIZE_NUM_ARCHS

    def __iter__(self) -> Iterator[NATSSizeArch]:
        return (size_index_to_arch(i) for i in range(NATS_SIZE_NUM_ARCHS))

    def __contains__(self, arch: object) -> bool:
        try:
            to_size_arch(arch)  # type: ignore[arg-type]
        except ValueError:
            return False
        return True

    # -- SearchSpace protocol (indices in, indices out) --
    def sample(self, rng: np.random.Generator) -> int:
        """Uniform index: one ``rng.integers(0, 32768)`` draw."""
        return int(rng.integers(0, NATS_SIZE_NUM_ARCHS))

    def mutate(self, index: int, rng: np.random.Generator) -> int:
        """One layer gets a different width (:func:`mutate_size_arch`)."""
        return mutate_size_arch(index, rng).index

    def neighbours(self, index: int) -> list[int]:
        """The 35 one-layer neighbours (layer-major, widths ascending)."""
        return [a.index for a in size_neighbours(index)]

    def encode(self, index: int) -> tuple[int, ...]:
        """Width positions 0..7 of the 5 layers."""
        return size_index_to_arch(index).positions

    def index(self, arch: SizeArchLike) -> int:
        return to_size_arch(arch).index

    def arch(self, index: int) -> str:
        return size_index_to_str(index)

    def build_model(self, index: SizeArchLike, num_classes: int = 10, in_channels: int = 3,
                    **kwargs) -> TinyCellNetwork:
        """See :func:`build_nats_size_model`."""
        return build_nats_size_model(index, num_classes, in_channels, **kwargs)

    # -- arch-level helpers --
    parse = staticmethod(parse_size_str)
    format = staticmethod(format_size_str)
    is_valid = staticmethod(is_valid_size_str)
    to_arch = staticmethod(to_size_arch)
    index_to_arch = staticmethod(size_index_to_arch)
    arch_to_index = staticmethod(size_arch_to_index)
    index_to_str = staticmethod(size_index_to_str)
    str_to_index = staticmethod(size_str_to_index)
    sample_indices = staticmethod(sample_size_indices)
    sample_archs = staticmethod(sample_size_archs)
    mutate_arch = staticmethod(mutate_size_arch)

    @staticmethod
    def param_count(arch: SizeArchLike, num_classes: int = 10, in_channels: int = 3) -> int:
        """Closed-form parameter count of :func:`build_nats_size_model`."""
        return count_cell_network_params(to_size_arch(arch).channels, _CELL, num_classes, in_channels)
