"""Resume after a crash: SIGKILL mid-training or mid-checkpoint-write, Ctrl-C, SIGTERM -- and the resumed
run ends exactly where an uninterrupted one does (same seed, deterministic, CPU)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from typer.testing import CliRunner

from dlcli.cli import app
from dlcli.config.compose import compose
from dlcli.runs.folder import held, run_status
from dlcli.training.resume import prepare_resume
from dlcli.training.train import train

FAST = ["trainer.enable_progress_bar=false", "trainer.accelerator=cpu", "threads=1"]  # as in conftest.py
# Small and deterministic: ~0.3 s per epoch on one thread; dropout makes the random state matter.
SAME = [*FAST, "trainer.deterministic=true", "seed=3"]
MLP = ["model.hidden=[32]", "model.dropout=0.2"]
RUN = [*SAME, *MLP, "trainer.max_epochs=8"]


@pytest.fixture(autouse=True)
def restore_determinism():
    """trainer.deterministic=true switches torch's deterministic algorithms on for the whole process."""
    before = torch.are_deterministic_algorithms_enabled()
    yield
    torch.use_deterministic_algorithms(before)


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """The uninterrupted run: its metrics.csv text and summary metrics."""
    out = tmp_path_factory.mktemp("reference")
    result = train(compose([f"output_dir={out}", *RUN]).config)
    torch.use_deterministic_algorithms(False)
    return (result.run_dir / "metrics.csv").read_text(), result.metrics


def start(out: Path, *args: str, env: dict | None = None) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "dlcli", "train", f"output_dir={out}", *args],
                            cwd=out.parent, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, **(env or {})})


def wait_for(condition, proc: subprocess.Popen, timeout: float = 120) -> None:
    deadline = time.time() + timeout
    while not condition():
        if proc.poll() is not None:
            raise AssertionError(f"the run ended before the kill: {proc.stderr.read()[-2000:]}")
        if time.time() > deadline:
            proc.kill()
            raise AssertionError("timed out waiting for the run")
        time.sleep(0.01)


def metrics_rows(out: Path) -> int:
    files = list(out.glob("*/metrics.csv"))
    return len(files[0].read_text().splitlines()) - 1 if files else 0


def resume(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "dlcli", "resume", *args], capture_output=True, text=True,
                          timeout=300)


@pytest.mark.slow
def test_sigkill_mid_training_then_resume_ends_as_the_uninterrupted_run(tmp_path, reference):
    out = tmp_path / "o"
    proc = start(out, *RUN)
    wait_for(lambda: metrics_rows(out) >= 3, proc)
    proc.kill()  # SIGKILL: no chance to say anything
    proc.wait()
    (run_dir,) = out.iterdir()
    assert json.loads((run_dir / "summary.json").read_text())["status"] == "running"
    assert run_status(run_dir) == "dead"  # its process is gone

    done = resume(str(run_dir))
    assert done.returncode == 0, done.stderr[-2000:]
    assert "resume: from checkpoints/last.ckpt, after epoch" in done.stderr
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["status"] == "completed" and summary["resumes"] == 1
    assert summary["resumed_from_epoch"] >= 1 and summary["epochs"] == 8
    assert (run_dir / "metrics.csv").read_text() == reference[0]  # byte for byte, every epoch
    assert summary["metrics"] == reference[1]


@pytest.mark.slow
def test_sigkill_during_a_checkpoint_write_keeps_the_previous_one_and_resumes(tmp_path, reference):
    out = tmp_path / "o"
    marker = tmp_path / "writing"
    # The pause lives in the test, not in dlcli: a sitecustomize module, which Python imports at start-up,
    # makes os.replace stop before it puts a last.ckpt over an existing one (the 2nd write), after writing
    # the temporary file's name to the marker, so the kill lands mid-write.
    hook = tmp_path / "hook"
    hook.mkdir()
    (hook / "sitecustomize.py").write_text(
        "import os, time\n"
        "_replace = os.replace\n"
        "def replace(src, dst, *args, **kwargs):\n"
        "    if str(dst).endswith('last.ckpt') and os.path.exists(dst):\n"
        f"        _replace_marker = {str(marker)!r}\n"
        "        open(_replace_marker + '.part', 'w').write(str(src))\n"
        "        _replace(_replace_marker + '.part', _replace_marker)\n"
        "        time.sleep(120)\n"
        "    return _replace(src, dst, *args, **kwargs)\n"
        "os.replace = replace\n")
    path = os.pathsep.join(p for p in (str(hook), os.environ.get("PYTHONPATH", "")) if p)
    proc = start(out, *RUN, env={"PYTHONPATH": path})
    wait_for(marker.exists, proc)
    proc.kill()
    proc.wait()
    (run_dir,) = out.iterdir()
    ckpts = run_dir / "checkpoints"
    partial = Path(marker.read_text())
    assert partial.parent == ckpts and partial.is_file()  # the new file, written but never put in place
    assert torch.load(ckpts / "last.ckpt", weights_only=True)["epoch"] == 0  # the previous one, whole

    done = resume("last", f"output_dir={out}")
    assert done.returncode == 0, done.stderr[-2000:]
    assert not partial.exists()
    assert (run_dir / "metrics.csv").read_text() == reference[0]
    assert json.loads((run_dir / "summary.json").read_text())["metrics"] == reference[1]


@pytest.mark.slow
def test_sigterm_saves_marks_interrupted_exits_143_and_resumes(tmp_path):
    out = tmp_path / "o"
    proc = start(out, *FAST, "trainer.max_epochs=100000", "~callbacks.early_stopping", "model.hidden=[32]")
    wait_for(lambda: metrics_rows(out) >= 2, proc)
    proc.send_signal(signal.SIGTERM)
    _, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 143, stderr[-2000:]
    (run_dir,) = out.iterdir()
    assert "dlcli resume" in stderr and str(run_dir) in stderr
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["status"] == "interrupted" and run_status(run_dir) == "interrupted"
    epochs = summary["epochs"]
    assert torch.load(run_dir / "checkpoints" / "last.ckpt", weights_only=True)["epoch"] == epochs - 1

    done = resume(run_dir.name, f"output_dir={out}", f"trainer.max_epochs={epochs + 2}")
    assert done.returncode == 0, done.stderr[-2000:]
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["status"] == "completed" and summary["epochs"] == epochs + 2
    assert summary["resumed_from_epoch"] == epochs - 1
    assert [int(line.split(",")[0]) for line in (run_dir / "metrics.csv").read_text().splitlines()[1:]] == \
        list(range(epochs + 2))


def interrupt_at_epoch(monkeypatch, epoch: int, signum: int) -> None:
    """Send ``signum`` to this very process when ``epoch`` starts (after the previous epoch's last.ckpt)."""
    from dlcli.training.recorder import EpochRecorder

    original = EpochRecorder.on_train_epoch_start

    def hooked(self, trainer, pl_module):
        original(self, trainer, pl_module)
        if trainer.current_epoch == epoch:
            if signum == signal.SIGINT:
                # what Python's SIGINT handler does, raised here and now: a handler runs at the next bytecode
                # boundary, which may fall inside a finalizer run by the garbage collector, where Python
                # reports and swallows the KeyboardInterrupt (seen once in a full fast-tier run)
                raise KeyboardInterrupt
            os.kill(os.getpid(), signum)

    monkeypatch.setattr(EpochRecorder, "on_train_epoch_start", hooked)


def interrupted_then_resumed(make_config, monkeypatch, *args: str, before=None):
    """(the run uninterrupted, the same run stopped by SIGTERM when its 3rd epoch starts and then resumed)."""
    whole = train(make_config(*args).config)
    interrupt_at_epoch(monkeypatch, 2, signal.SIGTERM)
    with pytest.raises(SystemExit) as stopped:
        train(make_config(*args).config)
    assert stopped.value.code == 143
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL  # handlers put back
    monkeypatch.undo()
    (run_dir,) = [d for d in whole.run_dir.parent.iterdir() if d != whole.run_dir]
    assert run_status(run_dir) == "interrupted"
    if before is not None:
        before()
    cfg, how = prepare_resume(str(run_dir), [])
    assert how.from_epoch == 1
    resumed = train(cfg, resume=how)
    assert (run_dir / "metrics.csv").read_text() == (whole.run_dir / "metrics.csv").read_text()
    return whole, resumed


@pytest.mark.slow
@pytest.mark.parametrize("extra", [
    [*MLP, "scheduler=cosine", "optimizer=sgd", "optimizer.momentum=0.9"],  # scheduler and optimizer state
    [*MLP, "scheduler=step", "scheduler.step_size=1", "scheduler.gamma=0.5"],  # stepped after each epoch
    [*MLP, "scheduler=plateau", "scheduler.patience=0", "trainer.accumulate_grad_batches=3",
     "trainer.gradient_clip_val=0.5"],  # stepped on the validation metric; dlcli accumulates and clips
    [*MLP, "+callbacks.ema.decay=0.9"],  # the averaged weights in the checkpoint, the raw ones go on training
    [*MLP, "scheduler=none", "finetune.stages=[{epochs:2,train:[4.*],lr:0.01},{epochs:2,lr_multiplier:0.1}]"],
    ["experiment=text_gru", "data.n_samples=300"],  # the saved vocabulary, a recurrent model
], ids=["cosine-sgd", "step-per-epoch", "plateau-accumulate-clip", "ema", "stages", "text"])
def test_interrupted_in_process_resume_equals_uninterrupted(make_config, monkeypatch, extra):
    whole, resumed = interrupted_then_resumed(make_config, monkeypatch, *SAME, "trainer.max_epochs=4", *extra)
    assert resumed.metrics == whole.metrics


@pytest.mark.slow
def test_a_fine_tuned_run_resumes_without_its_source_run(make_config, out_dir, monkeypatch, tmp_path):
    import shutil

    source = train(make_config(*MLP, "trainer.max_epochs=1", f"output_dir={tmp_path / 'source'}").config)
    args = [*SAME, *MLP, "trainer.max_epochs=4", f"model.pretrained={source.run_dir}", "data.scaling=minmax"]
    # the checkpoint holds the weights and preprocessing.json the source's scaling: the source may go
    whole, resumed = interrupted_then_resumed(make_config, monkeypatch, *args,
                                              before=lambda: shutil.rmtree(source.run_dir))
    assert resumed.metrics == whole.metrics
    assert resumed.summary["pretrained"] == whole.summary["pretrained"]


def test_ctrl_c_in_the_first_epoch_then_resume_starts_over(make_config, out_dir, monkeypatch):
    interrupt_at_epoch(monkeypatch, 0, signal.SIGINT)
    with pytest.raises(KeyboardInterrupt):
        train(make_config(*RUN, "trainer.max_epochs=2").config)
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler  # Lightning had set it to ignore
    monkeypatch.undo()
    (run_dir,) = out_dir.iterdir()
    assert not (run_dir / "checkpoints" / "last.ckpt").exists()
    cfg, how = prepare_resume("last", [f"output_dir={out_dir}"])
    assert how.ckpt_path is None
    result = train(cfg, resume=how)
    assert result.status == "completed" and result.summary["epochs"] == 2


runner = CliRunner()


def test_unknown_run_exits_2_naming_it_and_where_it_looked(tmp_path):
    result = runner.invoke(app, ["resume", "nosuchrun", f"output_dir={tmp_path}"])
    assert result.exit_code == 2, result.output
    assert "nosuchrun" in result.stderr and str(tmp_path) in result.stderr.replace("\n", "")
    assert "Traceback" not in result.output


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    out = tmp_path_factory.mktemp("finished")
    return train(compose([f"output_dir={out}", *FAST, "trainer.max_epochs=2", "model.hidden=[16]"]).config)


@pytest.mark.parametrize(("overrides", "expected"), [
    ([], "has completed (2 epochs)"),
    (["model.hidden=[64]"], "would change model.hidden"),
    (["optimizer.lr=0.1"], "trainer.max_epochs=50"),
    (["~callbacks.model_checkpoint"], "cannot remove callbacks.model_checkpoint"),
])
def test_resume_refuses_what_it_cannot_honour(finished, overrides, expected):
    result = runner.invoke(app, ["resume", str(finished.run_dir), *overrides])
    assert result.exit_code == 2, result.output
    assert expected in result.stderr.replace("\n", " ")
    assert json.loads((finished.run_dir / "summary.json").read_text())["status"] == "completed"  # untouched


def test_a_finished_run_trains_on_with_more_epochs(tmp_path, make_config):
    first = train(make_config("trainer.max_epochs=2", "model.hidden=[16]").config)
    result = runner.invoke(app, ["resume", str(first.run_dir), "trainer.max_epochs=3"])
    assert result.exit_code == 0, result.output
    summary = json.loads((first.run_dir / "summary.json").read_text())
    assert summary["status"] == "completed" and summary["epochs"] == 3 and summary["resumed_from_epoch"] == 1


def test_a_live_run_is_not_resumed(finished, tmp_path):
    import shutil

    run_dir = tmp_path / finished.run_dir.name
    shutil.copytree(finished.run_dir, run_dir)
    summary = json.loads((run_dir / "summary.json").read_text())
    summary.update(status="running", pid=os.getpid())  # this process: alive
    (run_dir / "summary.json").write_text(json.dumps(summary))
    (run_dir / ".lock").unlink()  # a run from before locks: its pid and heartbeat tell it is alive
    result = runner.invoke(app, ["resume", str(run_dir)])
    assert result.exit_code == 2 and "is still running" in result.stderr
    assert not (run_dir / ".lock").exists() or run_dir.resolve() not in held()  # let go again
    holder = hold(run_dir)  # a run with a lock: its holder tells
    try:
        result = runner.invoke(app, ["resume", str(run_dir)])
        assert result.exit_code == 2 and "held by another process" in " ".join(result.stderr.split())
    finally:
        holder.kill()
        holder.wait()


def test_resume_with_fewer_epochs_than_the_run_reached_is_refused_and_leaves_the_run_as_it_was(
        tmp_path, monkeypatch):
    """The outside try: a killed run past epoch N resumed with trainer.max_epochs=N-1 gave Lightning's raw
    MisconfigurationException, exit 1, and a run marked failed."""
    run_dir = interrupted_run(tmp_path / "o", monkeypatch, epochs=6, at=3)  # 3 epochs done
    before = {name: (run_dir / name).read_bytes() for name in ("summary.json", "metrics.csv", "config.yaml")}
    result = CliRunner().invoke(app, ["resume", str(run_dir), "trainer.max_epochs=2"])
    assert result.exit_code == 2, result.output
    message = result.stderr.replace("\n", " ")
    assert "trainer.max_epochs=2 is fewer than the 3 epochs" in message
    assert "Give trainer.max_epochs=3 or more" in message and "Traceback" not in result.output
    assert {name: (run_dir / name).read_bytes() for name in before} == before
    assert run_status(run_dir) == "interrupted"
    typo = CliRunner().invoke(app, ["resume", str(run_dir), "trainer.max_epochs=abc"])  # was a TypeError
    assert typo.exit_code == 2 and "trainer.max_epochs: expected an integer >= 1 or null, got 'abc'" in \
        " ".join(typo.stderr.split()), typo.output
    assert {name: (run_dir / name).read_bytes() for name in before} == before


def interrupted_run(out: Path, monkeypatch, epochs: int, at: int) -> Path:
    """A run of ``epochs`` epochs stopped by SIGTERM when epoch ``at`` (0-based) starts: ``at`` epochs done."""
    interrupt_at_epoch(monkeypatch, at, signal.SIGTERM)
    with pytest.raises(SystemExit):
        train(compose([f"output_dir={out}", *FAST, *MLP, f"trainer.max_epochs={epochs}"]).config)
    monkeypatch.undo()
    (run_dir,) = out.iterdir()
    return run_dir


def hold(run_dir: Path) -> subprocess.Popen:
    """Another process holding the run's lock, as a training or resuming dlcli does, until it is killed."""
    code = ("import fcntl, os, sys, time\n"
            f"fd = os.open({str(run_dir / '.lock')!r}, os.O_RDWR | os.O_CREAT)\n"
            "fcntl.flock(fd, fcntl.LOCK_EX)\nprint('held', flush=True)\ntime.sleep(120)\n")
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "held"
    return proc


def test_a_run_held_by_another_process_is_neither_resumed_nor_deleted(tmp_path, monkeypatch):
    out = tmp_path / "o"
    run_dir = interrupted_run(out, monkeypatch, epochs=3, at=1)
    before = (run_dir / "summary.json").read_bytes()
    holder = hold(run_dir)
    try:
        resumed = CliRunner().invoke(app, ["resume", str(run_dir)])
        assert resumed.exit_code == 2, resumed.output
        assert "held by another process" in " ".join(resumed.stderr.split())
        removed = CliRunner().invoke(app, ["runs", "rm", str(run_dir), "--yes", "--output-dir", str(out)])
        assert removed.exit_code == 2 and "held by a live process" in " ".join(removed.stderr.split())
        assert (run_dir / "summary.json").read_bytes() == before  # untouched
    finally:
        holder.kill()
        holder.wait()
    resumed = CliRunner().invoke(app, ["resume", str(run_dir)])  # the holder is gone: the lock went with it
    assert resumed.exit_code == 0, resumed.output
    assert json.loads((run_dir / "summary.json").read_text())["status"] == "completed"


def test_a_run_marked_running_whose_lock_is_free_is_dead_whatever_its_pid(tmp_path):
    """A reused PID made a dead run look running: the lock, released by the kernel with its holder, tells."""
    import socket

    run_dir = tmp_path / "20260101-000000-x-0001"
    run_dir.mkdir()
    (run_dir / ".lock").touch()
    (run_dir / "summary.json").write_text(json.dumps({
        "run_id": run_dir.name, "status": "running", "pid": os.getpid(), "hostname": socket.gethostname(),
        "heartbeat": "2099-01-01T00:00:00+00:00"}))
    assert run_status(run_dir) == "dead"  # its pid is alive (this very process), its heartbeat fresh
    holder = hold(run_dir)
    try:
        assert run_status(run_dir) == "running"
    finally:
        holder.kill()
        holder.wait()
    assert run_status(run_dir) == "dead"


@pytest.mark.slow
def test_two_resumes_started_together_one_trains_the_other_exits_2_at_once(tmp_path, monkeypatch):
    out = tmp_path / "o"
    run_dir = interrupted_run(out, monkeypatch, epochs=6, at=1)
    procs = [subprocess.Popen([sys.executable, "-m", "dlcli", "resume", str(run_dir)], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for _ in range(2)]
    from dlcli.runs.folder import is_claimed

    deadline = time.time() + 60
    while not is_claimed(run_dir) and time.time() < deadline and all(p.poll() is None for p in procs):
        time.sleep(0.01)
    removed = CliRunner().invoke(app, ["runs", "rm", str(run_dir), "--yes", "--output-dir", str(out)])
    assert removed.exit_code == 2 and run_dir.is_dir()  # rm of a run being resumed
    results = [(p.wait(timeout=300), p.stderr.read()) for p in procs]
    codes = sorted(code for code, _ in results)
    assert codes == [0, 2], results
    refused = next(err for code, err in results if code == 2)
    assert "held by another process" in " ".join(refused.split())
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["status"] == "completed" and summary["epochs"] == 6


def test_a_moved_run_folder_resumes_and_tests_the_right_best_checkpoint(tmp_path, monkeypatch):
    """The outside try: a run folder moved with `mv` and resumed tested epoch-12 weights while summary.json
    named epoch 10 as best, and a stray best-v1.ckpt appeared (checkpoints kept their absolute paths)."""
    whole = train(compose([f"output_dir={tmp_path / 'whole'}", *SAME, *MLP, "trainer.max_epochs=5"]).config)
    interrupt_at_epoch(monkeypatch, 3, signal.SIGTERM)
    with pytest.raises(SystemExit):
        train(compose([f"output_dir={tmp_path / 'before'}", *SAME, *MLP, "trainer.max_epochs=5"]).config)
    monkeypatch.undo()
    (run_dir,) = (tmp_path / "before").iterdir()
    moved = tmp_path / "after" / run_dir.name
    moved.parent.mkdir()
    run_dir.rename(moved)
    cfg, how = prepare_resume(str(moved), [])
    resumed = train(cfg, resume=how)
    assert sorted(p.name for p in (moved / "checkpoints").iterdir()) == ["best.ckpt", "last.ckpt"]
    best_epoch = torch.load(moved / "checkpoints" / "best.ckpt", weights_only=True)["epoch"]
    assert resumed.best["epoch"] == best_epoch == whole.best["epoch"]
    assert (moved / "metrics.csv").read_text() == (whole.run_dir / "metrics.csv").read_text()
    assert resumed.metrics == whole.metrics


@pytest.mark.parametrize(("name", "content", "expected"), [
    ("summary.json", '{"run_id": 5, "status": []}', "summary.json is damaged: 'run_id' is int"),
    ("summary.json", "[" * 100000 + "]" * 100000, "summary.json cannot be read (nested too deep)"),
    ("summary.json", b"\xff\xfe\x00binary", "summary.json cannot be read"),
    ("preprocessing.json", "{not json", "preprocessing.json cannot be read"),
    ("preprocessing.json", "[1, 2]", "preprocessing.json is damaged: it holds list"),
    ("config.yaml", "seed: 1\n", "config.yaml is damaged or from another dlcli version"),
    ("config.yaml", "a: [unclosed\n", "config.yaml is not valid YAML"),
])
def test_a_damaged_run_file_is_named_with_exit_2_by_resume_and_eval(finished, tmp_path, name, content, expected):
    import shutil

    run_dir = tmp_path / finished.run_dir.name
    shutil.copytree(finished.run_dir, run_dir)
    (run_dir / name).write_bytes(content if isinstance(content, bytes) else content.encode())
    commands = [["resume", str(run_dir), "trainer.max_epochs=3"]]
    if name != "summary.json":  # eval and predict read the config and the preprocessing, not the record
        commands += [["eval", str(run_dir)], ["predict", str(run_dir), str(tmp_path / "none.csv")]]
    else:
        commands.append(["runs", "rm", str(run_dir), "--yes", "--output-dir", str(tmp_path)])
    for command in commands:
        result = runner.invoke(app, command)
        assert result.exit_code == 2, (command, result.output)
        assert expected in " ".join(result.stderr.split()), (command, result.stderr)
        assert "Traceback" not in result.output


def test_killed_after_the_last_checkpoint_resumes_to_the_whole_metrics_and_curves(finished, tmp_path):
    """The outside try: SIGKILL just after the final epoch's last.ckpt (or during the test phase), then
    resume: metrics.csv kept one row short for good, summary.json said epochs: 0, and no curves.png."""
    import shutil

    run_dir = tmp_path / finished.run_dir.name
    shutil.copytree(finished.run_dir, run_dir)
    whole = (run_dir / "metrics.csv").read_text()
    # the state such a kill leaves: last.ckpt holds every epoch, metrics.csv one row less, the run "running"
    (run_dir / "metrics.csv").write_text("".join(whole.splitlines(keepends=True)[:-1]))
    (run_dir / "plots" / "curves.png").unlink()
    summary = json.loads((run_dir / "summary.json").read_text())
    summary.update(status="running", epochs=1, metrics={})
    (run_dir / "summary.json").write_text(json.dumps(summary))
    result = runner.invoke(app, ["resume", str(run_dir)])
    assert result.exit_code == 0, result.output
    assert (run_dir / "metrics.csv").read_text() == whole
    after = json.loads((run_dir / "summary.json").read_text())
    assert after["status"] == "completed" and after["epochs"] == 2 and len(after["epoch_seconds"]) == 2
    assert after["metrics"] == finished.metrics
    assert (run_dir / "plots" / "curves.png").is_file()
