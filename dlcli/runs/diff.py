"""``dlcli runs diff A B``: what differs between two runs, section by section: config, metrics, environment,
code, data. Reads run files only (JSON, YAML, CSV, requirements.txt): no torch.

Each section is a list of rows ``{"key", "a", "b"}`` (metrics also ``"change"``: B - A). Only differences
are listed, except the metrics, which are shown side by side whole. Bookkeeping that always differs between
two runs (run ids, start times, timings, the run's name and output folder) is no difference.
"""

from __future__ import annotations

import json
from typing import Any

from dlcli.runs import provenance
from dlcli.runs.compare import BOOKKEEPING
from dlcli.runs.table import RunRecord

SECTIONS = ("config", "metrics", "environment", "code", "data")


def _rows(a: dict[str, Any], b: dict[str, Any], prefix: str = "") -> list[dict[str, Any]]:
    return [{"key": prefix + key, "a": a.get(key), "b": b.get(key)}
            for key in sorted(a.keys() | b.keys()) if a.get(key) != b.get(key)]


def _change(a: Any, b: Any) -> float | None:
    numbers = (int, float)
    if isinstance(a, numbers) and isinstance(b, numbers) and not isinstance(a, bool) and not isinstance(b, bool):
        return b - a
    return None


def _packages(a: RunRecord, b: RunRecord) -> list[dict[str, Any]]:
    """Added (a: None), removed (b: None) and changed packages, from the two requirements.txt files; nothing
    when either run has none (runs from before provenance): unknown is not a difference."""
    ra, rb = provenance.read_requirements(a.path), provenance.read_requirements(b.path)
    if ra is None or rb is None:
        return []
    return _rows(ra, rb, prefix="package ")


def _provenance(record: RunRecord) -> dict[str, Any]:
    return record.summary.get("provenance") or {}


def _data_fingerprint(record: RunRecord) -> dict[str, Any] | None:
    """The data files' fingerprint: summary.json's provenance, else preprocessing.json's (older runs)."""
    found = _provenance(record).get("data_fingerprint")
    if found is None:
        try:
            pre = json.loads((record.path / "preprocessing.json").read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        found = pre.get("data_fingerprint") if isinstance(pre, dict) else None
    return found if isinstance(found, dict) else None


def _digest(entry: Any) -> Any:
    """A file's fingerprint as one comparable value: its sha256 (or 'missing'), else the entry as it is."""
    if isinstance(entry, dict):
        return "missing" if entry.get("missing") else entry.get("sha256", entry)
    return entry


def diff(a: RunRecord, b: RunRecord) -> dict[str, Any]:
    """The differences between runs A and B, by section (see the module docstring)."""
    ca = {k: v for k, v in a.flat_config.items() if k not in BOOKKEEPING}
    cb = {k: v for k, v in b.flat_config.items() if k not in BOOKKEEPING}
    metrics = [{"key": key, "a": a.metrics.get(key), "b": b.metrics.get(key),
                "change": _change(a.metrics.get(key), b.metrics.get(key))}
               for key in sorted(a.metrics.keys() | b.metrics.keys())]
    va, vb = a.summary.get("versions") or {}, b.summary.get("versions") or {}
    pa, pb = _provenance(a), _provenance(b)
    environment, code = _rows(va, vb), []
    if pa and pb:  # a run from before provenance: its CUDA and git state are unknown, not different
        environment += _rows({"cuda": pa.get("cuda")}, {"cuda": pb.get("cuda")})
        ga, gb = pa.get("git") or {}, pb.get("git") or {}  # null (no repository): every field unknown
        code = _rows({k: ga.get(k) for k in ("commit", "branch", "dirty")},
                     {k: gb.get(k) for k in ("commit", "branch", "dirty")}, prefix="git ")
    environment += _packages(a, b)
    da, db = _data_fingerprint(a), _data_fingerprint(b)
    data = _rows({"data": a.summary.get("data")}, {"data": b.summary.get("data")})
    if da is not None and db is not None:  # a run without a fingerprint: nothing known to compare
        data += _rows({k: _digest(v) for k, v in da.items()}, {k: _digest(v) for k, v in db.items()},
                      prefix="file ")
    return {"a": a.run_id, "b": b.run_id, "config": _rows(ca, cb), "metrics": metrics,
            "environment": environment, "code": code, "data": data}


def cell(value: Any) -> str:
    """A value as the table shows it: numbers to 4 significant digits, None as '-'."""
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, dict | list):
        return json.dumps(value, sort_keys=True)
    return str(value)


def to_markdown(result: dict[str, Any]) -> str:
    """A GitHub-flavoured Markdown heading and table per section (sections with no difference say so)."""
    lines: list[str] = []
    for section in SECTIONS:
        rows = result[section]
        lines.append(f"### {section}\n")
        if not rows:
            lines.append("(no differences)\n" if section != "metrics" else "(no metrics)\n")
            continue
        heads = ["key", result["a"], result["b"], *(["change"] if section == "metrics" else [])]
        lines.append("| " + " | ".join(h.replace("|", "\\|") for h in heads) + " |")
        lines.append("| " + " | ".join("---" for _ in heads) + " |")
        for row in rows:
            cells = [row["key"], cell(row["a"]), cell(row["b"])]
            if section == "metrics":
                cells.append(cell(row["change"]))
            lines.append("| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |")
        lines.append("")
    return "\n".join(lines)
