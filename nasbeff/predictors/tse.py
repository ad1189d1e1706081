"""Training-speed estimators (Ru et al., "Speedy performance estimation for neural architecture
search", NeurIPS 2021): rank archs by how fast their training loss falls, from the same runs.

With ``L_t`` the training loss summed over the mini-batches of epoch ``t`` (``losses[:, t-1]``)
and ``k`` observed epochs, the scores (higher = better, i.e. the negated sums) are

    TSE      = - sum_{t=1..k} L_t                      (sum over training epochs; "SoTL")
    TSE-E    = - sum_{t=k-E+1..k} L_t                   (the last E epochs)
    TSE-EMA  = - sum_{t=1..k} gamma^(k-t) L_t           (exponential moving average, gamma = 0.9)

They are rank scores, not accuracy predictions: compare them by rank correlation only.
"""

from __future__ import annotations

import numpy as np

from .base import CurvePredictor, check_beta

TSE_GAMMA = 0.9


def _losses(losses, curves: np.ndarray) -> np.ndarray:
    return check_beta(losses, curves, "losses", "each epoch's training loss summed over its mini-batches")


class TSE(CurvePredictor):
    """``-sum_t L_t`` over every observed epoch (Ru et al.'s TSE / SoTL)."""

    min_observed = 1

    def _predict(self, curves, arch_features=None, beta=None, losses=None) -> np.ndarray:
        return -_losses(losses, curves).sum(axis=1)


class TSEE(CurvePredictor):
    """``-sum`` of ``L_t`` over the last ``last_epochs`` observed epochs (TSE-E; Ru et al.: E = 1)."""

    min_observed = 1

    def __init__(self, last_epochs: int = 1) -> None:
        self.last_epochs = last_epochs

    def _predict(self, curves, arch_features=None, beta=None, losses=None) -> np.ndarray:
        if not 1 <= self.last_epochs:
            raise ValueError(f"last_epochs must be >= 1, got {self.last_epochs}")
        return -_losses(losses, curves)[:, -self.last_epochs:].sum(axis=1)


class TSEEMA(CurvePredictor):
    """``-sum_t gamma^(k-t) L_t`` (TSE-EMA; Ru et al.: gamma = 0.9)."""

    min_observed = 1

    def __init__(self, gamma: float = TSE_GAMMA) -> None:
        self.gamma = gamma

    def _predict(self, curves, arch_features=None, beta=None, losses=None) -> np.ndarray:
        if not 0 < self.gamma <= 1:
            raise ValueError(f"gamma must lie in (0, 1], got {self.gamma}")
        loss = _losses(losses, curves)
        weights = self.gamma ** np.arange(loss.shape[1] - 1, -1, -1, dtype=np.float64)
        return -(loss * weights).sum(axis=1)
