"""Run one trial: ``dlcli train`` in its own process (here, or as a SLURM job through submitit), then read
its run folder's summary.json for the metric.

A process per trial keeps trials apart: one that crashes, diverges or runs out of memory takes nothing
else down, and each can be killed, or given its own GPU.
"""

from __future__ import annotations

import math
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dlcli.errors import DlcliError
from dlcli.runs import folder
from dlcli.sweep.link import SWEEP_ENV, TRIAL_ENV


@dataclass
class Outcome:
    """How a trial ended: its metric (None when it failed), the error, and its run folder."""

    value: float | None
    error: str | None
    run_dir: Path | None
    status: str


def train_command(overrides: list[str], output_dir: str, config_dirs: list[str], plugins: list[str],
                  cv: int | None = None, cv_id: str | None = None) -> list[str]:
    """The trial's ``dlcli train`` command line (``dlcli cv --folds CV --name CV_ID`` for a cross-validated
    sweep); its run folders go under ``output_dir``."""
    cmd = [sys.executable, "-m", "dlcli", "train"] if cv is None else \
        [sys.executable, "-m", "dlcli", "cv", "--folds", str(cv), "--name", str(cv_id)]
    for d in config_dirs:
        cmd += ["--config-dir", d]
    for m in plugins:
        cmd += ["--plugin", m]
    return cmd + [o for o in overrides if not o.startswith("output_dir=")] + [f"output_dir={output_dir}"]


def trial_env(sweep: str, number: int, gpu: str | None, prune: dict[str, str] | None = None) -> dict[str, str]:
    """The trial's environment: which sweep and trial it is, its GPU, and (``prune``) how to report to the
    study each epoch (dlcli/sweep/prune.py)."""
    from dlcli.sweep.prune import PRUNE_ENV

    env = {**os.environ, SWEEP_ENV: sweep, TRIAL_ENV: str(number)}
    env.pop(PRUNE_ENV, None)
    env.update(prune or {})
    env.pop("DLCLI_RUN_DIR", None)  # a trial is a fresh run, never another run's extra process
    if gpu is not None:
        env["CUDA_VISIBLE_DEVICES"] = gpu
    return env


def visible_gpus() -> list[str]:
    """The GPUs trials may use, without importing torch: CUDA_VISIBLE_DEVICES when set, else ``nvidia-smi -L``."""
    given = os.environ.get("CUDA_VISIBLE_DEVICES")
    if given is not None:
        return [g.strip() for g in given.split(",") if g.strip() and g.strip() != "-1"]
    if shutil.which("nvidia-smi") is None:
        return []
    try:
        listed = subprocess.run(["nvidia-smi", "-L"], capture_output=True, text=True, timeout=20).stdout
    except (OSError, subprocess.SubprocessError):
        return []
    return [str(i) for i, line in enumerate(line for line in listed.splitlines() if line.startswith("GPU "))]


def _libc() -> Any:
    if not sys.platform.startswith("linux"):
        return None
    import ctypes

    try:
        return ctypes.CDLL("libc.so.6", use_errno=True)
    except OSError:
        return None


_LIBC = _libc()  # loaded in the parent: the forked child only makes one call, before exec


def _die_with_parent() -> None:
    """In the child, before exec: get SIGTERM when the sweep dies (Linux), so a killed sweep leaves no
    orphan training on; the run then marks itself interrupted."""
    if _LIBC is not None:
        _LIBC.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


def local_launcher() -> Any:
    """Trials forked from a warm process (dlcli/sweep/warm.py) where Python has a forkserver (Linux, macOS);
    elsewhere a new interpreter per trial."""
    import multiprocessing

    if "forkserver" in multiprocessing.get_all_start_methods():
        from dlcli.sweep.warm import WarmLauncher

        return WarmLauncher()
    return LocalLauncher()


class LocalLauncher:
    """Each trial a subprocess on this machine; ``stop()`` terminates the ones still running."""

    def __init__(self) -> None:
        self.procs: dict[int, subprocess.Popen] = {}

    def run(self, cmd: list[str], env: dict[str, str], log: Path, number: int) -> tuple[int, int | None]:
        """Run to the end; (exit code, process id)."""
        with open(log, "w", encoding="utf-8") as out:
            proc = subprocess.Popen(cmd, env=env, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                    preexec_fn=_die_with_parent)
            self.procs[number] = proc
            try:
                code = proc.wait()
                return (128 - code if code < 0 else code), proc.pid  # killed by signal N: 128 + N, as a shell says
            finally:
                self.procs.pop(number, None)

    def stop(self) -> None:
        for proc in list(self.procs.values()):
            if proc.poll() is None:
                proc.terminate()


class SlurmLauncher:
    """Trials as SLURM jobs through submitit; ``params`` go to the executor (``slurm_partition``,
    ``timeout_min``, ``gpus_per_node``, ...).

    A job runs ``trials_per_job`` trials, one after another, each still its own process (:func:`run_trials`):
    a job pays for starting Python and importing torch and Lightning once, not once per trial. The driver
    hands over trials one by one (:meth:`run`, one thread each); they are gathered into a job until it holds
    ``trials_per_job`` of them, or ``gather_s`` seconds after its first (the sweep's last trials).
    """

    def __init__(self, folder_: Path, params: dict[str, Any], trials_per_job: int = 1, executor: Any = None,
                 gather_s: float = 2.0) -> None:
        self.executor = executor if executor is not None else slurm_executor(folder_, params)
        self.per_job, self.gather_s = max(1, trials_per_job), gather_s
        self.lock = threading.Lock()
        self.gathering: _Batch | None = None
        self.batches: list[_Batch] = []  # submitted, not finished: what stop() cancels

    def run(self, cmd: list[str], env: dict[str, str], log: Path, number: int) -> tuple[int, int | None]:
        """Run the trial in a job (alone, or with others); (exit code, None) when that job is done."""
        with self.lock:
            batch = self.gathering
            if batch is None:
                batch = self.gathering = _Batch()
                if self.per_job > 1:
                    timer = threading.Timer(self.gather_s, self._submit, args=(batch,))
                    timer.daemon = True
                    timer.start()
            index = len(batch.items)
            batch.items.append((cmd, env, str(log), number))
            if len(batch.items) >= self.per_job:
                self._submit_locked(batch)
        batch.submitted.wait()
        try:
            if batch.error is not None:
                raise batch.error
            codes = batch.job.result()
            return int(codes[index]), None
        except Exception as e:  # submitit raises FailedJobError (and others) for a job that did not succeed
            if not log.is_file() or not log.stat().st_size:  # the trial's own output, when it ran, stays
                log.write_text(f"{type(e).__name__}: {e}\n", encoding="utf-8")
            return 1, None
        finally:
            with self.lock:
                if batch in self.batches and batch.job.done():
                    self.batches.remove(batch)

    def _submit(self, batch: _Batch) -> None:
        with self.lock:
            self._submit_locked(batch)

    def _submit_locked(self, batch: _Batch) -> None:
        if batch.submitted.is_set():
            return
        if self.gathering is batch:
            self.gathering = None
        try:
            batch.job = self.executor.submit(run_trials, list(batch.items), os.getcwd())
            self.batches.append(batch)
        except Exception as e:  # noqa: BLE001  (handed to every trial of the batch)
            batch.error = e
        batch.submitted.set()

    def stop(self) -> None:
        with self.lock:
            for batch in self.batches:
                batch.job.cancel(check=False)


class _Batch:
    """Trials gathered into one SLURM job: (cmd, env, log, number) each; its job once submitted."""

    def __init__(self) -> None:
        self.items: list[tuple[list[str], dict[str, str], str, int]] = []
        self.submitted = threading.Event()
        self.job: Any = None
        self.error: Exception | None = None


def run_trials(items: list[tuple[list[str], dict[str, str], str, int]], cwd: str) -> list[int]:
    """In a SLURM job: run each trial, one after another, in its own process, its output in its log file;
    their exit codes. Several trials are forked from one warm parent (dlcli/sweep/warm.py), which imports
    torch and Lightning once for them all."""
    os.chdir(cwd)
    launcher = local_launcher() if len(items) > 1 else LocalLauncher()
    codes = []
    try:
        for cmd, env, log, number in items:
            codes.append(launcher.run(cmd, {**os.environ, **env}, Path(log), number)[0])
    finally:
        launcher.stop()
    return codes


def slurm_executor(folder_: Path, params: dict[str, Any]) -> Any:
    """submitit's SLURM executor, its logs in ``<sweep>/slurm``; a clear DlcliError without submitit or SLURM."""
    try:
        import submitit
    except ImportError:
        raise DlcliError("--launcher slurm needs submitit: pip install 'dlcli[slurm]'") from None
    try:
        executor = submitit.AutoExecutor(folder=str(folder_ / "slurm"), cluster="slurm")
    except RuntimeError as e:
        raise DlcliError(f"--launcher slurm: {e} (`srun` was not found: run the sweep on the cluster's login "
                         "node, or use --launcher local)") from None
    try:
        executor.update_parameters(**params)
    except (ValueError, TypeError) as e:
        raise DlcliError(f"--slurm: {e}") from None
    return executor


def find_run(output_dir: str, sweep: str, number: int, since: float, pid: int | None) -> Path | None:
    """The run folder a trial made: its summary.json names this sweep and trial, and it started after ``since``
    (run ids begin with their start time, so older folders are not even opened)."""
    root = Path(output_dir)
    stamp = time.strftime("%Y%m%d-%H%M%S", time.localtime(since - 1))
    found = []
    for p in root.iterdir() if root.is_dir() else []:
        if p.name[:15] < stamp or not (p / folder.SUMMARY).is_file():
            continue
        try:
            s = folder.read_json(p / folder.SUMMARY)
        except (OSError, ValueError):
            continue
        if s.get("sweep") == sweep and s.get("trial") == number and (pid is None or s.get("pid") == pid):
            found.append(p)
    return max(found, key=lambda p: p.name) if found else None


def outcome(run_dir: Path | None, code: int, metric: str, log: Path) -> Outcome:
    """Read the trial's result. Failed: a non-zero exit, a run that did not complete, a missing or NaN metric."""
    if run_dir is None:
        return Outcome(None, _last_error(log) or f"exit code {code}, no run folder", None, "failed")
    s = folder.read_json(run_dir / folder.SUMMARY)
    status = s.get("status", "unknown")
    if code == 0 and status == "pruned":  # stopped by the sweep's pruner: its best value so far, for the table
        best = s.get("best") or {}
        return Outcome(best.get("value") if best.get("monitor") == metric else None, None, run_dir, "pruned")
    if code != 0 or status != "completed":
        if code > 128 and status == "running":  # killed (SIGKILL, the OOM killer): it could not say so itself
            name = signal.Signals(code - 128).name if code - 128 in signal.valid_signals() else f"signal {code - 128}"
            return Outcome(None, f"the trial's process was killed ({name})", run_dir, "failed")
        return Outcome(None, s.get("error") or _last_error(log) or f"status {status}, exit code {code}", run_dir,
                       status if status in ("interrupted", "failed") else "failed")
    best, metrics = s.get("best") or {}, s.get("metrics") or {}
    if best.get("monitor") == metric:
        value = best.get("value")  # the best epoch's, whose checkpoint was tested
    elif metric in metrics:
        value = metrics[metric]
    else:
        return Outcome(None, f"metric {metric} not in the run's metrics ({', '.join(sorted(metrics))}); "
                             "choose one with --metric", run_dir, "failed")
    if value is None or not math.isfinite(float(value)):
        return Outcome(None, f"{metric} is {value}", run_dir, "failed")
    return Outcome(float(value), None, run_dir, "completed")


def cv_outcome(output_dir: str, cv_id: str, code: int, metric: str, log: Path) -> Outcome:
    """A cross-validated trial's result, from its cv.json: the folds' mean of ``metric`` (each fold's value at
    its best epoch, as `dlcli cv` reports it). Its "run" is the cv folder."""
    from dlcli.cv.run import CV_DIR, CV_JSON

    cv_dir = Path(output_dir) / CV_DIR / cv_id
    try:
        record = folder.read_json(cv_dir / CV_JSON)
    except (OSError, ValueError):
        return Outcome(None, _last_error(log) or f"exit code {code}, no cv.json", None, "failed")
    status = record.get("status", "unknown")
    if code != 0 or status != "completed":
        failed = record.get("failed") or {}
        why = failed.get("error") or _last_error(log) or f"status {status}, exit code {code}"
        where = f"fold {failed['fold']}: " if "fold" in failed else ""
        return Outcome(None, where + why, cv_dir, status if status in ("interrupted", "failed") else "failed")
    stat = (record.get("metrics") or {}).get(metric) or {}
    value = stat.get("mean")
    if value is None:
        known = ", ".join(sorted(record.get("metrics") or {}))
        return Outcome(None, f"metric {metric} not in the folds' metrics ({known}); choose one with --metric", cv_dir,
                       "failed")
    if not math.isfinite(float(value)) or stat.get("n") != len(record.get("runs") or []):
        return Outcome(None, f"{metric} is {value} (over {stat.get('n')} of {len(record.get('runs') or [])} folds)",
                       cv_dir, "failed")
    return Outcome(float(value), None, cv_dir, "completed")


def _last_error(log: Path) -> str | None:
    try:
        lines = [line.strip() for line in log.read_text(encoding="utf-8", errors="replace").splitlines()]
    except OSError:
        return None
    errors = [line for line in lines if line.startswith("error:")]
    return errors[-1][len("error:"):].strip() if errors else (lines[-1] if lines and lines[-1] else None)
