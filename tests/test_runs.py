"""``dlcli runs``: ls, show, compare, plot and rm over run folders written directly (no training), fast."""

from __future__ import annotations

import csv
import io
import json
import os
import shutil
import subprocess
import sys

import pytest
from typer.testing import CliRunner

from dlcli.cli import app
from dlcli.runs.compare import compare, differing_keys
from dlcli.runs.direction import metric_mode
from dlcli.runs.sparkline import sparkline
from dlcli.runs.table import load_records

runner = CliRunner()

MODELS = {"mlp": {"name": "mlp", "hidden": [64], "dropout": 0.0},
          "cnn": {"name": "cnn", "channels": [16, 32], "dropout": 0.1}}


def make_run(root, run_id, *, model="mlp", lr=1e-3, seed=0, metrics=None, status="completed", sweep=None,
             trial=None, rows=None, **summary):
    """A run folder as train() leaves it (summary.json, config.yaml + config.json, metrics.csv), written directly."""
    path = root / run_id
    path.mkdir(parents=True)
    config = {"seed": seed, "name": f"digits-{model}", "output_dir": str(root), "data": {"name": "digits"},
              "model": MODELS[model], "optimizer": {"name": "adam", "lr": lr, "weight_decay": 0.0},
              "trainer": {"max_epochs": 3}}
    text = json.dumps(config)
    (path / "config.json").write_text(text)
    (path / "config.yaml").write_text(text)  # JSON is YAML
    info = {"run_id": run_id, "name": config["name"], "status": status, "task": "multiclass", "data": "digits",
            "model": model, "seed": seed, "metrics": metrics or {}, "duration_s": 12.5,
            "best": {"monitor": "val/acc", "mode": "max", "value": (metrics or {}).get("val/acc"), "epoch": 2},
            **({"sweep": sweep, "trial": trial} if sweep else {}), **summary}
    (path / "summary.json").write_text(json.dumps(info))
    rows = rows if rows is not None else [{"epoch": e, "train/loss": 1.0 / (e + 1), "val/loss": 1.1 / (e + 1),
                                           "val/acc": 0.5 + 0.1 * e} for e in range(3)]
    if rows:
        with (path / "metrics.csv").open("w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=list(rows[0]))
            writer.writeheader()
            writer.writerows(rows)
    return path


def grid(root):
    """A 2x2 sweep (optimizer.lr x model) and one run outside it."""
    accs = {("mlp", 1e-3): 0.95, ("mlp", 1e-2): 0.91, ("cnn", 1e-3): 0.97, ("cnn", 1e-2): 0.89}
    for i, ((model, lr), acc) in enumerate(accs.items()):
        make_run(root, f"20260101-00000{i}-digits-{model}-000{i}", model=model, lr=lr, sweep="s1", trial=i,
                 metrics={"val/acc": acc, "val/loss": 1 - acc, "test/acc": acc - 0.01})
    make_run(root, "20260102-000000-digits-mlp-ffff", metrics={"val/acc": 0.5, "val/loss": 0.9})
    return accs


def invoke(*args):
    return runner.invoke(app, ["runs", *map(str, args)])


def test_compare_a_sweep_shows_only_the_keys_that_differ_sorted_by_the_metric(tmp_path):
    grid(tmp_path)
    comparison = compare(load_records(tmp_path, sweep="s1"), sort="val/acc")
    assert comparison.config_keys == ["model", "optimizer.lr"]  # not model.hidden, channels, dropout, name
    assert [r["val/acc"] for r in comparison.rows] == [0.97, 0.95, 0.91, 0.89]  # higher is better: descending
    assert [(r["model"], r["optimizer.lr"]) for r in comparison.rows][0] == ("cnn", 1e-3)
    assert comparison.best["val/acc"] == 0.97 and comparison.best["val/loss"] == pytest.approx(0.03)

    result = invoke("compare", "--sweep", "s1", "--sort", "val/acc", "--output-dir", tmp_path, "--format", "csv")
    assert result.exit_code == 0, result.output
    table = list(csv.DictReader(io.StringIO(result.stdout)))
    assert list(table[0]) == ["run", "name", "status", "model", "optimizer.lr", "test/acc", "val/acc", "val/loss"]
    assert [float(r["val/acc"]) for r in table] == [0.97, 0.95, 0.91, 0.89]
    ascending = compare(load_records(tmp_path, sweep="s1"), sort="val/loss")  # lower is better: ascending
    assert [r["val/loss"] for r in ascending.rows] == sorted(r["val/loss"] for r in ascending.rows)


def test_compare_table_highlights_the_best_and_markdown_bolds_it(tmp_path):
    grid(tmp_path)
    result = invoke("compare", "--sweep", "s1", "--output-dir", tmp_path)
    assert result.exit_code == 0, result.output
    header = result.stdout.splitlines()[0].split()
    assert header == ["run", "name", "status", "model", "optimizer.lr", "test/acc", "val/acc", "val/loss"]
    assert len(result.stdout.splitlines()) == 1 + 4  # header, 4 trials; no legend for bold green without colour
    markdown = invoke("compare", "--sweep", "s1", "--output-dir", tmp_path, "--format", "markdown").stdout
    assert "| **0.97** |" in markdown and markdown.count("**") == 2 * 3  # one best per metric column
    rows = json.loads(invoke("compare", "--sweep", "s1", "--output-dir", tmp_path, "--format", "json").stdout)
    assert {r["model"] for r in rows} == {"mlp", "cnn"} and all("model.hidden" not in r for r in rows)


def test_differing_keys_compares_a_components_parameters_within_the_same_component():
    a = {"model.name": "mlp", "model.dropout": 0.0, "seed": 0, "name": "x", "output_dir": "a"}
    b = {"model.name": "cnn", "model.dropout": 0.1, "seed": 0, "name": "y", "output_dir": "b"}
    c = {"model.name": "mlp", "model.dropout": 0.5, "seed": 1, "name": "x", "output_dir": "a"}
    assert differing_keys([a, b]) == ["model.name"]  # dropout differs only with the model; name is bookkeeping
    assert differing_keys([a, b, c]) == ["model.name", "model.dropout", "seed"]  # two MLPs differ in dropout


def test_group_by_aggregates_repeated_seeds_as_mean_std_and_count(tmp_path):
    for i, (lr, seed, acc) in enumerate([(1e-3, 0, 0.9), (1e-3, 1, 0.8), (1e-3, 2, 0.7), (1e-2, 0, 0.5)]):
        make_run(tmp_path, f"20260101-00000{i}-r-{i:04d}", lr=lr, seed=seed, metrics={"val/acc": acc})
    ungrouped = compare(load_records(tmp_path))
    assert ungrouped.config_keys == ["seed", "optimizer.lr"]  # seeds differ: shown unless grouped
    result = invoke("compare", "--group-by", "optimizer.lr", "--sort", "val/acc", "--format", "json",
                    "--output-dir", tmp_path)
    assert result.exit_code == 0, result.output
    rows = json.loads(result.stdout)
    assert [(r["optimizer.lr"], r["n"]) for r in rows] == [(1e-3, 3), (1e-2, 1)]
    assert "seed" not in rows[0]  # varies within a group: aggregated away
    assert rows[0]["val/acc"]["mean"] == pytest.approx(0.8) and rows[0]["val/acc"]["std"] == pytest.approx(0.1)
    table = invoke("compare", "--group-by", "optimizer.lr", "--output-dir", tmp_path).stdout
    assert "0.8 ± 0.1" in table


def test_ls_newest_first_with_filters_status_and_dead_runs(tmp_path):
    grid(tmp_path)
    make_run(tmp_path, "20260103-000000-digits-mlp-dead", status="running", pid=2**22 + 12345,
             hostname=os.uname().nodename, heartbeat="2026-01-03T00:00:00+00:00")
    (tmp_path / "not-a-run").mkdir()
    result = invoke("ls", "--output-dir", tmp_path)
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0].split()[:6] == ["id", "name", "status", "model", "data", "key"]
    ids = [line.split()[0] for line in lines[1:]]
    assert ids == sorted(ids, reverse=True) and len(ids) == 6
    assert "dead" in lines[1] and "val/acc 0.95" in result.stdout
    only = invoke("ls", "--output-dir", tmp_path, "--filter", "model=cnn", "--filter", "optimizer.lr=0.001").stdout
    assert [line.split()[0] for line in only.splitlines()[1:]] == ["20260101-000002-digits-cnn-0002"]
    assert len(invoke("ls", "--output-dir", tmp_path, "--sweep", "s1").stdout.splitlines()) == 1 + 4
    assert len(invoke("ls", "--output-dir", tmp_path, "--status", "dead").stdout.splitlines()) == 1 + 1
    bad = invoke("ls", "--output-dir", tmp_path, "--filter", "model")
    assert bad.exit_code == 2 and "key=value" in bad.stderr


def test_runs_in_a_sweeps_own_folder_are_found(tmp_path):
    make_run(tmp_path / "sweeps" / "s2", "20260101-000000-a-0001", sweep="s2", trial=0, metrics={"val/acc": 0.9})
    records = load_records(tmp_path, sweep="s2")
    assert [r.run_id for r in records] == ["20260101-000000-a-0001"]
    result = invoke("show", "20260101-000000-a", "--output-dir", tmp_path)
    assert result.exit_code == 0, result.output


def test_show_prints_config_metrics_and_sparklines(tmp_path):
    make_run(tmp_path, "20260101-000000-digits-mlp-0001", metrics={"test/acc": 0.93, "val/acc": 0.7})
    result = invoke("show", "last", "--output-dir", tmp_path)
    assert result.exit_code == 0, result.output
    text = result.stdout
    assert "20260101-000000-digits-mlp-0001" in text and "completed" in text
    assert '"lr": 0.001' in text  # the config
    assert "test/acc" in text and "0.93" in text and "best val/acc" in text
    assert "▁▅█" in text  # val/acc rises 0.5, 0.6, 0.7
    assert "█▃▁" in text  # the losses fall as 1/(epoch+1)


def test_sparkline_scales_to_the_range_and_marks_nan():
    assert sparkline([0, 1, 2, 3, 4, 5, 6, 7]) == "▁▂▃▄▅▆▇█"
    assert sparkline([1.0, float("nan"), 1.0]) == "▁ ▁"
    assert len(sparkline(list(range(100)), width=20)) == 20


def test_metric_direction():
    assert [metric_mode(m) for m in ("val/acc", "test/r2", "val/top5_acc", "test/f1_micro")] == ["max"] * 4
    assert [metric_mode(m) for m in ("val/loss", "val/mae", "test/cer")] == ["min"] * 3


def test_compare_errors_are_clear(tmp_path):
    grid(tmp_path)
    result = invoke("compare", "--sort", "val/nope", "--output-dir", tmp_path)
    assert result.exit_code == 2 and "--sort val/nope" in result.stderr and "val/acc" in result.stderr
    result = invoke("compare", "--sweep", "nosuch", "--output-dir", tmp_path)
    assert result.exit_code == 2 and "no runs to compare" in result.stderr
    result = invoke("compare", "nosuchrun", "--output-dir", tmp_path)
    assert result.exit_code == 2 and "no such run folder" in result.stderr
    result = invoke("compare", "--format", "xml", "--output-dir", tmp_path)
    assert result.exit_code == 2 and "table, csv, json, markdown" in result.stderr


def test_rm_asks_deletes_run_folders_only_and_refuses_live_runs(tmp_path):
    done = make_run(tmp_path, "20260101-000000-a-0001")
    live = make_run(tmp_path, "20260101-000001-b-0002", status="running", pid=os.getpid(),
                    hostname=os.uname().nodename, heartbeat="2099-01-01T00:00:00+00:00")
    stranger = tmp_path / "mine"
    stranger.mkdir()
    (stranger / "notes.txt").write_text("keep")

    no = runner.invoke(app, ["runs", "rm", str(done), "--output-dir", str(tmp_path)], input="n\n")
    assert no.exit_code == 1 and done.is_dir()
    refused = invoke("rm", live, "--yes", "--output-dir", tmp_path)
    assert refused.exit_code == 2 and "live run" in refused.stderr and live.is_dir()
    refused = invoke("rm", stranger, done, "--yes", "--output-dir", tmp_path)
    assert refused.exit_code == 2 and "not a dlcli run folder" in refused.stderr
    assert (stranger / "notes.txt").is_file() and done.is_dir()  # nothing deleted when one is refused
    yes = runner.invoke(app, ["runs", "rm", "20260101-000000-a", "--output-dir", str(tmp_path)], input="y\n")
    assert yes.exit_code == 0, yes.output
    assert not done.exists() and live.is_dir()


def test_plot_overlays_runs_in_a_png_and_draws_in_the_terminal(tmp_path):
    from PIL import Image

    a = make_run(tmp_path, "20260101-000000-a-0001", metrics={"val/acc": 0.7})
    b = make_run(tmp_path, "20260101-000001-b-0002", metrics={"val/acc": 0.6},
                 rows=[{"epoch": e, "val/loss": 2.0 - 0.3 * e, "val/acc": 0.3 + 0.1 * e} for e in range(5)])
    png = tmp_path / "both.png"
    result = invoke("plot", a, b, "--output", png, "--output-dir", tmp_path)
    assert result.exit_code == 0, result.output
    image = Image.open(png)
    assert image.format == "PNG" and image.width >= 800 and image.height >= 300  # two panels: val/acc, val/loss
    assert len(set(image.convert("L").getdata())) > 20  # lines and text, not a blank canvas
    assert "val/acc" in result.stdout and "val/loss" in result.stdout
    assert any("\u2800" < ch <= "\u28ff" for ch in result.stdout)  # braille curves
    assert "20260101-000001-b-0002" in result.stdout  # legend
    bad = invoke("plot", a, "--metric", "val/nope", "--output", png, "--output-dir", tmp_path)
    assert bad.exit_code == 2 and "val/nope" in bad.stderr and "val/acc" in bad.stderr


@pytest.mark.slow
def test_runs_commands_import_neither_torch_nor_lightning(tmp_path):
    grid(tmp_path)
    code = ("import sys; from dlcli.cli import app; from typer.testing import CliRunner; r = CliRunner(); "
            f"out = [r.invoke(app, ['runs', c, *a, '--output-dir', {str(tmp_path)!r}]) for c, a in "
            "[('ls', []), ('compare', ['--sort', 'val/acc']), ('show', ['last'])]]; "
            "assert all(o.exit_code == 0 for o in out), [o.output for o in out]; "
            "heavy = [m for m in ('torch', 'pytorch_lightning', 'lightning', 'matplotlib') if m in sys.modules]; "
            "assert not heavy, heavy")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr


def test_compare_over_1000_run_folders(tmp_path):
    """1,000 runs (a 10 x 10 grid, 10 seeds each): compare and ls answer with the right content."""
    for i in range(1000):
        lr, depth, seed = (1e-4, 1e-3, 1e-2, 3e-2, 1e-1)[i % 5] * (1 + (i // 5) % 2), (i // 10) % 10, i // 100
        make_run(tmp_path, f"20260101-{i:06d}-r-{i:04x}", lr=lr, seed=seed, sweep="big", trial=i,
                 metrics={"val/acc": (i % 997) / 1000, "val/loss": 1 - (i % 997) / 1000}, rows=[],
                 **{"depth": depth})
    result = invoke("compare", "--sweep", "big", "--sort", "val/acc", "--format", "csv", "--output-dir", tmp_path)
    assert result.exit_code == 0, result.output
    table = list(csv.DictReader(io.StringIO(result.stdout)))
    assert len(table) == 1000
    assert list(table[0])[3:] == ["seed", "optimizer.lr", "val/acc", "val/loss"]
    assert float(table[0]["val/acc"]) == 0.996 and float(table[-1]["val/acc"]) == 0.0
    grouped = json.loads(invoke("compare", "--group-by", "optimizer.lr", "--format", "json",
                                "--output-dir", tmp_path).stdout)
    assert len(grouped) == 10 and sum(r["n"] for r in grouped) == 1000
    listed = invoke("ls", "--output-dir", tmp_path)
    assert listed.exit_code == 0 and len(listed.stdout.splitlines()) == 1001


def test_last_is_the_run_that_started_last_among_real_run_folders_only(tmp_path):
    """The outside tries: `last` was the folder name that sorts last, so a copy of an older run named
    `best-model-keep`, or a symlink `zzz-link` to a run elsewhere, was deleted by `runs rm last --yes`."""
    out = tmp_path / "outputs"
    old = make_run(out, "20260101-000000-a-0001", started_at="2026-01-01T00:00:00+0000")
    new = make_run(out, "20260301-000000-b-0002", started_at="2026-03-01T00:00:00+0000")
    shutil.copytree(old, out / "best-model-keep")
    elsewhere = make_run(tmp_path / "elsewhere", "20270101-000000-c-0003", started_at="2027-01-01T00:00:00+0000")
    (elsewhere / "unrelated.txt").write_text("keep")
    (out / "zzz-link").symlink_to(elsewhere, target_is_directory=True)
    make_run(out, "zzzz-lr-find", kind="lr_find", started_at="2028-01-01T00:00:00+0000")

    shown = invoke("show", "last", "--output-dir", out)
    assert shown.exit_code == 0 and new.name in shown.output
    removed = invoke("rm", "last", "--yes", "--output-dir", out)
    assert removed.exit_code == 0, removed.output
    assert not new.exists()
    assert (out / "best-model-keep").is_dir() and old.is_dir()
    assert (elsewhere / "unrelated.txt").is_file() and (out / "zzz-link").is_symlink()


@pytest.mark.parametrize("ref", ["", " ", ".", ".."])
def test_rm_of_an_empty_or_dot_reference_is_refused_from_inside_a_run_folder(tmp_path, monkeypatch, ref):
    run = make_run(tmp_path, "20260101-000000-a-0001")
    monkeypatch.chdir(run)
    result = invoke("rm", ref, "--yes", "--output-dir", tmp_path)
    assert result.exit_code == 2
    assert "names no run" in result.stderr
    assert (run / "summary.json").is_file()


def test_rm_of_a_symlink_deletes_nothing_behind_it(tmp_path):
    out = tmp_path / "outputs"
    out.mkdir()
    elsewhere = make_run(tmp_path / "elsewhere", "20270101-000000-c-0003")
    (elsewhere / "unrelated.txt").write_text("keep")
    link = out / "link"
    link.symlink_to(elsewhere, target_is_directory=True)
    result = invoke("rm", link, "--yes", "--output-dir", out)
    assert result.exit_code == 2 and "is a symlink" in result.stderr
    assert (elsewhere / "unrelated.txt").is_file() and (elsewhere / "summary.json").is_file() and link.is_symlink()


def test_a_damaged_summary_is_skipped_with_a_warning_and_never_breaks_the_listing(tmp_path):
    """The outside tries: a summary.json with wrong types, nested 100,000 deep, or binary broke runs
    ls/show/compare for all runs with tracebacks."""
    good = make_run(tmp_path, "20260101-000000-good-0001", metrics={"val/acc": 0.9})
    damaged = {"20260101-000001-types-0002": '{"run_id": 5, "status": [], "metrics": "x"}',
               "20260101-000002-deep-0003": "[" * 100000 + "]" * 100000,
               "20260101-000003-bin-0004": "\udcff\udcfe binary"}
    for run_id, text in damaged.items():
        path = make_run(tmp_path, run_id)
        (path / "summary.json").write_bytes(text.encode("utf-8", "surrogateescape"))
    for args in (["ls"], ["compare"]):
        result = invoke(*args, "--output-dir", tmp_path)
        assert result.exit_code == 0, result.output
        assert good.name in result.stdout and "Traceback" not in result.output
        for run_id in damaged:
            assert f"{run_id}/summary.json" in result.stderr
    shown = invoke("show", "20260101-000001-types", "--output-dir", tmp_path)
    assert shown.exit_code == 2 and "summary.json is damaged: 'run_id' is int, expected str" in shown.stderr


def test_an_empty_run_folder_left_by_a_kill_is_listed_with_all_and_removable(tmp_path):
    run = make_run(tmp_path, "20260101-000000-a-0001")
    empty = tmp_path / "20260102-000000-killed-0002"
    empty.mkdir()
    (empty / ".lock").touch()  # all a run killed right after its folder was made holds
    (tmp_path / "20260103-000000-mine-0003").mkdir()
    (tmp_path / "20260103-000000-mine-0003" / "notes.txt").write_text("keep")  # not empty: not dlcli's to delete
    plain = invoke("ls", "--output-dir", tmp_path)
    assert empty.name not in plain.stdout
    listed = invoke("ls", "--all", "--output-dir", tmp_path)
    assert listed.exit_code == 0 and empty.name in listed.stdout and "empty" in listed.stdout
    assert "mine" not in listed.stdout and run.name in listed.stdout
    refused = invoke("rm", "20260103-000000-mine", "--yes", "--output-dir", tmp_path)
    assert refused.exit_code == 2 and (tmp_path / "20260103-000000-mine-0003" / "notes.txt").is_file()
    removed = invoke("rm", "20260102-000000-killed", "--yes", "--output-dir", tmp_path)
    assert removed.exit_code == 0, removed.output
    assert not empty.exists() and run.is_dir()


def test_a_damaged_config_json_or_metrics_csv_is_named_and_compare_lists_the_rest(tmp_path):
    good = make_run(tmp_path, "20260101-000000-good-0001", metrics={"val/acc": 0.9})
    bad_config = make_run(tmp_path, "20260101-000001-cfg-0002", metrics={"val/acc": 0.8})
    (bad_config / "config.json").write_text('{"a": [1,')
    compared = invoke("compare", "--output-dir", tmp_path)
    assert compared.exit_code == 0 and good.name in compared.stdout and bad_config.name not in compared.stdout
    assert f"{bad_config.name}/config.json cannot be read" in compared.stderr
    binary = make_run(tmp_path, "20260101-000002-bin-0003")
    (binary / "metrics.csv").write_bytes(b"\xff\xfe\x00\x01binary")
    for args in (["show", binary.name], ["plot", binary.name, "--output", str(tmp_path / "p.png")]):
        result = invoke(*args, "--output-dir", tmp_path)
        assert result.exit_code == 2, result.output
        assert "metrics.csv cannot be read" in " ".join(result.stderr.split()) and "Traceback" not in result.output


def test_rm_deletes_only_folders_dlcli_made(tmp_path):
    """A marker written when dlcli makes a run folder decides, not "has config.yaml and summary.json"."""
    from dlcli.runs.folder import MARKER, new_run_dir

    made = new_run_dir(tmp_path, "mine")
    assert (made / MARKER).is_file()
    lookalike = make_run(tmp_path, "20260101-000000-look-0001")
    (lookalike / "summary.json").write_text(json.dumps({"run_id": "something-else", "status": "completed"}))
    refused = invoke("rm", lookalike, "--yes", "--output-dir", tmp_path)
    assert refused.exit_code == 2 and "was not made by dlcli" in " ".join(refused.stderr.split())
    assert lookalike.is_dir()
    legacy = make_run(tmp_path, "20260101-000001-old-0002")  # a run from before markers: its run_id is its name
    assert invoke("rm", legacy, "--yes", "--output-dir", tmp_path).exit_code == 0 and not legacy.exists()


def test_cv_keys_of_runs_that_were_no_fold_are_not_compared():
    from dlcli.runs.compare import _cv_only_when_used

    old = {"model.name": "mlp", "seed": 0}  # a run from before the cv node
    plain = {"model.name": "mlp", "seed": 0, "cv.folds": None, "cv.fold": 0, "cv.strategy": "stratified"}
    fold = {"model.name": "mlp", "seed": 0, "cv.folds": 5, "cv.fold": 2, "cv.strategy": "stratified"}
    assert differing_keys([_cv_only_when_used(f) for f in (old, plain)]) == []
    assert differing_keys([_cv_only_when_used(f) for f in (plain, fold)]) == ["cv.folds", "cv.fold", "cv.strategy"]


def test_ls_refuses_a_filter_key_no_run_has_but_not_a_value_no_run_has(tmp_path):
    grid(tmp_path)
    typo = invoke("ls", "--filter", "optimizr.lr=0.001", "--output-dir", tmp_path)
    assert typo.exit_code == 2
    assert "--filter optimizr.lr=0.001: no run under" in typo.stderr and "Did you mean 'optimizer.lr'?" in \
        " ".join(typo.stderr.split())
    cv = invoke("ls", "--cv", "iris5", "--output-dir", tmp_path)
    assert cv.exit_code == 2 and "--cv 'iris5': no cross-validation under" in " ".join(cv.stderr.split())
    none = invoke("ls", "--filter", "optimizer.lr=0.5", "--output-dir", tmp_path)
    assert none.exit_code == 0 and "match" in none.stderr  # a key runs have, a value none has: just no match
