"""The NASWOT-style selection table (Mellor et al., ICML 2021, Table 2): draw N archs at random, keep
the one a scorer ranks highest, read its accuracies; repeat, and report mean ± std over the repeats.

Each run draws ``n`` distinct archs uniformly from the space (all 15,625 of NB201, cut-off ones
included, as the paper); archs the scorer cannot score (NaN, ``-inf``) are never chosen unless the
draw has nothing else (then the run picks none and counts as missing). Ties go to the first drawn.
The draws depend only on ``seed``, so every scorer is judged on the same archs.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

__all__ = ["best_of_n_draws", "best_of_n"]


def best_of_n_draws(space_size: int, n: int, runs: int, seed: int = 0) -> np.ndarray:
    """``runs x n`` arch indices, each row ``n`` distinct archs drawn uniformly (seeded)."""
    if not 1 <= n <= space_size:
        raise ValueError(f"N must lie in 1..{space_size}, got {n}")
    if runs < 1:
        raise ValueError(f"runs must be >= 1, got {runs}")
    rng = np.random.default_rng(seed)
    return np.stack([rng.choice(space_size, size=n, replace=False) for _ in range(runs)])


def best_of_n(scores: Sequence[float] | np.ndarray, accuracies: Mapping[str, Sequence[float] | np.ndarray],
              draws: np.ndarray) -> dict[str, tuple[float, float, int]]:
    """``{accuracy name: (mean, std, runs with a pick)}`` of the accuracy of each draw's best-scored
    arch (std with ddof=0, as the paper's ±)."""
    s = np.asarray(scores, dtype=np.float64)
    s = np.where(np.isfinite(s), s, -np.inf)
    picked = draws[np.arange(len(draws)), np.argmax(s[draws], axis=1)]
    ok = np.isfinite(s[picked])
    out = {}
    for name, acc in accuracies.items():
        a = np.asarray(acc, dtype=np.float64)[picked[ok]]
        out[name] = (float(a.mean()), float(a.std()), int(ok.sum())) if a.size else (float("nan"), float("nan"), 0)
    return out
