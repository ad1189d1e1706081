"""Whole-network neural capacitance as a scorer (Jiang et al., Nat. Commun. 2024, Eq. 2).

``beff_init = beta_eff`` of the whole network (G_A = every parametrised layer and its DAG of
skip connections, ``nasbeff.core.capacitance`` in ``local`` mode) on ``batches[0]`` at the model's
current (initial) weights, BatchNorm with **batch statistics** (``bn="batch"``: at initialisation
the running statistics are 0/1 and make NB201 features span 1e-13..1e8).

``beff_k`` is the same after ``k`` SGD steps (default 10; lr 0.1, momentum 0.9, weight decay 5e-4,
NB201's optimiser) on a copy in train mode, cycling over ``batches`` and measured on ``batches[0]``.

The value is beta_eff itself; no orientation is claimed (the paper uses beta_eff through a
learning-curve extrapolation, not as a ranking at init): see
``experiments/nb201_scorers/results.md`` for its measured rank correlation. A model whose
output does not depend on the input (NB201's cut-off cells) cannot be scored: ``-inf`` with the
flag ``"output does not depend on the input"``, as the log-type proxies.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from ..core.capacitance import capacitance
from .registry import register
from ._common import (
    CONSTANT_OUTPUT,
    Batch,
    LossFn,
    first_batch,
    is_constant_over_batch,
    work_copy,
)


def _beff(net: nn.Module, x: torch.Tensor, y: torch.Tensor) -> tuple[float, str | None]:
    with torch.no_grad():
        net.eval()
        if is_constant_over_batch(net(x)):
            return -math.inf, CONSTANT_OUTPUT
    return capacitance(net, x, y, bn="batch").beta_eff, None


@register("beff_init")
def beff_init(model: nn.Module, batches: list[Batch], loss_fn: LossFn) -> tuple[float, str | None]:
    x, y = first_batch(batches, "beff_init", min_samples=2)
    return _beff(model, x, y)


@register("beff_k")
def beff_k(model: nn.Module, batches: list[Batch], loss_fn: LossFn, k: int = 10,
           lr: float = 0.1) -> tuple[float, str | None]:
    x, y = first_batch(batches, "beff_k", min_samples=2)
    if k < 0:
        raise ValueError(f"beff_k: k must be >= 0, got {k}")
    net = work_copy(model)
    for p in net.parameters():
        p.requires_grad_(True)
    opt = torch.optim.SGD(net.parameters(), lr=lr, momentum=0.9, weight_decay=5e-4, nesterov=True)
    for step in range(k):
        xb, yb = batches[step % len(batches)]
        opt.zero_grad(set_to_none=True)
        loss = loss_fn(net(xb), yb)
        if not torch.isfinite(loss):
            raise ValueError(f"beff_k: non-finite loss at SGD step {step}")
        loss.backward()
        opt.step()
    return _beff(net, x, y)
