"""How a command starts and ends: Python's cyclic garbage collector while it imports, and its exit.

Importing torch, Lightning and what they import (sympy, scipy, torchmetrics, matplotlib) makes about a million
long-lived objects, and each full collection the collector runs meanwhile walks all of them: 7 full
collections, 1.5-2 s of a 1-epoch digits run's start here, and none of those objects is garbage. So the CLI
pauses the collector as it starts (:func:`pause`), and a command that goes on to real work (fit, predict,
serve, a sweep's trials) calls :func:`settle` once its imports and building are done: what exists then is
frozen (left out of every later collection; reference counting still frees each object as usual) and the
collector runs again over what the work makes. This is the pattern ``gc.freeze``'s documentation gives.

Only a pause made here is settled: a program that imports dlcli as a library keeps its collector as it is.

And when the command is over (:func:`exit_after_atexit`): once every atexit handler has run, the process ends
with the command's exit code, without Python's teardown of its modules (0.3-0.4 s of freeing torch's and
Lightning's objects one by one here, memory the operating system takes back at once anyway).
"""

from __future__ import annotations

import atexit
import gc
import os
import sys

_paused = False


def pause() -> None:
    """Stop cyclic collections until :func:`settle` (the CLI's first step)."""
    global _paused
    if gc.isenabled():
        gc.disable()
        _paused = True


def settle() -> None:
    """The start-up is over: freeze what it made and collect as usual from here. Idempotent."""
    global _paused
    if _paused:
        _paused = False
        gc.freeze()
        gc.enable()


_exit_code: int | None = None


def exit_after_atexit() -> None:
    """Call first in the program (before anything registers an atexit handler): handlers run last-registered
    first, so this one runs after all the others and then ends the process with the code :func:`exiting`
    noted, flushing Python's standard streams first. Without a noted code, Python exits as usual."""
    atexit.register(_exit_now)


def exiting(code: int | None) -> None:
    """The command's exit code, for :func:`exit_after_atexit`; None: let Python exit as usual."""
    global _exit_code
    _exit_code = code


def _exit_now() -> None:
    if _exit_code is None:
        return
    for stream in (sys.stdout, sys.stderr):
        try:
            if stream is not None:
                stream.flush()
        except (OSError, ValueError):  # a closed pipe, a closed file: nothing more can reach it
            pass
    os._exit(_exit_code)
