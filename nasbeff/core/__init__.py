"""The capacitance core: G_A read off a forward pass (:mod:`.graph`), the exact matrix-free beta_eff
(:mod:`.capacitance`, Eq. 2 with the blocks of Eq. 7), the explicit line graph G_B as a reference
(:mod:`.line_graph`) and the frozen neural capacitance probe (:mod:`.probe`).

Imports torch, numpy, scipy and networkx only: nothing else of nasbeff.
"""

from .capacitance import Capacitance, beta_eff, capacitance
from .line_graph import LineGraph, beta_eff_from_graph, beta_eff_from_matrix, line_graph
from .probe import NCP, ProbedNet, attach_probe, probe_inputs

__all__ = ["Capacitance", "beta_eff", "capacitance", "LineGraph", "line_graph", "beta_eff_from_matrix",
           "beta_eff_from_graph", "NCP", "ProbedNet", "attach_probe", "probe_inputs"]
