"""The Table-1 comparison: per-run predictions from the first k epochs, one row per backbone,
Spearman against the fine-tuned test accuracy with bootstrap intervals, the seed-noise ceiling
and the figures."""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np


# ---------------------------------------------------------------------------------------------
# Predictions, rows, the Table-1 comparison and the figures
# ---------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Run:
    """One (model, seed) run's per-epoch series (epochs 1..n) and its ground truth (or NaN)."""

    model: str
    seed: int
    acc: np.ndarray
    beta: np.ndarray
    loss_sum: np.ndarray
    seconds: np.ndarray  # per epoch: [train, eval, beta]
    test_acc: float = math.nan


def _per_seed(runs: Sequence[Run], models: Sequence[str], values: np.ndarray) -> dict[str, float]:
    """Mean over seeds of one value per run, per model (NaNs ignored; NaN when all are)."""
    out = {}
    for m in models:
        v = np.array([x for r, x in zip(runs, values) if r.model == m], dtype=float)
        out[m] = _mean(v) if np.isfinite(v).any() else math.nan
    return out


def _mean(values) -> float:
    """Mean rounded to 9 decimals: equal sums of per-seed accuracies added in another order differ
    in their last bits, and a rank correlation would read that float noise as an order (not a tie)."""
    return float(np.round(np.nanmean(np.asarray(values, dtype=float)), 9))


def curve_predictions(runs: Sequence[Run], k: int, epochs: int, truth: bool) -> dict[str, np.ndarray]:
    """Per-run predictions from the first ``k`` epochs: ``beff`` (NaN where the curve cannot be
    fitted), ``lsv``, ``bsv``, ``tse``, ``lce`` (extrapolated to ``epochs``) and, with ``truth``,
    ``svr`` / ``cl`` fitted on the other models' full curves and test accuracies (leave one model out)."""
    from ..predictors import (AffineEnsemble, BestSeenValue, BetaEffPredictor, CurveExtrapolation, CurveSVR,
                             LastSeenValue, TSE, cross_val_predict_by_arch)

    acc = np.array([r.acc[:k] for r in runs])
    beta = np.array([r.beta[:k] for r in runs])
    loss = np.array([r.loss_sum[:k] for r in runs])
    out = {"beff": BetaEffPredictor().fit(acc).predict(acc, beta=beta),
           "lsv": LastSeenValue().fit(acc).predict(acc), "bsv": BestSeenValue().fit(acc).predict(acc),
           "tse": TSE().fit(acc).predict(acc, losses=loss),
           "lce": CurveExtrapolation(final_epoch=epochs).fit(acc).predict(acc)}
    if truth:
        full = np.array([r.acc[:epochs] for r in runs])
        final = np.array([r.test_acc for r in runs])
        groups = np.array([r.model for r in runs])
        n_models = len(set(groups))
        for name, est in (("svr", CurveSVR()), ("cl", AffineEnsemble())):
            out[name] = cross_val_predict_by_arch(est, full, final, k=n_models, n_observed=k, groups=groups)
    return out


def selection_rows(runs: Sequence[Run], info: Mapping[str, Mapping], predict_at: Sequence[int], epochs: int,
                   truth: bool, transfer: Mapping[str, Mapping[str, float]] | None = None) -> list[dict]:
    """One row per model (in ``info``'s order: family, params, source_acc, ...): ``true_acc`` (mean
    test accuracy over seeds after ``epochs``), ``true_acc_s<seed>``, per k in ``predict_at`` the
    seed-averaged ``beff_pred_k`` (``beff_fallback_k``: seeds whose beta_eff curve could not be
    fitted), ``lsv_k``, ``bsv_k``, ``tse_k``, ``lce_k`` (+ ``svr_k``, ``cl_k`` with ``truth``),
    ``logme``, ``leep``, ``nce``, and the seconds per model of each method (mean over seeds): the
    first k epochs of training (+ evaluation for curve methods, + beta_eff for ``beff``)."""
    models = list(info)
    rows = {m: {"model": m, **dict(info[m])} for m in models}
    if truth:
        for m in models:
            mine = [r for r in runs if r.model == m]
            rows[m]["true_acc"] = _mean([r.test_acc for r in mine])
            rows[m]["true_acc_std"] = float(np.std([r.test_acc for r in mine]))
            rows[m].update({f"true_acc_s{r.seed}": r.test_acc for r in mine})
    for k in predict_at:
        preds = curve_predictions(runs, k, epochs, truth)
        beff = preds.pop("beff")
        for m, v in _per_seed(runs, models, beff).items():
            rows[m][f"beff_pred_{k}"] = v
            rows[m][f"beff_fallback_{k}"] = sum(1 for r, b in zip(runs, beff) if r.model == m and not np.isfinite(b))
        for name, values in preds.items():
            for m, v in _per_seed(runs, models, values).items():
                rows[m][f"{name}_{k}"] = v
        secs = np.array([r.seconds[:k].sum(0) for r in runs])  # (runs, [train, eval, beta])
        for label, cols in (("tse", [0]), ("curve", [0, 1]), ("beff", [0, 1, 2])):
            for m, v in _per_seed(runs, models, secs[:, cols].sum(1)).items():
                rows[m][f"seconds_{label}_{k}"] = v
    for m in models:
        for name, v in (transfer or {}).get(m, {}).items():
            rows[m][name] = v
    return [rows[m] for m in models]


def noise_ceiling(rows: Sequence[dict], seeds: Sequence[int]) -> float:
    """Mean Spearman rho between the ground truths of two seeds, over all seed pairs: the rank
    agreement the seed noise of the ground truth allows (:func:`nasbeff.evaluation.correlation.noise_ceiling`)."""
    from ..evaluation.correlation import noise_ceiling as pair

    vals = [pair([r[f"true_acc_s{a}"] for r in rows], [r[f"true_acc_s{b}"] for r in rows])
            for a, b in itertools.combinations(seeds, 2)]
    return float(np.mean(vals)) if vals else math.nan


def method_columns(rows: Sequence[dict], predict_at: Sequence[int]) -> list[str]:
    """The score columns present in ``rows``, beta_eff first, in Table-1 order."""
    names = [f"{m}_{k}" if m != "beff_pred" else f"beff_pred_{k}" for k in predict_at
             for m in ("beff_pred", "lsv", "bsv", "svr", "cl", "lce", "tse")] + ["logme", "leep", "nce"]
    return [c for c in names if rows and c in rows[0]]


def selection_table(rows: Sequence[dict], predict_at: Sequence[int], n_boot: int = 2000, seed: int = 0
                    ) -> tuple[list[dict], list[dict]]:
    """Table 1: (per method, Spearman and Kendall of the score vs ``true_acc`` over models with
    bootstrap CIs; per k, the paired bootstrap of rho(beff_pred_k) - rho(best other method at k),
    the best by point Spearman among the curve methods at the same k and LogME / LEEP / NCE)."""
    from ..evaluation.correlation import correlation_table, paired_bootstrap

    truth = [r["true_acc"] for r in rows]
    cols = method_columns(rows, predict_at)
    table = correlation_table({c: [r[c] for r in rows] for c in cols}, truth, n_boot=n_boot, seed=seed)
    rho = {t["method"]: t["spearman"] for t in table}
    paired = []
    for k in predict_at:
        ref = f"beff_pred_{k}"
        rivals = [c for c in cols if c != ref and (c.endswith(f"_{k}") or c in ("logme", "leep", "nce"))]
        if ref not in rho or not rivals:
            continue
        best = max(rivals, key=lambda c: rho[c] if np.isfinite(rho[c]) else -np.inf)
        d = paired_bootstrap([r[ref] for r in rows], [r[best] for r in rows], truth, n_boot=n_boot, seed=seed)
        paired.append({"epochs": k, "beff": ref, "best_baseline": best, "diff": d.diff, "diff_lo": d.ci[0],
                       "diff_hi": d.ci[1], "p_not_better": d.p_not_better})
    return table, paired


def selection_figures(rows: Sequence[dict], runs: Sequence[Run], k: int, out: str | Path, title: str = "",
                      n_curves: int = 6) -> list[Path]:
    """Fig. 2 (``fig2_curves.png``: accuracy and beta_eff per epoch of the first seed's runs of up
    to ``n_curves`` models with the fit at beta_eff = 0) and Fig. 3a (``fig3a_pred_vs_true.png``:
    ``beff_pred_k`` vs ``true_acc``) in folder ``out``."""
    from ..evaluation import plots

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    first = min(r.seed for r in runs)
    truth = {r["model"]: r.get("true_acc") for r in rows}
    curves = [{"label": r.model, "epochs": np.arange(1, k + 1), "acc": r.acc[:k], "beta": r.beta[:k],
               "true": truth.get(r.model)} for r in runs if r.seed == first][:n_curves]
    paths = [out / "fig2_curves.png", out / "fig3a_pred_vs_true.png"]
    plots.learning_curves(curves, paths[0], title=title)
    plots.predicted_vs_true([r[f"beff_pred_{k}"] for r in rows], [r["true_acc"] for r in rows], paths[1],
                            label=f"beta_eff prediction from {k} epochs (%)", truth_label="test accuracy (%)",
                            title=title, items="models")
    return paths

