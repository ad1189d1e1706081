"""Named early-training protocols for ``nasbeff rank --protocol NAME``: the one place their values live.

A protocol is a set of :class:`~nasbeff.training.nb201_study.StudyConfig` values; options given next to
``--protocol`` override it. :func:`study_config` resolves one.

* ``gpu``: NB201's own training setting on ``cifar10-valid`` (Dong & Yang, ICLR 2020): all 25,000
  training images at 32x32, C = 16, N = 5, batch 256, SGD (Nesterov, lr 0.1, wd 5e-4), cosine
  schedule. The schedule is NB201's 12-epoch one (``hp=12``, whose final accuracies rank archs at
  Spearman 0.87 vs ``c10_test``), observed to its end; beta_eff at 12 evenly spaced points, with
  batch-statistics features. About a minute per arch on one modern GPU (several archs at once).
* ``cpu``: NB201's cell at reduced size: 16x16 inputs, C = 8, N = 2, all 25,000 training images,
  8 epochs of NB201's 200-epoch cosine schedule, batch 128, 15 beta_eff points with batch-statistics
  features. Chosen on 60 dev archs of 0..199 (``experiments/nb201_protocol/``: ``frontier.csv``,
  ``chosen.json``) by the rule committed before the choice (PLAN.md, applied by ``choose.py``): the
  cheapest frontier point whose best same-run baseline reaches rho >= 0.7 vs ``c10_test`` at
  <= 4 min/arch, else the best point there with rho >= 0.6. No point reached 0.7 (the best, this one,
  0.6998: TSE-E, 95 % CI [0.53, 0.82], n = 58 without the cut-off archs), so the second branch chose
  it: 85 s of one thread per arch on a 2-core x86_64 AMD EPYC (``benchmarks_data/
  nb201_protocol_cost_cpu.txt``). Frontier: two knobs (epochs 1-8 at 25k images; 1-5 epochs at 10k
  images, which never passed 0.53); width, cells and resolution were not run (session budget).
"""

from __future__ import annotations

from typing import Any

PROTOCOLS: dict[str, dict[str, Any]] = {
    "gpu": {"train_size": 25_000, "valid_size": 5_000, "resolution": 32, "init_channels": 16, "cells": 5,
            "batch_size": 256, "lr": 0.1, "epochs": 12, "schedule_epochs": 12, "beta_samples": 512,
            "beta_points": 12, "beta_bn": "batch"},
    "cpu": {"train_size": 25_000, "valid_size": 2_000, "resolution": 16, "init_channels": 8, "cells": 2,
            "batch_size": 128, "lr": 0.1, "epochs": 8, "schedule_epochs": 200, "beta_samples": 512,
            "beta_points": 15, "beta_bn": "batch"},
}

#: The beta_eff predictor each protocol predicts with (``--beff-variant`` overrides it): ``cpu``'s was
#: chosen with it on the dev archs (``experiments/nb201_protocol/chosen.json``: regression on the 15
#: points, Bayesian ridge, t0 by BIC); ``gpu`` measures beta_eff at 12 points and uses the same predictor
#: (not chosen on data). Without a protocol: ``epochs`` (one beta_eff per epoch, the paper's Fig. 2).
PROTOCOL_VARIANTS: dict[str, str] = {"cpu": "points,identity,bayes,bic", "gpu": "points,identity,bayes,bic"}
DEFAULT_VARIANT = "epochs"


def protocol_variant(name: str) -> str:
    """The ``--beff-variant`` spec protocol ``name`` predicts with ('' = none: ``epochs``)."""
    protocol_values(name)  # an unknown name: one line
    return PROTOCOL_VARIANTS.get(name, DEFAULT_VARIANT) if name else DEFAULT_VARIANT


def protocol_values(name: str) -> dict[str, Any]:
    """The StudyConfig values of protocol ``name`` ('' = none: the StudyConfig defaults)."""
    if not name:
        return {}
    if name not in PROTOCOLS:
        raise ValueError(f"unknown --protocol {name!r}; choose from {', '.join(PROTOCOLS)}")
    return dict(PROTOCOLS[name])


def study_config(protocol: str = "", **given: Any):
    """:class:`~nasbeff.training.nb201_study.StudyConfig` of ``protocol`` with the ``given`` values (None = not given)
    on top; validated (one clear line per bad value)."""
    from .nb201_study import StudyConfig

    values = {**protocol_values(protocol), **{k: v for k, v in given.items() if v is not None}}
    return StudyConfig(**values)
