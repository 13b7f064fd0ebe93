"""Plugins: your own components from Python modules you name (--plugin, DLCLI_PLUGINS, entry points)."""

from __future__ import annotations

import json
import sys
import textwrap

import pytest
from typer.testing import CliRunner

from dlcli import registry
from dlcli.cli import app

runner = CliRunner()
FAST = ["trainer.enable_progress_bar=false", "trainer.accelerator=cpu", "threads=1"]

PLUGIN = '''
"""A model of my own."""
from dlcli.registry import MODELS


@MODELS.register(inputs="any")
def {name}(in_shape: tuple, out_features: int, hidden: int = 16):
    """Flatten, one hidden layer of `hidden` units, ReLU, then the output layer."""
    import math

    import torch.nn as nn

    return nn.Sequential(nn.Flatten(), nn.Linear(math.prod(in_shape), hidden), nn.ReLU(),
                         nn.Linear(hidden, out_features))
'''


@pytest.fixture
def plugin_path(tmp_path, monkeypatch):
    """A folder on sys.path for plugin modules; the registries and the plugin list are restored afterwards."""
    registry._load_builtins()  # registered for good, before the registries are copied
    for reg in registry.REGISTRIES.values():
        monkeypatch.setattr(reg, "_entries", dict(reg._entries))
    monkeypatch.setattr(registry, "_plugins", {})
    monkeypatch.setattr(registry, "_installed_loaded", False)  # look for entry points again
    monkeypatch.delenv(registry.PLUGINS_ENV, raising=False)
    site = tmp_path / "site"
    site.mkdir()
    monkeypatch.syspath_prepend(str(site))
    before = set(sys.modules)
    yield site
    for name in set(sys.modules) - before:
        if name.startswith("tiny_") or name.startswith("ep_"):
            del sys.modules[name]


def write_plugin(site, module: str, model: str) -> None:
    (site / f"{module}.py").write_text(PLUGIN.format(name=model))


def test_plugin_model_trains_from_the_command_line(plugin_path, tmp_path):
    write_plugin(plugin_path, "tiny_plugin", "tiny_net")
    conf = tmp_path / "conf" / "model"
    conf.mkdir(parents=True)
    (conf / "tiny_net.yaml").write_text("name: tiny_net\nhidden: 8\n")
    result = runner.invoke(app, ["train", "--plugin", "tiny_plugin", "-C", str(conf.parent), "model=tiny_net",
                                 "data=iris", "trainer.max_epochs=2", f"output_dir={tmp_path / 'out'}", *FAST])
    assert result.exit_code == 0, result.output
    (run_dir,) = (tmp_path / "out").iterdir()
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["status"] == "completed" and summary["model"] == "tiny_net"
    assert summary["num_params"] == 4 * 8 + 8 + 8 * 3 + 3  # iris: 4 features -> 8 hidden -> 3 classes
    assert registry.plugins() == {"tiny_plugin": "--plugin"}
    assert summary["plugins"] == {"tiny_plugin": "--plugin"}  # what resume / eval of this run need again


def test_plugin_from_the_environment_and_in_the_listing(plugin_path, monkeypatch):
    write_plugin(plugin_path, "tiny_env_plugin", "tiny_env_net")
    monkeypatch.setenv(registry.PLUGINS_ENV, "tiny_env_plugin")
    result = runner.invoke(app, ["list", "models"], env={"COLUMNS": "200"})  # wide: no description wraps
    assert result.exit_code == 0, result.output
    assert "tiny_env_net" in result.stdout and "Flatten, one hidden layer" in result.stdout
    shown = runner.invoke(app, ["config", "show", "model=perceptron", "model.name=tiny_env_net", "~model.bias"])
    assert shown.exit_code == 0, shown.output
    assert "name: tiny_env_net" in shown.stdout and "hidden: 16" in shown.stdout  # its default filled in


def dist_info(site, name: str, module: str) -> None:
    """An installed distribution as importlib.metadata sees it: a dist-info folder with an entry point."""
    info = site / f"{name}-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text(f"[dlcli.plugins]\nmine = {module}\n")


def test_installed_entry_point_plugins_load_when_components_are_needed(plugin_path):
    write_plugin(plugin_path, "ep_plugin", "ep_net")
    dist_info(plugin_path, "ep-dist", "ep_plugin")
    help_result = runner.invoke(app, ["train", "--help"])
    assert help_result.exit_code == 0 and "ep_plugin" not in sys.modules  # --help imports nothing
    result = runner.invoke(app, ["list", "model"])
    assert result.exit_code == 0, result.output
    assert "ep_net" in result.stdout
    assert registry.plugins() == {"ep_plugin": "entry point 'mine' in group dlcli.plugins of ep-dist"}


def test_a_broken_entry_point_names_the_module_and_the_distribution(plugin_path):
    (plugin_path / "ep_broken.py").write_text("raise RuntimeError('bad plugin')\n")
    dist_info(plugin_path, "broken-dist", "ep_broken")
    result = runner.invoke(app, ["config", "show"])
    assert result.exit_code == 2
    message = " ".join(result.stderr.split())
    assert ("plugin 'ep_broken' (entry point 'mine' in group dlcli.plugins of broken-dist) failed to import: "
            "RuntimeError: bad plugin; fix or uninstall that distribution") in message
    assert "Traceback" not in result.output


@pytest.mark.parametrize(("module", "source", "expected"), [
    ("tiny_missing", None, "plugin module 'tiny_missing' (--plugin) not found. Put tiny_missing.py"),
    ("tiny_bad_import", "import tiny_nowhere\n", "plugin 'tiny_bad_import' (--plugin) failed to import: "
                                                 "ModuleNotFoundError: No module named 'tiny_nowhere'"),
    ("tiny_syntax", "def (:\n", "plugin 'tiny_syntax' (--plugin) failed to import: SyntaxError"),
    ("tiny_dup", PLUGIN.format(name="mlp"), "failed to import: ValueError: duplicate model name 'mlp'"),
    ("tiny-plugin.py", None, "plugin 'tiny-plugin.py' (--plugin) is not a Python module name"),
])
def test_a_plugin_that_cannot_be_imported_exits_2_naming_it(plugin_path, tmp_path, module, source, expected):
    if source is not None:
        (plugin_path / f"{module}.py").write_text(source)
    result = runner.invoke(app, ["train", "--plugin", module, f"output_dir={tmp_path / 'out'}"])
    assert result.exit_code == 2, result.output
    assert expected in " ".join(result.stderr.split())
    assert "Traceback" not in result.output
    assert not (tmp_path / "out").exists()


def test_a_plugin_beside_the_user_is_found(plugin_path, tmp_path, monkeypatch):
    """`--plugin my_plugin` finds ./my_plugin.py, although the dlcli script's folder is first on sys.path."""
    here = tmp_path / "project"
    here.mkdir()
    (here / "tiny_here.py").write_text(textwrap.dedent(PLUGIN.format(name="tiny_here_net")))
    monkeypatch.chdir(here)
    monkeypatch.setattr(sys, "path", [p for p in sys.path if p not in ("", str(here))])
    result = runner.invoke(app, ["list", "models", "--plugin", "tiny_here"])
    assert result.exit_code == 0, result.output
    assert "tiny_here_net" in result.stdout


def test_reopening_a_plugin_run_without_the_plugin_names_it(plugin_path, tmp_path):
    builtins = {kind: dict(reg._entries) for kind, reg in registry.REGISTRIES.items()}  # before the plugin
    write_plugin(plugin_path, "tiny_reopen", "tiny_reopen_net")
    conf = tmp_path / "conf" / "model"
    conf.mkdir(parents=True)
    (conf / "tiny_reopen_net.yaml").write_text("name: tiny_reopen_net\nhidden: 8\n")
    out = tmp_path / "out"
    trained = runner.invoke(app, ["train", "--plugin", "tiny_reopen", "-C", str(conf.parent), "model=tiny_reopen_net",
                                  "data=iris", "trainer.max_epochs=1", f"output_dir={out}", *FAST])
    assert trained.exit_code == 0, trained.output
    (run_dir,) = out.iterdir()
    # a later session that does not load the plugin: only the built-in components are registered
    for kind, reg in registry.REGISTRIES.items():
        reg._entries = dict(builtins[kind])
    registry._plugins.clear()
    del sys.modules["tiny_reopen"]
    for command in (["eval", str(run_dir)], ["predict", str(run_dir), str(tmp_path / "in.csv")],
                    ["export", str(run_dir)], ["resume", str(run_dir), "trainer.max_epochs=2"]):
        result = runner.invoke(app, command)
        assert result.exit_code == 2, (command, result.output)
        message = " ".join(result.stderr.split())
        assert "trained with the plugin 'tiny_reopen' (then loaded by --plugin)" in message, (command, message)
        assert "model.name: unknown model 'tiny_reopen_net'" in message and "Add --plugin tiny_reopen" in message
        assert "Traceback" not in result.output
    again = runner.invoke(app, ["eval", str(run_dir), "--plugin", "tiny_reopen"])  # the fix the message names
    assert again.exit_code == 0, again.output
    assert "test/acc" in again.stdout


LOSS_PLUGIN = '''
"""A loss of my own, registered without tasks=: it fits any task."""
from dlcli.registry import LOSSES


@LOSSES.register()
def tiny_ce(smoothing: float = 0.0):
    """Cross-entropy on logits, with label smoothing."""
    import torch.nn as nn

    return nn.CrossEntropyLoss(label_smoothing=smoothing)
'''


def test_a_plugin_loss_without_tasks_fits_every_task_and_trains(plugin_path, tmp_path):
    (plugin_path / "tiny_loss_plugin.py").write_text(LOSS_PLUGIN)
    conf = tmp_path / "conf" / "loss"
    conf.mkdir(parents=True)
    (conf / "tiny_ce.yaml").write_text("name: tiny_ce\nsmoothing: 0.1\n")
    args = ["--plugin", "tiny_loss_plugin", "-C", str(conf.parent), "loss=tiny_ce"]
    shown = runner.invoke(app, ["config", "show", *args])
    assert shown.exit_code == 0, shown.output
    assert "name: tiny_ce" in shown.stdout and "smoothing: 0.1" in shown.stdout
    # digits, 3 epochs: test/acc 0.933 / 0.944 / 0.948 with seeds 0 / 1 / 2, 0.967 with the default seed 42
    result = runner.invoke(app, ["train", *args, "trainer.max_epochs=3", f"output_dir={tmp_path / 'out'}", *FAST])
    assert result.exit_code == 0, result.output
    (run_dir,) = (tmp_path / "out").iterdir()
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["status"] == "completed" and summary["task"] == "multiclass"
    assert summary["metrics"]["test/acc"] >= 0.9
    from dlcli.registry import TASKS
    from dlcli.tasks import loss_tasks

    assert loss_tasks("tiny_ce") == tuple(TASKS.names())  # `dlcli list tasks` lists it under each
