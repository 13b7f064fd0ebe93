"""What every task declares, and the behaviour most tasks share.

A task is a class registered in ``TASKS`` (one file per task in this package; a plugin registers its
own the same way). Its class attributes are its facts: which kind of data it claims when ``task=auto``,
the dtype of its targets, whether splits are stratified, its metrics and the metric that picks the best
epoch, the loss that fits it. Its methods are what differs between tasks on the way from data to a
report: turning a loaded table's targets into training targets, the model's output width, the loss,
predictions from outputs, metric updates, evaluation targets for new data, and prediction tables.

Nothing here imports torch at module level: the registry is read by ``dlcli list`` and by validation.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from dlcli.errors import DataError, DlcliError

if TYPE_CHECKING:
    import torch

    from dlcli.data.table import Table

THRESHOLD = 0.5  # binary and multilabel: a class or label is predicted when its probability is above this


class Task:
    """A task kind: its facts (class attributes) and its steps (methods)."""

    name: ClassVar[str] = ""  # set by the subclass; the registry name
    # task=auto: the data kind this task takes (Table.kind or the inferred kind), and among several tasks that
    # take one kind and fit the loss, the lowest `auto_rank` wins (multiclass before binary before embeddings)
    auto_kind: ClassVar[str | None] = None
    auto_rank: ClassVar[int] = 100
    target_dtype: ClassVar[str] = "float32"  # of the target tensors: "int64" (class ids) or "float32"
    stratify: ClassVar[bool] = False  # split stratified by the targets (class labels)
    classes: ClassVar[str | None] = None  # what class_names name: "classes", "labels", "symbols" or None
    metric_names: ClassVar[tuple[str, ...]] = ()  # the metrics it offers (`metrics: [...]`)
    default_metrics: ClassVar[tuple[str, ...]] = ()
    monitor: ClassVar[tuple[str, str]] = ("val/loss", "min")  # picks the best epoch when `monitor: auto`
    default_loss: ClassVar[str] = "mse"  # the loss suggested when the configured one does not fit
    # how a class is decided from the model's outputs: "argmax" (the most probable of K classes), "positive" (one
    # probability, of the positive class, above a threshold), "labels" (one probability per label, each above its
    # threshold); None: no class (values, embeddings, reconstructions). Reports and tuned thresholds ask this.
    decision: ClassVar[str | None] = None
    predictable: ClassVar[bool] = False  # `dlcli predict` gives a class or a value for each input
    gives: ClassVar[str] = "outputs"  # what its model gives, in a sentence (export metadata, predict's refusal)
    output_activation: ClassVar[str | None] = None  # applied by the loss on logits: a model's own is folded away
    mixes_targets: ClassVar[bool] = False  # mixup / cutmix may blend its (class) targets
    needs_views: ClassVar[bool] = False  # self-supervised: the loss compares augmented views, never the labels

    # ------------------------------------------------------------------------------------------ data side

    def targets(self, table: Table, data_name: str) -> tuple[np.ndarray, list[str] | None]:
        """The loaded table's targets as this task trains on them, and the class names (if any)."""
        raise NotImplementedError

    def out_features(self, in_shape: tuple[int, ...], y: np.ndarray, class_names: list[str] | None,
                     embedding_dim: int) -> int:
        """The model's output width."""
        return 1 if y.ndim == 1 else int(y.shape[1])

    def hold_out(self, y: np.ndarray, idx: dict[str, np.ndarray], cfg: dict,
                 data_name: str) -> tuple[np.ndarray, dict[str, np.ndarray], dict[str, Any]]:
        """After the split: adjust targets and splits (e.g. anomalies only in test); extra preprocessing facts."""
        return y, idx, {}

    def fit_targets(self, y_train: np.ndarray, cfg: dict) -> dict[str, Any]:
        """Statistics of the training targets kept with the run (e.g. target scaling)."""
        return {}

    def describe(self, num_classes: int | None) -> str:
        """The task as the run's header names it, e.g. 'multiclass (10 classes)'."""
        return f"{self.name} ({num_classes} {self.classes})" if num_classes and self.classes else self.name

    # ---------------------------------------------------------------------------------------- model side

    def metric(self, name: str, num_classes: int | None) -> Any:
        """One torchmetrics metric by name (one of ``metric_names``)."""
        raise DlcliError(f"metric '{name}' does not apply to a {self.name} task. "
                         f"Metrics for it: {', '.join(self.metric_names) or 'none'}")

    def metric_stages(self, has_anomalies: bool) -> tuple[str, ...]:
        """The stages whose metrics are computed (all, unless a split cannot score them)."""
        return ("val", "test")

    def confusion(self, num_classes: int | None) -> Any:
        """A confusion-matrix metric for the test split, or None."""
        return None

    def output(self, out: torch.Tensor) -> torch.Tensor:
        """The model's raw output in this task's shape (e.g. (B, 1) -> (B,))."""
        return out

    def loss(self, loss_fn: Any, out: torch.Tensor, x: torch.Tensor, y: torch.Tensor,
             y_mean: torch.Tensor, y_std: torch.Tensor) -> torch.Tensor:
        return loss_fn(out, y)

    def training_loss(self, module: Any, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """One training batch's loss: augmented (when the run augments), through the model, against y."""
        if module.augment is not None:
            x, y = module.augment(x, y)
        return module.compute_loss(module(x), x, y)

    def eval_loss(self, module: Any, out: torch.Tensor, x: torch.Tensor, y: torch.Tensor,
                  batch_idx: int) -> torch.Tensor:
        """One validation or test batch's loss, given the model's output ``out``."""
        return module.compute_loss(out, x, y)

    def predictions(self, out: torch.Tensor, x: torch.Tensor, y_mean: torch.Tensor,
                    y_std: torch.Tensor) -> torch.Tensor:
        """Outputs in the targets' terms: probabilities, values in the original units, embeddings."""
        return out

    def update_metrics(self, metrics: Any, confusion: Any, out: torch.Tensor, x: torch.Tensor, y: torch.Tensor,
                       y_mean: torch.Tensor, y_std: torch.Tensor) -> None:
        """Accumulate one evaluation batch into ``metrics`` (and the test ``confusion``, when given)."""
        preds = self.predictions(out, x, y_mean, y_std)
        target = self.metric_target(y)
        metrics.update(preds, target)
        if confusion is not None:
            confusion.update(preds, target)

    def metric_target(self, y: torch.Tensor) -> torch.Tensor:
        return y

    # ----------------------------------------------------------------------------------- eval and predict

    def eval_targets(self, y: np.ndarray, class_names: list[str] | None, pre: dict[str, Any],
                     name: str) -> np.ndarray:
        """Targets of new data in a trained run's terms (its class ids, label columns or values)."""
        raise DlcliError(f"cannot evaluate a {self.name} run on other data")

    def tabulate(self, ids: list[Any], out: np.ndarray, classes: list[str] | None,
                 threshold: float = THRESHOLD) -> tuple[list[str], list[dict[str, Any]]]:
        """Predictions (outputs of :meth:`predictions`) as rows: id, prediction, a probability per class."""
        raise DlcliError(f"a {self.name} run's model gives {self.gives}, not a class or a value")


# ---------------------------------------------------------------------------------------------- helpers


def label_key(label: Any) -> str:
    """A label as text, with 3, 3.0 and "3" alike (a CSV's numbers are read as floats)."""
    text = str(label.item() if hasattr(label, "item") else label).strip()
    try:
        value = float(text)
    except ValueError:
        return text
    return str(int(value)) if value.is_integer() else text


def class_ids(table: Table, data_name: str) -> tuple[np.ndarray, list[str]]:
    """Labels of any dtype -> class ids 0..K-1 (sorted labels) and the classes' names."""
    classes, y = np.unique(table.y, return_inverse=True)
    if table.class_names is not None and len(table.class_names) == len(classes):
        names = list(table.class_names)
    elif classes.dtype.kind in "iuf":  # numbers (a CSV's are read as floats): 0 and 1, as written, not 0.0
        names = [label_key(c) for c in classes]
    else:
        names = [str(c.item() if hasattr(c, "item") else c) for c in classes]
    if len(classes) > len(table.y) // 2:
        raise DataError(f"data '{data_name}' has {len(classes)} distinct labels in {len(table.y)} rows: "
                        "that looks like a real-valued target. Use task=regression loss=mse")
    return y.reshape(-1), names


def eval_class_ids(y: np.ndarray, class_names: list[str] | None, classes: list[str], name: str) -> np.ndarray:
    """New data's labels -> the run's class ids, matched by name; a DataError lists labels it never saw."""
    values, inverse = np.unique(y, return_inverse=True)
    names = class_names if class_names is not None and len(class_names) == len(values) else list(values)
    index = {label_key(c): i for i, c in enumerate(classes)}
    unknown = [str(n) for n in names if label_key(n) not in index]
    if unknown:
        raise DataError(f"{name} has labels the run was not trained on: {', '.join(unknown[:10])}. "
                        f"The run's classes: {', '.join(map(str, classes))}")
    return np.array([index[label_key(n)] for n in names], dtype=np.int64)[inverse.reshape(-1)]


# classification metric names -> torchmetrics class suffix and average (Multiclass/Multilabel; Binary has none)
_CLASSIFICATION = {"acc": ("Accuracy", "micro"), "precision": ("Precision", "macro"), "recall": ("Recall", "macro"),
                   "f1": ("F1Score", "macro"), "f1_micro": ("F1Score", "micro"), "auroc": ("AUROC", None),
                   "average_precision": ("AveragePrecision", None)}


def classification_metric(family: str, name: str, **kw: Any) -> Any:
    """torchmetrics' ``{family}{Accuracy, Precision, ...}`` for a classification metric name, or None.

    ``family`` is Multiclass, Multilabel or Binary; precision, recall and f1 are macro averages, acc and
    f1_micro micro averages (a binary metric has no average to choose).
    """
    from torchmetrics import classification

    if name not in _CLASSIFICATION:
        return None
    suffix, average = _CLASSIFICATION[name]
    if family != "Binary" and average:
        kw["average"] = average
    return getattr(classification, family + suffix)(**kw)


def probability_rows(ids: list[Any], labels: list[str], probs: np.ndarray,
                     classes: list[str]) -> tuple[list[str], list[dict[str, Any]]]:
    names = [f"prob_{c}" for c in classes]
    rows = [{"id": i, "prediction": label, **dict(zip(names, map(float, p), strict=True))}
            for i, label, p in zip(ids, labels, probs, strict=True)]
    return ["id", "prediction", *names], rows
