"""nasbeff: rank neural architectures early with the neural capacitance beta_eff.

Jiang et al., "Network properties determine neural network performance", Nat. Commun. 2024.

The most used names are here; everything else is in its package (``nasbeff.core``, ``nasbeff.data``,
``nasbeff.tables``, ``nasbeff.spaces``, ``nasbeff.store``, ``nasbeff.executors``,
``nasbeff.evaluation``, ``nasbeff.predictors``, ``nasbeff.proxies``, ``nasbeff.training``,
``nasbeff.selection``, ``nasbeff.optimizers``, ``nasbeff.runs``, ``nasbeff.cli``). Names other than
beta_eff's are imported on first use, so ``import nasbeff`` stays light.
"""

from __future__ import annotations

import importlib
from typing import Any

from .core.capacitance import Capacitance, beta_eff, capacitance

__version__ = "0.1.0"

_LAZY = {  # name -> the package that exports it
    "line_graph": "core", "beta_eff_from_matrix": "core", "NCP": "core", "attach_probe": "core",
    "probe_inputs": "core", "NB201Table": "tables", "ResultStore": "store", "RunKey": "store",
    "build_nb201_model": "spaces", "get_space": "spaces", "index_to_str": "spaces",
    "rank_correlation": "evaluation", "EarlyTrainer": "training",
}
__all__ = ["beta_eff", "capacitance", "Capacitance", "__version__", *_LAZY]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        value = getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'nasbeff' has no attribute {name!r}")
