"""Sweeps: a real `dlcli sweep` process per test, each trial a real `dlcli train` subprocess (tiny runs)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from dlcli.cli import app

optuna = pytest.importorskip("optuna")
pytestmark = pytest.mark.slow  # sweeps: several trainings each, some in subprocesses

FAST = ["trainer.enable_progress_bar=false", "trainer.accelerator=cpu", "threads=1"]  # as conftest.py
TINY = [*FAST, "data=iris", "trainer.max_epochs=1"]


def sweep(*args: str, cwd: Path, timeout: float = 240) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "dlcli", "sweep", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=timeout, env={**os.environ, "PYTHONPATH": str(Path(__file__).parents[1])})


def runs(out: Path, sweep_name: str) -> list[dict]:
    """The summary.json of every run folder of this sweep, with its folder."""
    found = []
    for p in sorted(out.iterdir()):
        if (p / "summary.json").is_file():
            s = json.loads((p / "summary.json").read_text())
            if s.get("sweep") == sweep_name:
                found.append({**s, "dir": p})
    return found


def study(out: Path, name: str):
    return optuna.load_study(study_name=name, storage=f"sqlite:///{out / 'sweeps' / name / 'study.db'}")


@pytest.fixture(scope="module")
def grid(tmp_path_factory):
    """A 2x2 grid (optimizer.lr x model) on digits, two trials at a time."""
    tmp = tmp_path_factory.mktemp("grid")
    out = tmp / "outputs"
    proc = sweep("optimizer.lr=0.001,0.01", "model=mlp,perceptron", *FAST, "data=digits", "trainer.max_epochs=1",
                 f"output_dir={out}", "--name", "lr-model", "--jobs", "2", cwd=tmp)
    return proc, out


def test_grid_sweep_makes_one_completed_run_per_combination(grid):
    proc, out = grid
    assert proc.returncode == 0, proc.stderr
    found = runs(out, "lr-model")
    assert sorted(r["trial"] for r in found) == [0, 1, 2, 3]
    assert all(r["status"] == "completed" and r["data"] == "digits" for r in found)
    combos = {(r["model"], yaml_lr(r["dir"])) for r in found}
    assert combos == {("mlp", 0.001), ("mlp", 0.01), ("perceptron", 0.001), ("perceptron", 0.01)}
    s = study(out, "lr-model")
    assert [t.state.name for t in s.trials] == ["COMPLETE"] * 4
    assert s.direction.name == "MAXIMIZE"  # the monitored metric, val/acc, for a classification run
    by_trial = {r["trial"]: r for r in found}
    for t in s.trials:  # each trial's value is its run's best val/acc, and the run is linked back
        assert t.value == pytest.approx(by_trial[t.number]["best"]["value"])
        assert Path(t.user_attrs["run_dir"]) == by_trial[t.number]["dir"]
    best = max(found, key=lambda r: r["best"]["value"])
    assert f"best: trial {best['trial']}, val/acc = {best['best']['value']:.4f}" in proc.stdout
    assert "trial 3 completed" in proc.stderr  # not a terminal: one plain line per event, no live table


def test_jobs_2_runs_two_trials_at_once(grid):
    _, out = grid
    trials = study(out, "lr-model").trials
    spans = sorted((t.user_attrs["started"], t.user_attrs["finished"]) for t in trials)
    # the first two start together and each starts before the other ends
    (a0, a1), (b0, b1) = spans[0], spans[1]
    assert b0 < a1 and a0 < b1
    # the runs' own intervals overlap too (run ids start with the start second; duration_s from summary.json)
    found = sorted(runs(out, "lr-model"), key=lambda r: r["dir"].name)
    first, second = found[0], found[1]
    t0 = time.mktime(time.strptime(first["started_at"][:19], "%Y-%m-%dT%H:%M:%S"))
    t1 = time.mktime(time.strptime(second["started_at"][:19], "%Y-%m-%dT%H:%M:%S"))
    assert t1 <= t0 + first["duration_s"] + 1


def test_runs_compare_of_the_sweep_shows_exactly_the_swept_keys_sorted(grid):
    _, out = grid
    result = CliRunner().invoke(app, ["runs", "compare", "--sweep", "lr-model", "--sort", "val/acc", "--format", "csv",
                                      "--output-dir", str(out)])
    assert result.exit_code == 0, result.output
    import csv
    import io

    rows = list(csv.DictReader(io.StringIO(result.stdout)))
    assert len(rows) == 4
    config_columns = [c for c in rows[0] if c not in ("run", "name", "status") and "/" not in c]
    assert sorted(config_columns) == ["model", "optimizer.lr"], rows[0].keys()
    accs = [float(r["val/acc"]) for r in rows]
    assert accs == sorted(accs, reverse=True)


def yaml_lr(run_dir: Path) -> float:
    from omegaconf import OmegaConf

    return float(OmegaConf.load(run_dir / "config.yaml").optimizer.lr)


@pytest.mark.slow
def test_a_killed_sweep_resumes_with_only_the_remaining_trials(tmp_path):
    out = tmp_path / "outputs"
    # trials of 40 epochs (a few seconds each): trial 1 is still running when the kill comes
    args = [sys.executable, "-m", "dlcli", "sweep", "optimizer.lr=0.001,0.002,0.003", *FAST, "data=iris",
            "trainer.max_epochs=40", "~callbacks.early_stopping", f"output_dir={out}", "--name", "killed"]
    # its own process group: the kill below takes the running trial with it, as a killed job's would go
    # (a trial left running could finish on its own after the sweep died, and the resume then runs it again)
    proc = subprocess.Popen(args, cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            env={**os.environ, "PYTHONPATH": str(Path(__file__).parents[1])}, start_new_session=True)
    try:
        deadline = time.time() + 180
        while time.time() < deadline:  # wait until trial 0 is done and trial 1 has its run folder
            found = runs(out, "killed") if out.is_dir() else []
            if any(r["trial"] == 0 and r["status"] == "completed" for r in found) and \
                    any(r["trial"] == 1 for r in found):
                break
            time.sleep(0.2)
        else:
            pytest.fail("the sweep did not get to its second trial")
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(10)
    finally:
        if proc.poll() is None:
            proc.kill()
    s = study(out, "killed")
    assert [t.state.name for t in s.trials] == ["COMPLETE", "RUNNING"]  # a kill tells the study nothing

    resumed = sweep("resume", "killed", f"output_dir={out}", cwd=tmp_path)
    assert resumed.returncode == 0, resumed.stderr
    assert "trial 0 started" not in resumed.stderr  # the completed trial is skipped
    assert "trial 1 started (again, interrupted before)" in resumed.stderr
    s = study(out, "killed")
    assert [(t.number, t.state.name) for t in s.trials] == [(0, "COMPLETE"), (1, "COMPLETE"), (2, "COMPLETE")]
    found = runs(out, "killed")
    assert sum(r["trial"] == 0 for r in found) == 1  # trial 0 never ran again
    completed = sorted(r["trial"] for r in found if r["status"] == "completed")
    assert completed == [0, 1, 2]
    # the killed attempt of trial 1 keeps its own folder (never overwritten): it stopped when the sweep died,
    # marked interrupted, or (killed before its signal handlers were up) recognisably dead
    from dlcli.runs.folder import run_status

    killed = [run_status(r["dir"]) for r in found if r["trial"] == 1 and r["status"] != "completed"]
    assert killed in ([], ["interrupted"], ["dead"])


@pytest.mark.slow
def test_tpe_sweep_over_a_log_interval_lives_in_sqlite_and_resume_adds_trials(tmp_path):
    out = tmp_path / "outputs"
    proc = sweep("optimizer.lr=tag(log, interval(1e-4, 1e-1))", *TINY, f"output_dir={out}", "--strategy", "tpe",
                 "--trials", "8", "--jobs", "2", "--name", "tpe", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    db = out / "sweeps" / "tpe" / "study.db"
    assert db.read_bytes()[:15] == b"SQLite format 3"
    s = study(out, "tpe")
    assert len(s.trials) == 8 and all(t.state.name == "COMPLETE" for t in s.trials)
    lrs = [t.params["optimizer.lr"] for t in s.trials]
    assert all(1e-4 <= lr <= 1e-1 for lr in lrs) and len(set(lrs)) == 8
    dist = s.trials[0].distributions["optimizer.lr"]
    assert dist.log and (dist.low, dist.high) == (1e-4, 1e-1)
    assert f"best: trial {s.best_trial.number}, val/acc = {s.best_value:.4f}" in proc.stdout
    assert f"optimizer.lr={s.best_params['optimizer.lr']!r}" in proc.stdout

    more = sweep("resume", "tpe", f"output_dir={out}", "--trials", "2", "--jobs", "2", cwd=tmp_path)
    assert more.returncode == 0, more.stderr
    s = study(out, "tpe")
    assert [t.number for t in s.trials] == list(range(10))  # the same study, numbering going on
    assert all(t.state.name == "COMPLETE" for t in s.trials)
    assert sorted(r["trial"] for r in runs(out, "tpe")) == list(range(10))


@pytest.mark.slow
def test_a_diverging_trial_is_marked_failed_and_the_others_finish(tmp_path):
    out = tmp_path / "outputs"
    proc = sweep("optimizer=sgd", "optimizer.lr=0.01,1e30,0.02", *TINY, f"output_dir={out}", "--name", "div",
                 "--jobs", "2", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr  # --on-failure continue: the sweep itself succeeds
    s = study(out, "div")
    states = {t.params["optimizer.lr"]: t.state.name for t in s.trials}
    assert states == {0.01: "COMPLETE", 1e30: "FAIL", 0.02: "COMPLETE"}
    failed = next(t for t in s.trials if t.state.name == "FAIL")
    assert "nan" in failed.user_attrs["error"].lower() or "inf" in failed.user_attrs["error"].lower()
    assert json.loads((Path(failed.user_attrs["run_dir"]) / "summary.json").read_text())["status"] == "failed"
    assert "2 completed, 1 failed" in proc.stdout


@pytest.mark.parametrize(("args", "message"), [
    (["model=mlp", "optimizer.lr=0.01"], "no sweep in the overrides"),
    (["resume", "nope"], "no sweep 'nope'"),
    (["optimizer.lr=interval(0.001,0.1)", "--strategy", "random"], "needs --trials N"),
    (["optimizer.lr=interval(0.001,0.1)", "--strategy", "grid"], "continuous interval"),
    (["optimizer.lr=0.1,0.2", "--storage", "nosuchdb://x/y"], "--storage 'nosuchdb://x/y': cannot open"),
    (["optimizer.lr=0.1,0.2", "model=mlp,mlpp"], "Did you mean 'model=mlp'?"),
    (["optimizer.lr=0.1,0.2", "--on-failure", "maybe"], "choose continue or stop"),
    (["optimizer.lr=0.1,0.2", "--pruner", "nope"], "--pruner nope: choose one of none, median, percentile"),
    (["optimizer.lr=0.1,0.2", "--pruner", "median", "--metric", "test/acc"], "test/acc is not measured every epoch"),
])
def test_clear_errors_exit_2_before_any_trial(tmp_path, monkeypatch, args, message):
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(app, ["sweep", *args, f"output_dir={tmp_path / 'out'}"])
    assert result.exit_code == 2, result.output
    assert message in result.output
    assert not any((tmp_path / "out").glob("2*"))  # no run folder


def test_train_multirun_is_a_grid_sweep(tmp_path, monkeypatch):
    seen = {}

    def fake_run(spec, space):
        seen.update(strategy=spec.strategy, trials=spec.trials, overrides=[p.key for p in space.params])
        return 0

    monkeypatch.setattr("dlcli.cli.sweep.run", fake_run)
    result = CliRunner().invoke(app, ["train", "-m", "optimizer.lr=0.001,0.01", "model=mlp,perceptron",
                                      f"output_dir={tmp_path}"])
    assert result.exit_code == 0, result.output
    assert seen == {"strategy": "grid", "trials": 4, "overrides": ["optimizer.lr", "model"]}


def test_space_maps_hydra_sweeps_to_optuna_distributions():
    from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

    from dlcli.sweep.space import parse_space

    space = parse_space(["a=1,2", "b=choice(x,y)", "c=range(1,7,2)", "d=interval(0,1)",
                         "e=tag(log, interval(1e-4, 1e-1))", "f=tag(int, interval(2, 8))", "seed=3"])
    dists = space.distributions("tpe")
    assert dists["a"] == CategoricalDistribution([1, 2]) and dists["b"] == CategoricalDistribution(["x", "y"])
    assert dists["c"] == IntDistribution(1, 5, step=2)
    assert dists["d"] == FloatDistribution(0.0, 1.0) and dists["e"] == FloatDistribution(1e-4, 1e-1, log=True)
    assert dists["f"] == IntDistribution(2, 8)
    assert space.fixed == ["seed=3"] and not space.discrete
    grid = parse_space(["model=mlp,cnn", "c=range(1,4)"])
    assert grid.grid_size() == 6 and grid.distributions("grid")["c"] == CategoricalDistribution([1, 2, 3])
    assert grid.overrides({"model": "cnn", "c": 3}) == ["model=cnn", "c=3"]


def test_a_grid_is_asked_in_hydra_order_and_a_reloaded_study_goes_on_where_it_stopped(tmp_path):
    from dlcli.errors import DlcliError
    from dlcli.sweep.space import parse_space
    from dlcli.sweep.study import SweepSpec, create_or_load, enqueue_next_grid_point, plan

    overrides = ["optimizer.lr=0.01,0.001", "model=perceptron,mlp,cnn"]
    space = parse_space(overrides)
    spec = SweepSpec(name="order", overrides=overrides, strategy="grid", trials=6, metric="val/acc",
                     direction="maximize", seed=0, output_dir=str(tmp_path),
                     storage=f"sqlite:///{tmp_path / 'study.db'}")
    expected = [{"optimizer.lr": lr, "model": m} for lr in (0.01, 0.001) for m in ("perceptron", "mlp", "cnn")]

    def ask(study):  # as the sweep asks for a fresh trial
        enqueue_next_grid_point(study, space.grid())
        return study.ask(space.distributions("grid")).params

    study = create_or_load(spec, space)
    asked = [ask(study) for _ in range(2)]
    study = create_or_load(spec, space)  # a resumed sweep goes on with the next point
    assert [t.state.name for t in study.trials] == ["RUNNING", "RUNNING"]  # nothing waiting: enqueued one by one
    assert [w.kind for w in plan(study, spec)] == ["ask"] * 4
    asked += [ask(study) for _ in range(4)]
    assert asked == expected  # first key slowest, values as written
    with pytest.raises(DlcliError, match="no enqueued value for"):  # a grid never samples a point of its own
        ask(study)


def test_slurm_launcher_builds_submitit_executor_or_refuses_clearly(tmp_path, monkeypatch):
    from dlcli.errors import DlcliError
    from dlcli.sweep.launch import slurm_executor

    pytest.importorskip("submitit")
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    with pytest.raises(DlcliError, match="srun"):
        slurm_executor(tmp_path, {})
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "srun").write_text("#!/bin/sh\nexit 0\n")
    (bin_dir / "srun").chmod(0o755)
    monkeypatch.setenv("PATH", str(bin_dir))
    executor = slurm_executor(tmp_path, {"slurm_partition": "gpu", "timeout_min": 30})
    assert executor.cluster == "slurm"
    assert executor._executor.parameters["partition"] == "gpu"
    monkeypatch.setitem(sys.modules, "submitit", None)  # as if the extra were not installed
    with pytest.raises(DlcliError, match=r"pip install 'dlcli\[slurm\]'"):
        slurm_executor(tmp_path, {})


GOOD_LRS, SLOW_LRS, DIVERGING_LRS = [0.1, 0.3, 0.05, 0.2], [1e-5, 3e-5, 1e-4, 3e-4, 1e-6, 5e-6], [50.0, 1e30]


def test_median_pruning_stops_slow_and_diverging_trials_and_resume_leaves_them(tmp_path):
    """12 trials: 4 good rates first (the pruner's start-up trials), then very slow and diverging ones."""
    out = tmp_path / "outputs"
    lrs = GOOD_LRS + SLOW_LRS + DIVERGING_LRS
    common = ["optimizer=sgd", f"optimizer.lr={','.join(map(str, lrs))}", *FAST, "data=iris",
              "trainer.max_epochs=5", "~callbacks.early_stopping", f"output_dir={out}"]
    pruned = sweep(*common, "--name", "pruned", "--pruner", "median", "--min-epochs", "1", cwd=tmp_path)
    full = sweep(*common, "--name", "full", "--jobs", "2", cwd=tmp_path)  # the same trials, none pruned
    assert pruned.returncode == 0, pruned.stderr
    assert full.returncode == 0, full.stderr

    s = study(out, "pruned")
    states = {t.params["optimizer.lr"]: t.state.name for t in s.trials}
    assert len(states) == 12 and all(states[lr] == "COMPLETE" for lr in GOOD_LRS)
    stopped = {lr for lr, state in states.items() if state == "PRUNED"}
    assert len(stopped) >= 4 and stopped <= set(SLOW_LRS + DIVERGING_LRS), states
    assert states[1e30] in ("PRUNED", "FAIL")  # NaN in its first epoch: failed before any report
    assert all(len(t.intermediate_values) == 5 for t in s.trials if t.state.name == "COMPLETE")  # every epoch
    assert f"4 completed, {len(stopped)} pruned" in pruned.stdout

    by_trial = {r["trial"]: r for r in runs(out, "pruned")}
    for t in s.trials:
        if t.state.name == "PRUNED":
            run = by_trial[t.number]
            assert run["status"] == "pruned" and run["pruned_after_epoch"] < 4 and run["epochs"] < 5
            assert (run["dir"] / "checkpoints" / "last.ckpt").is_file()  # ended cleanly: its checkpoint kept
            assert not any(k.startswith("test/") for k in run["metrics"])  # not worth testing
    trained = sum(r["epochs"] for r in by_trial.values())
    assert trained < sum(r["epochs"] for r in runs(out, "full")), "pruning saved no epochs"

    listing = CliRunner().invoke(app, ["runs", "ls", "--sweep", "pruned", "--output-dir", str(out)])
    assert listing.exit_code == 0 and listing.output.count("  pruned  ") == len(stopped), listing.output
    compared = CliRunner().invoke(app, ["runs", "compare", "--sweep", "pruned", "--output-dir", str(out),
                                        "--format", "csv"])
    assert compared.exit_code == 0 and compared.output.count(",pruned,") == len(stopped), compared.output

    failed = [t.number for t in s.trials if t.state.name == "FAIL"]  # tried once more; a pruned one never
    resumed = sweep("resume", "pruned", f"output_dir={out}", cwd=tmp_path)
    assert resumed.returncode == 0, resumed.stderr
    started = [line for line in resumed.stderr.splitlines() if " started" in line]
    assert [line.split(":")[0] for line in started] == [f"trial 12 started (retry of failed trial {n})"
                                                        for n in failed], resumed.stderr
    assert len(runs(out, "pruned")) == 12 + len(failed)
    assert sum(t.state.name == "PRUNED" for t in study(out, "pruned").trials) == len(stopped)


def test_a_cross_validated_sweep_optimises_the_folds_mean(tmp_path):
    out = tmp_path / "outputs"
    proc = sweep("optimizer.lr=0.0003,0.03", *FAST, "data=iris", "trainer.max_epochs=3", f"output_dir={out}",
                 "--cv", "3", "--name", "cvs", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    s = study(out, "cvs")
    assert [t.state.name for t in s.trials] == ["COMPLETE", "COMPLETE"]
    for t in s.trials:
        record = json.loads((out / "cv" / f"cvs-trial-{t.number}" / "cv.json").read_text())
        assert record["status"] == "completed" and len(record["runs"]) == 3
        folds = [json.loads((Path(r["run_dir"]) / "summary.json").read_text()) for r in record["runs"]]
        assert {(f["sweep"], f["trial"]) for f in folds} == {("cvs", t.number)}  # the folds name their trial
        mean = sum(f["metrics"]["val/acc"] for f in folds) / 3
        assert abs(t.value - mean) < 1e-9 and t.user_attrs["run_dir"] == str(out / "cv" / f"cvs-trial-{t.number}")
    assert s.best_trial.params["optimizer.lr"] == 0.03  # 3 epochs at 0.0003 barely move: below 0.03's mean
    assert "--group-by cv.id" in proc.stdout


def test_pruning_a_cross_validated_sweep_is_refused_before_any_trial(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(app, ["sweep", "optimizer.lr=0.1,0.2", "--cv", "3", "--pruner", "median",
                                      f"output_dir={tmp_path / 'out'}"])
    assert result.exit_code == 2 and "--pruner median with --cv 3" in result.output
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").glob("2*"))


def test_killing_one_warm_trial_fails_only_that_trial_and_resume_runs_it_again(tmp_path):
    """Trials are forked from a warm process: one killed with SIGKILL ends alone; the sweep goes on."""
    out = tmp_path / "outputs"
    # trial 1 trains long enough to be caught running
    args = [sys.executable, "-m", "dlcli", "sweep", "trainer.max_epochs=1,20,1", "~callbacks.early_stopping", *FAST,
            "data=digits", f"output_dir={out}", "--name", "kill1"]
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).parents[1])}
    proc = subprocess.Popen(args, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    killed = None
    try:
        deadline = time.time() + 180
        while time.time() < deadline and killed is None:  # trial 1's process, once its run folder says running
            for r in runs(out, "kill1") if out.is_dir() else []:
                if r["trial"] == 1 and r["status"] == "running":
                    killed = r["pid"]
                    os.kill(killed, signal.SIGKILL)
            time.sleep(0.05)
        assert killed is not None, "trial 1 never started"
        stdout, stderr = proc.communicate(timeout=180)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, stderr  # --on-failure continue
    assert killed != proc.pid  # the trial's own process, not the sweep's
    s = study(out, "kill1")
    assert [(t.number, t.state.name) for t in s.trials] == [(0, "COMPLETE"), (1, "FAIL"), (2, "COMPLETE")]
    assert "killed (SIGKILL)" in s.trials[1].user_attrs["error"]
    assert "trial 1 failed" in stderr and "2 completed, 1 failed" in stdout

    resumed = sweep("resume", "kill1", f"output_dir={out}", cwd=tmp_path)
    assert resumed.returncode == 0, resumed.stderr
    assert "trial 3 started (retry of failed trial 1)" in resumed.stderr
    assert study(out, "kill1").trials[3].state.name == "COMPLETE"


def test_each_pruner_name_builds_its_optuna_pruner_starting_after_min_epochs():
    from dlcli.sweep.prune import make_pruner

    median = make_pruner("median", 3, 12)
    assert isinstance(median, optuna.pruners.MedianPruner)
    assert isinstance(make_pruner("percentile", 3, 12), optuna.pruners.PercentilePruner)
    assert isinstance(make_pruner("hyperband", 3, 12), optuna.pruners.HyperbandPruner)
    assert isinstance(make_pruner("asha", 3, 12), optuna.pruners.SuccessiveHalvingPruner)
    assert isinstance(make_pruner("none", 3, 12), optuna.pruners.NopPruner)
    # a median trial is never stopped before epoch 3 (0-based steps 0-2), whatever it reports
    study = optuna.create_study(direction="maximize", pruner=median)
    for value in (0.9, 0.9, 0.9, 0.9, 0.9):  # start-up trials: min(5, max(2, 12 // 3)) = 4 finish first
        t = study.ask()
        for step in range(5):
            t.report(value, step)
        study.tell(t, value)
    bad = study.ask()
    stops = []
    for step in range(5):
        bad.report(0.1, step)
        stops.append(bad.should_prune())
    assert stops == [False, False, False, True, True]


def test_trials_per_job_runs_a_jobs_trials_one_after_another_each_its_own_process(tmp_path):
    """SLURM jobs of 2 trials, submitted through submitit's local executor (the same job machinery without a
    cluster): 3 trials make 2 jobs (2 together, the last alone once no other came); a failing trial ends
    only itself; each trial is its own process with its own run folder and log."""
    import threading

    submitit = pytest.importorskip("submitit")
    from dlcli.sweep.launch import SlurmLauncher, find_run, outcome, train_command, trial_env

    executor = submitit.LocalExecutor(folder=str(tmp_path / "jobs"))
    executor.update_parameters(timeout_min=10)
    launcher = SlurmLauncher(tmp_path, {}, trials_per_job=2, executor=executor, gather_s=1.0)
    out = tmp_path / "outputs"
    codes, started = {}, time.time()
    extra = {0: [], 1: ["optimizer.lr=-1"], 2: ["seed=3"]}  # trial 1 is refused (exit 2) in the first job

    def trial(n):
        cmd = train_command(["data=iris", "trainer.max_epochs=2", "threads=1", "trainer.enable_progress_bar=false",
                             *extra[n]], str(out), [], [])
        codes[n] = launcher.run(cmd, trial_env("tpj", n, None), tmp_path / f"trial-{n}.log", n)[0]

    threads = []
    for n in range(3):
        threads.append(threading.Thread(target=trial, args=(n,)))
        threads[-1].start()
        time.sleep(0.2 if n == 0 else 3.0)  # 0 and 1 gathered together; 2 arrives after the gathering ended
    for t in threads:
        t.join(600)
    assert codes == {0: 0, 1: 2, 2: 0}
    jobs = {p.name.split("_")[0] for p in (tmp_path / "jobs").glob("*_submitted.pkl")}
    assert len(jobs) == 2
    assert "optimizer.lr" in (tmp_path / "trial-1.log").read_text()
    runs = {n: find_run(str(out), "tpj", n, started, None) for n in (0, 2)}
    assert runs[0] and runs[2] and runs[0] != runs[2]
    pids = {json.loads((runs[n] / "summary.json").read_text())["pid"] for n in (0, 2)}
    assert len(pids) == 2  # each trial its own process
    for n in (0, 2):
        result = outcome(runs[n], codes[n], "val/acc", tmp_path / f"trial-{n}.log")
        assert result.status == "completed" and result.value >= 0.5
        assert "run folder:" in (tmp_path / f"trial-{n}.log").read_text()


def test_trials_per_job_needs_the_slurm_launcher(tmp_path):
    result = CliRunner().invoke(app, ["sweep", "optimizer.lr=0.1,0.2", "--trials-per-job", "2",
                                      f"output_dir={tmp_path}"])
    assert result.exit_code == 2
    assert "--trials-per-job 2 groups trials into SLURM jobs: add --launcher slurm" in " ".join(result.output.split())
    assert not (tmp_path / "sweeps").exists()


def test_a_misspelt_metric_is_refused_before_any_trial(tmp_path):
    from typer.testing import CliRunner

    from dlcli.cli import app

    out = tmp_path / "outputs"
    result = CliRunner().invoke(app, ["sweep", "--metric", "val/accc", "optimizer.lr=1e-3,1e-2", "data=iris",
                                      "threads=1", "trainer.max_epochs=1", f"output_dir={out}"])
    assert result.exit_code == 2, result.output
    assert "--metric 'val/accc' is no metric a run logs. Did you mean 'val/acc'?" in " ".join(result.stderr.split())
    assert not out.exists() or not any(out.rglob("summary.json"))
