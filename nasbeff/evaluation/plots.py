"""Figures (matplotlib, headless): learning curves with beta_eff and the fitted line (paper
Fig. 2), predicted vs true accuracy (Fig. 3a), and scorer comparison bars."""

from __future__ import annotations

import os
from typing import Sequence

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from ..predictors import fit_beta_curve  # noqa: E402


def learning_curves(curves: Sequence[dict], path: str | os.PathLike, title: str = "") -> None:
    """Fig. 2 style, one column per arch: validation accuracy and beta_eff per epoch (top), and
    accuracy vs beta_eff with the Bayesian-ridge line and its prediction at beta_eff = 0 (bottom).
    Each curve dict: ``label``, ``epochs``, ``acc``, ``beta`` and optionally ``true`` (final acc)."""
    n = len(curves)
    fig, axes = plt.subplots(2, n, figsize=(3.2 * n, 6), squeeze=False)
    for j, c in enumerate(curves):
        ep, acc, beta = np.asarray(c["epochs"]), np.asarray(c["acc"]), np.asarray(c["beta"])
        ax = axes[0, j]
        ax.plot(ep, acc, "o-", color="tab:blue", label="valid acc")
        ax.set_xlabel("epoch")
        ax.set_ylabel("validation accuracy (%)", color="tab:blue")
        ax2 = ax.twinx()
        ax2.plot(ep, beta, "s--", color="tab:red", label="beta_eff")
        ax2.set_ylabel("beta_eff", color="tab:red")
        ax.set_title(c.get("label", ""), fontsize=9)
        ax = axes[1, j]
        ax.scatter(beta, acc, c=ep, cmap="viridis", zorder=3)
        try:
            fit = fit_beta_curve(beta, acc)
            mean, std = fit.prediction, fit.std
            xs = np.linspace(min(0.0, beta.min()), max(0.0, beta.max()), 50)
            ax.plot(xs, fit.intercept + fit.slope * xs, "k-", lw=1, label=f"fit (t0={fit.t0})")
            ax.errorbar([0], [mean], yerr=[std], fmt="*", color="tab:green", ms=12, label=f"pred {mean:.1f}")
        except ValueError:
            pass
        if c.get("true") is not None:
            ax.axhline(c["true"], color="gray", ls=":", label=f"true {c['true']:.1f}")
        ax.axvline(0, color="gray", lw=0.5)
        ax.set_xlabel("beta_eff")
        ax.set_ylabel("validation accuracy (%)")
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=7)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def predicted_vs_true(pred, true, path: str | os.PathLike, label: str = "prediction", truth_label: str = "true",
                      highlight=None, title: str = "", items: str = "archs") -> None:
    """Fig. 3a style scatter of predicted vs true accuracy, with its Spearman rho in the title (``items``:
    what a point is, for the legend: archs, models);
    ``highlight`` marks a boolean subset (e.g. cut-off archs) in another colour. Predictions outside
    [0, 100] % (impossible accuracies from an extrapolation) are drawn as triangles on the
    plot's edge at 0 / 100 and counted in the legend, so they are never mistaken for real values."""
    from scipy import stats

    pred, true = np.asarray(pred, dtype=float), np.asarray(true, dtype=float)
    ok = np.isfinite(pred) & np.isfinite(true)
    fig, ax = plt.subplots(figsize=(4.6, 4.2))
    hl = np.zeros_like(ok) if highlight is None else np.asarray(highlight, dtype=bool)
    out = ok & ((pred < 0) | (pred > 100))
    inside = ok & ~out
    ax.scatter(true[inside & ~hl], pred[inside & ~hl], s=18, alpha=0.8, label=items)
    if (inside & hl).any():
        ax.scatter(true[inside & hl], pred[inside & hl], s=22, marker="x", color="tab:red", label=f"cut-off {items}")
    for side, sel, marker in ((100.0, out & (pred > 100), "^"), (0.0, out & (pred < 0), "v")):
        if sel.any():
            ax.scatter(true[sel], np.full(int(sel.sum()), side), s=40, marker=marker, color="tab:orange",
                       label=f"{int(sel.sum())} predicted {'> 100' if side else '< 0'} % (drawn at {side:.0f})")
    rho = stats.spearmanr(pred[ok], true[ok]).statistic
    ax.set_xlabel(truth_label)
    ax.set_ylabel(label)
    ax.set_title((title + "\n" if title else "") + f"Spearman rho = {rho:.3f} (n = {int(ok.sum())})", fontsize=9)
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def scorer_bars(rows: Sequence[dict], path: str | os.PathLike, title: str = "") -> None:
    """Horizontal bars of Spearman rho with bootstrap intervals, one per method (rows from
    :func:`nasbeff.evaluation.correlation.correlation_table`)."""
    rows = sorted(rows, key=lambda r: r["spearman"])
    fig, ax = plt.subplots(figsize=(6, 0.35 * len(rows) + 1.2))
    y = np.arange(len(rows))
    rho = np.array([r["spearman"] for r in rows])
    err = np.array([[r["spearman"] - r["spearman_lo"] for r in rows], [r["spearman_hi"] - r["spearman"] for r in rows]])
    ax.barh(y, rho, xerr=err, color=["tab:green" if r["method"].startswith("beff") else "tab:blue" for r in rows])
    ax.set_yticks(y, [f"{r['method']} (n={r['n']})" for r in rows], fontsize=8)
    ax.set_xlabel("Spearman rho vs ground truth")
    ax.axvline(0, color="k", lw=0.5)
    if title:
        ax.set_title(title, fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def search_curves(groups: dict[str, dict[float, list[float]]], path: str | os.PathLike, title: str = "") -> None:
    """Search accuracy vs cost: per label, the mean ± 1 std over seeds of the best-so-far test
    accuracy at each budget (``groups[label][budget] = [accuracy per seed]``); budgets where fewer
    than half the seeds have a value are left out."""
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for label, by_budget in groups.items():
        b = np.array(sorted(by_budget))
        acc = [np.array(by_budget[x], dtype=float) for x in b]
        ok = np.array([np.isfinite(a).mean() >= 0.5 for a in acc])
        m = np.array([np.nanmean(a) if k else np.nan for a, k in zip(acc, ok)])
        sd = np.array([np.nanstd(a) if k else np.nan for a, k in zip(acc, ok)])
        n = max(len(a) for a in acc)
        ax.plot(b[ok], m[ok], "o-", ms=3, lw=1.5, label=f"{label} ({n} seeds)")
        ax.fill_between(b[ok], (m - sd)[ok], (m + sd)[ok], alpha=0.15)
    ax.set_xlabel("simulated search cost (s)")
    ax.set_ylabel("test accuracy of the best arch so far (%)")
    if title:
        ax.set_title(title, fontsize=9)
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def cost_signal_frontier(rows: Sequence[dict], path: str | os.PathLike, baselines: Sequence[str],
                         beff: str = "beff_pred", free_at: float = 1.0, title: str = "") -> None:
    """The cost/signal frontier: per protocol setting, Spearman rho [95 % CI] vs the wall seconds per
    arch of its first k epochs, for the best same-run baseline (``baselines``: the one with the highest
    rho at each k, named at the point) and for beta_eff's ``beff`` column; free scores (rows with
    setting ``free``) as stars at ``free_at`` seconds. Rows: ``experiments/nb201_protocol/frontier.py``'s
    CSV, cut-off archs excluded (``cut_off == 'excluded'``)."""
    rows = [r for r in rows if r["cut_off"] == "excluded"]
    fig, ax = plt.subplots(figsize=(7.5, 4.8))
    colours = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    settings = list(dict.fromkeys(r["setting"] for r in rows if r["setting"] != "free"))
    for k, setting in enumerate(settings):
        c = colours[k % len(colours)]
        own = [r for r in rows if r["setting"] == setting]
        epochs = sorted({int(r["epochs"]) for r in own})
        best_baseline = [max(rs, key=lambda r: float(r["spearman"])) for e in epochs
                         if (rs := [r for r in own if int(r["epochs"]) == e and r["score"] in baselines])]
        beff_points = [rs[0] for e in epochs
                       if (rs := [r for r in own if int(r["epochs"]) == e and r["score"] == beff])]
        for label, pts, style in (("best baseline", best_baseline, "o-"), ("beta_eff", beff_points, "s--")):
            if not pts:
                continue
            x = np.array([float(r["seconds_per_arch"]) for r in pts])
            y = np.array([float(r["spearman"]) for r in pts])
            err = np.array([y - [float(r["lo"]) for r in pts], [float(r["hi"]) for r in pts] - y])
            ax.errorbar(x, y, yerr=err, fmt=style, color=c, ms=4, lw=1.2, capsize=2, alpha=0.9 if label != "beta_eff"
                        else 0.6, label=f"{setting.split(':')[0]}: {label}")
            if label == "best baseline":
                for r, xi, yi in zip(pts, x, y):
                    ax.annotate(r["score"], (xi, yi), textcoords="offset points", xytext=(3, 4), fontsize=6, color=c)
    free = [r for r in rows if r["setting"] == "free"]
    for j, r in enumerate(free):
        y = float(r["spearman"])
        ax.errorbar([free_at], [y], yerr=[[y - float(r["lo"])], [float(r["hi"]) - y]], fmt="*", ms=9, capsize=2,
                    color=colours[(len(settings) + j) % len(colours)], label=f"free: {r['score']}")
    ax.set_xscale("log")
    ax.axhline(0, color="k", lw=0.5)
    ax.set_xlabel("wall seconds per arch (one thread; free scores drawn at %g s)" % free_at)
    ax.set_ylabel("Spearman rho vs NB201 c10_test (95 % CI)")
    if title:
        ax.set_title(title, fontsize=9)
    ax.legend(fontsize=6, loc="lower right")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
