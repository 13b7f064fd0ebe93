"""``dlcli eval RUN --tune-threshold f1|youden|precision@R``: a binary or multilabel run's decision threshold,
picked on its validation split and saved in the run (``threshold.json``).

``dlcli predict`` (dlcli/training/predict.py ``tabulate``), everything else that reads ``LoadedRun.threshold``
(``dlcli serve``) and the preprocessing file ``dlcli export`` writes then decide with it: a class (label) is
predicted when its probability is above the threshold. A multilabel run gets one threshold per label.

Criteria: ``f1`` the threshold of the best F1; ``youden`` the best Youden's J (true positive rate minus false
positive rate, the ROC point farthest above the diagonal); ``precision@R`` the lowest threshold whose precision
reaches R (so the most recall at that precision).
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from dlcli.errors import DlcliError
from dlcli.runs import folder
from dlcli.training.reload import THRESHOLD_FILE, LoadedRun

TUNABLE = ("positive", "labels")  # Task.decision of the runs whose classes are decided by a threshold
_PRECISION = re.compile(r"precision@(\d*\.?\d+)$")


@dataclass
class ThresholdResult:
    """The tuned threshold (one, or one per label), and the validation metrics with the old and new one."""

    threshold: float | list[float]
    criterion: str
    before: dict[str, float]  # precision, recall, f1, youden at the previous threshold (averaged over labels)
    after: dict[str, float]
    previous: float | list[float]
    rows: int
    path: Path
    notes: list[str]


def parse_criterion(text: str) -> tuple[str, float | None]:
    """``f1``, ``youden`` or ``precision@R`` (0 < R <= 1) -> (criterion, R or None); else a DlcliError."""
    if text in ("f1", "youden"):
        return text, None
    match = _PRECISION.match(text)
    if match and 0 < float(match.group(1)) <= 1:
        return "precision", float(match.group(1))
    raise DlcliError(f"--tune-threshold is f1, youden or precision@R with 0 < R <= 1 (e.g. precision@0.9), "
                     f"got '{text}'")


def check_tunable(run: LoadedRun) -> None:
    """DlcliError (exit 2) unless the run decides with a threshold: binary and multilabel runs."""
    if run.decision not in TUNABLE:
        gives = "the most probable class" if run.decision == "argmax" else "no class decided by a probability"
        raise DlcliError(f"--tune-threshold applies to binary and multilabel runs; run {run.run_dir.name} is a "
                         f"{run.task} run: its predictions are {gives}, with no threshold to tune")


def tune_threshold(run: LoadedRun, criterion: str, checkpoint: str = "best", overrides: list[str] | tuple = (),
                   config_dirs: list[str | Path] | tuple = (), allow_changed_data: bool = False) -> ThresholdResult:
    """Pick the threshold on the run's validation split by ``criterion`` and save it in ``threshold.json``."""
    check_tunable(run)
    name, target = parse_criterion(criterion)
    from dlcli.data.stream import num_workers
    from dlcli.training.evaluate import eval_config, rebuilt_splits
    from dlcli.training.module import ArrayDataModule, eval_batch_size
    from dlcli.training.scores import split_predictions

    cfg, other_data, _, unchanged = eval_config(run, overrides, checkpoint, config_dirs, allow_changed_data)
    if other_data:
        raise DlcliError("--tune-threshold picks the threshold on the run's own validation split: leave out the "
                         "overrides that change data.*")
    prepared = rebuilt_splits(run, cfg, reuse=unchanged)
    if "val" not in prepared.splits:
        raise DlcliError(f"run {run.run_dir.name} has no validation split (data.val_fraction=0) to tune the "
                         "threshold on: train it with data.val_fraction > 0")
    prepared.splits = {"val": prepared.splits["val"]}
    datamodule = ArrayDataModule(prepared, cfg["data"]["batch_size"], num_workers(cfg["data"], prepared),
                                 eval_batch_size(cfg["data"], prepared))
    probs, y = split_predictions(run.module(checkpoint, cfg), datamodule, "val")
    probs, y = probs.reshape(len(probs), -1), y.reshape(len(y), -1).astype(np.int64)  # (N,) -> (N, 1): one label
    previous = run.threshold
    old = np.broadcast_to(np.asarray(previous, dtype=np.float64), (probs.shape[1],))
    labels = run.classes[1:] if run.decision == "positive" else run.classes
    chosen, notes = [], []
    for k in range(probs.shape[1]):
        t, note = pick(probs[:, k], y[:, k], name, target)
        if note:
            notes.append(f"{labels[k]}: {note}; kept {old[k]:.4f}")
            t = float(old[k])
        chosen.append(t)
    if len(notes) == probs.shape[1]:
        raise DlcliError(f"no threshold could be tuned on the {len(y)} validation rows of run "
                         f"{run.run_dir.name}: " + "; ".join(notes))
    before, after = scores(probs, y, old), scores(probs, y, np.asarray(chosen))
    threshold: float | list[float] = chosen[0] if run.decision == "positive" else chosen
    path = run.run_dir / THRESHOLD_FILE
    record: dict[str, Any] = {
        "threshold": threshold, "criterion": criterion, "split": "val", "rows": int(len(y)),
        "checkpoint": checkpoint, "tuned_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "previous": previous,
        "validation_before": before, "validation_after": after, "labels": list(labels), "notes": notes,
        "rule": "a class (label) is predicted when its probability is above the threshold",
    }
    try:
        folder.write_json(path, record)
    except OSError as e:
        raise DlcliError(f"cannot save the threshold in {path}: {e.strerror or e}. Make the run folder writable") \
            from None
    return ThresholdResult(threshold, criterion, before, after, previous, int(len(y)), path, notes)


def pick(p: np.ndarray, y: np.ndarray, criterion: str, target: float | None = None) -> tuple[float, str | None]:
    """(threshold, None), or (nan, why not) when the validation labels cannot decide one.

    Each candidate lies halfway between two neighbouring distinct probabilities, so that ``p > threshold``
    makes exactly the decisions the criterion was measured on.
    """
    positives = int(y.sum())
    if positives == 0 or positives == len(y):
        return float("nan"), f"the validation split has only {'negative' if positives == 0 else 'positive'} samples"
    order = np.argsort(-p, kind="stable")
    p_sorted, y_sorted = p[order].astype(np.float64), y[order]
    last = np.r_[np.flatnonzero(np.diff(p_sorted)), len(p) - 1]  # the last sample of each distinct probability
    tp = np.cumsum(y_sorted)[last].astype(np.float64)  # predicted positive: p >= p_sorted[last]
    fp = (last + 1) - tp
    below = np.r_[p_sorted[last][1:], 0.0]  # the next lower distinct probability (0 after the lowest)
    candidates = (p_sorted[last] + below) / 2
    negatives = len(y) - positives
    if criterion == "f1":
        value = 2 * tp / (2 * tp + fp + (positives - tp))
        return float(candidates[int(np.argmax(value))]), None
    if criterion == "youden":
        value = tp / positives - fp / negatives
        return float(candidates[int(np.argmax(value))]), None
    precision = tp / (tp + fp)
    reached = np.flatnonzero(precision >= target - 1e-12)
    if not len(reached):
        return float("nan"), f"no threshold reaches precision {target} (the highest is {precision.max():.4f})"
    return float(candidates[reached[-1]]), None  # the lowest such threshold: the most recall at that precision


def scores(probs: np.ndarray, y: np.ndarray, threshold: np.ndarray) -> dict[str, float]:
    """Precision, recall, F1 and Youden's J of ``probs > threshold`` (per label, then averaged over labels)."""
    decided = probs > np.broadcast_to(threshold, (probs.shape[1],))
    tp = (decided & (y == 1)).sum(0).astype(np.float64)
    fp = (decided & (y == 0)).sum(0).astype(np.float64)
    fn = (~decided & (y == 1)).sum(0).astype(np.float64)
    tn = (~decided & (y == 0)).sum(0).astype(np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        precision = np.where(tp + fp > 0, tp / (tp + fp), 0.0)
        recall = np.where(tp + fn > 0, tp / (tp + fn), 0.0)
        f1 = np.where(2 * tp + fp + fn > 0, 2 * tp / (2 * tp + fp + fn), 0.0)
        specificity = np.where(tn + fp > 0, tn / (tn + fp), 0.0)
    return {"precision": float(precision.mean()), "recall": float(recall.mean()), "f1": float(f1.mean()),
            "youden": float((recall + specificity - 1).mean())}
