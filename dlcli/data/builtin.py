"""Datasets that need no download: scikit-learn's bundled ones and synthetic generators."""

from __future__ import annotations

from dlcli.data.table import Table
from dlcli.registry import DATASETS


def _sklearn(loader_name: str, kind: str, image_shape: tuple[int, ...] | None = None) -> Table:
    import numpy as np

    bundled = _bundled(loader_name)
    if bundled is None:  # a scikit-learn whose files are laid out otherwise: its own loader
        from sklearn import datasets

        bunch = getattr(datasets, loader_name)()
        bundled = bunch.data, bunch.target, list(getattr(bunch, "target_names", [])), list(bunch.feature_names)
    data, target, target_names, feature_names = bundled
    x = data.astype(np.float32)
    if image_shape is not None:
        x = x.reshape(len(x), *image_shape)  # (N, H*W) -> (N, C, H, W)
    names = [str(n) for n in target_names] if kind == "classification" else None
    return Table(x, target, kind, names, [str(f) for f in feature_names])


# The bundled datasets' files, read as scikit-learn's loaders read them (sklearn/datasets/_base.py) but without
# importing scikit-learn, whose import is ~0.6 s of a short run's start; tests/test_holdout.py checks that
# every array and name equals what its loader returns. Feature names are not in the files: they are these.
_BREAST = ["radius", "texture", "perimeter", "area", "smoothness", "compactness", "concavity", "concave points",
           "symmetry", "fractal dimension"]
_FEATURES = {
    "load_iris": ["sepal length (cm)", "sepal width (cm)", "petal length (cm)", "petal width (cm)"],
    "load_wine": ["alcohol", "malic_acid", "ash", "alcalinity_of_ash", "magnesium", "total_phenols", "flavanoids",
                  "nonflavanoid_phenols", "proanthocyanins", "color_intensity", "hue", "od280/od315_of_diluted_wines",
                  "proline"],
    "load_breast_cancer": [f"mean {f}" for f in _BREAST] + [f"{f} error" for f in _BREAST]
    + [f"worst {f}" for f in _BREAST],
    "load_diabetes": ["age", "sex", "bmi", "bp", "s1", "s2", "s3", "s4", "s5", "s6"],
    "load_digits": [f"pixel_{row}_{col}" for row in range(8) for col in range(8)],
}
_CSV = {"load_iris": "iris.csv", "load_wine": "wine_data.csv", "load_breast_cancer": "breast_cancer.csv"}


def _bundled(loader_name: str) -> tuple | None:
    """(data float64, target, target names, feature names) from scikit-learn's data files, as its
    ``loader_name`` returns them; None when the files are not where scikit-learn keeps them."""
    import gzip
    import importlib.util
    from pathlib import Path

    import numpy as np

    spec = importlib.util.find_spec("sklearn")  # finds the package without importing it
    if spec is None or not spec.submodule_search_locations:
        return None
    folder = Path(next(iter(spec.submodule_search_locations))) / "datasets" / "data"
    try:
        if loader_name in _CSV:  # a header "n_samples,n_features,class names...", then features and the class
            with open(folder / _CSV[loader_name], encoding="utf-8") as f:
                header = f.readline().strip().split(",")
                table = np.loadtxt(f, delimiter=",", ndmin=2)
            data, target, target_names = table[:, :-1], table[:, -1].astype(int), header[2:]
            if table.shape != (int(header[0]), int(header[1]) + 1):
                return None
        elif loader_name == "load_digits":
            with gzip.open(folder / "digits.csv.gz", mode="rt", encoding="utf-8") as f:
                table = np.loadtxt(f, delimiter=",")
            data, target, target_names = table[:, :-1], table[:, -1].astype(int), list(range(10))
        elif loader_name == "load_diabetes":
            with gzip.open(folder / "diabetes_data_raw.csv.gz", mode="rt", encoding="utf-8") as f:
                data = np.loadtxt(f)
            with gzip.open(folder / "diabetes_target.csv.gz", mode="rt", encoding="utf-8") as f:
                target = np.loadtxt(f)
            data, target_names = _standardise(data) / len(data) ** 0.5, []  # load_diabetes(scaled=True)
        else:
            return None
    except (OSError, ValueError):
        return None
    if data.shape[1] != len(_FEATURES[loader_name]):
        return None
    return data, target, target_names, _FEATURES[loader_name]


def _standardise(x):
    """Columns to mean 0 and standard deviation 1, in the steps of sklearn.preprocessing.scale."""
    import numpy as np

    mean, std = np.nanmean(x, axis=0), np.nanstd(x, axis=0)
    x = x - mean
    mean_1 = np.nanmean(x, axis=0)
    if not np.allclose(mean_1, 0):
        x -= mean_1
    std[std < 10 * np.finfo(std.dtype).eps] = 1.0
    x /= std
    mean_2 = np.nanmean(x, axis=0)
    if not np.allclose(mean_2, 0):
        x -= mean_2
    return x


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
