"""Tags, notes and clean-up: `dlcli train --tag`, `runs tag / untag / note`, `runs ls --tag`, `runs prune`."""

from __future__ import annotations

import json
import subprocess
import sys

from test_runs import make_run  # tests/ is on sys.path under pytest
from typer.testing import CliRunner

from dlcli.cli import app

runner = CliRunner()


def invoke(*args):
    return runner.invoke(app, ["runs", *map(str, args)])


def test_tags_and_notes_are_added_listed_shown_and_removed(tmp_path):
    a = make_run(tmp_path, "20260101-000000-a-0001")
    b = make_run(tmp_path, "20260101-000001-b-0002")
    assert invoke("tag", a.name, "baseline", "best", "--output-dir", tmp_path).exit_code == 0
    assert invoke("tag", b.name, "baseline", "--output-dir", tmp_path).exit_code == 0
    listed = invoke("ls", "--tag", "best", "--output-dir", tmp_path)
    assert a.name in listed.stdout and b.name not in listed.stdout
    both = invoke("ls", "--tag", "baseline", "--output-dir", tmp_path)
    assert a.name in both.stdout and b.name in both.stdout
    assert invoke("note", a.name, "lr too high?", "--output-dir", tmp_path).exit_code == 0
    shown = invoke("show", a.name, "--output-dir", tmp_path)
    assert "tags: baseline, best" in shown.stdout and "note: lr too high?" in shown.stdout
    assert invoke("untag", a.name, "best", "--output-dir", tmp_path).exit_code == 0
    assert json.loads((a / "summary.json").read_text())["tags"] == ["baseline"]
    bad = invoke("tag", a.name, "a,b", "--output-dir", tmp_path)
    assert bad.exit_code == 2 and "without commas" in bad.stderr


def test_train_tag_is_recorded(tmp_path):
    out = tmp_path / "o"
    result = runner.invoke(app, ["train", "--tag", "keep", "--tag", "smoke", "threads=1", "trainer.max_epochs=1",
                                 "trainer.enable_progress_bar=false", f"output_dir={out}"])
    assert result.exit_code == 0, result.output
    (run_dir,) = out.iterdir()
    assert json.loads((run_dir / "summary.json").read_text())["tags"] == ["keep", "smoke"]


def test_a_tag_with_a_comma_is_refused_the_same_way_from_the_flag_and_the_config(tmp_path):
    out = tmp_path / "o"
    flag = runner.invoke(app, ["train", "--tag", "a,b", "threads=1", f"output_dir={out}"])
    assert flag.exit_code == 2 and "--tag: tag 'a,b': a tag is printable text without commas" in flag.stderr
    config = runner.invoke(app, ["train", "tags=[ok,'x\ty']", "threads=1", f"output_dir={out}"])
    assert config.exit_code == 2 and "tags[1]" in config.stderr and "printable text without commas" in config.stderr
    assert not out.exists() or not any(out.iterdir())  # refused before any run folder


def test_prune_lists_only_what_it_selects_deletes_only_with_yes_and_spares_live_and_keep_runs(tmp_path):
    done = make_run(tmp_path, "20260101-000000-done-0001", status="completed")
    failed = make_run(tmp_path, "20260101-000001-failed-0002", status="failed")
    kept = make_run(tmp_path, "20260101-000002-kept-0003", status="failed", tags=["keep"])
    live = make_run(tmp_path, "20260101-000003-live-0004", status="failed")  # held by a live process below
    code = ("import fcntl, os, time\n"
            f"fd = os.open({str(live / '.lock')!r}, os.O_RDWR | os.O_CREAT)\n"
            "fcntl.flock(fd, fcntl.LOCK_EX)\nprint('held', flush=True)\ntime.sleep(60)\n")
    holder = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    assert holder.stdout.readline().strip() == "held"
    try:
        dry = invoke("prune", "--older-than", "0d", "--status", "failed", "--output-dir", tmp_path)
        assert dry.exit_code == 0, dry.output
        assert failed.name in dry.stdout and "1 run folder would be deleted" in dry.stdout
        assert done.name not in dry.stdout and kept.name not in dry.stdout and live.name not in dry.stdout
        assert f"kept {kept.name} (tagged keep)" in dry.stderr and f"kept {live.name} (live)" in dry.stderr
        assert all(p.is_dir() for p in (done, failed, kept, live))  # nothing deleted without --yes
        gone = invoke("prune", "--older-than", "0d", "--status", "failed", "--yes", "--output-dir", tmp_path)
        assert gone.exit_code == 0, gone.output
        assert not failed.exists() and all(p.is_dir() for p in (done, kept, live))
    finally:
        holder.kill()
        holder.wait()


def test_prune_keeps_the_best_and_says_what_it_needs(tmp_path):
    runs = [make_run(tmp_path, f"20260101-00000{i}-r-000{i}", metrics={"val/acc": acc})
            for i, acc in enumerate([0.9, 0.7, 0.95, 0.8])]
    result = invoke("prune", "--keep-best", "2", "--by", "val/acc", "--yes", "--output-dir", tmp_path)
    assert result.exit_code == 0, result.output
    assert [p.exists() for p in runs] == [True, False, True, False]
    assert invoke("prune", "--output-dir", tmp_path).exit_code == 2
    assert invoke("prune", "--keep-best", "2", "--output-dir", tmp_path).exit_code == 2
    bad = invoke("prune", "--older-than", "soon", "--output-dir", tmp_path)
    assert bad.exit_code == 2 and "30d" in bad.stderr


def test_prune_by_a_metric_no_run_has_is_refused_and_runs_without_it_are_never_outranked(tmp_path):
    runs = [make_run(tmp_path, f"20260101-00000{i}-r-000{i}", metrics={"val/acc": acc})
            for i, acc in enumerate([0.9, 0.7, 0.95])]
    regression = make_run(tmp_path, "20260101-000009-reg-0009", metrics={"val/mse": 0.3})
    typo = invoke("prune", "--keep-best", "1", "--by", "val/accc", "--yes", "--output-dir", tmp_path)
    assert typo.exit_code == 2
    message = " ".join(typo.stderr.split())
    assert "--by 'val/accc': none of the 4 runs selected has this final metric" in message
    assert "Did you mean 'val/acc'?" in message and "Their metrics: val/acc, val/mse" in message
    assert all(p.is_dir() for p in [*runs, regression])  # nothing deleted
    result = invoke("prune", "--keep-best", "1", "--by", "val/acc", "--yes", "--output-dir", tmp_path)
    assert result.exit_code == 0, result.output
    assert [p.exists() for p in runs] == [False, False, True] and regression.is_dir()
    assert f"kept {regression.name} (no val/acc to rank it by)" in result.stderr
    status = invoke("prune", "--status", "failled", "--output-dir", tmp_path)
    assert status.exit_code == 2 and "--status 'failled' is no run status. Did you mean 'failed'?" in status.stderr


def test_untag_says_which_tags_the_run_did_not_have_and_ls_refuses_an_unknown_status(tmp_path):
    run = make_run(tmp_path, "20260101-000000-a-0001")
    assert invoke("tag", run.name, "baseline", "--output-dir", tmp_path).exit_code == 0
    result = invoke("untag", run.name, "baseline", "basline", "--output-dir", tmp_path)
    assert result.exit_code == 0
    assert f"{run.name}: untagged baseline" in result.stdout and "basline" not in result.stdout
    assert f"{run.name} had no tag basline (its tags: none)" in result.stderr
    listed = invoke("ls", "--status", "complted", "--output-dir", tmp_path)
    assert listed.exit_code == 2 and "--status 'complted' is no run status. Did you mean 'completed'?" in \
        listed.stderr
