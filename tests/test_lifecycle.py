"""A run's life: reproducible to the byte, stopped when it diverges, refused when it cannot be saved, its
checkpoints always whole and tensors-only, and its status telling a live run from a dead one."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from datetime import datetime, timedelta, timezone

import pytest
import torch
from typer.testing import CliRunner

from dlcli.cli import app
from dlcli.runs.folder import run_status
from dlcli.training.checkpoint_io import save_atomic
from dlcli.training.train import train

runner = CliRunner()


@pytest.fixture(autouse=True)
def restore_determinism():
    """trainer.deterministic=true switches torch's deterministic algorithms on for the whole process."""
    before = torch.are_deterministic_algorithms_enabled()
    yield
    torch.use_deterministic_algorithms(before)


@pytest.mark.slow
def test_same_seed_deterministic_runs_write_identical_metrics_csv(make_config):
    args = ["trainer.deterministic=true", "seed=11", "model.dropout=0.3", "model.hidden=[32]", "trainer.max_epochs=3"]
    first, second = (train(make_config(*args).config) for _ in range(2))
    assert first.run_dir != second.run_dir
    text = (first.run_dir / "metrics.csv").read_text()
    assert text == (second.run_dir / "metrics.csv").read_text()
    assert text.splitlines()[0] == "epoch,step,train/loss,val/acc,val/loss,lr"  # no wall time in it
    assert first.metrics == second.metrics
    summary = json.loads((first.run_dir / "summary.json").read_text())
    assert len(summary["epoch_seconds"]) == 3 and all(s > 0 for s in summary["epoch_seconds"])  # time goes here


def test_a_diverging_loss_stops_the_run_in_its_epoch_exit_2(tmp_path):
    # no terminate_on_nan in the config: the check is always on
    result = runner.invoke(app, ["train", f"output_dir={tmp_path}", "trainer.enable_progress_bar=false", "threads=1",
                                 "data=regression", "loss=mse", "optimizer=sgd", "optimizer.lr=1e12",
                                 "trainer.max_epochs=3"])
    assert result.exit_code == 2, result.output
    message = result.stderr.replace("\n", " ")
    assert re.search(r"the training loss became (nan|inf) in epoch 0 \(0-based\), step \d+", message)
    assert "optimizer.lr" in message and "trainer.gradient_clip_val=1.0" in message
    assert "Traceback" not in result.output
    (run_dir,) = tmp_path.iterdir()
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["status"] == "failed" and "in epoch 0" in summary["error"]
    assert summary["epochs"] == 0  # stopped within its first epoch
    assert not (run_dir / "metrics.csv").exists()


def test_an_unwritable_output_dir_is_refused_before_anything_runs(tmp_path):
    blocker = tmp_path / "a_file"
    blocker.write_text("not a folder")
    target = blocker / "outputs"
    result = runner.invoke(app, ["train", f"output_dir={target}", "data=csv", "data.path=/no/such.csv",
                                 "data.target=y"])
    assert result.exit_code == 2, result.output
    message = result.stderr.replace("\n", "")
    assert f"output_dir: cannot write run folders to {target}" in message and "is a file" in message
    assert "CSV file" not in message  # checked before the data is even read


@pytest.mark.skipif(os.name != "posix" or os.geteuid() == 0, reason="root writes anywhere")
def test_a_read_only_output_dir_is_refused(tmp_path):
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    try:
        result = runner.invoke(app, ["train", f"output_dir={locked}", "trainer.max_epochs=1"])
    finally:
        locked.chmod(0o700)
    assert result.exit_code == 2, result.output
    assert f"cannot write run folders to {locked}" in result.stderr.replace("\n", "")
    assert not any(locked.iterdir())


def test_every_checkpoint_a_run_writes_loads_with_weights_only(make_config):
    result = train(make_config("callbacks=all", "logger=csv", "callbacks.model_checkpoint.save_top_k=-1",
                               "model.hidden=[16]", "trainer.max_epochs=3", "callbacks.swa.swa_epoch_start=0.5").config)
    ckpts = sorted((result.run_dir / "checkpoints").glob("*.ckpt"))
    assert len(ckpts) == 4  # best-0, best-1, best-2, last
    for path in ckpts:
        state = torch.load(path, weights_only=True)  # tensors and plain data only: no pickled objects
        assert state["state_dict"] and state["callbacks"] and state["optimizer_states"]
    assert not list((result.run_dir / "checkpoints").glob(".*"))  # no temporary files left


def test_a_failed_checkpoint_write_leaves_the_previous_file_whole(tmp_path):
    path = tmp_path / "last.ckpt"
    save_atomic({"epoch": 1, "w": torch.ones(3)}, path)
    with pytest.raises(Exception):  # noqa: B017 -- whatever torch.save raises for an unpicklable object
        save_atomic({"epoch": 2, "w": torch.zeros(3), "bad": lambda: None}, path)
    assert torch.load(path, weights_only=True)["epoch"] == 1
    assert [p.name for p in tmp_path.iterdir()] == ["last.ckpt"]


def write_summary(run_dir, **fields):
    run_dir.mkdir(exist_ok=True)
    (run_dir / "summary.json").write_text(json.dumps(fields))
    return run_dir


@pytest.mark.slow
def test_run_status_tells_a_dead_run_from_a_live_one(tmp_path):
    import socket

    host, now = socket.gethostname(), datetime.now(timezone.utc)
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()  # its pid now names no process
    fresh, old = now.isoformat(), (now - timedelta(hours=1)).isoformat()
    cases = {
        "live": (dict(status="running", pid=os.getpid(), hostname=host, heartbeat=fresh), "running"),
        "killed": (dict(status="running", pid=gone.pid, hostname=host, heartbeat=fresh), "dead"),
        "stale": (dict(status="running", pid=12345, hostname="elsewhere", heartbeat=old), "dead"),
        "remote": (dict(status="running", pid=12345, hostname="elsewhere", heartbeat=fresh), "running"),
        "done": (dict(status="completed", pid=gone.pid, hostname=host, heartbeat=old), "completed"),
    }
    for name, (fields, expected) in cases.items():
        assert run_status(write_summary(tmp_path / name, **fields)) == expected, name
    assert run_status(tmp_path / "nothing") == "unknown"


def test_a_running_run_keeps_its_heartbeat_and_owner_in_summary_json(make_config):
    before = time.time()
    result = train(make_config("trainer.max_epochs=1", "model.hidden=[16]").config)
    summary = json.loads((result.run_dir / "summary.json").read_text())
    assert summary["pid"] == os.getpid() and summary["hostname"]
    assert datetime.fromisoformat(summary["heartbeat"]).timestamp() >= before - 1


def test_on_an_accelerator_divergence_is_read_back_in_batches_and_names_the_first_bad_step():
    from types import SimpleNamespace

    from dlcli.nets.callbacks import TerminateOnNaN, TrainingDiverged

    check = TerminateOnNaN(check_every=4, defer=True)  # as on a GPU: no read-back on every step
    trainer = SimpleNamespace(current_epoch=2, global_step=0)
    for i, loss in enumerate([1.0, float("inf"), float("nan")]):
        trainer.global_step = 100 + i
        check.on_train_batch_end(trainer, None, {"loss": torch.tensor(loss)}, None, i)  # not yet read back
    with pytest.raises(TrainingDiverged, match=r"NaN or infinite in epoch 2 \(0-based\), step 101, batch 1"):
        check.on_train_batch_end(trainer, None, {"loss": torch.tensor(0.5)}, None, 3)  # 4th step: read back
    fine = TerminateOnNaN(check_every=4, defer=True)
    fine.on_train_batch_end(trainer, None, {"loss": torch.tensor(0.5)}, None, 0)
    fine.on_train_epoch_end(trainer, None)  # finite: nothing raised


@pytest.mark.parametrize(("overrides", "expected"), [
    (["loss.class_weights=[1.0,2.0]"], "loss.class_weights has 2 values, but data 'digits' has 10 classes"),
    (["callbacks=all"], "callbacks.lr_monitor logs to an experiment logger"),
])
def test_component_mismatches_exit_2_before_any_run_folder(tmp_path, overrides, expected):
    result = runner.invoke(app, ["train", f"output_dir={tmp_path / 'out'}", "threads=1", *overrides])
    assert result.exit_code == 2, result.output
    assert expected in result.stderr.replace("\n", " ") and "Traceback" not in result.output
    assert not any((tmp_path / "out").glob("*"))


@pytest.fixture
def small_disk(tmp_path):
    """A real 512 KiB file system (tmpfs), mounted for the test; skipped where mounting is not allowed."""
    mount = tmp_path / "disk"
    mount.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=512k", "tmpfs", str(mount)], capture_output=True)
    if done.returncode != 0:
        pytest.skip("cannot mount a small file system here (needs root)")
    yield mount
    subprocess.run(["umount", str(mount)], capture_output=True)


@pytest.mark.slow
def test_a_full_disk_is_named_with_exit_2_and_leaves_no_folder(small_disk):
    with open(small_disk / "fill", "wb") as f:  # fill it up: the write stops where the disk does
        try:
            f.write(b"\0" * 600 * 1024)
            f.flush()
        except OSError:
            pass
    result = CliRunner().invoke(app, ["train", "threads=1", f"output_dir={small_disk / 'outputs'}"])
    assert result.exit_code == 2, result.output
    message = " ".join(result.stderr.split())
    assert f"output_dir: cannot write run folders to {small_disk / 'outputs'} (No space left on device)" in message
    assert sorted(p.name for p in small_disk.iterdir()) == ["fill"]  # nothing made


@pytest.mark.slow
def test_a_disk_that_fills_up_during_training_names_the_file_with_exit_2(small_disk):
    result = CliRunner().invoke(app, ["train", "threads=1", "trainer.max_epochs=5",
                                      f"output_dir={small_disk / 'outputs'}"])
    assert result.exit_code == 2, result.output
    message = " ".join(result.stderr.split())
    assert f"cannot write {small_disk / 'outputs'}" in message and "no space left on its device" in message
    assert "Traceback" not in result.output
