"""Lightning callbacks that Lightning does not ship in the form dlcli needs."""

from __future__ import annotations

import math

import pytorch_lightning as pl
import torch


class TrainingDiverged(RuntimeError):
    """The loss became NaN or infinite; the run is marked failed with this message."""


class TerminateOnNaN(pl.Callback):
    """Raise :class:`TrainingDiverged` on the first non-finite training loss, naming epoch and step."""

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        loss = outputs["loss"] if isinstance(outputs, dict) else outputs
        if loss is not None and not torch.isfinite(loss.detach()).all():
            raise TrainingDiverged(
                f"the training loss became {loss.item()} in epoch {trainer.current_epoch} (0-based), step "
                f"{trainer.global_step}, batch {batch_idx}. Try a lower learning rate (optimizer.lr) or "
                "gradient clipping (trainer.gradient_clip_val=1.0)")


class EMA(pl.Callback):
    """Keep an exponential moving average of the weights: ema = decay * ema + (1 - decay) * w, every step.

    Validation runs on the averaged weights, checkpoints store them (so the tested best checkpoint is
    the averaged model), and training continues on the raw weights.
    """

    def __init__(self, decay: float = 0.999) -> None:
        self.decay = decay
        self.shadow: dict[str, torch.Tensor] = {}
        self.backup: dict[str, torch.Tensor] = {}

    def _params(self, pl_module):
        return {n: p for n, p in pl_module.named_parameters() if p.requires_grad}

    def on_fit_start(self, trainer, pl_module) -> None:
        if not self.shadow:
            self.shadow = {n: p.detach().clone() for n, p in self._params(pl_module).items()}

    @torch.no_grad()
    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        for n, p in self._params(pl_module).items():
            self.shadow[n].lerp_(p.detach(), 1 - self.decay)

    def _swap_in(self, pl_module) -> None:
        params = self._params(pl_module)
        self.backup = {n: p.detach().clone() for n, p in params.items()}
        with torch.no_grad():
            for n, p in params.items():
                p.copy_(self.shadow[n])

    def _swap_out(self, pl_module) -> None:
        with torch.no_grad():
            for n, p in self._params(pl_module).items():
                p.copy_(self.backup[n])
        self.backup = {}

    def on_validation_start(self, trainer, pl_module) -> None:
        if self.shadow and not trainer.sanity_checking:
            self._swap_in(pl_module)

    def on_validation_end(self, trainer, pl_module) -> None:
        if self.backup:
            self._swap_out(pl_module)

    def on_save_checkpoint(self, trainer, pl_module, checkpoint) -> None:
        # checkpoints hold the averaged weights; the raw ones stay in the callback's state for resuming
        for n, value in self.shadow.items():
            checkpoint["state_dict"][n] = value.detach().clone()

    def state_dict(self) -> dict:
        return {"decay": self.decay, "shadow": {n: t.cpu() for n, t in self.shadow.items()}}

    def load_state_dict(self, state: dict) -> None:
        self.decay, self.shadow = state["decay"], dict(state["shadow"])


class ReduceLROnPlateau(pl.Callback):
    """Keras' ReduceLROnPlateau as a callback: lr *= factor after `patience` epochs without improvement."""

    def __init__(self, monitor: str, mode: str, factor: float, patience: int, min_lr: float, min_delta: float):
        self.monitor, self.mode, self.factor = monitor, mode, factor
        self.patience, self.min_lr, self.min_delta = patience, min_lr, min_delta
        self.best, self.wait = math.inf if mode == "min" else -math.inf, 0

    def on_validation_end(self, trainer, pl_module) -> None:
        if trainer.sanity_checking or self.monitor not in trainer.callback_metrics:
            return
        value = float(trainer.callback_metrics[self.monitor])
        better = value < self.best - self.min_delta if self.mode == "min" else value > self.best + self.min_delta
        if better:
            self.best, self.wait = value, 0
            return
        self.wait += 1
        if self.wait >= self.patience:
            for opt in trainer.optimizers:
                for group in opt.param_groups:
                    group["lr"] = max(group["lr"] * self.factor, self.min_lr)
            self.wait = 0

    def state_dict(self) -> dict:
        return {"best": self.best, "wait": self.wait}

    def load_state_dict(self, state: dict) -> None:
        self.best, self.wait = state["best"], state["wait"]


class StagedFinetune(pl.Callback):
    """Fine-tuning in stages within one fit: each stage trains the parameters matching its patterns (all when
    none are given), for its epochs, at its learning rate (``lr``, or the configured rate x ``lr_multiplier``)."""

    def __init__(self, stages: list[dict]) -> None:
        self.stages = stages
        self.base_lrs: list[float] = []
        self.current: int | None = None

    def stage_at(self, epoch: int) -> int:
        end = 0
        for i, stage in enumerate(self.stages):
            end += stage["epochs"]
            if epoch < end:
                return i
        return len(self.stages) - 1

    def on_train_epoch_start(self, trainer, pl_module) -> None:
        from fnmatch import fnmatchcase

        index = self.stage_at(trainer.current_epoch)
        if index == self.current:
            return
        self.current, stage = index, self.stages[index]
        patterns = stage.get("train")
        for name, p in pl_module.model.named_parameters():
            p.requires_grad_(not patterns or any(fnmatchcase(name, pat) for pat in patterns))
        from dlcli.training.transfer import mark_frozen_norms

        mark_frozen_norms(pl_module.model)  # the task module then keeps those in eval mode
        pl_module.model.train()
        groups = [g for opt in trainer.optimizers for g in opt.param_groups]
        if not self.base_lrs:
            self.base_lrs = [g["lr"] for g in groups]
        for group, base in zip(groups, self.base_lrs, strict=True):
            if stage.get("lr") is not None:
                group["lr"] = stage["lr"]
            else:
                group["lr"] = base * (stage.get("lr_multiplier") or 1.0)
