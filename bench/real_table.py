"""A real table as it comes: dlcli against scikit-learn's LogisticRegression on the Palmer penguins CSV.

    pip install ".[bench]"          # palmerpenguins: the real penguins.csv ships inside its wheel
    python bench/real_table.py [--seeds 0 1 2 3 4] [--output bench/results/real_table.json]

The file (344 penguins, 8 columns) has `NA` cells in five columns, string columns (species, island, sex)
next to numeric ones, and, for target `sex`, 11 rows whose target is `NA`. dlcli trains on it with
`dlcli train data=csv data.path=penguins.csv data.target=T` and nothing else (the default MLP, the
default 70/15/15 split, missing values imputed, string columns one-hot, rows with a missing target
dropped). The baseline is LogisticRegression on the same train split (the same rows, the same seed):
numeric columns median-imputed and standardised, categorical ones one-hot with 'missing' as a category
(fitted on the train split, as dlcli does). Both are scored on the same test split. Targets: `species`
(3 classes, easy) and `sex` (2 classes, from body measurements, species and island).
The file is read straight from the installed package's folder: importing palmerpenguins needs pandas.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results" / "real_table.json"
TARGETS = ("species", "sex")


def penguins_csv() -> Path:
    spec = importlib.util.find_spec("palmerpenguins")  # finds the package without running its pandas import
    if spec is None or not spec.submodule_search_locations:
        sys.exit("palmerpenguins is not installed: pip install '.[bench]' (or pip install palmerpenguins)")
    path = Path(next(iter(spec.submodule_search_locations))) / "data" / "penguins.csv"
    if not path.is_file():
        sys.exit(f"{path} not found in the palmerpenguins package")
    return path


def sklearn_accuracy(path: Path, target: str, seed: int) -> tuple[float, int, int]:
    """LogisticRegression on the same split dlcli makes; (test accuracy, train rows, test rows)."""
    import numpy as np
    from sklearn.compose import make_column_transformer
    from sklearn.impute import SimpleImputer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    from dlcli.data.files import csv
    from dlcli.data.prepare import split_indices

    table = csv(seed=seed, path=str(path), target=target)  # the rows and column types dlcli reads
    _, y = np.unique(table.y, return_inverse=True)
    idx = split_indices(y, 0.15, 0.15, seed, stratify=True)  # dlcli's default fractions, stratified
    kinds = [table.columns["types"][n] for n in table.feature_names]
    num = [j for j, k in enumerate(kinds) if k == "numeric"]
    cat = [j for j, k in enumerate(kinds) if k == "categorical"]
    x = np.array(table.x, dtype=object)
    for j in cat:
        x[:, j] = ["missing" if v is None else v for v in x[:, j]]
    model = make_pipeline(make_column_transformer(
        (make_pipeline(SimpleImputer(strategy="median"), StandardScaler()), num),
        (OneHotEncoder(handle_unknown="ignore"), cat)), LogisticRegression(max_iter=2000))
    model.fit(x[idx["train"]], y[idx["train"]])
    return float((model.predict(x[idx["test"]]) == y[idx["test"]]).mean()), len(idx["train"]), len(idx["test"])


def dlcli_run(path: Path, target: str, seed: int, out: Path) -> dict:
    from dlcli.config.compose import compose
    from dlcli.training.train import train

    cfg = compose(["data=csv", f"data.path={path}", f"data.target={target}", f"seed={seed}",
                   f"output_dir={out}", "threads=1", "trainer.enable_progress_bar=false"]).config
    start = time.perf_counter()
    result = train(cfg)
    pre = json.loads((result.run_dir / "preprocessing.json").read_text())
    return {"test_acc": result.metrics["test/acc"], "seconds": time.perf_counter() - start,
            "test_rows": pre["split_sizes"]["test"], "notes": pre.get("notes", [])}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    parser.add_argument("--output", type=Path, default=RESULTS)
    args = parser.parse_args()
    import torch

    torch.set_num_threads(1)
    path = penguins_csv()
    results: dict = {"data": f"palmerpenguins {path.name} (344 rows, 8 columns)", "seeds": args.seeds,
                     "command": "dlcli train data=csv data.path=penguins.csv data.target=T (+ seed, threads=1)",
                     "baseline": "sklearn LogisticRegression(max_iter=2000) on median-imputed, standardised "
                                 "numbers + one-hot categories ('missing' a category), same train/test split",
                     "python": platform.python_version(), "torch": torch.__version__, "targets": {}}
    with tempfile.TemporaryDirectory() as tmp:
        for target in TARGETS:
            rows = []
            for seed in args.seeds:
                ours = dlcli_run(path, target, seed, Path(tmp))
                theirs, n_train, n_test = sklearn_accuracy(path, target, seed)
                assert n_test == ours["test_rows"], "the two must score the same test rows"
                rows.append({"seed": seed, "dlcli": ours["test_acc"], "logreg": theirs, "train_rows": n_train,
                             "test_rows": n_test, "dlcli_seconds": round(ours["seconds"], 2)})
                print(f"{target:8s} seed {seed}: dlcli {ours['test_acc']:.4f}  logreg {theirs:.4f}  "
                      f"({n_test} test rows)", flush=True)
            notes = ours["notes"]
            mean = {k: statistics.mean(r[k] for r in rows) for k in ("dlcli", "logreg")}
            results["targets"][target] = {"runs": rows, "mean": mean, "notes_last_run": notes}
            print(f"{target:8s} mean:   dlcli {mean['dlcli']:.4f}  logreg {mean['logreg']:.4f}")
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(results, indent=2) + "\n")
    print(f"written: {args.output}")


if __name__ == "__main__":
    main()
