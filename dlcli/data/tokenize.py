"""Word- or character-level vocabularies built on the training texts, and texts turned into padded ids.

Id 0 is padding and id 1 stands for tokens outside the vocabulary; the vocabulary is saved with
the run (preprocessing.json) so the same ids are used whenever the run is reloaded.
"""

from __future__ import annotations

import re
from collections import Counter
from typing import Any

import numpy as np

PAD, UNK = "<pad>", "<unk>"
_WORD = re.compile(r"\w+|[^\w\s]")  # words, and punctuation marks as tokens of their own


def tokens(text: str, level: str, lowercase: bool) -> list[str]:
    if lowercase:
        text = text.lower()
    return list(text) if level == "char" else _WORD.findall(text)


def build_vocab(texts: list[str], options: dict[str, Any]) -> list[str]:
    """The vocabulary of ``texts``: most frequent first, at least ``min_freq`` uses, at most ``max_vocab``."""
    counts = Counter(t for text in texts for t in tokens(text, options["level"], options["lowercase"]))
    kept = [t for t, c in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])) if c >= options["min_freq"]]
    if options.get("max_vocab"):
        kept = kept[: max(options["max_vocab"] - 2, 0)]
    return [PAD, UNK, *kept]


def encode(texts: list[str], vocab: list[str], options: dict[str, Any]) -> np.ndarray:
    """Texts -> (N, max_length) int64 ids, truncated or padded with 0 at the end."""
    index = {t: i for i, t in enumerate(vocab)}
    length = options["max_length"]
    out = np.zeros((len(texts), length), dtype=np.int64)
    for row, text in enumerate(texts):
        ids = [index.get(t, 1) for t in tokens(text, options["level"], options["lowercase"])][:length]
        out[row, : len(ids)] = ids
    return out
