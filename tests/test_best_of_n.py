"""The NASWOT-style best-of-N table (issue 24 part 4) by hand."""

from __future__ import annotations

import numpy as np
import pytest

from nasbeff.evaluation import best_of_n, best_of_n_draws


def test_draws_are_seeded_distinct_and_in_range():
    d = best_of_n_draws(50, 10, 7, seed=3)
    assert d.shape == (7, 10) and all(len(set(r)) == 10 for r in d) and d.min() >= 0 and d.max() < 50
    assert np.array_equal(d, best_of_n_draws(50, 10, 7, seed=3))
    with pytest.raises(ValueError, match="N must lie in 1..50"):
        best_of_n_draws(50, 51, 1)
    with pytest.raises(ValueError, match="runs must be >= 1"):
        best_of_n_draws(50, 5, 0)


def test_best_of_n_by_hand():
    scores = np.array([0.1, np.nan, 0.9, -np.inf, 0.5])
    acc = {"a": np.array([10.0, 99.0, 30.0, 99.0, 50.0])}
    draws = np.array([[0, 1, 2], [3, 4, 1], [1, 3, 0], [1, 3, 3]])
    got = best_of_n(scores, acc, draws)
    # picks: 2 (30), 4 (50), 0 (10); the last draw has nothing scorable: missing
    assert got["a"] == pytest.approx((30.0, np.std([30.0, 50.0, 10.0]), 3))
    assert best_of_n(np.zeros(5), acc, draws[:2])["a"][0] == pytest.approx((10.0 + 99.0) / 2)  # ties: first drawn
