"""Rank aggregation of scorers within a population of candidate architectures.

A rank aggregate is not a property of one architecture: it is defined only relative to the
**population** of candidates being compared (the archs of one table, one search pool, one
warm-up sample). Within a population of ``N`` archs each scorer ``m`` gives arch ``a`` the rank
``r_m(a)`` in ``1..N`` (1 = lowest value = worst, ``N`` = best; ties share their average rank, as
``scipy.stats.rankdata``). Rules (higher = better for both):

* ``"log_rank_sum"`` (AZ-NAS, Lee & Ham 2024, Eq. 9): ``s(a) = sum_m log(r_m(a) / N)`` (<= 0; 0 iff
  ``a`` is the best by every scorer). The log punishes an arch that is poor by any one scorer.
* ``"mean_rank"``: ``s(a) = (1/M) sum_m r_m(a)``.

Special values, explicitly:

* ``-inf`` is the registry's "cannot be scored" value (cut-off archs: input disconnected from
  output) and means *worst*: it ranks below every finite value; all ``-inf`` of one scorer tie at
  the bottom (average rank). ``+inf`` ranks above every finite value. The aggregate of an arch that
  *every* part scores ``-inf`` (a cut-off arch) is ``-inf`` too: it cannot be scored, like its
  parts, so a correlation treats it in the aggregate's row as in the parts' rows. It still counts
  in the population, at the bottom, so the other archs' values do not depend on this rule. An arch
  that only some parts score ``-inf`` (a limit value, e.g. AZ-NAS trainability of an identity
  block) ranks last by those parts and keeps a finite aggregate, as in AZ-NAS's reference code.
* ``NaN`` means *missing* (not computed). ``nan_policy="worst"`` (default) treats it as ``-inf``;
  ``"omit"`` drops the arch from the population (its aggregate is NaN and ``N`` counts only the
  archs every scorer scored); ``"raise"`` gives ``ValueError``.

One-line names: ``"rank:meco+zico+synflow"`` (log_rank_sum) and ``"meanrank:meco+zico"``
(mean_rank) are accepted by :func:`score_population`, and :func:`parse_aggregate_name` splits them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Literal

import numpy as np

__all__ = ["RULES", "PREFIXES", "population_ranks", "aggregate_scores", "rank_aggregate",
           "parse_aggregate_name", "is_aggregate_name"]

Rule = Literal["log_rank_sum", "mean_rank"]
NanPolicy = Literal["worst", "omit", "raise"]
RULES: tuple[str, ...] = ("log_rank_sum", "mean_rank")
PREFIXES: dict[str, str] = {"rank": "log_rank_sum", "meanrank": "mean_rank"}
_NAN_POLICIES = ("worst", "omit", "raise")


def population_ranks(values: Sequence[float] | np.ndarray) -> np.ndarray:
    """Ranks ``1..N`` of ``values`` (ascending: the largest gets ``N``), ties averaged; ``-inf``
    at the bottom, ``+inf`` at the top. ``values`` must contain no NaN."""
    v = np.asarray(values, dtype=np.float64)
    if v.ndim != 1 or v.size == 0:
        raise ValueError(f"values must be a non-empty 1-d sequence, got shape {v.shape}")
    if np.isnan(v).any():
        raise ValueError("values contain NaN: decide how to treat missing scores (nan_policy) first")
    from scipy.stats import rankdata  # lazy: importing scipy.stats added ~50 MiB PSS to every scoring process

    return rankdata(v, method="average")


def aggregate_scores(
    values_by_name: Mapping[str, Sequence[float] | np.ndarray],
    rule: Rule = "log_rank_sum",
    nan_policy: NanPolicy = "worst",
) -> np.ndarray:
    """Aggregate of the scorers in ``values_by_name`` (name -> one value per arch of the population,
    all of equal length) by ``rule``; see the module docstring for ranks, ties, ``-inf`` and NaN."""
    if rule not in RULES:
        raise ValueError(f"unknown rule {rule!r}; expected one of {', '.join(RULES)}")
    if nan_policy not in _NAN_POLICIES:
        raise ValueError(f"unknown nan_policy {nan_policy!r}; expected one of {', '.join(_NAN_POLICIES)}")
    if not values_by_name:
        raise ValueError("values_by_name is empty: give at least one scorer")
    cols = {k: np.asarray(v, dtype=np.float64) for k, v in values_by_name.items()}
    lengths = {k: v.shape for k, v in cols.items()}
    n = next(iter(cols.values())).shape
    if any(s != n or len(s) != 1 for s in lengths.values()) or n[0] == 0:
        raise ValueError(f"every scorer needs one value per arch (equal non-empty 1-d lengths), got {lengths}")
    missing = np.zeros(n[0], bool)
    for v in cols.values():
        missing |= np.isnan(v)
    if missing.any() and nan_policy == "raise":
        bad = [k for k, v in cols.items() if np.isnan(v).any()]
        raise ValueError(f"NaN (missing) values in {bad} with nan_policy='raise'")
    keep = ~missing if nan_policy == "omit" else np.ones(n[0], bool)
    out = np.full(n[0], np.nan)
    if not keep.any():
        return out
    size = int(keep.sum())
    ranks = [population_ranks(np.where(np.isnan(v), -np.inf, v)[keep]) for v in cols.values()]
    if rule == "log_rank_sum":
        out[keep] = np.sum([np.log(r / size) for r in ranks], axis=0)
    else:
        out[keep] = np.mean(ranks, axis=0)
    cannot = np.ones(n[0], bool)
    for v in cols.values():
        cannot &= np.isneginf(v)
    out[keep & cannot] = -np.inf
    return out


def parse_aggregate_name(name: str) -> tuple[str, list[str]]:
    """``"rank:a+b"`` -> ``("log_rank_sum", ["a", "b"])``; ``"meanrank:a+b"`` -> ``("mean_rank", ...)``."""
    prefix, sep, rest = str(name).partition(":")
    if not sep or prefix not in PREFIXES:
        raise ValueError(f"{name!r} is not an aggregate name; write e.g. 'rank:meco+zico' or 'meanrank:meco+zico'")
    parts = [p.strip() for p in rest.split("+")]
    if not parts or any(not p for p in parts):
        raise ValueError(f"aggregate {name!r} has an empty scorer name; write e.g. 'rank:meco+zico'")
    if len(set(parts)) != len(parts):
        raise ValueError(f"aggregate {name!r} lists a scorer twice")
    return PREFIXES[prefix], parts


def is_aggregate_name(name: str) -> bool:
    """True iff ``name`` has an aggregate prefix (``rank:`` or ``meanrank:``)."""
    prefix, sep, _ = str(name).partition(":")
    return bool(sep) and prefix in PREFIXES


def rank_aggregate(
    names: Sequence[str] | str,
    values_by_name: Mapping[str, Sequence[float] | np.ndarray],
    rule: Rule | None = None,
    nan_policy: NanPolicy = "worst",
) -> np.ndarray:
    """Aggregate of the scorers ``names`` taken from a table ``values_by_name`` (e.g. a DataFrame's
    columns). ``names`` may be an aggregate name such as ``"rank:meco+zico"`` (its prefix sets the rule;
    an explicit different ``rule`` is an error) or a list of scorer names (``rule`` default log_rank_sum)."""
    if isinstance(names, str):
        r, parts = parse_aggregate_name(names)
        if rule is not None and rule != r:
            raise ValueError(f"{names!r} implies rule {r!r} but rule={rule!r} was given")
        rule = r
    else:
        parts = list(names)
    missing = [p for p in parts if p not in values_by_name]
    if missing:
        raise ValueError(f"no values for {missing}; have {sorted(values_by_name)}")
    return aggregate_scores({p: values_by_name[p] for p in parts}, rule or "log_rank_sum", nan_policy)
