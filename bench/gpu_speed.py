"""GPU throughput: a ResNet on CIFAR-shaped images, dlcli against a hand-written loop, per precision recipe.

    python bench/gpu_speed.py [--samples 50000] [--epochs 4] [--batch-size 512] [--depth 18] [--width 1.0]
                              [--recipes fp32 tf32 bf16 bf16-fast] [--output bench/results/gpu_speed.json]
    python bench/gpu_speed.py --device cpu --samples 512 --depth 10 --width 0.25 --epochs 2   # a smoke test

Needs an NVIDIA GPU (exits 2 without one), unless ``--device cpu`` (only to check that the script runs).
Synthetic data: ``--samples`` random 3x32x32 images of 10 classes (learnable: each class adds its own
pattern), all kept on the GPU, one split (no validation, so that only training is timed). The model is
dlcli's ``model=resnet`` (depth 18, width 1.0: the paper's ResNet-18 with the small-image stem, 11.2M
parameters), SGD with momentum 0.9 at lr 0.05, cross-entropy.

Recipes (each trained by both, in its own child process, one after the other):
  fp32       float32 everywhere, TF32 off (``trainer.matmul_precision=highest``)
  tf32       float32 weights, TF32 matrix products and convolutions (``trainer.matmul_precision=high``)
  bf16       ``trainer.precision=bf16-mixed`` (autocast to bf16) with TF32 for the rest
  bf16-fast  bf16 plus ``model.channels_last=true``, ``model.compile=true`` and ``trainer.benchmark=true``

dlcli runs ``train(cfg)`` in-process, as ``dlcli train`` does; its epoch times come from summary.json's
``epoch_seconds``. The hand-written loop keeps the same tensors on the GPU, shuffles with one gather per
epoch, slices batches, and applies the same recipe with plain PyTorch (``torch.autocast``,
``torch.compile``, ``channels_last``, ``cudnn.benchmark``), timing each epoch after a device sync.
Throughput is samples per second over the epochs after the first (the first pays for compiling, cuDNN's
algorithm search and allocator warm-up): the warm-up is excluded for both.
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

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results" / "gpu_speed.json"
SEED = 0
RECIPES = {
    "fp32": {"matmul_precision": "highest", "precision": "32-true", "fast": False},
    "tf32": {"matmul_precision": "high", "precision": "32-true", "fast": False},
    "bf16": {"matmul_precision": "high", "precision": "bf16-mixed", "fast": False},
    "bf16-fast": {"matmul_precision": "high", "precision": "bf16-mixed", "fast": True},
}


def make_data(path: Path, n: int) -> None:
    import numpy as np

    rng = np.random.default_rng(SEED)
    patterns = rng.normal(size=(10, 3, 32, 32)).astype(np.float32)
    y = rng.integers(0, 10, size=n)
    x = rng.normal(size=(n, 3, 32, 32)).astype(np.float32) + 0.5 * patterns[y]
    np.savez(path, x=x, y=y)


def dlcli_overrides(spec: dict) -> list[str]:
    recipe = RECIPES[spec["recipe"]]
    out = ["data=npz", f"data.path={spec['data']}", "data.val_fraction=0", "data.test_fraction=0",
           "data.scaling=none", f"data.batch_size={spec['batch_size']}", "model=resnet",
           f"model.depth={spec['depth']}", f"model.width={spec['width']}", "optimizer=sgd", "optimizer.lr=0.05",
           "optimizer.momentum=0.9", "optimizer.weight_decay=0", "callbacks=none", "logger=none",
           f"trainer.max_epochs={spec['epochs']}", f"trainer.accelerator={spec['device'].replace('cuda', 'gpu')}",
           "trainer.devices=1", "threads=null" if spec["device"] == "cuda" else "threads=1",
           "trainer.enable_progress_bar=false", f"trainer.precision={recipe['precision']}",
           f"trainer.matmul_precision={recipe['matmul_precision']}", f"seed={SEED}",
           f"output_dir={spec['tmp']}/outputs"]
    if recipe["fast"]:
        out += ["model.channels_last=true", "model.compile=true", "trainer.benchmark=true"]
    return out


def fit_dlcli(spec: dict) -> dict:
    from dlcli.config.compose import compose
    from dlcli.training.train import train

    composed = compose(dlcli_overrides(spec))
    result = train(composed.config, composed.overrides)
    s = result.summary
    return {"epoch_seconds": s["epoch_seconds"], "train_loss": s["metrics"].get("train/loss"),
            "params": s["num_params"], "overrides": composed.overrides}


def fit_reference(spec: dict) -> dict:
    """The hand-written loop, with the same model (dlcli's builder, so the architecture is identical)."""
    import numpy as np
    import torch
    import torch.nn.functional as F

    from dlcli.blocks import initialize
    from dlcli.registry import MODELS

    recipe = RECIPES[spec["recipe"]]
    torch.manual_seed(SEED)
    torch.set_float32_matmul_precision(recipe["matmul_precision"])
    torch.backends.cudnn.allow_tf32 = recipe["matmul_precision"] != "highest"
    torch.backends.cudnn.benchmark = recipe["fast"]
    dev = torch.device(spec["device"])
    if dev.type == "cpu":
        torch.set_num_threads(1)
    with np.load(spec["data"]) as f:
        x, y = torch.from_numpy(f["x"]).to(dev), torch.from_numpy(f["y"]).long().to(dev)
    model = MODELS.get("resnet").build({"depth": spec["depth"], "width": spec["width"]}, in_shape=(3, 32, 32),
                                       out_features=10, task="multiclass", vocab_size=None)
    initialize(model, "default")
    model.to(dev)
    if recipe["fast"]:
        model.to(memory_format=torch.channels_last)
        x = x.contiguous(memory_format=torch.channels_last)
    step_model = torch.compile(model) if recipe["fast"] else model
    opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    bf16 = recipe["precision"] == "bf16-mixed"
    n, bs = len(x), spec["batch_size"]
    seconds, total = [], None
    sync = torch.cuda.synchronize if dev.type == "cuda" else (lambda: None)
    for _ in range(spec["epochs"]):
        sync()
        t = time.perf_counter()
        model.train()
        perm = torch.randperm(n, device=dev)
        xs, ys = x[perm], y[perm]
        total = torch.zeros((), device=dev)
        for i in range(0, n, bs):
            xb, yb = xs[i:i + bs], ys[i:i + bs]
            if recipe["fast"]:
                xb = xb.contiguous(memory_format=torch.channels_last)
            with torch.autocast(dev.type, dtype=torch.bfloat16, enabled=bf16):
                loss = F.cross_entropy(step_model(xb), yb)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            total += loss.detach() * len(yb)
        sync()
        seconds.append(round(time.perf_counter() - t, 4))
    return {"epoch_seconds": seconds, "train_loss": float(total / n),
            "params": sum(p.numel() for p in model.parameters())}


def child(spec: dict) -> dict:
    out = {"dlcli": fit_dlcli, "reference": fit_reference}[spec["framework"]](spec)
    import torch

    warm = out["epoch_seconds"][1:] or out["epoch_seconds"]
    out["samples_per_s"] = round(spec["samples"] * len(warm) / sum(warm), 1)
    out["first_epoch_s"] = out["epoch_seconds"][0]
    out["peak_gpu_mib"] = round(torch.cuda.max_memory_allocated() / 2**20, 1) if spec["device"] == "cuda" else 0.0
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=50_000)
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--batch-size", type=int, default=512)
    parser.add_argument("--depth", type=int, default=18)
    parser.add_argument("--width", type=float, default=1.0)
    parser.add_argument("--recipes", nargs="+", default=list(RECIPES), choices=list(RECIPES))
    parser.add_argument("--device", choices=["cuda", "cpu"], default="cuda")
    parser.add_argument("--output", type=Path, default=RESULTS)
    parser.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        spec = json.loads(Path(args.child[0]).read_text())
        Path(args.child[1]).write_text(json.dumps(child(spec)))
        return
    import torch

    if args.device == "cuda" and not torch.cuda.is_available():
        print("bench/gpu_speed.py needs an NVIDIA GPU; none is visible (torch.cuda.is_available() is False)",
              file=sys.stderr)
        sys.exit(2)
    gpu = torch.cuda.get_device_name(0) if args.device == "cuda" else "none (cpu smoke test)"
    report: dict = {"command": " ".join(["python", "bench/gpu_speed.py", *sys.argv[1:]]), "gpu": gpu,
                    "torch": torch.__version__,
                    "platform": platform.platform(), "samples": args.samples, "epochs": args.epochs,
                    "batch_size": args.batch_size, "depth": args.depth, "width": args.width, "results": {}}
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "cifar_shaped.npz"
        make_data(data, args.samples)
        for recipe in args.recipes:
            row = report["results"][recipe] = {}
            for framework in ("reference", "dlcli"):
                spec = {"framework": framework, "recipe": recipe, "data": str(data), "tmp": tmp, "device": args.device,
                        "samples": args.samples, "epochs": args.epochs, "batch_size": args.batch_size,
                        "depth": args.depth, "width": args.width}
                spec_path, out_path = Path(tmp) / "spec.json", Path(tmp) / "out.json"
                spec_path.write_text(json.dumps(spec))
                env = {**os.environ, "PYTHONHASHSEED": "0"}
                proc = subprocess.run([sys.executable, __file__, "--child", str(spec_path), str(out_path)],
                                      env=env, capture_output=True, text=True)
                if proc.returncode != 0:
                    row[framework] = {"error": proc.stderr[-3000:]}
                    print(f"{recipe:10s} {framework:10s} FAILED\n{proc.stderr[-3000:]}", flush=True)
                    continue
                row[framework] = json.loads(out_path.read_text())
                r = row[framework]
                print(f"{recipe:10s} {framework:10s} {r['samples_per_s']:>10,.0f} samples/s  first epoch "
                      f"{r['first_epoch_s']:.2f} s  epochs {r['epoch_seconds']}  loss {r['train_loss']:.3f}  "
                      f"peak {r['peak_gpu_mib']:,.0f} MiB", flush=True)
            if all("samples_per_s" in row.get(f, {}) for f in ("reference", "dlcli")):
                row["dlcli_over_reference_time"] = round(row["reference"]["samples_per_s"]
                                                         / row["dlcli"]["samples_per_s"], 3)
    fp32 = report["results"].get("fp32", {}).get("dlcli", {}).get("samples_per_s")
    print(f"\n{report['gpu']}, ResNet-{args.depth} (width {args.width}) on {args.samples:,} 3x32x32 images, "
          f"batch {args.batch_size}; samples/s over epochs 2-{args.epochs}")
    print(f"{'recipe':10s} {'hand loop':>12s} {'dlcli':>12s} {'time ratio':>11s} {'vs fp32':>8s}")
    for recipe, row in report["results"].items():
        ref, ours = row.get("reference", {}).get("samples_per_s"), row.get("dlcli", {}).get("samples_per_s")
        ratio = row.get("dlcli_over_reference_time")
        speedup = f"{ours / fp32:.2f}x" if ours and fp32 else "-"
        print(f"{recipe:10s} {ref or 0:>12,.0f} {ours or 0:>12,.0f} {ratio or float('nan'):>11.3f} {speedup:>8s}")
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(report, indent=2) + "\n")
    print(f"results: {args.output}")


if __name__ == "__main__":
    main()
