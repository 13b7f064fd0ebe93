"""Datasets that need no download: scikit-learn's bundled ones and synthetic generators."""

from __future__ import annotations

from dlcli.data.table import Table
from dlcli.registry import DATASETS


def _sklearn(loader_name: str, kind: str, image_shape: tuple[int, ...] | None = None) -> Table:
    import numpy as np
    from sklearn import datasets

    bunch = getattr(datasets, loader_name)()
    x = bunch.data.astype(np.float32)
    if image_shape is not None:
        x = x.reshape(len(x), *image_shape)  # (N, H*W) -> (N, C, H, W)
    names = [str(n) for n in bunch.target_names] if kind == "classification" else None
    return Table(x, bunch.target, kind, names, [str(f) for f in bunch.feature_names])


@DATASETS.register(classes=10)  # known before reading: validation checks top-k against it
def digits(seed: int):
    """Handwritten digits: 1,797 grayscale 8x8 images, 10 classes (scikit-learn)."""
    return _sklearn("load_digits", "classification", image_shape=(1, 8, 8))


@DATASETS.register(classes=3)
def iris(seed: int):
    """Iris flowers: 150 samples, 4 features, 3 classes (scikit-learn)."""
    return _sklearn("load_iris", "classification")


@DATASETS.register(classes=3)
def wine(seed: int):
    """Wine cultivars: 178 samples, 13 features, 3 classes (scikit-learn)."""
    return _sklearn("load_wine", "classification")


@DATASETS.register(classes=2)
def breast_cancer(seed: int):
    """Breast cancer diagnosis: 569 samples, 30 features, binary (scikit-learn)."""
    return _sklearn("load_breast_cancer", "classification")


@DATASETS.register()
def diabetes(seed: int):
    """Diabetes progression: 442 samples, 10 features, real-valued target (scikit-learn)."""
    return _sklearn("load_diabetes", "regression")


@DATASETS.register(classes=2)
def moons(seed: int, n_samples: int = 1000, noise: float = 0.2):
    """Two interleaving half circles: synthetic, 2 features, binary."""
    import numpy as np
    from sklearn.datasets import make_moons

    x, y = make_moons(n_samples=n_samples, noise=noise, random_state=seed)
    return Table(x.astype(np.float32), y, "classification", ["upper", "lower"], ["x1", "x2"])


@DATASETS.register()
def regression(seed: int, n_samples: int = 1000, n_features: int = 10, n_informative: int = 5,
               noise: float = 10.0):
    """Random linear regression problem: synthetic, real-valued target."""
    import numpy as np
    from sklearn.datasets import make_regression

    x, y = make_regression(n_samples=n_samples, n_features=n_features, n_informative=n_informative,
                           noise=noise, random_state=seed)
    return Table(x.astype(np.float32), y.astype(np.float32), "regression")


@DATASETS.register()
def multilabel(seed: int, n_samples: int = 1000, n_features: int = 20, n_labels: int = 5,
               labels_per_sample: int = 2):
    """Random multilabel problem: synthetic, each sample has several of n_labels labels (0/1 matrix)."""
    import numpy as np
    from sklearn.datasets import make_multilabel_classification

    x, y = make_multilabel_classification(n_samples=n_samples, n_features=n_features, n_classes=n_labels,
                                          n_labels=labels_per_sample, allow_unlabeled=True, random_state=seed)
    return Table(x.astype(np.float32), y.astype(np.int64), "multilabel", [f"label_{i}" for i in range(n_labels)])
