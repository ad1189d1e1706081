"""Evaluation: rank correlations with bootstrap intervals, paired differences and the seed-noise
ceiling (:mod:`.correlation`), the NASWOT-style best-of-N selection table (:mod:`.best_of_n`), and the
figures (:mod:`.plots`, matplotlib, imported on use).

Imports numpy, scipy and matplotlib, and of nasbeff only :mod:`nasbeff.predictors` (the figures
draw fitted beta_eff curves).
"""

from .best_of_n import best_of_n, best_of_n_draws
from .correlation import (Correlation, PairedDifference, correlation_table, markdown_table, median_interval,
                          noise_ceiling, paired_bootstrap, paired_mean_difference, rank_correlation)

__all__ = ["best_of_n", "best_of_n_draws", "Correlation", "PairedDifference", "correlation_table", "markdown_table",
           "median_interval", "noise_ceiling", "paired_bootstrap", "paired_mean_difference", "rank_correlation"]
