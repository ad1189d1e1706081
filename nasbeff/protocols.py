"""Named early-training protocols for ``nasbeff rank --protocol NAME``: the one place their values live.

A protocol is a set of :class:`~nasbeff.study.StudyConfig` values; options given next to
``--protocol`` override it. :func:`study_config` resolves one.

* ``gpu``: NB201's own training setting on ``cifar10-valid`` (Dong & Yang, ICLR 2020): all 25,000
  training images at 32x32, C = 16, N = 5, batch 256, SGD (Nesterov, lr 0.1, wd 5e-4), cosine
  schedule. The schedule is NB201's 12-epoch one (``hp=12``, whose final accuracies rank archs at
  Spearman 0.87 vs ``c10_test``), observed to its end; beta_eff at 12 evenly spaced points, with
  batch-statistics features. About a minute per arch on one modern GPU (several archs at once).
* ``cpu``: a PLACEHOLDER until the cost/signal frontier is measured (``experiments/nb201_protocol/
  PLAN.md``): all 25,000 training images at 16x16, C = 16, N = 5, 4 epochs of NB201's 200-epoch
  cosine schedule, batch 128, 15 beta_eff points with batch-statistics features. Chosen from
  ``benchmarks_data/bench_training_cpu.txt`` (one thread of a 2-core x86_64): 16x16 inputs train
  the full-width network at ~1,000 images/s/core (4x the 32x32 rate), so 4 epochs of 25k images
  (100k images, 4x NB201's epoch-1 budget, whose x-valid accuracy ranks archs at rho 0.40 at
  32x32; epoch 5 gives 0.63) cost about 2 minutes for a median arch, inside the 4-minute target of
  issue 10. The frontier study replaces these values by the cheapest measured point whose best
  same-run baseline reaches rho >= 0.6 vs ``c10_test`` at <= 4 min/arch (else the best point
  <= 6 min/arch), and says so here.
"""

from __future__ import annotations

from typing import Any

PROTOCOLS: dict[str, dict[str, Any]] = {
    "gpu": {"train_size": 25_000, "valid_size": 5_000, "resolution": 32, "init_channels": 16, "cells": 5,
            "batch_size": 256, "lr": 0.1, "epochs": 12, "schedule_epochs": 12, "beta_samples": 512,
            "beta_points": 12, "beta_bn": "batch"},
    "cpu": {"train_size": 25_000, "valid_size": 2_000, "resolution": 16, "init_channels": 16, "cells": 5,
            "batch_size": 128, "lr": 0.1, "epochs": 4, "schedule_epochs": 200, "beta_samples": 512,
            "beta_points": 15, "beta_bn": "batch"},
}


def protocol_values(name: str) -> dict[str, Any]:
    """The StudyConfig values of protocol ``name`` ('' = none: the StudyConfig defaults)."""
    if not name:
        return {}
    if name not in PROTOCOLS:
        raise ValueError(f"unknown --protocol {name!r}; choose from {', '.join(PROTOCOLS)}")
    return dict(PROTOCOLS[name])


def study_config(protocol: str = "", **given: Any):
    """:class:`~nasbeff.study.StudyConfig` of ``protocol`` with the ``given`` values (None = not given)
    on top; validated (one clear line per bad value)."""
    from .study import StudyConfig

    values = {**protocol_values(protocol), **{k: v for k, v in given.items() if v is not None}}
    return StudyConfig(**values)
