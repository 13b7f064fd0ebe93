"""The pictures of an evaluation report (``dlcli eval --report``): curves, calibration, worst samples, residuals.

Each function takes plain numpy arrays and writes one PNG atomically (matplotlib's Agg back end, as
plots.py); the numbers behind them are computed in dlcli/training/report.py.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from dlcli.runs.plots import _pyplot, _save

LEGEND_MAX = 12  # curves named in a legend; with more classes the lines are drawn unnamed


def curves(path: Path, lines: list[tuple[str, np.ndarray, np.ndarray, float]], kind: str) -> Path:
    """ROC (``kind="roc"``: false against true positive rate) or precision-recall (``"pr"``) curves,
    one per class (one-vs-rest); ``lines`` holds (class, x, y, area)."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(5.5, 5))
    for name, x, y, area in lines:
        label = f"{name} ({'AUC' if kind == 'roc' else 'AP'} {area:.3f})" if len(lines) <= LEGEND_MAX else None
        ax.plot(x, y, lw=1.2, label=label, drawstyle="steps-post" if kind == "pr" else "default")
    if kind == "roc":
        ax.plot([0, 1], [0, 1], ls="--", color="grey", lw=0.8)
        ax.set(xlabel="false positive rate", ylabel="true positive rate", title="ROC (one-vs-rest)")
    else:
        ax.set(xlabel="recall", ylabel="precision", title="precision-recall (one-vs-rest)")
    ax.set(xlim=(-0.02, 1.02), ylim=(-0.02, 1.02))
    ax.grid(alpha=0.3)
    if len(lines) <= LEGEND_MAX:
        ax.legend(fontsize=7, loc="lower right" if kind == "roc" else "lower left")
    fig.tight_layout()
    return _save(fig, path)


def reliability(path: Path, confidence: np.ndarray, accuracy: np.ndarray, counts: np.ndarray, edges: np.ndarray,
                ece: float, what: str) -> Path:
    """A reliability diagram: mean ``accuracy`` against mean ``confidence`` per confidence bin, with the bins'
    sample counts below and the expected calibration error in the title."""
    plt = _pyplot()
    fig, (ax, hist) = plt.subplots(2, 1, figsize=(5.5, 6), gridspec_kw={"height_ratios": [3, 1]}, sharex=True)
    filled = counts > 0
    width = np.diff(edges)
    ax.bar(edges[:-1][filled], accuracy[filled], width=width[filled], align="edge", edgecolor="black",
           alpha=0.7, label="observed")
    ax.plot([0, 1], [0, 1], ls="--", color="grey", label="perfectly calibrated")
    ax.plot(confidence[filled], accuracy[filled], "o", color="C3", ms=4, label="bin mean confidence")
    ax.set(ylabel=what, title=f"reliability (ECE {ece:.4f})", ylim=(0, 1.02))
    ax.legend(fontsize=8, loc="upper left")
    ax.grid(alpha=0.3)
    hist.bar(edges[:-1], counts, width=width, align="edge", edgecolor="black", color="C7")
    hist.set(xlabel="predicted probability", ylabel="samples", xlim=(0, 1))
    fig.tight_layout()
    return _save(fig, path)


def contact_sheet(path: Path, images: np.ndarray, titles: list[str]) -> Path:
    """Images (N, C, H, W) in a grid, each scaled to its own range for display, titled (row, true, predicted)."""
    plt = _pyplot()
    n = len(images)
    cols = min(6, n)
    rows = -(-n // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(2.1 * cols, 2.8 * rows), squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    for ax, image, title in zip(axes.flat, images, titles, strict=False):
        img = np.asarray(image, dtype=np.float64)
        lo, hi = np.nanmin(img), np.nanmax(img)
        img = (img - lo) / (hi - lo) if hi > lo else np.zeros_like(img)  # the model's inputs, shown 0..1
        if img.shape[0] == 1:
            ax.imshow(img[0], cmap="gray", vmin=0, vmax=1)
        else:
            ax.imshow(img[:3].transpose(1, 2, 0))  # (C, H, W) -> (H, W, C)
        ax.set_title(title, fontsize=7)
    fig.tight_layout()
    return _save(fig, path)


def predicted_vs_actual(path: Path, actual: np.ndarray, predicted: np.ndarray, names: list[str]) -> Path:
    """One panel per output: predictions against targets, with the diagonal where they would be equal."""
    plt = _pyplot()
    k = actual.shape[1]
    fig, axes = plt.subplots(1, k, figsize=(4.5 * k, 4.3), squeeze=False)
    for j, ax in enumerate(axes.flat):
        a, p = actual[:, j], predicted[:, j]
        lo, hi = float(min(a.min(), p.min())), float(max(a.max(), p.max()))
        ax.scatter(a, p, s=8, alpha=0.6)
        ax.plot([lo, hi], [lo, hi], ls="--", color="grey", lw=0.8)
        ax.set(xlabel="actual", ylabel="predicted", title=names[j])
        ax.grid(alpha=0.3)
    fig.tight_layout()
    return _save(fig, path)


def residuals(path: Path, actual: np.ndarray, predicted: np.ndarray, names: list[str]) -> Path:
    """One panel per output: residuals (actual - predicted) against the prediction, and their histogram."""
    plt = _pyplot()
    k = actual.shape[1]
    fig, axes = plt.subplots(2, k, figsize=(4.5 * k, 6.5), squeeze=False)
    for j in range(k):
        r = actual[:, j] - predicted[:, j]
        axes[0, j].scatter(predicted[:, j], r, s=8, alpha=0.6)
        axes[0, j].axhline(0, ls="--", color="grey", lw=0.8)
        axes[0, j].set(xlabel="predicted", ylabel="residual (actual - predicted)", title=names[j])
        axes[0, j].grid(alpha=0.3)
        axes[1, j].hist(r, bins=30, color="C0", edgecolor="black")
        axes[1, j].set(xlabel="residual", ylabel="samples")
    fig.tight_layout()
    return _save(fig, path)
