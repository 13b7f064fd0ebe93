"""Seeded train/test splits of row indices, the same rows as scikit-learn's ``train_test_split`` draws.

The algorithm of sklearn.model_selection's ShuffleSplit and StratifiedShuffleSplit (and of its
``_approximate_mode``), step for step with the same random draws, in numpy alone: importing scikit-learn is
~0.6 s of a short run's start, and a run needs nothing else from it. A run split here holds the same rows as a
run split by scikit-learn with the same seed; tests/test_holdout.py checks that over many sizes, fractions,
seeds and class balances, and that the refusals say the same.
"""

from __future__ import annotations

from math import ceil, floor

import numpy as np


class SplitRefused(ValueError):
    """A split that cannot be made. Its text is scikit-learn's; ``reason`` and the numbers (``facts``) let a
    caller say it in its own terms: ``"one_member"`` (facts: ``classes``), ``"train_below_classes"`` and
    ``"test_below_classes"`` (facts: ``rows``, ``classes``), or ``"sizes"`` (the fractions themselves)."""

    def __init__(self, text: str, reason: str, **facts) -> None:
        super().__init__(text)
        self.reason, self.facts = reason, facts


def train_test_split(rows: np.ndarray, *, test_size: float | None = None, train_size: float | None = None,
                     random_state: int, stratify: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(train rows, test rows) drawn from ``rows`` (1-D), shuffled; fractions in (0, 1), as in scikit-learn.

    ``stratify`` (labels per row; 2-D for multi-label: each distinct row of labels is a class) keeps each
    class's share in both parts. Raises :class:`SplitRefused` (a ValueError) with scikit-learn's text when the
    split cannot be made.
    """
    rows = np.asarray(rows)
    n_train, n_test = _sizes(len(rows), test_size, train_size)
    rng = np.random.RandomState(random_state)
    if stratify is None:
        order = rng.permutation(len(rows))
        return rows[order[n_test:n_test + n_train]], rows[order[:n_test]]
    train, test = _stratified(np.asarray(stratify), n_train, n_test, rng)
    return rows[train], rows[test]


def _sizes(n: int, test_size: float | None, train_size: float | None) -> tuple[int, int]:
    """(n_train, n_test) for fractions of ``n`` rows (sklearn's _validate_shuffle_split, fractions only)."""
    if test_size is None and train_size is None:
        test_size = 0.25
    for name, size in (("test_size", test_size), ("train_size", train_size)):
        if size is not None and not 0 < size < 1:
            raise SplitRefused(f"{name}={size} should be either positive and smaller than the number of samples "
                               f"{n} or a float in the (0, 1) range", "sizes")
    if test_size is not None and train_size is not None and train_size + test_size > 1:
        raise SplitRefused(f"The sum of test_size and train_size = {train_size + test_size}, should be in the (0, 1) "
                           "range. Reduce test_size and/or train_size.", "sizes")
    n_test = ceil(test_size * n) if test_size is not None else None
    n_train = floor(train_size * n) if train_size is not None else None
    if n_train is None:
        n_train = n - n_test
    elif n_test is None:
        n_test = n - n_train
    if n_train + n_test > n:
        raise SplitRefused(f"The sum of train_size and test_size = {n_train + n_test}, should be smaller than the "
                           f"number of samples {n}. Reduce test_size and/or train_size.", "sizes")
    if n_train == 0:
        raise SplitRefused(f"With n_samples={n}, test_size={test_size} and train_size={train_size}, the resulting "
                           "train set will be empty. Adjust any of the aforementioned parameters.", "sizes")
    return int(n_train), int(n_test)


def _stratified(y: np.ndarray, n_train: int, n_test: int, rng: np.random.RandomState) -> tuple[np.ndarray, np.ndarray]:
    """StratifiedShuffleSplit's first split: positions of the train and test rows."""
    if y.ndim == 2:  # multi-label: each distinct row of labels is one class
        y = np.array([" ".join(row.astype("str")) for row in y])
    classes, y_indices, class_counts = np.unique(y, return_inverse=True, return_counts=True)
    if np.min(class_counts) < 2:
        few = classes[class_counts < 2].tolist()
        raise SplitRefused("The least populated classes in y have only 1 member, which is too few. The minimum "
                           "number of groups for any class cannot be less than 2. Classes with too few members "
                           f"are: {few}", "one_member", classes=few)
    if n_train < len(classes):
        raise SplitRefused(f"The train_size = {n_train} should be greater or equal to the number of classes = "
                           f"{len(classes)}", "train_below_classes", rows=n_train, classes=len(classes))
    if n_test < len(classes):
        raise SplitRefused(f"The test_size = {n_test} should be greater or equal to the number of classes = "
                           f"{len(classes)}", "test_below_classes", rows=n_test, classes=len(classes))
    class_indices = np.split(np.argsort(y_indices, kind="stable"), np.cumsum(class_counts)[:-1])
    n_i = _approximate_mode(class_counts, n_train, rng)
    t_i = _approximate_mode(class_counts - n_i, n_test, rng)
    train: list = []
    test: list = []
    for i in range(len(classes)):
        permuted = class_indices[i].take(rng.permutation(class_counts[i]), mode="clip")
        train.extend(permuted[:n_i[i]])
        test.extend(permuted[n_i[i]:n_i[i] + t_i[i]])
    return rng.permutation(train), rng.permutation(test)


def _approximate_mode(class_counts: np.ndarray, n_draws: int, rng: np.random.RandomState) -> np.ndarray:
    """Rows to draw from each class so that they add up to ``n_draws`` in the classes' shares (the mode of the
    multivariate hypergeometric, approximately); ties in the remainders are broken with ``rng``."""
    continuous = class_counts / class_counts.sum() * n_draws
    floored = np.floor(continuous)
    need_to_add = int(n_draws - floored.sum())
    if need_to_add > 0:
        remainder = continuous - floored
        for value in np.sort(np.unique(remainder))[::-1]:
            (inds,) = np.where(remainder == value)
            add_now = min(len(inds), need_to_add)
            inds = rng.choice(inds, size=add_now, replace=False)
            floored[inds] += 1
            need_to_add -= add_now
            if need_to_add == 0:
                break
    return floored.astype(int)
