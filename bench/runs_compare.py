"""Time ``dlcli runs ls`` and ``dlcli runs compare`` over 1,000 run folders (target: under 1 s each).

    python bench/runs_compare.py [--runs 1000] [--repeat 5]

Writes 1,000 synthetic run folders (summary.json, config.yaml + config.json, metrics.csv, as train()
leaves them) to a temporary folder, then times each command in-process (the library and the Typer
command) and as a CLI subprocess (what a user waits for: Python start-up and imports included).
Results: bench/results/runs_compare.json.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results" / "runs_compare.json"
LRS = (1e-4, 3e-4, 1e-3, 3e-3, 1e-2)


def config(i: int, root: Path) -> dict:
    """A config shaped like a real run's (about 90 keys), varying lr, model width and seed."""
    return {
        "seed": i // 100, "name": "digits-mlp", "output_dir": str(root), "task": "auto", "threads": 1,
        "metrics": None, "regularization": {"l1": 0.0},
        "data": {"name": "digits", "batch_size": 64, "val_fraction": 0.1, "test_fraction": 0.2, "stratify": True,
                 "scaling": "standard", "num_workers": 0, "resize": None, "channels": None},
        "model": {"name": "mlp", "hidden": [64 * (1 + (i // 5) % 2)], "dropout": 0.0, "activation": "relu",
                  "norm": None, "init": {"name": "default"}},
        "loss": {"name": "cross_entropy", "label_smoothing": 0.0, "class_weights": None},
        "optimizer": {"name": "adam", "lr": LRS[i % 5], "betas": [0.9, 0.999], "eps": 1e-8, "weight_decay": 0.0,
                      "amsgrad": False, "param_groups": None, "decay_bias_and_norm": True},
        "scheduler": {"name": "none", "warmup_epochs": 0, "warmup_steps": 0, "warmup_start_factor": 0.1},
        "augmentation": {"name": "none"},
        "callbacks": {"model_checkpoint": {"monitor": "auto", "mode": "auto", "save_last": True},
                      "early_stopping": {"monitor": "auto", "mode": "auto", "patience": 5}},
        "trainer": {"max_epochs": 20, "accelerator": "auto", "devices": "auto", "precision": "32-true",
                    "deterministic": False, "gradient_clip_val": None, "log_every_n_steps": 50,
                    "enable_progress_bar": True},
        "logger": {"name": "none"},
    }


def write_runs(root: Path, n: int) -> None:
    for i in range(n):
        path = root / f"20260101-{i:06d}-digits-mlp-{i:04x}"
        path.mkdir()
        text = json.dumps(config(i, root))
        (path / "config.json").write_text(text)
        (path / "config.yaml").write_text(text)  # JSON is YAML; only its presence matters here
        acc = 0.80 + (i % 97) / 500
        (path / "summary.json").write_text(json.dumps({
            "run_id": path.name, "name": "digits-mlp", "status": "completed", "task": "multiclass",
            "data": "digits", "model": "mlp", "seed": i // 100, "sweep": "bench", "trial": i,
            "metrics": {"test/acc": acc - 0.01, "test/loss": 1 - acc, "val/acc": acc, "val/loss": 1.1 - acc,
                        "train/loss": 0.9 - acc},
            "best": {"monitor": "val/acc", "mode": "max", "value": acc, "epoch": 19}, "duration_s": 30.0 + i % 7,
            "epochs": 20, "epoch_seconds": [1.5] * 20}))
        rows = ["epoch,step,train/loss,val/acc,val/loss,lr"]
        rows += [f"{e},{(e + 1) * 23},{1 / (e + 1)},{acc * e / 19},{1.1 / (e + 1)},0.001" for e in range(20)]
        (path / "metrics.csv").write_text("\n".join(rows) + "\n")


def best_of(fn, repeat: int) -> dict:
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return {"best_s": round(min(times), 4), "median_s": round(statistics.median(times), 4)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=1000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()

    from typer.testing import CliRunner

    from dlcli.cli import app
    from dlcli.runs.compare import compare, to_csv
    from dlcli.runs.table import load_records

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        t = time.perf_counter()
        write_runs(root, args.runs)
        made = time.perf_counter() - t
        runner = CliRunner()

        def cli(*argv: str) -> None:
            result = runner.invoke(app, ["runs", *argv, "--output-dir", str(root)])
            assert result.exit_code == 0, result.output

        def proc(*argv: str) -> None:
            subprocess.run([sys.executable, "-m", "dlcli", "runs", *argv, "--output-dir", str(root)], check=True,
                           stdout=subprocess.DEVNULL)

        compare_args = ("compare", "--sort", "val/acc")
        results = {
            "library: load_records (ls)": best_of(lambda: load_records(root), args.repeat),
            "library: load_records + compare + csv": best_of(
                lambda: to_csv(compare(load_records(root), sort="val/acc")), args.repeat),
            "in-process: dlcli runs ls": best_of(lambda: cli("ls"), args.repeat),
            "in-process: dlcli runs compare --sort val/acc": best_of(lambda: cli(*compare_args), args.repeat),
            "subprocess: dlcli runs ls": best_of(lambda: proc("ls"), args.repeat),
            "subprocess: dlcli runs compare --sort val/acc": best_of(lambda: proc(*compare_args), args.repeat),
            "subprocess: dlcli runs compare --format csv": best_of(
                lambda: proc(*compare_args, "--format", "csv"), args.repeat),
            "subprocess: python -c pass (interpreter start-up alone)": best_of(
                lambda: subprocess.run([sys.executable, "-c", "pass"], check=True), args.repeat),
        }

    width = max(map(len, results))
    print(f"{args.runs} run folders (written in {made:.1f} s); best of {args.repeat} (median):")
    for name, r in results.items():
        print(f"  {name:<{width}}  {r['best_s']:7.3f} s  ({r['median_s']:.3f} s)")
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps({"runs": args.runs, "repeat": args.repeat, "target_s": 1.0,
                                   "machine": {"python": platform.python_version(), "cpu": platform.processor()
                                               or platform.machine()},
                                   "results": results}, indent=2) + "\n")
    print(f"written: {RESULTS}")


if __name__ == "__main__":
    main()
