"""``dlcli runs compare``: a row per run, only the config keys that differ, then the metrics.

A component's parameters are compared only between runs of the same component: a sweep over
``model=mlp,cnn`` shows one ``model`` column, not every knob in which an MLP differs from a CNN.
"""

from __future__ import annotations

import csv
import io
import json
import math
import statistics
from dataclasses import dataclass
from typing import Any

from dlcli.errors import DlcliError
from dlcli.runs.direction import metric_mode
from dlcli.runs.table import RunRecord

# Where and under which label a run was saved, not how it was trained: never a column of differences
# (the run id and name identify each row anyway).
BOOKKEEPING = frozenset({"name", "output_dir"})
SPLIT_ORDER = {"test": 0, "val": 1, "train": 2}
_ABSENT = "<absent>"


@dataclass
class Comparison:
    """The table ``runs compare`` prints; ``best`` holds each metric's best value, to highlight."""

    config_keys: list[str]  # display names: "model" for model.name, else the dotted key
    metric_keys: list[str]
    rows: list[dict[str, Any]]  # ungrouped: "run", "status", config and metric values; grouped: "n", Stat metrics
    grouped: bool
    best: dict[str, float]


@dataclass
class Stat:
    """A metric over a group of runs (repeated seeds): mean ± std over the ``n`` runs that have it."""

    mean: float
    std: float
    n: int

    def __str__(self) -> str:
        return f"{_fmt(self.mean)} ± {_fmt(self.std)}"


def display_name(key: str) -> str:
    """``model.name`` -> ``model``: a component is named by its group, as on the command line."""
    return key[: -len(".name")] if key.endswith(".name") else key


def differing_keys(flats: list[dict[str, Any]]) -> list[str]:
    """The flat config keys whose values are not the same in every run, in config order.

    A key inside a component node (one with a ``name``) is compared only among runs whose enclosing
    components have the same names; the component's own ``name`` key carries the rest of the difference.
    """
    keys: dict[str, None] = {}
    for flat in flats:
        keys.update(dict.fromkeys(k for k in flat if k not in BOOKKEEPING))
    components = sorted({k[: -len(".name")] for k in keys if k.endswith(".name")}, key=len)
    differ = []
    for key in keys:
        first = flats[0].get(key, _ABSENT)
        if all(flat.get(key, _ABSENT) == first for flat in flats):  # most keys: the same everywhere
            continue
        owners = [c for c in components if key.startswith(c + ".") and key != f"{c}.name"]
        seen: dict[tuple, set[str]] = {}
        for flat in flats:
            context = tuple(_key(flat.get(f"{c}.name", _ABSENT)) for c in owners)
            seen.setdefault(context, set()).add(_key(flat.get(key, _ABSENT)))
        if any(len(values) > 1 for values in seen.values()):
            differ.append(key)
    return differ


def metric_names(records: list[RunRecord]) -> list[str]:
    """Every final metric any of the runs has: test, then val, then train ones, by name within each."""
    names = {k for r in records for k in r.metrics}
    return sorted(names, key=lambda k: (SPLIT_ORDER.get(k.split("/", 1)[0], 3), k))


def compare(records: list[RunRecord], sort: str | None = None, group_by: list[str] = ()) -> Comparison:
    """Compare runs: config differences and metrics, sorted by ``sort``, or aggregated by ``group_by`` keys."""
    if not records:
        raise DlcliError("no runs to compare (check RUN, --sweep, --filter and --output-dir)")
    flats = [_cv_only_when_used(r.flat_config) for r in records]
    flat_keys = differing_keys(flats)
    metrics = metric_names(records)
    if group_by:
        comparison = _grouped(records, flats, flat_keys, metrics, [_flat_key(k, flats) for k in group_by])
    else:
        rows = [{"run": r.run_id, "name": r.summary.get("name"), "status": r.status,
                 **{display_name(k): f.get(k) for k in flat_keys}, **{m: r.metrics.get(m) for m in metrics}}
                for r, f in zip(records, flats, strict=True)]
        comparison = Comparison([display_name(k) for k in flat_keys], metrics, rows, False, {})
    comparison.best = {m: b for m in metrics if (b := _best([_number(row.get(m)) for row in comparison.rows], m))
                       is not None}
    if sort:
        _sort(comparison, sort)
    return comparison


def _cv_only_when_used(flat: dict[str, Any]) -> dict[str, Any]:
    """A run's flat config without its ``cv.*`` keys when it was no cross-validation fold (``cv.folds`` null):
    their defaults (fold 0, strategy stratified) say nothing about it."""
    if flat.get("cv.folds") is not None:
        return flat
    return {k: v for k, v in flat.items() if not k.startswith("cv.")}


def _grouped(records: list[RunRecord], flats: list[dict], flat_keys: list[str], metrics: list[str],
             group_keys: list[str]) -> Comparison:
    """One row per distinct value of the ``group_keys``; other differing keys only where constant in every group."""
    groups: dict[tuple, list[int]] = {}
    for i, flat in enumerate(flats):
        groups.setdefault(tuple(_key(flat.get(k)) for k in group_keys), []).append(i)
    constant = [k for k in flat_keys if k not in group_keys
                and all(len({_key(flats[i].get(k)) for i in members}) == 1 for members in groups.values())]
    keys = group_keys + constant
    rows = []
    for members in groups.values():
        row: dict[str, Any] = {display_name(k): flats[members[0]].get(k) for k in keys}
        row["n"] = len(members)
        for m in metrics:
            values = [v for i in members if (v := _number(records[i].metrics.get(m))) is not None]
            row[m] = Stat(statistics.fmean(values), statistics.stdev(values) if len(values) > 1 else 0.0,
                          len(values)) if values else None
        rows.append(row)
    return Comparison([display_name(k) for k in keys], metrics, rows, True, {})


def _flat_key(key: str, flats: list[dict[str, Any]]) -> str:
    """The flat config key for a --group-by key (``model`` -> ``model.name``); DlcliError if no run has it."""
    for candidate in (key, f"{key}.name"):
        if any(candidate in f for f in flats):
            return candidate
    raise DlcliError(f"--group-by {key}: no compared run has this config key (e.g. seed, optimizer.lr, model)")


def _sort(comparison: Comparison, sort: str) -> None:
    """Sort rows by a metric (best first, by its direction) or a config key (ascending); missing values last."""
    if sort in comparison.metric_keys:
        sign = -1.0 if metric_mode(sort) == "max" else 1.0

        def by_metric(row: dict[str, Any]) -> tuple[bool, float]:
            value = _number(row.get(sort))
            return (True, 0.0) if value is None else (False, sign * value)

        comparison.rows.sort(key=by_metric)
        return
    column = display_name(sort)
    if column not in comparison.config_keys and column not in ("run", "name", "status"):
        raise DlcliError(f"--sort {sort}: not a compared column. Metrics: "
                         f"{', '.join(comparison.metric_keys) or 'none'}; config keys that differ: "
                         f"{', '.join(comparison.config_keys) or 'none'}")
    comparison.rows.sort(key=lambda row: (row.get(column) is None, _sortable(row.get(column))))


def _sortable(value: Any) -> tuple:
    if isinstance(value, int | float) and not isinstance(value, bool):
        return (0, value, "")
    return (1, 0, value if isinstance(value, str) else json.dumps(value, sort_keys=True))


def _best(values: list[float | None], metric: str) -> float | None:
    present = [v for v in values if v is not None]
    if not present:
        return None
    return max(present) if metric_mode(metric) == "max" else min(present)


def _number(value: Any) -> float | None:
    """A metric's value as a float; None for a missing, non-numeric or NaN one (it is never the best)."""
    if isinstance(value, Stat):
        value = value.mean
    if isinstance(value, int | float) and not isinstance(value, bool) and not math.isnan(value):
        return float(value)
    return None


def _key(value: Any) -> Any:
    """A hashable stand-in for a config value (lists and mappings as JSON); strings stay apart from numbers."""
    if isinstance(value, str):
        return "s:" + value
    if value is None or isinstance(value, bool | int | float):
        return value
    return json.dumps(value, sort_keys=True)


def _fmt(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, str):
        return value
    return json.dumps(value)


def columns(comparison: Comparison) -> list[str]:
    """The columns in order: who (run, name, status; or the group size n), config differences, metrics."""
    head = ["n"] if comparison.grouped else ["run", "name", "status"]
    if comparison.grouped:
        return comparison.config_keys + head + comparison.metric_keys
    return head + comparison.config_keys + comparison.metric_keys


def cell(comparison: Comparison, row: dict[str, Any], column: str) -> str:
    """A cell as text; ``*`` marks nothing, highlighting is the renderer's job."""
    return str(row[column]) if isinstance(row.get(column), Stat) else _fmt(row.get(column))


def is_best(comparison: Comparison, row: dict[str, Any], column: str) -> bool:
    value = _number(row.get(column))
    return column in comparison.best and value is not None and value == comparison.best[column]


def to_csv(comparison: Comparison) -> str:
    """Plain values (full precision); a grouped metric becomes ``<metric>_mean``, ``_std`` and ``_n`` columns."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    cols = columns(comparison)
    header = [c for col in cols for c in ((f"{col}_mean", f"{col}_std", f"{col}_n")
                                          if comparison.grouped and col in comparison.metric_keys else (col,))]
    writer.writerow(header)
    for row in comparison.rows:
        cells: list[Any] = []
        for col in cols:
            value = row.get(col)
            if comparison.grouped and col in comparison.metric_keys:
                cells += [value.mean, value.std, value.n] if value else ["", "", 0]
            else:
                cells.append("" if value is None else value if isinstance(value, str | int | float) else _key(value))
        writer.writerow(cells)
    return out.getvalue()


def to_json(comparison: Comparison) -> str:
    """A list of rows; a grouped metric is ``{"mean", "std", "n"}``."""
    def plain(value: Any) -> Any:
        if isinstance(value, Stat):
            return {"mean": value.mean, "std": value.std, "n": value.n}
        return None if isinstance(value, float) and math.isnan(value) else value

    rows = [{col: plain(row.get(col)) for col in columns(comparison)} for row in comparison.rows]
    return json.dumps(rows, indent=2) + "\n"


def to_markdown(comparison: Comparison) -> str:
    """A GitHub-flavoured Markdown table; each metric's best value in bold."""
    cols = columns(comparison)
    lines = ["| " + " | ".join(cols) + " |", "| " + " | ".join("---" for _ in cols) + " |"]
    for row in comparison.rows:
        cells = [(f"**{cell(comparison, row, c)}**" if is_best(comparison, row, c) else cell(comparison, row, c))
                 .replace("|", "\\|") for c in cols]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"
