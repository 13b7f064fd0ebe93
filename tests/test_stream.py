"""data.cache: image folders over a memory budget stream from disk, with the same samples as in memory."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from dlcli.config.compose import compose
from dlcli.config.validate import ConfigError, validate
from dlcli.data.images import image_folder
from dlcli.data.prepare import fit_scaler, prepare
from dlcli.data.stream import ImageFiles, budget_bytes, fit_streamed, resolve_workers
from dlcli.errors import DataError

DATA_CFG = {"name": "image_folder", "val_fraction": 0.25, "test_fraction": 0.25, "stratify": True,
            "scaling": "standard", "target_scaling": "standard", "num_workers": 0}


def make_images(root, n=24, shape=(10, 12), colour=True, seed=0):
    """Two classes, dark and bright, of random noise images (RGB, or grey saved as RGB)."""
    rng = np.random.default_rng(seed)
    for cls, lo, hi in (("bright", 150, 255), ("dark", 0, 100)):
        (root / cls).mkdir(parents=True)
        for i in range(n // 2):
            px = rng.integers(lo, hi, (*shape, 3) if colour else shape, dtype=np.uint8)
            if not colour:
                px = np.repeat(px[..., None], 3, axis=2)  # grey pixels, RGB-encoded
            Image.fromarray(px, "RGB").save(root / cls / f"{i}.png")
    return root


def prepared(table, **cfg):
    return prepare(table, {**DATA_CFG, **cfg}, task="auto", loss_name="cross_entropy",
                   loss_tasks=("multiclass", "binary"), seed=0)


def test_auto_cache_keeps_what_fits_and_streams_what_does_not(tmp_path):
    root = make_images(tmp_path / "im", n=8, shape=(6, 6))  # 8 x 3 x 6 x 6 x 4 bytes = 3456 bytes decoded
    fits = image_folder(seed=0, root=str(root), size=[6, 6], cache_budget_mib=3456 / 2**20)
    assert isinstance(fits.x, np.ndarray) and fits.files is None
    over = image_folder(seed=0, root=str(root), size=[6, 6], cache_budget_mib=3455 / 2**20)
    assert over.x is None and isinstance(over.files, ImageFiles)
    assert over.files.reason == "8 images decode to 0.0 MiB, over the 0.0 MiB budget (data.cache_budget_mib)"
    assert over.files.shape == (8, 3, 6, 6) and over.files.color == "rgb"
    assert over.y.tolist() == fits.y.tolist() and over.class_names == fits.class_names == ["bright", "dark"]
    assert [p.split("/")[-2:] for p in over.files.paths[:2]] == [["bright", "0.png"], ["bright", "1.png"]]
    memory = image_folder(seed=0, root=str(root), size=[6, 6], cache="memory", cache_budget_mib=1e-6)
    assert isinstance(memory.x, np.ndarray)  # memory ignores the budget
    forced = image_folder(seed=0, root=str(root), size=[6, 6], cache="none")  # none streams whatever the size
    assert forced.x is None and forced.files.reason == "data.cache=none"
    assert budget_bytes(None) > 0 and budget_bytes(2) == 2 * 2**20
    with pytest.raises(DataError, match=r"data.cache_budget_mib must be positive .* got -1"):
        image_folder(seed=0, root=str(root), size=[6, 6], cache_budget_mib=-1)
    with pytest.raises(DataError, match=r"data.stats_sample must be at least 1 .* got 0"):
        image_folder(seed=0, root=str(root), size=[6, 6], cache="none", stats_sample=0)


def test_streamed_colour_auto_is_decided_from_a_sample(tmp_path):
    grey = make_images(tmp_path / "grey", n=6, shape=(5, 5), colour=False)
    assert image_folder(seed=0, root=str(grey), size=[5, 5], cache="none").files.shape[1] == 1
    Image.new("RGB", (5, 5), (255, 0, 0)).save(grey / "dark" / "red.png")  # one colour image of 7
    assert image_folder(seed=0, root=str(grey), size=[5, 5], cache="none").files.shape[1] == 3  # all sampled
    assert image_folder(seed=0, root=str(grey), size=[5, 5], cache="memory").x.shape[1] == 3


@pytest.mark.parametrize("extra", [{}, {"scaling": "channel"}, {"scaling": "minmax"}, {"scaling": "symmetric"},
                                   {"scaling": "channel", "channel_mean": [1.0, 2.0, 3.0]},
                                   {"channels": 1, "resize": [4, 5]}])
def test_streamed_splits_and_samples_are_the_in_memory_ones(tmp_path, extra):
    root = make_images(tmp_path / "im")
    tables = [image_folder(seed=0, root=str(root), size=[8, 8], cache=cache, stats_sample=None)
              for cache in ("memory", "none")]
    memory, streamed = (prepared(t, **extra) for t in tables)
    assert streamed.in_shape == memory.in_shape and streamed.preprocessing["input_shape"] == list(memory.in_shape)
    assert streamed.preprocessing["split_sizes"] == memory.preprocessing["split_sizes"]
    assert streamed.preprocessing["scaling_sample"] == memory.preprocessing["split_sizes"]["train"] == 12
    assert streamed.preprocessing.get("image") == memory.preprocessing.get("image")
    got, want = streamed.preprocessing["scaling"], memory.preprocessing["scaling"]
    assert got.keys() == want.keys() and got["method"] == want["method"]
    for key in set(got) - {"method", "axis"}:
        np.testing.assert_allclose(got[key], want[key], rtol=1e-12)
    for name, (x, y) in memory.splits.items():
        files, labels = streamed.splits[name]
        assert isinstance(files, ImageFiles) and labels.tolist() == y.tolist()  # same rows, same order
        decoded = np.stack([files.load(i) for i in range(len(files))])
        np.testing.assert_allclose(decoded, x, rtol=1e-6, atol=1e-6)


def test_statistics_from_a_seeded_sample_of_the_train_images(tmp_path):
    root = make_images(tmp_path / "im", n=40)
    files = image_folder(seed=3, root=str(root), size=[8, 8], cache="none", stats_sample=5).files
    stats, used = fit_streamed(files, "standard")
    again, _ = fit_streamed(files, "standard")
    assert used == 5 and stats == again  # the seed draws the same images
    pick = np.sort(np.random.default_rng(3).choice(40, 5, replace=False))
    want = fit_scaler(np.stack([files.raw(i)[0] for i in pick]), "standard")
    np.testing.assert_allclose(stats["mean"], want["mean"], rtol=1e-12)
    np.testing.assert_allclose(stats["std"], want["std"], rtol=1e-9)
    with pytest.raises(DataError, match="data.channel_std has 2 values, but the inputs have 3 channels"):
        fit_streamed(files, "channel", [0.0, 0.0, 0.0], [1.0, 1.0])


def test_num_workers_auto_is_zero_in_memory_and_a_few_when_streamed():
    assert resolve_workers("auto", streamed=False) == 0 and resolve_workers(3, streamed=True) == 3
    assert 0 <= resolve_workers("auto", streamed=True) <= 4


def test_cache_key_is_checked_by_the_config(tmp_path):
    with pytest.raises(ConfigError, match=r"data.cache.*one of 'auto', 'memory', 'none'"):
        validate(compose([f"output_dir={tmp_path}", "data=image_folder", f"data.root={tmp_path}",
                          "data.cache=disk"]).config)


@pytest.mark.slow
def test_streamed_run_trains_tests_and_evaluates_as_in_memory(tmp_path):
    from dlcli.training.evaluate import evaluate
    from dlcli.training.reload import load_run
    from dlcli.training.train import train

    root = make_images(tmp_path / "im", n=48, shape=(12, 12))
    runs = {}
    for cache in ("memory", "none"):
        c = compose([f"output_dir={tmp_path / 'o'}", "data=image_folder", f"data.root={root}", "data.size=[8,8]",
                     # scaling=standard: its statistics come out bit-equal both ways (channel's do not: summed in
                     # another order when streamed); tiebreak=null: the first best epoch, as val/loss may differ in
                     # its last bits between the two ways and pick another of two epochs tied on val/acc
                     f"data.cache={cache}", "data.stats_sample=null", "data.batch_size=8", "model.hidden=[16]",
                     "data.scaling=standard", "callbacks.model_checkpoint.tiebreak=null",
                     "trainer.max_epochs=2", "trainer.enable_progress_bar=false", "trainer.accelerator=cpu",
                     "threads=1"])
        runs[cache] = train(c.config, c.overrides)
    memory, streamed = runs["memory"], runs["none"]
    assert memory.summary["data_path"] == "memory" and streamed.summary["data_path"] == "streamed"
    saved = json.loads((streamed.run_dir / "summary.json").read_text())
    assert saved["data_path"] == "streamed"
    assert memory.metrics["test/acc"] >= 0.9
    assert memory.metrics.keys() == streamed.metrics.keys()
    for key, value in memory.metrics.items():  # same split, same statistics, same shuffles: the same run
        assert streamed.metrics[key] == pytest.approx(value, abs=1e-5), key
    pre = json.loads((streamed.run_dir / "preprocessing.json").read_text())
    assert pre["scaling"]["method"] == "standard" and pre["input_shape"] == [3, 8, 8]
    result = evaluate(load_run(str(streamed.run_dir)))  # rebuilds the test split, streamed again
    assert result.rows == streamed.summary["split_sizes"]["test"]
    assert result.metrics["test/acc"] == pytest.approx(streamed.metrics["test/acc"])
    in_memory = evaluate(load_run(str(streamed.run_dir)), ["data.cache=memory"])  # still the run's test split
    assert in_memory.rows == result.rows and in_memory.metrics == pytest.approx(result.metrics, abs=1e-6)
    every = evaluate(load_run(str(streamed.run_dir)), split="all")
    assert every.rows == 48 and every.metrics["test/acc"] >= 0.9


@pytest.mark.slow
def test_a_folder_three_times_the_budget_trains_below_its_decoded_size(tmp_path):
    """1400 tiny PNGs resized to 256 x 256 RGB decode to 1.03 GiB of float32; the budget is 256 MiB."""
    root = tmp_path / "im"
    rng = np.random.default_rng(0)
    for cls, colour in (("red", (200, 30, 30)), ("blue", (30, 30, 200))):
        (root / cls).mkdir(parents=True)
        for i in range(700):
            px = np.clip(np.array(colour) + rng.integers(-30, 30, (16, 16, 3)), 0, 255).astype(np.uint8)
            Image.fromarray(px, "RGB").save(root / cls / f"{i}.png")
    decoded_mib = 1400 * 3 * 256 * 256 * 4 / 2**20
    budget = 256
    assert decoded_mib >= 3 * budget
    out = tmp_path / "o"
    proc = subprocess.run(
        [sys.executable, "-m", "dlcli", "train", "data=image_folder", f"data.root={root}", "data.size=[256,256]",
         f"data.cache_budget_mib={budget}", "data.stats_sample=64", "data.num_workers=0", "data.batch_size=16",
         "model=mlp", "model.hidden=[4]", "trainer.max_epochs=1", "trainer.limit_train_batches=8",
         "trainer.limit_val_batches=2", "trainer.limit_test_batches=2", "trainer.accelerator=cpu", "threads=1",
         "trainer.enable_progress_bar=false", f"output_dir={out}"],
        capture_output=True, text=True, cwd=tmp_path, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "data: streamed from disk, decoded per batch in the main process (1400 images decode to 1.03 GiB, over " \
        "the 256.0 MiB budget" in " ".join(proc.stderr.split())  # the header, unwrapped
    summary = json.loads(next(out.glob("*/summary.json")).read_text())
    assert summary["status"] == "completed" and summary["data_path"] == "streamed" and summary["epochs"] == 1
    # every image decoded in this process (num_workers=0), and still well below the decoded size
    assert summary["peak_rss_mib"] < decoded_mib, summary["peak_rss_mib"]


@pytest.mark.slow
def test_peak_memory_is_the_run_process_own_not_its_parent():
    """ru_maxrss survives exec: a run started from a pytest process holding 600 MiB would report 600 MiB."""
    held = bytearray(600 * 2**20)
    held[::4096] = b"\x01" * len(held[::4096])  # touch every page so it is resident
    code = "from dlcli.training.train import _peak_rss_mib; print(_peak_rss_mib())"
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    peak = float(proc.stdout.strip())
    assert 10 < peak < 500, peak  # the child imports torch (a few hundred MiB), never the parent's 600 MiB
    del held
