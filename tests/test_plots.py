"""The figures are written as real PNGs of the expected size."""

from __future__ import annotations

import numpy as np
from PIL import Image

from nasbeff.evaluation.correlation import correlation_table
from nasbeff.evaluation.plots import learning_curves, predicted_vs_true, scorer_bars


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


def test_cost_signal_frontier_draws_a_png(tmp_path):
    from nasbeff.evaluation.plots import cost_signal_frontier

    rows = [{"setting": "F1:abc", "epochs": e, "seconds_per_arch": 10.0 * e, "score": s, "cut_off": cut, "n": 30,
             "spearman": r, "lo": r - 0.2, "hi": r + 0.1}
            for e in (1, 2, 3) for s, r in (("tse", 0.3 + 0.1 * e), ("lsv", 0.2 * e), ("beff_pred", -0.1))
            for cut in ("excluded", "included")]
    rows.append({"setting": "free", "epochs": 0, "seconds_per_arch": 0.0, "score": "params", "cut_off": "excluded",
                 "n": 30, "spearman": 0.8, "lo": 0.6, "hi": 0.9})
    out = tmp_path / "frontier.png"
    cost_signal_frontier(rows, out, baselines=("tse", "lsv"))
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and out.stat().st_size > 10_000
