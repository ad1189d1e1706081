"""nasbeff: rank neural architectures early with the neural capacitance beta_eff."""

__version__ = "0.1.0"
