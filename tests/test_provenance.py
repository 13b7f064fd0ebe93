"""Provenance: summary.json's ``provenance`` (git, packages, CUDA, data) and ``dlcli runs diff A B``."""

from __future__ import annotations

import json
import shutil
import subprocess

import pytest
from typer.testing import CliRunner

from dlcli.cli import app
from dlcli.config.compose import compose
from dlcli.training.train import train

runner = CliRunner()
FAST = ["trainer.enable_progress_bar=false", "trainer.accelerator=cpu", "threads=1"]  # as conftest.py
ONE_EPOCH = ["trainer.max_epochs=1"]


def git(repo, *args):
    return subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@example.com", *args], cwd=repo,
                          check=True, capture_output=True, text=True).stdout.strip()


pytestmark = pytest.mark.slow  # each test trains (or copies) real runs: ~20 s in all

@pytest.fixture(scope="module")
def git_run(tmp_path_factory):
    """One 1-epoch digits run started inside a git repository with an uncommitted change: (run, HEAD's sha)."""
    repo = tmp_path_factory.mktemp("repo")
    git(repo, "init", "-q")
    (repo / "train.py").write_text("lr = 0.001\n")
    git(repo, "add", "train.py")
    git(repo, "commit", "-q", "-m", "first")
    (repo / "train.py").write_text("lr = 0.003\n")  # uncommitted: the run's code is dirty
    out = tmp_path_factory.mktemp("outputs")
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(repo)
        composed = compose([f"output_dir={out}", *FAST, *ONE_EPOCH], [])
        result = train(composed.config, composed.overrides)
    return result.run_dir, git(repo, "rev-parse", "HEAD")


def test_a_run_in_a_dirty_git_checkout_records_its_commit_diff_and_packages(git_run):
    run_dir, sha = git_run
    prov = json.loads((run_dir / "summary.json").read_text())["provenance"]
    assert prov["git"]["commit"] == sha
    assert prov["git"]["dirty"] is True
    assert prov["git"]["diff"] == "provenance/diff.patch"
    patch = (run_dir / "provenance" / "diff.patch").read_text()
    assert "-lr = 0.001" in patch and "+lr = 0.003" in patch
    lines = (run_dir / "provenance" / "requirements.txt").read_text().splitlines()
    assert any(line.startswith("torch==") for line in lines)
    names = [line.partition("==")[0].lower() for line in lines]
    assert names == sorted(names) and len(names) == len(set(names))
    assert prov["packages"] == "provenance/requirements.txt" and len(prov["packages_sha256"]) == 64
    assert isinstance(prov["command"], list)
    pre = json.loads((run_dir / "preprocessing.json").read_text())
    assert prov["data_fingerprint"] == pre["data_fingerprint"]  # the same record, not hashed twice


def test_a_run_outside_any_repository_has_no_git_and_completes(tmp_path, monkeypatch):
    monkeypatch.setenv("GIT_CEILING_DIRECTORIES", str(tmp_path.parent))  # git must not find a checkout above
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    composed = compose([f"output_dir={tmp_path / 'outputs'}", *FAST, *ONE_EPOCH], [])
    result = train(composed.config, composed.overrides)
    summary = json.loads((result.run_dir / "summary.json").read_text())
    assert result.status == "completed" and summary["status"] == "completed"
    assert summary["provenance"]["git"] is None
    assert not (result.run_dir / "provenance" / "diff.patch").exists()
    assert (result.run_dir / "provenance" / "requirements.txt").is_file()


@pytest.fixture
def two_runs(git_run, tmp_path):
    """Run A (trained) and B: A's copy with another optimizer.lr, another numpy and a changed data file."""
    a = shutil.copytree(git_run[0], tmp_path / "20260101-000000-a")
    b = shutil.copytree(git_run[0], tmp_path / "20260101-000001-b")
    for path in (a / "summary.json", b / "summary.json"):
        summary = json.loads(path.read_text())
        summary["run_id"] = path.parent.name
        path.write_text(json.dumps(summary))
    config = json.loads((b / "config.json").read_text())
    lr = config["optimizer"]["lr"]
    config["optimizer"]["lr"] = lr * 3
    config["name"] = "another-name"  # bookkeeping: not a difference
    for name in ("config.json", "config.yaml"):  # JSON is YAML
        (b / name).write_text(json.dumps(config))
    reqs = b / "provenance" / "requirements.txt"
    lines = [line if not line.lower().startswith("numpy==") else "numpy==0.0.1"
             for line in reqs.read_text().splitlines()]
    reqs.write_text("\n".join(lines) + "\n")
    summary = json.loads((b / "summary.json").read_text())
    summary["started_at"] = "2026-01-01T00:00:01+0000"
    summary["duration_s"] = 99.0
    shown = {"key": "data.path", "bytes": 10, "sha256": "0" * 64}
    summary["provenance"]["data_fingerprint"] = {"train.csv": shown}
    path_a = a / "summary.json"
    sa = json.loads(path_a.read_text())
    sa["provenance"]["data_fingerprint"] = {"train.csv": {**shown, "sha256": "1" * 64}}
    path_a.write_text(json.dumps(sa))
    (b / "summary.json").write_text(json.dumps(summary))
    return a, b, lr


def test_runs_diff_shows_exactly_the_config_package_and_data_differences(two_runs):
    a, b, lr = two_runs
    result = runner.invoke(app, ["runs", "diff", str(a), str(b), "--format", "json"])
    assert result.exit_code == 0, result.output
    found = json.loads(result.output)
    assert found["config"] == [{"key": "optimizer.lr", "a": lr, "b": lr * 3}]
    numpy = [row for row in found["environment"] if row["key"] == "package numpy"]
    assert len(numpy) == 1 and numpy[0]["b"] == "0.0.1"
    assert found["environment"] == numpy  # same versions, python, CUDA
    assert found["code"] == []
    assert found["data"] == [{"key": "file train.csv", "a": "1" * 64, "b": "0" * 64}]
    assert found["metrics"] and all(row["change"] == 0 for row in found["metrics"])  # a copy: same metrics

    table = runner.invoke(app, ["runs", "diff", str(a), str(b)])
    assert table.exit_code == 0, table.output
    assert "optimizer.lr" in table.output and "package numpy" in table.output and "file train.csv" in table.output
    for unrelated in ("started_at", "duration", "run_id", "output_dir", "another-name"):
        assert unrelated not in table.output
    markdown = runner.invoke(app, ["runs", "diff", str(a), str(b), "-f", "markdown"])
    assert markdown.exit_code == 0 and "| optimizer.lr |" in markdown.output


def test_runs_diff_refuses_an_unknown_format(two_runs):
    a, b, _ = two_runs
    result = runner.invoke(app, ["runs", "diff", str(a), str(b), "--format", "xml"])
    assert result.exit_code == 2 and "--format xml" in result.output


def test_runs_diff_with_a_run_from_before_provenance_shows_no_unknowns_as_changes(two_runs):
    a, b, _ = two_runs
    summary = json.loads((b / "summary.json").read_text())
    del summary["provenance"]
    (b / "summary.json").write_text(json.dumps(summary))
    shutil.rmtree(b / "provenance")
    result = runner.invoke(app, ["runs", "diff", str(a), str(b), "--format", "json"])
    assert result.exit_code == 0, result.output
    found = json.loads(result.output)
    assert found["environment"] == [] and found["code"] == []
    # B's fingerprint now comes from its preprocessing.json (the trained run's own): A's edited one differs
    assert json.loads((b / "preprocessing.json").read_text())["data_fingerprint"] == {}  # digits: bundled
    assert found["data"] == [{"key": "file train.csv", "a": "1" * 64, "b": None}]


def test_a_run_folder_with_only_start_and_provenance_files_is_empty(tmp_path):
    from dlcli.runs.table import find_empty_run_dirs

    run = tmp_path / "20260101-000000-x"
    (run / "provenance").mkdir(parents=True)
    (run / "provenance" / "requirements.txt").write_text("torch==2.13.0\n")
    (run / "config.yaml").write_text("{}\n")
    (run / ".dlcli-run").write_text("")
    assert find_empty_run_dirs(tmp_path) == [run]


def test_resume_and_eval_warn_when_the_code_or_packages_differ_from_the_runs(git_run, tmp_path, monkeypatch):
    run_src, sha = git_run
    run_dir = tmp_path / "outputs" / run_src.name
    shutil.copytree(run_src, run_dir)
    repo = tmp_path / "repo"
    repo.mkdir()
    git(repo, "init", "-q")
    (repo / "train.py").write_text("lr = 0.1\n")
    git(repo, "add", "train.py")
    git(repo, "commit", "-q", "-m", "other")
    monkeypatch.chdir(repo)
    reqs = run_dir / "provenance" / "requirements.txt"
    reqs.write_text("".join(line.replace("torch==", "torch==0.0.") + "\n" if line.startswith("torch==")
                            else line + "\n" for line in reqs.read_text().splitlines()))
    result = runner.invoke(app, ["eval", str(run_dir)])
    assert result.exit_code == 0, result.output
    assert f"warning: evaluating run {run_dir.name} under other code than it was trained with" in result.output
    here = git(repo, "rev-parse", "HEAD")
    assert f"the code is at commit {here[:10]}, the run was trained at {sha[:10]}" in result.output
    assert "the run was trained with uncommitted changes" in result.output  # and this checkout is clean
    assert "1 installed package differs: torch 0.0." in result.output

    resumed = runner.invoke(app, ["resume", str(run_dir), "trainer.max_epochs=2", *FAST])
    assert resumed.exit_code == 0, resumed.output
    assert f"warning: resuming run {run_dir.name} under other code" in resumed.output


def test_eval_says_nothing_when_the_code_and_packages_are_the_runs(git_run, tmp_path, monkeypatch):
    run_src, _ = git_run
    monkeypatch.chdir(run_src.parents[1])  # outside the run's repository: no git state to compare
    result = runner.invoke(app, ["eval", str(run_src)])
    assert result.exit_code == 0, result.output
    assert "warning" not in result.output
