"""What a dataset loader returns: inputs, targets and what is known about them."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    import numpy as np


@dataclass
class Table:
    """A whole dataset in memory, before splitting."""

    x: np.ndarray  # (N, *sample_shape), float; or (N,) strings for text, with `text` set
    y: np.ndarray  # (N,) class labels of any dtype, (N, K) 0/1 labels, or (N,) / (N, T) real-valued targets
    kind: Literal["classification", "multilabel", "regression"] | None = None  # None: infer from y
    class_names: list[str] | None = None  # names of the sorted unique labels, when known
    feature_names: list[str] | None = None
    ordered: bool = False  # rows follow time (forecasting windows): split chronologically, never shuffled
    text: dict | None = None  # x holds texts: how to tokenize them (level, max_length, min_freq, max_vocab, lowercase)
