"""FLOPs of one forward pass of one sample, in MFLOPs (higher = better baseline).

Counted by ``torch.utils.flop_counter.FlopCounterMode`` on ``batches[0][0][:1]`` in eval mode:
a multiply-add is 2 FLOPs (``Linear(10, 5)`` = 2*10*5 = 100 per sample; biases, BN, activations
and pooling are not counted by torch's counter).
"""

from __future__ import annotations

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from .registry import register
from ._common import Batch, LossFn, work_copy


@register("flops")
def flops(model: nn.Module, batches: list[Batch], loss_fn: LossFn) -> float:
    x, _y = batches[0]
    net = work_copy(model, train=False)
    counter = FlopCounterMode(display=False)
    with torch.no_grad(), counter:
        net(x[:1])
    return counter.get_total_flops() / 1e6
