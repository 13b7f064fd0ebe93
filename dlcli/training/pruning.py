"""The callback through which a pruning sweep's trial reports each epoch (see dlcli/sweep/prune.py)."""

from __future__ import annotations

import json
import os
import sys
from typing import Any

import pytorch_lightning as pl

from dlcli.errors import DlcliError
from dlcli.sweep.link import TRIAL_ENV
from dlcli.sweep.prune import PRUNE_ENV


def pruning_callback(recorder: Any) -> Any:
    """A :class:`TrialPruning` for this process when a pruning sweep launched it (see :data:`PRUNE_ENV`), else
    None. ``recorder`` is the run's EpochRecorder: the callback reads each epoch's metric from its rows."""
    raw = os.environ.get(PRUNE_ENV)
    trial = os.environ.get(TRIAL_ENV, "")
    if not raw or not trial.isdigit():
        return None
    try:
        settings = json.loads(raw)
    except ValueError:
        raise DlcliError(f"environment variable {PRUNE_ENV} is not JSON: unset it (the sweep sets it for its "
                         "trials)") from None
    return TrialPruning(recorder, int(trial), settings)


class TrialPruning(pl.Callback):
    """Report the sweep's metric to the study after each epoch; stop the fit when the pruner says so.

    ``pruned_at``: the epoch after which the trial was pruned, or None. The study is opened on the first
    epoch's end (rank 0 only); a database that cannot be reached leaves the trial unpruned, with a warning,
    instead of failing a run that trains well.
    """

    def __init__(self, recorder: Any, number: int, settings: dict[str, Any]) -> None:
        self.recorder, self.number, self.settings = recorder, number, settings
        self.metric = settings["metric"]
        self.pruned_at: int | None = None
        self.trial: Any = None
        self.broken = False

    def _open(self) -> Any:
        import optuna

        from dlcli.sweep.prune import make_pruner
        from dlcli.sweep.study import open_database

        optuna.logging.set_verbosity(optuna.logging.WARNING)
        s = self.settings
        storage = open_database(s["storage"])
        study = optuna.load_study(study_name=s["study"], storage=storage,
                                  pruner=make_pruner(s["pruner"], int(s["min_epochs"]), int(s["trials"])))
        trial_id = storage.get_trial_id_from_study_id_trial_number(storage.get_study_id_from_name(s["study"]),
                                                                   self.number)
        return optuna.trial.Trial(study, trial_id)

    def _should_prune(self, epoch: int) -> bool:
        rows = self.recorder.rows
        row = rows[-1] if rows and rows[-1]["epoch"] == epoch else {}
        value = row.get(self.metric)
        if value is None or self.broken:  # not measured this epoch (every_n_epochs validation)
            return False
        try:
            if self.trial is None:
                self.trial = self._open()
            self.trial.report(float(value), step=epoch)
            return bool(self.trial.should_prune())
        except Exception as e:  # the database went away: train on, unpruned
            self.broken = True
            print(f"warning: cannot report to sweep '{self.settings['study']}' ({type(e).__name__}: {e}); "
                  "this trial goes on without pruning", file=sys.stderr)
            return False

    def on_train_epoch_end(self, trainer: Any, pl_module: Any) -> None:
        decision = self._should_prune(trainer.current_epoch) if trainer.is_global_zero else False
        decision = trainer.strategy.broadcast(decision, src=0)  # every process stops at the same epoch
        if decision:
            self.pruned_at = trainer.current_epoch
            trainer.should_stop = True
