"""Streamed vs in-memory image folders (``data.cache``): epoch time, start-up and peak memory.

    python bench/stream_speed.py [--images 4000] [--file-size 48] [--size 32] [--epochs 3] [--batch-size 64]
                                 [--hidden 128] [--model mlp|cnn] [--output bench/results/stream_speed.json]

Generates a folder of ``--images`` RGB PNGs (``--file-size`` pixels square, two classes told apart by
colour, with noise) that fits in memory, then trains the same run on it three ways, each ``dlcli train``
in its own process, one after the other: ``data.cache=memory`` (every image decoded before the first
step; batches are tensor slices), and ``data.cache=none`` (every image decoded, resized and scaled per
batch) with ``data.num_workers=auto`` (min(4, CPUs - 1) DataLoader workers) and with ``0`` (decoded in
the training process). The model is an MLP (one hidden layer of ``--hidden`` units): little compute
per image, so the data path's cost shows; ``--model cnn`` (two conv blocks of 16 and 32 filters, a
global-average-pooling head) has more. Epoch times (each with its validation) come from each run's
summary.json (``epoch_seconds``); loading (decoding everything, or only listing the files, and fitting
the scaling statistics) is timed alone in the same process, before the run, after torch is imported.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
MODEL_NAMES = {"mlp": "mlp [{hidden}]", "cnn": "cnn [16, 32]"}
RESULTS = ROOT / "bench" / "results" / "stream_speed.json"
MODES = {"memory": ["data.cache=memory"],
         "streamed, num_workers=auto": ["data.cache=none", "data.num_workers=auto"],
         "streamed, num_workers=0": ["data.cache=none", "data.num_workers=0"]}


def make_folder(root: Path, n: int, side: int) -> None:
    from PIL import Image

    rng = np.random.default_rng(0)
    for c, (cls, colour) in enumerate((("red", (190, 60, 60)), ("blue", (60, 60, 190)))):
        (root / cls).mkdir(parents=True)
        for i in range(n // 2):
            px = np.clip(np.array(colour) + rng.normal(0, 40, (side, side, 3)), 0, 255).astype(np.uint8)
            Image.fromarray(px, "RGB").save(root / cls / f"{c}-{i}.png")


def child(mode: str, overrides: list[str]) -> None:
    """In the child process: time loading the data alone (listing or decoding, fitting the statistics), then
    train; torch and Lightning are imported first, so that neither time includes them."""
    import pytorch_lightning  # noqa: F401
    import torch  # noqa: F401

    from dlcli.config.compose import compose
    from dlcli.config.validate import validate
    from dlcli.training.build import load_data
    from dlcli.training.train import train

    c = compose(overrides)
    t = time.perf_counter()
    prepared = load_data(validate(c.config))
    load_s = time.perf_counter() - t
    del prepared
    result = train(c.config, c.overrides)
    print(json.dumps({"load_s": round(load_s, 3), "run_dir": str(result.run_dir)}))


def run(mode: str, folder: Path, out: Path, args: argparse.Namespace) -> dict:
    overrides = ["data=image_folder", f"data.root={folder}", f"data.size=[{args.size},{args.size}]",
                 f"data.batch_size={args.batch_size}", "data.stats_sample=null",
                 *(["model=mlp", f"model.hidden=[{args.hidden}]"] if args.model == "mlp" else
                   ["model=cnn", "model.channels=[16,32]", "model.head=gap", "model.head_dropout=0.0"]),
                 f"trainer.max_epochs={args.epochs}", "trainer.accelerator=cpu",
                 "trainer.enable_progress_bar=false", "callbacks=none", "threads=1", f"output_dir={out}",
                 f"name={mode.split(',')[0]}", *MODES[mode]]
    proc = subprocess.run([sys.executable, __file__, "--child", mode, *overrides], capture_output=True, text=True,
                          cwd=ROOT)
    if proc.returncode:
        sys.exit(f"{mode} failed:\n{proc.stderr[-3000:]}")
    child_out = json.loads(proc.stdout.strip().splitlines()[-1])
    summary = json.loads((Path(child_out["run_dir"]) / "summary.json").read_text())
    epochs = summary["epoch_seconds"]
    return {"data_path": summary["data_path"], "load_s": child_out["load_s"], "epoch_seconds": epochs,
            "first_epoch_s": epochs[0], "later_epochs_mean_s": round(sum(epochs[1:]) / max(1, len(epochs) - 1), 3),
            "fit_s": summary["fit_duration_s"], "peak_rss_mib": summary["peak_rss_mib"],
            "test_acc": summary["metrics"].get("test/acc")}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--images", type=int, default=4000)
    p.add_argument("--file-size", type=int, default=48)
    p.add_argument("--size", type=int, default=32)
    p.add_argument("--epochs", type=int, default=3)
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--hidden", type=int, default=128)
    p.add_argument("--model", choices=("mlp", "cnn"), default="mlp",
                   help="cnn: model=cnn model.channels=[16,32], more compute per image")
    p.add_argument("--output", type=Path, default=RESULTS)
    p.add_argument("--child", help=argparse.SUPPRESS)
    args, rest = p.parse_known_args()
    if args.child:
        child(args.child, rest)
        return
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "images"
        make_folder(folder, args.images, args.file_size)
        results = {}
        for mode in MODES:
            results[mode] = run(mode, folder, Path(tmp) / "runs", args)
            r = results[mode]
            print(f"{mode:28s} load {r['load_s']} s, epochs {r['epoch_seconds']} s, peak RSS {r['peak_rss_mib']} "
                  f"MiB, test/acc {r['test_acc']}", flush=True)
    decoded = args.images * 3 * args.size * args.size * 4
    record = {"workload": {"images": args.images, "file_size": args.file_size, "size": [args.size, args.size],
                           "decoded_float32_mib": round(decoded / 2**20, 1), "epochs": args.epochs,
                           "batch_size": args.batch_size, "threads": 1,
                           "model": MODEL_NAMES[args.model].format(hidden=args.hidden)},
              "machine": {"platform": platform.platform(), "python": platform.python_version(),
                          "cpus": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()},
              "results": results,
              "streamed_over_memory_later_epochs": {
                  m: round(r["later_epochs_mean_s"] / results["memory"]["later_epochs_mean_s"], 2)
                  for m, r in results.items() if m != "memory"}}
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(record, indent=2) + "\n")
    print(json.dumps(record["streamed_over_memory_later_epochs"]), f"-> {args.output}")


if __name__ == "__main__":
    main()
