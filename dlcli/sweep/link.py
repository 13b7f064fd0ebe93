"""How a trial's run knows its sweep: two environment variables set by the sweep, read by ``train()``.

Light on purpose (no optuna, no torch): ``dlcli.training.train`` imports it for every run.
"""

from __future__ import annotations

import os
from typing import Any

SWEEP_ENV = "DLCLI_SWEEP"  # the sweep's name, as `runs ls --sweep NAME` takes it
TRIAL_ENV = "DLCLI_TRIAL"  # the trial's number in the sweep's study


def sweep_link() -> dict[str, Any]:
    """``{"sweep": name, "trial": number}`` for summary.json when this run is a sweep's trial, else ``{}``."""
    name = os.environ.get(SWEEP_ENV)
    if not name:
        return {}
    trial = os.environ.get(TRIAL_ENV, "")
    return {"sweep": name, "trial": int(trial) if trial.isdigit() else None}
