"""Shared by ``dev_choice.py`` and ``run.py`` (issue 25 part 3): the splits fixed in ``config.json``, the
proxy columns, and one fit-and-score of the architecture predictor.

A feature set is ``graf``, ``onehot``, ``proxies[_c10img]`` or ``graf+proxies[_c10img]`` (``+beff``);
``proxies`` alone is ``ArchPredictor(features=None)`` on the proxy columns.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from nasbeff.evaluation import rank_correlation
from nasbeff.predictors import ArchPredictor
from nasbeff.spaces import parse_indices, sample_from_pool
from nasbeff.store import read_csv, to_float

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
CONFIG = HERE / "config.json"

# every per-arch proxy of the sample tier (issue's "every registered proxy"), less the exclusions of config.json
PROXY_COLUMNS: tuple[str, ...] = (
    "params", "flops", "synflow", "meco", "aznas_expressivity", "aznas_progressivity", "aznas_trainability",
    "zico", "naswot", "jacov", "snip", "grad_norm", "fisher", "plain", "synflow_bn", "zen",
)


def load_config() -> dict:
    return json.loads(CONFIG.read_text())


@dataclass(frozen=True)
class Splits:
    sample: list[int]
    test: list[int]
    pool: list[int]
    protocol_test: list[int]
    protocol_pool: list[int]


def splits(cfg: dict) -> Splits:
    """The test sets and training pools of ``config.json`` (every test set disjoint from every pool)."""
    s = cfg["sample"]
    sample = sample_from_pool(parse_indices(s["pool"]), s["size"], s["seed"])
    test = sample_from_pool(sample, cfg["test"]["size"], cfg["test"]["seed"])
    p = cfg["protocol"]
    _, recs = read_csv(REPO / p["csv"], "protocol csv")
    protocol = sorted(int(r["index"]) for r in recs)
    protocol_test = sample_from_pool(protocol, p["test_size"], p["seed"])
    pool = sorted(set(sample) - set(test) - set(protocol_test))
    protocol_pool = sorted(set(protocol) - set(protocol_test) - set(test))
    return Splits(sample, test, pool, protocol_test, protocol_pool)


def read_columns(path: Path, columns: tuple[str, ...] | list[str]) -> dict[int, np.ndarray]:
    """``{index: values of columns}`` of a score CSV (empty cells: NaN)."""
    fields, recs = read_csv(path, str(path))
    missing = [c for c in columns if c not in fields]
    if missing:
        raise ValueError(f"{path} lacks columns {missing}")
    return {int(r["index"]): np.array([to_float(r[c]) for c in columns], dtype=np.float64) for r in recs}


def fill_nonfinite(train: np.ndarray, *others: np.ndarray) -> list[np.ndarray]:
    """Per column, every NaN / -inf / +inf becomes the training rows' finite minimum minus 1 (0 when the
    column has no finite training value), in ``train`` and in each of ``others``."""
    fill = np.zeros(train.shape[1])
    for j in range(train.shape[1]):
        finite = train[np.isfinite(train[:, j]), j]
        fill[j] = finite.min() - 1.0 if finite.size else 0.0
    out = []
    for m in (train, *others):
        m = m.copy()
        bad = ~np.isfinite(m)
        m[bad] = np.broadcast_to(fill, m.shape)[bad]
        out.append(m)
    return out


def make_model(model: dict, seed: int, features: str | None) -> ArchPredictor:
    """``ArchPredictor`` on ``features`` with the hyper-parameters of ``model`` (a config block)."""
    kw = {k: v for k, v in model.items() if k in ("n_estimators", "max_features", "min_samples_leaf")}
    return ArchPredictor(features, model=model["model"], random_state=seed, **kw)


@dataclass
class Score:
    spearman: float
    kendall: float
    n_test: int
    importances: np.ndarray | None
    names: list[str]
    predictions: np.ndarray


def fit_score(feature_set: str, model: dict, seed: int, train: list[int], y_train: np.ndarray,
              test: list[int], y_test: np.ndarray, extra_train: np.ndarray | None = None,
              extra_test: np.ndarray | None = None, extra_names: list[str] | None = None) -> Score:
    """Fit ``feature_set`` on ``train`` and score the test predictions (Spearman, Kendall vs ``y_test``):
    its first part (``graf``, ``onehot``) names the architecture features, none for a proxies-only set;
    the extra columns (non-finite values filled by :func:`fill_nonfinite`) join them."""
    if extra_train is not None:
        extra_train, extra_test = fill_nonfinite(extra_train, extra_test)
    arch_part = feature_set.split("+")[0]
    pred = make_model(model, seed, arch_part if arch_part in ("graf", "onehot") else None)
    pred.fit(train, y_train, extra=extra_train, extra_names=extra_names)
    y_hat = pred.predict(test, extra=extra_test)
    imp = pred.feature_importances_ if model["model"] == "rf" else None
    c = rank_correlation(y_hat, y_test, n_boot=0)
    return Score(c.spearman, c.kendall, c.n, imp, list(pred.feature_names_in_), y_hat)
