"""``threads: auto``: how many CPU threads torch gets, from the free cores and the model's work per step.

Torch's default (one thread per core) is fast on an idle machine and for large models, but on a shared
machine its threads spin while they wait for each other: a small model on 2 busy cores trained 15-30x
slower than on one thread (bench/threads.py). So ``auto`` gives torch only the cores that no other
process is using, measured over a short window when the run starts, and a single thread to models too
small for a second thread to pay off.
"""

from __future__ import annotations

import os
import time
from typing import Any

# Forward FLOPs per training batch below which a second thread does not pay off (bench/threads.py:
# the digits MLP, ~0.3 MFLOP a batch, trains fastest on one thread; a 28x28 CNN, ~1 GFLOP, gains ~1.6x
# from two on an idle machine).
SMALL_STEP_FLOPS = 50e6


def cores() -> int:
    """The CPU cores this process may run on (its affinity mask, e.g. a container's or taskset's share)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def _cpu_times() -> tuple[float, float] | None:
    """(busy, total) jiffies of all CPUs from /proc/stat; None where there is no /proc."""
    try:
        with open("/proc/stat") as f:
            fields = [float(v) for v in f.readline().split()[1:]]
    except OSError:
        return None
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0.0)  # idle + iowait
    return sum(fields) - idle, sum(fields)


def busy_cores(window: float = 0.25) -> float:
    """How many cores other processes keep busy now: /proc/stat over ``window`` seconds while this process
    sleeps, else the 1-minute load average (which lags a minute behind a process that just started)."""
    before = _cpu_times()
    if before is not None:
        time.sleep(window)
        after = _cpu_times()
        if after is not None and after[1] > before[1]:
            share = (after[0] - before[0]) / (after[1] - before[1])  # of all the machine's CPUs
            return share * (os.cpu_count() or 1)
    try:
        return os.getloadavg()[0]
    except (AttributeError, OSError):
        return 0.0


def step_flops(model: Any, batch: Any) -> float | None:
    """Forward FLOPs of ``model`` on one batch (torch's FlopCounterMode); None when it cannot be counted."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    was_training = model.training
    model.eval()  # no batch-norm statistics change
    try:
        with torch.no_grad(), FlopCounterMode(display=False) as counter:
            model(batch)
        return float(counter.get_total_flops())
    except (RuntimeError, TypeError, ValueError):  # e.g. a model that needs more than its input
        return None
    finally:
        model.train(was_training)


def choose(setting: int | str | None, model: Any = None, batch: Any = None,
           accelerator: str = "cpu") -> tuple[int | None, str]:
    """(threads for torch.set_num_threads, or None to keep torch's default; why), for a ``threads`` setting."""
    if setting is None:
        return None, "torch's default"
    if setting != "auto":
        return int(setting), "threads"
    n = cores()
    free = max(1, min(n, round(n - busy_cores())))
    why = f"{free} of {n} cores free"
    if free == 1:
        return 1, f"auto: {why}"
    if accelerator != "cpu":  # the model runs on the device; the CPU only feeds it
        return min(free, 4), f"auto: {why}, model on {accelerator}"
    flops = step_flops(model, batch) if model is not None and batch is not None else None
    if flops is not None and flops < SMALL_STEP_FLOPS:
        return 1, f"auto: a small model ({flops / 1e6:.1f} MFLOP a batch), {why}"
    return free, f"auto: {why}"
