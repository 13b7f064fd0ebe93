"""Image datasets from local files: IDX (MNIST), class folders, CIFAR-10 binary; all from tiny files made here."""

from __future__ import annotations

import gzip

import numpy as np
import pytest
from PIL import Image

from dlcli.config.compose import compose
from dlcli.data.images import cifar10, idx, image_folder
from dlcli.errors import DataError

IDX_NAMES = {"train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
             "t10k": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")}


def idx_bytes(array: np.ndarray) -> bytes:
    """An IDX file of unsigned bytes: magic, big-endian dims, then the data."""
    magic = {3: 2051, 1: 2049}[array.ndim]
    return b"".join(int(v).to_bytes(4, "big") for v in (magic, *array.shape)) + array.astype(np.uint8).tobytes()


def write_idx(folder, n_train=5, n_test=3, gz=(False, False, False, False)):
    """Four IDX files with distinct images (image i is filled with i); returns (images, labels)."""
    folder.mkdir(exist_ok=True)
    n = n_train + n_test
    images = np.broadcast_to(np.arange(n, dtype=np.uint8)[:, None, None], (n, 28, 28))
    labels = (np.arange(n) * 3 % 10).astype(np.uint8)
    arrays = [images[:n_train], labels[:n_train], images[n_train:], labels[n_train:]]
    names = [*IDX_NAMES["train"], *IDX_NAMES["t10k"]]
    for name, array, zipped in zip(names, arrays, gz, strict=True):
        data = idx_bytes(array)
        if zipped:
            (folder / f"{name}.gz").write_bytes(gzip.compress(data))
        else:
            (folder / name).write_bytes(data)
    return images, labels


@pytest.mark.parametrize("gz", [(False,) * 4, (True,) * 4, (True, False, False, True)], ids=["raw", "gz", "mixed"])
def test_idx_reads_raw_and_gzipped_train_then_test(tmp_path, gz):
    images, labels = write_idx(tmp_path / "m", gz=gz)
    table = idx(seed=0, root=str(tmp_path / "m"))
    assert table.x.shape == (8, 1, 28, 28) and table.x.dtype == np.float32
    assert table.x[:, 0, 5, 7].tolist() == list(range(8))  # train images first, then test, pixel values kept
    assert table.y.tolist() == labels.tolist() and table.kind == "classification"
    assert table.class_names is None
    assert table.split.tolist() == ["train"] * 5 + ["test"] * 3  # data.split=official: t10k is the test split


def test_idx_limit_and_class_names_of_the_labels_present(tmp_path):
    write_idx(tmp_path)
    names = [f"c{i}" for i in range(10)]
    table = idx(seed=0, root=str(tmp_path), limit=4, class_names=names, split="random")  # one pool: its first 4
    assert table.x.shape == (4, 1, 28, 28) and table.y.tolist() == [0, 3, 6, 9]
    assert table.class_names == ["c0", "c3", "c6", "c9"]  # names of the sorted unique labels
    assert table.split is None
    # official: the first images of the train (5) and t10k (3) files, 4 in all, in proportion (2.5 -> 2 each)
    table = idx(seed=0, root=str(tmp_path), limit=4, class_names=names)
    assert table.y.tolist() == [0, 3, 5, 8] and table.split.tolist() == ["train", "train", "test", "test"]
    with pytest.raises(DataError, match="names only 3 classes"):
        idx(seed=0, root=str(tmp_path), class_names=["a", "b", "c"])


def test_idx_missing_files_say_what_and_where_to_get_them(tmp_path):
    write_idx(tmp_path)
    (tmp_path / "t10k-labels-idx1-ubyte").unlink()
    with pytest.raises(DataError) as info:
        idx(seed=0, root=str(tmp_path))
    msg = str(info.value)
    assert f"'{tmp_path}'" in msg and "Missing: t10k-labels-idx1-ubyte." in msg
    for name in [*IDX_NAMES["train"], *IDX_NAMES["t10k"]]:
        assert name in msg
    assert "http://yann.lecun.com/exdb/mnist/" in msg and "https://github.com/zalandoresearch/fashion-mnist" in msg
    assert "never downloads" in msg
    with pytest.raises(DataError, match="the folder does not exist"):
        idx(seed=0, root=str(tmp_path / "nowhere"))


def _swap_magic(path):
    path.write_bytes((2049).to_bytes(4, "big") + path.read_bytes()[4:])


def _truncate(path):
    path.write_bytes(path.read_bytes()[:-10])


def _header_only(path):
    path.write_bytes(path.read_bytes()[:6])


def _bad_gzip(path):
    path.with_suffix(".gz").write_bytes(gzip.compress(path.read_bytes())[:-30])
    path.unlink()


def _fewer_labels(path):
    labels_path = path.parent / IDX_NAMES["train"][1]
    labels_path.write_bytes(idx_bytes(np.zeros(4, np.uint8)))


@pytest.mark.parametrize(("corrupt", "expected"), [
    (_swap_magic, "is not an IDX images file: magic number 2049, expected 2051"),
    (_truncate, "is truncated: its header declares 5 x 28 x 28 images"),
    (_header_only, "shorter than the 16-byte header"),
    (_bad_gzip, "corrupt gzip file"),
    (_fewer_labels, "holds 5 images but .* holds 4 labels"),
], ids=["bad-magic", "truncated", "header-only", "gzip", "count-mismatch"])
def test_idx_corrupt_file_is_named(tmp_path, corrupt, expected):
    write_idx(tmp_path)
    corrupt(tmp_path / IDX_NAMES["train"][0])
    with pytest.raises(DataError, match=expected) as info:
        idx(seed=0, root=str(tmp_path))
    assert str(tmp_path / IDX_NAMES["train"][0]) in str(info.value)


def test_mnist_presets_compose(tmp_path):
    mnist = compose([f"output_dir={tmp_path}", "data=mnist"]).config["data"]
    assert mnist["name"] == "idx" and mnist["root"] == "data/mnist" and mnist["class_names"] is None
    fashion = compose([f"output_dir={tmp_path}", "data=fashion_mnist"]).config["data"]
    assert fashion["root"] == "data/fashion_mnist" and len(fashion["class_names"]) == 10
    assert fashion["class_names"][0] == "T-shirt/top" and fashion["class_names"][9] == "Ankle boot"


# ------------------------------------------------------------------------------------------ class folders

def make_folder(root, spec):
    """spec: {class: [(mode, size (W, H), colour, format), ...]}; saved in the format each entry names."""
    for cls, images in spec.items():
        (root / cls).mkdir(parents=True)
        for i, (mode, wh, colour, fmt) in enumerate(images):
            Image.new(mode, wh, colour).save(root / cls / f"{i}.{fmt}")
    return root


def test_image_folder_grayscale_resized_and_labelled_by_sorted_folder(tmp_path):
    root = make_folder(tmp_path / "im", {
        "zebra": [("L", (12, 10), 200, "png"), ("L", (5, 5), 210, "bmp")],
        "ant": [("L", (12, 10), 10, "png"), ("L", (20, 30), 11, "gif"), ("L", (8, 8), 12, "png")],
    })
    (root / "ant" / "notes.txt").write_text("not an image")  # ignored
    (root / ".cache").mkdir()  # hidden folders are not classes
    table = image_folder(seed=0, root=str(root), size=[6, 4])
    assert table.x.shape == (5, 1, 6, 4) and table.x.dtype == np.float32
    assert table.class_names == ["ant", "zebra"] and table.y.tolist() == [0, 0, 0, 1, 1]
    assert table.x[:, 0, 3, 2].tolist() == [10, 11, 12, 200, 210]  # flat images stay flat through the resize


def test_image_folder_auto_colour_and_forced_modes(tmp_path):
    root = make_folder(tmp_path / "im", {
        "grey": [("L", (8, 8), 50, "png"), ("RGB", (8, 8), (90, 90, 90), "png")],
        "red": [("RGB", (8, 8), (255, 0, 0), "png"), ("RGBA", (8, 8), (0, 0, 255, 255), "png")],
    })
    rgb = image_folder(seed=0, root=str(root), size=[8, 8])
    assert rgb.x.shape == (4, 3, 8, 8)  # one colour image makes the whole set RGB
    assert rgb.x[:, :, 0, 0].tolist() == [[50, 50, 50], [90, 90, 90], [255, 0, 0], [0, 0, 255]]
    grey = image_folder(seed=0, root=str(root), size=[8, 8], color="grayscale")
    assert grey.x.shape == (4, 1, 8, 8)
    assert grey.x[:, 0, 0, 0].tolist() == [50, 90, 76, 29]  # luma 0.299 R + 0.587 G + 0.114 B, as Pillow's "L"
    (root / "red" / "0.png").unlink()
    (root / "red" / "1.png").unlink()
    Image.new("RGB", (8, 8), (7, 7, 7)).save(root / "red" / "2.jpg")
    assert image_folder(seed=0, root=str(root), size=[8, 8]).x.shape == (3, 1, 8, 8)  # all grey: 1 channel
    assert image_folder(seed=0, root=str(root), size=[8, 8], color="rgb").x.shape == (3, 3, 8, 8)


def test_image_folder_errors_name_the_problem(tmp_path):
    with pytest.raises(DataError, match="image folder not found: .*nowhere"):
        image_folder(seed=0, root=str(tmp_path / "nowhere"))
    (tmp_path / "flat.png").write_bytes(b"")
    with pytest.raises(DataError, match="has no class folders; it holds: flat.png"):
        image_folder(seed=0, root=str(tmp_path))
    make_folder(tmp_path / "im", {"a": [("L", (4, 4), 0, "png")], "b": []})
    (tmp_path / "im" / "b" / "readme.md").write_text("")
    with pytest.raises(DataError, match=r"class folder '.*b' holds no images"):
        image_folder(seed=0, root=str(tmp_path / "im"))
    good = (tmp_path / "im" / "a" / "0.png").read_bytes()
    (tmp_path / "im" / "b" / "broken.png").write_bytes(good[: len(good) // 2])  # truncated PNG
    with pytest.raises(DataError, match=r"1 of the 2 images in '.*im' cannot be read: '.*broken.png' \("):
        image_folder(seed=0, root=str(tmp_path / "im"))
    (tmp_path / "im" / "b" / "broken.png").write_bytes(b"this is not a png")
    with pytest.raises(DataError, match=r"'.*broken.png' \(not an image file Pillow can read\)"):
        image_folder(seed=0, root=str(tmp_path / "im"))
    (tmp_path / "im" / "b" / "broken.png").unlink()
    make_folder(tmp_path / "im", {"c": [("L", (4, 4), 0, "png")]})
    with pytest.raises(DataError, match=r"data.size must be \[height, width\]"):
        image_folder(seed=0, root=str(tmp_path / "im"), size=[4])


@pytest.mark.parametrize("cache", ["memory", "none"])
def test_images_that_cannot_be_read_are_all_named_or_left_out_with_a_note(tmp_path, cache):
    """A folder as scraped: an empty file and a file that is no image among good ones. The error names them all
    at once; data.unreadable=skip leaves them out (in memory, and streamed from disk) and a note counts them."""
    root = make_folder(tmp_path / "im", {"cat": [("L", (6, 6), 10 * i, "png") for i in range(4)],
                                         "dog": [("L", (6, 6), 200 + i, "png") for i in range(3)]})
    (root / "cat" / "empty.jpg").write_bytes(b"")
    (root / "dog" / "junk.png").write_bytes(b"<html>not found</html>")
    if cache == "memory":  # every image is decoded now
        with pytest.raises(DataError) as refused:
            image_folder(seed=0, root=str(root), size=[6, 6], cache=cache)
        assert str(refused.value) == (
            f"2 of the 9 images in '{root}' cannot be read: '{root / 'cat' / 'empty.jpg'}' (an empty file); "
            f"'{root / 'dog' / 'junk.png'}' (not an image file Pillow can read). Replace or remove them, or leave "
            "them out with data.unreadable=skip")
    else:  # streamed: each image is decoded when a batch needs it, and an unreadable one stops the run then
        files = image_folder(seed=0, root=str(root), size=[6, 6], cache=cache).files
        with pytest.raises(DataError, match=r"cannot read image '.*empty.jpg': an empty file\. Replace or remove "
                                            r"the file, or leave out every image .* with data.unreadable=skip"):
            files.raw([p.endswith("empty.jpg") for p in files.paths.tolist()].index(True))
    table = image_folder(seed=0, root=str(root), size=[6, 6], cache=cache, unreadable="skip")
    assert table.y.tolist() == [0, 0, 0, 0, 1, 1, 1]
    assert table.notes == [f"left out 2 of the 9 images in '{root}' that cannot be read (data.unreadable=skip): "
                           f"'{root / 'cat' / 'empty.jpg'}', '{root / 'dog' / 'junk.png'}'"]
    if cache == "memory":
        assert table.x[:, 0, 0, 0].tolist() == [0, 10, 20, 30, 200, 201, 202]
    else:
        assert [p.rsplit("/", 2)[-2:] for p in table.files.paths.tolist()] == \
            [["cat", f"{i}.png"] for i in range(4)] + [["dog", f"{i}.png"] for i in range(3)]


def test_an_unreadable_image_met_in_a_dataloader_worker_is_refused_with_its_message_alone(tmp_path):
    """torch re-raises a worker's error with the worker's traceback as its message; the user sees dlcli's."""
    from typer.testing import CliRunner

    from dlcli.cli import app

    root = make_folder(tmp_path / "im", {"cat": [("L", (6, 6), 10 * i, "png") for i in range(8)],
                                         "dog": [("L", (6, 6), 200 + i, "png") for i in range(8)]})
    (root / "dog" / "empty.png").write_bytes(b"")
    out = tmp_path / "outputs"
    result = CliRunner().invoke(app, ["train", "data=image_folder", f"data.root={root}", "data.cache=none",
                                      "data.num_workers=1", "data.size=[6,6]", "model=perceptron", "threads=1",
                                      "trainer.max_epochs=1", f"output_dir={out}"])
    assert result.exit_code == 2, result.output
    message = " ".join(result.stderr.split())
    assert message == (f"error: cannot read image '{root / 'dog' / 'empty.png'}': an empty file. Replace or remove "
                       "the file, or leave out every image that cannot be read with data.unreadable=skip")
    assert not out.exists()


# ------------------------------------------------------------------------------------------ CIFAR-10

CIFAR_FILES = [f"data_batch_{i}.bin" for i in range(1, 6)] + ["test_batch.bin"]


def write_cifar(root, per_file=2):
    """Record r of file f: label (f + r) % 10, red plane 10 * f + r, green 100, blue 200."""
    folder = root / "cifar-10-batches-bin"
    folder.mkdir(parents=True)
    for f, name in enumerate(CIFAR_FILES):
        records = [bytes([(f + r) % 10]) + bytes([10 * f + r]) * 1024 + bytes([100]) * 1024 + bytes([200]) * 1024
                   for r in range(per_file)]
        (folder / name).write_bytes(b"".join(records))
    return folder


def test_cifar10_binary_records_channel_major(tmp_path):
    folder = write_cifar(tmp_path)
    table = cifar10(seed=0, root=str(tmp_path))
    assert table.x.shape == (12, 3, 32, 32) and table.x.dtype == np.float32
    assert table.x[:, :, 4, 9].tolist() == [[10 * f + r, 100, 200] for f in range(6) for r in range(2)]
    assert table.y.tolist() == [(f + r) % 10 for f in range(6) for r in range(2)]
    assert table.class_names[:2] == ["airplane", "automobile"] and len(table.class_names) == 7
    limited = cifar10(seed=0, root=str(folder), limit=3)  # root may also be the batches folder itself
    assert limited.x.shape == (3, 3, 32, 32) and limited.y.tolist() == [0, 1, 1]


def test_cifar10_missing_or_corrupt_files(tmp_path):
    with pytest.raises(DataError) as info:
        cifar10(seed=0, root=str(tmp_path))
    msg = str(info.value)
    assert all(name in msg for name in CIFAR_FILES) and "https://www.cs.toronto.edu/~kriz/cifar.html" in msg
    assert "CIFAR-10 binary version" in msg and "never downloads" in msg
    (tmp_path / "data_batch_1").write_bytes(b"pickle")  # the Python version is refused, never unpickled
    with pytest.raises(DataError, match="Python version, which dlcli does not read"):
        cifar10(seed=0, root=str(tmp_path))
    folder = write_cifar(tmp_path / "c")
    (folder / "test_batch.bin").write_bytes((folder / "test_batch.bin").read_bytes()[:-5])
    with pytest.raises(DataError, match=r"corrupt CIFAR-10 file '.*test_batch.bin': 6141 bytes"):
        cifar10(seed=0, root=str(tmp_path / "c"))


# ------------------------------------------------------------------------------------------ end to end

def test_train_on_an_image_folder(tmp_path):
    from dlcli.training.train import train

    rng = np.random.default_rng(0)
    root = tmp_path / "images"
    for cls, lo, hi in (("dark", 0, 90), ("bright", 160, 255)):
        (root / cls).mkdir(parents=True)
        for i in range(40):
            pixels = rng.integers(lo, hi, (12, 12), dtype=np.uint8)
            Image.fromarray(pixels, "L").save(root / cls / f"{i}.png")
    c = compose([f"output_dir={tmp_path / 'o'}", "data=image_folder", f"data.root={root}", "data.size=[8,8]",
                 "trainer.max_epochs=3", "trainer.enable_progress_bar=false", "trainer.accelerator=cpu"])
    r = train(c.config, c.overrides)
    assert r.metrics["test/acc"] >= 0.9
