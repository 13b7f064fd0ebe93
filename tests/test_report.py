"""`dlcli eval --report` (tables equal to scikit-learn's, plots, report.md), `--tune-threshold` (saved, used by
predict and export's preprocessing file, refused where there is no threshold), and safer predictions (input
columns carried into the output, warnings for inputs outside the training range and for unknown words)."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
from sklearn.metrics import classification_report
from typer.testing import CliRunner

from dlcli.cli import app
from dlcli.config.compose import compose
from dlcli.training.reload import LoadedRun, load_run
from dlcli.training.train import train

FAST = ["trainer.enable_progress_bar=false", "trainer.accelerator=cpu", "threads=1"]  # as in conftest.py
runner = CliRunner()


def invoke(*args):
    return runner.invoke(app, [str(a) for a in args])


def _train(out: Path, *overrides: str):
    return train(compose([f"output_dir={out}", *FAST, *overrides]).config, progress=False)


def _imbalanced_csv(path: Path, n: int = 2000, seed: int = 0) -> None:
    """Two features; the positive class (about 1 row in 6) lies where x0 is large, with overlap."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 2))
    y = (x[:, 0] + 0.5 * rng.normal(size=n) > 1.3).astype(int)
    with path.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["x0", "x1", "label"])
        w.writerows([f"{a:.5f}", f"{b:.5f}", int(t)] for (a, b), t in zip(x, y, strict=True))


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """One finished run of each kind the report covers, trained once for the module."""
    out = tmp_path_factory.mktemp("outputs")
    table = tmp_path_factory.mktemp("data") / "imbalanced.csv"
    _imbalanced_csv(table)
    return {
        "digits": _train(out, "trainer.max_epochs=3", "model.hidden=[32]"),
        "regression": _train(out, "trainer.max_epochs=3", "data=diabetes", "loss=mse", "model.hidden=[16]"),
        # pos_weight=8 makes every positive count 8 times: the probabilities are pushed up, so the threshold of
        # the best F1 lies far above 0.5
        "binary": _train(out, "trainer.max_epochs=15", "data=csv", f"data.path={table}", "data.target=label",
                         "loss=bce", "loss.pos_weight=8", "model.hidden=[16]"),
        "multilabel": _train(out, "trainer.max_epochs=5", "data=multilabel", "loss=bce", "model.hidden=[32]"),
        "text": _train(out, "trainer.max_epochs=2", "experiment=text_gru", "data.n_samples=300", "data.max_length=8",
                       "model.layers=[{embedding:{dim:8}},{gru:{units:8}},{dense:{}}]"),
    }


# ---------------------------------------------------------------------------------------------- report


def _test_predictions(run_dir: Path):
    """The run's test split rebuilt, and the reloaded model's predictions for it, as the report gets them."""
    from dlcli.training.evaluate import rebuilt_test_split

    run = load_run(str(run_dir))
    prepared = rebuilt_test_split(run, run.config, reuse=True)
    x, y = prepared.splits["test"]
    import torch

    module = run.module()
    with torch.no_grad():
        preds = module.predictions(module(torch.from_numpy(x)), torch.from_numpy(x)).numpy()
    return run, preds, y, prepared.rows["test"]


def test_report_on_multiclass_run_matches_sklearn_and_writes_plots_and_model_card(runs):
    run_dir = runs["digits"].run_dir
    cli = invoke("eval", run_dir, "--report")
    assert cli.exit_code == 0, cli.output
    report = run_dir / "report"
    run, preds, y, rows = _test_predictions(run_dir)
    expected = classification_report(y, preds.argmax(1), labels=list(range(10)), target_names=run.classes,
                                      output_dict=True, zero_division=0)
    saved = json.loads((report / "per_class.json").read_text())
    assert set(saved) == set(expected)
    for key, row in expected.items():
        if isinstance(row, dict):
            assert saved[key] == pytest.approx(row, abs=1e-12), key
    with (report / "per_class.csv").open() as f:
        table = {r["class"]: r for r in csv.DictReader(f)}
    assert float(table["3"]["f1-score"]) == pytest.approx(expected["3"]["f1-score"])
    assert int(float(table["3"]["support"])) == expected["3"]["support"]
    for png in ("roc.png", "pr.png", "reliability.png", "worst.png"):
        assert (report / png).stat().st_size > 5000, png  # a drawn picture, not an empty canvas
    md = (report / "report.md").read_text()
    for text in ("## Data and splits", "## Configuration", "`model.hidden` | [256] | [32]", "test/acc", "## Per class",
                 "## Most confused", "![ROC](roc.png)", "![reliability diagram](reliability.png)", "ECE",
                 "![worst-predicted samples](worst.png)", "## Versions", "scikit-learn"):
        assert text in md, text
    numbers = json.loads((report / "report.json").read_text())
    # the worst samples are the rows whose true class got the lowest probability
    p_true = preds[np.arange(len(y)), y]
    assert numbers["worst_rows"][0] == int(rows[int(np.argmin(p_true))])
    weakest = min((c for c in run.classes if expected[c]["support"]), key=lambda c: expected[c]["f1-score"])
    assert f"weakest class: {weakest} (F1 {expected[weakest]['f1-score']:.4f}" in cli.stdout
    assert f"expected calibration error: {numbers['ece']:.4f}" in cli.stdout and "report.md" in cli.stdout
    # the ECE torchmetrics gives is the one the reliability diagram's bins give
    from dlcli.training.report import calibration

    ece, (conf, acc, counts, _) = calibration("argmax", preds, y)
    assert ece == pytest.approx(numbers["ece"], abs=1e-6)
    assert float((counts / counts.sum() * np.abs(acc - conf)).sum()) == pytest.approx(ece, abs=1e-5)
    shown = invoke("runs", "show", run_dir)
    assert f"report: {report / 'report.md'}" in shown.stdout


def test_report_on_regression_run_writes_its_plots_and_error_by_range(runs):
    run_dir = runs["regression"].run_dir
    cli = invoke("eval", run_dir, "--report")
    assert cli.exit_code == 0, cli.output
    report = run_dir / "report"
    for png in ("predicted_vs_actual.png", "residuals.png"):
        assert (report / png).stat().st_size > 5000, png
    assert not (report / "roc.png").exists()
    run, preds, y, _ = _test_predictions(run_dir)
    with (report / "error_by_range.csv").open() as f:
        bins = list(csv.DictReader(f))
    assert len(bins) == 5 and sum(int(b["samples"]) for b in bins) == len(y)
    # the bins together give the overall mean absolute error, and the run's own test MAE
    mae = sum(int(b["samples"]) * float(b["mae"]) for b in bins) / len(y)
    assert mae == pytest.approx(float(np.abs(preds - y).mean()), rel=1e-5)
    assert mae == pytest.approx(runs["regression"].metrics["test/mae"], rel=1e-4)
    md = (report / "report.md").read_text()
    for text in ("## Error by target range", "![predicted against actual](predicted_vs_actual.png)", "test/mae",
                 "`data=diabetes` (default digits)"):
        assert text in md, text
    assert "largest error in target range" in cli.stdout


@pytest.mark.slow
def test_report_on_binary_run_decides_with_the_threshold(runs, tmp_path):
    run_dir = runs["binary"].run_dir
    (run_dir / "threshold.json").unlink(missing_ok=True)
    cli = invoke("eval", run_dir, "--report")
    assert cli.exit_code == 0, cli.output
    run, preds, y, _ = _test_predictions(run_dir)
    expected = classification_report(y.astype(int), (preds > 0.5).astype(int), labels=[0, 1],
                                      target_names=run.classes, output_dict=True, zero_division=0)
    saved = json.loads((run_dir / "report" / "per_class.json").read_text())
    assert saved[run.classes[1]] == pytest.approx(expected[run.classes[1]], abs=1e-12)
    assert (run_dir / "report" / "roc.png").is_file() and "threshold 0.5000 (the default)" in \
        (run_dir / "report" / "report.md").read_text()


@pytest.mark.slow
def test_multilabel_thresholds_are_tuned_per_label_and_the_report_decides_with_them(runs):
    run_dir = runs["multilabel"].run_dir
    cli = invoke("eval", run_dir, "--tune-threshold", "f1", "--report")
    assert cli.exit_code == 0, cli.output
    saved = json.loads((run_dir / "threshold.json").read_text())
    run, preds, y, _ = _test_predictions(run_dir)
    assert isinstance(saved["threshold"], list) and len(saved["threshold"]) == len(run.classes) == 5
    assert run.threshold == pytest.approx(saved["threshold"])
    assert saved["validation_after"]["f1"] >= saved["validation_before"]["f1"]
    decided = (preds > np.array(saved["threshold"])).astype(int)
    expected = classification_report(y.astype(int), decided, labels=list(range(5)), target_names=run.classes,
                                      output_dict=True, zero_division=0)
    table = json.loads((run_dir / "report" / "per_class.json").read_text())
    for name in run.classes:
        assert table[name] == pytest.approx(expected[name], abs=1e-12), name
    assert (run_dir / "report" / "reliability.png").is_file() and "pooled" in \
        (run_dir / "report" / "report.md").read_text()


@pytest.mark.slow
def test_text_report_quotes_the_worst_predicted_texts_of_their_rows(runs):
    run_dir = runs["text"].run_dir
    cli = invoke("eval", run_dir, "--report")
    assert cli.exit_code == 0, cli.output
    numbers = json.loads((run_dir / "report" / "report.json").read_text())
    from dlcli.registry import DATASETS

    cfg = load_run(str(run_dir)).config
    table = DATASETS.get(cfg["data"]["name"]).build({"n_samples": 300, "max_length": 8}, seed=cfg["seed"])
    md = (run_dir / "report" / "report.md").read_text()
    for row in numbers["worst_rows"][:3]:
        text = " ".join(str(table.x[row]).split())
        assert f"| {row} | " in md and text[:60] in md, row
    assert not (run_dir / "report" / "worst.png").exists()  # no contact sheet for texts


def test_report_is_refused_for_tasks_it_does_not_cover(tmp_path):
    (tmp_path / "run").mkdir()
    run = LoadedRun(tmp_path / "run", {}, {"task": "reconstruction"})
    from dlcli.errors import DlcliError
    from dlcli.training.report import check_reportable

    with pytest.raises(DlcliError, match="--report covers classification and regression runs"):
        check_reportable(run)


# ------------------------------------------------------------------------------------------- threshold


def _grid_csv(path: Path, n: int = 400) -> None:
    """Inputs along x0 from -3 to 4 (x1 = 0): the model's probability sweeps from low to high."""
    with path.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["x0", "x1"])
        w.writerows([f"{v:.5f}", "0"] for v in np.linspace(-3, 4, n))


def test_tuned_threshold_changes_predictions_between_it_and_one_half(runs, tmp_path):
    run_dir = runs["binary"].run_dir
    (run_dir / "threshold.json").unlink(missing_ok=True)
    grid = tmp_path / "grid.csv"
    _grid_csv(grid)
    before = invoke("predict", run_dir, grid, "--output", tmp_path / "before.csv")
    assert before.exit_code == 0, before.output

    cli = invoke("eval", run_dir, "--tune-threshold", "f1")
    assert cli.exit_code == 0, cli.output
    saved = json.loads((run_dir / "threshold.json").read_text())
    t = saved["threshold"]
    assert saved["criterion"] == "f1" and saved["split"] == "val"
    assert t > 0.65, t  # pos_weight=8 inflates the probabilities: the best F1 lies far above 0.5
    after_f1 = saved["validation_after"]["f1"]
    assert after_f1 >= saved["validation_before"]["f1"]
    assert f"threshold (f1 on {saved['rows']} validation rows): 0.5000 -> {t:.4f}" in cli.stdout
    assert f"validation f1: {saved['validation_before']['f1']:.4f} -> {after_f1:.4f}" in cli.stdout
    assert f"threshold: {t:.4f} (tuned for f1" in invoke("runs", "show", run_dir).stdout

    after = invoke("predict", run_dir, grid, "--output", tmp_path / "after.csv")
    assert after.exit_code == 0, after.output
    assert "decided with the threshold" not in before.stdout
    assert f"decided with the threshold `dlcli eval --tune-threshold` saved (threshold.json): " \
           f"{load_run(str(run_dir)).classes[1]} when prob_{load_run(str(run_dir)).classes[1]} is above {t:.4f}, " \
           "not 0.5" in " ".join(after.stdout.split())
    rows_before = list(csv.DictReader((tmp_path / "before.csv").open()))
    rows_after = list(csv.DictReader((tmp_path / "after.csv").open()))
    negative, positive = load_run(str(run_dir)).classes
    p = np.array([float(r[f"prob_{positive}"]) for r in rows_after])
    assert np.allclose(p, [float(r[f"prob_{positive}"]) for r in rows_before])  # the same probabilities
    between = (p > 0.5) & (p <= t)
    assert between.sum() >= 5  # the grid crosses the band between the two thresholds
    for prob, b, a in zip(p, rows_before, rows_after, strict=True):
        assert b["prediction"] == (positive if prob > 0.5 else negative)
        assert a["prediction"] == (positive if prob > t else negative)
    assert sum(b["prediction"] != a["prediction"] for b, a in zip(rows_before, rows_after, strict=True)) \
        == between.sum()

    # the preprocessing file `dlcli export` writes carries it
    exported = invoke("export", run_dir, "--format", "torchscript", "--output", tmp_path / "model.pt")
    assert exported.exit_code == 0, exported.output
    assert json.loads((tmp_path / "model.preprocessing.json").read_text())["threshold"] == pytest.approx(t)

    # precision@R: the lowest threshold whose validation precision reaches R
    cli = invoke("eval", run_dir, "--tune-threshold", "precision@0.8")
    assert cli.exit_code == 0, cli.output
    saved = json.loads((run_dir / "threshold.json").read_text())
    assert saved["validation_after"]["precision"] >= 0.8
    (run_dir / "threshold.json").unlink()


def test_pick_criteria_on_known_scores():
    from dlcli.training.threshold import pick, scores

    p = np.array([0.95, 0.9, 0.8, 0.7, 0.6, 0.4, 0.3, 0.2, 0.1, 0.05])
    y = np.array([1, 1, 0, 1, 0, 0, 1, 0, 0, 0])
    t, _ = pick(p, y, "f1")
    assert t == pytest.approx(0.65)  # top 4 (3 of them positive): F1 6/8; halfway between 0.7 and 0.6
    assert scores(p[:, None], y[:, None], np.array([t]))["f1"] == pytest.approx(0.75)
    t, _ = pick(p, y, "precision", 1.0)
    assert t == pytest.approx(0.85)  # the lowest threshold with precision 1: the top two
    t, _ = pick(p, y, "youden")
    assert t == pytest.approx(0.65)  # tpr 3/4 - fpr 1/6 is the largest J
    assert pick(p, np.zeros(10, dtype=int), "f1")[1] == "the validation split has only negative samples"


@pytest.mark.parametrize("criterion", ["f1", "precision@2", "recall"])
def test_threshold_is_refused_on_a_multiclass_run(runs, criterion):
    cli = invoke("eval", runs["digits"].run_dir, "--tune-threshold", criterion)
    assert cli.exit_code == 2
    assert "--tune-threshold applies to binary and multilabel runs" in cli.output
    assert "multiclass run" in cli.output and not (runs["digits"].run_dir / "threshold.json").exists()


def test_bad_criterion_exits_2_naming_the_choices(runs):
    cli = invoke("eval", runs["binary"].run_dir, "--tune-threshold", "precision@2")
    assert cli.exit_code == 2 and "f1, youden or precision@R with 0 < R <= 1" in cli.output


def test_multilabel_thresholds_decide_per_label():
    from dlcli.tasks import get_task

    _, rows = get_task("multilabel").tabulate([0, 1], np.array([[0.3, 0.6], [0.7, 0.2]]), ["a", "b"],
                                              threshold=[0.25, 0.65])
    assert [r["prediction"] for r in rows] == ["a", "a"]


# -------------------------------------------------------------------------------------- safer predictions


def test_predict_carries_csv_columns_by_default_and_drops_them_when_asked(runs, tmp_path):
    run_dir = runs["binary"].run_dir
    path = tmp_path / "new.csv"
    path.write_text("note,x1,prediction,x0\nfirst,0.1,kept,2.5\n\"a, b\",-0.3,kept,-1.0\n")
    cli = invoke("predict", run_dir, path, "--output", tmp_path / "kept.csv")
    assert cli.exit_code == 0, cli.output
    with (tmp_path / "kept.csv").open() as f:
        reader = csv.DictReader(f)
        rows = list(reader)
    classes = load_run(str(run_dir)).classes
    assert reader.fieldnames == ["id", "note", "x1", "input_prediction", "x0", "prediction",
                                 *(f"prob_{c}" for c in classes)]
    assert [r["note"] for r in rows] == ["first", "a, b"] and [r["x0"] for r in rows] == ["2.5", "-1.0"]
    assert [r["input_prediction"] for r in rows] == ["kept", "kept"] and rows[0]["prediction"] in classes
    assert "note" not in cli.stdout  # the printed table keeps to the predictions
    cli = invoke("predict", run_dir, path, "--output", tmp_path / "dropped.json", "--no-keep-columns")
    assert cli.exit_code == 0, cli.output
    assert list(json.loads((tmp_path / "dropped.json").read_text())[0]) == ["id", "prediction",
                                                                           *(f"prob_{c}" for c in classes)]


def test_keep_columns_on_npz_input_is_refused(runs, tmp_path):
    np.savez(tmp_path / "x.npz", x=np.zeros((2, 64)))
    cli = invoke("predict", runs["digits"].run_dir, tmp_path / "x.npz", "--keep-columns", "-o", tmp_path / "p.csv")
    assert cli.exit_code == 2 and "--keep-columns carries a CSV's columns" in cli.output


def test_training_range_is_saved_and_inputs_far_outside_it_are_warned_about(runs, tmp_path):
    run_dir = runs["digits"].run_dir
    saved = json.loads((run_dir / "preprocessing.json").read_text())["input_range"]
    assert saved == {"names": ["channel 0"], "min": [0.0], "max": [16.0]}  # digits: pixels 0..16
    from sklearn.datasets import load_digits

    x = load_digits().images[:3]  # (3, 8, 8) at 0..16
    np.savez(tmp_path / "ok.npz", x=x)
    cli = invoke("predict", run_dir, tmp_path / "ok.npz", "-o", tmp_path / "ok.csv")
    assert cli.exit_code == 0 and "warning" not in cli.output
    np.savez(tmp_path / "png_scale.npz", x=x * 255 / 16)  # as PNG digits would come: 0..255
    cli = invoke("predict", run_dir, tmp_path / "png_scale.npz", "-o", tmp_path / "far.csv")
    assert cli.exit_code == 0, cli.output
    assert "warning: inputs fall far outside the training range in 1 of 1 channels: channel 0: 0..255 here " \
           "(3 of 3 samples far outside), 0..16 in training" in " ".join(cli.output.split())


def test_table_features_far_outside_are_named(runs, tmp_path):
    path = tmp_path / "far.csv"
    path.write_text("x0,x1\n0.1,0.2\n0.3,500\n")
    cli = invoke("predict", runs["binary"].run_dir, path, "-o", tmp_path / "p.csv")
    assert cli.exit_code == 0, cli.output
    text = " ".join(cli.output.split())
    assert "inputs fall far outside the training range in 1 of 2 features: x1: 0.2..500 here (1 of 2 samples " \
           "far outside)" in text


def test_old_runs_without_a_saved_range_are_not_checked():
    from dlcli.data.drift import range_warnings

    assert range_warnings(np.full((2, 3), 1e9), {"scaling": {"method": "none"}}) == []


def test_texts_of_mostly_unknown_words_are_warned_about(tmp_path):
    pre = {"task": "binary", "text": {"level": "word", "lowercase": True, "max_length": 8},
           "vocab": ["<pad>", "<unk>", "good", "bad", "film", "the"], "input_shape": [8]}
    run = LoadedRun(tmp_path, {}, pre)
    with pytest.warns(UserWarning) as caught:
        ids = run.inputs(["the good film", "zyx qwv the plorp", "bad"])
    assert ids[1].tolist()[:4] == [1, 1, 5, 1]
    message = str(caught[0].message)
    assert message.startswith("1 of 3 texts are mostly words the run's vocabulary does not know "
                              "(text 2: 3 of 4 tokens unknown; vocabulary of 4 tokens)")
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        run.inputs(["the good film", "bad film"])  # known words: no warning


def test_predict_warns_about_a_text_of_unknown_words(runs, tmp_path):
    path = tmp_path / "texts.txt"
    path.write_text("the acting was excellent .\nzorblax quindle frumious snark blorp\n")
    cli = invoke("predict", runs["text"].run_dir, path, "-o", tmp_path / "p.csv", "--keep-columns")
    assert cli.exit_code == 0, cli.output
    text = " ".join(cli.output.split())
    assert "warning: 1 of 2 texts are mostly words the run's vocabulary does not know (text 2: 5 of 5 tokens " \
           "unknown" in text
    rows = list(csv.DictReader((tmp_path / "p.csv").open()))
    assert [r["id"] for r in rows] == ["1", "2"] and rows[1]["text"] == "zorblax quindle frumious snark blorp"


@pytest.mark.slow
def test_threshold_refusal_exits_2_from_a_real_process(runs):
    import subprocess
    import sys

    proc = subprocess.run([sys.executable, "-m", "dlcli", "eval", str(runs["digits"].run_dir), "--tune-threshold",
                           "f1"], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 2, proc.stderr
    assert "--tune-threshold applies to binary and multilabel runs" in " ".join(proc.stderr.split())
