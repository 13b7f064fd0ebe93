"""The LightningModule for each task kind, and the DataModule over in-memory tensors."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

import numpy as np
import pytorch_lightning as pl
import torch
import torchmetrics
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from dlcli.data.padding import takes_lengths
from dlcli.data.prepare import Prepared
from dlcli.errors import DlcliError
from dlcli.metrics import task_metrics
from dlcli.tasks import get_task


class TensorBatches:
    """Mini-batches sliced from tensors held in memory: what a hand-written loop does, and as fast.

    No per-sample indexing and no collate: one gather per epoch shuffles the split, then each batch is a
    slice (a view). The tensors are moved to the training device once, on first use, and stay there, so
    no batch is copied to the device again. The shuffle draws from torch's default generator exactly as
    a shuffling DataLoader does, so a seeded (or resumed) run draws the same order as with one.
    """

    def __init__(self, tensors: tuple[torch.Tensor, ...], batch_size: int, shuffle: bool,
                 device: torch.device | None = None) -> None:
        self.tensors, self.batch_size, self.shuffle = tensors, batch_size, shuffle
        if device is not None and tensors[0].device != device:
            self.tensors = tuple(t.to(device) for t in tensors)

    def __len__(self) -> int:
        return -(-len(self.tensors[0]) // self.batch_size)

    def __iter__(self):
        tensors = self.tensors
        # the draws a DataLoader makes from torch's generator (its iterator's base seed, then its sampler's
        # seed), in the same order: a seed shuffles alike here and in a DataLoader (data.num_workers > 0)
        torch.empty((), dtype=torch.int64).random_()
        if self.shuffle:
            seed = int(torch.empty((), dtype=torch.int64).random_().item())
            order = torch.randperm(len(tensors[0]), generator=torch.Generator().manual_seed(seed))
            tensors = tuple(t[order.to(t.device, non_blocking=True)] for t in tensors)
        for start in range(0, len(tensors[0]), self.batch_size):
            yield tuple(t[start:start + self.batch_size] for t in tensors)


def split_extras(extras: list[torch.Tensor]) -> tuple[torch.Tensor | None, torch.Tensor | None]:
    """The optional tensors a batch carries after (x, y): (sequence lengths, forecast offsets), each or None.

    Lengths (integers, dlcli/data/padding.py) come with variable-length sequences, offsets (floats,
    dlcli/data/forecast.py) with differenced forecasts; their dtypes tell them apart.
    """
    lengths = next((t for t in extras if not t.is_floating_point()), None)
    return lengths, next((t for t in extras if t.is_floating_point()), None)


EVAL_BATCH_BYTES = 8 * 2**20  # input bytes per validation or test batch when data.eval_batch_size is null


def eval_batch_size(data_cfg: dict, prepared: Prepared) -> int:
    """Samples per validation and test batch: ``data.eval_batch_size``, or when null, as many as fill
    8 MiB of inputs (at least ``batch_size``, at most the largest split). Without gradients to keep,
    evaluation needs a fraction of training's memory per sample, and fewer, larger batches cost less
    per sample; the metrics do not depend on it (means are weighted by batch size). Contrastive tasks
    keep ``batch_size``: their validation loss is defined over the batch (its other images are the
    negatives)."""
    batch_size = data_cfg["batch_size"]
    if data_cfg.get("eval_batch_size"):
        return int(data_cfg["eval_batch_size"])
    if get_task(prepared.task).needs_views:  # its validation loss is defined over the batch
        return batch_size
    x = next(iter(prepared.splits.values()))[0]
    per_sample = max(1, x[:1].nbytes)
    largest = max(len(v[0]) for v in prepared.splits.values())
    return max(batch_size, min(largest, EVAL_BATCH_BYTES // per_sample))


class ArrayDataModule(pl.LightningDataModule):
    """Train/val/test splits held in memory as tensors.

    Validation and test batches hold ``eval_batch_size`` samples (see :func:`eval_batch_size`).
    On one device with ``num_workers=0`` (the default) batches are :class:`TensorBatches`, kept on the
    device. With several devices (each process needs its own shard: Lightning adds a distributed
    sampler to a DataLoader) or with ``num_workers > 0`` (batches prepared in worker processes) they
    come from a DataLoader, with persistent workers, and pinned memory when the device is a GPU.
    """

    def __init__(self, prepared: Prepared, batch_size: int, num_workers: int = 0,
                 eval_batch_size: int | None = None) -> None:
        super().__init__()
        self.batch_size, self.num_workers = batch_size, num_workers
        self.eval_batch_size = eval_batch_size or batch_size
        y_dtype = getattr(torch, get_task(prepared.task).target_dtype)
        # optional per-sample extras after (x, y): sequence lengths (int64), forecast offsets (float32)
        extras = [prepared.lengths or {}, prepared.offsets or {}]
        self.sets = {
            name: TensorDataset(torch.from_numpy(np.ascontiguousarray(x)), torch.as_tensor(y, dtype=y_dtype),
                                *(torch.from_numpy(np.ascontiguousarray(e[name])) for e in extras if name in e))
            if isinstance(x, np.ndarray) else x.dataset(torch.as_tensor(y, dtype=y_dtype))  # streamed: data/stream.py
            for name, (x, y) in prepared.splits.items()
        }

    def _device(self) -> torch.device | None:
        trainer = self.trainer
        return trainer.strategy.root_device if trainer is not None else None

    def _loader(self, split: str, shuffle: bool) -> DataLoader | TensorBatches | list:
        if split not in self.sets:
            return []
        trainer, device = self.trainer, self._device()
        batch_size = self.batch_size if shuffle else self.eval_batch_size
        if self.num_workers == 0 and isinstance(self.sets[split], TensorDataset) \
                and (trainer is None or trainer.world_size == 1):
            return TensorBatches(self.sets[split].tensors, batch_size, shuffle, device)
        return DataLoader(self.sets[split], batch_size=batch_size, shuffle=shuffle,
                          num_workers=self.num_workers, persistent_workers=self.num_workers > 0,
                          pin_memory=device is not None and device.type == "cuda")

    def train_dataloader(self):
        return self._loader("train", shuffle=True)

    def val_dataloader(self):
        return self._loader("val", shuffle=False)

    def test_dataloader(self):
        return self._loader("test", shuffle=False)


class TaskModule(pl.LightningModule):
    """Trains ``model`` with ``loss`` for a task: it optimises and logs, and asks the task (dlcli/tasks/) for
    everything that differs between tasks (output shape, loss, predictions, metric updates).

    Logs ``{stage}/loss`` and the task's metrics (``val/acc``, ``test/mae``, ...) once per
    epoch. For regression with target scaling, the model learns standardised targets and
    the metrics are reported in the targets' original units.
    """

    def __init__(self, model: nn.Module, loss: nn.Module, task: str, num_classes: int | None,
                 make_optimizer: Callable[[Any], Any], make_scheduler: Callable[[Any], Any],
                 augment: Callable | None = None, target_scaling: dict | None = None,
                 has_anomalies: bool = False, l1: float = 0.0, metrics: list[str] | None = None,
                 clip_val: float | None = None, clip_algorithm: str = "norm", accumulate: int = 1,
                 channels_last: bool = False) -> None:
        super().__init__()
        # The optimiser is stepped here (see training_step), not by Lightning's automatic loop: the same
        # arithmetic with a third fewer hook calls per step, which is most of a small model's step time.
        self.automatic_optimization = False
        self.clip_val, self.clip_algorithm, self.accumulate = clip_val, clip_algorithm, accumulate
        self.channels_last = channels_last  # image batches are made NHWC, to match the model's weights
        self.l1 = l1
        self.model, self.loss_fn, self.task = model, loss, task
        self.spec = get_task(task)  # the task's facts and steps
        self.takes_lengths = takes_lengths(model)  # other models see padded steps as zeros
        self.make_optimizer, self.make_scheduler, self.augment = make_optimizer, make_scheduler, augment
        # the test confusion matrix is saved with the run (confusion_matrix.csv and .png)
        self.confusion = self.spec.confusion(num_classes)
        self.test_confusion: torch.Tensor | None = None
        self._monitors: dict[int, str] = {}  # id(plateau scheduler) -> the metric it steps on
        self._eval_loss: dict[str, tuple] = {}  # stage -> (sum of the batch losses times their sizes, samples)
        metrics = task_metrics(task, num_classes, metrics)
        stages = self.spec.metric_stages(has_anomalies)  # e.g. reconstruction: only a test split with anomalies
        self.metrics = nn.ModuleDict({s: metrics.clone(prefix=f"{s}/") if s in stages
                                      else torchmetrics.MetricCollection({}) for s in ("val", "test")})
        mean, std = 0.0, 1.0
        if target_scaling and target_scaling["method"] == "standard":
            mean, std = target_scaling["mean"], target_scaling["std"]
        self.register_buffer("y_mean", torch.as_tensor(mean, dtype=torch.float32))
        self.register_buffer("y_std", torch.as_tensor(std, dtype=torch.float32))

    # plain attributes Lightning sets around every hook call (dozens of times per step) and this class
    # sets every step: set directly, skipping nn.Module's checks for parameters, buffers and submodules
    _PLAIN_ATTRS = frozenset({"_current_fx_name", "_loss_sum", "_loss_n", "_lengths"})

    def __setattr__(self, name: str, value: Any) -> None:
        if name in TaskModule._PLAIN_ATTRS:
            object.__setattr__(self, name, value)
        else:
            super().__setattr__(name, value)

    _compiled: Callable | None = None  # the model through torch.compile (model.compile=true)
    _lengths: torch.Tensor | None = None  # the training batch's sequence lengths, while its step runs

    def compile_model(self, **options: Any) -> None:
        """Run the model through ``torch.compile`` from now on (compiled on the first batch).

        The compiled wrapper is kept outside the module's registered children, so the state_dict, the
        checkpoints and everything that reloads them see the plain model's parameter names.
        """
        object.__setattr__(self, "_compiled", torch.compile(self.model, **options))

    def forward(self, x: torch.Tensor, lengths: torch.Tensor | None = None) -> torch.Tensor:
        if self.channels_last and x.dim() == 4:
            x = x.contiguous(memory_format=torch.channels_last)
        # lengths (B,) of variable-length sequences, for the models that take them (dlcli/data/padding.py);
        # in training, the batch's lengths (the task runs the model on x itself, see training_step)
        lengths = self._lengths if lengths is None else lengths
        if lengths is not None and self.takes_lengths:
            return self.spec.output((self._compiled or self.model)(x, lengths=lengths))
        return self.spec.output((self._compiled or self.model)(x))

    def compute_loss(self, out: torch.Tensor, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """The task's loss for model outputs ``out`` of inputs ``x`` with targets ``y``."""
        return self.spec.loss(self.loss_fn, out, x, y, self.y_mean, self.y_std)

    def predictions(self, out: torch.Tensor, x: torch.Tensor | None = None) -> torch.Tensor:
        """Model outputs in the targets' terms: class probabilities, or original units."""
        return self.spec.predictions(out, x, self.y_mean, self.y_std)

    def on_train_epoch_start(self) -> None:
        for m in self.model.modules():  # frozen batch norms keep their running statistics (finetune.freeze)
            if getattr(m, "dlcli_frozen", False):
                m.eval()
        if hasattr(self.augment, "set_epoch"):  # e.g. mixup switched off for the last epochs
            self.augment.set_epoch(self.current_epoch, self.trainer.max_epochs)
        self._loss_sum, self._loss_n = torch.zeros((), device=self.device), 0

    def training_step(self, batch, batch_idx):
        x, y, *extras = batch
        self._lengths = split_extras(extras)[0]  # variable-length sequences: forward reads them during the step
        try:
            loss = self.spec.training_loss(self, x, y)
        finally:
            self._lengths = None
        if self.l1 > 0:  # L1 on weight matrices and kernels; biases and norm parameters are 1-D
            loss = loss + self.l1 * sum(p.abs().sum() for p in self.model.parameters() if p.ndim > 1)
        # the epoch's mean training loss, summed on the device and logged once, at the epoch's last batch:
        # logging every step costs Lightning ~1.5 ms a step, a third of a small model's step
        if self._trainer is None:  # called directly (not in a fit): nothing to step or log
            return loss
        if not self.automatic_optimization:
            self._optimize(loss, batch_idx)
        n = len(batch[0])
        self._loss_sum, self._loss_n = self._loss_sum + loss.detach() * n, self._loss_n + n
        if batch_idx + 1 >= self.trainer.num_training_batches:
            self.log("train/loss", self._loss_sum / self._loss_n, on_step=False, on_epoch=True, sync_dist=True,
                     batch_size=1)
        return loss

    def running_loss(self) -> float | None:
        """The mean training loss of the epoch so far (what the progress bar shows; reads the device)."""
        n = getattr(self, "_loss_n", 0)
        return float(self._loss_sum / n) if n else None

    def _optimize(self, loss: torch.Tensor, batch_idx: int) -> None:
        """Backward, and every ``accumulate`` batches (and at the epoch's last) an optimiser step and the
        schedules' steps: what Lightning's automatic optimisation does, in the same order.

        Gradients summed over ``accumulate`` batches are averaged (the loss is divided), clipping happens in
        :meth:`on_before_optimizer_step` (after mixed precision has unscaled them), per-step schedules step
        after each optimiser step, per-epoch ones after the epoch's last batch and plateau ones once the
        epoch's validation metrics are in (:meth:`on_train_epoch_end`).
        """
        last = batch_idx + 1 >= self.trainer.num_training_batches
        self.manual_backward(loss / self.accumulate if self.accumulate > 1 else loss)
        if not (last or (batch_idx + 1) % self.accumulate == 0):
            return
        optimizer = self.optimizers()
        optimizer.step()
        optimizer.zero_grad()
        self._step_schedules("step", batch_idx + 1)
        if last:
            self._step_schedules("epoch", self.current_epoch + 1)

    def _step_schedules(self, interval: str, count: int, plateau: bool = False) -> None:
        for config in self.trainer.lr_scheduler_configs:  # read each time: SWA swaps in its own schedule
            # Lightning keeps no `monitor` for manual optimisation: configure_optimizers noted it
            monitor = config.monitor or self._monitors.get(id(config.scheduler))
            if config.interval != interval or (monitor is not None) != plateau or count % config.frequency:
                continue
            metric = None
            if plateau:
                metric = self.trainer.callback_metrics.get(monitor)
                if metric is None:
                    raise DlcliError(f"the plateau schedule watches '{monitor}', which this run does not "
                                     f"log (it logs: {', '.join(sorted(self.trainer.callback_metrics))}); set "
                                     "scheduler.monitor to one of them")
            self.lr_scheduler_step(config.scheduler, metric)

    def on_before_optimizer_step(self, optimizer) -> None:
        if self.clip_val:
            self.clip_gradients(optimizer, gradient_clip_val=self.clip_val,
                                gradient_clip_algorithm=self.clip_algorithm)

    def on_train_epoch_end(self) -> None:
        if not self.automatic_optimization:
            self._step_schedules("epoch", self.current_epoch + 1, plateau=True)

    def _eval_step(self, batch, stage: str, batch_idx: int = 0) -> None:
        x, y, *extras = batch
        lengths, offset = split_extras(extras)
        out = self(x, lengths)  # contrastive: embeddings of the un-augmented images, for recall_at_1 with the labels
        loss = self.spec.eval_loss(self, out, x, y, batch_idx)
        # the mean over the epoch's samples, summed on the device and logged once, at the epoch's end
        total, n = self._eval_loss.get(stage, (0.0, 0))
        self._eval_loss[stage] = (total + loss.detach() * len(x), n + len(x))
        if not len(self.metrics[stage]):
            return
        y_mean = self.y_mean
        if offset is not None:  # differenced forecasts: changes + their bases = levels, in the series' units
            y, y_mean = y + offset, y_mean + offset  # predictions are out * y_std + y_mean (regression)
        self.spec.update_metrics(self.metrics[stage], self.confusion if stage == "test" else None, out, x, y,
                                 y_mean, self.y_std)

    def validation_step(self, batch, batch_idx):
        self._eval_step(batch, "val", batch_idx)

    def test_step(self, batch, batch_idx):
        self._eval_step(batch, "test", batch_idx)

    def on_validation_epoch_start(self) -> None:
        self._eval_loss.pop("val", None)

    def on_test_epoch_start(self) -> None:
        self._eval_loss.pop("test", None)

    def _log_metrics(self, stage: str) -> None:
        total, n = self._eval_loss.pop(stage, (None, 0))
        if n:  # epoch-level: one reduction per epoch across devices
            self.log(f"{stage}/loss", total / n, prog_bar=stage == "val", sync_dist=True)
        if not len(self.metrics[stage]):
            return
        self.log_dict(self.metrics[stage].compute(), prog_bar=stage == "val")
        self.metrics[stage].reset()

    def on_validation_epoch_end(self) -> None:
        self._log_metrics("val")

    def on_test_epoch_end(self) -> None:
        self._log_metrics("test")
        if self.confusion is not None:
            self.test_confusion = self.confusion.compute().cpu()  # (true class, predicted class) counts
            self.confusion.reset()

    def configure_optimizers(self):
        optimizer = self.make_optimizer(self.model.named_parameters())
        scheduler = self.make_scheduler(optimizer)
        if scheduler is None:
            return optimizer
        if isinstance(scheduler, dict) and scheduler.get("monitor"):  # plateau: stepped with this metric
            self._monitors = {id(scheduler["scheduler"]): scheduler["monitor"]}
            # Lightning would warn that it ignores these keys when dlcli steps the optimiser itself
            scheduler = {k: v for k, v in scheduler.items() if k not in ("monitor", "reduce_on_plateau", "strict")}
        return {"optimizer": optimizer, "lr_scheduler": scheduler}


# Lightning reads training_step's (and validation_step's, test_step's) signature on every step to decide
# which arguments to pass; a precomputed signature spares it the inspection.
for _hook in ("training_step", "validation_step", "test_step"):
    getattr(TaskModule, _hook).__signature__ = inspect.signature(getattr(TaskModule, _hook))
