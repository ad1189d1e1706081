"""Search spaces: NAS-Bench-201 / NATS-Bench topology (``nb201``, alias ``tss``) and NATS-Bench size
(``nats-size``, alias ``sss``).

Each space gives parsing/formatting of the benchmark's arch strings, the benchmark's own index
order, seeded sampling / mutation / neighbours for search, and a torch model builder whose
``state_dict`` matches xautodl's (the code that produced the benchmarks). :class:`NB201Space` and
:class:`NATSSizeSpace` implement the :class:`SearchSpace` protocol that search consumes;
``get_space(name)`` builds one by name; :mod:`.arch_lists` parses and samples lists of arch indices.

Imports torch and numpy only: nothing else of nasbeff.
"""

from . import nats_size as _nats_size
from . import nb201 as _nb201
from .arch_lists import NUM_NB201_ARCHS, parse_indices, sample_from_pool
from .base import SPACE_NAMES, SearchSpace, get_space
from .nats_size import *  # noqa: F403 - the names of nats_size.__all__
from .nb201 import *  # noqa: F403 - the names of nb201.__all__

__all__ = ["SearchSpace", "SPACE_NAMES", "get_space", "NUM_NB201_ARCHS", "parse_indices", "sample_from_pool", *_nb201.__all__, *_nats_size.__all__]
