"""Learning-rate schedules and their warmup: the rate each one gives, step by step, against its formula.

Each schedule is driven as Lightning drives it: step() once per optimiser step for interval "step",
once per epoch for "epoch" (with the monitored metric for plateau).
"""

from __future__ import annotations

import csv
import math

import pytest
import torch

from dlcli.errors import DlcliError
from dlcli.registry import SCHEDULERS, load_components
from dlcli.schedulers import build_scheduler

load_components()

LR = 0.1
EPOCHS, SPE = 6, 4  # a run of 6 epochs of 4 optimiser steps
TOTAL = EPOCHS * SPE


def run(node: dict, epochs: int = EPOCHS, spe: int = SPE, metrics=None) -> tuple[list[float], dict | None]:
    """The lr the optimiser holds before each of the run's steps, and after the last (epochs * spe + 1 values).

    ``metrics`` gives the monitored value at the end of each epoch, for plateau.
    """
    opt = torch.optim.SGD([torch.nn.Parameter(torch.ones(2))], lr=LR, momentum=0.9)
    sched = build_scheduler(node, opt, epochs, spe)
    lrs = []
    for epoch in range(epochs):
        for _ in range(spe):
            lrs.append(opt.param_groups[0]["lr"])
            opt.step()  # no gradients: nothing moves, but the scheduler sees the optimiser has stepped
            if sched is not None and sched["interval"] == "step":
                sched["scheduler"].step()
        if sched is not None and sched["interval"] == "epoch":
            if "monitor" in sched:
                sched["scheduler"].step(metrics[epoch])
            else:
                sched["scheduler"].step()
    lrs.append(opt.param_groups[0]["lr"])
    return lrs, sched


def at_epochs(lrs: list[float], spe: int = SPE) -> list[float]:
    """The rate each epoch starts with (what metrics.csv records)."""
    return lrs[:-1:spe]


def cosine_at(t: float, horizon: float, eta_min: float = 0.0, lr: float = LR) -> float:
    return eta_min + (lr - eta_min) * (1 + math.cos(math.pi * t / horizon)) / 2


def test_none_is_constant():
    lrs, sched = run({"name": "none"})
    assert sched is None and lrs == [LR] * (TOTAL + 1)


def test_step_decays_every_step_size_epochs():
    lrs, sched = run({"name": "step", "step_size": 2, "gamma": 0.5})
    assert sched["interval"] == "epoch"
    assert at_epochs(lrs) == pytest.approx([LR * 0.5 ** (e // 2) for e in range(EPOCHS)])
    assert len(set(lrs[4:8])) == 1  # constant within an epoch


def test_multistep_drops_at_the_milestones():
    lrs, sched = run({"name": "multistep", "milestones": [2, 5], "gamma": 0.1})
    assert sched["interval"] == "epoch"
    assert at_epochs(lrs) == pytest.approx([LR, LR, LR / 10, LR / 10, LR / 10, LR / 100])


def test_exponential_is_lr_times_gamma_to_the_epoch():
    lrs, sched = run({"name": "exponential", "gamma": 0.8})
    assert sched["interval"] == "epoch"
    assert at_epochs(lrs) == pytest.approx([LR * 0.8 ** e for e in range(EPOCHS)])


def test_cosine_anneals_smoothly_to_eta_min_at_the_last_step():
    lrs, sched = run({"name": "cosine", "eta_min": 0.001})
    assert sched["interval"] == "step"
    assert lrs == pytest.approx([cosine_at(t, TOTAL, 0.001) for t in range(TOTAL + 1)])
    assert lrs[-1] == pytest.approx(0.001) and lrs[TOTAL // 2] == pytest.approx((LR + 0.001) / 2)


def test_cosine_restarts_restart_at_t0_and_t0_plus_t0_times_tmult():
    lrs, sched = run({"name": "cosine_restarts", "T_0": 1, "T_mult": 2, "eta_min": 0.0}, epochs=7)
    assert sched["interval"] == "step"
    # cycles of 1, 2 and 4 epochs: restarts at epochs 1 and 3 (steps 4 and 12)
    for start, length in ((0, 4), (4, 8), (12, 16)):
        for t in range(length):
            assert lrs[start + t] == pytest.approx(cosine_at(t, length)), (start, t)
    assert lrs[3] < 0.02 and lrs[4] == pytest.approx(LR) and lrs[12] == pytest.approx(LR)


def test_onecycle_peaks_at_pct_start_and_ends_far_below_the_start():
    lrs, sched = run({"name": "onecycle", "pct_start": 0.25, "div_factor": 20.0, "final_div_factor": 100.0})
    assert sched["interval"] == "step"
    peak = round(0.25 * TOTAL) - 1  # torch counts the rise over steps 0 .. pct_start * total - 1
    assert lrs[0] == pytest.approx(LR / 20)
    assert max(lrs) == pytest.approx(LR) and lrs.index(max(lrs)) == peak
    # a cosine rise from LR / 20 to LR over steps 0 .. peak
    assert lrs[:peak + 1] == pytest.approx([LR - (LR - LR / 20) * (1 + math.cos(math.pi * t / peak)) / 2
                                            for t in range(peak + 1)])
    assert lrs[TOTAL - 1] == pytest.approx(LR / 20 / 100)  # the last step's rate


def test_onecycle_max_lr_overrides_the_optimizers_lr():
    lrs, _ = run({"name": "onecycle", "max_lr": 0.5, "pct_start": 0.25, "anneal_strategy": "linear",
                  "cycle_momentum": False})
    assert max(lrs) == pytest.approx(0.5) and lrs[0] == pytest.approx(0.5 / 25)


def test_onecycle_refuses_to_cycle_momentum_the_optimizer_lacks():
    opt = torch.optim.Adagrad([torch.nn.Parameter(torch.ones(2))], lr=LR)
    with pytest.raises(DlcliError, match="cycle_momentum=false"):
        build_scheduler({"name": "onecycle"}, opt, EPOCHS, SPE)


@pytest.mark.parametrize("power", [1.0, 2.0])
def test_polynomial_decays_to_min_lr(power):
    lrs, sched = run({"name": "polynomial", "power": power, "min_lr": 0.01})
    assert sched["interval"] == "step"
    assert lrs == pytest.approx([0.01 + (LR - 0.01) * (1 - t / TOTAL) ** power for t in range(TOTAL + 1)])


def test_plateau_reduces_after_patience_bad_epochs_and_never_below_min_lr():
    # improves at epoch 1, then flat: bad epochs 2, 3, 4 -> the third (> patience 2) reduces, and so on
    losses = [1.0, 0.9] + [0.9] * 10
    lrs, sched = run({"name": "plateau", "patience": 2, "factor": 0.5, "min_lr": 0.02}, epochs=12, metrics=losses)
    assert sched["interval"] == "epoch" and sched["monitor"] == "val/loss"
    assert at_epochs(lrs) == pytest.approx([LR] * 5 + [0.05] * 3 + [0.025] * 3 + [0.02])
    assert min(lrs) >= 0.02


def test_plateau_mode_auto_maximises_accuracy():
    accs = [0.5 + 0.01 * e for e in range(8)]  # rising accuracy: never a plateau
    lrs, sched = run({"name": "plateau", "monitor": "val/acc", "patience": 1}, epochs=8, metrics=accs)
    assert sched["scheduler"].mode == "max" and sched["monitor"] == "val/acc"
    assert set(lrs) == {LR}


# -- warmup -------------------------------------------------------------------------------------

NAMES = [n for n in SCHEDULERS.names() if n != "plateau"]
SPANS_THE_RUN = {"none": -1, "cosine": -1, "polynomial": -1, "onecycle": -2}
PARAMS = {"step": {"step_size": 1, "gamma": 0.5}, "multistep": {"milestones": [1, 2]},
          "exponential": {"gamma": 0.5}, "cosine_restarts": {"T_0": 1, "T_mult": 2}}


@pytest.mark.parametrize("name", NAMES)
def test_warmup_rises_linearly_to_the_schedules_start(name):
    node = {"name": name, **PARAMS.get(name, {})}
    start = run(node)[0][0]  # the schedule's own first rate (onecycle: max_lr / div_factor)
    lrs, sched = run({**node, "warmup_steps": 5, "warmup_start_factor": 0.2})
    assert sched["interval"] == "step"
    assert lrs[:6] == pytest.approx([start * (0.2 + 0.8 * t / 5) for t in range(6)])


@pytest.mark.parametrize("name", NAMES)
def test_warmup_epochs_then_the_schedule_runs_over_the_rest_of_the_run(name):
    node = {"name": name, **PARAMS.get(name, {})}
    lrs, _ = run({**node, "warmup_epochs": 2})
    # without warmup, the same schedule over the epochs the warmup leaves, shifted past the warmup
    rest, _ = run(node, epochs=EPOCHS - 2)
    assert lrs[0] == pytest.approx(0.01 * rest[0])
    assert lrs[2 * SPE:] == pytest.approx(rest)
    if name in SPANS_THE_RUN:  # ends where it would without warmup (onecycle: the last step trained)
        last = SPANS_THE_RUN[name]
        assert lrs[last] == pytest.approx(run(node)[0][last])


def test_warmup_steps_shorten_cosine_to_end_at_eta_min():
    lrs, _ = run({"name": "cosine", "eta_min": 0.001, "warmup_steps": 5})
    assert lrs[0] == pytest.approx(0.01 * LR)
    assert lrs[5:] == pytest.approx([cosine_at(t, TOTAL - 5, 0.001) for t in range(TOTAL - 5 + 1)])


def test_warmup_steps_before_an_epoch_schedule_step_it_every_epochs_worth_of_steps():
    lrs, _ = run({"name": "step", "step_size": 2, "gamma": 0.5, "warmup_steps": 6})
    # the schedule's epochs count from the warmup's end: drops 2 * SPE and 4 * SPE steps after it
    assert lrs[6:] == pytest.approx([LR * 0.5 ** ((t - 6) // (2 * SPE)) for t in range(6, TOTAL + 1)])


def test_warmup_with_none_is_warmup_then_constant():
    lrs, _ = run({"name": "none", "warmup_epochs": 1, "warmup_start_factor": 0.0})
    assert lrs == pytest.approx([LR * t / SPE for t in range(SPE)] + [LR] * (TOTAL - SPE + 1))


def test_warmup_epochs_before_plateau_then_plateau_judges_only_what_follows():
    # the good metrics of the 2 warmup epochs would make every later epoch look bad; they are ignored
    losses = [1.0, 1.0, 5.0, 4.0, 4.0, 4.0, 4.0, 4.0]
    lrs, sched = run({"name": "plateau", "patience": 1, "factor": 0.5, "warmup_epochs": 2}, epochs=8,
                     metrics=losses)
    assert sched["interval"] == "epoch" and sched["monitor"] == "val/loss" and sched["reduce_on_plateau"]
    # warmup by epoch: 0.01, 0.505, 1 x lr; then epoch 2 sets the best, 3 improves, 4 and 5 are bad
    # (> patience 1) -> the rate halves for epoch 6
    assert at_epochs(lrs) == pytest.approx([0.001, 0.0505, LR, LR, LR, LR, 0.05, 0.05])


def test_plateau_refuses_warmup_in_steps():
    with pytest.raises(DlcliError, match="use scheduler.warmup_epochs instead of warmup_steps"):
        run({"name": "plateau", "warmup_steps": 10}, metrics=[1.0] * EPOCHS)


def test_warmup_in_both_units_is_refused():
    with pytest.raises(DlcliError, match="give warmup_epochs or warmup_steps, not both"):
        run({"name": "cosine", "warmup_epochs": 1, "warmup_steps": 4})


def test_warmup_as_long_as_the_run_is_refused():
    with pytest.raises(DlcliError, match="leaves no room for the schedule"):
        run({"name": "cosine", "warmup_epochs": EPOCHS})


def test_warmup_state_survives_a_checkpoint_round_trip(tmp_path):
    """Lightning saves the scheduler's state_dict; dlcli reads checkpoints back with weights_only=True."""
    def make():
        opt = torch.optim.SGD([torch.nn.Parameter(torch.ones(2))], lr=LR)
        return opt, build_scheduler({"name": "cosine", "warmup_steps": 3}, opt, EPOCHS, SPE)["scheduler"]

    opt, sched = make()
    for _ in range(7):
        opt.step()
        sched.step()
    torch.save(sched.state_dict(), tmp_path / "s.pt")
    opt2, sched2 = make()
    sched2.load_state_dict(torch.load(tmp_path / "s.pt", weights_only=True))
    opt2.param_groups[0]["lr"] = opt.param_groups[0]["lr"]  # the optimiser's own state is restored separately
    for _ in range(5):
        opt.step()
        sched.step()
        opt2.step()
        sched2.step()
    assert opt2.param_groups[0]["lr"] == pytest.approx(opt.param_groups[0]["lr"])
    assert opt.param_groups[0]["lr"] == pytest.approx(cosine_at(12 - 3, TOTAL - 3))


def test_training_with_warmup_and_cosine_records_the_schedule(tmp_path):
    from dlcli.config.compose import compose
    from dlcli.training.train import train

    c = compose([f"output_dir={tmp_path / 'o'}", "optimizer=sgd", "optimizer.lr=0.1", "scheduler=cosine",
                 "scheduler.warmup_epochs=2", "trainer.max_epochs=6", "~callbacks.early_stopping",
                 "trainer.enable_progress_bar=false", "trainer.accelerator=cpu", "threads=1"])
    r = train(c.config, c.overrides)
    rows = list(csv.DictReader((r.run_dir / "metrics.csv").open()))
    assert len(rows) == 6
    # the lr column is the rate each epoch starts with: warmup over epochs 0-1, then cosine over epochs 2-5
    expected = [0.1 * 0.01, 0.1 * (0.01 + 0.99 / 2)] + [cosine_at(e, 4) for e in range(4)]
    assert [float(r["lr"]) for r in rows] == pytest.approx(expected, rel=1e-6)
