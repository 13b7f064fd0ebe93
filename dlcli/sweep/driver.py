"""Run a sweep: up to ``jobs`` trials at once, each asked from the study, run in its own process, and told back.

Threads only wait on the trial processes; every call on the study goes through one lock.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dlcli import startup
from dlcli.sweep.launch import (
    LocalLauncher,
    Outcome,
    SlurmLauncher,
    cv_outcome,
    find_run,
    local_launcher,
    outcome,
    train_command,
    trial_env,
)
from dlcli.sweep.prune import prune_env
from dlcli.sweep.space import SearchSpace
from dlcli.sweep.study import SweepSpec, Work, driver_attrs, enqueue_next_grid_point, plan, reopen_trial


@dataclass
class Row:
    """A trial as the live table shows it."""

    number: int
    params: dict[str, Any]
    state: str = "running"
    value: float | None = None
    run: str = ""
    error: str = ""
    started: float = field(default_factory=time.time)
    finished: float | None = None


@dataclass
class SweepReport:
    """How a sweep invocation went."""

    study: Any
    ran: list[Row]
    stopped: bool  # --on-failure stop, after a failure
    interrupted: bool = False


def run_sweep(spec: SweepSpec, space: SearchSpace, study: Any, console: Any) -> SweepReport:
    """Run what is left of the sweep (see :func:`dlcli.sweep.study.plan`); ``console`` shows its progress."""
    from dlcli.sweep.launch import visible_gpus

    work = plan(study, spec)
    startup.settle()  # the driver's imports are done: the collector runs again for the sweep (dlcli/startup.py)
    if spec.launcher == "slurm":
        launcher = SlurmLauncher(spec.folder, spec.slurm, spec.trials_per_job)
    else:  # (nothing left to run: no warm parent to start)
        launcher = local_launcher() if work else LocalLauncher()
    gpus = visible_gpus() if spec.launcher == "local" else []
    user_threads = any(o.startswith("threads=") for o in spec.overrides)
    lock, done = threading.Lock(), threading.Condition()
    rows: dict[int, Row] = {}
    # trials at once: --jobs, times --trials-per-job (SLURM: each job runs that many, one after another)
    free_slots = list(range(max(1, spec.jobs) * (spec.trials_per_job if spec.launcher == "slurm" else 1)))
    state = {"failed": False}
    logs = spec.folder / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    view = Progress(console, spec, space, rows)
    handles: dict[int, Any] = {}  # trial number -> its optuna Trial, until it is told back

    def start(item: Work) -> tuple[int, dict[str, Any]]:
        """Ask (or re-open) the study's trial for ``item``: (number, params). Under the lock."""
        if item.kind == "rerun":  # this process drives it now: a later resume must not take it for dead
            trial = reopen_trial(study, spec, item.number)
        else:
            if item.kind == "retry":
                study.enqueue_trial(item.params, user_attrs={"retry_of": item.number})
            elif spec.strategy == "grid":  # the grid's next point, in order
                enqueue_next_grid_point(study, space.grid())
            trial = study.ask(space.distributions(spec.strategy))
        for key, value in driver_attrs().items():
            trial.set_user_attr(key, value)
        handles[trial.number] = trial
        return trial.number, dict(trial.params)

    def finish(number: int, result: Outcome, started: float, ended: float) -> None:
        from optuna.trial import TrialState

        attrs = {"run_dir": str(result.run_dir) if result.run_dir else None, "status": result.status,
                 "error": result.error, "started": started, "finished": ended}
        with lock:
            trial = handles.pop(number)
            for key, value in attrs.items():  # while it runs: a finished trial's attrs are fixed
                trial.set_user_attr(key, value)
            if result.status == "pruned":  # the study's last reported value is the trial's
                study.tell(trial, state=TrialState.PRUNED)
            elif result.value is None:
                study.tell(trial, state=TrialState.FAIL)
            else:
                study.tell(trial, result.value)

    def worker(number: int, params: dict[str, Any], slot: int, attempt: str) -> None:
        row = rows[number]
        try:
            overrides = space.overrides(params)
            if spec.jobs > 1 and not user_threads:
                overrides.append("threads=1")  # N trials share the CPU: one thread each is much faster
            cv_id = f"{spec.name}-trial-{number}{attempt}" if spec.cv else None  # one cv folder per attempt
            cmd = train_command(overrides, spec.output_dir, spec.config_dirs, spec.plugins, spec.cv, cv_id)
            gpu = gpus[slot % len(gpus)] if gpus else None
            log = logs / f"trial-{number}{attempt}.log"
            started = time.time()
            code, pid = launcher.run(cmd, trial_env(spec.name, number, gpu, prune_env(spec)), log, number)
            ended = time.time()
            if cv_id is not None:  # the folds' mean, from the trial's cv.json
                result = cv_outcome(spec.output_dir, cv_id, code, spec.metric, log)
                run_dir = result.run_dir
            else:
                run_dir = find_run(spec.output_dir, spec.name, number, started, pid)
                result = outcome(run_dir, code, spec.metric, log)
            if result.status == "interrupted" and state.get("interrupted"):
                row.state = "interrupted"  # left RUNNING in the study: resume runs it again, same number
            else:
                finish(number, result, started, ended)
                row.state = result.status if result.value is None or result.status == "pruned" else "completed"
            row.value, row.error, row.finished = result.value, result.error or "", ended
            row.run = run_dir.name if run_dir else ""
            if result.value is None and row.state not in ("interrupted", "pruned"):
                state["failed"] = True
        except BaseException as e:  # a bug here must not leave the sweep waiting for ever
            row.state, row.error = "failed", f"{type(e).__name__}: {e}"
            state["failed"] = True
        finally:
            with done:
                free_slots.append(slot)
                done.notify_all()
            view.trial_done(row)

    threads: list[threading.Thread] = []
    interrupted = False
    with view:
        try:
            while True:
                with done:
                    while not free_slots:
                        done.wait(0.5)
                        view.refresh()
                    stop = spec.on_failure == "stop" and state["failed"]
                    if stop or not work:
                        break
                    slot = free_slots.pop(0)
                item = work.pop(0)
                with lock:
                    number, params = start(item)
                attempt = f"-retry-of-{item.number}" if item.kind == "retry" else ""
                attempt += f"-{int(time.time())}" if item.kind == "rerun" else ""
                rows[number] = Row(number, params)
                view.trial_started(rows[number], item)
                thread = threading.Thread(target=worker, args=(number, params, slot, attempt), daemon=True)
                thread.start()
                threads.append(thread)
            for thread in threads:
                while thread.is_alive():
                    thread.join(0.5)
                    view.refresh()
        except KeyboardInterrupt:
            interrupted = True
            state["interrupted"] = True
            launcher.stop()
            for thread in threads:
                thread.join(30)
    stopped = spec.on_failure == "stop" and state["failed"] and bool(work)
    return SweepReport(study, [rows[n] for n in sorted(rows)], stopped, interrupted)


class Progress:
    """A live rich table of the trials in a terminal; one plain line per event otherwise (logs, CI, tests)."""

    def __init__(self, console: Any, spec: SweepSpec, space: SearchSpace, rows: dict[int, Row]) -> None:
        self.console, self.spec, self.space, self.rows = console, spec, space, rows
        self.live = None
        self.mutex = threading.Lock()

    def __enter__(self) -> Progress:
        if self.console.is_terminal:
            from rich.live import Live

            self.live = Live(self.table(), console=self.console, refresh_per_second=2, transient=False)
            self.live.__enter__()
        return self

    def __exit__(self, *exc: Any) -> None:
        if self.live is not None:
            self.live.update(self.table())
            self.live.__exit__(*exc)

    def refresh(self) -> None:
        if self.live is not None:
            self.live.update(self.table())

    def trial_started(self, row: Row, item: Work) -> None:
        if self.live is not None:
            return self.refresh()
        how = {"rerun": " (again, interrupted before)", "retry": f" (retry of failed trial {item.number})"}
        with self.mutex:
            self.console.print(f"trial {row.number} started{how.get(item.kind, '')}: "
                               f"{' '.join(p.override(row.params[p.key]) for p in self.space.params)}",
                               markup=False, soft_wrap=True)

    def trial_done(self, row: Row) -> None:
        if self.live is not None:
            return self.refresh()
        took = f" in {row.finished - row.started:.1f} s" if row.finished else ""
        result = f"{self.spec.metric}={row.value:.4f}" if row.value is not None else row.error
        with self.mutex:
            self.console.print(f"trial {row.number} {row.state}{took}: {result}"
                               + (f" (run {row.run})" if row.run else ""), markup=False, soft_wrap=True)

    def table(self) -> Any:
        return trials_table(self.spec, self.space, list(self.rows.values()), title=f"sweep {self.spec.name}")


def trials_table(spec: SweepSpec, space: SearchSpace, rows: list[Row], title: str) -> Any:
    """A rich table: trial, state, each swept key, the metric, the run folder."""
    from rich.table import Table

    table = Table(title=title, title_justify="left")
    table.add_column("trial", justify="right")
    table.add_column("state")
    for p in space.params:
        table.add_column(p.key)
    table.add_column(spec.metric, justify="right")
    table.add_column("run")
    colors = {"completed": "green", "failed": "red", "running": "yellow", "interrupted": "magenta", "pruned": "blue"}
    for row in sorted(rows, key=lambda r: r.number):
        color = colors.get(row.state, "white")
        table.add_row(str(row.number), f"[{color}]{row.state}[/]",
                      *(_show(row.params.get(p.key)) for p in space.params),
                      f"{row.value:.4f}" if row.value is not None else "", row.run or row.error[:60])
    return table


def study_rows(study: Any) -> list[Row]:
    """Every trial of the study as a Row (for the final table)."""
    rows = []
    for t in study.get_trials(deepcopy=False):
        state = t.state.name.lower().replace("complete", "completed").replace("fail", "failed")
        run = t.user_attrs.get("run_dir") or ""
        rows.append(Row(t.number, dict(t.params), state, t.value if t.values else None, Path(run).name if run else "",
                        t.user_attrs.get("error") or ""))
    return rows


def _show(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return "" if value is None else str(value)
