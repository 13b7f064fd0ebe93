"""Pictures and tables of results in a run folder (matplotlib, imported only when drawing)."""

from __future__ import annotations

from pathlib import Path

from dlcli.runs.folder import atomic_write_text

CONFUSION_CSV = "confusion_matrix.csv"
CONFUSION_PNG = "plots/confusion_matrix.png"


def save_confusion(run_dir: Path, matrix: list[list[int]], class_names: list[str]) -> None:
    """The test confusion matrix as CSV (rows: true class, columns: predicted) and as a PNG heat map."""
    import matplotlib

    matplotlib.use("Agg")  # files only, no window
    import matplotlib.pyplot as plt

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
    fig.tight_layout()
    out = run_dir / CONFUSION_PNG
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.tmp.png")
    fig.savefig(tmp, dpi=100)
    plt.close(fig)
    tmp.replace(out)  # atomic: never a half-written picture


def _csv(text: str) -> str:
    return f'"{text}"' if "," in text or '"' in text else text
