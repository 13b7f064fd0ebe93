"""Warm trial processes: each trial still runs in a process of its own, forked from one that has imported torch,
Lightning and dlcli already, so it pays no import.

A sweep's trial was ``python -m dlcli train ...`` in a new interpreter: 3-4 s of imports for trials whose training
may take one second. Here the sweep starts Python's *forkserver* once, with the modules a training run needs
preloaded (:data:`PRELOAD`); every trial is a fresh child forked from it. A child is a whole process, as before:
a crash, a NaN, a leak or a kill ends that trial only; it gets its own environment (sweep and trial number, its
GPU), its own log file (stdout and stderr), and SIGTERM when the sweep dies. The forkserver is single-threaded
when it forks (no torch thread pool has started there), so the children start clean.
"""

from __future__ import annotations

import os
import signal
import sys
from pathlib import Path
from typing import Any

# what a training run imports, loaded once in the forkserver (see :func:`preload`)
PRELOAD = ["dlcli.sweep.warm"]


def preload() -> None:
    """Import what a trial's ``dlcli train`` would import, and register every component: run in the forkserver
    when it starts (as ``dlcli.sweep.warm`` is imported there), once for all trials."""
    from dlcli import startup

    startup.pause()  # frozen when done: the trials forked from here never walk these objects (dlcli/startup.py)
    try:
        _preload()
    finally:
        startup.settle()


def _preload() -> None:
    import matplotlib

    matplotlib.use("Agg")  # plots are saved to files; no display in a trial
    import matplotlib.pyplot  # noqa: F401  (the curves and confusion matrix at a run's end)
    import pytorch_lightning  # noqa: F401
    import sklearn.datasets  # noqa: F401  (the synthetic datasets: moons, regression, multilabel)
    import sklearn.model_selection  # noqa: F401  (cv's folds)
    import torch  # noqa: F401
    import torchmetrics  # noqa: F401

    import dlcli.cli  # noqa: F401  (every command: the trial runs `dlcli train` / `dlcli cv`)
    import dlcli.cv.run  # noqa: F401
    import dlcli.training.build  # noqa: F401
    import dlcli.training.train  # noqa: F401
    from dlcli.registry import load_components

    load_components()
    try:
        _warm_up()
    except Exception:  # only a head start: a trial does the same itself (and reports what fails there)
        pass


def _warm_up() -> None:
    """Do once here what every run's first time costs (measured on a 1-epoch digits run: 1.2 s of a 2.9 s first
    run against the second): Hydra's first composition, reading the installed packages' metadata for the
    provenance record, and matplotlib's first drawing (fonts, text layout). Nothing here starts a thread, so
    forking stays safe."""
    import io

    import matplotlib.pyplot as plt

    from dlcli.config.compose import compose
    from dlcli.runs.provenance import requirements

    compose([], [])
    requirements()
    # one command through the CLI, its output captured: Typer's parameter conversion imports its adapters
    # (and pydantic) on first use, 0.2 s of every trial otherwise
    from typer.testing import CliRunner

    from dlcli.cli import app

    CliRunner().invoke(app, ["list", "model"])
    fig, ax = plt.subplots(figsize=(2, 2))
    ax.imshow([[0, 1], [1, 0]], cmap="Blues")
    ax.text(0, 0, "0", ha="center", va="center")
    ax.plot([1, 2], [1, 2], marker="o", label="train")
    ax.set_title("warm")
    ax.legend()
    fig.tight_layout()
    fig.savefig(io.BytesIO(), format="png", dpi=100)
    plt.close(fig)


if os.environ.get("DLCLI_WARM_PRELOAD") == "1":  # set for the forkserver only (see WarmLauncher)
    preload()


def _nothing() -> None:
    """The first child: starts the forkserver (and its preload)."""


def _child(argv: list[str], env: dict[str, str], log: str) -> None:
    """A trial, in the forked child: its environment and log, then ``dlcli ARGV``; exits with its exit code."""
    code = 1
    try:
        if sys.platform.startswith("linux"):  # SIGTERM when the forkserver goes (the sweep died): see launch.py
            from dlcli.sweep.launch import _die_with_parent

            _die_with_parent()
        os.environ.clear()
        os.environ.update(env)
        fd = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        sys.stdout.flush()
        sys.stderr.flush()
        os.dup2(fd, 1)
        os.dup2(fd, 2)
        os.close(fd)
        sys.stdin = open(os.devnull, encoding="utf-8")  # noqa: SIM115  (a trial reads nothing)
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C reaches the sweep, which stops the trials
        import dlcli

        # as `python dlcli/__main__.py ARGV`: what Lightning re-runs for the other processes of a multi-device trial
        sys.argv = [str(Path(dlcli.__file__).parent / "__main__.py"), *argv]
        from dlcli.cli import main

        try:
            main()
            code = 0
        except SystemExit as e:
            code = e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
    except BaseException:
        import traceback

        traceback.print_exc()
    finally:
        try:
            sys.stdout.flush()
            sys.stderr.flush()
        finally:
            os._exit(code)  # no atexit handlers of the forkserver's copy of the interpreter


def _start_server(ctx: Any) -> None:
    """Start the forkserver, once, with the preload switched on in its environment only: a first child that does
    nothing (trials started from several threads later find it running)."""
    previous = os.environ.get("DLCLI_WARM_PRELOAD")
    os.environ["DLCLI_WARM_PRELOAD"] = "1"
    try:
        first = ctx.Process(target=_nothing)
        first.start()
    finally:
        if previous is None:
            os.environ.pop("DLCLI_WARM_PRELOAD", None)
        else:
            os.environ["DLCLI_WARM_PRELOAD"] = previous
    first.join()


_early: Any = None  # the thread starting the forkserver ahead of the first trial (start_early)


def _context() -> Any:
    import multiprocessing

    ctx = multiprocessing.get_context("forkserver")
    ctx.set_forkserver_preload(PRELOAD)
    return ctx


def start_early() -> None:
    """Start the warm forkserver in the background now: its imports (seconds) overlap the sweep's own start-up
    (checking every swept value's config, opening the study) instead of delaying the first trial."""
    global _early
    import multiprocessing
    import threading

    if _early is None and "forkserver" in multiprocessing.get_all_start_methods():
        _early = threading.Thread(target=_start_server, args=(_context(),), daemon=True, name="dlcli-forkserver")
        _early.start()


class WarmLauncher:
    """Each trial a child of a warm forkserver on this machine; ``stop()`` terminates the ones still running.

    Takes the same commands as :class:`dlcli.sweep.launch.LocalLauncher` (``python -m dlcli ARGS``) and runs
    ``dlcli ARGS`` in the child, so either can run any trial."""

    def __init__(self) -> None:
        self.ctx = _context()
        self.procs: dict[int, Any] = {}
        if _early is not None:  # started ahead (start_early): wait until it is up
            _early.join()
        else:
            _start_server(self.ctx)

    def run(self, cmd: list[str], env: dict[str, str], log: Path, number: int) -> tuple[int, int | None]:
        """Run to the end; (exit code, process id). A child killed by a signal gives 128 + the signal."""
        argv = cmd[cmd.index("dlcli") + 1:] if "dlcli" in cmd else cmd
        proc = self.ctx.Process(target=_child, args=(argv, dict(env), str(log)), daemon=False)
        proc.start()
        self.procs[number] = proc
        try:
            proc.join()
            code = proc.exitcode
            return (128 - code if code is not None and code < 0 else code if code is not None else 1), proc.pid
        finally:
            self.procs.pop(number, None)

    def stop(self) -> None:
        for proc in list(self.procs.values()):
            if proc.is_alive():
                proc.terminate()
