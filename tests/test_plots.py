"""The figures are written as real PNGs of the expected size."""

from __future__ import annotations

import numpy as np
from PIL import Image

from nasbeff.evaluate import correlation_table
from nasbeff.plots import learning_curves, predicted_vs_true, scorer_bars


def test_figures_are_written(tmp_path):
    curves = [{"label": f"arch {i}", "epochs": [1, 2, 3, 4], "acc": [20 + i, 30 + i, 35 + i, 38 + i],
               "beta": [0.9, 0.6, 0.45, 0.4], "true": 80.0 + i} for i in range(3)]
    learning_curves(curves, tmp_path / "fig2.png", title="t")
    rng = np.random.default_rng(0)
    t = rng.normal(size=30)
    predicted_vs_true(t + rng.normal(size=30), t, tmp_path / "fig3a.png", highlight=np.arange(30) < 3)
    scorer_bars(correlation_table({"beff": t, "noise": rng.normal(size=30)}, t, n_boot=50), tmp_path / "bars.png")
    sizes = {p.name: Image.open(p).size for p in tmp_path.glob("*.png")}
    assert set(sizes) == {"fig2.png", "fig3a.png", "bars.png"}
    assert sizes["fig2.png"][0] > sizes["fig3a.png"][0]  # three columns of panels
    assert all(w > 300 and h > 200 for w, h in sizes.values())
