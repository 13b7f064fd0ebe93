"""Pruning a sweep's trials: Optuna's pruners, and the callback through which a trial's run reports each epoch.

The sweep runs each trial as its own ``dlcli train`` process; with ``--pruner``, that process gets the sweep's
database, study and pruner settings in one environment variable (:data:`PRUNE_ENV`). Its
:class:`TrialPruning` callback reports the sweep's metric to the study after every epoch (Optuna's
``Trial.report``) and asks the study's pruner whether to go on (``Trial.should_prune``): the pruner compares
the trial with the others at the same epoch. A trial told to stop ends its fit there, cleanly: its run
folder says ``pruned``, keeps its checkpoints, and the sweep tells the study the trial was pruned (not
failed), so ``sweep resume`` never runs it again.
"""

from __future__ import annotations

import json
from typing import Any

from dlcli.errors import DlcliError

PRUNERS = ("none", "median", "percentile", "hyperband", "asha")
PRUNE_ENV = "DLCLI_SWEEP_PRUNE"  # JSON: storage, study, pruner, min_epochs, trials, metric (see prune_env)
PERCENTILE = 25.0  # --pruner percentile: a trial in the worst quarter at its epoch stops (median: the worse half)
REDUCTION = 3  # hyperband / asha: a third of the trials goes on at each rung (Optuna's default)


def check_pruner(pruner: str, metric: str, min_epochs: int) -> None:
    """DlcliError for a pruner the sweep cannot use."""
    if pruner not in PRUNERS:
        raise DlcliError(f"--pruner {pruner}: choose one of {', '.join(PRUNERS)}")
    if min_epochs < 0:
        raise DlcliError(f"--min-epochs {min_epochs}: give 0 or more epochs")
    if pruner != "none" and not metric.startswith(("val/", "train/")):
        raise DlcliError(f"--pruner {pruner} compares trials by --metric after every epoch, and {metric} is not "
                         "measured every epoch: choose a val/ or train/ metric (e.g. --metric val/loss), or drop "
                         "--pruner")


def startup_trials(trials: int) -> int:
    """Trials that run to the end before median / percentile pruning starts: Optuna's 5, fewer in a small sweep
    (a third of it, at least 2), so that a 12-trial sweep has trials left to prune."""
    return min(5, max(2, trials // 3))


def make_pruner(pruner: str, min_epochs: int, trials: int) -> Any:
    """The Optuna pruner for ``--pruner``; steps are epochs (0-based), and none stops before ``min_epochs``."""
    import optuna

    if pruner == "median":
        return optuna.pruners.MedianPruner(n_startup_trials=startup_trials(trials), n_warmup_steps=min_epochs)
    if pruner == "percentile":
        return optuna.pruners.PercentilePruner(PERCENTILE, n_startup_trials=startup_trials(trials),
                                               n_warmup_steps=min_epochs)
    if pruner == "hyperband":  # brackets of successive halving; rungs at min_epochs, x3, x9, ...
        return optuna.pruners.HyperbandPruner(min_resource=max(1, min_epochs), reduction_factor=REDUCTION)
    if pruner == "asha":  # Optuna's successive halving is asynchronous (ASHA): no trial waits for a rung to fill
        return optuna.pruners.SuccessiveHalvingPruner(min_resource=max(1, min_epochs), reduction_factor=REDUCTION)
    return optuna.pruners.NopPruner()


def prune_env(spec: Any) -> dict[str, str]:
    """The environment that lets a trial's run report to the study; empty when the sweep does not prune."""
    if getattr(spec, "pruner", "none") == "none":
        return {}
    settings = {"storage": spec.storage, "study": spec.name, "pruner": spec.pruner, "min_epochs": spec.min_epochs,
                "trials": spec.trials, "metric": spec.metric}
    return {PRUNE_ENV: json.dumps(settings)}
