"""Bad data on the command line: exit code 2, the file or key named, the fix suggested, no traceback, and no
run folder (data is loaded before the run folder is made)."""

from __future__ import annotations

import gzip
import os

import numpy as np
import pytest
from typer.testing import CliRunner

from dlcli.cli import app

runner = CliRunner()
FAST = ["trainer.enable_progress_bar=false", "trainer.accelerator=cpu", "threads=1", "trainer.max_epochs=1"]


def write(path, text: str | bytes):
    path.parent.mkdir(parents=True, exist_ok=True)
    (path.write_bytes if isinstance(text, bytes) else path.write_text)(text)
    return path


def csv_case(text: str | bytes, *extra: str):
    def make(tmp):
        path = write(tmp / "data.csv", text)
        return ["data=csv", f"data.path={path}", "data.target=y", *extra], [str(path)]
    return make


def npz_case(**arrays):
    def make(tmp):
        path = tmp / "data.npz"
        np.savez(path, **arrays)
        return ["data=npz", f"data.path={path}"], [str(path)]
    return make


def idx_bytes(array: np.ndarray) -> bytes:
    magic = {3: 2051, 1: 2049}[array.ndim]
    return b"".join(int(v).to_bytes(4, "big") for v in (magic, *array.shape)) + array.astype(np.uint8).tobytes()


IDX = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")


def idx_case(damage, *extra: str):
    """Four good IDX files (12 train, 6 test images of 4x4, labels 0..2), then ``damage(folder)``."""
    def make(tmp):
        root = tmp / "mnist"
        root.mkdir()
        labels = np.arange(18) % 3
        images = np.zeros((18, 4, 4), np.uint8)
        for name, array in zip(IDX, (images[:12], labels[:12], images[12:], labels[12:]), strict=True):
            (root / name).write_bytes(idx_bytes(array))
        return ["data=idx", f"data.root={root}", *extra], damage(root)
    return make


def _wrong_magic(root):
    path = root / IDX[0]
    data = bytearray(path.read_bytes())
    data[:4] = (2049).to_bytes(4, "big")
    path.write_bytes(bytes(data))
    return [str(path), "magic number 2049, expected 2051", "download it again"]


def _truncated(root):
    path = root / IDX[2]
    path.write_bytes(path.read_bytes()[:-10])
    return [str(path), "is truncated", "6 x 4 x 4 images (112 bytes with the header), the file holds 102 bytes"]


def _gzip_garbage(root):
    path = root / IDX[1]
    (root / f"{IDX[1]}.gz").write_bytes(gzip.compress(path.read_bytes())[:-8])
    path.unlink()
    return [f"{path}.gz", "corrupt gzip file"]


def image_case(content: bytes):
    def make(tmp):
        from PIL import Image

        for cls in ("cat", "dog"):
            (tmp / "images" / cls).mkdir(parents=True)
            for i in range(3):
                Image.new("L", (6, 6), 40 * i).save(tmp / "images" / cls / f"{i}.png")
        broken = write(tmp / "images" / "dog" / "broken.png", content)
        return ["data=image_folder", f"data.root={tmp / 'images'}", "model=perceptron"], \
            [f"1 of the 7 images in '{tmp / 'images'}' cannot be read: '{broken}' (", "Replace or remove them",
             "data.unreadable=skip"]
    return make


def text_case(text: str, *extra: str):
    def make(tmp):
        path = write(tmp / "texts.csv", text)
        return ["data=text_csv", f"data.path={path}", "model=perceptron", *extra], [str(path)]
    return make


def with_expected(make, *expected: str):
    def both(tmp):
        args, named = make(tmp)
        return args, named + list(expected)
    return both


CASES = {
    # missing, wrong kind of path, unreadable
    "csv-missing": lambda tmp: (["data=csv", f"data.path={tmp / 'nope.csv'}", "data.target=y"],
                                [f"CSV file not found: '{tmp / 'nope.csv'}' (data.path)", "data.path=/path/to/file"]),
    "csv-is-a-folder": lambda tmp: (["data=csv", f"data.path={tmp}", "data.target=y"],
                                    [f"'{tmp}' (data.path) is a folder, not a CSV file", "Give a file in it"]),
    "npz-missing": lambda tmp: (["data=npz", f"data.path={tmp / 'x.npz'}"], ["NPZ file not found", "(data.path)"]),
    "text-csv-missing": lambda tmp: (["data=text_csv", f"data.path={tmp / 't.csv'}"], ["CSV file not found"]),
    "timeseries-missing": lambda tmp: (["data=timeseries_csv", f"data.path={tmp / 's.csv'}", "data.column=v"],
                                       ["CSV file not found", "(data.path)"]),
    "idx-missing": lambda tmp: (["data=idx", f"data.root={tmp / 'nowhere'}"],
                                ["IDX dataset files not found", "(data.root; the folder does not exist)"]),
    "image-folder-missing": lambda tmp: (["data=image_folder", f"data.root={tmp / 'nowhere'}"],
                                         ["image folder not found", "(data.root)"]),
    # empty and malformed CSV
    "csv-empty": with_expected(csv_case(""), "is empty: it needs a header row and at least one data row"),
    "csv-header-only": with_expected(csv_case("a,b,y\n"), "has a header row but no data rows"),
    "csv-ragged": with_expected(csv_case("a,b,y\n1,2,0\n3,4\n"), "row 3 has 2 fields, the header has 3",
                                "data.delimiter"),
    "csv-bad-delimiter": lambda tmp: (["data=csv", f"data.path={write(tmp / 'd.csv', 'a;b;y')}", "data.target=y",
                                       "data.delimiter=';;'"],
                                      ["data.delimiter must be one character or auto, got ';;'"]),
    "csv-not-utf8": with_expected(csv_case(b"a,b,y\n1,2,caf\xe9\n"), "is not UTF-8 text: byte 0xe9 on line 2",
                                  "data.encoding=latin-1", "save it as UTF-8"),
    "csv-binary": with_expected(csv_case(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00"), "is not UTF-8 text"),
    # columns, values, targets
    "csv-missing-column": with_expected(csv_case("a,b,label\n1,2,0\n", ), "has no column 'y' (data.target)",
                                        "Columns: a, b, label"),
    "csv-missing-feature": with_expected(csv_case("a,b,y\n1,2,0\n", "data.features=[a,c]"),
                                         "has no column 'c' (data.features)"),
    # a column declared numeric; missing values refused with data.missing=error (the default imputes them)
    "csv-non-numeric": with_expected(csv_case("a,b,y\n1,2,0\n3,red,1\n", "data.numeric=[b]"),
                                     "row 3, column 'b': 'red' is not a number", "data.features=[...]"),
    "csv-inf-feature": with_expected(csv_case("a,b,y\n1,2,0\ninf,4,1\n"),
                                     "row 3, column 'a': 'inf' is not a finite number"),
    "csv-nan-feature": with_expected(csv_case("a,b,y\n1,2,0\nnan,4,1\n", "data.missing=error"),
                                     "row 3, column 'a': 'nan' is a missing value", "data.missing=impute"),
    "csv-empty-feature": with_expected(csv_case("a,b,y\n1,2,0\n3,,1\n", "data.missing=error"),
                                       "row 3, column 'b': '' is empty"),
    "csv-inf-target": with_expected(csv_case("a,b,y\n1,2,0.5\n3,4,inf\n"),
                                    "row 3: the target column 'y' holds 'inf', not a finite number"),
    "npz-nan-input": with_expected(npz_case(x=np.array([[0, 1], [np.nan, 1], [2, 2]] * 4, dtype="f4"),
                                            y=np.arange(12) % 2),
                                   "has a missing (NaN) or infinite input value: sample 1", "Fill in or drop"),
    "npz-nan-target": with_expected(npz_case(x=np.zeros((12, 2), "f4"), y=np.r_[np.linspace(0, 1, 11), np.nan]),
                                    "infinite target value: sample 11"),
    "npz-object-array": with_expected(npz_case(x=np.array([{"a": 1}] * 12, dtype=object), y=np.arange(12) % 2),
                                      "array 'x' (data.x_key) cannot be read", "never pickled Python objects"),
    "npz-missing-array": with_expected(npz_case(inputs=np.zeros((12, 2)), y=np.arange(12) % 2),
                                       "has no array 'x' (data.x_key)", "Arrays: inputs, y"),
    "npz-rows-differ": with_expected(npz_case(x=np.zeros((12, 2)), y=np.arange(10) % 2),
                                     "'x' has 12 rows but 'y' has 10"),
    "npz-is-text": lambda tmp: (["data=npz", f"data.path={write(tmp / 'd.npz', 'x,y')}"],
                                ["as a .npz file", "np.savez(path, x=inputs, y=targets)"]),
    # labels where ids matter: IDX labels index data.class_names
    "idx-labels-out-of-range": idx_case(lambda root: [str(root / IDX[1]), "hold labels up to 2, but data.class_names "
                                                      "names only 2 classes"], "data.class_names=[a,b]"),
    # IDX files
    "idx-wrong-magic": idx_case(_wrong_magic),
    "idx-truncated": idx_case(_truncated),
    "idx-bad-gzip": idx_case(_gzip_garbage),
    # images
    "image-corrupt": image_case(b"\x89PNG\r\n\x1a\nnot really a png"),
    "image-empty": image_case(b""),
    # text
    "text-csv-missing-column": with_expected(text_case("txt,label\ngood,pos\n"), "has no column 'text' (data.text)",
                                             "Did you mean"),
    "text-csv-empty-label": with_expected(text_case("text,label\ngood,pos\nbad,\n"),
                                          "row 3: the label column 'label' is empty"),
    "text-csv-empty": with_expected(text_case(""), "is empty"),
    # time series
    "timeseries-non-numeric": lambda tmp: (
        ["data=timeseries_csv", f"data.path={write(tmp / 's.csv', 'v' + chr(10) + '1' + chr(10) + 'x' + chr(10))}",
         "data.column=v"], ["row 3, column 'v': 'x' is not a number"]),
}


@pytest.mark.parametrize("case", list(CASES))
def test_bad_data_exits_2_naming_the_file_or_key(tmp_path, case):
    args, expected = CASES[case](tmp_path)
    out = tmp_path / "out"
    result = runner.invoke(app, ["train", *args, f"output_dir={out}", *FAST])
    assert result.exit_code == 2, result.output
    message = " ".join(result.stderr.split())
    for text in expected:
        assert text in message, f"{text!r} not in {message!r}"
    assert "Traceback" not in result.output
    assert not out.exists() or not any(out.iterdir())  # no run folder, complete-looking or not


def test_an_unreadable_file_is_named(tmp_path, monkeypatch):
    path = write(tmp_path / "data.csv", "a,b,y\n1,2,0\n")
    path.chmod(0)
    if os.geteuid() == 0:  # root reads any file: pretend the permission check says no
        real_access = os.access
        monkeypatch.setattr(os, "access", lambda p, mode: False if str(p) == str(path) else real_access(p, mode))
    try:
        result = runner.invoke(app, ["train", "data=csv", f"data.path={path}", "data.target=y",
                                     f"output_dir={tmp_path / 'out'}", *FAST])
    finally:
        path.chmod(0o644)
    assert result.exit_code == 2
    assert f"cannot read CSV file '{path}' (data.path): permission denied" in " ".join(result.stderr.split())


def test_debug_shows_the_traceback_of_bad_data(tmp_path):
    result = runner.invoke(app, ["train", "--debug", "data=csv", f"data.path={tmp_path / 'nope.csv'}",
                                 "data.target=y", f"output_dir={tmp_path / 'out'}"])
    assert result.exit_code != 0 and "nope.csv" in str(result.exception)
