"""Python's cyclic garbage collector while a command starts.

Importing torch, Lightning and what they import (sympy, scipy, torchmetrics, matplotlib) makes about a million
long-lived objects, and each full collection the collector runs meanwhile walks all of them: 7 full
collections, 1.5-2 s of a 1-epoch digits run's start here, and none of those objects is garbage. So the CLI
pauses the collector as it starts (:func:`pause`), and a command that goes on to real work (fit, predict,
serve, a sweep's trials) calls :func:`settle` once its imports and building are done: what exists then is
frozen (left out of every later collection; reference counting still frees each object as usual) and the
collector runs again over what the work makes. This is the pattern ``gc.freeze``'s documentation gives.

Only a pause made here is settled: a program that imports dlcli as a library keeps its collector as it is.
"""

from __future__ import annotations

import gc

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
