"""The CLI pauses Python's cyclic garbage collector while a command imports torch and Lightning, and a command
that goes on to real work runs it again (dlcli/startup.py)."""

from __future__ import annotations

import gc

import pytest

from dlcli import startup
from dlcli.training.train import train


@pytest.fixture
def collector_restored():
    yield
    startup._paused = False
    gc.unfreeze()
    gc.enable()


def test_settle_without_a_pause_leaves_a_library_users_collector_alone(collector_restored):
    assert gc.isenabled()
    frozen = gc.get_freeze_count()
    startup.settle()
    assert gc.isenabled() and gc.get_freeze_count() == frozen

    gc.disable()  # the program's own choice: not dlcli's to undo
    startup.pause()
    startup.settle()
    assert not gc.isenabled() and gc.get_freeze_count() == frozen


def test_a_paused_collector_runs_again_with_the_start_up_frozen(collector_restored):
    startup.pause()
    assert not gc.isenabled()
    made_meanwhile = [[] for _ in range(1000)]  # what a start-up makes and keeps
    startup.settle()
    assert gc.isenabled()
    assert gc.get_freeze_count() >= len(made_meanwhile)
    startup.settle()  # once only
    assert gc.isenabled()


def test_training_runs_with_the_collector_on_and_the_start_up_frozen(make_config, collector_restored, monkeypatch):
    composed = make_config("data=iris", "trainer.max_epochs=2")
    startup.pause()  # as `dlcli train` starts
    seen = {}

    import pytorch_lightning as pl

    class Probe(pl.Callback):
        def on_train_epoch_start(self, trainer, module):
            seen.setdefault("enabled", gc.isenabled())
            seen.setdefault("frozen", gc.get_freeze_count())

    import dlcli.training.train as train_module

    make_trainer = train_module.make_trainer

    def with_probe(*args, **kwargs):
        built = make_trainer(*args, **kwargs)
        built[0].callbacks.append(Probe())
        return built

    monkeypatch.setattr(train_module, "make_trainer", with_probe)
    result = train(composed.config, composed.overrides)
    assert result.summary["status"] == "completed"
    assert seen["enabled"] is True and seen["frozen"] > 10_000  # torch's and Lightning's objects, at least


def _dlcli(args, tmp_path, **env):
    import os
    import subprocess
    import sys

    return subprocess.run([sys.executable, "-m", "dlcli", *args], cwd=tmp_path, capture_output=True, text=True,
                          env={**os.environ, **env}, timeout=120)


@pytest.mark.slow
def test_the_command_ends_after_every_atexit_handler_with_its_exit_code_and_whole_output(tmp_path):
    """`dlcli` skips Python's teardown of its modules at exit: the atexit handlers registered while the command
    ran (here a plugin's) still run, the exit code is the command's, and piped output arrives whole. A Python
    program that calls main() itself keeps its own, whole exit."""
    (tmp_path / "atexit_plugin.py").write_text(
        "import atexit, pathlib\n"
        "atexit.register(lambda: pathlib.Path('handler-ran').write_text('yes'))\n")
    listed = _dlcli(["list", "model", "--plugin", "atexit_plugin"], tmp_path, PYTHONPATH=str(tmp_path))
    assert listed.returncode == 0, listed.stderr
    assert (tmp_path / "handler-ran").read_text() == "yes"
    assert all(name in listed.stdout for name in ("perceptron", "inception_time", "transformer", "vit"))
    (tmp_path / "handler-ran").unlink()

    refused = _dlcli(["train", "lr=0.01", "--plugin", "atexit_plugin"], tmp_path, PYTHONPATH=str(tmp_path))
    assert refused.returncode == 2
    assert "optimizer.lr" in refused.stderr and refused.stderr.endswith("\n")
    assert (tmp_path / "handler-ran").read_text() == "yes"

    # a program calling main() itself: dlcli does not end it early, so the handler it registered before
    # (which runs after dlcli's) still runs
    import os
    import subprocess
    import sys

    (tmp_path / "my_program.py").write_text(
        "import atexit, pathlib, sys\n"
        "atexit.register(lambda: pathlib.Path('program-handler-ran').write_text('yes'))\n"
        "from dlcli.cli import main\n"
        "sys.argv[1:] = ['list', 'model']\n"
        "main()\n")
    own = subprocess.run([sys.executable, "my_program.py"], cwd=tmp_path, capture_output=True, text=True,
                         env=os.environ, timeout=120)
    assert own.returncode == 0, own.stderr
    assert (tmp_path / "program-handler-ran").read_text() == "yes"
