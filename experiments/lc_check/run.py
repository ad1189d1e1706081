"""Learning-curve predictors on NAS-Bench-201's own curves (cifar10-valid, archs 0..199).

For k in (5, 10, 20) observed epochs, every predictor of :mod:`nasbeff.lc_predictors` predicts the
final accuracy; we report Spearman rho (with a 95% bootstrap interval over archs) against
``c10_test`` (the 200-epoch CIFAR-10 test accuracy, trained on train+valid) and against the curve's
own epoch-200 x-valid value, plus the mean absolute error against the epoch-200 value.

Predictors that learn from other archs (SVR, affine ensemble) are trained on the epoch-200 x-valid
value of the OTHER archs only: 5-fold cross-validation by arch (seed 0), full reference curves in
the training folds, the first k epochs of the predicted fold. LCE rows other than the default
(BIC weights) re-combine the same fits (no refitting): equal weights, inverse residual variance,
and the pow3 family alone.

Usage: ``OMP_NUM_THREADS=1 python experiments/lc_check/run.py`` (about 1-2 min on one core);
writes ``results.md`` next to this file.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
from scipy.stats import spearmanr

ROOT = Path(__file__).resolve().parents[2]

from nasbeff.tables import LearningCurves, NB201Table
from nasbeff.evaluation import rank_correlation
from nasbeff.predictors import (
    AffineEnsemble,
    BestSeenValue,
    CurveExtrapolation,
    CurveSVR,
    LastSeenValue,
    cross_val_predict_by_arch,
    nb201_arch_features,
)

HERE = Path(__file__).resolve().parent
KS = (5, 10, 20)


def predictions(v: np.ndarray, final: np.ndarray, feats: np.ndarray, k: int, folds: int, seed: int
                ) -> tuple[dict[str, np.ndarray], dict[str, float]]:
    obs = v[:, :k]
    out: dict[str, np.ndarray] = {}
    secs: dict[str, float] = {}

    def timed(name, fn):
        t0 = time.perf_counter()
        out[name] = np.asarray(fn(), dtype=np.float64)
        secs[name] = time.perf_counter() - t0

    timed("last seen value", lambda: LastSeenValue().fit(v).predict(obs))
    timed("best seen value", lambda: BestSeenValue().fit(v).predict(obs))
    lce = CurveExtrapolation(final_epoch=200).fit(v)
    t0 = time.perf_counter()
    fits = lce.extrapolations(obs)
    out["LCE (BIC weights)"] = np.array([f.prediction for f in fits])
    secs["LCE (BIC weights)"] = time.perf_counter() - t0
    out["LCE (equal weights)"] = np.array([f.reweighted("equal").prediction for f in fits])
    out["LCE (inverse-variance weights)"] = np.array([f.reweighted("inverse_variance").prediction for f in fits])
    out["LCE (pow3 only)"] = np.array([np.clip(f.predictions.get("pow3", np.nan), 0, 100) for f in fits])
    fams = sorted({m for f in fits for m in f.predictions})
    secs["_bic_weights"] = {m: float(np.mean([f.weights.get(m, 0.0) for f in fits])) for m in fams}
    n_fallback = sum(f.fallback for f in fits)
    if n_fallback:
        print(f"k={k}: LCE fell back to the last seen value for {n_fallback} archs")
    cv = dict(k=folds, seed=seed, n_observed=k)
    timed("SVR (curve + arch one-hot), CV", lambda: cross_val_predict_by_arch(CurveSVR(), v, final, feats, **cv))
    timed("SVR (curve only), CV", lambda: cross_val_predict_by_arch(CurveSVR(), v, final, None, **cv))
    timed("affine ensemble (all refs), CV", lambda: cross_val_predict_by_arch(AffineEnsemble(), v, final, **cv))
    timed("affine ensemble (5 best refs), CV",
          lambda: cross_val_predict_by_arch(AffineEnsemble(n_best=5), v, final, **cv))
    return out, secs


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--folds", type=int, default=5)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--n-boot", type=int, default=1000)
    ap.add_argument("--out", type=Path, default=HERE / "results.md")
    args = ap.parse_args()

    lc = LearningCurves()
    v = lc.valid()
    idx = lc.indices
    table = NB201Table()
    test = table.column("c10_test", idx)
    final = v[:, -1]  # epoch-200 x-valid
    feats = nb201_arch_features([int(i) for i in idx])
    cut = int(np.sum(test <= 10.0 + 1e-9))

    lines = [
        f"# Learning-curve predictors on NB201 cifar10-valid curves (archs {idx[0]}..{idx[-1]}, n={len(idx)})",
        "",
        "Observe x-valid accuracy at epochs 1..k, predict the final accuracy. `rho test`: Spearman vs "
        "`c10_test` with a 95% bootstrap interval over archs "
        f"({args.n_boot} resamples); `rho e200`: Spearman vs the same curve's epoch-200 x-valid value; "
        "`MAE e200`: mean |prediction - epoch-200 value| in accuracy points. `CV`: "
        f"{args.folds}-fold cross-validation by arch (seed {args.seed}), trained on the epoch-200 x-valid "
        "value of the other archs' full curves. LCE: Domhan et al. families fitted by bounded least "
        "squares, extrapolated to epoch 200 (the equal / inverse-variance / pow3 rows re-combine the "
        f"same fits). The set has {cut} cut-off archs (c10_test = 10).",
        "",
        f"Reference: rho(epoch-200 x-valid, c10_test) = {spearmanr(final, test)[0]:.3f} (the ceiling of a "
        "perfect epoch-200 predictor on this target).",
        "",
    ]
    timing_rows = []
    best_rows, weight_rows = [], []
    for k in KS:
        preds, secs = predictions(v, final, feats, k, args.folds, args.seed)
        weight_rows.append((k, secs.pop("_bic_weights")))
        rhos = {}
        lines += [f"## k = {k} observed epochs", "",
                  "| predictor | rho test [95% CI] | rho e200 | MAE e200 |", "|---|---|---|---|"]
        for name, p in preds.items():
            c = rank_correlation(p, test, n_boot=args.n_boot, seed=args.seed)
            rhos[name] = c.spearman
            r200 = spearmanr(p, final)[0]
            mae = float(np.mean(np.abs(p - final)))
            lines.append(f"| {name} | {c.spearman:.3f} [{c.spearman_ci[0]:.2f}, {c.spearman_ci[1]:.2f}] "
                         f"| {r200:.3f} | {mae:.2f} |")
            print(f"k={k:2d} {name:36s} rho_test={c.spearman:.3f} rho_e200={r200:.3f} mae={mae:.2f}", flush=True)
        lines.append("")
        timing_rows.append((k, secs))
        top = max(rhos, key=rhos.get)
        best_rows.append(f"* k = {k}: highest rho test is {top} ({rhos[top]:.3f}); last seen value "
                         f"{rhos['last seen value']:.3f}.")
    lines += ["## Seconds per predictor (all 200 archs, CV included; 1 thread, niced, shared machine)", "",
              "| k | " + " | ".join(timing_rows[0][1]) + " |", "|---" * (len(timing_rows[0][1]) + 1) + "|"]
    for k, secs in timing_rows:
        lines.append(f"| {k} | " + " | ".join(f"{s:.2f}" for s in secs.values()) + " |")
    lines.append("")
    fam_names = sorted({m for _, w in weight_rows for m in w})
    lines += ["## Mean LCE BIC weight per family", "", "| k | " + " | ".join(fam_names) + " |",
              "|---" * (len(fam_names) + 1) + "|"]
    for k, w in weight_rows:
        lines.append(f"| {k} | " + " | ".join(f"{w.get(m, 0.0):.2f}" for m in fam_names) + " |")
    med = np.median(v, axis=0)
    lines += ["", "## Notes", ""] + best_rows + [
        "* The intervals are wide (n = 200): differences of a few hundredths between rows are not "
        "significant; use `nasbeff.evaluation.correlation.paired_bootstrap` before claiming one beats another.",
        "* LCE with BIC weights ranks worse than the last seen value: on 5-20 noisy points the BIC "
        "puts much of the weight on the saturating families (exp3, MMF, Janoschek), which extrapolate "
        "a plateau early, while under NB201's 200-epoch cosine learning-rate schedule accuracy keeps "
        f"rising steadily (median curve: {med[19]:.1f} / {med[49]:.1f} / {med[99]:.1f} / {med[149]:.1f} / "
        f"{med[199]:.1f} at epochs 20 / 50 / 100 / 150 / 200). pow3 alone (slowly converging) ranks best among "
        "the LCE rows. Domhan et al. use MCMC with priors that require increasing curves and judge "
        "only whether a run beats the best so far; the point-estimate BIC average is a simplification.",
        "* The CV rows learn the epoch-200 scale from the other archs, hence their much lower MAE; "
        "the parameter-free rows (LSV, BSV, LCE) are biased low by construction at small k.",
        "* The SVR uses default hyper-parameters (C = 1, epsilon = 0.05 target std, RBF, "
        "gamma = 'scale'), not tuned on this set; the 30 one-hot arch columns help at k = 5 and hurt "
        "at k = 20, where the curve already carries the information.",
        "",
    ]
    args.out.write_text("\n".join(lines))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
