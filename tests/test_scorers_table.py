"""Table-building functions of experiments/nb201_scorers/run.py on synthetic inputs."""

import importlib.util
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

_PATH = Path(__file__).resolve().parents[1] / "experiments" / "nb201_scorers" / "run.py"
_spec = importlib.util.spec_from_file_location("nb201_scorers_run", _PATH)
run = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(run)


def _table(n=40, seed=0):
    rng = np.random.default_rng(seed)
    truth = rng.normal(size=n)
    t = pd.DataFrame({"index": np.arange(n), "good": truth + 0.1 * rng.normal(size=n),
                      "noise": rng.normal(size=n), "good_s": np.full(n, 2.0)})
    return t, truth


def test_rank_ready_keeps_order_and_nan():
    v = run.rank_ready([3.0, -np.inf, 1.0, np.nan, np.inf])
    assert np.isnan(v[3]) and np.all(np.isfinite(v[[0, 1, 2, 4]]))
    assert v[1] < v[2] < v[0] < v[4]
    assert np.isfinite(run.rank_ready([-np.inf, -np.inf])).all()  # all -inf: finite ties
    assert np.isnan(run.rank_ready([np.nan])).all()


def test_merge_beff_aligns_by_index_and_fills_nan():
    t = pd.DataFrame({"index": [0, 1, 2, 3]})
    rank = pd.DataFrame({"index": [3, 1], "beff_pred": [90.0, 80.0], "lsv": [50.0, 40.0], "bsv": [51.0, 41.0],
                         "gpu_seconds": [100.0, 200.0], "arch_str": ["a", "b"]})
    m = run.merge_beff(t, rank)
    assert m["beff_pred"].tolist()[1] == 80.0 and m["beff_pred"].tolist()[3] == 90.0
    assert np.isnan(m.loc[[0, 2], ["beff_pred", "beff_lsv", "beff_bsv", "beff_s"]].to_numpy()).all()
    assert m["beff_lsv"][3] == 50.0 and m["beff_s"][1] == 200.0
    assert np.isnan(run.merge_beff(t, None)["beff_pred"]).all()
    with pytest.raises(ValueError, match="lacks columns"):
        run.merge_beff(t, rank.drop(columns="bsv"))
    with pytest.raises(ValueError, match="duplicate"):
        run.merge_beff(t, pd.concat([rank, rank]))


def test_scorer_rows_mask_cost_and_skips():
    t, truth = _table()
    t["few"] = np.nan
    t.loc[:1, "few"] = [1.0, 2.0]  # only 2 archs scored: skipped
    t.loc[0, "good"] = -np.inf  # stays in the set (ranked last)
    mask = np.arange(len(t)) < 30
    rows = run.scorer_rows(t, ["good", "noise", "few"], truth, mask, {"good": "good_s"}, n_boot=50)
    by = {r["method"]: r for r in rows}
    assert set(by) == {"good", "noise"}
    assert by["good"]["n"] == 30 and by["good"]["spearman"] > 0.8 > abs(by["noise"]["spearman"])
    assert by["good"]["cost_s"] == 2.0 and np.isnan(by["noise"]["cost_s"])
    md = run.rows_markdown(rows, "acc", {"good": "kind-x"})
    assert "| good | 30 |" in md and "kind-x" in md and "| — |" in md
    with pytest.raises(ValueError, match="one entry per table row"):
        run.scorer_rows(t, ["good"], truth[:5])


def test_paired_markdown_uses_common_archs():
    t, truth = _table()
    t.loc[:9, "noise"] = np.nan
    t["two"] = np.nan
    t.loc[:1, "two"] = [1.0, 2.0]
    md = run.paired_markdown(t, [("good", "noise"), ("good", "two")], truth, n_boot=50)
    assert md.splitlines()[2].startswith("| good | noise | 30 | +")
    assert md.splitlines()[3] == "| good | two | 2 | n/a | n/a |"


def test_summary_markdown_one_row_per_scorer():
    t, truth = _table()
    a = run.scorer_rows(t, ["good", "noise"], truth, None, {"good": "good_s"}, n_boot=20)
    b = run.scorer_rows(t, ["good"], truth, np.arange(len(t)) < 20, {"good": "good_s"}, n_boot=20)
    md = run.summary_markdown([("set A", a), ("set B", b)], {"noise": "k"}).splitlines()
    assert md[0] == "| scorer | kind | set A | set B | median cost / arch (s) |"
    assert len(md) == 4 and md[2].startswith("| good |") and "(40)" in md[2] and "(20)" in md[2]
    assert md[3].startswith("| noise | k |") and md[3].endswith("| — | — |")
