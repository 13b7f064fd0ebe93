"""dlcli's seeded splits draw the same rows as scikit-learn's train_test_split, without importing scikit-learn.

A failure here after a scikit-learn upgrade means that scikit-learn changed its algorithm or its data files:
dlcli keeps drawing the rows it always drew (runs stay reproducible); decide whether to follow, and say so.
"""

import subprocess
import sys

import numpy as np
import pytest
from sklearn.model_selection import train_test_split as sklearn_split

from dlcli.data import builtin
from dlcli.data.holdout import train_test_split


def _cases():
    rng = np.random.default_rng(0)
    for case in range(120):
        n = int(rng.integers(20, 400))
        kind = case % 4
        if kind == 0:  # no stratification
            y = None
        elif kind == 1:  # balanced classes
            y = np.arange(n) % int(rng.integers(2, 6))
        elif kind == 2:  # unbalanced classes: remainders tie and are broken by the generator
            classes = int(rng.integers(2, 8))
            y = rng.choice(classes, size=n, p=rng.dirichlet(np.ones(classes) * 3))
            y[:2 * classes] = np.repeat(np.arange(classes), 2)  # every class at least twice
        else:  # multi-label rows: each distinct row of labels is a class
            y = (rng.random((n, 3)) < 0.5).astype(np.int64)
            y[:16] = np.array([[a, b, c] for a in (0, 1) for b in (0, 1) for c in (0, 1)] * 2)
        test = float(rng.choice([0.1, 0.15, 0.2, 0.25, 1 / 3]))
        train = float(rng.choice([0.3, 0.5, 0.8])) if case % 7 == 0 else None
        yield n, y, test if train is None or train + test <= 1 else None, train, int(rng.integers(0, 10_000))


@pytest.mark.parametrize("n,y,test_size,train_size,seed", list(_cases()))
def test_the_same_rows_as_scikit_learn(n, y, test_size, train_size, seed):
    rows = np.arange(100, 100 + n)  # not 0..n-1: the rows themselves are indexed, not their positions
    try:
        expected = sklearn_split(rows, test_size=test_size, train_size=train_size, random_state=seed, stratify=y)
    except ValueError as e:  # e.g. fewer test rows than classes: refused alike
        with pytest.raises(ValueError) as ours:
            train_test_split(rows, test_size=test_size, train_size=train_size, random_state=seed, stratify=y)
        assert str(ours.value).split()[:3] == str(e).split()[:3]
        return
    train, test = train_test_split(rows, test_size=test_size, train_size=train_size, random_state=seed,
                                   stratify=y)
    np.testing.assert_array_equal(train, expected[0])  # the same rows in the same order
    np.testing.assert_array_equal(test, expected[1])


@pytest.mark.parametrize("kwargs,needle", [
    ({"test_size": 0.2, "stratify": np.array([0] * 9 + [1])}, "only 1 member"),
    ({"test_size": 0.1, "stratify": np.arange(20) % 4}, "test_size = 2 should be greater or equal"),
    ({"test_size": 0.6, "train_size": 0.6}, "The sum of test_size and train_size"),
])
def test_a_split_that_cannot_be_made_is_refused_as_scikit_learn_refuses_it(kwargs, needle):
    rows = np.arange(len(kwargs["stratify"]) if "stratify" in kwargs else 10)
    with pytest.raises(ValueError, match=needle):
        train_test_split(rows, random_state=0, **kwargs)
    with pytest.raises(ValueError, match=needle):
        sklearn_split(rows, random_state=0, **kwargs)


@pytest.mark.parametrize("loader", ["load_iris", "load_wine", "load_breast_cancer", "load_diabetes", "load_digits"])
def test_bundled_datasets_are_read_exactly_as_scikit_learns_loaders_return_them(loader):
    from sklearn import datasets

    data, target, target_names, feature_names = builtin._bundled(loader)
    bunch = getattr(datasets, loader)()
    np.testing.assert_array_equal(data, bunch.data)  # bit for bit, diabetes' scaling included
    assert data.dtype == bunch.data.dtype
    np.testing.assert_array_equal(target, bunch.target)
    assert target.dtype == bunch.target.dtype
    assert [str(t) for t in target_names] == [str(t) for t in getattr(bunch, "target_names", [])]
    assert feature_names == [str(f) for f in bunch.feature_names]


@pytest.mark.slow  # a fresh interpreter, to see what it imports
def test_a_run_on_a_bundled_dataset_reads_and_splits_it_without_importing_scikit_learn():
    code = ("import sys; from dlcli.config.compose import compose; from dlcli.training.build import load_data; "
            "p = load_data(compose(['data=digits'], []).config); "
            "print(sorted((k, len(v[0])) for k, v in p.splits.items())); "
            "print(any(m == 'sklearn' or m.startswith('sklearn.') for m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split("\n")
    assert out[0] == "[('test', 270), ('train', 1257), ('val', 270)]"
    assert out[1] == "False"
