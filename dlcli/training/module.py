"""The LightningModule for each task kind, and the DataModule over in-memory tensors."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pytorch_lightning as pl
import torch
import torchmetrics
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from dlcli.data.prepare import Prepared
from dlcli.metrics import task_metrics


class ArrayDataModule(pl.LightningDataModule):
    """Train/val/test splits held in memory as tensors."""

    def __init__(self, prepared: Prepared, batch_size: int, num_workers: int = 0) -> None:
        super().__init__()
        self.batch_size, self.num_workers = batch_size, num_workers
        y_dtype = torch.long if prepared.task in ("multiclass", "transcription", "metric_learning",
                                                  "contrastive") else torch.float32
        self.sets = {
            name: TensorDataset(torch.from_numpy(np.ascontiguousarray(x)),
                                torch.as_tensor(y, dtype=y_dtype))
            for name, (x, y) in prepared.splits.items()
        }

    def _loader(self, split: str, shuffle: bool) -> DataLoader | list:
        if split not in self.sets:
            return []
        return DataLoader(self.sets[split], batch_size=self.batch_size, shuffle=shuffle,
                          num_workers=self.num_workers, persistent_workers=self.num_workers > 0)

    def train_dataloader(self):
        return self._loader("train", shuffle=True)

    def val_dataloader(self):
        return self._loader("val", shuffle=False)

    def test_dataloader(self):
        return self._loader("test", shuffle=False)


class TaskModule(pl.LightningModule):
    """Trains ``model`` with ``loss`` for a multiclass, binary, multilabel, regression or reconstruction task.

    Logs ``{stage}/loss`` and the task's metrics (``val/acc``, ``test/mae``, ...) once per
    epoch. For regression with target scaling, the model learns standardised targets and
    the metrics are reported in the targets' original units. For ``contrastive`` (self-supervised)
    the loss compares two augmented views of each image and never reads the labels; see
    :meth:`_contrastive_loss`.
    """

    def __init__(self, model: nn.Module, loss: nn.Module, task: str, num_classes: int | None,
                 make_optimizer: Callable[[Any], Any], make_scheduler: Callable[[Any], Any],
                 augment: Callable | None = None, target_scaling: dict | None = None,
                 has_anomalies: bool = False, l1: float = 0.0, metrics: list[str] | None = None) -> None:
        super().__init__()
        self.l1 = l1
        self.model, self.loss_fn, self.task = model, loss, task
        self.make_optimizer, self.make_scheduler, self.augment = make_optimizer, make_scheduler, augment
        # the test confusion matrix is saved with the run (confusion_matrix.csv and .png)
        self.confusion = torchmetrics.classification.MulticlassConfusionMatrix(num_classes=num_classes) \
            if task == "multiclass" else torchmetrics.classification.BinaryConfusionMatrix() \
            if task == "binary" else None
        self.test_confusion: torch.Tensor | None = None
        metrics = task_metrics(task, num_classes, metrics)
        self.metrics = nn.ModuleDict({s: metrics.clone(prefix=f"{s}/") for s in ("val", "test")})
        if task == "reconstruction":  # validation holds no anomalies; the test split does, if any were named
            self.metrics["val"] = torchmetrics.MetricCollection({})
            if not has_anomalies:
                self.metrics["test"] = torchmetrics.MetricCollection({})
        mean, std = 0.0, 1.0
        if target_scaling and target_scaling["method"] == "standard":
            mean, std = target_scaling["mean"], target_scaling["std"]
        self.register_buffer("y_mean", torch.as_tensor(mean, dtype=torch.float32))
        self.register_buffer("y_std", torch.as_tensor(std, dtype=torch.float32))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.model(x)
        if self.task == "binary" or (self.task == "regression" and out.shape[-1] == 1):
            out = out.squeeze(-1)  # (B, 1) -> (B,)
        return out

    def _loss(self, out: torch.Tensor, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        if self.task == "transcription":
            return self.loss_fn(self._per_step(out, x), y)
        if self.task == "reconstruction":
            return self.loss_fn(out, x.flatten(1))  # (B, prod(in_shape)) against the input itself
        if self.task == "regression":
            y = (y - self.y_mean) / self.y_std  # the model learns standardised targets
        return self.loss_fn(out, y)

    @staticmethod
    def _per_step(out: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        return out.view(out.shape[0], x.shape[1], -1)  # (B, T*C) -> (B, T, C): a score per step and class

    def _transcripts(self, out: torch.Tensor, x: torch.Tensor, y: torch.Tensor) -> tuple[list[str], list[str]]:
        """Greedy CTC decoding, as strings of symbol ids (one character per symbol)."""
        from dlcli.nets.losses import greedy_decode

        def text(ids: list[int]) -> str:  # one character per symbol id, whatever the alphabet
            return "".join(chr(0x4E00 + i) for i in ids)

        preds = [text(seq) for seq in greedy_decode(self._per_step(out, x))]
        return preds, [text([i for i in row if i > 0]) for row in y.tolist()]

    def predictions(self, out: torch.Tensor) -> torch.Tensor:
        """Model outputs in the targets' terms: class probabilities, or original units."""
        if self.task == "regression":
            return out * self.y_std + self.y_mean
        if self.task in ("reconstruction", "metric_learning", "contrastive"):
            return out
        return torch.sigmoid(out) if self.task in ("binary", "multilabel") else out.softmax(-1)

    def on_train_epoch_start(self) -> None:
        for m in self.model.modules():  # frozen batch norms keep their running statistics (finetune.freeze)
            if getattr(m, "dlcli_frozen", False):
                m.eval()
        if hasattr(self.augment, "set_epoch"):  # e.g. mixup switched off for the last epochs
            self.augment.set_epoch(self.current_epoch, self.trainer.max_epochs)
        self._loss_sum, self._loss_n = torch.zeros((), device=self.device), 0

    def _contrastive_loss(self, x: torch.Tensor, seed: int | None = None) -> torch.Tensor:
        """NT-Xent between two independently augmented views of ``x``; the labels are never passed.

        Validation and test batches are augmented here too (the only place they are), because the loss
        needs views; ``seed`` draws the same views every epoch, so that epochs compare on equal terms.
        """
        if seed is None:
            views = [self.augment(x, None)[0] for _ in range(2)]
        else:
            devices = [x.device.index or 0] if x.device.type == "cuda" else []
            with torch.random.fork_rng(devices=devices):  # training's random stream is left as it was
                torch.manual_seed(seed)
                views = [self.augment(x, None)[0] for _ in range(2)]
        out = self(torch.cat(views))  # (2B, *S) -> (2B, D): one pass, batch norm sees both views
        return self.loss_fn(*out.chunk(2))

    def training_step(self, batch, batch_idx):
        x, y = batch
        if self.task == "contrastive":  # self-supervised: y is never read
            loss = self._contrastive_loss(x)
        else:
            if self.augment is not None:
                x, y = self.augment(x, y)
            loss = self._loss(self(x), x, y)
        if self.l1 > 0:  # L1 on weight matrices and kernels; biases and norm parameters are 1-D
            loss = loss + self.l1 * sum(p.abs().sum() for p in self.model.parameters() if p.ndim > 1)
        # the epoch's mean training loss, summed on the device and logged once, at the epoch's last batch:
        # logging every step costs Lightning ~1.5 ms a step, a third of a small model's step
        if self._trainer is None:  # called directly (not in a fit): nothing to log
            return loss
        n = len(batch[0])
        self._loss_sum, self._loss_n = self._loss_sum + loss.detach() * n, self._loss_n + n
        if batch_idx + 1 >= self.trainer.num_training_batches:
            self.log("train/loss", self._loss_sum / self._loss_n, on_step=False, on_epoch=True, sync_dist=True,
                     batch_size=1)
        if self.trainer.progress_bar_callback is not None:
            # the live value in the progress bar (not a recorded metric: the per-epoch mean above is);
            # skipped when nothing shows it, to keep the step lean
            self.log("loss", loss.detach(), on_step=True, on_epoch=False, prog_bar=True, logger=False)
        return loss

    def _eval_step(self, batch, stage: str, batch_idx: int = 0) -> None:
        x, y = batch
        out = self(x)  # contrastive: embeddings of the un-augmented images, for recall_at_1 with the labels
        loss = self._contrastive_loss(x, seed=batch_idx) if self.task == "contrastive" else self._loss(out, x, y)
        self.log(f"{stage}/loss", loss, on_step=False, on_epoch=True, prog_bar=stage == "val",
                 sync_dist=True)  # epoch-level: one reduction per epoch across devices
        if not len(self.metrics[stage]):
            return
        if self.task == "transcription":
            self.metrics[stage].update(*self._transcripts(out, x, y))
            return
        if self.task == "reconstruction":  # anomaly score: the sample's reconstruction error
            self.metrics[stage].update(((out - x.flatten(1)) ** 2).mean(1), y.long())
            return
        target = y.long() if self.task in ("binary", "multilabel") else y
        preds = self.predictions(out)
        self.metrics[stage].update(preds, target)
        if stage == "test" and self.confusion is not None:
            self.confusion.update(preds, target)

    def validation_step(self, batch, batch_idx):
        self._eval_step(batch, "val", batch_idx)

    def test_step(self, batch, batch_idx):
        self._eval_step(batch, "test", batch_idx)

    def _log_metrics(self, stage: str) -> None:
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
        return {"optimizer": optimizer, "lr_scheduler": scheduler}
