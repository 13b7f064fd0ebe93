"""Real variable-length series with their official split: UCR/UEA sets that ship inside sktime's wheel.

    pip install sktime            # only for its data files: the .ts files are read here, sktime is never imported
    python bench/ucr_variable_length.py [--datasets JapaneseVowels PLAID] [--seeds 0 1 2] [--epochs 30]

Each set's TRAIN and TEST files become two NPZ files, each sequence padded *at the end* with NaN (the
archive's own convention for unequal lengths), and dlcli trains with the official split exactly as a
user would: `dlcli train data=npz data.path=TRAIN.npz data.test_path=TEST.npz model=gru` (and lstm).
Beside it, the same sequences padded with zeros *at the start* and no masking: the usual hand-made
workaround, which the issue measured as the only way recurrent models worked before lengths were
carried with the batch. Test accuracy over the official test file; results in
bench/results/ucr_variable_length.json.

JapaneseVowels: 270 train / 370 test speakers' utterances, 12 LPC coefficients, 7-29 steps, 9 classes.
PLAID: 537 / 559 appliance current traces, 1 channel, 100-1344 steps, 11 classes.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import platform
import statistics
import sys
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import numpy as np

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results" / "ucr_variable_length.json"


def data_dir() -> Path:
    spec = importlib.util.find_spec("sktime")  # finds the package without importing it (and its dependencies)
    if spec is None or not spec.submodule_search_locations:
        sys.exit("sktime is not installed: pip install sktime (only its data files are used)")
    return Path(next(iter(spec.submodule_search_locations))) / "datasets" / "data"


def read_ts(path: Path) -> tuple[list, list[str]]:
    """A .ts file of the UCR/UEA archive -> (sequences as (T_i, F) arrays, labels)."""
    import numpy as np

    seqs, labels, in_data = [], [], False
    for line in path.read_text().splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        if not in_data:
            in_data = line.lower() == "@data"
            continue
        *dims, label = line.split(":")  # one field per channel (comma-separated values), the label last
        channels = [np.array([float(v) for v in d.split(",")], dtype=np.float32) for d in dims]
        seqs.append(np.stack(channels, axis=1))  # (T_i, F)
        labels.append(label.strip())
    return seqs, labels


def padded(seqs: list, length: int, at_end: bool, value: float) -> np.ndarray:
    import numpy as np

    x = np.full((len(seqs), length, seqs[0].shape[1]), value, dtype=np.float32)
    for i, s in enumerate(seqs):
        if at_end:
            x[i, :len(s)] = s
        else:
            x[i, length - len(s):] = s
    return x


def run(train: Path, test: Path, model: str, seed: int, epochs: int, out: Path) -> float:
    from dlcli.config.compose import compose
    from dlcli.training.train import train as train_run

    cfg = compose(["data=npz", f"data.path={train}", f"data.test_path={test}", f"model={model}",
                   f"seed={seed}", f"trainer.max_epochs={epochs}", f"output_dir={out}", "threads=1",
                   "trainer.enable_progress_bar=false"]).config
    return float(train_run(cfg).metrics["test/acc"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", nargs="+", default=["JapaneseVowels"])
    parser.add_argument("--models", nargs="+", default=["gru", "lstm"])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--output", type=Path, default=RESULTS)
    args = parser.parse_args()
    import numpy as np
    import torch

    torch.set_num_threads(1)
    results: dict = {"command": "dlcli train data=npz data.path=TRAIN.npz data.test_path=TEST.npz model=M "
                                f"trainer.max_epochs={args.epochs} (+ seed, threads=1)",
                     "seeds": args.seeds, "python": platform.python_version(), "torch": torch.__version__,
                     "datasets": {}}
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        for name in args.datasets:
            splits = {s: read_ts(data_dir() / name / f"{name}_{s}.ts") for s in ("TRAIN", "TEST")}
            length = max(len(x) for seqs, _ in splits.values() for x in seqs)
            files = {}
            for layout, at_end, value in (("nan_end", True, np.nan), ("zero_start", False, 0.0)):
                for s, (seqs, labels) in splits.items():
                    files[layout, s] = tmp / f"{name}_{layout}_{s}.npz"
                    np.savez(files[layout, s], x=padded(seqs, length, at_end, value), y=np.array(labels))
            lengths = [len(x) for seqs, _ in splits.values() for x in seqs]
            entry: dict = {"train": len(splits["TRAIN"][0]), "test": len(splits["TEST"][0]),
                           "channels": int(splits["TRAIN"][0][0].shape[1]), "lengths": [min(lengths), max(lengths)],
                           "classes": len(set(splits["TRAIN"][1])), "test_acc": {}}
            for model in args.models:
                for layout in ("nan_end", "zero_start"):
                    accs = [run(files[layout, "TRAIN"], files[layout, "TEST"], model, seed, args.epochs, tmp / "out")
                            for seed in args.seeds]
                    entry["test_acc"][f"{model}/{layout}"] = {"runs": accs, "mean": statistics.mean(accs)}
                    print(f"{name} {model:4s} {layout:10s}: " + " ".join(f"{a:.3f}" for a in accs)
                          + f"  mean {statistics.mean(accs):.3f}", flush=True)
            results["datasets"][name] = entry
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(results, indent=2) + "\n")
    print(f"written: {args.output}")


if __name__ == "__main__":
    main()
