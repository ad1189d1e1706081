"""The loss-gradient proxies ``snip``, ``grad_norm``, ``plain`` and ``fisher`` from one pass.

All four need the same thing: one train-mode forward of ``batches[0]`` and the gradient of the loss
(zero-cost-nas' protocol). One forward + ``autograd.grad`` w.r.t. the Conv/Linear weights gives
the weight gradients (``snip``, ``grad_norm``, ``plain``) and, through hooks on the layer outputs,
the activation gradients (``fisher``). Each value is the same as a pass of its own would give; the
formulas are in each proxy's module.
"""

from __future__ import annotations

from torch import nn

from .registry import register_group
from ._common import (
    CONSTANT_OUTPUT,
    Batch,
    LossFn,
    first_batch,
    forward_loss_grads,
    is_constant_over_batch,
    weight_layers,
    work_copy,
)
from .fisher import activation_fisher_hooks, fisher_value
from .grad_norm import grad_norm_value
from .plain import plain_value
from .snip import snip_value

NAMES = ("snip", "grad_norm", "plain", "fisher")


@register_group(*NAMES)
def loss_gradients(
    model: nn.Module, batches: list[Batch], loss_fn: LossFn, fan_in_weighting: bool = True
) -> dict[str, tuple[float, str | None]]:
    """``{name: (value, flag)}`` for the four proxies; ``fan_in_weighting`` is ``fisher``'s option.
    Cut-off models (constant output) are flagged, with 0.0 for the weight-gradient sums."""
    x, y = first_batch(batches, "snip/grad_norm/plain/fisher")
    net = work_copy(model)
    layers = weight_layers(net)
    with activation_fisher_hooks(layers) as per_layer:
        layers, grads, out = forward_loss_grads(net, x, y, loss_fn, "snip/grad_norm/plain/fisher", layers=layers)
    flag = CONSTANT_OUTPUT if is_constant_over_batch(out) else None
    return {"snip": (snip_value(layers, grads), flag), "grad_norm": (grad_norm_value(grads), flag),
            "plain": (plain_value(layers, grads), flag),
            "fisher": (fisher_value(layers, per_layer, fan_in_weighting), flag)}
