"""Lightning callbacks that Lightning does not ship in the form dlcli needs."""

from __future__ import annotations

import math

import pytorch_lightning as pl
import torch
from pytorch_lightning.callbacks import EarlyStopping, ModelCheckpoint

from dlcli.errors import DlcliError


class TrainingDiverged(DlcliError, RuntimeError):
    """The loss became NaN or infinite; the run is marked failed with this message (exit code 2)."""


class TerminateOnNaN(pl.Callback):
    """Raise :class:`TrainingDiverged` on the first non-finite training loss, naming epoch and step.

    On the CPU every step is checked. On an accelerator, reading the loss back would wait for the device
    on every step, so the first bad step is kept in a device tensor and read every ``check_every`` steps
    and at the end of each epoch: the run still stops within the epoch, and the message names the step.
    """

    def __init__(self, check_every: int = 50, defer: bool | None = None) -> None:
        self.check_every = check_every
        self.defer = defer  # None: defer the read-back on accelerators only
        self.first_bad: torch.Tensor | None = None  # (2,) [step, batch] of the first bad step; -1: none yet

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        loss = outputs["loss"] if isinstance(outputs, dict) else outputs
        if loss is None:
            return
        loss = loss.detach()
        if not (self.defer if self.defer is not None else loss.device.type != "cpu"):
            value = float(loss) if loss.numel() == 1 else float(loss.sum())  # on the CPU: nothing to wait for
            if not math.isfinite(value):
                self._fail(trainer, str(value), trainer.global_step, batch_idx)
            return
        if self.first_bad is None:
            self.first_bad = torch.full((2,), -1, dtype=torch.long, device=loss.device)
        here = torch.tensor([trainer.global_step, batch_idx], device=loss.device)  # host -> device, no sync
        bad = ~torch.isfinite(loss).all() & (self.first_bad[0] < 0)
        self.first_bad = torch.where(bad, here, self.first_bad)
        if (batch_idx + 1) % self.check_every == 0:
            self._check(trainer)

    def on_train_epoch_end(self, trainer, pl_module) -> None:
        self._check(trainer)

    def _check(self, trainer) -> None:
        if self.first_bad is None:
            return
        step, batch = self.first_bad.tolist()  # the one read-back (and wait for the device) per check
        if step >= 0:
            self._fail(trainer, "NaN or infinite", step, batch)

    @staticmethod
    def _fail(trainer, what: str, step: int, batch_idx: int) -> None:
        raise TrainingDiverged(
            f"the training loss became {what} in epoch {trainer.current_epoch} (0-based), step "
            f"{step}, batch {batch_idx}. Try a lower learning rate (optimizer.lr) or "
            "gradient clipping (trainer.gradient_clip_val=1.0)")


class RNGState(pl.Callback):
    """Save the random generators' states (python, numpy, torch, CUDA) in every checkpoint and restore them on
    resume, so a resumed run draws the same shuffles, dropout masks and augmentations as an uninterrupted one.

    Stored as tensors and plain lists: checkpoints stay loadable with ``weights_only=True``.
    """

    def state_dict(self) -> dict:
        import random

        import numpy as np

        kind, keys, pos, has_gauss, gauss = np.random.get_state()
        state = {"python": _plain(random.getstate()), "torch": torch.get_rng_state(),
                 "numpy": [kind, keys.tolist(), int(pos), int(has_gauss), float(gauss)]}
        if torch.cuda.is_available() and torch.cuda.is_initialized():
            state["cuda"] = torch.cuda.get_rng_state_all()
        return state

    def load_state_dict(self, state: dict) -> None:
        import random

        import numpy as np

        version, internal, gauss = state["python"]
        random.setstate((version, tuple(internal), gauss))
        kind, keys, pos, has_gauss, cached = state["numpy"]
        np.random.set_state((kind, np.asarray(keys, dtype=np.uint32), pos, has_gauss, cached))
        torch.set_rng_state(state["torch"])
        if state.get("cuda") is not None and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(state["cuda"])


def _plain(value):
    """Tuples -> lists, recursively (python's random state is nested tuples)."""
    return [_plain(v) for v in value] if isinstance(value, tuple | list) else value


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
        self.module = pl_module
        params = self._params(pl_module)
        if not self.shadow:
            self.shadow = {n: p.detach().clone() for n, p in params.items()}
        else:  # restored from a checkpoint (on the CPU)
            self.shadow = {n: t.to(params[n].device) for n, t in self.shadow.items()}

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

    def on_load_checkpoint(self, trainer, pl_module, checkpoint) -> None:
        # resuming: training goes on from the raw weights, not from the averaged ones the state_dict holds
        raw = (checkpoint.get("callbacks") or {}).get(self.state_key, {}).get("raw")
        if raw:
            with torch.no_grad():
                for n, p in self._params(pl_module).items():
                    p.copy_(raw[n])

    def state_dict(self) -> dict:
        module = getattr(self, "module", None)
        raw = {n: p.detach().cpu().clone() for n, p in self._params(module).items()} if module else {}
        return {"decay": self.decay, "shadow": {n: t.cpu() for n, t in self.shadow.items()}, "raw": raw}

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

    def state_dict(self) -> dict:
        return {"base_lrs": list(self.base_lrs)}  # a resumed run's optimizer holds the stage's rates, not these

    def load_state_dict(self, state: dict) -> None:
        self.base_lrs = list(state["base_lrs"])


class ResumeGuard(pl.Callback):
    """Added when a run is resumed. A run that early stopping had already ended (killed before its test)
    stops again at once; if more epochs were asked for (``extend``), early stopping's patience starts over."""

    def __init__(self, extend: bool) -> None:
        self.extend = extend

    def on_train_start(self, trainer, pl_module) -> None:
        for stopper in trainer.early_stopping_callbacks:
            if stopper.stopped_epoch > 0 and self.extend:
                stopper.wait_count, stopper.stopped_epoch = 0, 0
            elif stopper.stopped_epoch > 0:
                trainer.should_stop = True


class CallbackGroup(pl.Callback):
    """Several callbacks that Lightning sees as one.

    Lightning calls every hook of every callback, overridden or not, several times per training step
    (``on_train_batch_start``, ``on_before_backward``, ...); each call costs a few microseconds, which adds
    up on small models. The group takes those calls once and passes each hook only to the members that
    override it. Members' states go into checkpoints under their own keys, as if they were registered
    one by one, so checkpoints look the same either way.
    """

    def __init__(self, callbacks: list[pl.Callback]) -> None:
        self.members = list(callbacks)
        self._hooks = {name: [getattr(cb, name) for cb in self.members
                              if getattr(type(cb), name) is not getattr(pl.Callback, name)]
                       for name in _HOOKS}

    def on_save_checkpoint(self, trainer, pl_module, checkpoint) -> None:
        states = checkpoint.setdefault("callbacks", {})
        for cb in self.members:
            state = cb.state_dict()
            if state:
                states[cb.state_key] = state
        for hook in self._hooks["on_save_checkpoint"]:
            hook(trainer, pl_module, checkpoint)

    def on_load_checkpoint(self, trainer, pl_module, checkpoint) -> None:
        states = checkpoint.get("callbacks") or {}
        for cb in self.members:
            if cb.state_key in states:
                cb.load_state_dict(states[cb.state_key])
        for hook in self._hooks["on_load_checkpoint"]:
            hook(trainer, pl_module, checkpoint)


def _forward(name: str):
    def hook(self, *args, **kwargs) -> None:
        for fn in self._hooks[name]:
            fn(*args, **kwargs)

    hook.__name__ = name
    return hook


_HOOKS = [name for name in vars(pl.Callback) if name.startswith("on_") or name in ("setup", "teardown")]
for _name in _HOOKS:
    if _name not in ("on_save_checkpoint", "on_load_checkpoint"):
        setattr(CallbackGroup, _name, _forward(_name))


class TieBreakingCheckpoint(ModelCheckpoint):
    """Lightning's ModelCheckpoint, with ties in the monitored metric broken by a second metric.

    On a small validation set ``val/acc`` often reaches its ceiling (1.0, or k/n) in the first epochs and
    never *strictly* improves again, so a plain checkpoint keeps that undertrained early epoch. Here an
    epoch that ties the kept score replaces it when its ``tiebreak`` metric (``val/loss``, lower is better)
    is better; with top k > 1, ties are ranked the same way. Without the tie-break metric in an epoch's
    metrics (no validation split), it behaves exactly like ModelCheckpoint.
    """

    def __init__(self, *args, tiebreak: str | None = "val/loss", tiebreak_mode: str = "min", **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.tiebreak = tiebreak if tiebreak and tiebreak != self.monitor else None
        self.tiebreak_mode = tiebreak_mode
        self.tiebreak_values: dict[str, float] = {}  # kept checkpoint path -> its epoch's tie-break value
        self._before: dict | None = None  # the kept scores when this epoch's check ran, to see what it saved
        self._now: float | None = None  # this epoch's tie-break value

    def _tiebreak_now(self, trainer: pl.Trainer) -> float | None:
        if not self.tiebreak:
            return None
        logged = trainer.callback_metrics
        validated = any(k.startswith("val/") for k in logged)
        if self.tiebreak not in logged and self.tiebreak.startswith("val/") and validated:
            raise DlcliError(f"callbacks.model_checkpoint.tiebreak: this run logs no '{self.tiebreak}' (it logs "
                             f"{', '.join(sorted(k for k in logged if k.startswith('val/')))}): name one of those, "
                             "or tiebreak=null")
        value = logged.get(self.tiebreak)
        return None if value is None else float(value)

    def _rank(self, path: str) -> tuple[float, float]:
        """Sort key, larger is better: (monitored score, tie-break), each signed by its mode."""
        score = float(self.best_k_models[path])
        tie = self.tiebreak_values.get(path)
        tie = -math.inf if tie is None else (-tie if self.tiebreak_mode == "min" else tie)
        return (-score if self.mode == "min" else score, tie)

    def check_monitor_top_k(self, trainer: pl.Trainer, current: torch.Tensor | None = None) -> bool:
        self._before, self._now = dict(self.best_k_models), self._tiebreak_now(trainer)
        if super().check_monitor_top_k(trainer, current):
            return True
        now = self._now
        if current is None or now is None or not self.best_k_models or self.save_top_k == -1:
            return False
        kept = self.tiebreak_values.get(self.kth_best_model_path)
        better = bool(torch.eq(current.cpu(), self.best_k_models[self.kth_best_model_path].cpu())) and (
            kept is None or (now < kept if self.tiebreak_mode == "min" else now > kept))
        return trainer.strategy.reduce_boolean_decision(better)

    def _rerank(self, trainer: pl.Trainer) -> None:
        """Record the tie-break value of a checkpoint saved this epoch; re-pick the best and the k-th among ties."""
        if self._before is not None:
            # a checkpoint saved this epoch holds a new score object (even when it reuses a file name)
            for path, score in self.best_k_models.items():
                if self._before.get(path) is not score and self._now is not None:
                    self.tiebreak_values[path] = self._now
            self._before = None
        for path in list(self.tiebreak_values):
            if path not in self.best_k_models:
                del self.tiebreak_values[path]
        if self.best_k_models and self.tiebreak:
            self.best_model_path = max(self.best_k_models, key=self._rank)
            self.best_model_score = self.best_k_models[self.best_model_path]
            if len(self.best_k_models) == self.save_top_k:
                self.kth_best_model_path = min(self.best_k_models, key=self._rank)
                self.kth_value = self.best_k_models[self.kth_best_model_path]

    def on_validation_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        super().on_validation_end(trainer, pl_module)
        self._rerank(trainer)

    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        super().on_train_epoch_end(trainer, pl_module)
        self._rerank(trainer)

    def state_dict(self) -> dict:
        return {**super().state_dict(), "tiebreak_values": dict(self.tiebreak_values)}

    def load_state_dict(self, state_dict: dict) -> None:
        super().load_state_dict(state_dict)
        self.tiebreak_values = {k: v for k, v in state_dict.get("tiebreak_values", {}).items()
                                if k in self.best_k_models}


class EarlyStoppingAfterMinimum(EarlyStopping):
    """Lightning's EarlyStopping, watching the metric only once ``trainer.min_epochs`` and ``min_steps`` are met.

    Lightning's own counts its patience from the first epoch, and a stop it decides inside the minimum
    is only put off: the run then ends the moment the minimum is met, however much the metric is
    improving by then. Here the minimum is a warm-up: the best value and the patience start after it, so
    a model whose validation loss first rises (small sets, batch-norm statistics settling) stops only
    once it has stopped improving after the warm-up.
    """

    def _watching(self, trainer: pl.Trainer) -> bool:
        return trainer.current_epoch + 1 >= (trainer.min_epochs or 0) and \
            trainer.global_step >= (trainer.min_steps or 0)

    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if self._watching(trainer):
            super().on_train_epoch_end(trainer, pl_module)

    def on_validation_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if self._watching(trainer):
            super().on_validation_end(trainer, pl_module)
