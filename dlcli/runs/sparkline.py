"""Curves in the terminal: one-line sparklines and a braille line chart. Pure Python, no plotting library."""

from __future__ import annotations

import math

BARS = "▁▂▃▄▅▆▇█"
# Braille cells are 2 dots wide and 4 high; the bit of each dot, by (column, row from the top).
_DOT = {(0, 0): 0x01, (0, 1): 0x02, (0, 2): 0x04, (0, 3): 0x40,
        (1, 0): 0x08, (1, 1): 0x10, (1, 2): 0x20, (1, 3): 0x80}
COLOURS = ("cyan", "magenta", "green", "yellow", "blue", "red", "bright_cyan", "bright_magenta")


def sparkline(values: list[float], width: int = 40) -> str:
    """``▁▃▅█``: one character per value (every n-th value past ``width``); a NaN is a space."""
    if len(values) > width:
        step = len(values) / width
        values = [values[min(len(values) - 1, int(i * step))] for i in range(width - 1)] + [values[-1]]
    finite = [v for v in values if math.isfinite(v)]
    if not finite:
        return " " * len(values)
    low, high = min(finite), max(finite)
    span = high - low
    return "".join(" " if not math.isfinite(v) else BARS[0 if span == 0 else round((v - low) / span * (len(BARS) - 1))]
                   for v in values)


def line_chart(series: dict[str, list[float]], width: int = 60, height: int = 12) -> list[tuple[str, str | None]]:
    """Several curves (values by epoch) on one braille canvas of ``width`` x ``height`` characters.

    Returns (text, colour) pieces for ``rich.text.Text.assemble``: the rows of the canvas with the value
    range on the left, the epoch axis below, then a legend with each curve's colour.
    """
    finite = [v for values in series.values() for v in values if math.isfinite(v)]
    if not finite:
        return [("(no values to plot)", None)]
    low, high = min(finite), max(finite)
    if high == low:
        low, high = low - 0.5, high + 0.5
    longest = max(len(v) for v in series.values())
    dots_w, dots_h = width * 2, height * 4
    cells: dict[tuple[int, int], int] = {}
    colours: dict[tuple[int, int], str] = {}

    def dot(x: int, y: int, colour: str) -> None:
        cell = (x // 2, y // 4)
        cells[cell] = cells.get(cell, 0) | _DOT[(x % 2, y % 4)]
        colours[cell] = colour

    def point(i: int, v: float) -> tuple[float, float]:
        x = 0.0 if longest == 1 else i / (longest - 1) * (dots_w - 1)
        return x, (high - v) / (high - low) * (dots_h - 1)  # row 0 at the top

    for n, values in enumerate(series.values()):
        colour = COLOURS[n % len(COLOURS)]
        points = [point(i, v) if math.isfinite(v) else None for i, v in enumerate(values)]
        for a, b in zip(points, points[1:] + [None], strict=True):
            if a is None:
                continue
            if b is None:
                dot(round(a[0]), round(a[1]), colour)
                continue
            steps = max(1, int(max(abs(b[0] - a[0]), abs(b[1] - a[1]))))
            for s in range(steps + 1):  # a straight segment, dot by dot
                t = s / steps
                dot(round(a[0] + (b[0] - a[0]) * t), round(a[1] + (b[1] - a[1]) * t), colour)

    label_w = max(len(_label(high)), len(_label(low)))
    pieces: list[tuple[str, str | None]] = []
    for row in range(height):
        label = _label(high) if row == 0 else _label(low) if row == height - 1 else ""
        pieces.append((f"{label:>{label_w}} ┤", None))
        for col in range(width):
            mask = cells.get((col, row))
            pieces.append((chr(0x2800 + mask), colours[(col, row)]) if mask else (" ", None))
        pieces.append(("\n", None))
    first, last = "epoch 1", f"{longest}"  # counted from 1, as `dlcli train` and plots/curves.png count
    pieces.append((" " * label_w + " └" + "─" * width + "\n", None))
    pieces.append((" " * (label_w + 2) + first + last.rjust(max(1, width - len(first))) + "\n", None))
    for n, name in enumerate(series):
        pieces += [("  ━━ ", COLOURS[n % len(COLOURS)]), (name + "\n", None)]
    return pieces


def _label(value: float) -> str:
    return f"{value:.4g}"
