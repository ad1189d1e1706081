"""Evaluation: rank correlations with bootstrap intervals, paired differences and the seed-noise
ceiling (:mod:`.correlation`), and the figures (:mod:`.plots`, matplotlib, imported on use).

Imports numpy, scipy and matplotlib, and of nasbeff only :mod:`nasbeff.predictors` (the figures
draw fitted beta_eff curves).
"""

from .correlation import (Correlation, PairedDifference, correlation_table, markdown_table, noise_ceiling,
                          paired_bootstrap, paired_mean_difference, rank_correlation)

__all__ = ["Correlation", "PairedDifference", "correlation_table", "markdown_table", "noise_ceiling",
           "paired_bootstrap", "paired_mean_difference", "rank_correlation"]
