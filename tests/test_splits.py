"""Official splits (data.test_path / val_path, MNIST's t10k files), the split and data fingerprint every run
records, and the refusal of changed data by `dlcli eval`, `dlcli resume` and fine-tuning."""

from __future__ import annotations

import json
import shutil
import warnings
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from dlcli.cli import app
from dlcli.config.compose import compose
from dlcli.config.validate import ConfigError, validate
from dlcli.data import fingerprint as fp
from dlcli.data.prepare import split_indices
from dlcli.data.splits import (
    check_same_split,
    decode_membership,
    encode_membership,
    header_line,
    legacy_config,
    load_table,
)
from dlcli.errors import DataError
from dlcli.training.build import load_data
from dlcli.training.evaluate import run_test_split
from dlcli.training.reload import load_run
from dlcli.training.train import train

FAST = ["trainer.enable_progress_bar=false", "trainer.accelerator=cpu", "threads=1"]  # as in conftest.py
runner = CliRunner()


def invoke(*args):
    return runner.invoke(app, [str(a) for a in args])


def write_npz(path: Path, n: int, seed: int, features: int = 4) -> tuple[np.ndarray, np.ndarray]:
    """Three well separated classes (balanced, in random order)."""
    rng = np.random.default_rng(seed)
    y = rng.permutation(np.arange(n) % 3)
    x = (rng.normal(0, 1, (n, features)) + 3 * y[:, None]).astype(np.float32)
    np.savez(path, x=x, y=y)
    return x, y


def summary(run_dir: Path) -> dict:
    return json.loads((run_dir / "summary.json").read_text())


def preprocessing(run_dir: Path) -> dict:
    return json.loads((run_dir / "preprocessing.json").read_text())


@pytest.fixture(scope="module")
def npz_run(tmp_path_factory):
    """A run trained on train.npz (240 rows) and tested on test.npz (60 rows)."""
    d = tmp_path_factory.mktemp("npz")
    write_npz(d / "train.npz", 240, 1)
    write_npz(d / "test.npz", 60, 2)
    result = train(compose([f"output_dir={d / 'out'}", *FAST, "trainer.max_epochs=8", "data=npz",
                            f"data.path={d / 'train.npz'}", f"data.test_path={d / 'test.npz'}",
                            "model.hidden=[16]", "optimizer.lr=0.01"]).config)
    return d, result.run_dir


# ------------------------------------------------------------------------------------------ test files

def test_test_path_is_the_test_split_and_its_metrics_are_in_the_summary(npz_run):
    d, run_dir = npz_run
    pre, info = preprocessing(run_dir), summary(run_dir)
    assert pre["split_sizes"] == info["split_sizes"] == {"train": 204, "val": 36, "test": 60}  # val: 15% of 240
    rows = pre["split_indices"]["indices"]
    assert rows["test"] == list(range(240, 300))  # exactly the second file's rows, appended after the first's
    assert sorted(rows["train"] + rows["val"]) == list(range(240))
    assert info["split_sources"] == pre["split_sources"] == {
        "train": f"{d / 'train.npz'}, less the val rows", "val": "15% of the training rows at random, seed 42",
        "test": str(d / "test.npz")}
    assert set(pre["data_fingerprint"]) == {str(d / "train.npz"), str(d / "test.npz")}
    assert pre["data_fingerprint"][str(d / "test.npz")]["key"] == "data.test_path"
    metrics = info["metrics"]
    assert metrics["test/acc"] >= 0.85  # well separated classes: 0.95-1.0 over seeds 1-5

    # by hand: the reloaded model on every row of the test file
    data = np.load(d / "test.npz")
    probs = load_run(str(run_dir)).predict(data["x"])
    assert abs(float((probs.argmax(1) == data["y"]).mean()) - metrics["test/acc"]) < 1e-6

    # `dlcli eval RUN data.path=TEST` scores that file alone (the run's data.test_path is not added), and
    # `dlcli eval RUN` rebuilds the same test split: the numbers of summary.json either way
    for extra in ([f"data.path={d / 'test.npz'}"], []):
        result = invoke("eval", run_dir, *extra)
        assert result.exit_code == 0, result.output
        record = json.loads(Path(result.output.split("saved: ")[1].strip().replace("\n", "")).read_text())
        assert record["rows"] == 60
        assert abs(record["metrics"]["test/acc"] - metrics["test/acc"]) < 1e-6
        assert abs(record["metrics"]["test/loss"] - metrics["test/loss"]) < 1e-5


def test_header_says_where_each_split_came_from(npz_run):
    d, run_dir = npz_run
    assert header_line(preprocessing(run_dir)) == (
        f"splits: train 204 ({d / 'train.npz'}, less the val rows), val 36 (15% of the training rows at random, "
        f"seed 42), test 60 ({d / 'test.npz'})")
    from rich.console import Console

    from dlcli.data.prepare import Prepared
    from dlcli.training.train import _print_header

    pre = preprocessing(run_dir)
    console = Console(record=True, width=300)
    cfg = validate(compose(["data=npz", "data.path=x.npz"]).config)
    _print_header(console, cfg, Prepared("multiclass", {}, (4,), 3, ["0", "1", "2"], pre), 100, run_dir, None, None,
                  (1, "threads"))
    assert header_line(pre) in console.export_text()


def write_idx(folder: Path, n_train: int, n_test: int) -> None:
    """MNIST's four IDX files; image i is filled with the value i, its label is i % 10."""
    folder.mkdir(parents=True, exist_ok=True)
    n = n_train + n_test
    images = np.broadcast_to(np.arange(n, dtype=np.uint8)[:, None, None], (n, 28, 28))
    labels = (np.arange(n) % 10).astype(np.uint8)

    def idx_bytes(array):
        magic = {3: 2051, 1: 2049}[array.ndim]
        return b"".join(int(v).to_bytes(4, "big") for v in (magic, *array.shape)) + array.tobytes()

    for name, array in (("train-images-idx3-ubyte", images[:n_train]), ("train-labels-idx1-ubyte", labels[:n_train]),
                        ("t10k-images-idx3-ubyte", images[n_train:]), ("t10k-labels-idx1-ubyte", labels[n_train:])):
        (folder / name).write_bytes(idx_bytes(np.ascontiguousarray(array)))


def test_mnist_uses_the_t10k_files_as_the_test_split(tmp_path):
    write_idx(tmp_path / "mnist", 80, 30)
    c = compose([f"output_dir={tmp_path / 'out'}", *FAST, "data=mnist", f"data.root={tmp_path / 'mnist'}",
                 "trainer.max_epochs=1", "model.hidden=[8]"])
    cfg = validate(c.config)
    assert cfg["data"]["split"] == "official"
    table = load_table(cfg["data"], cfg["seed"])
    test_rows = np.flatnonzero(table.split == "test")
    assert table.x[test_rows, 0, 0, 0].tolist() == list(range(80, 110))  # the t10k images, every one of them
    info = summary(train(c.config).run_dir)
    assert info["split_sizes"] == {"train": 68, "val": 12, "test": 30}  # val: 15% of the 80 training images
    assert info["split_sources"]["test"] == str(tmp_path / "mnist" / "t10k-images-idx3-ubyte")
    assert "test/acc" in info["metrics"]

    # data.split=random: today's single pool of 110 images, split at random
    pooled = load_data(validate(compose([*c.overrides, "data.split=random"]).config))
    assert {k: len(v[0]) for k, v in pooled.splits.items()} == {"train": 76, "val": 17, "test": 17}
    assert pooled.preprocessing["split_sources"]["test"] == "15% of all rows at random, seed 42"

    # data.limit takes the first images of both files, in proportion (88 of 110: 64 train, 24 test)
    limited = load_data(validate(compose([*c.overrides, "data.limit=88"]).config))
    assert limited.preprocessing["split_sizes"] == {"train": 54, "val": 10, "test": 24}


def test_cifar10_test_batch_is_the_test_split(tmp_path):
    folder = tmp_path / "cifar-10-batches-bin"
    folder.mkdir()
    for f, name in enumerate([f"data_batch_{i}.bin" for i in range(1, 6)] + ["test_batch.bin"]):
        records = [bytes([(f + r) % 10]) + bytes([10 * f + r]) * 3072 for r in range(4)]
        (folder / name).write_bytes(b"".join(records))
    cfg = validate(compose(["data=cifar10", f"data.root={tmp_path}"]).config)
    table = load_table(cfg["data"], cfg["seed"])
    assert table.split.tolist() == ["train"] * 20 + ["test"] * 4
    assert table.x[20:, 0, 0, 0].tolist() == [50, 51, 52, 53]  # test_batch's records
    limited = load_table({**cfg["data"], "limit": 12}, 0)  # 12 of 24: 10 from the batches, 2 from test_batch
    assert limited.split.tolist() == ["train"] * 10 + ["test"] * 2
    assert limited.x[:, 0, 0, 0].tolist() == [0, 1, 2, 3, 10, 11, 12, 13, 20, 21, 50, 51]
    assert load_table({**cfg["data"], "split": "random"}, 0).split is None


def test_val_path_is_the_validation_split(tmp_path):
    write_npz(tmp_path / "train.npz", 100, 1)
    write_npz(tmp_path / "val.npz", 21, 2)
    cfg = validate(compose(["data=npz", f"data.path={tmp_path / 'train.npz'}",
                            f"data.val_path={tmp_path / 'val.npz'}", "data.test_fraction=0.2"]).config)
    prepared = load_data(cfg)
    assert prepared.preprocessing["split_sizes"] == {"train": 80, "val": 21, "test": 20}  # test: 20% of train.npz
    assert prepared.preprocessing["split_indices"]["indices"]["val"] == list(range(100, 121))
    assert prepared.preprocessing["split_sources"]["val"] == str(tmp_path / "val.npz")


def test_split_indices_carve_only_what_no_file_gives():
    y = np.arange(100) % 2
    fixed = np.array(["train"] * 80 + ["test"] * 20)
    idx = split_indices(y, 0.25, 0.15, seed=0, stratify=True, fixed=fixed)
    assert idx["test"].tolist() == list(range(80, 100))  # test_fraction is ignored: the file is the test split
    assert len(idx["val"]) == 20 and np.isin(idx["val"], np.arange(80)).all()  # 25% of the 80 training rows
    assert sorted(idx["train"].tolist() + idx["val"].tolist()) == list(range(80))
    fixed_val = np.array(["train"] * 80 + ["val"] * 20)
    idx = split_indices(y, 0.25, 0.15, seed=0, stratify=True, fixed=fixed_val)
    assert idx["val"].tolist() == list(range(80, 100)) and len(idx["test"]) == 12 and idx["test"].max() < 80
    # rows of time: val is the latest of the training rows
    ordered = split_indices(y, 0.25, 0.15, seed=0, stratify=False, ordered=True, fixed=fixed)
    assert ordered["val"].tolist() == list(range(60, 80)) and ordered["train"].tolist() == list(range(60))
    # nothing given by a file: bit for bit the random split of before
    plain = split_indices(y, 0.2, 0.2, seed=3, stratify=True)
    same = split_indices(y, 0.2, 0.2, seed=3, stratify=True, fixed=np.full(100, "train"))
    assert all(np.array_equal(plain[k], same[k]) for k in ("train", "val", "test"))


# ---------------------------------------------------------------------------------------- refused setups

def test_files_that_do_not_fit_and_keys_that_cannot_apply_are_refused(tmp_path):
    write_npz(tmp_path / "train.npz", 50, 1)
    write_npz(tmp_path / "wide.npz", 20, 2, features=5)
    cfg = validate(compose(["data=npz", f"data.path={tmp_path / 'train.npz'}",
                            f"data.test_path={tmp_path / 'wide.npz'}"]).config)
    with pytest.raises(DataError) as info:
        load_table(cfg["data"], 0)
    assert str(tmp_path / "wide.npz") in str(info.value) and str(tmp_path / "train.npz") in str(info.value)
    assert "samples of shape (5,), the training file's (4,)" in str(info.value)

    with pytest.raises(DataError, match="data.test_path is data.path too"):
        load_table({**cfg["data"], "test_path": str(tmp_path / "train.npz")}, 0)

    with pytest.raises(ConfigError) as info:  # digits reads no file: no test file to add
        validate(compose(["data.test_path=test.npz"]).config)
    assert "data 'digits' is not read from a file" in str(info.value) and "npz" in str(info.value)
    with pytest.raises(ConfigError, match="data.test_root: data 'npz' is not read from a folder"):
        validate(compose(["data=npz", "data.path=a.npz", "data.test_root=b"]).config)

    write_idx(tmp_path / "mnist", 10, 5)  # MNIST has its own test files already
    write_idx(tmp_path / "other", 10, 5)
    mnist = validate(compose(["data=mnist", f"data.root={tmp_path / 'mnist'}",
                              f"data.test_root={tmp_path / 'other'}"]).config)
    with pytest.raises(DataError, match="already has its own test rows .* data.split=random"):
        load_table(mnist["data"], 0)


PIXEL = {"ant": 0, "bee": 40, "cat": 80, "dog": 120}  # each class's images: its value + the image's number


def _image_folder(root: Path, classes: list[str], per_class: int = 4) -> None:
    from PIL import Image

    for name in classes:
        (root / name).mkdir(parents=True)
        for i in range(per_class):
            Image.fromarray(np.full((4, 4), PIXEL[name] + i, np.uint8), "L").save(root / name / f"{i}.png")


def test_image_folders_match_classes_by_name_and_warn_of_unseen_ones(tmp_path):
    _image_folder(tmp_path / "train", ["ant", "bee", "cat"], per_class=10)
    _image_folder(tmp_path / "test", ["ant", "cat"])  # its second folder is the training folder's third class
    images = ["data=image_folder", f"data.root={tmp_path / 'train'}", "data.size=[4,4]"]
    cfg = validate(compose([*images, f"data.test_root={tmp_path / 'test'}"]).config)
    table = load_table(cfg["data"], 0)
    assert table.class_names == ["ant", "bee", "cat"]
    assert table.y[table.split == "test"].tolist() == [0] * 4 + [2] * 4
    assert table.x[table.split == "test"][:, 0, 0, 0].tolist() == [0, 1, 2, 3, 80, 81, 82, 83]

    _image_folder(tmp_path / "test2", ["ant", "dog"])
    with pytest.warns(UserWarning, match=r"classes the training rows never have: dog"):
        prepared = load_data(validate(compose([*images, f"data.test_root={tmp_path / 'test2'}"]).config))
    assert prepared.class_names == ["ant", "bee", "cat", "dog"]


# ------------------------------------------------------------------------------------ changed data refused

def test_changed_data_is_refused_by_eval_resume_and_fine_tuning(npz_run):
    d, run_dir = npz_run
    original = (d / "train.npz").read_bytes()
    data = np.load(d / "train.npz")
    order = np.random.default_rng(0).permutation(len(data["y"]))
    np.savez(d / "train.npz", x=data["x"][order], y=data["y"][order])  # the same rows, shuffled
    try:
        result = invoke("eval", run_dir)
        assert result.exit_code == 2
        assert f"'{d / 'train.npz'}' (data.path) has other content" in result.output
        assert "--allow-changed-data" in result.output and "Traceback" not in result.output
        result = invoke("eval", run_dir, "--allow-changed-data")
        assert result.exit_code == 0, result.output
        assert "warning: the data of run" in result.output and "Going on, as --allow-changed-data asks" in result.output
        assert "rows" in result.output

        result = invoke("resume", run_dir, "trainer.max_epochs=10")
        assert result.exit_code == 2 and f"'{d / 'train.npz'}' (data.path)" in result.output

        finetune = compose([f"output_dir={d / 'out'}", *FAST, "trainer.max_epochs=1", "data=npz",
                            f"data.path={d / 'train.npz'}", f"data.test_path={d / 'test.npz'}",
                            "model.hidden=[16]", "optimizer.lr=0.01", f"model.pretrained={run_dir}"]).config
        with pytest.raises(DataError, match=r"pretrained run .* model.allow_changed_data=true"):
            train(finetune)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            tuned = train({**finetune, "model": {**finetune["model"], "allow_changed_data": True}})
        assert preprocessing(tuned.run_dir)["reused_from"] == str(run_dir)
    finally:
        (d / "train.npz").write_bytes(original)
    assert invoke("eval", run_dir).exit_code == 0  # the original data again


def test_eval_rebuilds_the_recorded_split_whatever_the_seed_says(tmp_path):
    run_dir = train(compose([f"output_dir={tmp_path}", *FAST, "trainer.max_epochs=1", "model.hidden=[8]"]).config
                    ).run_dir
    run = load_run(str(run_dir))
    recorded = decode_membership(run.preprocessing["split_indices"])["test"]
    cfg = validate({**run.config, "seed": 7})  # e.g. a config edited after training
    from sklearn.datasets import load_digits

    expected = run.inputs(load_digits().data[recorded].reshape(-1, 1, 8, 8).astype(np.float32))
    x, _ = run_test_split(run, cfg, reuse=True)
    assert np.array_equal(x, expected)
    x_resplit, _ = run_test_split(run, cfg, reuse=False)  # seed 7 would have put other rows in the test split
    assert not np.array_equal(x_resplit, expected)
    other = {"split_indices": encode_membership({"train": np.arange(10), "test": np.arange(10, 12)}, 12)}
    with pytest.raises(DataError, match="is not the one run r recorded"):
        check_same_split(other, run.preprocessing, "r", "data 'digits'")


# ---------------------------------------------------------------------------------------- the records

def test_split_membership_is_recorded_compactly():
    rng = np.random.default_rng(0)
    small = {"train": np.arange(8), "test": np.arange(8, 10)}
    assert encode_membership(small, 10) == {"rows": 10, "indices": {"train": list(range(8)), "test": [8, 9]}}
    order = rng.permutation(25_000)
    idx = {"train": np.sort(order[:20_000]), "val": np.sort(order[20_000:22_000]), "test": np.sort(order[22_000:])}
    coded = encode_membership(idx, 25_000)
    assert len(coded["codes"]) < 12_000 and coded["counts"] == {"train": 20_000, "val": 2_000, "test": 3_000}
    back = decode_membership(json.loads(json.dumps(coded)))
    assert all(np.array_equal(back[k], idx[k]) for k in idx)
    huge = encode_membership({"train": np.arange(1_000_001)}, 1_000_001)
    assert set(huge) == {"rows", "counts", "sha256"} and decode_membership(huge) is None


def test_fingerprint_files_and_folders(tmp_path, monkeypatch):
    (tmp_path / "a.csv").write_text("x,y\n1,2\n")
    cfg = {"name": "csv", "path": str(tmp_path / "a.csv")}
    saved = fp.fingerprint(cfg)
    assert saved[str(tmp_path / "a.csv")]["sha256"] == __import__("hashlib").sha256(b"x,y\n1,2\n").hexdigest()
    moved = tmp_path / "moved"
    moved.mkdir()
    shutil.copy(tmp_path / "a.csv", moved / "a.csv")
    assert fp.compare(saved, fp.fingerprint({**cfg, "path": str(moved / "a.csv")})) == []  # same content, moved
    (tmp_path / "a.csv").write_text("x,y\n1,3\n")
    assert fp.compare(saved, fp.fingerprint(cfg)) == [str(tmp_path / "a.csv")]
    assert fp.compare(saved, fp.fingerprint({**cfg, "path": str(tmp_path / "b.csv")}), shared_only=True) == []

    folder = tmp_path / "images"
    for i in range(5):
        (folder / "c").mkdir(parents=True, exist_ok=True)
        (folder / "c" / f"{i}.png").write_bytes(bytes([i]) * 10)
    folder_cfg = {"name": "image_folder", "root": str(folder)}
    whole = fp.fingerprint(folder_cfg)[str(folder)]
    assert whole["files"] == 5 and whole["bytes"] == 50 and not whole["sampled"]
    (folder / "c" / "1.png").write_bytes(bytes([9]) * 10)  # same name and size, other content
    assert fp.fingerprint(folder_cfg)[str(folder)]["sha256"] != whole["sha256"]
    # a large folder: every name and size, but only a sample of the files' content
    monkeypatch.setattr(fp, "FULL_HASH_BYTES", 0)
    monkeypatch.setattr(fp, "SAMPLE_FILES", 2)  # files 0 and 4
    sampled = fp.fingerprint(folder_cfg)[str(folder)]
    assert sampled["sampled"]
    (folder / "c" / "2.png").write_bytes(bytes([7]) * 10)
    assert fp.fingerprint(folder_cfg)[str(folder)]["sha256"] == sampled["sha256"]  # not in the sample
    (folder / "c" / "2.png").write_bytes(bytes([7]) * 11)
    assert fp.fingerprint(folder_cfg)[str(folder)]["sha256"] != sampled["sha256"]  # its size changed


def test_runs_from_before_data_split_keep_their_single_pool(tmp_path):
    assert legacy_config({"data": {"name": "idx"}})["data"]["split"] == "random"
    assert legacy_config({"data": {"name": "idx", "split": "official"}})["data"]["split"] == "official"
    # a run saved before these keys: its config and preprocessing without them
    run_dir = train(compose([f"output_dir={tmp_path}", *FAST, "trainer.max_epochs=1", "model.hidden=[8]"]).config
                    ).run_dir
    from dlcli.runs import folder

    cfg = load_run(str(run_dir)).config
    for key in ("split", "test_path", "val_path", "test_root", "val_root"):
        del cfg["data"][key]
    folder.write_yaml(run_dir / "config.yaml", cfg)
    pre = preprocessing(run_dir)
    for key in ("split_sources", "split_indices", "data_fingerprint"):
        del pre[key]
    folder.write_json(run_dir / "preprocessing.json", pre)
    assert load_run(str(run_dir)).config["data"]["split"] == "random"
    result = invoke("eval", run_dir)  # its own test split, as before (not "other data": every row)
    assert result.exit_code == 0, result.output
    assert "on the test split, 270 rows" in result.output
    assert f"{summary(run_dir)['metrics']['test/acc']:.4f}" in result.output


def test_a_csv_test_file_is_read_with_the_training_files_column_types(tmp_path):
    rng = np.random.default_rng(0)

    def write(path, n, codes):
        rows = ["x,code,y"] + [f"{rng.normal():.3f},{codes[i % len(codes)]},{'ab'[i % 2]}" for i in range(n)]
        path.write_text("\n".join(rows) + "\n")

    write(tmp_path / "train.csv", 40, ["red", "blue", "7"])
    write(tmp_path / "test.csv", 10, ["7", "8"])  # on its own, `code` would be inferred numeric
    cfg = validate(compose(["data=csv", f"data.path={tmp_path / 'train.csv'}", "data.target=y",
                            f"data.test_path={tmp_path / 'test.csv'}"]).config)
    table = load_table(cfg["data"], 0)
    assert table.columns["types"] == {"x": "numeric", "code": "categorical"}
    assert table.x[table.split == "test"][:, 1].tolist() == ["7", "8"] * 5
    prepared = load_data(cfg)
    assert prepared.preprocessing["split_sizes"]["test"] == 10
    assert prepared.splits["test"][0].shape[1] == prepared.splits["train"][0].shape[1] == 4  # x + 3 one-hot codes


def test_a_streamed_image_folder_streams_its_test_folder_too(tmp_path):
    _image_folder(tmp_path / "train", ["ant", "bee"], per_class=10)
    _image_folder(tmp_path / "test", ["bee"])
    cfg = validate(compose(["data=image_folder", f"data.root={tmp_path / 'train'}", "data.size=[4,4]",
                            "data.cache=none", f"data.test_root={tmp_path / 'test'}"]).config)
    table = load_table(cfg["data"], 0)
    assert table.x is None and len(table.files) == 24 and table.files.color == "grayscale"
    assert [Path(p).parent.parent.name for p in table.files.paths[table.split == "test"]] == ["test"] * 4
    assert table.y[table.split == "test"].tolist() == [1] * 4  # bee, the training folder's second class


def test_a_relative_data_path_from_another_folder_names_where_the_run_read_it(tmp_path, monkeypatch):
    from typer.testing import CliRunner

    from dlcli.cli import app

    project, elsewhere = tmp_path / "project", tmp_path / "elsewhere"
    project.mkdir()
    elsewhere.mkdir()
    rng = np.random.default_rng(0)
    rows = "".join(f"{a:.3f},{b:.3f},{int(a > b)}\n" for a, b in rng.normal(size=(60, 2)))
    (project / "t.csv").write_text("a,b,y\n" + rows)
    monkeypatch.chdir(project)
    runner = CliRunner()
    trained = runner.invoke(app, ["train", "data=csv", "data.path=t.csv", "data.target=y", "threads=1",
                                  "trainer.max_epochs=1", "trainer.enable_progress_bar=false", "output_dir=outputs"])
    assert trained.exit_code == 0, trained.output
    (run,) = (project / "outputs").iterdir()
    monkeypatch.chdir(elsewhere)
    refused = runner.invoke(app, ["eval", run.name, "--output-dir", str(project / "outputs")])
    assert refused.exit_code == 2
    message = " ".join(refused.stderr.split())
    assert f"'t.csv' (data.path) is not in this folder ({elsewhere}): a relative path is read from the folder a " \
           f"command runs in, and the run read it as {project / 't.csv'}. Run from {project}, or give the file: " \
           f"data.path={project / 't.csv'}" in message
    given = runner.invoke(app, ["eval", run.name, "--output-dir", str(project / "outputs"),
                                f"data.path={project / 't.csv'}"])
    assert given.exit_code == 0, given.output
