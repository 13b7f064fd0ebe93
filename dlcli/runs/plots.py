"""Pictures and tables of results in a run folder (matplotlib, imported only when drawing)."""

from __future__ import annotations

from pathlib import Path

from dlcli.runs.folder import atomic_write_text

CONFUSION_CSV = "confusion_matrix.csv"
CONFUSION_PNG = "plots/confusion_matrix.png"
CURVES_PNG = "plots/curves.png"
SPLITS = ("train", "val")


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")  # files only, no window
    import matplotlib.pyplot as plt

    return plt


def _save(fig, out: Path) -> Path:
    """Write the figure atomically: never a half-written picture."""
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.tmp.png")
    fig.savefig(tmp, dpi=100)
    _pyplot().close(fig)
    tmp.replace(out)
    return out


def _margins(fig, left: float, right: float, bottom: float, top: float, wspace: float = 0.0,
             hspace: float = 0.0) -> None:
    """Place the axes with margins given in inches (each at most 45% of the figure). Measured rather than
    found: matplotlib's tight_layout measures every label by drawing the figure once more, which was 40% of a
    picture's time (0.17 s a figure here, and a run draws two at its end)."""
    width, height = fig.get_size_inches()
    left, right = min(left, 0.45 * width) / width, min(right, 0.45 * width) / width
    bottom, top = min(bottom, 0.45 * height) / height, min(top, 0.45 * height) / height
    rows, cols = fig.axes[0].get_subplotspec().get_gridspec().get_geometry() if fig.axes else (1, 1)
    axes_w = (width * (1 - left - right) - wspace * (cols - 1)) / cols
    axes_h = (height * (1 - bottom - top) - hspace * (rows - 1)) / rows
    fig.subplots_adjust(left=left, right=1 - right, bottom=bottom, top=1 - top,
                        wspace=wspace / max(axes_w, 1e-3), hspace=hspace / max(axes_h, 1e-3))


def quantities(rows: list[dict]) -> list[str]:
    """The per-epoch quantities of metrics.csv rows, loss first: ``train/loss`` + ``val/loss`` -> ``loss``."""
    names = {k.split("/", 1)[1] for row in rows for k in row if k.split("/", 1)[0] in SPLITS and "/" in k}
    return sorted(names, key=lambda q: (q != "loss", q))


def save_curves(run_dir: Path, rows: list[dict]) -> Path | None:
    """``plots/curves.png``: one panel per quantity (loss, then each metric) by epoch, train against validation.

    None (and no file) when the run recorded no epoch.
    """
    names = quantities(rows)
    if not rows or not names:
        return None
    plt = _pyplot()
    ncols = min(3, len(names))
    nrows = -(-len(names) // ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(4.5 * ncols, 3.3 * nrows), squeeze=False)
    epochs = [int(row.get("epoch", i)) + 1 for i, row in enumerate(rows)]  # 1-based, as the progress bar counts
    for ax, name in zip(axes.flat, names, strict=False):
        for split in SPLITS:
            key = f"{split}/{name}"
            if any(key in row for row in rows):
                ax.plot(epochs, [_value(row.get(key)) for row in rows], marker="o" if len(rows) <= 30 else None,
                        markersize=3, label="validation" if split == "val" else split)
        ax.set_title(name)
        _epoch_axis(ax)
        ax.grid(alpha=0.3)
        ax.legend()
    for ax in list(axes.flat)[len(names):]:
        ax.set_visible(False)
    fig.suptitle(run_dir.name, fontsize=9)
    # y tick labels up to 7 characters (matplotlib writes larger and smaller numbers with an exponent),
    # "epoch" under each panel, the run's name and each panel's title above
    _margins(fig, left=0.8, right=0.2, bottom=0.6, top=0.75, wspace=0.9, hspace=1.0)
    return _save(fig, run_dir / CURVES_PNG)


def plot_runs(curves: dict[str, dict[str, list[float]]], output: Path) -> Path:
    """Learning curves of several runs overlaid: ``curves[metric][run] = values by epoch``, one panel per metric."""
    plt = _pyplot()
    fig, axes = plt.subplots(1, len(curves), figsize=(6 * len(curves), 4.2), squeeze=False)
    for ax, (metric, runs) in zip(axes.flat, curves.items(), strict=True):
        for run, values in runs.items():
            ax.plot(range(1, len(values) + 1), values, marker="o" if len(values) <= 30 else None, markersize=3,
                    label=run)
        ax.set_title(metric)
        _epoch_axis(ax)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    fig.tight_layout()
    return _save(fig, output)


def _epoch_axis(ax) -> None:
    from matplotlib.ticker import MaxNLocator

    ax.set_xlabel("epoch")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))  # whole epochs, never 1.5


def _value(value) -> float:
    return float("nan") if value is None else float(value)


def save_confusion(run_dir: Path, matrix: list[list[int]], class_names: list[str]) -> None:
    """The test confusion matrix as CSV (rows: true class, columns: predicted) and as a PNG heat map."""
    plt = _pyplot()
    header = "true\\predicted," + ",".join(_csv(n) for n in class_names)
    rows = [f"{_csv(name)}," + ",".join(str(int(v)) for v in row) for name, row in zip(class_names, matrix,
                                                                                       strict=True)]
    atomic_write_text(run_dir / CONFUSION_CSV, "\n".join([header, *rows]) + "\n")

    n = len(class_names)
    size = max(4.0, 0.5 * n + 2)
    fig, ax = plt.subplots(figsize=(size, size))
    ax.imshow(matrix, cmap="Blues")
    ax.set_xticks(range(n), class_names, rotation=45 if n > 6 else 0, ha="right" if n > 6 else "center")
    ax.set_yticks(range(n), class_names)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title("test confusion matrix")
    peak = max(max(row) for row in matrix) or 1
    if n <= 20:  # counts in the cells while they stay readable
        for i, row in enumerate(matrix):
            for j, v in enumerate(row):
                ax.text(j, i, int(v), ha="center", va="center", color="white" if v > peak / 2 else "black")
    longest = max(len(name) for name in class_names) * 0.08  # inches of the longest class name at 10 pt
    _margins(fig, left=0.55 + longest, right=0.25, bottom=0.55 + (longest * 0.72 if n > 6 else 0.1), top=0.45)
    _save(fig, run_dir / CONFUSION_PNG)


def _csv(text: str) -> str:
    return f'"{text}"' if "," in text or '"' in text else text
