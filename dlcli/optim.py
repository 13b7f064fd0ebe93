"""Optimizers and learning-rate schedulers.

An optimizer builder takes ``params`` (what to optimise). A scheduler builder takes the
``optimizer`` and returns Lightning's lr-scheduler dict (or None for a constant rate),
which says whether it steps per epoch or per optimiser step.
"""

from __future__ import annotations

from dlcli.registry import OPTIMIZERS, SCHEDULERS


@OPTIMIZERS.register()
def sgd(params, lr: float = 0.01, momentum: float = 0.0, nesterov: bool = False,
        weight_decay: float = 0.0, dampening: float = 0.0):
    """Stochastic gradient descent, optionally with (Nesterov) momentum."""
    import torch

    return torch.optim.SGD(params, lr=lr, momentum=momentum, nesterov=nesterov,
                           weight_decay=weight_decay, dampening=dampening)


@OPTIMIZERS.register()
def adam(params, lr: float = 0.001, betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8,
         weight_decay: float = 0.0, amsgrad: bool = False):
    """Adam: adaptive per-parameter step sizes with momentum."""
    import torch

    return torch.optim.Adam(params, lr=lr, betas=tuple(betas), eps=eps,
                            weight_decay=weight_decay, amsgrad=amsgrad)


@SCHEDULERS.register("none")
def constant(optimizer, max_epochs: int, steps_per_epoch: int):
    """Constant learning rate (no schedule)."""
    return None


@SCHEDULERS.register()
def step(optimizer, max_epochs: int, steps_per_epoch: int, step_size: int = 10, gamma: float = 0.1):
    """Step decay: multiply the learning rate by gamma every step_size epochs."""
    import torch

    return {"scheduler": torch.optim.lr_scheduler.StepLR(optimizer, step_size=step_size, gamma=gamma),
            "interval": "epoch"}
