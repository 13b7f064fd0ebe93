"""Inputs unlike the training data: checked before a trained run predicts, so that a surprise is said aloud.

At training time :func:`input_range` records each feature's (or image channel's) smallest and largest
value over the training rows in ``preprocessing.json``; :func:`range_warnings` names the features of new
inputs that fall far outside it (PNG digits at 0..255 fed to a run trained on 0..16), and
:func:`unknown_token_warnings` the texts most of whose tokens the run's vocabulary has never seen.
Runs saved before these statistics existed have no ``input_range``, and are simply not checked.
"""

from __future__ import annotations

from typing import Any

import numpy as np

FAR = 1.0  # a value is far outside when it lies more than this many training-range widths beyond either end
UNKNOWN_SHARE = 0.5  # a text is mostly unknown when more than this share of its tokens is not in the vocabulary
LISTED = 5  # features (or texts) named in one warning; the rest are counted


def _axis(x: np.ndarray) -> int:
    return 1 if x.ndim == 4 else x.ndim - 1  # images (N, C, H, W): per channel; else per last-axis feature


def input_range(x: np.ndarray, names: list[str] | None = None) -> dict[str, Any]:
    """Per feature (or image channel) min and max of training inputs ``x`` (before scaling; NaN padding left out)."""
    from dlcli.data.padding import stat

    x = np.asarray(x, dtype=np.float64)
    axis = _axis(x)
    reduce = tuple(a for a in range(x.ndim) if a != axis)
    width = x.shape[axis]
    if names is None or len(names) != width:
        names = [f"channel {i}" for i in range(width)] if x.ndim == 4 else [f"feature {i}" for i in range(width)]
    return {"names": list(map(str, names)), "min": stat(x, "min", reduce).tolist(),
            "max": stat(x, "max", reduce).tolist()}


def range_warnings(x: np.ndarray, pre: dict[str, Any]) -> list[str]:
    """A warning naming the features of inputs ``x`` (before scaling, as :func:`input_range` saw the training
    rows) with values far outside the training range; none when the run saved no range or nothing is far."""
    saved = pre.get("input_range")
    x = np.asarray(x, dtype=np.float64)
    if not saved or not len(x) or x.ndim < 2:
        return []
    axis = _axis(x)
    if x.shape[axis] != len(saved["min"]):
        return []
    lo, hi = np.asarray(saved["min"]), np.asarray(saved["max"])
    span = hi - lo
    margin = FAR * np.where(span > 0, span, np.maximum(np.abs(lo), 1.0))  # a constant feature: its own size
    moved = np.moveaxis(x, axis, -1).reshape(len(x), -1, len(lo))  # (N, ..., F) -> (N, positions, F)
    with np.errstate(invalid="ignore"):
        far = (moved < lo - margin) | (moved > hi + margin)  # NaN (padding) is never far
        samples = far.any(axis=1)  # (N, F): which samples have a far value in each feature
        got_lo, got_hi = np.nanmin(moved, axis=(0, 1)), np.nanmax(moved, axis=(0, 1))
    bad = np.flatnonzero(samples.any(axis=0))
    if not len(bad):
        return []
    parts = [f"{saved['names'][j]}: {_num(got_lo[j])}..{_num(got_hi[j])} here ({int(samples[:, j].sum())} of "
             f"{len(x)} samples far outside), {_num(lo[j])}..{_num(hi[j])} in training" for j in bad[:LISTED]]
    more = f"; and {len(bad) - LISTED} more features" if len(bad) > LISTED else ""
    what = "channels" if x.ndim == 4 else "features"
    return [f"inputs fall far outside the training range in {len(bad)} of {len(lo)} {what}: " + "; ".join(parts)
            + more + ". The model has not seen such values and its predictions may be meaningless: give inputs "
            "scaled as the training data was"]


def unknown_token_warnings(texts: list[str], pre: dict[str, Any]) -> list[str]:
    """A warning naming the texts most of whose tokens are not in the run's vocabulary."""
    from dlcli.data.tokenize import UNK, tokens

    options, vocab = pre["text"], set(pre["vocab"]) - {UNK}
    mostly = []
    for i, text in enumerate(texts):
        toks = tokens(str(text), options["level"], options["lowercase"])
        unknown = sum(t not in vocab for t in toks)
        if toks and unknown > UNKNOWN_SHARE * len(toks):
            mostly.append((i, unknown, len(toks)))
    if not mostly:
        return []
    named = "; ".join(f"text {i + 1}: {u} of {n} tokens" for i, u, n in mostly[:LISTED])
    more = f"; and {len(mostly) - LISTED} more" if len(mostly) > LISTED else ""
    return [f"{len(mostly)} of {len(texts)} texts are mostly words the run's vocabulary does not know ({named}{more} "
            f"unknown; vocabulary of {len(vocab) - 1} tokens): the model reads them as <unk>, and its predictions "
            "for them say little"]


def _num(v: float) -> str:
    return f"{v:.4g}"
