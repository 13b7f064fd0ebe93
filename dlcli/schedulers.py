"""Learning-rate schedulers, and the linear warmup every one of them can start with.

A builder takes the ``optimizer`` (plus the run's ``max_epochs`` and ``steps_per_epoch``) and returns
Lightning's lr-scheduler dict (or None for a constant rate), which says whether it steps per epoch
or per optimiser step. ``max_epochs`` is the span the schedule must fill: the whole run, less any
warmup (so it can be fractional when the warmup is counted in steps); a schedule that runs to the
end of training counts its length as :func:`_steps` of it.

Per step or per epoch: schedules that follow a smooth curve over the run (cosine, onecycle,
polynomial, the cosine of each restart) step per optimiser step, so the rate does not jump at
epoch boundaries; schedules defined by epoch counts (step, multistep, exponential) and plateau
(which needs a validation metric, measured once per epoch) step per epoch.
"""

from __future__ import annotations

import functools
from typing import Literal

from dlcli.config.types import Count, NonNegativeFloat, NonNegativeInt, PositiveFloat, Prob, ShrinkFactor
from dlcli.errors import DlcliError
from dlcli.registry import SCHEDULERS


def _steps(max_epochs: float, steps_per_epoch: int) -> int:
    """The optimiser steps a schedule spanning ``max_epochs`` epochs takes (at least one)."""
    return max(1, round(max_epochs * steps_per_epoch))


def _per_step(scheduler) -> dict:
    return {"scheduler": scheduler, "interval": "step", "frequency": 1}


def _per_epoch(scheduler) -> dict:
    return {"scheduler": scheduler, "interval": "epoch", "frequency": 1}


@SCHEDULERS.register("none")
def constant(optimizer, max_epochs: int, steps_per_epoch: int):
    """Constant learning rate (no schedule)."""
    return None


@SCHEDULERS.register()
def step(optimizer, max_epochs: int, steps_per_epoch: int, step_size: Count = 10, gamma: PositiveFloat = 0.1):
    """Step decay: multiply the learning rate by gamma every step_size epochs."""
    import torch

    # per epoch: the decay points are counted in epochs
    return _per_epoch(torch.optim.lr_scheduler.StepLR(optimizer, step_size=step_size, gamma=gamma))


@SCHEDULERS.register()
def multistep(optimizer, max_epochs: int, steps_per_epoch: int, milestones: list[int] = (10, 20),
              gamma: PositiveFloat = 0.1):
    """Multi-step decay: multiply the learning rate by gamma at each milestone epoch."""
    import torch

    # per epoch: the milestones are epochs
    return _per_epoch(torch.optim.lr_scheduler.MultiStepLR(optimizer, milestones=list(milestones), gamma=gamma))


@SCHEDULERS.register()
def exponential(optimizer, max_epochs: int, steps_per_epoch: int, gamma: PositiveFloat = 0.95):
    """Exponential decay: multiply the learning rate by gamma after every epoch."""
    import torch

    # per epoch: gamma is the decay per epoch, the unit users reason in (lr * gamma**epoch)
    return _per_epoch(torch.optim.lr_scheduler.ExponentialLR(optimizer, gamma=gamma))


@SCHEDULERS.register()
def cosine(optimizer, max_epochs: int, steps_per_epoch: int, eta_min: NonNegativeFloat = 0.0):
    """Cosine annealing from the learning rate down to eta_min at the end of training."""
    import torch

    # per step: a smooth curve; per epoch it would be a staircase, coarse on short runs
    total = _steps(max_epochs, steps_per_epoch)
    return _per_step(torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=total, eta_min=eta_min))


@SCHEDULERS.register()
def cosine_restarts(optimizer, max_epochs: int, steps_per_epoch: int, T_0: Count = 10, T_mult: Count = 1,
                    eta_min: NonNegativeFloat = 0.0):
    """Cosine annealing with warm restarts (SGDR): restart every T_0 epochs, each cycle T_mult times longer."""
    import torch

    # per step, with the cycle measured in steps: smooth within a cycle, and since T_mult is an
    # integer every restart still falls on an epoch boundary
    return _per_step(torch.optim.lr_scheduler.CosineAnnealingWarmRestarts(
        optimizer, T_0=T_0 * steps_per_epoch, T_mult=T_mult, eta_min=eta_min))


@SCHEDULERS.register()
def onecycle(optimizer, max_epochs: int, steps_per_epoch: int, max_lr: PositiveFloat | None = None,
             pct_start: Prob = 0.3, div_factor: PositiveFloat = 25.0, final_div_factor: PositiveFloat = 10000.0,
             anneal_strategy: Literal["cos", "linear"] = "cos", cycle_momentum: bool = True):
    """One-cycle policy: rise from max_lr/div_factor to max_lr, then anneal far below the start."""
    import torch

    if cycle_momentum and not ({"momentum", "betas"} & set(optimizer.defaults)):
        raise DlcliError(f"scheduler onecycle: cycle_momentum=true needs an optimizer with momentum or betas, "
                         f"and {type(optimizer).__name__} has neither; set scheduler.cycle_momentum=false")
    # max_lr null: peak at each parameter group's own configured rate
    peaks = max_lr if max_lr is not None else [group["lr"] for group in optimizer.param_groups]
    # per step: OneCycleLR is defined over optimiser steps, and raises if stepped past total_steps
    return _per_step(torch.optim.lr_scheduler.OneCycleLR(
        optimizer, max_lr=peaks, total_steps=_steps(max_epochs, steps_per_epoch), pct_start=pct_start,
        div_factor=div_factor, final_div_factor=final_div_factor, anneal_strategy=anneal_strategy,
        cycle_momentum=cycle_momentum))


@SCHEDULERS.register()
def polynomial(optimizer, max_epochs: int, steps_per_epoch: int, power: NonNegativeFloat = 1.0,
               min_lr: NonNegativeFloat = 0.0):
    """Polynomial decay from the learning rate to min_lr at the end of training (power 1: linear)."""
    import torch

    total = _steps(max_epochs, steps_per_epoch)

    def factor(base: float):
        # lr(t) = min_lr + (base - min_lr) * (1 - t/T)**power, as a multiple of base; PolynomialLR
        # itself can only decay to zero
        return lambda t: (min_lr + (base - min_lr) * (1 - min(t, total) / total) ** power) / base

    # per step: a smooth curve over the run
    return _per_step(torch.optim.lr_scheduler.LambdaLR(
        optimizer, [factor(group["lr"]) for group in optimizer.param_groups]))


@SCHEDULERS.register()
def plateau(optimizer, max_epochs: int, steps_per_epoch: int, monitor: str = "val/loss",
            mode: Literal["auto", "min", "max"] = "auto", factor: ShrinkFactor = 0.1, patience: NonNegativeInt = 10,
            min_lr: NonNegativeFloat = 0.0):
    """Reduce the learning rate by factor when the monitored metric stops improving for patience epochs."""
    import torch

    from dlcli.training.train import metric_mode  # the same rule as the callbacks' mode: auto

    if mode == "auto":
        mode = metric_mode(monitor)
    # per epoch: it needs the monitored validation metric, which Lightning measures once per epoch
    return {**_per_epoch(torch.optim.lr_scheduler.ReduceLROnPlateau(
        optimizer, mode=mode, factor=factor, patience=patience, min_lr=min_lr)), "monitor": monitor}


@functools.cache
def _warmup_class():
    """The Warmup scheduler class; defined on first use so that importing this module needs no torch."""
    from torch.optim.lr_scheduler import LRScheduler

    class Warmup(LRScheduler):
        """Linear warmup over ``length`` calls of step(), then ``main`` stepped once every ``every`` calls.

        The rate rises from ``start_factor`` x the rate ``main`` starts at (its first value, read at
        construction) to that rate at call ``length``; ``main`` then runs from its own step 0. One
        class for every combination, where torch's SequentialLR can neither step an epoch-wise
        schedule once per ``every`` steps nor chain ReduceLROnPlateau (step(metric) is passed on).
        """

        def __init__(self, optimizer, main, length: int, start_factor: float, every: int = 1) -> None:
            self.main, self.length, self.start_factor, self.every = main, length, start_factor, every
            self.targets = [float(group["lr"]) for group in optimizer.param_groups]
            super().__init__(optimizer)  # its first step() sets the starting rate

        def step(self, *metric) -> None:  # type: ignore[override]
            self._step_count += 1
            self.last_epoch += 1
            t = self.last_epoch
            if t <= self.length:
                # back at exactly the targets when t == length: main resumes from its untouched start
                factor = self.start_factor + (1 - self.start_factor) * t / self.length
                for group, target in zip(self.optimizer.param_groups, self.targets, strict=True):
                    group["lr"] = target * factor
            elif self.main is not None and (t - self.length) % self.every == 0:
                self.main.step(*metric)  # a metric during warmup is ignored: plateau judges the main phase
            self._last_lr = [group["lr"] for group in self.optimizer.param_groups]

        def get_lr(self) -> list[float]:
            return [group["lr"] for group in self.optimizer.param_groups]

        def state_dict(self) -> dict:
            # plain values only: checkpoints are read back with torch.load(weights_only=True)
            state = {k: v for k, v in self.__dict__.items() if k not in ("optimizer", "main")}
            state["main"] = self.main.state_dict() if self.main is not None else None
            return state

        def load_state_dict(self, state_dict: dict) -> None:
            state = dict(state_dict)
            main = state.pop("main")
            self.__dict__.update(state)
            if self.main is not None:
                self.main.load_state_dict(main)

    return Warmup


def build_scheduler(node: dict, optimizer, max_epochs: int, steps_per_epoch: int) -> dict | None:
    """The validated ``scheduler`` node's schedule for ``optimizer``, as Lightning's lr-scheduler dict.

    With ``warmup_epochs`` or ``warmup_steps``, the rate first rises linearly from
    ``warmup_start_factor`` x the schedule's starting rate to that rate; the schedule then runs over
    the rest of the run (a schedule that spans the run is shortened to end where training ends).
    """
    from dlcli.config.schema import SchedulerConfig
    from dlcli.config.validate import dataclass_params

    common = set(dataclass_params(SchedulerConfig))
    defaults = SchedulerConfig()
    warmup_epochs = node.get("warmup_epochs", defaults.warmup_epochs)
    warmup_steps = node.get("warmup_steps", defaults.warmup_steps)
    start_factor = node.get("warmup_start_factor", defaults.warmup_start_factor)
    entry = SCHEDULERS.get(node["name"])
    params = {k: v for k, v in node.items() if k not in common}

    def build(epochs: float) -> dict | None:
        return entry.build(params, optimizer=optimizer, max_epochs=epochs, steps_per_epoch=steps_per_epoch)

    if warmup_epochs < 0 or warmup_steps < 0:
        raise DlcliError(f"scheduler: warmup_epochs and warmup_steps must be >= 0 "
                         f"(got {warmup_epochs} and {warmup_steps})")
    if warmup_epochs and warmup_steps:
        raise DlcliError(f"scheduler: give warmup_epochs or warmup_steps, not both "
                         f"(got warmup_epochs={warmup_epochs}, warmup_steps={warmup_steps}); set the other to 0")
    if not warmup_epochs and not warmup_steps:
        return build(max_epochs)
    if not 0 <= start_factor <= 1:
        raise DlcliError(f"scheduler.warmup_start_factor must be in [0, 1], got {start_factor}")
    total = max_epochs * steps_per_epoch
    warmup = warmup_steps or warmup_epochs * steps_per_epoch  # in optimiser steps
    if warmup >= total:
        raise DlcliError(f"scheduler: a warmup of {warmup} steps leaves no room for the schedule in a run of "
                         f"{total} steps ({max_epochs} epochs x {steps_per_epoch}); shorten the warmup")
    remaining = total - warmup
    # the schedule's span is what the warmup leaves: whole epochs when it is counted in epochs
    main = build(remaining // steps_per_epoch if remaining % steps_per_epoch == 0 else remaining / steps_per_epoch)
    Warmup = _warmup_class()
    if main is not None and "monitor" in main:
        # ReduceLROnPlateau needs the monitored metric, measured once per epoch: the warmup then
        # counts epochs too, and Lightning is told to hand step() the metric
        if warmup_steps:
            raise DlcliError(f"scheduler {node['name']} steps once per epoch on a validation metric, so it can "
                             "only warm up in whole epochs: use scheduler.warmup_epochs instead of warmup_steps")
        return {**main, "scheduler": Warmup(optimizer, main["scheduler"], warmup_epochs, start_factor),
                "reduce_on_plateau": True}
    # Otherwise the warmup runs per optimiser step, for a smooth rise even when counted in epochs; an
    # epoch-wise schedule then steps once every steps_per_epoch steps, its epochs counted from the
    # warmup's end (on epoch boundaries when the warmup is whole epochs)
    every = steps_per_epoch if main is not None and main["interval"] == "epoch" else 1
    return _per_step(Warmup(optimizer, main["scheduler"] if main is not None else None, warmup, start_factor,
                            every))
