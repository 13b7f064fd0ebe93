"""Loading, task resolution, splitting and scaling."""

from __future__ import annotations

import numpy as np
import pytest

from dlcli.data.builtin import digits
from dlcli.data.files import csv, npz
from dlcli.data.prepare import apply_scaler, fit_scaler, infer_kind, prepare, split_indices
from dlcli.data.table import Table
from dlcli.errors import DataError, DlcliError


def tasks_of(loss: str) -> tuple[str, ...]:
    """The tasks a registered loss declares (as train() passes them)."""
    from dlcli.registry import LOSSES, load_components

    load_components()
    return LOSSES.get(loss).meta["tasks"]


DATA = {"name": "t", "batch_size": 8, "val_fraction": 0.2, "test_fraction": 0.2, "stratify": True,
        "scaling": "standard", "target_scaling": "standard", "num_workers": 0}


def test_split_is_seeded_disjoint_and_stratified():
    y = np.array([0] * 60 + [1] * 40)
    a = split_indices(y, 0.2, 0.2, seed=1, stratify=True)
    b = split_indices(y, 0.2, 0.2, seed=1, stratify=True)
    assert {k: v.tolist() for k, v in a.items()} == {k: v.tolist() for k, v in b.items()}
    assert sorted(np.concatenate(list(a.values())).tolist()) == list(range(100))
    assert {k: len(v) for k, v in a.items()} == {"train": 60, "val": 20, "test": 20}
    assert (y[a["test"]] == 1).sum() == 8  # 40% of the test split, as in the whole


def test_split_too_small_for_stratification_says_how_to_fix():
    with pytest.raises(DataError, match="data.stratify=false") as refused:
        split_indices(np.array([0, 0, 0, 1, 1, 1, 2]), 0.2, 0.2, seed=0, stratify=True)
    assert "class 2 has a single row among the 7 rows" in str(refused.value)


@pytest.mark.parametrize(("val", "test", "expected"), [
    (0.01, 0.15, "the validation split (data.val_fraction=0.01 of 150 rows) would hold 2 rows, fewer than the 3 "
                 "classes, and a stratified split puts every class in each split. Use a larger data.val_fraction"),
    (0.15, 0.01, "the test split (data.test_fraction=0.01 of 150 rows) would hold 2 rows, fewer than the 3 "
                 "classes, and a stratified split puts every class in each split. Use a larger data.test_fraction"),
])
def test_a_split_too_small_for_its_classes_is_named_by_its_own_setting(val, test, expected):
    """The refusal names the split and the setting that sized it, in dlcli's terms: not scikit-learn's
    `test_size`, which is what it calls whichever part is carved off."""
    with pytest.raises(DataError) as refused:
        split_indices(np.repeat([0, 1, 2], 50), val, test, seed=0, stratify=True)
    message = str(refused.value)
    assert message == f"cannot split the data: {expected}, or set data.stratify=false"
    assert "test_size" not in message and "train_size" not in message
    # the same fractions split without stratification, holding exactly the rows asked for
    sizes = {k: len(v) for k, v in split_indices(np.repeat([0, 1, 2], 50), val, test, seed=0, stratify=False).items()}
    assert sizes["val"] + sizes["test"] == 2 + 23 and sizes["train"] == 125


def test_classes_left_with_one_row_after_the_test_split_are_named():
    with pytest.raises(DataError) as refused:
        split_indices(np.repeat(np.arange(10), 3), 0.3, 0.6, seed=0, stratify=True)
    assert "have a single row among the 12 rows left after taking the test split" in str(refused.value)


@pytest.mark.parametrize(("method", "lo", "hi"), [("minmax", 0.0, 1.0), ("symmetric", -1.0, 1.0)])
def test_range_scaling(method, lo, hi):
    x = np.array([[0.0, 10.0], [5.0, 20.0], [10.0, 30.0]], dtype=np.float32)
    out = apply_scaler(x, fit_scaler(x, method))
    assert out.min(axis=0).tolist() == [lo, lo] and out.max(axis=0).tolist() == [hi, hi]


def test_standard_scaling_fitted_on_train_only():
    rng = np.random.default_rng(0)
    table = Table(np.concatenate([rng.normal(5, 2, (100, 3))]).astype(np.float32), np.arange(100) % 2,
                  "classification")
    p = prepare(table, DATA, task="auto", loss_name="cross_entropy", loss_tasks=tasks_of("cross_entropy"), seed=0)
    x_train = p.splits["train"][0]
    assert np.allclose(x_train.mean(axis=0), 0, atol=1e-5) and np.allclose(x_train.std(axis=0), 1, atol=1e-4)
    assert not np.allclose(p.splits["test"][0].mean(axis=0), 0, atol=1e-5)  # test statistics were not used
    train_idx = np.sort(split_indices(table.y, 0.2, 0.2, 0, True)["train"])
    assert np.allclose(p.preprocessing["scaling"]["mean"], table.x[train_idx].mean(axis=0), atol=1e-5)


def test_constant_feature_does_not_divide_by_zero():
    x = np.ones((10, 2), dtype=np.float32)
    assert np.isfinite(apply_scaler(x, fit_scaler(x, "standard"))).all()
    assert np.isfinite(apply_scaler(x, fit_scaler(x, "minmax"))).all()


def test_digits_are_images():
    table = digits(seed=0)
    assert table.x.shape == (1797, 1, 8, 8) and len(table.class_names) == 10


def test_infer_kind():
    assert infer_kind(np.array(["a", "b"])) == "classification"
    assert infer_kind(np.array([0.0, 1.0, 2.0])) == "classification"
    assert infer_kind(np.linspace(0, 1, 50)) == "regression"


def test_binary_task_from_bce_and_class_names():
    table = Table(np.random.rand(40, 2).astype(np.float32), np.array(["no", "yes"] * 20), None)
    p = prepare(table, DATA, task="auto", loss_name="bce", loss_tasks=tasks_of("bce"), seed=0)
    assert p.task == "binary" and p.out_features == 1 and p.class_names == ["no", "yes"]


def test_bce_on_ten_classes_suggests_cross_entropy():
    with pytest.raises(DlcliError, match="has 10 classes. Use loss=cross_entropy"):
        prepare(digits(seed=0), DATA, task="auto", loss_name="bce", loss_tasks=tasks_of("bce"), seed=0)


def test_classification_loss_on_regression_data_suggests_mse():
    table = Table(np.random.rand(50, 2).astype(np.float32), np.linspace(0, 1, 50), "regression")
    with pytest.raises(DlcliError, match="Use loss=mse"):
        prepare(table, DATA, task="auto", loss_name="cross_entropy", loss_tasks=tasks_of("cross_entropy"), seed=0)


def test_regression_target_scaling_is_recorded():
    table = Table(np.random.rand(50, 2).astype(np.float32), np.linspace(100, 200, 50), "regression")
    p = prepare(table, DATA, task="auto", loss_name="mse", loss_tasks=tasks_of("mse"), seed=0)
    assert p.task == "regression" and p.out_features == 1
    assert 140 < p.preprocessing["target_scaling"]["mean"][0] < 160


def write(tmp_path, text, name="d.csv"):
    path = tmp_path / name
    path.write_text(text)
    return str(path)


def test_csv_string_labels_and_feature_selection(tmp_path):
    path = write(tmp_path, "a,b,c,label\n1,2,3,cat\n4,5,6,dog\n7,8,9,cat\n")
    table = csv(seed=0, path=path, target="label", features=["c", "a"])
    assert table.x.tolist() == [[3, 1], [6, 4], [9, 7]]
    assert table.y.tolist() == ["cat", "dog", "cat"] and table.feature_names == ["c", "a"]


def test_csv_errors_name_the_problem(tmp_path):
    with pytest.raises(DataError, match=r"CSV file not found: '.*nope.csv' \(data.path\)"):
        csv(seed=0, path=str(tmp_path / "nope.csv"), target="y")
    bad_row = write(tmp_path, "a,b,y\n1,2,3\n4,5\n")
    with pytest.raises(DataError, match="row 3 has 2 fields, the header has 3"):
        csv(seed=0, path=bad_row, target="y")
    text = write(tmp_path, "a,b,y\n1,red,3\n", "t.csv")  # a column declared numeric (else: categorical or text)
    with pytest.raises(DataError, match="row 2, column 'b': 'red' is not a number"):
        csv(seed=0, path=text, target="y", numeric=["b"])
    ok = write(tmp_path, "alpha,label\n1,x\n", "o.csv")
    with pytest.raises(DataError, match="no column 'lable' \\(data.target\\). Did you mean 'label'?"):
        csv(seed=0, path=ok, target="lable")


def test_npz_loads_and_refuses_missing_arrays(tmp_path):
    path = tmp_path / "a.npz"
    np.savez(path, inputs=np.zeros((4, 2)), y=np.arange(4))
    assert npz(seed=0, path=str(path), x_key="inputs").x.shape == (4, 2)
    with pytest.raises(DataError, match="no array 'x' \\(data.x_key\\)"):
        npz(seed=0, path=str(path))
