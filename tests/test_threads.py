"""threads=auto: torch gets the free cores, and one thread for models too small to gain from more."""

from __future__ import annotations

import subprocess
import sys
import time

import pytest
import torch
from torch import nn

from dlcli.training import threads


def test_a_number_and_null_are_taken_as_given():
    assert threads.choose(3) == (3, "threads")
    assert threads.choose(None) == (None, "torch's default")


def test_auto_gives_one_thread_when_another_process_keeps_the_other_cores_busy(monkeypatch):
    monkeypatch.setattr(threads, "cores", lambda: 2)
    monkeypatch.setattr(threads, "busy_cores", lambda window=0.25: 1.0)
    big = nn.Linear(2048, 2048)
    assert threads.choose("auto", big, torch.zeros(64, 2048)) == (1, "auto: 1 of 2 cores free")


def test_auto_gives_a_small_model_one_thread_and_a_large_one_the_free_cores(monkeypatch):
    monkeypatch.setattr(threads, "cores", lambda: 4)
    monkeypatch.setattr(threads, "busy_cores", lambda window=0.25: 1.2)  # one core's worth busy elsewhere
    small, why = threads.choose("auto", nn.Linear(64, 10), torch.zeros(32, 64))
    assert small == 1 and why.startswith("auto: a small model (0.0 MFLOP a batch)")
    assert threads.choose("auto", nn.Linear(2048, 2048), torch.zeros(64, 2048)) == (3, "auto: 3 of 4 cores free")
    # on an accelerator the CPU only feeds the model: the free cores, at most 4
    assert threads.choose("auto", accelerator="cuda")[0] == 3


def test_step_flops_counts_a_forward_pass_and_leaves_the_model_as_it_was():
    model = nn.Sequential(nn.Linear(10, 20), nn.BatchNorm1d(20), nn.Linear(20, 5))
    before = {k: v.clone() for k, v in model.state_dict().items()}
    assert threads.step_flops(model, torch.randn(8, 10)) == 2 * 8 * (10 * 20 + 20 * 5)
    assert model.training
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())


@pytest.mark.slow
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc/stat")
def test_busy_cores_sees_a_busy_loop_that_started_a_moment_ago():
    hog = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        time.sleep(0.5)
        # at least the loop's core is busy (more when others run too); the load average would not show it yet
        assert threads.busy_cores() >= 0.7
    finally:
        hog.kill()
        hog.wait()


def test_the_run_header_says_how_many_threads_and_why(make_config):
    from rich.console import Console

    from dlcli.training.train import train

    console = Console(record=True, width=200)
    result = train(make_config("threads=auto", "trainer.max_epochs=1").config, console=console)
    text = console.export_text()
    line = next(ln for ln in text.splitlines() if ln.startswith("threads: "))
    # the default digits MLP is a small model: one thread, whatever the load
    assert line.startswith("threads: 1 (auto: ")
    assert result.summary["threads"] == 1
