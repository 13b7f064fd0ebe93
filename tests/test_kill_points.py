"""A deterministic run killed (SIGKILL) at each point where its files change, then resumed: every case either
leaves no run (an empty folder, listed by `runs ls --all`, removable) or resumes to the uninterrupted run's
byte-identical metrics.csv, its summary.json metrics and epochs, and a curves.png.

The kill comes from the test, not from dlcli: a ``sitecustomize`` module, which Python imports at start-up,
wraps ``os.mkdir`` / ``os.replace`` / ``open`` in the child process and SIGKILLs it at the chosen call.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from typer.testing import CliRunner

from dlcli.cli import app
from dlcli.config.compose import compose
from dlcli.training.train import train

pytestmark = pytest.mark.slow

FAST = ["trainer.enable_progress_bar=false", "trainer.accelerator=cpu", "threads=1"]
RUN = [*FAST, "trainer.deterministic=true", "seed=3", "model.hidden=[32]", "model.dropout=0.2",
       "trainer.max_epochs=5"]
EPOCHS = 5

HOOK = '''
import builtins, os, re, signal

_kind, _name, _n, _when = os.environ["DLCLI_TEST_KILL"].split(":")
_n, _seen = int(_n), [0]


def _hit(path):
    if os.path.basename(str(path)) != _name and not (_name == "RUN" and re.match(r"\\d{8}-\\d{6}-",
                                                                                  os.path.basename(str(path)))):
        return False
    _seen[0] += 1
    return _seen[0] == _n


def _die():
    os.kill(os.getpid(), signal.SIGKILL)


def _wrap(original, path_arg):
    def wrapped(*args, **kwargs):
        hit = _hit(args[path_arg])
        if hit and _when == "before":
            _die()
        result = original(*args, **kwargs)
        if hit and _when == "after":
            _die()
        return result
    return wrapped


if _kind == "replace":
    os.replace = _wrap(os.replace, 1)
elif _kind == "mkdir":
    os.mkdir = _wrap(os.mkdir, 0)
elif _kind == "open":
    _open = builtins.open
    builtins.open = _wrap(_open, 0)
'''

# (what is wrapped, the file's name, which call, before or after it): each a moment a file changes
POINTS = {
    "right after the run folder is made": ("mkdir", "RUN", 1, "after"),
    "while config.yaml is first written": ("replace", "config.yaml", 1, "before"),
    "before the first summary.json": ("replace", "summary.json", 1, "before"),
    "mid-write of epoch 3's last.ckpt": ("replace", "last.ckpt", 3, "before"),
    "between epoch 3's last.ckpt and its metrics.csv row": ("replace", "metrics.csv", 3, "before"),
    "right after the final epoch's last.ckpt": ("replace", "last.ckpt", EPOCHS, "after"),
    "in the test phase, reading best.ckpt": ("open", "best.ckpt", 1, "before"),
    "while curves.png is written, before the final summary.json": ("replace", "curves.png", 1, "before"),
}


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """The uninterrupted run: its metrics.csv text, its summary.json, and how many times it wrote summary.json."""
    out = tmp_path_factory.mktemp("reference")
    result = train(compose([f"output_dir={out}", *RUN]).config)
    torch.use_deterministic_algorithms(False)
    return (result.run_dir / "metrics.csv").read_text(), json.loads((result.run_dir / "summary.json").read_text())


def _killed(tmp_path: Path, point: tuple) -> Path:
    hook = tmp_path / "hook"
    hook.mkdir()
    (hook / "sitecustomize.py").write_text(HOOK)
    kind, name, n, when = point
    out = tmp_path / "o"
    env = {**os.environ, "DLCLI_TEST_KILL": f"{kind}:{name}:{n}:{when}",
           "PYTHONPATH": os.pathsep.join(p for p in (str(hook), os.environ.get("PYTHONPATH", "")) if p)}
    done = subprocess.run([sys.executable, "-m", "dlcli", "train", f"output_dir={out}", *RUN], env=env,
                          capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert done.returncode == -9, f"not killed at {point}: {done.stderr[-1500:]}"
    return out


@pytest.mark.parametrize("where", list(POINTS))
def test_a_run_killed_there_leaves_nothing_or_resumes_to_the_uninterrupted_run(where, tmp_path, reference):
    out = _killed(tmp_path, POINTS[where])
    (run_dir,) = out.iterdir()
    runner = CliRunner()
    if not (run_dir / "summary.json").is_file():  # killed before the run existed: nothing but an empty folder
        assert runner.invoke(app, ["runs", "ls", "--output-dir", str(out)]).stdout.strip() == ""
        listed = runner.invoke(app, ["runs", "ls", "--all", "--output-dir", str(out)])
        assert run_dir.name in listed.stdout and "empty" in listed.stdout
        removed = runner.invoke(app, ["runs", "rm", str(run_dir), "--yes", "--output-dir", str(out)])
        assert removed.exit_code == 0, removed.output
        assert not run_dir.exists()
        return
    done = subprocess.run([sys.executable, "-m", "dlcli", "resume", str(run_dir)], capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    summary = json.loads((run_dir / "summary.json").read_text())
    assert (run_dir / "metrics.csv").read_text() == reference[0]  # byte for byte, every epoch
    assert summary["status"] == "completed"
    assert summary["metrics"] == reference[1]["metrics"] and summary["epochs"] == EPOCHS
    assert summary["best"] == reference[1]["best"]
    assert (run_dir / "plots" / "curves.png").is_file()

