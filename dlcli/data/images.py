"""Image datasets from local files: IDX (MNIST, Fashion-MNIST), a folder per class, CIFAR-10 binary.

dlcli never downloads a dataset: each loader reads files the user has put in place, and when
they are missing the error says which files, where they are published, and where to put them.
Every loader returns ``x`` as (N, C, H, W) float32 pixel values in 0..255; ``data.scaling``
then rescales them, fitted on the train split only.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import IO, TYPE_CHECKING, Literal

from dlcli.data.table import Table
from dlcli.errors import DataError
from dlcli.registry import DATASETS, did_you_mean

if TYPE_CHECKING:
    import numpy as np

# ---------------------------------------------------------------------------------------------- IDX

IDX_IMAGES_MAGIC = 2051  # 0x00000803: unsigned bytes, 3 dimensions (N, H, W)
IDX_LABELS_MAGIC = 2049  # 0x00000801: unsigned bytes, 1 dimension (N,)
IDX_SOURCES = ("MNIST: http://yann.lecun.com/exdb/mnist/ (or one of its mirrors, e.g. "
               "https://ossci-datasets.s3.amazonaws.com/mnist/); "
               "Fashion-MNIST: https://github.com/zalandoresearch/fashion-mnist")


def _list_dir(folder: Path, limit: int = 12) -> str:
    names = sorted(p.name for p in folder.iterdir())
    if not names:
        return "the folder is empty"
    more = f", ... ({len(names) - limit} more)" if len(names) > limit else ""
    return "it holds: " + ", ".join(names[:limit]) + more


def _find_idx(folder: Path, names: list[str]) -> list[Path]:
    """The four IDX files, each raw or gzipped; one DataError listing every missing one."""
    found, missing = [], []
    for name in names:
        path = next((p for p in (folder / name, folder / f"{name}.gz") if p.is_file()), None)
        if path is None:
            missing.append(name)
        else:
            found.append(path)
    if not missing and folder.is_dir():
        return found
    where = (f"{_list_dir(folder)}" if folder.is_dir() else "the folder does not exist")
    hints = "".join(did_you_mean(m, [p.name for p in folder.iterdir()]) for m in missing[:1]) \
        if folder.is_dir() else ""
    raise DataError(
        f"IDX dataset files not found in '{folder}' (data.root; {where}). Missing: {', '.join(missing)}.{hints} "
        f"Expected the four files {', '.join(names)}, each raw or gzipped (.gz). "
        f"dlcli never downloads data: get them from {IDX_SOURCES}, put them in '{folder}' "
        "(or point data.root at their folder), and run again"
    )


def _read_bytes(path: Path) -> bytes:
    """A file's content, gunzipped when it is gzip (told by its first bytes, not its name)."""
    import gzip
    import zlib

    try:
        data = path.read_bytes()
    except OSError as e:  # e.g. permission denied
        raise DataError(f"cannot read '{path}': {e.strerror or e}. Make it readable, or put a readable copy "
                        "in its place") from None
    if data[:2] == b"\x1f\x8b":
        try:
            data = gzip.decompress(data)
        except (OSError, EOFError, zlib.error) as e:
            raise DataError(f"corrupt gzip file '{path}': {e}. Download it again") from None
    return data


def _read_idx(path: Path, magic: int, ndim: int) -> np.ndarray:
    """One IDX file of unsigned bytes as an array of its declared shape; DataError when it is not one."""
    import numpy as np

    data = _read_bytes(path)
    what = "images" if magic == IDX_IMAGES_MAGIC else "labels"
    header = 4 + 4 * ndim
    if len(data) < header:
        raise DataError(f"'{path}' is not an IDX {what} file: only {len(data)} bytes, shorter than the "
                        f"{header}-byte header. The file is truncated: download it again")
    found = int.from_bytes(data[:4], "big")
    if found != magic:
        raise DataError(f"'{path}' is not an IDX {what} file: magic number {found}, expected {magic}. "
                        "It may be the other kind of IDX file, or not IDX at all (an HTML error page "
                        "from a failed download): check the file name and download it again")
    dims = [int.from_bytes(data[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim)]  # big-endian uint32
    expected = header + int(np.prod(dims))
    if len(data) != expected:
        problem = "is truncated" if len(data) < expected else "has extra bytes at the end"
        raise DataError(f"'{path}' {problem}: its header declares {' x '.join(map(str, dims))} {what} "
                        f"({expected} bytes with the header), the file holds {len(data)} bytes. "
                        "Download it again")
    return np.frombuffer(data, dtype=np.uint8, offset=header).reshape(dims)


def _check_limit(limit: int | None) -> None:
    if limit is not None and limit < 1:
        raise DataError(f"data.limit must be at least 1 (or null for every image), got {limit}")


def _official_counts(n_train: int, n_test: int, limit: int | None) -> tuple[int, int]:
    """How many of the train and test files' images ``limit`` keeps: the first N in all, in proportion."""
    if limit is None or limit >= n_train + n_test:
        return n_train, n_test
    n_test_kept = min(n_test, round(limit * n_test / (n_train + n_test)))
    return min(n_train, limit - n_test_kept), n_test_kept


def _named_classes(y: np.ndarray, class_names: list[str] | None, files: str) -> list[str] | None:
    """The names of the labels present in ``y`` (sorted), from the names of all label ids."""
    import numpy as np

    if class_names is None:
        return None
    if len(y) and int(y.max()) >= len(class_names):
        raise DataError(f"{files} hold labels up to {int(y.max())}, but data.class_names names only "
                        f"{len(class_names)} classes (ids 0..{len(class_names) - 1}). Give one name per label")
    return [str(class_names[i]) for i in np.unique(y)]


@DATASETS.register()
def idx(seed: int, root: str, train_images: str = "train-images-idx3-ubyte",
        train_labels: str = "train-labels-idx1-ubyte", test_images: str = "t10k-images-idx3-ubyte",
        test_labels: str = "t10k-labels-idx1-ubyte", limit: int | None = None,
        class_names: list[str] | None = None, split: Literal["official", "random"] = "official"):
    """IDX image files (MNIST, Fashion-MNIST): the train and test files, 1 channel, 0..255."""
    import numpy as np

    _check_limit(limit)
    folder = Path(root).expanduser()
    paths = _find_idx(folder, [train_images, train_labels, test_images, test_labels])
    xs, ys = [], []
    for img_path, lab_path in (paths[0:2], paths[2:4]):
        x = _read_idx(img_path, IDX_IMAGES_MAGIC, 3)  # (N, H, W) uint8
        y = _read_idx(lab_path, IDX_LABELS_MAGIC, 1)  # (N,) uint8
        if len(x) != len(y):
            raise DataError(f"'{img_path}' holds {len(x)} images but '{lab_path}' holds {len(y)} labels: "
                            "the files do not belong together. Download both again")
        if xs and x.shape[1:] != xs[0].shape[1:]:
            raise DataError(f"'{img_path}' holds {x.shape[1]}x{x.shape[2]} images, but "
                            f"'{paths[0]}' holds {xs[0].shape[1]}x{xs[0].shape[2]}: they are not one dataset")
        xs.append(x)
        ys.append(y)
    marker = sources = None
    if split == "official":  # the t10k files are the test split; `limit` takes from both in proportion
        n_train, n_test = _official_counts(len(xs[0]), len(xs[1]), limit)
        xs, ys = [xs[0][:n_train], xs[1][:n_test]], [ys[0][:n_train], ys[1][:n_test]]
        marker = np.array(["train"] * n_train + ["test"] * n_test, dtype="<U5")
        sources = {"train": str(paths[0]), "test": str(paths[2])}
        limit = None
    x, y = np.concatenate(xs)[:limit], np.concatenate(ys)[:limit].astype(np.int64)
    names = _named_classes(y, class_names, f"'{paths[1]}' and '{paths[3]}'")
    return Table(x[:, None].astype(np.float32), y, "classification", names,  # (N, H, W) -> (N, 1, H, W)
                 split=marker, split_sources=sources)


# --------------------------------------------------------------------------------------- class folders

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif")


def _class_folders(root: str) -> tuple[Path, list[Path]]:
    folder = Path(root).expanduser()
    if not folder.is_dir():
        problem = f"'{root}' (data.root) is a file, not a folder" if folder.exists() \
            else f"image folder not found: '{root}' (data.root)"
        raise DataError(f"{problem}. Give a folder holding one subfolder of images per class: "
                        "data.root=/path/to/images")
    classes = sorted((p for p in _entries(folder) if p.is_dir() and not p.name.startswith(".")),
                     key=lambda p: p.name)
    if not classes:
        raise DataError(f"'{root}' (data.root) has no class folders; {_list_dir(folder)}. Put each class's "
                        f"images in a subfolder named after the class: {root}/<class>/<image>.png")
    return folder, classes


def _entries(folder: Path) -> list[Path]:
    try:
        return list(folder.iterdir())
    except OSError as e:  # e.g. permission denied
        raise DataError(f"cannot list the folder '{folder}': {e.strerror or e}. Make it readable") from None


def _image_files(class_dir: Path) -> list[Path]:
    files = sorted(p for p in _entries(class_dir) if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
    if not files:
        raise DataError(f"class folder '{class_dir}' holds no images ({', '.join(IMAGE_SUFFIXES)}); "
                        f"{_list_dir(class_dir)}. Add images, or remove the folder")
    return files


def _load_rgb(path: Path | IO[bytes], size: tuple[int, int], name: str | None = None,
              fix: str = "Replace or remove the file") -> np.ndarray:
    """One image file (a path, or an open binary file named ``name`` in errors), resized to ``size`` (H, W),
    as (H, W, 3) uint8. ``fix``: what the error suggests for a file that cannot be read."""
    from PIL import Image

    try:
        return _decode(path, size)
    except _unreadable() as e:
        if name is None:
            raise DataError(f"cannot read image '{path}': {_why(e, Path(path))}. {fix}") from None
        why = "not an image file Pillow can read" if isinstance(e, Image.UnidentifiedImageError) else str(e)
        raise DataError(f"cannot read image '{name}': {why}. Send a PNG, JPEG, BMP or GIF") from None


def _decode(path: Path | IO[bytes], size: tuple[int, int]) -> np.ndarray:
    """``_load_rgb`` without its messages: Pillow's own error (one of ``_unreadable()``) for a bad file."""
    import numpy as np
    from PIL import Image

    with Image.open(path) as img:
        img.load()
        rgb = img.convert("RGB")  # palette, grayscale, alpha: all to 3 channels; alpha is dropped
    if rgb.size != (size[1], size[0]):
        rgb = rgb.resize((size[1], size[0]), Image.Resampling.BILINEAR)  # Pillow takes (W, H)
    return np.asarray(rgb, dtype=np.uint8)


def _unreadable() -> tuple[type[Exception], ...]:
    """What Pillow raises for a file it cannot decode: not an image (UnidentifiedImageError is an OSError),
    truncated or damaged, or a decompression bomb."""
    from PIL import Image

    return OSError, SyntaxError, ValueError, Image.DecompressionBombError


def to_channels(rgb: np.ndarray, color: Literal["grayscale", "rgb"]) -> np.ndarray:
    """(N, H, W, 3) uint8 -> (N, C, H, W) float32 in 0..255: 3 channels, or 1 (luma) for grayscale."""
    import numpy as np

    if color == "rgb":
        return rgb.transpose(0, 3, 1, 2).astype(np.float32)  # (N, H, W, 3) -> (N, 3, H, W)
    # ITU-R 601 luma, as Pillow's convert("L"); exact for grey pixels (R == G == B)
    x = (rgb.astype(np.float32) @ np.array([0.299, 0.587, 0.114], dtype=np.float32))[:, None]
    return np.clip(np.rint(x), 0, 255)  # (N, H, W) -> (N, 1, H, W)


def has_colour(rgb: np.ndarray) -> bool:
    """Whether any pixel's channels differ: an RGB-encoded grey scan stays 1 channel."""
    return bool((rgb[..., 0] != rgb[..., 1]).any() or (rgb[..., 1] != rgb[..., 2]).any())


@DATASETS.register()
def image_folder(seed: int, root: str, size: list[int] = (32, 32),
                 color: Literal["grayscale", "rgb", "auto"] = "auto",
                 cache: Literal["auto", "memory", "none"] = "auto", cache_budget_mib: float | None = None,
                 stats_sample: int | None = 2000, unreadable: Literal["error", "skip"] = "error"):
    """Your own images: one subfolder per class (png, jpg, bmp, gif), resized to one size, 0..255."""
    import numpy as np

    if len(size) != 2 or min(size) < 1:
        raise DataError(f"data.size must be [height, width] with both at least 1, got {list(size)}")
    folder, classes = _class_folders(root)
    files = [(f, label) for label, d in enumerate(classes) for f in _image_files(d)]
    y = np.array([label for _, label in files], dtype=np.int64)
    names = [d.name for d in classes]
    from dlcli.data.stream import stream_decision

    streamed = stream_decision([f for f, _ in files], (size[0], size[1]), color, cache, cache_budget_mib,
                               stats_sample, seed)
    if streamed is not None:  # larger than the budget (or data.cache=none): decoded per batch, never all at once
        notes = None
        if unreadable == "skip":  # each file's header, now: a file that fails later stops the run
            bad = [(f, why) for f, why in ((f, _unopenable(f)) for f, _ in files) if why]
            if bad:
                keep = np.isin(streamed.paths, [str(f) for f, _ in bad], invert=True)
                streamed, y = replace(streamed, paths=streamed.paths[keep]), y[keep]
                notes = [_skipped_note(bad, len(files), root)]
        return Table(None, y, "classification", names, files=streamed, notes=notes)
    decoded, bad = [], []
    for f, _ in files:
        try:
            decoded.append(_decode(f, (size[0], size[1])))  # (H, W, 3) uint8
        except _unreadable() as e:
            bad.append((f, _why(e, f)))
    notes = None
    if bad and unreadable == "error":
        shown = "; ".join(f"'{f}' ({why})" for f, why in bad[:5]) + (f"; and {len(bad) - 5} more" if len(bad) > 5
                                                                      else "")
        raise DataError(f"{len(bad)} of the {len(files)} images in '{root}' cannot be read: {shown}. Replace or "
                        "remove them, or leave them out with data.unreadable=skip")
    if bad:
        keep = np.isin([str(f) for f, _ in files], [str(f) for f, _ in bad], invert=True)
        y, notes = y[keep], [_skipped_note(bad, len(files), root)]
    if not decoded:
        raise DataError(f"none of the {len(files)} images in '{root}' can be read")
    rgb = np.stack(decoded)  # (N, H, W, 3) uint8
    if color == "auto":
        color = "rgb" if has_colour(rgb) else "grayscale"
    return Table(to_channels(rgb, color), y, "classification", names, notes=notes)


def _unopenable(path: Path) -> str | None:
    """Why Pillow cannot identify ``path`` as an image (its header only: fast), or None when it can."""
    from PIL import Image

    try:
        with Image.open(path):
            return None
    except _unreadable() as e:
        return _why(e, path)


def _why(error: Exception, path: Path) -> str:
    """Why an image file cannot be read, in a few words (Pillow's own text repeats the path)."""
    from PIL import Image

    if isinstance(error, Image.UnidentifiedImageError):
        return "an empty file" if path.stat().st_size == 0 else "not an image file Pillow can read"
    return str(error) or type(error).__name__


def _skipped_note(bad: list[tuple[Path, str]], total: int, root: str) -> str:
    shown = ", ".join(f"'{f}'" for f, _ in bad[:5]) + (f" and {len(bad) - 5} more" if len(bad) > 5 else "")
    return f"left out {len(bad)} of the {total} images in '{root}' that cannot be read (data.unreadable=skip): {shown}"


# ------------------------------------------------------------------------------------------ CIFAR-10

CIFAR10_DIR = "cifar-10-batches-bin"
CIFAR10_FILES = [f"data_batch_{i}.bin" for i in range(1, 6)] + ["test_batch.bin"]
CIFAR10_CLASSES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]
CIFAR10_RECORD = 1 + 3 * 32 * 32  # a label byte, then the red, green and blue 32x32 planes
CIFAR10_SOURCE = ("https://www.cs.toronto.edu/~kriz/cifar.html (the \"CIFAR-10 binary version\", "
                  "cifar-10-binary.tar.gz; extract it with `tar xzf cifar-10-binary.tar.gz`)")


def _cifar10_folder(root: str) -> Path:
    folder = Path(root).expanduser()
    if (folder / CIFAR10_DIR).is_dir():  # root is where the archive was extracted
        folder = folder / CIFAR10_DIR
    missing = [n for n in CIFAR10_FILES if not (folder / n).is_file()]
    if missing:
        where = _list_dir(folder) if folder.is_dir() else "the folder does not exist"
        pickled = " (it holds the Python version, which dlcli does not read: unpickling data is unsafe)" \
            if folder.is_dir() and (folder / "data_batch_1").is_file() else ""
        raise DataError(
            f"CIFAR-10 files not found in '{folder}' (data.root; {where}){pickled}. Missing: {', '.join(missing)}. "
            f"Expected the folder {CIFAR10_DIR}/ holding {', '.join(CIFAR10_FILES)}. dlcli never downloads "
            f"data: get it from {CIFAR10_SOURCE}, then set data.root to the folder it was extracted in"
        )
    return folder


def _cifar10_count(path: Path) -> int:
    """How many records a CIFAR-10 binary file holds; DataError when it is not a whole number of them."""
    try:
        size = path.stat().st_size
    except OSError as e:
        raise DataError(f"cannot read CIFAR-10 file '{path}': {e.strerror or e}") from None
    if size == 0 or size % CIFAR10_RECORD:
        raise DataError(f"corrupt CIFAR-10 file '{path}': {size} bytes is not a whole number of "
                        f"{CIFAR10_RECORD}-byte records (1 label byte + 3x32x32 pixels); it is truncated or "
                        f"not the binary version. Download it again from {CIFAR10_SOURCE}")
    return size // CIFAR10_RECORD


def _cifar10_records(path: Path, count: int | None = None) -> np.ndarray:
    """The first ``count`` records (all when None) of a CIFAR-10 binary file, (n, 1 + 3072) uint8."""
    import numpy as np

    count = _cifar10_count(path) if count is None else count
    try:
        data = np.fromfile(path, dtype=np.uint8, count=count * CIFAR10_RECORD)
    except OSError as e:
        raise DataError(f"cannot read CIFAR-10 file '{path}': {e.strerror or e}") from None
    records = data.reshape(-1, CIFAR10_RECORD)  # (n, 1 + 3072)
    if len(records) and records[:, 0].max() >= len(CIFAR10_CLASSES):
        raise DataError(f"corrupt CIFAR-10 file '{path}': label {int(records[:, 0].max())} is not in 0..9. "
                        f"Download it again from {CIFAR10_SOURCE}")
    return records


@DATASETS.register(classes=10)
def cifar10(seed: int, root: str, limit: int | None = None, split: Literal["official", "random"] = "official"):
    """CIFAR-10 (binary version): 60,000 colour 32x32 images, 10 classes; its test_batch is the test split, 0..255."""
    import numpy as np

    _check_limit(limit)
    folder = _cifar10_folder(root)
    paths = [folder / name for name in CIFAR10_FILES]
    marker = sources = None
    if split == "official":  # test_batch is the test split; `limit` takes from train and test in proportion
        sizes = [_cifar10_count(p) for p in paths]
        n_train, n_test = _official_counts(sum(sizes[:-1]), sizes[-1], limit)
        wanted = []
        for size in sizes[:-1]:
            wanted.append(min(size, n_train - sum(wanted)))
        wanted.append(n_test)
        marker = np.array(["train"] * n_train + ["test"] * n_test, dtype="<U5")
        sources = {"train": f"{folder}/data_batch_1-5.bin", "test": str(paths[-1])}
        batches = [_cifar10_records(p, n) for p, n in zip(paths, wanted, strict=True) if n]
        limit = None
    else:  # every file in one pool: the first `limit` images of it
        batches = []
        for path in paths:
            batches.append(_cifar10_records(path))
            if limit is not None and sum(map(len, batches)) >= limit:
                break  # the first `limit` images are already read
    records = np.concatenate(batches)[:limit]
    x = records[:, 1:].reshape(-1, 3, 32, 32).astype(np.float32)  # channel-major already: (N, 3, H, W)
    y = records[:, 0].astype(np.int64)
    return Table(x, y, "classification", [CIFAR10_CLASSES[i] for i in np.unique(y)], split=marker,
                 split_sources=sources)
