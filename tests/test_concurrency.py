"""Runs started at the same moment into the same output_dir each get their own complete run folder."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys

import pytest
import yaml


@pytest.mark.slow
def test_four_trainings_started_at_once_make_four_complete_run_folders(tmp_path):
    out = tmp_path / "outputs"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    env.pop("DLCLI_RUN_DIR", None)  # each process makes its own folder
    args = [sys.executable, "-m", "dlcli", "train", "data=iris", "model=perceptron", "trainer.max_epochs=2",
            "threads=1", "trainer.enable_progress_bar=false", "trainer.accelerator=cpu", f"output_dir={out}"]
    procs = [subprocess.Popen([*args, f"seed={i}"], cwd=tmp_path, env=env, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for i in range(4)]
    outputs = [p.communicate(timeout=300) for p in procs]  # (stdout, stderr), read while they run
    for p, (_, stderr) in zip(procs, outputs, strict=True):
        assert p.returncode == 0, stderr
    printed = "".join("".join(stdout for stdout, _ in outputs).split())  # without the console's line breaks
    runs = sorted(out.iterdir())
    assert len(runs) == 4 and len({r.name for r in runs}) == 4
    seeds = set()
    for run in runs:
        summary = json.loads((run / "summary.json").read_text())
        assert summary["status"] == "completed" and summary["run_id"] == run.name
        seeds.add(yaml.safe_load((run / "config.yaml").read_text())["seed"])
        rows = list(csv.DictReader((run / "metrics.csv").open()))
        assert [int(r["epoch"]) for r in rows] == [0, 1]
        assert (run / "checkpoints" / "best.ckpt").is_file() and (run / "checkpoints" / "last.ckpt").is_file()
        assert not list(run.rglob("*.tmp"))  # no half-written file left behind
        assert f"runfolder:{run}" in printed  # each process reported its own folder
    assert seeds == {0, 1, 2, 3}  # each process wrote its own folder, none another's
