"""experiments/nb201_tables: one row of the ZiCo-style table on made-up columns (its value, n, notes)."""

from __future__ import annotations

import importlib.util
import math
from pathlib import Path

import numpy as np
from scipy import stats

HERE = Path(__file__).resolve().parents[1] / "experiments" / "nb201_tables"


def _load(name: str):
    spec = importlib.util.spec_from_file_location(f"nb201_tables_{name}", HERE / f"{name}.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_a_zico_table_row_counts_the_archs_its_column_has_and_labels_transfers():
    zt = _load("zico_table")
    rng = np.random.default_rng(0)
    truth = rng.normal(80, 5, 40)
    cut = np.zeros(40, bool)
    cut[0] = True  # left out, whatever its score
    score = truth + rng.normal(0, 3, 40)
    part = score.copy()
    part[30:] = np.nan  # a tier still running: 30 archs so far
    cols = {"a": score, "b": part, "c": np.full(40, np.nan)}
    row = zt._row("A", "a", "cifar100", (.5, .7), cols, truth, cut, "", "", 100)
    assert row["n"] == 39 and row["note"] == "" and (row["published_kendall"], row["published_spearman"]) == (.5, .7)
    assert math.isclose(row["spearman"], stats.spearmanr(score[1:], truth[1:]).statistic, abs_tol=1e-12)
    assert math.isclose(row["kendall"], stats.kendalltau(score[1:], truth[1:]).statistic, abs_tol=1e-12)
    assert row["spearman_lo"] <= row["spearman"] <= row["spearman_hi"]
    assert zt._row("B", "b", "cifar100", (.5, .7), cols, truth, cut, "", "", 100)["n"] == 29
    empty = zt._row("C", "c", "cifar100", (.5, .7), cols, truth, cut, "", "", 100)  # started, nothing yet
    absent = zt._row("D", "d", "cifar100", (.5, .7), cols, truth, cut, "", "", 100)
    assert empty["n"] == absent["n"] == 0 and empty["note"] == absent["note"] == "not scored yet"
    assert zt._row("D", "d", "imagenet16-120", (.5, .7), {}, None, None, "no images", "", 100)["note"] == "no images"
    moved = zt._row("A [transfer]", "a", "imagenet16-120", (.5, .7), cols, truth, cut, "", zt.TRANSFER, 100)
    assert moved["n"] == 39 and moved["note"] == zt.TRANSFER
    assert zt._row("D", "d", "cifar100", (.5, .7), cols, truth, cut, "", zt.TRANSFER, 100)["note"] == (
        zt.TRANSFER + "; not scored yet")
