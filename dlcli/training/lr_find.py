"""Lightning's learning-rate range test on the composed run: the loss while the rate grows exponentially."""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path

from dlcli import startup
from dlcli.config.validate import validate
from dlcli.runs import folder


@dataclass
class LRFindResult:
    suggestion: float | None  # the rate where the loss falls fastest; None if the curve gives no answer
    lrs: list[float]
    losses: list[float]
    run_dir: Path  # holds lr_find.csv, plots/lr_find.png and summary.json


def smooth(values: list[float], beta: float) -> list[float]:
    """Exponential moving average with bias correction: value i averages values[0..i]."""
    out, avg = [], 0.0
    for i, v in enumerate(values):
        avg = beta * avg + (1 - beta) * v
        out.append(avg / (1 - beta ** (i + 1)))
    return out


def steepest(lrs: list[float], losses: list[float], skip_begin: int = 10, skip_end: int = 1) -> float | None:
    """The rate where the smoothed loss falls fastest per decade of rate (the classic range-test pick).

    (Lightning's own suggestion takes the slope per unit of rate, not per decade, which favours the
    noisy start of the curve, where the rates are tiny and close together.)
    """
    import numpy as np

    lr, loss = np.asarray(lrs[skip_begin:len(lrs) - skip_end]), np.asarray(losses[skip_begin:len(losses) - skip_end])
    keep = np.isfinite(loss)
    lr, loss = lr[keep], loss[keep]
    if len(loss) < 3:
        return None
    slope = np.gradient(loss, np.log10(lr))
    return float(lr[int(np.argmin(slope))])


def _plot(lrs: list[float], losses: list[float], suggestion: float | None, title: str, path: Path) -> None:
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.4, 4.8))
    ax.semilogx(lrs, losses)
    if suggestion is not None:
        ax.semilogx([suggestion], [losses[lrs.index(suggestion)]], "o", color="red", markersize=9,
                    label=f"suggested lr {suggestion:.3g}")
        ax.legend()
    ax.set_xlabel("learning rate")
    ax.set_ylabel("training loss (smoothed)")
    ax.set_title(title)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)


def lr_find(cfg: dict, min_lr: float = 1e-6, max_lr: float = 1.0, num_steps: int = 100) -> LRFindResult:
    """Train for ``num_steps`` steps with the rate rising from ``min_lr`` to ``max_lr``; record the loss."""
    import matplotlib

    matplotlib.use("Agg")
    import pytorch_lightning as pl
    import torch
    from pytorch_lightning.tuner import Tuner

    from dlcli.training.build import build_run
    from dlcli.training.train import _quiet_lightning, set_threads

    cfg = validate(cfg)
    _quiet_lightning()
    if isinstance(cfg["threads"], int):
        torch.set_num_threads(cfg["threads"])
    pl.seed_everything(cfg["seed"], workers=True, verbose=False)
    prepared, datamodule, module = build_run(cfg)
    set_threads(cfg, module.model, prepared)  # threads=auto: from the free cores and the model's work
    raw: list[float] = []

    def record(outputs, batch, batch_idx) -> None:  # the finder replaces all callbacks, not module hooks
        loss = outputs["loss"] if isinstance(outputs, dict) else outputs
        raw.append(float(loss) if loss is not None else float("nan"))

    startup.settle()  # imports and building are done: the collector runs again (dlcli/startup.py)
    module.on_train_batch_end = record
    module.automatic_optimization = True  # the finder steps its own rising-rate schedule through Lightning's loop
    with tempfile.TemporaryDirectory() as scratch:  # the finder's own temporary checkpoint goes here
        trainer = pl.Trainer(accelerator=cfg["trainer"]["accelerator"], devices=1, logger=False,
                             enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False,
                             default_root_dir=scratch, max_epochs=cfg["trainer"]["max_epochs"])
        finder = Tuner(trainer).lr_find(module, datamodule=datamodule, min_lr=min_lr, max_lr=max_lr,
                                        num_training=num_steps, update_attr=False)
    lrs = [float(v) for v in finder.results["lr"]]
    # Lightning smooths the loss with a bias correction one step off (it counts the step after the
    # optimizer has stepped), which halves the first values and bends the start of the curve; the
    # curve is smoothed again here from the raw losses, with the same beta, then suggested from.
    losses = smooth(raw[: len(lrs)], beta=0.98)
    suggestion = steepest(lrs, losses)
    run_dir = folder.new_run_dir(cfg["output_dir"], f"lr-find-{cfg['name']}")
    folder.write_csv(run_dir / "lr_find.csv", [{"lr": a, "loss": b} for a, b in zip(lrs, losses, strict=True)])
    _plot(lrs, losses, suggestion, f"learning-rate range test: {cfg['name']}", run_dir / "plots" / "lr_find.png")
    folder.write_yaml(run_dir / folder.CONFIG, cfg)
    folder.write_json(run_dir / folder.SUMMARY, {
        "run_id": run_dir.name, "kind": "lr_find", "name": cfg["name"], "status": "completed",
        "suggestion": suggestion, "min_lr": min_lr, "max_lr": max_lr, "num_steps": len(lrs)})
    return LRFindResult(float(suggestion) if suggestion is not None else None, lrs, losses, run_dir)
