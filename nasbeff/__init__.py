"""nasbeff: rank neural architectures early with the neural capacitance beta_eff.

Jiang et al., "Network properties determine neural network performance", Nat. Commun. 2024.
"""

from .core.capacitance import Capacitance, beta_eff, capacitance

__version__ = "0.1.0"
__all__ = ["beta_eff", "capacitance", "Capacitance", "__version__"]
