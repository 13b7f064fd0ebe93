"""Image folders larger than memory (``data.cache``): file names and labels in memory, pixels decoded per batch.

``image_folder`` lists its files first (cheap) and asks :func:`stream_decision` whether to decode them all
up front, as every other loader does, or to stream:

- ``cache: memory`` always decodes everything up front (the fast path: batches are slices of tensors);
- ``cache: none`` always streams;
- ``cache: auto`` streams when the decoded float32 size, N x C x H x W x 4 bytes (``color: auto`` counts
  3 channels), is over ``cache_budget_mib`` (null: a quarter of the machine's memory, or of the
  container's limit when that is lower).

A streamed table's ``x`` is None and its ``files`` an :class:`ImageFiles`: the paths and how to decode them.
:func:`prepare_streamed` (called by ``prepare``) splits on the labels exactly as in memory (same seed, same
split membership), fits the scaling statistics in one pass that keeps only running sums, over
``stats_sample`` train images drawn with the seed (every train image when null), and records them under the
same preprocessing keys as in memory, so that eval, predict and export re-apply them alike. Each sample is
then decoded (Pillow), converted to the run's channels, resized and scaled in a DataLoader worker by the
same functions as in memory, so that a streamed image is bit for bit the in-memory one; augmentation stays
on the device, in the LightningModule.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from dlcli.errors import DataError

BUDGET_SHARE = 4  # data.cache_budget_mib null: a quarter of the memory
UNKNOWN_MEMORY = 8 * 2**30  # the memory assumed where the platform does not tell
MAX_AUTO_WORKERS = 4  # data.num_workers auto, when streaming: decoding rarely needs more to keep a GPU busy
STATS_BATCH = 64  # images per batch of the statistics pass


def memory_bytes() -> int:
    """The machine's physical memory, or the container's (cgroup) limit when that is lower."""
    total = None
    try:
        total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):  # not a POSIX system
        pass
    for path in ("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes"):
        try:
            text = Path(path).read_text().strip()
        except OSError:
            continue
        if text.isdigit() and (total is None or int(text) < total):  # "max" (v2) or a huge number (v1): no limit
            total = int(text)
    return total or UNKNOWN_MEMORY


def budget_bytes(cache_budget_mib: float | None) -> int:
    """The in-memory budget: ``data.cache_budget_mib``, or a quarter of the memory when null."""
    if cache_budget_mib is None:
        return memory_bytes() // BUDGET_SHARE
    if cache_budget_mib <= 0:
        raise DataError(f"data.cache_budget_mib must be positive (MiB of decoded images held in memory), got "
                        f"{cache_budget_mib}; null = a quarter of this machine's memory")
    return int(cache_budget_mib * 2**20)


def _mib(n: float) -> str:
    return f"{n / 2**30:.2f} GiB" if n >= 2**30 else f"{n / 2**20:.1f} MiB"


def stream_decision(paths: list[Path], size: tuple[int, int], color: str, cache: str,
                    cache_budget_mib: float | None, stats_sample: int | None, seed: int) -> ImageFiles | None:
    """None: decode everything into memory now; else the :class:`ImageFiles` to stream (``data.cache``)."""
    if stats_sample is not None and stats_sample < 1:
        raise DataError(f"data.stats_sample must be at least 1 (or null for every train image), got {stats_sample}")
    if cache == "memory":
        return None
    channels = 1 if color == "grayscale" else 3  # auto: the most it can be, before any image is decoded
    decoded = len(paths) * channels * size[0] * size[1] * 4  # float32
    budget = budget_bytes(cache_budget_mib)
    if cache == "auto" and decoded <= budget:
        return None
    if cache == "none":
        reason = "data.cache=none"
    else:
        whose = "data.cache_budget_mib" if cache_budget_mib is not None else "a quarter of this machine's memory"
        reason = f"{len(paths)} images decode to {_mib(decoded)}, over the {_mib(budget)} budget ({whose})"
    files = ImageFiles(np.array([str(p) for p in paths]), (int(size[0]), int(size[1])), color, reason,
                       stats_sample, seed)
    if color == "auto":
        files.color = _sampled_colour(files)
    return files


def _sampled_colour(files: ImageFiles) -> str:
    """color=auto, streamed: rgb if any of ``stats_sample`` images (drawn with the seed) has colour.

    Stops at the first colour image, so a colour folder costs one decode. In memory every image is looked at.
    """
    from dlcli.data.images import _decode, _unreadable, has_colour

    order = np.random.default_rng(files.seed).permutation(len(files))[:files.stats_sample]
    for i in order:
        try:
            if has_colour(_decode(Path(files.paths[i]), files.size)):
                return "rgb"
        except _unreadable():  # the loader decides what an unreadable file does (data.unreadable)
            continue
    return "grayscale"


@dataclass
class ImageFiles:
    """A streamed image split: behaves as (N, C, H, W) float32 inputs for ``len``, ``shape`` and indexing
    (which give another ImageFiles), and decodes one sample when asked (:meth:`load`)."""

    paths: np.ndarray  # (N,) file paths
    size: tuple[int, int]  # (H, W) each file is resized to on decoding (data.size)
    color: str  # rgb | grayscale (auto is decided before this is made)
    reason: str  # why it streams: for the run's header
    stats_sample: int | None
    seed: int
    image: dict | None = None  # data.channels / data.resize, as in memory (prepare.image_options)
    scaler: dict | None = None  # prepare.fit_scaler's statistics, applied last
    _arrays: dict | None = field(default=None, init=False, repr=False, compare=False)  # the scaler's lists as arrays

    ndim = 4
    dtype = np.dtype(np.float32)

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, index: Any) -> ImageFiles:
        """A subset (slice or index array): still files, nothing decoded."""
        return replace(self, paths=self.paths[index])

    @property
    def shape(self) -> tuple[int, int, int, int]:
        channels = 3 if self.color == "rgb" else 1
        height, width = self.size
        if self.image:
            channels = self.image.get("channels") or channels
            height, width = self.image.get("resize") or (height, width)
        return len(self), channels, height, width

    @property
    def nbytes(self) -> int:
        return int(np.prod(self.shape)) * 4

    def raw(self, i: int) -> np.ndarray:
        """Sample ``i`` decoded and converted, not scaled: (1, C, H, W) float32 0..255, as in memory."""
        from dlcli.data.images import _load_rgb, to_channels
        from dlcli.data.prepare import convert_images

        rgb = _load_rgb(Path(self.paths[i]), self.size, fix="Replace or remove the file, or leave out every "
                        "image that cannot be read with data.unreadable=skip")[None]  # (1, H, W, 3) uint8
        return convert_images(to_channels(rgb, self.color), self.image)

    def load(self, i: int) -> np.ndarray:
        """Sample ``i`` as the model takes it: (C, H, W) float32, scaled with the fitted statistics."""
        from dlcli.data.prepare import apply_scaler

        x = self.raw(i)
        if self.scaler is None:
            return x[0]
        if self._arrays is None:  # per-pixel statistics are long lists: made arrays once, not per sample
            self._arrays = {k: np.asarray(v) if isinstance(v, list) else v for k, v in self.scaler.items()}
        return apply_scaler(x, self._arrays)[0]

    def dataset(self, y: Any) -> StreamedSet:
        """(image, target) pairs for a DataLoader; ``y`` is the split's targets as a tensor."""
        return StreamedSet(self, y)


class StreamedSet:
    """A map-style dataset: item i is (the decoded, scaled image as a tensor, its target)."""

    def __init__(self, files: ImageFiles, y: Any) -> None:
        self.files, self.y = files, y

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, i: int) -> tuple[Any, Any]:
        import torch

        return torch.from_numpy(self.files.load(int(i))), self.y[i]


class _RawSet(StreamedSet):
    def __getitem__(self, i: int) -> Any:
        import torch

        return torch.from_numpy(self.files.raw(int(i))[0])


def is_streamed(prepared: Any) -> bool:
    return any(isinstance(x, ImageFiles) for x, _ in prepared.splits.values())


def data_path(prepared: Any) -> str:
    """Which path a run's data took: "streamed" (decoded per batch) or "memory" (for summary.json)."""
    return "streamed" if is_streamed(prepared) else "memory"


def describe(prepared: Any, data_cfg: dict) -> str | None:
    """The run header's line about streaming; None for data in memory."""
    files = next((x for x, _ in prepared.splits.values() if isinstance(x, ImageFiles)), None)
    if files is None:
        return None
    workers = num_workers(data_cfg, prepared)
    where = f"in {workers} DataLoader worker{'s' if workers != 1 else ''}" if workers else "in the main process"
    return f"data: streamed from disk, decoded per batch {where} ({files.reason})"


def num_workers(data_cfg: dict, prepared: Any) -> int:
    """``data.num_workers``; auto: 0 for data in memory (slices are fastest), a few processes when streaming."""
    return resolve_workers(data_cfg["num_workers"], is_streamed(prepared))


def resolve_workers(value: int | str, streamed: bool) -> int:
    if value != "auto":
        return int(value)
    if not streamed:
        return 0
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return max(0, min(MAX_AUTO_WORKERS, cpus - 1))


def prepare_streamed(files: ImageFiles, y: np.ndarray, idx: dict[str, np.ndarray], cfg: dict,
                     pre: dict[str, Any], fitted: dict[str, Any] | None) -> dict[str, tuple[ImageFiles, np.ndarray]]:
    """``prepare`` for a streamed table: conversion and scaling recorded in ``pre``, nothing decoded but the
    statistics' sample. Returns the splits as (ImageFiles, targets)."""
    from dlcli.data.prepare import _check_fits, image_options

    image = image_options(cfg, files, cfg["name"])
    files = replace(files, image=image)
    if fitted is not None:
        _check_fits(fitted, files.shape[1:])
        scaler = fitted["scaling"]
    else:
        train = files[idx["train"]]
        scaler, used = fit_streamed(train, cfg["scaling"], cfg.get("channel_mean"), cfg.get("channel_std"),
                                    resolve_workers(cfg.get("num_workers", 0), streamed=True))
        if used:
            pre["scaling_sample"] = used  # how many train images the statistics come from
    if image:
        pre["image"] = image
    pre["scaling"] = scaler
    files = replace(files, scaler=scaler)
    return {name: (files[i], y[i]) for name, i in idx.items()}


def fit_streamed(files: ImageFiles, method: str, mean: list[float] | None = None, std: list[float] | None = None,
                 workers: int = 0) -> tuple[dict[str, Any], int]:
    """:func:`~dlcli.data.prepare.fit_scaler`'s statistics without holding the images: running sums over
    ``files.stats_sample`` of them (drawn with the seed; all when null). Returns (statistics, images read).

    standard and channel keep sums and sums of squares in float64 (exact for 0..255 pixels), minmax and
    symmetric running extremes; the result has fit_scaler's keys and checks.
    """
    from dlcli.data.prepare import fit_scaler

    if method == "none":
        return {"method": "none"}, 0
    if method == "channel" and mean is not None and std is not None:  # given, not fitted: checked on one image
        return fit_scaler(files.raw(0), method, mean, std), 0
    n = len(files)
    if files.stats_sample is not None and files.stats_sample < n:
        files = files[np.sort(np.random.default_rng(files.seed).choice(n, files.stats_sample, replace=False))]
    count, total, squares, lo, hi, first = 0, 0.0, 0.0, None, None, None
    for batch in _raw_batches(files, workers):  # (B, C, H, W) float32
        x = batch.astype(np.float64)
        first = batch[:1] if first is None else first
        if method == "channel":  # per channel: over samples and pixels
            x = x.transpose(1, 0, 2, 3).reshape(x.shape[1], -1)  # (B, C, H, W) -> (C, B*H*W)
            count, total, squares = count + x.shape[1], total + x.sum(1), squares + (x * x).sum(1)
        elif method == "standard":  # per pixel: over samples
            x = x.reshape(len(x), -1)  # (B, C, H, W) -> (B, C*H*W)
            count, total, squares = count + len(x), total + x.sum(0), squares + (x * x).sum(0)
        else:
            x = x.reshape(len(x), -1)
            lo = x.min(0) if lo is None else np.minimum(lo, x.min(0))
            hi = x.max(0) if hi is None else np.maximum(hi, x.max(0))
    used = len(files)
    if method in ("minmax", "symmetric"):
        return {"method": method, "min": lo.tolist(), "max": np.where(hi > lo, hi, lo + 1).tolist()}, used
    fitted_mean = total / count
    fitted_std = np.sqrt(np.maximum(squares - total * total / count, 0) / count)  # population std, as np.std
    if method == "standard":
        return {"method": method, "mean": fitted_mean.tolist(),
                "std": np.where(fitted_std > 0, fitted_std, 1).tolist()}, used
    mean = fitted_mean.tolist() if mean is None else mean
    std = np.where(fitted_std > 0, fitted_std, 1).tolist() if std is None else std
    return fit_scaler(first, method, mean, std), used  # fit_scaler checks the lengths and signs


def _raw_batches(files: ImageFiles, workers: int):
    """The images decoded and converted (not scaled), a batch at a time, by ``workers`` processes."""
    import torch
    from torch.utils.data import DataLoader

    # its own generator: the loader's seed draw leaves torch's global stream (model init, shuffles) untouched
    loader = DataLoader(_RawSet(files, None), batch_size=STATS_BATCH, num_workers=workers,
                        generator=torch.Generator().manual_seed(0))
    for batch in loader:
        yield batch.numpy()


def with_preprocessing(files: ImageFiles, pre: dict[str, Any], run_name: str, source: str) -> ImageFiles:
    """Another streamed folder as a run's inputs: the run's conversion and scaling, never fitted again."""
    files = replace(files, image=pre.get("image"), scaler=pre["scaling"])
    shape = tuple(pre["input_shape"])
    if files.shape[1:] != shape:
        raise DataError(f"{source} gives images of shape {files.shape[1:]}; run {run_name} was trained on "
                        f"{shape}. Set data.size and data.color to the run's")
    return files
