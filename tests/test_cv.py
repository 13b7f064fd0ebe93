"""`dlcli cv`: K folds, each an ordinary run; the test split held out of every fold; mean ± std per metric."""

from __future__ import annotations

import json

import numpy as np
import pytest
from typer.testing import CliRunner

from dlcli.cli import app
from dlcli.data.splits import decode_membership
from dlcli.data.table import Table

runner = CliRunner()
FAST = ["trainer.enable_progress_bar=false", "trainer.accelerator=cpu", "threads=1", "trainer.max_epochs=3"]
# mean val/acc over the 5 iris folds (3 epochs, model=mlp): 0.833 / 0.842 / 0.833 / 0.817 at seeds 42 / 0 / 1 / 2;
# the floor leaves a margin of ~0.1 below the lowest
IRIS_VAL_ACC_FLOOR = 0.72


def cv(tmp_path, *args: str):
    result = runner.invoke(app, ["cv", *args, *FAST, f"output_dir={tmp_path / 'out'}"])
    return result


def runs(tmp_path) -> list[dict]:
    """Each run folder's summary, preprocessing and split rows (decoded), in fold order."""
    out = []
    for summary_path in sorted((tmp_path / "out").glob("*/summary.json")):
        run_dir = summary_path.parent
        summary = json.loads(summary_path.read_text())
        pre = json.loads((run_dir / "preprocessing.json").read_text())
        out.append({"summary": summary, "pre": pre, "rows": decode_membership(pre["split_indices"]),
                    "config": json.loads((run_dir / "config.json").read_text())})
    return sorted(out, key=lambda r: (r["summary"]["cv"]["repeat"], r["summary"]["cv"]["fold"]))


@pytest.fixture(scope="module")
def iris_cv(tmp_path_factory):
    tmp_path = tmp_path_factory.mktemp("iris_cv")
    result = cv(tmp_path, "--folds", "5", "--name", "iris5", "data=iris")
    return tmp_path, result


def test_iris_five_folds_write_five_runs_and_a_mean_std_table(iris_cv):
    tmp_path, result = iris_cv
    assert result.exit_code == 0, result.output
    folds = runs(tmp_path)
    assert len(folds) == 5
    assert [f["summary"]["cv"] for f in folds] == [
        {"id": "iris5", "fold": k, "folds": 5, "repeat": 0, "repeats": 1, "strategy": "stratified"} for k in range(5)]
    assert all(f["config"]["cv"]["fold"] == k and f["config"]["cv"]["id"] == "iris5" for k, f in enumerate(folds))
    for line in ("val/acc", "test/acc"):
        row = next(r for r in result.output.splitlines() if line in r and "±" in r)
        assert row.rstrip().endswith("5 │")  # n = 5 folds
    record = json.loads((tmp_path / "out" / "cv" / "iris5" / "cv.json").read_text())
    assert record["status"] == "completed" and len(record["runs"]) == 5
    accs = [f["summary"]["metrics"]["val/acc"] for f in folds]
    assert record["metrics"]["val/acc"]["mean"] == pytest.approx(np.mean(accs))
    assert record["metrics"]["val/acc"]["std"] == pytest.approx(np.std(accs, ddof=1))
    assert record["monitor"] == "val/acc" and record["score"]["n"] == 5
    assert record["metrics"]["val/acc"]["mean"] >= IRIS_VAL_ACC_FLOOR


def test_iris_folds_validate_on_disjoint_rows_covering_everything_but_the_test_rows(iris_cv):
    tmp_path, _ = iris_cv
    folds = runs(tmp_path)
    test = folds[0]["rows"]["test"]
    assert len(test) == 30  # iris' test_fraction 0.2 of 150, the same as `dlcli train data=iris` holds out
    vals = [f["rows"]["val"] for f in folds]
    for f in folds:
        assert np.array_equal(f["rows"]["test"], test)  # the same test rows in every fold
        assert not set(f["rows"]["train"]) & set(f["rows"]["val"])
        assert set(f["rows"]["train"]) | set(f["rows"]["val"]) | set(test) == set(range(150))
    every = np.concatenate(vals)
    assert len(every) == len(set(every.tolist()))  # disjoint
    assert set(every.tolist()) == set(range(150)) - set(test.tolist())  # covering the non-test rows
    assert "fold 2 of folds 0-4 (stratified, repeat 0" in folds[2]["pre"]["split_sources"]["val"]


def test_the_test_rows_are_those_an_ordinary_run_holds_out(make_config):
    from dlcli.data.prepare import prepare
    from dlcli.data.splits import load_table

    cfg = make_config("data=iris").config
    plain = prepare(load_table(cfg["data"], 42), cfg["data"], task="auto", loss_name="cross_entropy",
                    loss_tasks=("multiclass",), seed=42)
    folded = prepare(load_table(cfg["data"], 42), cfg["data"], task="auto", loss_name="cross_entropy",
                     loss_tasks=("multiclass",), seed=42,
                     cv={"folds": 5, "fold": 3, "repeat": 0, "repeats": 1, "strategy": "stratified"})
    assert np.array_equal(plain.rows["test"], folded.rows["test"])


def test_stratified_folds_keep_the_class_shares(iris_cv):
    tmp_path, _ = iris_cv
    for f in runs(tmp_path):
        counts = f["summary"]["split_sizes"]
        assert counts == {"train": 96, "val": 24, "test": 30}
    # iris' 3 classes are 40 each outside the stratified test split: 8 of each in every 24-row fold
    from sklearn.datasets import load_iris

    y = load_iris().target
    for f in runs(tmp_path):
        assert np.bincount(y[f["rows"]["val"]], minlength=3).tolist() == [8, 8, 8]


def test_runs_compare_groups_the_folds_by_cv_id_into_mean_std(iris_cv):
    tmp_path, _ = iris_cv
    result = runner.invoke(app, ["runs", "compare", "-o", str(tmp_path / "out"), "--cv", "iris5",
                                 "--group-by", "cv.id", "--format", "json"])
    assert result.exit_code == 0, result.output
    (row,) = json.loads(result.output)
    assert row["cv.id"] == "iris5" and row["n"] == 5 and row["val/acc"]["n"] == 5
    listed = runner.invoke(app, ["runs", "ls", "-o", str(tmp_path / "out"), "--cv", "iris5"])
    assert listed.exit_code == 0 and listed.output.count("completed") == 5
    none = runner.invoke(app, ["runs", "ls", "-o", str(tmp_path / "out"), "--cv", "other"])
    assert none.exit_code == 2 and "--cv 'other': no cross-validation under" in " ".join(none.output.split())
    assert "Its cv ids: iris5" in none.output


def test_repeats_draw_other_folds_over_the_same_test_rows(make_config):
    """The fold loop's repeats (`--repeats 2`) as the split sees them: each repeat's folds partition the same
    non-test rows, differently."""
    from dlcli.cv.split import fold_indices
    from dlcli.data.splits import load_table

    cfg = make_config("data=iris").config
    table = load_table(cfg["data"], 42)
    split = {(r, k): fold_indices(table.y, table, {"folds": 2, "fold": k, "repeat": r, "strategy": "stratified"},
                                  0.2, 42, stratify=True)[0] for r in (0, 1) for k in (0, 1)}
    test = split[0, 0]["test"]
    assert all(np.array_equal(s["test"], test) for s in split.values())
    for r in (0, 1):
        a, b = set(split[r, 0]["val"].tolist()), set(split[r, 1]["val"].tolist())
        assert not a & b and a | b == set(range(150)) - set(test.tolist())
    assert not np.array_equal(split[0, 0]["val"], split[1, 0]["val"])  # repeat 1 shuffles anew (seed + 1)


def grouped_csv(tmp_path, group_first: bool = False):
    rng = np.random.default_rng(0)
    lines = ["site,x1,x2,y" if group_first else "x1,x2,site,y"]
    for i in range(90):
        x1, x2 = rng.normal(size=2)
        lines.append(f"s{i % 9},{x1:.3f},{x2:.3f},{int(x1 > 0)}" if group_first else
                     f"{x1:.3f},{x2:.3f},s{i % 9},{int(x1 > 0)}")
    path = tmp_path / "grouped.csv"
    path.write_text("\n".join(lines) + "\n")
    return path


def test_group_strategy_keeps_each_group_on_one_side_and_out_of_the_features(tmp_path):
    path = grouped_csv(tmp_path)
    result = cv(tmp_path, "--folds", "3", "--strategy", "group", "--group", "site", "data=csv",
                f"data.path={path}", "data.target=y")
    assert result.exit_code == 0, result.output
    site = np.array([f"s{i % 9}" for i in range(90)])
    folds = runs(tmp_path)
    assert len(folds) == 3
    vals = []
    for f in folds:
        assert "site" not in f["pre"]["feature_names"]
        train, val = set(site[f["rows"]["train"]]), set(site[f["rows"]["val"]])
        assert not train & val
        vals.append(f["rows"]["val"])
    every = np.concatenate(vals)
    assert set(every.tolist()) == set(range(90)) - set(folds[0]["rows"]["test"].tolist())


@pytest.mark.parametrize("strategy", ["group", "timeseries"])
def test_eval_of_a_fold_scores_the_test_split_it_was_trained_beside(tmp_path, strategy):
    """`dlcli eval` rebuilds a fold's split as the fold made it: groups read as groups (not as a feature), and a
    time-series fold's training rows (not every row before its validation block)."""
    path = grouped_csv(tmp_path, group_first=True)
    how = ["--strategy", "group", "--group", "site"] if strategy == "group" else ["--strategy", "timeseries"]
    result = cv(tmp_path, "--folds", "3", *how, "data=csv", f"data.path={path}", "data.target=y")
    assert result.exit_code == 0, result.output
    for run_dir in sorted(p.parent for p in (tmp_path / "out").glob("*/summary.json")):
        scored = runner.invoke(app, ["eval", run_dir.name, "--output-dir", str(tmp_path / "out")])
        assert scored.exit_code == 0, scored.output
        trained = json.loads((run_dir / "summary.json").read_text())["metrics"]["test/acc"]
        (saved,) = (run_dir / "eval").glob("*.json")
        assert json.loads(saved.read_text())["metrics"]["test/acc"] == pytest.approx(trained, abs=1e-6)


def test_timeseries_folds_validate_on_later_rows_than_they_train_on():
    from dlcli.cv.split import fold_indices

    table = Table(np.arange(100, dtype=np.float32)[:, None], np.linspace(0, 1, 100))
    cv = {"folds": 4, "repeat": 0, "strategy": "timeseries"}
    seen = []
    for fold in range(4):
        idx, how = fold_indices(table.y, table, {**cv, "fold": fold}, 0.2, 0, stratify=False)
        assert idx["test"].tolist() == list(range(80, 100))  # the latest rows are the test split
        assert idx["train"].max() < idx["val"].min()
        seen += idx["val"].tolist()
    assert sorted(seen) == list(range(16, 80))  # the first chunk (16 rows) only ever trains


@pytest.mark.parametrize(("args", "says"), [
    (["--folds", "1", "data=iris"], "--folds"),
    (["--folds", "3", "--strategy", "group", "data=iris"], "cv.group"),
    (["--folds", "3", "--strategy", "group", "--group", "site", "data=iris"], "has no columns"),
    (["--folds", "3", "--name", "bad/id", "data=iris"], "cv.id"),
    (["--folds", "3", "data=iris", "data.val_path=x.csv"], "data.val_path"),
])
def test_bad_cv_input_exits_2_before_any_run_folder(tmp_path, args, says):
    result = cv(tmp_path, *args)
    assert result.exit_code == 2, result.output
    assert says in result.output
    assert not list((tmp_path / "out").glob("2*"))  # no run folder
    assert not list((tmp_path / "out").glob("cv/*"))


def test_unknown_group_column_exits_2_naming_it(tmp_path):
    path = grouped_csv(tmp_path)
    result = cv(tmp_path, "--folds", "3", "--strategy", "group", "--group", "sight", "data=csv",
                f"data.path={path}", "data.target=y")
    assert result.exit_code == 2, result.output
    assert "no column 'sight' (cv.group)" in result.output and "site" in result.output
    assert not list((tmp_path / "out").glob("2*")) and not list((tmp_path / "out").glob("cv/*"))


def test_a_failed_fold_stops_the_cv_and_cv_json_names_it(tmp_path, monkeypatch):
    import dlcli.training.train as training

    real, calls = training.train, []

    def flaky(cfg, *args, **kwargs):
        calls.append(cfg["cv"]["fold"])
        if cfg["cv"]["fold"] == 1:
            raise RuntimeError("disk on fire")
        return real(cfg, *args, **kwargs)

    monkeypatch.setattr(training, "train", flaky)
    result = cv(tmp_path, "--folds", "3", "--name", "broken", "data=iris")
    assert result.exit_code == 1
    assert calls == [0, 1]
    record = json.loads((tmp_path / "out" / "cv" / "broken" / "cv.json").read_text())
    assert record["status"] == "failed" and record["failed"]["fold"] == 1
    assert "disk on fire" in record["failed"]["error"]
    assert [r["fold"] for r in record["runs"]] == [0]


def test_ctrl_c_marks_the_cv_interrupted_and_exits_130(tmp_path, monkeypatch):
    import dlcli.training.train as training

    real = training.train

    def interrupted(cfg, *args, **kwargs):
        if cfg["cv"]["fold"] == 1:
            raise KeyboardInterrupt
        return real(cfg, *args, **kwargs)

    monkeypatch.setattr(training, "train", interrupted)
    result = cv(tmp_path, "--folds", "3", "--name", "stopped", "data=iris")
    assert result.exit_code == 130
    record = json.loads((tmp_path / "out" / "cv" / "stopped" / "cv.json").read_text())
    assert record["status"] == "interrupted" and record["failed"]["fold"] == 1
    assert record["metrics"]["val/acc"]["n"] == 1  # what the finished fold gave
