"""Transferability measures for model selection (higher = the source model should transfer better).

* :func:`logme` (You et al. 2021): per target class ``c``, the one-hot column ``t = 1[y = c]`` is
  modelled as ``t = F w + noise`` with ``w ~ N(0, alpha^-1 I_D)`` and ``noise ~ N(0, beta^-1 I_N)``;
  the log evidence ::

      L(alpha, beta) = D/2 ln alpha + N/2 ln beta - N/2 ln 2pi - beta/2 ||F m - t||^2
                       - alpha/2 m^T m - 1/2 ln|A|,   A = alpha I + beta F^T F,  m = beta A^-1 F^T t

  is maximised by the fixed point ``gamma = sum_i beta s_i^2 / (alpha + beta s_i^2)``,
  ``alpha = gamma / m^T m``, ``beta = (N - gamma) / ||F m - t||^2`` (``s_i``: singular values of F);
  LogME is ``L / N`` averaged over the classes.
* :func:`leep` (Nguyen et al. 2020): with source softmax outputs ``theta(x_i)`` over source classes
  ``z``, ``P(y, z) = 1/N sum_{i: y_i = y} theta(x_i)_z``, ``P(y | z) = P(y, z) / P(z)`` and
  ``LEEP = 1/N sum_i ln sum_z P(y_i | z) theta(x_i)_z``  (<= 0).
* :func:`nce` (Tran et al. 2019): with source hard labels ``z_i`` and target labels ``y_i``,
  ``NCE = -H(Y | Z) = sum_{y,z} P(y, z) ln P(y | z)`` over the empirical joint (<= 0; 0 when Y is
  a function of Z, ``-H(Y)`` when Y and Z are independent).

All take numpy arrays and raise ``ValueError`` on bad input; labels may be any hashable values.
"""

from __future__ import annotations

import math

import numpy as np

__all__ = ["logme", "logme_evidence", "leep", "nce"]

_LOG_2PI = math.log(2.0 * math.pi)
_CLIP = (1e-12, 1e12)


def _labels(labels, n: int | None, name: str = "labels") -> tuple[np.ndarray, np.ndarray]:
    arr = np.asarray(labels)
    if arr.ndim != 1:
        raise ValueError(f"{name} must be 1-d (N,), got shape {arr.shape}")
    if arr.size == 0:
        raise ValueError(f"{name} is empty")
    if n is not None and arr.shape[0] != n:
        raise ValueError(f"{name} has {arr.shape[0]} entries but there are {n} samples")
    if arr.dtype.kind == "f" and not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} contains NaN or inf")
    if arr.dtype.kind == "O" and any(v is None for v in arr):
        raise ValueError(f"{name} contains None")
    values, inv = np.unique(arr, return_inverse=True)
    return values, inv.reshape(-1)


def _matrix(x, name: str) -> np.ndarray:
    arr = np.asarray(x, dtype=np.float64)
    if arr.ndim != 2:
        raise ValueError(f"{name} must be 2-d (N, D), got shape {arr.shape}")
    if arr.shape[0] == 0 or arr.shape[1] == 0:
        raise ValueError(f"{name} is empty: shape {arr.shape}")
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} contains NaN or inf")
    return arr


# ---------------------------------------------------------------------------------------------
# LogME
# ---------------------------------------------------------------------------------------------
def _evidence_svd(s2: np.ndarray, z: np.ndarray, t2: float, n: int, d: int, alpha: float, beta: float
                  ) -> tuple[float, float, float, float]:
    """(evidence, gamma, m^T m, ||F m - t||^2) in the SVD basis: ``s2`` = squared singular values
    (length min(N, D)), ``z = U^T t``, ``t2 = ||t||^2``."""
    denom = alpha + beta * s2
    mp = beta * np.sqrt(s2) * z / denom
    mm = float(mp @ mp)
    res = float(np.sum((np.sqrt(s2) * mp - z) ** 2) + max(t2 - float(z @ z), 0.0))
    gamma = float(np.sum(beta * s2 / denom))
    logdet = float(np.sum(np.log(denom))) + (d - s2.size) * math.log(alpha)
    ev = 0.5 * (d * math.log(alpha) + n * math.log(beta) - n * _LOG_2PI - beta * res - alpha * mm - logdet)
    return ev, gamma, mm, res


def logme_evidence(features, target, tol: float = 1e-10, max_iter: int = 10_000) -> tuple[float, float, float]:
    """Maximised log evidence of one real target column (N,) under the Bayesian linear model on
    ``features`` (N, D), by the fixed-point iteration of the module docstring from alpha = beta = 1
    until both change by less than ``tol`` (relative) or the evidence by less than ``tol * N``.
    Returns ``(evidence / N, alpha, beta)``. When the features carry no signal the maximum is at
    alpha = inf (w = 0) with ``L = N/2 (ln(N / ||t||^2) - ln 2pi - 1)``, returned with alpha = inf
    when it beats the fixed point. alpha and beta are clipped to [1e-12, 1e12] in the iteration
    (beta reaches the bound when the features fit t exactly, where the evidence is unbounded)."""
    f = _matrix(features, "features")
    t = np.asarray(target, dtype=np.float64)
    if t.shape != (f.shape[0],) or not np.all(np.isfinite(t)):
        raise ValueError(f"target must be a finite (N,) = ({f.shape[0]},) vector, got shape {t.shape}")
    n, d = f.shape
    u, s, _ = np.linalg.svd(f, full_matrices=False)
    s2 = s * s
    z = u.T @ t
    t2 = float(t @ t)
    # alpha -> inf (w = 0): L -> N/2 ln beta - N/2 ln 2pi - beta/2 ||t||^2, maximised at beta = N / ||t||^2;
    # the fixed point drifts towards it slowly when the features carry no signal.
    ev_inf = 0.5 * n * (math.log(n / t2) - _LOG_2PI - 1.0) if t2 > 0 else -math.inf
    alpha, beta = 1.0, 1.0
    ev, gamma, mm, res = _evidence_svd(s2, z, t2, n, d, alpha, beta)
    for _ in range(max_iter):
        new_alpha = float(np.clip(gamma / mm, *_CLIP)) if mm > 0 else _CLIP[1]
        new_beta = float(np.clip((n - gamma) / res, *_CLIP)) if res > 0 else _CLIP[1]
        new_ev, gamma, mm, res = _evidence_svd(s2, z, t2, n, d, new_alpha, new_beta)
        done = ((abs(new_alpha - alpha) <= tol * alpha and abs(new_beta - beta) <= tol * beta)
                or abs(new_ev - ev) <= tol * n or abs(new_ev - ev_inf) <= tol * n)
        alpha, beta, ev = new_alpha, new_beta, new_ev
        if done:
            break
    if ev_inf > ev:
        return ev_inf / n, math.inf, n / t2
    return ev / n, alpha, beta


def logme(features, labels, regression: bool = False, tol: float = 1e-10, max_iter: int = 10_000) -> float:
    """LogME of ``features`` (N, D) for ``labels`` (N,): the mean over classes ``c`` of
    :func:`logme_evidence` of ``1[labels = c]``. With ``regression=True``, ``labels`` is a real
    (N,) or (N, K) target and the mean runs over its K columns."""
    f = _matrix(features, "features")
    n = f.shape[0]
    if n < 2:
        raise ValueError("LogME needs at least 2 samples")
    if regression:
        y = np.asarray(labels, dtype=np.float64)
        y = y[:, None] if y.ndim == 1 else y
        if y.ndim != 2 or y.shape[0] != n:
            raise ValueError(f"regression targets must be (N,) or (N, K) with N = {n}, got shape {np.shape(labels)}")
        if not np.all(np.isfinite(y)):
            raise ValueError("regression targets contain NaN or inf")
        cols = [y[:, j] for j in range(y.shape[1])]
    else:
        values, inv = _labels(labels, n)
        cols = [(inv == c).astype(np.float64) for c in range(values.size)]
    return float(np.mean([logme_evidence(f, t, tol, max_iter)[0] for t in cols]))


# ---------------------------------------------------------------------------------------------
# LEEP and NCE
# ---------------------------------------------------------------------------------------------
def leep(source_probs, labels, atol: float = 1e-4) -> float:
    """LEEP of source-model softmax outputs ``source_probs`` (N, C_s) (non-negative rows summing to
    1 within ``atol``) for target ``labels`` (N,); see the module docstring."""
    theta = _matrix(source_probs, "source_probs")
    if np.any(theta < 0):
        raise ValueError("source_probs must be non-negative")
    sums = theta.sum(1)
    if np.any(np.abs(sums - 1.0) > atol):
        i = int(np.argmax(np.abs(sums - 1.0)))
        raise ValueError(f"each row of source_probs must sum to 1 (row {i} sums to {sums[i]:.6g})")
    _, y = _labels(labels, theta.shape[0])
    n = theta.shape[0]
    onehot = np.zeros((n, int(y.max()) + 1))
    onehot[np.arange(n), y] = 1.0
    joint = onehot.T @ theta / n                      # P(y, z), (C_t, C_s)
    pz = joint.sum(0)
    cond = np.divide(joint, pz, out=np.zeros_like(joint), where=pz > 0)   # P(y | z)
    eep = np.einsum("iz,iz->i", cond[y], theta)        # sum_z P(y_i | z) theta_iz > 0
    return float(np.mean(np.log(eep)))


def nce(source_labels, labels) -> float:
    """NCE = -H(Y | Z) (nats) from source hard labels ``source_labels`` (N,) and target ``labels`` (N,)."""
    _, z = _labels(source_labels, None, "source_labels")
    _, y = _labels(labels, z.size)
    counts = np.zeros((int(y.max()) + 1, int(z.max()) + 1))
    np.add.at(counts, (y, z), 1.0)
    joint = counts / z.size
    pz = joint.sum(0, keepdims=True)
    nz = joint > 0
    return float(np.sum(joint[nz] * np.log((joint / pz)[nz])))
