"""EDA on batches of token ids: synonym replacement, random insertion, random swap, random deletion.

Rows are (B, T) int64 ids padded with 0 at the end. Each chosen row's non-padding ids are edited as a
Python list on the CPU, then the batch is re-padded to T and moved back to its device. Every random draw
comes from torch's generator, so the run's seed governs it.
"""

from __future__ import annotations

import torch


def _pick(n: int) -> int:
    """A random index in [0, n)."""
    return int(torch.randint(n, ()).item())


class EDA:
    """Easy Data Augmentation (Wei & Zou, 2019) for word ids; ``synonyms`` maps an id to its synonyms' ids.

    A row is augmented with probability ``p``; the four ops then run in order, each with
    n = max(1, round(rate * length)) edits when its rate is above 0 (deletion drops each token with
    probability ``delete_rate`` instead). Without synonyms, replacement is skipped and insertion
    inserts a copy of a random word of the text.
    """

    def __init__(self, synonyms: dict[int, list[int]], synonym_rate: float, insert_rate: float, swap_rate: float,
                 delete_rate: float, p: float) -> None:
        self.synonyms = synonyms
        self.synonym_rate, self.insert_rate, self.swap_rate = synonym_rate, insert_rate, swap_rate
        self.delete_rate, self.p = delete_rate, p

    def __call__(self, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        chosen = (torch.rand(x.shape[0]) < self.p).tolist()
        if not any(chosen):
            return x, y
        rows = x.tolist()
        for i, row in enumerate(rows):
            ids = [t for t in row if t != 0]
            if chosen[i] and ids:
                ids = self.augment(ids)[: x.shape[1]]  # insertions may overflow: truncate to T
                rows[i] = ids + [0] * (x.shape[1] - len(ids))
        return torch.tensor(rows, dtype=x.dtype).to(x.device), y

    def augment(self, ids: list[int]) -> list[int]:
        """One text's ids (no padding) -> its augmented ids."""
        ids = self.replace(ids, _count(self.synonym_rate, len(ids)))
        ids = self.insert(ids, _count(self.insert_rate, len(ids)))
        ids = self.swap(ids, _count(self.swap_rate, len(ids)))
        return self.delete(ids, self.delete_rate)

    def replace(self, ids: list[int], n: int) -> list[int]:
        """Replace up to ``n`` random words that have synonyms by one of them."""
        candidates = [i for i, t in enumerate(ids) if t in self.synonyms]
        ids = list(ids)
        for k in torch.randperm(len(candidates))[:n].tolist():
            options = self.synonyms[ids[candidates[k]]]
            ids[candidates[k]] = options[_pick(len(options))]
        return ids

    def insert(self, ids: list[int], n: int) -> list[int]:
        """Insert a synonym of a random word of the text at a random position, ``n`` times."""
        ids = list(ids)
        for _ in range(n):
            if self.synonyms:
                candidates = [t for t in ids if t in self.synonyms]
                if not candidates:
                    break  # no word of this text has a synonym
                options = self.synonyms[candidates[_pick(len(candidates))]]
                new = options[_pick(len(options))]
            else:
                new = ids[_pick(len(ids))]
            ids.insert(_pick(len(ids) + 1), new)
        return ids

    def swap(self, ids: list[int], n: int) -> list[int]:
        """Swap the words at two random (different) positions, ``n`` times."""
        ids = list(ids)
        if len(ids) < 2:
            return ids
        for _ in range(n):
            i = _pick(len(ids))
            j = (i + 1 + _pick(len(ids) - 1)) % len(ids)  # any position but i
            ids[i], ids[j] = ids[j], ids[i]
        return ids

    def delete(self, ids: list[int], rate: float) -> list[int]:
        """Drop each word with probability ``rate``; if all would go, keep one at random."""
        if rate <= 0 or len(ids) < 2:
            return ids
        kept = [t for t, drop in zip(ids, (torch.rand(len(ids)) < rate).tolist(), strict=True) if not drop]
        return kept or [ids[_pick(len(ids))]]


def _count(rate: float, length: int) -> int:
    """How many edits an op makes on a text of ``length`` words: 0 when off, else at least 1."""
    return max(1, round(rate * length)) if rate > 0 else 0
