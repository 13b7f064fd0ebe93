"""Optimizers, and the parameter groups dlcli hands them.

A builder takes ``params``: a list of parameter groups (dicts with "params" and, where they differ
from the builder's own values, "lr" and "weight_decay"), which every torch optimizer accepts.
:func:`param_groups` makes them from the optimizer node's common keys: per-module learning-rate
multipliers (``param_groups``: pattern -> multiplier) and ``decay_bias_and_norm``.
"""

from __future__ import annotations

from collections.abc import Iterable
from fnmatch import fnmatchcase
from typing import Any

from dlcli.config.types import NonNegativeFloat, PositiveFloat, Rate
from dlcli.errors import DlcliError
from dlcli.registry import OPTIMIZERS


def param_groups(named: Iterable[tuple[str, Any]], lr: float, weight_decay: float,
                 multipliers: dict[str, float] | None, decay_bias_and_norm: bool) -> list[dict]:
    """Group parameters by (lr multiplier, decayed or not).

    A parameter takes the multiplier of the first pattern (fnmatch, e.g. ``encoder.*``) its name
    matches, else 1. With ``decay_bias_and_norm`` false, 1-D parameters (biases, norm scales and
    shifts) get no weight decay: decaying them only pulls activations towards zero.
    """
    multipliers = dict(multipliers or {})
    used = dict.fromkeys(multipliers, False)
    groups: dict[tuple[float, bool], list] = {}
    names: list[str] = []
    for name, p in named:
        if not p.requires_grad:
            continue
        names.append(name)
        mult = 1.0
        for pattern, m in multipliers.items():
            if fnmatchcase(name, pattern):
                mult, used[pattern] = m, True
                break
        decay = decay_bias_and_norm or p.ndim > 1
        groups.setdefault((mult, decay), []).append(p)
    unused = [p for p, hit in used.items() if not hit]
    if unused:
        sample = ", ".join(names[:8]) + (", ..." if len(names) > 8 else "")
        raise DlcliError(f"optimizer.param_groups: pattern(s) {', '.join(repr(p) for p in unused)} match no "
                         f"parameter. Parameter names look like: {sample}")
    out = []
    for (mult, decay), params in groups.items():
        group: dict[str, Any] = {"params": params}
        if mult != 1.0:
            group["lr"] = lr * mult
        if not decay:
            group["weight_decay"] = 0.0
        out.append(group)
    return out


@OPTIMIZERS.register()
def sgd(params, lr: PositiveFloat = 0.01, momentum: NonNegativeFloat = 0.0, nesterov: bool = False,
        weight_decay: NonNegativeFloat = 0.0, dampening: NonNegativeFloat = 0.0):
    """Stochastic gradient descent, optionally with (Nesterov) momentum."""
    import torch

    if nesterov and (momentum <= 0 or dampening != 0):
        raise DlcliError("optimizer.nesterov=true needs optimizer.momentum > 0 and optimizer.dampening=0")
    return torch.optim.SGD(params, lr=lr, momentum=momentum, nesterov=nesterov, weight_decay=weight_decay,
                           dampening=dampening)


@OPTIMIZERS.register()
def adagrad(params, lr: PositiveFloat = 0.01, lr_decay: NonNegativeFloat = 0.0, weight_decay: NonNegativeFloat = 0.0,
            eps: PositiveFloat = 1e-10, initial_accumulator_value: NonNegativeFloat = 0.0):
    """AdaGrad: per-parameter steps shrinking with the sum of past squared gradients."""
    import torch

    return torch.optim.Adagrad(params, lr=lr, lr_decay=lr_decay, weight_decay=weight_decay, eps=eps,
                               initial_accumulator_value=initial_accumulator_value)


@OPTIMIZERS.register()
def rmsprop(params, lr: PositiveFloat = 0.001, alpha: NonNegativeFloat = 0.99, eps: PositiveFloat = 1e-8,
            weight_decay: NonNegativeFloat = 0.0, momentum: NonNegativeFloat = 0.0, centered: bool = False):
    """RMSProp: steps scaled by a running average of squared gradients."""
    import torch

    return torch.optim.RMSprop(params, lr=lr, alpha=alpha, eps=eps, weight_decay=weight_decay,
                               momentum=momentum, centered=centered)


@OPTIMIZERS.register()
def adam(params, lr: PositiveFloat = 0.001, betas: tuple[Rate, Rate] = (0.9, 0.999), eps: PositiveFloat = 1e-8,
         weight_decay: NonNegativeFloat = 0.0, amsgrad: bool = False):
    """Adam: adaptive per-parameter step sizes with momentum."""
    import torch

    return torch.optim.Adam(params, lr=lr, betas=tuple(betas), eps=eps, weight_decay=weight_decay, amsgrad=amsgrad)


@OPTIMIZERS.register()
def adamw(params, lr: PositiveFloat = 0.001, betas: tuple[Rate, Rate] = (0.9, 0.999), eps: PositiveFloat = 1e-8,
          weight_decay: NonNegativeFloat = 0.01, amsgrad: bool = False):
    """AdamW: Adam with decoupled weight decay (applied to the weights, not mixed into the gradient)."""
    import torch

    return torch.optim.AdamW(params, lr=lr, betas=tuple(betas), eps=eps, weight_decay=weight_decay,
                             amsgrad=amsgrad)


@OPTIMIZERS.register()
def nadam(params, lr: PositiveFloat = 0.002, betas: tuple[Rate, Rate] = (0.9, 0.999), eps: PositiveFloat = 1e-8,
          weight_decay: NonNegativeFloat = 0.0, momentum_decay: NonNegativeFloat = 0.004):
    """NAdam: Adam with Nesterov momentum."""
    import torch

    return torch.optim.NAdam(params, lr=lr, betas=tuple(betas), eps=eps, weight_decay=weight_decay,
                             momentum_decay=momentum_decay)


@OPTIMIZERS.register()
def radam(params, lr: PositiveFloat = 0.001, betas: tuple[Rate, Rate] = (0.9, 0.999), eps: PositiveFloat = 1e-8,
          weight_decay: NonNegativeFloat = 0.0):
    """RAdam: Adam with a rectified (warmup-free) adaptive learning rate."""
    import torch

    return torch.optim.RAdam(params, lr=lr, betas=tuple(betas), eps=eps, weight_decay=weight_decay)


def build_optimizer(node: dict, named_parameters: Iterable[tuple[str, Any]]):
    """The validated ``optimizer`` node's optimizer over the model's named parameters, grouped."""
    from dlcli.config.schema import OptimizerConfig
    from dlcli.config.validate import dataclass_params

    common = set(dataclass_params(OptimizerConfig))
    own = {k: v for k, v in node.items() if k not in common}
    entry = OPTIMIZERS.get(node["name"])
    lr = own.get("lr", entry.params["lr"].default)
    weight_decay = own.get("weight_decay", entry.params["weight_decay"].default)
    groups = param_groups(named_parameters, lr, weight_decay, node.get("param_groups"),
                          node.get("decay_bias_and_norm", True))
    return entry.build(own, params=groups)
