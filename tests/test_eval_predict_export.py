"""Using a trained run: `dlcli eval`, `dlcli predict` and `dlcli export` on classification, regression, text
and image runs -- the same numbers as training reported, the same predictions as the reloaded model."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from dlcli.cli import app
from dlcli.config.compose import compose
from dlcli.registry import DATASETS
from dlcli.training.evaluate import run_test_split
from dlcli.training.reload import load_run
from dlcli.training.train import train

FAST = ["trainer.enable_progress_bar=false", "trainer.accelerator=cpu", "threads=1"]  # as in conftest.py
runner = CliRunner()


def invoke(*args: str):
    return runner.invoke(app, [str(a) for a in args])


def _train(out: Path, *overrides: str):
    return train(compose([f"output_dir={out}", *FAST, "trainer.max_epochs=3", *overrides]).config)


def _write_images(root: Path) -> None:
    """Two classes of 8x8 grey PNGs: horizontal and vertical stripes, with noise."""
    from PIL import Image

    rng = np.random.default_rng(0)
    for label, axis in (("horizontal", 0), ("vertical", 1)):
        (root / label).mkdir(parents=True)
        for i in range(12):
            stripes = np.zeros((8, 8))
            stripes[::2] = 200
            img = (stripes if axis == 0 else stripes.T) + rng.integers(0, 50, (8, 8))
            Image.fromarray(img.clip(0, 255).astype(np.uint8), mode="L").save(root / label / f"{label}_{i}.png")


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """One finished run of each kind, trained once for the module."""
    out = tmp_path_factory.mktemp("outputs")
    images = tmp_path_factory.mktemp("images")
    _write_images(images)
    return {
        "digits": _train(out, "model.hidden=[32]"),
        "regression": _train(out, "data=diabetes", "loss=mse", "model.hidden=[16]"),
        "text": _train(out, "experiment=text_gru", "data.n_samples=300", "data.max_length=8",
                       "model.layers=[{embedding:{dim:8}},{gru:{units:8}},{dense:{}}]"),
        "images": _train(out, "data=image_folder", f"data.root={images}", "data.size=[8,8]", "data.batch_size=8",
                         "data.val_fraction=0.25", "data.test_fraction=0.25", "model.hidden=[16]"),
    }


def _test_inputs(run_dir: Path):
    """The run's test split: raw inputs (as its dataset gives them) and class ids or values."""
    run = load_run(str(run_dir))
    cfg = run.config
    from dlcli.data.prepare import split_indices

    table = DATASETS.get(cfg["data"]["name"]).build(
        {k: v for k, v in cfg["data"].items() if k in ("n_samples", "max_length", "root", "size")}, seed=cfg["seed"])
    d = cfg["data"]
    y = table.y if run.task == "regression" else np.unique(table.y, return_inverse=True)[1]
    stratify = d["stratify"] and run.task != "regression"
    rows = split_indices(y, d["val_fraction"], d["test_fraction"], cfg["seed"], stratify)["test"]
    return run, table, rows


# ------------------------------------------------------------------------------------------------ eval


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["digits", "regression", "text", "images"])
def test_eval_gives_the_test_metrics_of_the_run_and_saves_them(runs, kind):
    result = runs[kind]
    cli = invoke("eval", result.run_dir)
    assert cli.exit_code == 0, cli.output
    saved = sorted((result.run_dir / "eval").glob("*.json"))
    assert len(saved) == 1
    record = json.loads(saved[0].read_text())
    assert record["data"] == "test split" and record["checkpoint"] == "best"
    assert record["rows"] == json.loads((result.run_dir / "preprocessing.json").read_text())["split_sizes"]["test"]
    summary = json.loads((result.run_dir / "summary.json").read_text())
    test_metrics = {k: v for k, v in summary["metrics"].items() if k.startswith("test/")}
    assert test_metrics and set(record["metrics"]) == set(test_metrics)
    for key, value in test_metrics.items():
        assert record["metrics"][key] == pytest.approx(value, rel=1e-5, abs=1e-6), key
        assert key in cli.stdout
    saved[0].unlink()


def test_eval_on_a_new_csv_scores_every_row_with_the_runs_preprocessing(runs, tmp_path):
    result = runs["digits"]
    run, table, rows = _test_inputs(result.run_dir)
    x = table.x[rows].reshape(len(rows), -1)  # (N, 1, 8, 8) -> (N, 64) pixel columns
    path = tmp_path / "new.csv"
    with path.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["label", *reversed(table.feature_names)])  # another column order: matched by name
        w.writerows([int(t), *map(float, reversed(v))] for v, t in zip(x, table.y[rows], strict=True))
    cli = invoke("eval", result.run_dir, "data=csv", f"data.path={path}", "data.target=label")
    assert cli.exit_code == 0, cli.output
    record = json.loads(next((result.run_dir / "eval").glob("*.json")).read_text())
    assert record["rows"] == len(rows) and record["data_config"]["path"] == str(path)
    assert record["data"] == f"every row of data 'csv' ({path})" and record["split"] == "all"
    # the same rows as the run's test split, so the same accuracy
    assert record["metrics"]["test/acc"] == pytest.approx(result.metrics["test/acc"], abs=1e-6)
    probs = run.predict(table.x[rows])
    assert record["metrics"]["test/acc"] == pytest.approx(float((probs.argmax(1) == table.y[rows]).mean()), abs=1e-6)
    for f in (result.run_dir / "eval").glob("*.json"):
        f.unlink()


def test_eval_split_test_on_the_runs_data_moved_to_a_csv_gives_the_same_numbers(runs, tmp_path):
    result = runs["digits"]
    table = DATASETS.get("digits").build({}, seed=0)
    path = tmp_path / "digits.csv"
    with path.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow([*table.feature_names, "digit"])
        w.writerows([*map(float, v.ravel()), int(t)] for v, t in zip(table.x, table.y, strict=True))
    cli = invoke("eval", result.run_dir, "data=csv", f"data.path={path}", "data.target=digit", "--split", "test")
    assert cli.exit_code == 0, cli.output
    record = json.loads(next((result.run_dir / "eval").glob("*.json")).read_text())
    assert record["split"] == "test" and record["data"] == f"test split of data 'csv' ({path})"
    assert record["rows"] == json.loads((result.run_dir / "preprocessing.json").read_text())["split_sizes"]["test"]
    assert record["metrics"]["test/acc"] == pytest.approx(result.metrics["test/acc"], abs=1e-6)
    assert record["metrics"]["test/loss"] == pytest.approx(result.metrics["test/loss"], rel=1e-5)
    for f in (result.run_dir / "eval").glob("*.json"):
        f.unlink()


def test_eval_on_new_data_names_unknown_labels_and_missing_columns(runs, tmp_path):
    result = runs["digits"]
    table = DATASETS.get("digits").build({}, seed=0)
    path = tmp_path / "bad.csv"
    with path.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["label", *table.feature_names])
        w.writerows([["eleven", *map(float, v.ravel())] for v in table.x[:5]])
    cli = invoke("eval", result.run_dir, "data=csv", f"data.path={path}", "data.target=label")
    assert cli.exit_code == 2 and "eleven" in cli.stderr and "Traceback" not in cli.output
    with path.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["label", *table.feature_names[:60]])
        w.writerows([[1, *map(float, v.ravel()[:60])] for v in table.x[:5]])
    cli = invoke("eval", result.run_dir, "data=csv", f"data.path={path}", "data.target=label")
    assert cli.exit_code == 2 and "pixel_7_7" in cli.stderr.replace("\n", "")
    assert not (result.run_dir / "eval").exists() or not any((result.run_dir / "eval").iterdir())


@pytest.mark.parametrize(("args", "expected"), [
    (["no-such-run"], "RUN='no-such-run'"),
    (["{run}", "model.hidden=[8]"], "'model.hidden' belongs to the trained run"),
    (["{run}", "data.scaling=zscore"], "data.scaling"),
    (["{run}", "--checkpoint", "first"], "--checkpoint is one of best, last"),
])
def test_eval_bad_input_exits_2_naming_it(runs, args, expected, tmp_path):
    args = [a.format(run=runs["digits"].run_dir) for a in args]
    cli = invoke("eval", *args, f"output_dir={tmp_path}") if args[0] == "no-such-run" else invoke("eval", *args)
    assert cli.exit_code == 2, cli.output
    assert expected in cli.stderr.replace("\n", " ") and "Traceback" not in cli.output


def test_eval_last_checkpoint_and_output_dir_lookup(runs):
    result = runs["regression"]
    cli = invoke("eval", result.run_dir.name, f"output_dir={result.run_dir.parent}", "--checkpoint", "last")
    assert cli.exit_code == 0, cli.output
    record = json.loads(next((result.run_dir / "eval").glob("*.json")).read_text())
    assert record["checkpoint"] == "last" and "test/mae" in record["metrics"]
    for f in (result.run_dir / "eval").glob("*.json"):
        f.unlink()


def test_own_test_split_is_rebuilt_with_the_saved_preprocessing(runs):
    run = load_run(str(runs["images"].run_dir))
    x, _ = run_test_split(run, run.config)
    assert x.shape[1:] == tuple(run.preprocessing["input_shape"])
    assert x.shape[0] == run.preprocessing["split_sizes"]["test"]


# --------------------------------------------------------------------------------------------- predict


def _read_csv(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as f:
        return list(csv.DictReader(f))


def test_predict_npz_writes_predictions_csv_here_matching_the_model(runs, tmp_path, monkeypatch):
    result = runs["digits"]
    run, table, rows = _test_inputs(result.run_dir)
    np.savez(tmp_path / "test.npz", x=table.x[rows])
    monkeypatch.chdir(tmp_path)
    cli = invoke("predict", result.run_dir, "test.npz")
    assert cli.exit_code == 0, cli.output
    out = _read_csv(tmp_path / "predictions.csv")
    assert len(out) == len(rows) and [int(r["id"]) for r in out] == list(range(len(rows)))
    classes = run.classes
    probs = np.array([[float(r[f"prob_{c}"]) for c in classes] for r in out])
    assert np.allclose(probs.sum(1), 1, atol=1e-5)
    assert np.allclose(probs, run.predict(table.x[rows]), atol=1e-6)
    assert [r["prediction"] for r in out] == [classes[k] for k in probs.argmax(1)]
    acc = np.mean([r["prediction"] == classes[t] for r, t in zip(out, table.y[rows], strict=True)])
    assert acc == pytest.approx(result.metrics["test/acc"], abs=1e-6)
    assert "prediction" in cli.stdout and "predictions.csv" in cli.stdout


def test_predict_csv_by_feature_names_ignores_extra_columns_and_writes_json(runs, tmp_path):
    result = runs["regression"]
    run, table, rows = _test_inputs(result.run_dir)
    names = table.feature_names
    path = tmp_path / "new.csv"
    with path.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["target", "note", *reversed(names)])
        w.writerows([float(t), "x,y", *map(float, reversed(v))] for v, t in zip(table.x[rows], table.y[rows],
                                                                                 strict=True))
    cli = invoke("predict", result.run_dir, path, "--output", tmp_path / "out.json", "--no-keep-columns")
    assert cli.exit_code == 0, cli.output
    out = json.loads((tmp_path / "out.json").read_text())
    assert list(out[0]) == ["id", "prediction"]
    values = np.array([r["prediction"] for r in out])
    assert np.allclose(values, run.predict(table.x[rows]), rtol=1e-5)
    mae = float(np.abs(values - table.y[rows]).mean())
    assert mae == pytest.approx(result.metrics["test/mae"], rel=1e-4)


def test_predict_text_file_one_text_per_line(runs, tmp_path):
    result = runs["text"]
    run = load_run(str(result.run_dir))
    texts = ["the film was great .", "the plot was not good", "", "honestly , the acting was awful ."]
    (tmp_path / "texts.txt").write_text("\n".join(texts) + "\n")
    cli = invoke("predict", result.run_dir, tmp_path / "texts.txt", "-o", tmp_path / "p.csv")
    assert cli.exit_code == 0, cli.output
    out = _read_csv(tmp_path / "p.csv")
    assert [r["id"] for r in out] == ["1", "2", "4"]  # line numbers; the blank line is skipped
    probs = run.predict([t for t in texts if t])
    assert [r["prediction"] for r in out] == [run.classes[k] for k in probs.argmax(1)]
    assert np.allclose([[float(r[f"prob_{c}"]) for c in run.classes] for r in out], probs, atol=1e-6)


def test_predict_image_file_and_folder_read_as_training_read_them(runs, tmp_path):
    result = runs["images"]
    run = load_run(str(result.run_dir))
    root = Path(run.config["data"]["root"])
    table = DATASETS.get("image_folder").build({"root": str(root), "size": [8, 8]}, seed=0)
    expected = run.predict(table.x)  # the loader's order: class folders, then file names
    cli = invoke("predict", result.run_dir, root, "-o", tmp_path / "all.csv")
    assert cli.exit_code == 0, cli.output
    out = _read_csv(tmp_path / "all.csv")
    assert out[0]["id"] == "horizontal/horizontal_0.png" and len(out) == 24
    by_id = {r["id"]: r for r in out}
    files = sorted(p.relative_to(root).as_posix() for p in root.rglob("*.png"))
    assert np.allclose([[float(by_id[f][f"prob_{c}"]) for c in run.classes] for f in files], expected, atol=1e-6)
    one = root / "vertical" / "vertical_3.png"
    cli = invoke("predict", result.run_dir, one, "-o", tmp_path / "one.csv")
    assert cli.exit_code == 0, cli.output
    (row,) = _read_csv(tmp_path / "one.csv")
    alone, in_folder = row, by_id["vertical/vertical_3.png"]  # one image alone, or batched with the others:
    assert alone["id"] == "vertical_3.png" and alone.keys() == in_folder.keys()  # float sums may differ in
    assert all(float(alone[k]) == pytest.approx(float(in_folder[k]), abs=1e-6)  # their last bits
               for k in alone if k.startswith("prob_"))
    assert {k: v for k, v in alone.items() if not k.startswith("prob_") and k != "id"} == \
        {k: v for k, v in in_folder.items() if not k.startswith("prob_") and k != "id"}  # the predicted class


NAMES = "age,sex,bmi,bp,s1,s2,s3,s4,s5,s6"  # the diabetes run's feature columns


@pytest.mark.parametrize(("kind", "name", "make", "expected"), [
    ("digits", "none.npz", lambda p: None, "INPUT"),
    ("digits", "texts.txt", lambda p: p.write_text("a b c\n"), "Text files (one text per line) are for text runs"),
    ("digits", "flat.npz", lambda p: np.savez(p, x=np.zeros((3, 5), dtype=np.float32)), "shape (5,)"),
    ("digits", "nox.npz", lambda p: np.savez(p, y=np.zeros(3)), "no array 'x'"),
    ("regression", "few.csv", lambda p: p.write_text("age,sex\n1,2\n"),
     "lacks 8 of the run's feature columns: bmi, bp"),
    ("regression", "nan.csv", lambda p: p.write_text(f"{NAMES}\n1,2,3,4,5,6,7,8,9,nan\n"), "row 2, column 's6'"),
    ("regression", "word.csv", lambda p: p.write_text(f"{NAMES}\n1,2,3,4,5,6,7,8,9,high\n"),
     "'high' is not a number"),
    ("regression", "empty.csv", lambda p: p.write_text(""), "is empty"),
    ("text", "arrays.npz", lambda p: np.savez(p, x=np.zeros((3, 8))), "trained on texts"),
    ("images", "broken.png", lambda p: p.write_bytes(b"not a png"), "cannot read image"),
])
def test_predict_bad_input_exits_2_naming_it(runs, tmp_path, kind, name, make, expected):
    path = tmp_path / name
    make(path)
    cli = invoke("predict", runs[kind].run_dir, path, "-o", tmp_path / "p.csv")
    assert cli.exit_code == 2, cli.output
    message = cli.stderr.replace("\n", "")
    assert expected in message and name in message and "Traceback" not in cli.output
    assert not (tmp_path / "p.csv").exists()


def test_rows_for_binary_multilabel_and_multi_output_regression():
    from dlcli.training.predict import tabulate
    from dlcli.training.reload import LoadedRun

    def run(task, classes=None):
        return LoadedRun(Path("run"), {}, {"task": task, "classes": classes})

    columns, rows = tabulate(run("binary", ["benign", "malignant"]), ["a", "b"], np.array([0.2, 0.9]))
    assert columns == ["id", "prediction", "prob_benign", "prob_malignant"]
    assert [r["prediction"] for r in rows] == ["benign", "malignant"]
    assert rows[0]["prob_benign"] == pytest.approx(0.8) and rows[1]["prob_malignant"] == pytest.approx(0.9)
    _, rows = tabulate(run("multilabel", ["x", "y", "z"]), [0, 1], np.array([[0.7, 0.1, 0.6], [0.1, 0.2, 0.3]]))
    assert [r["prediction"] for r in rows] == ["x;z", ""]
    columns, rows = tabulate(run("regression"), [0], np.array([[1.5, -2.0]]))
    assert columns == ["id", "prediction_0", "prediction_1"] and rows[0]["prediction_1"] == -2.0


def test_run_without_checkpoints_says_why(tmp_path):
    result = _train(tmp_path / "o", "callbacks=none", "trainer.max_epochs=1", "model.hidden=[8]")
    for args in (["eval", result.run_dir], ["predict", result.run_dir, tmp_path / "x.npz"],
                 ["export", result.run_dir]):
        cli = invoke(*args)
        assert cli.exit_code == 2, cli.output
        assert "no checkpoints/best.ckpt (it was trained without callbacks.model_checkpoint)" in \
            cli.stderr.replace("\n", "")
    diverged = tmp_path / "diverged"
    failed = runner.invoke(app, ["train", "data=iris", "optimizer=sgd", "optimizer.lr=1e30", "threads=1",
                                 "trainer.max_epochs=2", "trainer.enable_progress_bar=false",
                                 f"output_dir={diverged}"])
    assert failed.exit_code != 0, failed.output
    (run_dir,) = diverged.iterdir()
    cli = invoke("eval", run_dir)
    assert cli.exit_code == 2 and f"no checkpoints/best.ckpt (the run failed before it wrote one: `dlcli runs show " \
        f"{run_dir.name}` says why)" in " ".join(cli.stderr.split())


# ---------------------------------------------------------------------------------------------- export


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["digits", "regression", "text"])
def test_onnx_export_matches_pytorch_in_onnxruntime(runs, kind, tmp_path):
    ort = pytest.importorskip("onnxruntime", reason="ONNX export is checked with onnxruntime (pip install "
                                                    "'dlcli[export]')")
    pytest.importorskip("onnxscript", reason="ONNX export needs onnxscript (pip install 'dlcli[export]')")
    result = runs[kind]
    run, table, rows = _test_inputs(result.run_dir)
    raw = list(table.x[rows]) if kind == "text" else table.x[rows]
    cli = invoke("export", result.run_dir, "--format", "onnx", "--output", tmp_path / "model.onnx")
    assert cli.exit_code == 0, cli.output
    assert "max abs difference" in cli.stdout
    meta = json.loads((tmp_path / "model.preprocessing.json").read_text())
    assert meta["preprocessing"] == run.preprocessing and meta["classes"] == run.classes
    assert meta["input"]["shape"] == ["batch", *run.preprocessing["input_shape"]]
    assert meta["input"]["dtype"] == ("int64" if kind == "text" else "float32")
    assert meta["check"]["with"] == "onnxruntime" and meta["check"]["max_abs_diff"] < 1e-4 * 400
    session = ort.InferenceSession(str(tmp_path / "model.onnx"), providers=["CPUExecutionProvider"])
    got = session.run(None, {"x": run.inputs(raw)})[0]  # real inputs through the saved preprocessing
    expected = run.predict(raw)
    assert got.shape == expected.shape
    scale = max(1.0, float(np.abs(expected).max()))  # regression: values in the target's units
    assert np.abs(got - expected).max() <= 1e-4 * scale


@pytest.mark.parametrize("fmt", ["torchscript", "pt2"])
def test_torch_formats_match_pytorch(runs, fmt, tmp_path):
    import torch

    result = runs["digits"]
    run, table, rows = _test_inputs(result.run_dir)
    cli = invoke("export", result.run_dir, "--format", fmt, "--output", tmp_path)
    assert cli.exit_code == 0, cli.output
    path = tmp_path / ("model.pt" if fmt == "torchscript" else "model.pt2")
    assert (tmp_path / "model.preprocessing.json").is_file()
    x = torch.from_numpy(run.inputs(table.x[rows]))
    model = torch.jit.load(str(path)) if fmt == "torchscript" else torch.export.load(str(path)).module()
    with torch.no_grad():
        got = model(x).numpy()
    assert np.abs(got - run.predict(table.x[rows])).max() < 1e-5


def test_export_defaults_to_the_run_folder_and_refuses_unknown_formats(runs):
    result = runs["digits"]
    cli = invoke("export", result.run_dir, "--format", "tflite")
    assert cli.exit_code == 2 and "--format is one of onnx, torchscript, pt2" in cli.stderr
    cli = invoke("export", result.run_dir, "--format", "pt2")
    assert cli.exit_code == 0, cli.output
    assert (result.run_dir / "export" / "model.pt2").is_file()
    assert (result.run_dir / "export" / "model.preprocessing.json").is_file()


@pytest.mark.slow
def test_commands_do_not_import_torch_for_help(tmp_path):
    code = ("import sys\nfrom typer.testing import CliRunner\nfrom dlcli.cli import app\n"
            "for cmd in ('eval', 'predict', 'export'):\n"
            "    r = CliRunner().invoke(app, [cmd, '--help'])\n    assert r.exit_code == 0, r.output\n"
            "assert 'torch' not in sys.modules and 'pytorch_lightning' not in sys.modules\n")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr


def test_a_model_the_exporter_cannot_handle_is_named(runs, tmp_path, monkeypatch):
    import dlcli.training.export as export_module

    def refuse(model, example, path):
        path.write_bytes(b"half")
        raise RuntimeError("unsupported operator aten::weird\nmore detail")

    monkeypatch.setattr(export_module, "_pt2", refuse)
    cli = invoke("export", runs["digits"].run_dir, "--format", "pt2", "--output", tmp_path / "m.pt2")
    assert cli.exit_code == 2, cli.output
    message = cli.stderr.replace("\n", " ")
    assert "model 'mlp' cannot be exported to pt2" in message and "aten::weird" in message
    assert "Try --format onnx, torchscript" in message and "Traceback" not in cli.output
    assert not (tmp_path / "m.pt2").exists()  # no half-written file left looking like an export


class _Payload:
    """Unpickling this would run a shell command that creates a file."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        import os

        return (os.system, (f"touch {self.marker}",))


@pytest.mark.parametrize("tamper", ["checkpoint", "yaml_tag", "target"])
@pytest.mark.parametrize("command", ["eval", "predict", "export"])
def test_hostile_run_folders_are_refused_and_nothing_runs(runs, tmp_path, tamper, command):
    import shutil

    import torch

    run_dir = tmp_path / "run"
    shutil.copytree(runs["digits"].run_dir, run_dir)
    marker = tmp_path / "pwned"
    if tamper == "checkpoint":
        torch.save({"state_dict": _Payload(marker)}, run_dir / "checkpoints" / "best.ckpt")
        expected = "best.ckpt was refused: it holds more than tensors"
    elif tamper == "yaml_tag":
        (run_dir / "config.yaml").write_text(f"data: !!python/object/apply:os.system ['touch {marker}']\n")
        expected = "'!!python/object/apply:os.system' is refused"
    else:
        text = (run_dir / "config.yaml").read_text()
        (run_dir / "config.yaml").write_text(text.replace("model:\n", "model:\n  _target_: os.system\n", 1))
        expected = "model._target_"
    np.savez(tmp_path / "x.npz", x=np.zeros((2, 1, 8, 8), dtype=np.float32))
    args = {"eval": [run_dir], "predict": [run_dir, tmp_path / "x.npz", "-o", tmp_path / "p.csv"],
            "export": [run_dir, "--format", "pt2"]}[command]
    cli = invoke(command, *args)
    assert cli.exit_code == 2, cli.output
    assert expected in cli.stderr.replace("\n", "") and "Traceback" not in cli.output
    assert not marker.exists()  # the payload never ran


@pytest.mark.parametrize(("package", "how"), [("onnx", "missing"), ("onnxscript", "missing"),
                                             ("onnxscript", "broken")])
def test_onnx_export_without_the_export_extra_names_the_package_and_the_install(runs, tmp_path, monkeypatch,
                                                                                package, how):
    if how == "missing":
        monkeypatch.setitem(sys.modules, package, None)  # `import onnx` raises ImportError, as when not installed
    else:  # installed and found, but its import fails: a dependency of its own is missing
        site = tmp_path / "site"
        (site / package).mkdir(parents=True)
        (site / package / "__init__.py").write_text("import dlcli_test_not_installed\n")
        monkeypatch.syspath_prepend(str(site))
        monkeypatch.delitem(sys.modules, package, raising=False)
    cli = invoke("export", runs["digits"].run_dir, "--format", "onnx", "--output", tmp_path / "out" / "m.onnx")
    assert cli.exit_code == 2, cli.output
    message = " ".join(cli.stderr.split())
    assert f"ONNX export needs the package '{package}'" in message
    assert 'pip install "dlcli[export]"' in message
    assert "cannot be exported" not in message and "Traceback" not in cli.output  # the model is not at fault
    assert not (tmp_path / "out").exists()  # refused before anything is written


@pytest.mark.slow
def test_onnx_is_checked_with_the_reference_evaluator_without_onnxruntime(runs, tmp_path, monkeypatch):
    pytest.importorskip("onnxscript", reason="ONNX export needs onnxscript (pip install 'dlcli[export]')")
    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # `import onnxruntime` raises ImportError
    cli = invoke("export", runs["regression"].run_dir, "--output", tmp_path / "m.onnx")
    assert cli.exit_code == 0, cli.output
    check = json.loads((tmp_path / "m.preprocessing.json").read_text())["check"]
    assert check["with"] == "onnx.reference" and check["max_abs_diff"] < 1e-4 * 400


@pytest.mark.slow
def test_a_reloaded_run_predicts_in_a_fresh_python(runs, tmp_path):
    code = ("import numpy as np, sys\nfrom dlcli.training.reload import load_run\n"
            f"p = load_run({str(runs['digits'].run_dir)!r}).predict(np.zeros((3, 1, 8, 8), dtype=np.float32))\n"
            "assert p.shape == (3, 10) and np.allclose(p.sum(1), 1, atol=1e-5), p\n")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-2000:]


@pytest.mark.parametrize(("content", "expected"), [
    (b"", "(it is empty)"),
    (b"hello, not a zip", "cannot read INPUT"),
    ("zero-d", "must be numeric with one row per input, got float64 of shape ()"),
])
def test_predict_names_a_bad_npz_input_with_exit_2(runs, tmp_path, content, expected):
    path = tmp_path / "bad.npz"
    if content == "zero-d":
        np.savez(path, x=np.array(3.0))
    else:
        path.write_bytes(content)
    cli = invoke("predict", runs["digits"].run_dir, path, "--output", tmp_path / "p.csv")
    assert cli.exit_code == 2, cli.output
    assert str(path) in " ".join(cli.stderr.split()) and expected in " ".join(cli.stderr.split())
    assert "Traceback" not in cli.output and not (tmp_path / "p.csv").exists()


def test_predict_refuses_an_output_name_it_would_not_write_as_named(runs, tmp_path):
    cli = invoke("predict", runs["digits"].run_dir, tmp_path / "x.npz", "--output", tmp_path / "p.xlsx")
    assert cli.exit_code == 2
    assert f"--output '{tmp_path / 'p.xlsx'}': predictions are written as CSV (.csv) or JSON (.json), not .xlsx" in \
        " ".join(cli.stderr.split())
    assert not (tmp_path / "p.xlsx").exists()
