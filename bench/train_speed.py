"""Training speed: dlcli against a hand-written PyTorch loop, plain Lightning and Keras 3, side by side.

    python bench/train_speed.py [--quick] [--repeat N] [--threads 1] [--output bench/results/train_speed.json]

Three workloads, each trained with the same model, data split, batch size, optimizer and epochs by:
  reference        a hand-written PyTorch loop over in-memory tensors: shuffle once per epoch with one
                   gather, slice batches, zero_grad / forward / backward / step, validate once per epoch
                   (batched, no_grad, one .item() per epoch). Ratio 1.0.
  dlcli            `train(cfg)` in-process with `callbacks=none trainer.enable_progress_bar=false`;
                   timed: summary.json's `fit_duration_s` (Lightning's fit, validation included);
                   the `total` column also counts imports, data loading, the final test and the run folder.
  dlcli+ckpt       the same with dlcli's default `model_checkpoint` (best and last checkpoint, written
                   every epoch) and without early stopping (it could end the run sooner); digits MLP only
  lightning        plain Lightning with its defaults: DataLoader (shuffle, no workers), `self.log` per step
                   in training_step (Lightning's default on_step for training), torchmetrics accuracy in
                   validation, default logger (TensorBoard when installed, else CSV), default checkpointing,
                   model summary, progress bar ON (its default; to a pipe)
  lightning-nobar  the same with `enable_progress_bar=False` (digits MLP only)
  lightning-floor  Lightning's loop at its leanest: `barebones=True` (no logging, checkpoints, progress bar or
                   summary), the hand-written loop's tensor slices as its data, manual optimisation
                   (`manual_backward`, the optimizer's `step` and `zero_grad`: the path that keeps
                   `global_step`), validation sums kept in tensors: what any trainer built on Lightning
                   pays at least per step (digits MLP only)
  keras            Keras 3 on its torch backend (`model.fit`), when keras is installed; else skipped
Workloads:
  digits_mlp   scikit-learn digits, 64-128-10 MLP (ReLU), Adam 1e-3, cross-entropy, batch 32, 20 epochs;
               dlcli's default split (1,257 train / 270 val / 270 test), validated every epoch
  cnn28        8,192 synthetic 1x28x28 images of 10 classes (plus 1,024 val, 1,024 test), batch 128, 2 epochs;
               3 blocks [conv3x3 (no bias) -> batch norm -> ReLU -> max pool 2] of 16, 32, 64 channels,
               global average pooling, linear 64->10; dlcli: `model=cnn model.channels=[16,32,64] model.head=gap
               model.head_dropout=0.0`
  parity_lstm  Lightning's own parity model (tests/parity_pytorch: ParityModuleRNN on AverageDataset): an
               LSTM 10->20 units over 300 sequences of length 100, a linear 20->5 at every step, MSE against
               top + roll(bottom) of the inputs, Adam 0.02, batch 30, 10 epochs, no validation (as there);
               dlcli: `data=npz` (x (300,100,10), y (300,500) floats: a regression) with
               `model=lstm model.hidden_size=20 model.head=many_to_many loss=mse`, no split, no scaling
Every framework trains on the exact arrays dlcli prepares (split and scaled by dlcli's own data
preparation in this process, saved to a temporary .npz), with the same seed. Each training runs in its
own child process, one after the other (never at the same time: they would fight over the cores), so
imports, thread pools and caches never leak from one to the next; every child gets the same torch thread
count (`--threads`, default 1: the most stable timings on a shared machine; OMP_NUM_THREADS and
MKL_NUM_THREADS are set to match). With `--repeat N` every child runs N times, the order rotated
each round; the table gives the best fit time (and the median), and ratios of best times to the
reference's. Peak memory is each child's ru_maxrss. Also: `dlcli --help` wall time (best of 5 after a
warm-up, as a subprocess), `compose([...])` (composition plus validation) in-process (best of 5 after
a warm-up), and Python / torch / Lightning import times for context.
Results: bench/results/train_speed.json.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results" / "train_speed.json"
SEED = 42
QUIET = ["trainer.enable_progress_bar=false", "trainer.accelerator=cpu", "logger=none"]

# name -> how the workload is trained; `dlcli` holds its overrides besides data, epochs, seed and threads
WORKLOADS: dict[str, dict] = {
    "digits_mlp": {
        "epochs": 20, "quick_epochs": 5, "batch_size": 32, "lr": 1e-3, "task": "multiclass",
        "dlcli": ["model=mlp", "model.hidden=[128]", "model.dropout=0.0", "optimizer=adam", "optimizer.lr=0.001"],
        "frameworks": ["reference", "dlcli", "dlcli+ckpt", "lightning", "lightning-nobar", "lightning-floor",
                       "keras"],
    },
    "cnn28": {
        "epochs": 2, "quick_epochs": 1, "batch_size": 128, "lr": 1e-3, "task": "multiclass",
        "dlcli": ["model=cnn", "model.channels=[16,32,64]", "model.head=gap", "model.head_dropout=0.0",
                  "optimizer=adam", "optimizer.lr=0.001",
                  "data.val_fraction=0.1", "data.test_fraction=0.1"],
        "frameworks": ["reference", "dlcli", "lightning", "keras"],
    },
    "parity_lstm": {
        "epochs": 10, "quick_epochs": 3, "batch_size": 30, "lr": 0.02, "task": "regression",
        "dlcli": ["model=lstm", "model.hidden_size=20", "model.head=many_to_many", "loss=mse", "optimizer=adam",
                  "optimizer.lr=0.02", "data.val_fraction=0", "data.test_fraction=0", "data.scaling=none",
                  "data.target_scaling=none"],
        "frameworks": ["reference", "dlcli", "lightning", "keras"],
    },
}


# ---------------------------------------------------------------------------------------------- data

def make_data(workload: str, tmp: Path) -> list[str]:
    """Write the workload's raw data (if it is not built into dlcli); return dlcli's data overrides."""
    import numpy as np

    rng = np.random.default_rng(SEED)
    if workload == "digits_mlp":
        return ["data=digits"]
    path = tmp / f"{workload}.npz"
    if workload == "cnn28":
        # 10 classes, each a smooth random 28x28 template (7x7 upsampled), plus pixel noise: learnable, not trivial.
        # 10,240 images: dlcli's val/test fractions of 0.1 leave exactly 8,192 to train on.
        n = 10_240
        templates = np.kron(rng.normal(size=(10, 1, 7, 7)), np.ones((4, 4)))  # (10, 1, 28, 28)
        y = rng.permutation(np.arange(n) % 10)
        x = (templates[y] + rng.normal(scale=3.0, size=(n, 1, 28, 28))).astype(np.float32)
    else:  # parity_lstm: Lightning's AverageDataset(dataset_len=300, sequence_len=100)
        x = rng.normal(size=(300, 100, 10)).astype(np.float32)
        top, bottom = x[..., :5], x[..., 5:]
        y = (top + np.roll(bottom, 1, axis=-1)).reshape(300, 500)  # (N, T, 5) -> (N, T*5): many-to-many
    np.savez(path, x=x, y=y)
    return ["data=npz", f"data.path={path}"]


def save_splits(cfg: dict, path: Path) -> dict[str, int]:
    """dlcli's own split and scaling of the data, saved for the other frameworks to train on."""
    import numpy as np

    from dlcli.training.build import load_data

    prepared = load_data(cfg)
    arrays = {}
    for name, (x, y) in prepared.splits.items():
        arrays[f"{name}_x"], arrays[f"{name}_y"] = x, y
    np.savez(path, **arrays)
    return {name: len(x) for name, (x, _) in prepared.splits.items()}


# ------------------------------------------------------------------------------------- child process

def child(spec: dict) -> dict:
    """Train one workload with one framework; return its timings, parameter counts and final metrics."""
    t_start = time.perf_counter()
    fit = {"dlcli": fit_dlcli, "dlcli+ckpt": fit_dlcli, "reference": fit_reference, "lightning": fit_lightning,
           "lightning-nobar": fit_lightning, "lightning-floor": fit_lightning_floor,
           "keras": fit_keras}[spec["framework"]]
    out = fit(spec)
    import resource

    out["total_s"] = time.perf_counter() - t_start
    out["peak_rss_mib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux
    return out


def load_splits(spec: dict) -> dict:
    """{split: (x, y)} as torch tensors; the LSTM's targets back to (N, T, 5)."""
    import numpy as np
    import torch

    with np.load(spec["splits"]) as f:
        names = sorted({k.rsplit("_", 1)[0] for k in f.files})
        data = {}
        for name in names:
            x, y = torch.from_numpy(f[f"{name}_x"]), torch.from_numpy(f[f"{name}_y"])
            if spec["task"] == "multiclass":
                y = y.long()
            else:
                y = y.float().reshape(len(y), x.shape[1], -1)  # (N, T*5) -> (N, T, 5)
            data[name] = (x, y)
    return data


def torch_model(workload: str):
    """The workload's model, written by hand: what dlcli builds from its config, layer for layer."""
    from torch import nn

    if workload == "digits_mlp":
        return nn.Sequential(nn.Flatten(), nn.Linear(64, 128), nn.ReLU(), nn.Linear(128, 10))
    if workload == "cnn28":
        layers, width = [], 1
        for out in (16, 32, 64):  # 28 -> 14 -> 7 -> 3
            layers += [nn.Conv2d(width, out, 3, padding=1, bias=False), nn.BatchNorm2d(out), nn.ReLU(),
                       nn.MaxPool2d(2)]
            width = out
        return nn.Sequential(*layers, nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(width, 10))

    class Parity(nn.Module):  # Lightning's ParityModuleRNN
        def __init__(self) -> None:
            super().__init__()
            self.rnn = nn.LSTM(10, 20, batch_first=True)
            self.linear_out = nn.Linear(20, 5)

        def forward(self, x):
            seq, _ = self.rnn(x)  # (B, T, 10) -> (B, T, 20)
            return self.linear_out(seq)  # (B, T, 5)

    return Parity()


def _torch_setup(spec: dict):
    import torch

    torch.set_num_threads(spec["threads"])
    torch.manual_seed(spec["seed"])
    return torch


def _counts(model) -> dict:
    return {"params": sum(p.numel() for p in model.parameters()),
            "trainable_params": sum(p.numel() for p in model.parameters() if p.requires_grad)}


def fit_reference(spec: dict) -> dict:
    """The hand-written loop: in-memory tensors, one gather per epoch to shuffle, slices as batches."""
    torch = _torch_setup(spec)
    import torch.nn.functional as F

    data = load_splits(spec)
    model = torch_model(spec["workload"])
    loss_fn = F.cross_entropy if spec["task"] == "multiclass" else F.mse_loss
    opt = torch.optim.Adam(model.parameters(), lr=spec["lr"])
    x, y = data["train"]
    n, bs = len(x), spec["batch_size"]
    final: dict[str, float] = {}
    t = time.perf_counter()
    for _ in range(spec["epochs"]):
        model.train()
        perm = torch.randperm(n)
        xs, ys = x[perm], y[perm]
        total = torch.zeros(())
        for i in range(0, n, bs):
            opt.zero_grad(set_to_none=True)
            loss = loss_fn(model(xs[i:i + bs]), ys[i:i + bs])
            loss.backward()
            opt.step()
            total += loss.detach() * len(ys[i:i + bs])
        final["train/loss"] = total.item() / n
        if "val" in data:
            model.eval()
            vx, vy = data["val"]
            loss_sum, correct = torch.zeros(()), torch.zeros((), dtype=torch.long)
            with torch.no_grad():
                for i in range(0, len(vx), bs):
                    out = model(vx[i:i + bs])
                    loss_sum += loss_fn(out, vy[i:i + bs], reduction="sum")
                    correct += (out.argmax(1) == vy[i:i + bs]).sum()
            final["val/loss"], final["val/acc"] = loss_sum.item() / len(vx), correct.item() / len(vx)
    fit_s = time.perf_counter() - t
    return {"fit_s": fit_s, **_counts(model), "final": final,
            "settings": "in-memory tensors, randperm gather + slices, validation once per epoch"}


def fit_lightning(spec: dict) -> dict:
    """Plain Lightning as its docs write it: DataLoaders, per-step self.log, torchmetrics, defaults."""
    torch = _torch_setup(spec)
    import pytorch_lightning as pl
    import torch.nn.functional as F
    import torchmetrics
    from torch.utils.data import DataLoader, TensorDataset

    data = load_splits(spec)
    classify = spec["task"] == "multiclass"

    class Lit(pl.LightningModule):
        def __init__(self) -> None:
            super().__init__()
            self.net = torch_model(spec["workload"])
            self.loss_fn = F.cross_entropy if classify else F.mse_loss
            if classify:
                self.val_acc = torchmetrics.classification.MulticlassAccuracy(num_classes=10, average="micro")

        def forward(self, x):
            return self.net(x)

        def training_step(self, batch, batch_idx):
            x, y = batch
            loss = self.loss_fn(self(x), y)
            self.log("train_loss", loss)  # Lightning's default in training_step: on_step=True
            return loss

        def validation_step(self, batch, batch_idx):
            x, y = batch
            out = self(x)
            self.log("val_loss", self.loss_fn(out, y))
            self.val_acc(out, y)
            self.log("val_acc", self.val_acc)

        def configure_optimizers(self):
            return torch.optim.Adam(self.parameters(), lr=spec["lr"])

    module = Lit()
    train = DataLoader(TensorDataset(*data["train"]), batch_size=spec["batch_size"], shuffle=True)
    val = DataLoader(TensorDataset(*data["val"]), batch_size=spec["batch_size"]) if "val" in data else None
    bar = spec["framework"] == "lightning"
    trainer = pl.Trainer(max_epochs=spec["epochs"], accelerator="cpu", devices=1, default_root_dir=spec["tmp"],
                         enable_progress_bar=bar)
    t = time.perf_counter()
    trainer.fit(module, train_dataloaders=train, val_dataloaders=val)
    fit_s = time.perf_counter() - t
    # train_loss is the last step's (per-step logging), not the epoch's mean as in the other frameworks
    final = {{"train_loss": "train/loss (last step)"}.get(k, k.replace("_", "/", 1)): float(v)
             for k, v in trainer.callback_metrics.items()}
    logger = type(trainer.logger).__name__ if trainer.logger else "none"
    return {"fit_s": fit_s, **_counts(module.net), "final": final,
            "settings": f"Lightning defaults: DataLoader, per-step self.log, torchmetrics, logger {logger}, "
                        f"checkpointing on, progress bar {'on' if bar else 'off'}"}


def fit_lightning_floor(spec: dict) -> dict:
    """Lightning's loop at its leanest, around the hand-written loop's step (see the module's docstring)."""
    torch = _torch_setup(spec)
    import pytorch_lightning as pl
    import torch.nn.functional as F

    data = load_splits(spec)
    loss_fn = F.cross_entropy if spec["task"] == "multiclass" else F.mse_loss
    bs = spec["batch_size"]

    class Slices:
        def __init__(self, x, y, shuffle: bool) -> None:
            self.x, self.y, self.shuffle = x, y, shuffle

        def __len__(self) -> int:
            return -(-len(self.x) // bs)

        def __iter__(self):
            x, y = self.x, self.y
            if self.shuffle:
                perm = torch.randperm(len(x))
                x, y = x[perm], y[perm]
            for i in range(0, len(x), bs):
                yield x[i:i + bs], y[i:i + bs]

    class Floor(pl.LightningModule):
        def __init__(self) -> None:
            super().__init__()
            self.automatic_optimization = False
            self.net = torch_model(spec["workload"])
            self.final: dict[str, float] = {}

        def on_train_epoch_start(self) -> None:
            self.total, self.seen = torch.zeros(()), 0

        def training_step(self, batch, batch_idx):
            x, y = batch
            loss = loss_fn(self.net(x), y)
            opt = self.optimizers()
            self.manual_backward(loss)
            opt.step()
            opt.zero_grad(set_to_none=True)
            self.total += loss.detach() * len(y)
            self.seen += len(y)

        def on_train_epoch_end(self) -> None:
            self.final["train/loss"] = self.total.item() / self.seen

        def on_validation_epoch_start(self) -> None:
            self.loss_sum, self.correct, self.count = torch.zeros(()), torch.zeros((), dtype=torch.long), 0

        def validation_step(self, batch, batch_idx):
            x, y = batch
            out = self.net(x)
            self.loss_sum += loss_fn(out, y, reduction="sum")
            self.correct += (out.argmax(1) == y).sum()
            self.count += len(y)

        def on_validation_epoch_end(self) -> None:
            if not self.trainer.sanity_checking:
                self.final["val/loss"] = self.loss_sum.item() / self.count
                self.final["val/acc"] = self.correct.item() / self.count

        def configure_optimizers(self):
            return torch.optim.Adam(self.parameters(), lr=spec["lr"])

    module = Floor()
    val = Slices(*data["val"], shuffle=False) if "val" in data else None
    trainer = pl.Trainer(max_epochs=spec["epochs"], accelerator="cpu", devices=1, default_root_dir=spec["tmp"],
                         barebones=True, num_sanity_val_steps=0)
    t = time.perf_counter()
    trainer.fit(module, train_dataloaders=Slices(*data["train"], shuffle=True), val_dataloaders=val)
    fit_s = time.perf_counter() - t
    return {"fit_s": fit_s, **_counts(module.net), "final": module.final,
            "settings": "Lightning barebones=True, tensor slices, manual optimisation, validation sums in tensors"}


def fit_dlcli(spec: dict) -> dict:
    """dlcli's own `train(cfg)`, in-process, as `dlcli train` runs it."""
    from dlcli.config.compose import compose
    from dlcli.training.train import train

    composed = compose(spec["overrides"])
    result = train(composed.config, composed.overrides)
    s = result.summary
    return {"fit_s": s["fit_duration_s"], "params": s["num_params"], "trainable_params": s["trainable_params"],
            "final": {k: v for k, v in s["metrics"].items() if k.startswith(("val/", "train/"))},
            "epochs_run": s["epochs"], "train_s": s["duration_s"], "settings": " ".join(spec["shown_overrides"])}


def fit_keras(spec: dict) -> dict:
    """Keras 3 on its torch backend, `model.fit` with its defaults (channels-last images).

    Parameter counts differ by design: Keras' LSTM has one bias per gate where torch has two (2,585
    trainable against 2,665), and Keras counts batch norm's moving statistics as (non-trainable) parameters.
    """
    os.environ["KERAS_BACKEND"] = "torch"
    import keras
    import numpy as np
    import torch

    torch.set_num_threads(spec["threads"])
    keras.utils.set_random_seed(spec["seed"])
    L = keras.layers
    with np.load(spec["splits"]) as f:
        arrays = {k: f[k] for k in f.files}
    x, y = arrays["train_x"], arrays["train_y"]
    val = (arrays["val_x"], arrays["val_y"]) if "val_x" in arrays else None
    w = spec["workload"]
    if w == "digits_mlp":
        model = keras.Sequential([keras.Input(x.shape[1:]), L.Flatten(), L.Dense(128, activation="relu"), L.Dense(10)])
    elif w == "cnn28":
        x = x.transpose(0, 2, 3, 1)  # (N, C, H, W) -> (N, H, W, C): Keras' default layout
        val = (val[0].transpose(0, 2, 3, 1), val[1])
        layers = [keras.Input(x.shape[1:])]
        for out in (16, 32, 64):  # torch's BatchNorm2d momentum 0.1 and eps 1e-5
            layers += [L.Conv2D(out, 3, padding="same", use_bias=False), L.BatchNormalization(momentum=0.9,
                       epsilon=1e-5), L.ReLU(), L.MaxPooling2D(2)]
        model = keras.Sequential([*layers, L.GlobalAveragePooling2D(), L.Dense(10)])
    else:
        y = y.reshape(len(y), x.shape[1], -1)  # (N, T*5) -> (N, T, 5)
        model = keras.Sequential([keras.Input(x.shape[1:]), L.LSTM(20, return_sequences=True), L.Dense(5)])
    if spec["task"] == "multiclass":
        loss, metrics = keras.losses.SparseCategoricalCrossentropy(from_logits=True), ["accuracy"]
    else:
        loss, metrics = "mse", []
    model.compile(optimizer=keras.optimizers.Adam(spec["lr"]), loss=loss, metrics=metrics)
    t = time.perf_counter()
    history = model.fit(x, y, batch_size=spec["batch_size"], epochs=spec["epochs"], validation_data=val,
                        shuffle=True, verbose=0)
    fit_s = time.perf_counter() - t
    names = {"loss": "train/loss", "val_loss": "val/loss", "val_accuracy": "val/acc"}
    final = {names[k]: float(v[-1]) for k, v in history.history.items() if k in names}
    trainable = int(sum(np.prod(v.shape) for v in model.trainable_weights))
    return {"fit_s": fit_s, "params": int(model.count_params()), "trainable_params": trainable, "final": final,
            "settings": f"Keras {keras.__version__}, torch backend, model.fit(verbose=0)"}


# -------------------------------------------------------------------------------------------- parent

def run_child(spec: dict, tmp: Path) -> dict:
    """One training in a fresh interpreter; its result, or the tail of its output when it fails."""
    spec_path = tmp / "spec.json"
    out_path = tmp / "result.json"
    out_path.unlink(missing_ok=True)
    spec_path.write_text(json.dumps(spec))
    threads = str(spec["threads"])
    env = {**os.environ, "OMP_NUM_THREADS": threads, "MKL_NUM_THREADS": threads, "PYTHONHASHSEED": "0"}
    t = time.perf_counter()
    with open(tmp / "child.log", "w") as log:
        proc = subprocess.run([sys.executable, __file__, "--child", str(spec_path), str(out_path)], cwd=ROOT,
                              env=env, stdout=log, stderr=subprocess.STDOUT)
    wall = time.perf_counter() - t
    if proc.returncode != 0 or not out_path.is_file():
        tail = (tmp / "child.log").read_text()[-3000:]
        raise RuntimeError(f"{spec['framework']} on {spec['workload']} failed (exit {proc.returncode}):\n{tail}")
    return {**json.loads(out_path.read_text()), "process_s": wall}


def best_of(fn, repeat: int, warmup: int = 1) -> dict:
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return {"best_s": round(min(times), 4), "median_s": round(statistics.median(times), 4), "n": repeat}


def startup_times(repeat: int) -> dict:
    """`dlcli --help` as a user runs it, against Python's own start-up and the heavy imports."""
    dlcli = shutil.which("dlcli") or str(Path(sys.executable).with_name("dlcli"))
    cmd = [dlcli] if Path(dlcli).is_file() else [sys.executable, "-m", "dlcli"]

    def proc(*argv: str):
        return lambda: subprocess.run(list(argv), check=True, stdout=subprocess.DEVNULL, cwd=ROOT)

    return {
        "dlcli --help": {**best_of(proc(*cmd, "--help"), repeat), "command": " ".join([Path(cmd[0]).name, *cmd[1:]])},
        "python -m dlcli --help": best_of(proc(sys.executable, "-m", "dlcli", "--help"), repeat),
        "python -c pass": best_of(proc(sys.executable, "-c", "pass"), repeat),
        "python -c 'import torch'": best_of(proc(sys.executable, "-c", "import torch"), max(1, repeat // 2)),
        "python -c 'import pytorch_lightning'": best_of(proc(sys.executable, "-c", "import pytorch_lightning"),
                                                        max(1, repeat // 2)),
    }


def compose_times(overrides: list[str], repeat: int) -> dict:
    """compose() (Hydra composition plus dlcli's validation) in this process: the first call, then best of N."""
    from dlcli.config.compose import compose

    t = time.perf_counter()
    compose(overrides)
    first = time.perf_counter() - t
    return {**best_of(lambda: compose(overrides), repeat, warmup=1), "first_call_s": round(first, 4),
            "overrides": overrides}


def summarize(runs: list[dict]) -> dict:
    fits = [r["fit_s"] for r in runs]
    last = runs[-1]
    return {"fit_best_s": round(min(fits), 4), "fit_median_s": round(statistics.median(fits), 4),
            "fit_all_s": [round(f, 4) for f in fits],
            "total_best_s": round(min(r["total_s"] for r in runs), 3),
            "process_best_s": round(min(r["process_s"] for r in runs), 3),
            "peak_rss_mib": round(max(r["peak_rss_mib"] for r in runs), 1),
            "params": last["params"], "trainable_params": last["trainable_params"],
            "final": {k: round(v, 4) for k, v in last["final"].items()}, "settings": last["settings"],
            **({"epochs_run": last["epochs_run"]} if "epochs_run" in last else {})}


def bench_workload(name: str, w: dict, args, tmp: Path, keras: bool) -> dict:
    from dlcli.config.compose import compose

    epochs = w["quick_epochs"] if args.quick else w["epochs"]
    data = make_data(name, tmp)
    common = [*data, f"data.batch_size={w['batch_size']}", f"trainer.max_epochs={epochs}", f"seed={SEED}",
              f"threads={args.threads}", *w["dlcli"]]
    splits = tmp / f"{name}-splits.npz"
    sizes = save_splits(compose([*common, *QUIET, "callbacks=none"]).config, splits)
    base = {"workload": name, "splits": str(splits), "epochs": epochs, "batch_size": w["batch_size"], "lr": w["lr"],
            "task": w["task"], "threads": args.threads, "seed": SEED}
    specs = {}
    for fw in w["frameworks"]:
        if fw == "keras" and not keras:
            continue
        spec = {**base, "framework": fw, "tmp": str(tmp / fw)}
        if fw.startswith("dlcli"):
            callbacks = ["callbacks=default", "~callbacks.early_stopping"] if fw == "dlcli+ckpt" else ["callbacks=none"]
            shown = [o for o in [*common, *QUIET, *callbacks] if not o.startswith("data.path=")]
            spec.update(overrides=[*common, *QUIET, *callbacks, f"output_dir={tmp / fw}"], shown_overrides=shown)
        specs[fw] = spec
    runs: dict[str, list[dict]] = {fw: [] for fw in specs}
    order = list(specs)
    for r in range(args.repeat):
        for fw in order[r % len(order):] + order[:r % len(order)]:  # rotated: no framework always runs first
            runs[fw].append(run_child(specs[fw], tmp))
            print(f"  {name:<12} {fw:<16} round {r + 1}: fit {runs[fw][-1]['fit_s']:.3f} s", flush=True)
    results = {fw: summarize(rs) for fw, rs in runs.items()}
    ref = results["reference"]["fit_best_s"]
    for res in results.values():
        res["ratio_to_reference"] = round(res["fit_best_s"] / ref, 3)
        res["ratio_median"] = round(res["fit_median_s"] / results["reference"]["fit_median_s"], 3)
    if not keras and "keras" in w["frameworks"]:
        results["keras"] = {"skipped": "keras not installed"}
    return {"epochs": epochs, "batch_size": w["batch_size"], "split_sizes": sizes, "frameworks": results,
            "loadavg_after": [round(v, 2) for v in os.getloadavg()]}


def print_table(report: dict) -> None:
    head = f"{'workload':<12} {'framework':<16} {'params':>7} {'fit best':>9} {'median':>8} {'ratio':>6} " \
           f"{'total':>7} {'process':>8} {'peak MiB':>9}  final"
    print("\n" + head + "\n" + "-" * len(head))
    for name, w in report["workloads"].items():
        for fw, r in w["frameworks"].items():
            if "skipped" in r:
                print(f"{name:<12} {fw:<16} skipped: {r['skipped']}")
                continue
            final = ", ".join(f"{k} {v:.3f}" for k, v in r["final"].items() if k.startswith(("val/acc", "train/loss")))
            print(f"{name:<12} {fw:<16} {r['params']:>7,} {r['fit_best_s']:>8.3f}s {r['fit_median_s']:>7.3f}s "
                  f"{r['ratio_to_reference']:>6.2f} {r['total_best_s']:>6.2f}s {r['process_best_s']:>7.2f}s "
                  f"{r['peak_rss_mib']:>9.0f}  {final}")
    print("\nratio: best fit time over the reference loop's best; total: the child's whole work (imports, data, "
          "build, fit, dlcli's test and run folder); process: the child process's wall time")
    for name, t in report["startup"].items():
        print(f"{name:<40} best {t['best_s']:.3f} s  median {t['median_s']:.3f} s (n={t['n']})")
    c = report["compose"]
    print(f"{'compose + validate (in-process)':<40} best {c['best_s']:.3f} s  median {c['median_s']:.3f} s "
          f"(n={c['n']}; first call {c['first_call_s']:.3f} s)")
    print(f"load average: {report['loadavg_start']} at start, {report['loadavg_end']} at end; "
          f"{report['machine']['cpus']} CPUs; torch threads per child: {report['threads']}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer epochs and one round: a smoke test")
    parser.add_argument("--repeat", type=int, default=None, help="rounds of every training (default 3; --quick 1)")
    parser.add_argument("--threads", type=int, default=1, help="torch threads in every child (default 1)")
    parser.add_argument("--workloads", nargs="+", default=list(WORKLOADS), choices=list(WORKLOADS))
    parser.add_argument("--output", type=Path, default=RESULTS)
    parser.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        spec = json.loads(Path(args.child[0]).read_text())
        Path(args.child[1]).write_text(json.dumps(child(spec)))
        return
    args.repeat = args.repeat or (1 if args.quick else 3)
    keras = importlib.util.find_spec("keras") is not None
    t0 = time.perf_counter()
    report: dict = {
        "command": " ".join(["python", "bench/train_speed.py", *sys.argv[1:]]), "quick": args.quick,
        "repeat": args.repeat, "threads": args.threads, "loadavg_start": [round(v, 2) for v in os.getloadavg()],
        "machine": {"platform": platform.platform(), "processor": platform.processor() or platform.machine(),
                    "cpus": os.cpu_count(), "python": platform.python_version()},
    }
    if not keras:
        print("keras: skipped: keras not installed (pip install keras; it runs on the torch backend)")
    report["startup"] = startup_times(5)
    report["compose"] = compose_times(["model=cnn", "optimizer.lr=0.01", "trainer.max_epochs=5"], 5)
    report["workloads"] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.workloads:
            (Path(tmp) / name).mkdir()
            report["workloads"][name] = bench_workload(name, WORKLOADS[name], args, Path(tmp) / name, keras)
    report["versions"] = _versions()
    report["loadavg_end"] = [round(v, 2) for v in os.getloadavg()]
    report["wall_s"] = round(time.perf_counter() - t0, 1)
    print_table(report)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(report, indent=2) + "\n")
    print(f"results: {args.output} ({report['wall_s']:.0f} s)")


def _versions() -> dict:
    from importlib.metadata import PackageNotFoundError, version

    out = {}
    for pkg in ("torch", "pytorch-lightning", "torchmetrics", "keras", "dlcli"):
        try:
            out[pkg] = version(pkg)
        except PackageNotFoundError:
            out[pkg] = None
    return out


if __name__ == "__main__":
    main()
