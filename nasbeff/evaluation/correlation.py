"""Rank agreement with ground truth: Spearman and Kendall correlations with bootstrap confidence
intervals, paired bootstrap for method-vs-method differences, and the seed-noise ceiling.

* ``rank_correlation(score, truth)``: rho (Spearman) and tau (Kendall's tau-b) from scipy.stats,
  each with a percentile bootstrap interval over architectures (resampled with replacement,
  seeded; ``n_boot`` resamples).
* ``paired_bootstrap(a, b, truth)``: the distribution of rho(a) - rho(b) over the SAME resamples,
  its interval and the one-sided fraction of resamples where a does not beat b.
* ``paired_mean_difference(a, b)``: mean(a - b) over paired runs (e.g. search seeds), its bootstrap
  interval over the pairs and the fraction of resamples where a does not beat b.
* ``median_interval(values)``: the median of repeated runs (e.g. one rho per training seed) with a
  percentile-bootstrap interval over the runs.
* ``noise_ceiling(seed_a, seed_b)``: rho between two training seeds of the ground truth, the
  best agreement any predictor of one seed's result can expect.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping, Sequence

import numpy as np
from scipy import stats


@dataclass(frozen=True)
class Correlation:
    n: int
    spearman: float
    spearman_ci: tuple[float, float]
    kendall: float
    kendall_ci: tuple[float, float]


def _clean(score, truth) -> tuple[np.ndarray, np.ndarray]:
    s = np.asarray(score, dtype=np.float64)
    t = np.asarray(truth, dtype=np.float64)
    if s.shape != t.shape or s.ndim != 1:
        raise ValueError(f"score and truth must be 1-d of equal length, got {s.shape} and {t.shape}")
    ok = np.isfinite(s) & np.isfinite(t)
    if ok.sum() < 3:
        raise ValueError(f"need at least 3 archs with finite score and truth, got {int(ok.sum())}")
    return s[ok], t[ok]


def _rho(s, t) -> float:
    return float(stats.spearmanr(s, t).statistic)


def _tau(s, t) -> float:
    return float(stats.kendalltau(s, t).statistic)


def _boot_indices(n: int, n_boot: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, n, size=(n_boot, n))


_KENDALL_PAIRWISE_MAX_N = 400  # above it, tau-b per resample by scipy (O(n log n)) beats the O(n^2) sign products


def _rows_pearson(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Pearson r of every row of ``a`` with the same row of ``b``; NaN where a row is constant."""
    a = a - a.mean(axis=1, keepdims=True)
    b = b - b.mean(axis=1, keepdims=True)
    den = np.sqrt((a * a).sum(axis=1) * (b * b).sum(axis=1))
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(den > 0, (a * b).sum(axis=1) / np.where(den > 0, den, 1.0), np.nan)


def _boot_rho(s: np.ndarray, t: np.ndarray, idx: np.ndarray) -> np.ndarray:
    """Spearman rho of every resample (rows of ``idx``) at once: Pearson r of the average ranks,
    which is what :func:`scipy.stats.spearmanr` computes (resamples repeat archs: ties)."""
    return _rows_pearson(stats.rankdata(s[idx], axis=1), stats.rankdata(t[idx], axis=1))


def _boot_tau(s: np.ndarray, t: np.ndarray, idx: np.ndarray, chunk: int = 64) -> np.ndarray:
    """Kendall tau-b of every resample: sum_{i<j} sgn(ds) sgn(dt) / sqrt(sum sgn(ds)^2 sum sgn(dt)^2),
    which is scipy's tau-b; vectorised over resamples for small n, scipy per resample above that."""
    n = idx.shape[1]
    if n > _KENDALL_PAIRWISE_MAX_N:
        return np.array([_tau(s[i], t[i]) for i in idx])
    iu = np.triu_indices(n, k=1)
    out = np.empty(len(idx))
    for k in range(0, len(idx), chunk):
        si, ti = s[idx[k:k + chunk]], t[idx[k:k + chunk]]
        ds = np.sign(si[:, :, None] - si[:, None, :])[:, iu[0], iu[1]]
        dt = np.sign(ti[:, :, None] - ti[:, None, :])[:, iu[0], iu[1]]
        den = np.sqrt((ds * ds).sum(axis=1) * (dt * dt).sum(axis=1))
        with np.errstate(invalid="ignore", divide="ignore"):
            out[k:k + chunk] = np.where(den > 0, (ds * dt).sum(axis=1) / np.where(den > 0, den, 1.0), np.nan)
    return out


def _ci(values: np.ndarray, level: float) -> tuple[float, float]:
    v = values[np.isfinite(values)]
    a = (1 - level) / 2
    return (float(np.quantile(v, a)), float(np.quantile(v, 1 - a))) if v.size else (float("nan"), float("nan"))


def rank_correlation(score, truth, n_boot: int = 2000, level: float = 0.95, seed: int = 0) -> Correlation:
    """Spearman rho and Kendall tau of ``score`` (higher = better) vs ``truth`` with bootstrap CIs."""
    s, t = _clean(score, truth)
    idx = _boot_indices(len(s), n_boot, seed)
    rhos, taus = _boot_rho(s, t, idx), _boot_tau(s, t, idx)
    return Correlation(len(s), _rho(s, t), _ci(rhos, level), _tau(s, t), _ci(taus, level))


@dataclass(frozen=True)
class PairedDifference:
    diff: float
    ci: tuple[float, float]
    p_not_better: float


def paired_bootstrap(a, b, truth, n_boot: int = 2000, level: float = 0.95, seed: int = 0) -> PairedDifference:
    """rho(a, truth) - rho(b, truth) on the same archs and the same resamples."""
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    t = np.asarray(truth, dtype=np.float64)
    ok = np.isfinite(a) & np.isfinite(b) & np.isfinite(t)
    a, b, t = a[ok], b[ok], t[ok]
    if len(t) < 3:
        raise ValueError("need at least 3 archs scored by both methods")
    idx = _boot_indices(len(t), n_boot, seed)
    d = _boot_rho(a, t, idx) - _boot_rho(b, t, idx)
    return PairedDifference(_rho(a, t) - _rho(b, t), _ci(d, level), float(np.mean(d[np.isfinite(d)] <= 0)))


def paired_mean_difference(a, b, n_boot: int = 2000, level: float = 0.95, seed: int = 0) -> PairedDifference:
    """mean(a - b) over paired runs (e.g. the same search seeds), with a percentile-bootstrap interval
    over the pairs and the fraction of resamples where the mean difference is <= 0."""
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    if a.shape != b.shape or a.ndim != 1:
        raise ValueError(f"a and b must be paired 1-d sequences of one length, got shapes {a.shape} and {b.shape}")
    d = a - b
    if not np.isfinite(d).all():
        raise ValueError("a and b must be finite (drop the unpaired runs first)")
    if d.size < 2:
        raise ValueError("need at least 2 paired runs")
    boot = d[_boot_indices(d.size, n_boot, seed)].mean(axis=1)
    return PairedDifference(float(d.mean()), _ci(boot, level), float(np.mean(boot <= 0)))


def median_interval(values, n_boot: int = 2000, level: float = 0.95, seed: int = 0) -> tuple[float, tuple[float, float]]:
    """The median of ``values`` (e.g. one rho per training seed) and its percentile-bootstrap interval:
    the ``level`` quantile range of the medians of ``n_boot`` resamples of the values, drawn with
    replacement."""
    v = np.asarray(values, dtype=np.float64)
    if v.ndim != 1 or v.size < 2 or not np.isfinite(v).all():
        raise ValueError(f"need a 1-d sequence of at least 2 finite values, got shape {v.shape}")
    boot = np.median(v[_boot_indices(v.size, n_boot, seed)], axis=1)
    return float(np.median(v)), _ci(boot, level)


def noise_ceiling(seed_a, seed_b) -> float:
    """Spearman rho between two seeds' ground-truth accuracies (archs with both seeds)."""
    return _rho(*_clean(seed_a, seed_b))


def correlation_table(scores: Mapping[str, Sequence[float]], truth, n_boot: int = 2000, seed: int = 0,
                      reference: str | None = None) -> list[dict]:
    """One row per method: n, Spearman [CI], Kendall [CI], and (with ``reference``) the paired
    difference in Spearman against the reference method."""
    rows = []
    for name, s in scores.items():
        c = rank_correlation(s, truth, n_boot=n_boot, seed=seed)
        row = {"method": name, "n": c.n, "spearman": c.spearman, "spearman_lo": c.spearman_ci[0],
               "spearman_hi": c.spearman_ci[1], "kendall": c.kendall, "kendall_lo": c.kendall_ci[0],
               "kendall_hi": c.kendall_ci[1]}
        if reference is not None and name != reference:
            d = paired_bootstrap(s, scores[reference], truth, n_boot=n_boot, seed=seed)
            row.update({"diff_vs_ref": d.diff, "diff_lo": d.ci[0], "diff_hi": d.ci[1], "p_not_better": d.p_not_better})
        rows.append(row)
    return rows


def markdown_table(rows: Sequence[dict], title_truth: str) -> str:
    """The correlation table as Markdown."""
    ref = any("diff_vs_ref" in r for r in rows)
    head = f"| method | n | Spearman vs {title_truth} [95% CI] | Kendall [95% CI] |" + (" Δρ vs ref [95% CI] |" if ref else "")
    sep = "|---|---|---|---|" + ("---|" if ref else "")
    lines = [head, sep]
    for r in rows:
        line = (f"| {r['method']} | {r['n']} | {r['spearman']:.3f} [{r['spearman_lo']:.2f}, {r['spearman_hi']:.2f}] "
                f"| {r['kendall']:.3f} [{r['kendall_lo']:.2f}, {r['kendall_hi']:.2f}] |")
        if ref:
            line += (f" {r['diff_vs_ref']:+.3f} [{r['diff_lo']:+.2f}, {r['diff_hi']:+.2f}] |" if "diff_vs_ref" in r else " — |")
        lines.append(line)
    return "\n".join(lines)
