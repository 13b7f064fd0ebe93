"""The sweep's folder, its Optuna study, and what is left to run.

``<output_dir>/sweeps/<name>/`` holds ``sweep.yaml`` (what was asked for), ``study.db`` (the study, SQLite,
unless ``--storage URL`` names another database) and ``logs/`` (each trial's output). The spec is also kept
in the study's user attrs, so a sweep in a shared database can be resumed from any machine.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from dlcli.errors import DlcliError
from dlcli.runs import folder

SWEEPS = "sweeps"
SPEC = "sweep.yaml"
STUDY_DB = "study.db"
SPEC_ATTR = "dlcli_spec"
STRATEGIES = ("grid", "random", "tpe")


@dataclass
class SweepSpec:
    """Everything that defines a sweep; written to sweep.yaml and the study, read back by resume."""

    name: str
    overrides: list[str]
    strategy: str
    trials: int  # how many trials the sweep has (grid: its size); resume --trials N adds N
    metric: str
    direction: str
    seed: int
    output_dir: str  # absolute: trials write their run folders here
    storage: str
    on_failure: str = "continue"
    jobs: int = 1
    launcher: str = "local"
    config_dirs: list[str] = field(default_factory=list)
    plugins: list[str] = field(default_factory=list)
    slurm: dict[str, Any] = field(default_factory=dict)
    trials_per_job: int = 1  # --launcher slurm: trials each SLURM job runs, one after another
    pruner: str = "none"  # none | median | percentile | hyperband | asha (dlcli/sweep/prune.py)
    min_epochs: int = 2  # epochs every trial trains before the pruner may stop it
    cv: int | None = None  # K: each trial is `dlcli cv --folds K`, its value the folds' mean (dlcli/cv/)

    @property
    def folder(self) -> Path:
        return sweep_dir(self.output_dir, self.name)

    def same_sweep(self, other: SweepSpec) -> list[str]:
        """The settings where ``other`` asks for a different sweep than this one (empty: the same)."""
        keys = ("overrides", "strategy", "metric", "direction", "pruner", "min_epochs", "cv")
        return [k for k in keys if getattr(self, k) != getattr(other, k)]


def sweep_dir(output_dir: str | Path, name: str) -> Path:
    return Path(output_dir).expanduser().absolute() / SWEEPS / name


def default_database(folder_: Path) -> str:
    return f"sqlite:///{folder_ / STUDY_DB}"


def write_spec(spec: SweepSpec) -> None:
    spec.folder.mkdir(parents=True, exist_ok=True)
    folder.write_yaml(spec.folder / SPEC, asdict(spec))


def read_spec(path: Path) -> SweepSpec:
    from omegaconf import OmegaConf

    from dlcli.config.limits import check_yaml_file

    check_yaml_file(path)  # an alias bomb is refused before OmegaConf expands it
    data = OmegaConf.to_container(OmegaConf.load(path))
    return SweepSpec(**data)


def find_sweep(ref: str, output_dir: str | Path) -> Path:
    """The sweep.yaml of SWEEP: a sweep folder, or a sweep's name under ``<output_dir>/sweeps``."""
    root = Path(output_dir).expanduser() / SWEEPS
    for candidate in (Path(ref).expanduser(), root / ref):
        if (candidate / SPEC).is_file():
            return candidate / SPEC
    known = sorted(p.name for p in root.iterdir() if (p / SPEC).is_file()) if root.is_dir() else []
    from dlcli.registry import did_you_mean

    raise DlcliError(f"no sweep '{ref}' under {root.absolute()}." + did_you_mean(ref, known)
                     + (f" Sweeps there: {', '.join(known[-10:])}" if known else "")
                     + ". Give a sweep's name or folder (output_dir=PATH to look elsewhere)")


def open_database(url: str, sweep: str | None = None) -> Any:
    """Optuna's database storage for ``url``; a URL it cannot open is a DlcliError naming it.

    ``sweep``: the sweep's name when ``url`` is its own database (no --storage given), for a message that
    does not blame a flag the user never gave.
    """
    import optuna
    from sqlalchemy.exc import ArgumentError, SQLAlchemyError

    try:
        return optuna.storages.RDBStorage(url, engine_kwargs=_engine_kwargs(url))
    except (ArgumentError, SQLAlchemyError, ValueError, ImportError, ModuleNotFoundError) as e:
        first = str(e).splitlines()[0] if str(e) else type(e).__name__
        if sweep is not None:
            raise DlcliError(f"sweep '{sweep}': cannot open its database {url} ({first}). If another `dlcli sweep` "
                             f"named '{sweep}' is starting or running, wait for it to end, then `dlcli sweep resume "
                             f"{sweep}`; or choose another --name") from None
        raise DlcliError(f"--storage '{url}': cannot open this database ({first}). Give a SQLAlchemy URL that "
                         "Optuna supports, e.g. sqlite:///sweep.db, postgresql://user@host/db, "
                         "mysql+pymysql://user@host/db") from None


LOCK = ".driver.lock"


@contextmanager
def driving(spec_folder: Path, name: str) -> Iterator[None]:
    """This process drives the sweep in ``spec_folder``; a second driver of it is refused meanwhile.

    Two drivers of one study would each plan the trials still to run and ask for them all, running the sweep
    twice over (and two starting at once race to create its database). The lock is an ``flock`` on
    ``<folder>/.driver.lock``, which the system drops when the process ends, however it ends: a killed sweep
    leaves no stale lock. Trials on other machines sharing a ``--storage`` database are not concerned.
    """
    try:
        import fcntl
    except ImportError:  # not POSIX: no lock
        yield
        return
    spec_folder.mkdir(parents=True, exist_ok=True)
    with open(spec_folder / LOCK, "a+", encoding="utf-8") as f:
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            f.seek(0)
            holder = f.read().strip() or "another process"
            raise DlcliError(f"sweep '{name}' is already running ({holder}, folder {spec_folder}): wait for it to "
                             f"end, then `dlcli sweep resume {name}` goes on with it; or choose another --name for "
                             "a new sweep") from None
        f.seek(0)
        f.truncate()
        f.write(f"pid {os.getpid()} on {socket.gethostname()}\n")
        f.flush()
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def _engine_kwargs(url: str) -> dict[str, Any]:
    # several threads (and processes) write one SQLite file: wait for the lock instead of failing
    return {"connect_args": {"timeout": 60}} if url.startswith("sqlite") else {}


def sampler(spec: SweepSpec, space: Any, n_existing: int) -> Any:
    """The strategy's Optuna sampler, seeded from the config's seed (and how many trials the study has,
    so that a resumed random sweep draws new points instead of the same ones again)."""
    import optuna

    seed = spec.seed + n_existing
    if spec.strategy == "grid":
        return _enqueued_only()
    if spec.strategy == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    return optuna.samplers.TPESampler(seed=seed, n_startup_trials=min(10, max(2, spec.trials // 2)))


def create_or_load(spec: SweepSpec, space: Any) -> Any:
    """The sweep's study: created with the spec in its user attrs, or loaded when it exists."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    storage = open_database(spec.storage, sweep=spec.name if spec.storage == default_database(spec.folder) else None)
    from dlcli.sweep.prune import make_pruner

    study = optuna.create_study(storage=storage, study_name=spec.name, direction=spec.direction,
                                sampler=sampler(spec, space, 0), load_if_exists=True,
                                pruner=make_pruner(spec.pruner, spec.min_epochs, spec.trials))
    existing = study.user_attrs.get(SPEC_ATTR)
    if existing is None:
        study.set_user_attr(SPEC_ATTR, asdict(spec))
    else:
        study.sampler = sampler(spec, space, len(study.get_trials(deepcopy=False)))
    return study


def reopen_trial(study: Any, spec: SweepSpec, number: int) -> Any:
    """An ``optuna.trial.Trial`` for trial ``number`` of the sweep's study, one that a dead sweep left RUNNING:
    what this sweep sets the trial's user attrs through, and tells it back with, as with a trial it asked for."""
    import optuna

    storage = open_database(spec.storage)
    trial_id = storage.get_trial_id_from_study_id_trial_number(storage.get_study_id_from_name(spec.name), number)
    return optuna.trial.Trial(study, trial_id)


def load_spec_from_database(name: str, url: str) -> SweepSpec:
    """A sweep's spec from its study in a shared database (resume on a machine without its folder)."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    storage = open_database(url)
    try:
        study = optuna.load_study(study_name=name, storage=storage)
    except KeyError:
        raise DlcliError(f"no sweep '{name}' in --storage {url}") from None
    data = study.user_attrs.get(SPEC_ATTR)
    if not data:
        raise DlcliError(f"study '{name}' in {url} was not made by `dlcli sweep`")
    return SweepSpec(**data)


@dataclass
class Work:
    """One trial to run: a fresh one (``ask``), an interrupted one again under its own number (``rerun``),
    or a failed one again as a new trial with the same parameters (``retry``)."""

    kind: str
    number: int | None = None  # rerun: the trial; retry: the failed trial
    params: dict[str, Any] | None = None


def driver_attrs() -> dict[str, Any]:
    """Which process runs a trial, so that a later resume can tell a dead one."""
    return {"host": socket.gethostname(), "driver_pid": os.getpid()}


def is_dead(trial: Any) -> bool:
    """A RUNNING trial whose sweep process is gone (killed, or the machine restarted): on this host only;
    a trial run from another machine is left to that machine."""
    attrs = trial.user_attrs
    pid = attrs.get("driver_pid")
    if attrs.get("host") != socket.gethostname() or not isinstance(pid, int):
        return False
    return pid != os.getpid() and not folder.pid_alive(pid)


def plan(study: Any, spec: SweepSpec) -> list[Work]:
    """What is left: interrupted trials (again, same number), then fresh trials up to ``spec.trials``, then one
    more try for each failed trial. Completed trials are skipped; trials alive elsewhere are left alone."""
    from optuna.trial import TrialState

    trials = study.get_trials(deepcopy=False)
    work = [Work("rerun", t.number, dict(t.params)) for t in trials if t.state == TrialState.RUNNING and is_dead(t)]
    fresh = [t for t in trials if "retry_of" not in t.user_attrs]
    waiting = sum(t.state == TrialState.WAITING for t in trials)  # enqueued, never started: the next asks take them
    work += [Work("ask") for _ in range(max(0, spec.trials - len(fresh)) + waiting)]
    retried = {t.user_attrs["retry_of"] for t in trials if "retry_of" in t.user_attrs}
    done = [t.params for t in trials if t.state == TrialState.COMPLETE]
    for t in trials:
        if t.state == TrialState.FAIL and t.number not in retried and t.params not in done:
            work.append(Work("retry", t.number, dict(t.params)))
    return work


def enqueue_next_grid_point(study: Any, grid: dict[str, list[Any]]) -> None:
    """Before a grid sweep's ``study.ask``: enqueue the first point of the grid, in Hydra's order (first key
    slowest), that no trial has taken yet (retries aside), so that the ask runs it. Enqueued one at a time,
    just before its trial: a sweep that stops early (or is killed) leaves no waiting trials behind, and a
    resumed one goes on with the next point. A point enqueued but never asked (killed in between) is the
    one the ask takes."""
    import itertools

    from optuna.trial import TrialState

    trials = study.get_trials(deepcopy=False)
    if any(t.state == TrialState.WAITING for t in trials):
        return
    taken = [t.params for t in trials if "retry_of" not in t.user_attrs]
    for point in itertools.product(*grid.values()):
        params = dict(zip(grid, point, strict=True))
        if params in taken:
            taken.remove(params)  # one trial takes one point: a value listed twice runs twice
        else:
            study.enqueue_trial(params)
            return


def _enqueued_only() -> Any:
    """A grid sweep's sampler: every trial's parameters were enqueued (:func:`enqueue_next_grid_point`), so it
    never samples; asked for a value all the same, it says so instead of drawing one."""
    import optuna

    class EnqueuedOnly(optuna.samplers.BaseSampler):
        def infer_relative_search_space(self, study: Any, trial: Any) -> dict[str, Any]:
            return {}

        def sample_relative(self, study: Any, trial: Any, search_space: dict[str, Any]) -> dict[str, Any]:
            return {}

        def sample_independent(self, study: Any, trial: Any, param_name: str, param_distribution: Any) -> Any:
            raise DlcliError(f"grid sweep: trial {trial.number} has no enqueued value for '{param_name}' (each "
                             "point of a grid is enqueued before its trial is asked)")

    return EnqueuedOnly()
