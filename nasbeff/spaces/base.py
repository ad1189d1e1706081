"""The search-space protocol that search code consumes, and :func:`get_space`.

A space is a finite set of ``size`` architectures numbered ``0 .. size-1`` in the benchmark's own
order. Each arch is a vector of ``d`` discrete choices (:meth:`SearchSpace.encode`): the op on
each of NB201's 6 edges (5 ops), or the width of each of NATS-size's 5 layers (8 widths). On that
encoding:

* ``sample(rng)``: uniform index, one ``rng.integers(0, size)`` draw;
* ``mutate(index, rng)``: change exactly one choice to a different value (Hamming distance 1);
* ``neighbours(index)``: all Hamming-distance-1 archs, ``d * (k - 1)`` of them
  (NB201: 6 * 4 = 24; NATS-size: 5 * 7 = 35);
* ``index(arch)`` / ``arch(index)``: benchmark index <-> benchmark string;
* ``build_model(index, num_classes)``: the torch network the benchmark trained.
"""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable

import numpy as np
from torch import nn

__all__ = ["SearchSpace", "SPACE_NAMES", "get_space"]


@runtime_checkable
class SearchSpace(Protocol):
    """What search needs from a space (indices are the benchmark's)."""

    name: str
    size: int

    def sample(self, rng: np.random.Generator) -> int:
        """A uniformly drawn index."""
        ...

    def mutate(self, index: int, rng: np.random.Generator) -> int:
        """An index differing from ``index`` in exactly one choice."""
        ...

    def neighbours(self, index: int) -> list[int]:
        """Every index differing from ``index`` in exactly one choice."""
        ...

    def encode(self, index: int) -> tuple[int, ...]:
        """The choice vector of ``index`` (Hamming distance on it is the mutation distance)."""
        ...

    def index(self, arch: Any) -> int:
        """Benchmark index of ``arch`` (an arch object, its string or an index)."""
        ...

    def arch(self, index: int) -> str:
        """Benchmark string of ``index``."""
        ...

    def build_model(self, index: Any, num_classes: int = 10, **kwargs: Any) -> nn.Module:
        """The network of ``index`` (or of any arch :meth:`index` accepts)."""
        ...


#: Accepted names -> canonical space name.
SPACE_NAMES: dict[str, str] = {"nb201": "nb201", "tss": "nb201", "nats-size": "nats-size", "sss": "nats-size"}


def get_space(name: str) -> SearchSpace:
    """The space called ``name``: ``nb201`` (alias ``tss``) or ``nats-size`` (alias ``sss``)."""
    from .nats_size import NATSSizeSpace
    from .nb201 import NB201Space

    canonical = SPACE_NAMES.get(name)
    if canonical is None:
        raise ValueError(f"unknown search space {name!r}; choose one of nb201 (alias tss), nats-size (alias sss)")
    return NB201Space() if canonical == "nb201" else NATSSizeSpace()
