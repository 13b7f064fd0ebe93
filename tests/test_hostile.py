"""Hostile or runaway input is refused early, with a message naming the key or file and the fix (exit 2)."""

from __future__ import annotations

import json
import time

import pytest
from typer.testing import CliRunner

from dlcli.cli import app
from dlcli.config.compose import compose, shipped_config_dir
from dlcli.config.limits import MAX_DEPTH, MAX_LIST_ITEMS, structure_problems, yaml_file_problem
from dlcli.config.validate import ConfigError
from dlcli.errors import DataError, DlcliError

runner = CliRunner()


def billion_laughs(levels: int = 9) -> str:
    """Nine lines, each a list of nine aliases of the line before: 9**9 values once expanded."""
    lines = ['a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    for i in range(1, levels):
        prev, name = chr(ord("a") + i - 1), chr(ord("a") + i)
        lines.append(f"{name}: &{name} [" + ",".join([f"*{prev}"] * 9) + "]")
    return "\n".join(lines) + "\n"


def run_folder(path, name="digits-mlp"):
    """A finished run folder as train() leaves it (summary.json, config.yaml + config.json), written directly."""
    path.mkdir(parents=True)
    config = {"seed": 0, "name": name, "data": {"name": "digits"}, "model": {"name": "mlp"}}
    (path / "config.json").write_text(json.dumps(config))
    (path / "config.yaml").write_text(json.dumps(config))  # JSON is YAML
    (path / "summary.json").write_text(json.dumps({
        "run_id": path.name, "name": name, "status": "completed", "model": "mlp", "data": "digits",
        "metrics": {"val/acc": 0.9}, "best": {"monitor": "val/acc", "value": 0.9, "epoch": 1}}))
    return path


# --- a. YAML alias bombs and runaway structure ---

def test_an_alias_bomb_in_a_config_folder_is_refused_at_once_naming_the_file(tmp_path):
    conf = tmp_path / "conf"
    (conf / "experiment").mkdir(parents=True)
    bomb = conf / "experiment" / "bomb.yaml"
    bomb.write_text("# @package _global_\n" + billion_laughs())
    started = time.perf_counter()
    result = runner.invoke(app, ["config", "show", "-C", str(conf), "experiment=bomb"])
    took = time.perf_counter() - started
    assert result.exit_code == 2, result.output
    assert str(bomb) in result.stderr and "expand it too far" in result.stderr
    assert "Traceback" not in result.output
    assert took < 30  # refused unread; expanding it took over 10 minutes
    print(f"alias bomb refused in {took:.2f} s")


def test_compose_refuses_a_bomb_even_when_no_override_selects_it(tmp_path):
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "lots.yaml").write_text(billion_laughs())
    with pytest.raises(ConfigError, match=r"lots\.yaml: its YAML aliases .* expand it too far"):
        compose(["threads=1"], [tmp_path])


def test_self_referring_and_too_deeply_nested_yaml_are_refused(tmp_path):
    loop = tmp_path / "loop.yaml"
    loop.write_text("a: &a [1, *a]\n")
    assert "refers to a node that contains it" in yaml_file_problem(loop)
    deep = tmp_path / "deep.yaml"
    deep.write_text("x: " + "[" * (MAX_DEPTH + 5) + "1" + "]" * (MAX_DEPTH + 5) + "\n")
    assert "nested more than" in yaml_file_problem(deep)
    deeper = tmp_path / "deeper.yaml"
    deeper.write_text("x: " + "[" * 5000 + "1" + "]" * 5000 + "\n")  # past Python's recursion limit
    assert "nested too deep" in yaml_file_problem(deeper)


def test_every_shipped_config_file_is_within_the_bounds():
    files = sorted(shipped_config_dir().rglob("*.yaml"))
    assert len(files) > 50
    assert [f for f in files if yaml_file_problem(f)] == []


def test_a_few_aliases_are_fine_and_compose(tmp_path):
    (tmp_path / "model").mkdir()
    (tmp_path / "model" / "shared.yaml").write_text("name: mlp\nhidden: &h [32, 32]\ndropout: 0.0\n")
    (tmp_path / "experiment").mkdir()
    (tmp_path / "experiment" / "twice.yaml").write_text(
        "# @package _global_\nmodel: &m {name: mlp, hidden: [16], dropout: 0.0}\nnotes: [*m, *m]\n")
    assert yaml_file_problem(tmp_path / "experiment" / "twice.yaml") is None
    composed = compose(["model=shared", "threads=1"], [tmp_path])
    assert composed.config["model"]["hidden"] == [32, 32]


def test_composed_lists_and_nesting_are_bounded():
    long = {"data": {"classes": list(range(MAX_LIST_ITEMS + 1))}}
    [(path, message)] = structure_problems(long)
    assert path == "data.classes" and f"{MAX_LIST_ITEMS + 1:,} items" in message
    node: dict = {}
    deep = {"model": node}
    for _ in range(MAX_DEPTH + 3):
        node["x"] = {}
        node = node["x"]
    [(path, message)] = structure_problems(deep)
    assert path.startswith("model.x.x") and "nested more than" in message
    assert structure_problems({"data": {"classes": list(range(1000))}}) == []


def test_a_run_config_yaml_bomb_is_refused_by_the_runs_commands(tmp_path):
    run = tmp_path / "20260101-000000-x-0001"
    run.mkdir()
    (run / "summary.json").write_text(json.dumps({"run_id": run.name, "name": "x", "status": "completed"}))
    (run / "config.yaml").write_text(billion_laughs())  # an old run: no config.json
    result = runner.invoke(app, ["runs", "ls", "--filter", "model=mlp", "--output-dir", str(tmp_path)])
    assert result.exit_code == 2, result.output
    assert "config.yaml" in result.stderr and "expand it too far" in result.stderr


# --- b. CSV headers: linear lookups, duplicate names refused ---

def test_a_100k_column_csv_loads_in_seconds(tmp_path):
    from dlcli.data.files import csv

    width = 100_000
    path = tmp_path / "wide.csv"
    header = [f"c{i}" for i in range(width)] + ["y"]
    rows = [[str((r * 7 + i) % 5) for i in range(width)] + [str(r % 2)] for r in range(4)]
    path.write_text("\n".join(",".join(r) for r in [header, *rows]) + "\n")
    started = time.perf_counter()
    table = csv(seed=0, path=str(path), target="y")
    took = time.perf_counter() - started
    print(f"100k-column CSV read in {took:.2f} s")
    assert table.x.shape == (4, width) and list(table.y) == [0, 1, 0, 1]
    assert took < 60  # a guard against quadratic work (145 s with a header.index() per column), not a speed test


def test_duplicate_column_names_are_refused_naming_them(tmp_path):
    from dlcli.data.files import csv
    from dlcli.data.sequences import timeseries_csv
    from dlcli.data.text import text_csv

    path = tmp_path / "dup.csv"
    path.write_text("a,b,a,size,size,y\n1,2,3,4,5,0\n2,3,4,5,6,1\n")
    with pytest.raises(DataError, match=r"dup\.csv' has two columns named 'a' in its header row \(and so do "
                                         r"'size'\).*unique"):
        csv(seed=0, path=str(path), target="y")
    with pytest.raises(DataError, match=r"dup\.csv.*'a'.*'size'"):
        timeseries_csv(seed=0, path=str(path), column="y", window=1)
    text = tmp_path / "text.csv"
    text.write_text("text,label,text\nhello,a,other\nbye,b,more\n")
    with pytest.raises(DataError, match=r"text\.csv.*'text'"):
        text_csv(seed=0, path=str(text))


def test_a_missing_column_on_a_wide_file_lists_only_some_names(tmp_path):
    from dlcli.data.files import csv

    path = tmp_path / "wide.csv"
    names = [f"c{i}" for i in range(500)]
    path.write_text(",".join([*names, "y"]) + "\n" + ",".join(["1"] * 501) + "\n")
    with pytest.raises(DataError, match=r"no column 'nope'.*\(501 columns\)") as e:
        csv(seed=0, path=str(path), target="nope")
    assert "c400" not in str(e.value)


# --- c. name and threads checked at validation ---

def test_a_long_run_name_is_refused_before_anything_loads():
    with pytest.raises(ConfigError, match=r"name: 300 characters, at most 100"):
        compose(["name=" + "x" * 300, "threads=1"])
    with pytest.raises(ConfigError, match=r"name: holds control characters"):
        compose(["name='a\x1b[31mb'", "threads=1"])
    result = runner.invoke(app, ["config", "show", "name=" + "x" * 300, "threads=1"])
    assert result.exit_code == 2 and "name: 300 characters" in result.stderr


def test_folder_names_stay_short_for_any_name():
    from dlcli.runs.folder import slug

    assert len(slug("é" * 400)) <= 100 and len(slug("ab" * 400)) == 100


def test_threads_beyond_the_cores_are_lowered_to_them_with_a_note_and_below_one_refused():
    """The outside try: threads=100000 gave a MemoryError traceback."""
    from dlcli.training.threads import cores

    composed = compose(["threads=100000"])
    assert composed.config["threads"] == cores()
    assert any(f"threads=100000 is more than the {cores()} CPU cores" in n for n in composed.notes)
    with pytest.raises(ConfigError, match=r"threads: expected an integer >= 1"):
        compose(["threads=0"])
    assert compose([f"threads={cores()}"]).config["threads"] == cores()
    result = runner.invoke(app, ["config", "show", "threads=100000"])
    assert result.exit_code == 0 and f"using {cores()}" in result.stderr
    assert f"threads: {cores()}" in result.stdout


# --- d. text from run files is printed as written ---

def test_runs_commands_print_names_literally_without_terminal_escapes(tmp_path):
    hostile = "\x1b[31mred\x1b]0;title\x07[bold]x[/bold]"
    run_folder(tmp_path / "20260101-000001-x-0002", name=hostile)  # the newest: `last`
    run_folder(tmp_path / "20260101-000000-y-0001", name="plain")  # compare shows the keys that differ
    for args in (["ls"], ["show", "last"], ["compare"], ["compare", "-f", "csv"], ["compare", "-f", "markdown"]):
        result = runner.invoke(app, ["runs", *args, "--output-dir", str(tmp_path)], color=True)
        assert result.exit_code == 0, (args, result.output)
        assert "\x1b[31m" not in result.output and "\x07" not in result.output, args
        assert "\\x1b[31mred" in result.output and "[bold]x[/bold]" in result.output, (args, result.output)


# --- e. flags and commands that crashed ---

def test_lr_find_refuses_zero_steps():
    result = runner.invoke(app, ["lr-find", "--steps", "0"])
    assert result.exit_code == 2 and "--steps 0" in result.stderr and "Traceback" not in result.output


def test_runs_rm_without_a_terminal_says_to_pass_yes(tmp_path):
    run = run_folder(tmp_path / "20260101-000000-x-0001")
    result = runner.invoke(app, ["runs", "rm", str(run), "--output-dir", str(tmp_path)])  # stdin: empty
    assert result.exit_code == 2, result.output
    assert "--yes" in result.stderr and "Abort" not in result.output and run.is_dir()


def test_a_second_sweep_of_the_same_name_is_refused_while_one_runs(tmp_path):
    from dlcli.sweep.study import driving, sweep_dir

    folder = sweep_dir(tmp_path, "same")
    with driving(folder, "same"):
        result = runner.invoke(app, ["sweep", "--name", "same", "optimizer.lr=0.1,0.2", f"output_dir={tmp_path}",
                                     "threads=1"])
    assert result.exit_code == 2, result.output
    assert "sweep 'same' is already running" in result.stderr and "--storage" not in result.stderr
    with driving(folder, "same"):  # released when the holder is done
        pass


def test_the_sweeps_own_database_failing_does_not_blame_storage(tmp_path):
    from dlcli.sweep.study import open_database

    bad = f"sqlite:///{tmp_path}/missing/dir/study.db"
    with pytest.raises(DlcliError) as e:
        open_database(bad, sweep="s1")
    assert "sweep 's1'" in str(e.value) and "--storage" not in str(e.value)
    with pytest.raises(DlcliError, match="--storage"):
        open_database(bad)


@pytest.mark.parametrize("override", ["+hydra.callbacks.x._target_=subprocess.Popen",
                                      "+hydra.callbacks.x={_target_: subprocess.Popen, args: [touch, x]}",
                                      "+hydra.job.env_set._call_=true"])
def test_code_keys_are_refused_in_hydra_overrides_too(override):
    with pytest.raises(ConfigError, match=r"hydra\..*is refused: it makes a config import and call Python code"):
        compose([override, "threads=1"])
    result = runner.invoke(app, ["config", "show", override])
    assert result.exit_code == 2 and "is refused" in result.stderr


def test_code_keys_are_refused_in_a_config_folders_hydra_node(tmp_path):
    (tmp_path / "hydra" / "callbacks").mkdir(parents=True)
    (tmp_path / "hydra" / "callbacks" / "evil.yaml").write_text("x:\n  _target_: subprocess.Popen\n")
    with pytest.raises(ConfigError, match=r"hydra\.x\._target_.*is refused.*evil\.yaml"):
        compose(["threads=1"], [tmp_path])


@pytest.mark.slow
def test_two_sweeps_of_one_name_started_together_one_is_refused_saying_so(tmp_path):
    import os
    import signal
    import subprocess
    import sys
    from pathlib import Path

    out = tmp_path / "outputs"
    # long trials (warm trials start in a fraction of a second): the first sweep must outlast the second's refusal;
    # it is killed as soon as the second has answered
    args = [sys.executable, "-m", "dlcli", "sweep", "optimizer.lr=0.001,0.002,0.003,0.004,0.005", "data=iris",
            "trainer.max_epochs=300", "~callbacks.early_stopping", "trainer.enable_progress_bar=false",
            "trainer.accelerator=cpu", "threads=1", f"output_dir={out}", "--name", "twin"]
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).parents[1])}
    first = subprocess.Popen(args, cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env,
                             start_new_session=True)  # its own group: the kill below takes its trials too
    try:
        lock = out / "sweeps" / "twin" / ".driver.lock"
        deadline = time.time() + 120
        while not (lock.is_file() and lock.read_text().strip()):  # the first one drives the sweep
            assert time.time() < deadline and first.poll() is None, "the first sweep never started"
            time.sleep(0.2)
        second = subprocess.run(args, cwd=tmp_path, capture_output=True, text=True, timeout=300, env=env)
        assert first.poll() is None, "the first sweep ended before the second tried: the test proves nothing"
    finally:
        if first.poll() is None:
            os.killpg(first.pid, signal.SIGKILL)
        first.wait(30)
    assert second.returncode == 2, second.stderr
    assert "sweep 'twin' is already running" in second.stderr and f"pid {first.pid}" in second.stderr
    assert "--storage" not in second.stderr and "Traceback" not in second.stderr
