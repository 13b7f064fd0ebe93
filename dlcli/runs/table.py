"""Run folders as records for ``dlcli runs``: found, read once, filtered. Light: json, csv and PyYAML only.

1,000 runs must answer in well under a second, so each run costs one small JSON read (summary.json),
plus one more (config.json, written beside config.yaml) only when a command needs the config.
"""

from __future__ import annotations

import csv
import fnmatch
import json
import math
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dlcli.errors import DlcliError
from dlcli.runs import folder

MAX_DEPTH = 3  # run folders are searched this many levels below output_dir (e.g. a sweep's own folder)
SUMMARY_KEYS = ("status", "run_id", "name", "task", "data", "model", "sweep", "trial", "seed")


@dataclass
class RunRecord:
    """One run folder: its summary.json, its live status, and (read on demand) its flattened config."""

    path: Path
    summary: dict[str, Any]
    status: str
    _flat: dict[str, Any] | None = field(default=None, repr=False)

    @property
    def run_id(self) -> str:
        return str(self.summary.get("run_id") or self.path.name)

    @property
    def metrics(self) -> dict[str, Any]:
        return self.summary.get("metrics") or {}

    @property
    def flat_config(self) -> dict[str, Any]:
        """The config as ``{"optimizer.lr": 0.001, ...}``; read the first time it is asked for."""
        if self._flat is None:
            self._flat = flatten(read_config(self.path))
        return self._flat

    def value(self, key: str) -> Any:
        """What ``key`` means for this run: a status or summary field, a metric, or a config key.

        A component group (``model``, ``optimizer``, ...) stands for its name: ``model`` is ``model.name``.
        """
        if key == "status":
            return self.status
        if key in self.metrics:
            return self.metrics[key]
        flat = self.flat_config
        if key in flat:
            return flat[key]
        if f"{key}.name" in flat:
            return flat[f"{key}.name"]
        return self.summary.get(key)


def find_run_dirs(output_dir: str | Path, depth: int = MAX_DEPTH) -> list[Path]:
    """Every folder holding a summary.json under ``output_dir``, not looking inside run folders."""
    found: list[Path] = []
    pending = [(Path(output_dir).expanduser(), 0)]
    while pending:
        here, level = pending.pop()
        try:
            entries = list(os.scandir(here))
        except (FileNotFoundError, NotADirectoryError, PermissionError):
            continue
        for entry in entries:
            if not entry.is_dir() or entry.name.startswith("."):
                continue
            path = Path(entry.path)
            if os.path.isfile(os.path.join(entry.path, folder.SUMMARY)):
                found.append(path)
            elif level + 1 < depth:
                pending.append((path, level + 1))
    return found


RUN_ID = re.compile(r"\d{8}-\d{6}-")  # the start of every run folder's name: its start time


# what a run folder holds before its summary.json makes it a run (besides hidden files: the lock, temporary files)
# provenance/: requirements.txt (and diff.patch) are written just before the first summary.json
START_FILES = {folder.CONFIG, folder.CONFIG_JSON, folder.OVERRIDES, folder.PREPROCESSING, "provenance"}


def find_empty_run_dirs(output_dir: str | Path) -> list[Path]:
    """Run folders under ``output_dir`` (directly) that are no run yet: no summary.json, nothing but dlcli's
    start files and hidden files (its lock, temporary files). What a run killed in its first moments, or
    refused by a full disk, leaves behind; nothing in them is worth keeping."""
    found = []
    try:
        entries = list(os.scandir(Path(output_dir).expanduser()))
    except (FileNotFoundError, NotADirectoryError, PermissionError):
        return []
    for entry in entries:
        if entry.is_dir(follow_symlinks=False) and RUN_ID.match(entry.name):
            try:
                names = os.listdir(entry.path)
            except OSError:
                continue
            if all(name.startswith(".") or name in START_FILES for name in names):
                found.append(Path(entry.path))
    return sorted(found, reverse=True)


def read_record(run_dir: Path, broken: list[str] | None = None) -> RunRecord | None:
    """The run's record, or None for a folder that is not a training run (an lr-find result), or whose
    summary.json is unreadable or damaged: then what is wrong is appended to ``broken``, naming the file."""
    try:
        summary = folder.read_summary(run_dir)
    except folder.RunFileError as e:
        if broken is not None:
            broken.append(str(e))
        return None
    if "run_id" not in summary or summary.get("kind") == "lr_find":
        return None
    return RunRecord(run_dir, summary, folder.summary_status(summary, run_dir=run_dir))


def load_records(output_dir: str | Path, sweep: str | None = None, status: str | None = None,
                 filters: list[tuple[str, str]] = (), broken: list[str] | None = None) -> list[RunRecord]:
    """The runs under ``output_dir``, newest first (run ids start with their start time), that match."""
    records = [r for r in (read_record(d, broken) for d in find_run_dirs(output_dir)) if r is not None]
    if sweep is not None:
        records = [r for r in records if in_sweep(r, sweep)]
    if status is not None:
        records = [r for r in records if r.status == status]
    records = [r for r in records if all(matches(r.value(k), v) for k, v in filters)]
    return sorted(records, key=lambda r: (r.run_id, str(r.path)), reverse=True)


def in_sweep(record: RunRecord, sweep: str) -> bool:
    """Whether the run is a trial of ``sweep`` (its name, or a path whose last part is its name)."""
    name = record.summary.get("sweep")
    return name is not None and str(name) in (sweep, Path(sweep).name)


def parse_filters(items: list[str] | None) -> list[tuple[str, str]]:
    """``["optimizer.lr=0.001", "model=mlp"]`` as (key, value) pairs; DlcliError for one without ``=``."""
    pairs = []
    for item in items or []:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise DlcliError(f"--filter '{item}': write it as key=value, e.g. --filter model=mlp "
                             "or --filter optimizer.lr=0.001 (a value may use * and ? wildcards)")
        pairs.append((key.strip(), value.strip()))
    return pairs


def matches(actual: Any, wanted: str) -> bool:
    """Whether a run's value equals a filter's text: numbers as numbers, ``null``/``true``/``false``, wildcards."""
    if actual is None:
        return wanted.lower() in ("null", "none", "~", "")
    if isinstance(actual, bool):
        return wanted.lower() == str(actual).lower()
    if isinstance(actual, int | float):
        try:
            number = float(wanted)
        except ValueError:
            return False
        return number == actual or math.isclose(number, actual, rel_tol=1e-9)
    text = actual if isinstance(actual, str) else json.dumps(actual)
    return fnmatch.fnmatchcase(text, wanted)


def read_config(run_dir: Path) -> dict[str, Any]:
    """The run's config: config.json when there (fast), else config.yaml (runs from before config.json)."""
    path = run_dir / folder.CONFIG_JSON
    if path.is_file():
        return folder.read_run_json(path)  # a damaged one: a RunFileError naming it
    path = run_dir / folder.CONFIG
    if not path.is_file():
        return {}
    import yaml

    from dlcli.config.limits import check_yaml_file

    check_yaml_file(path)  # aliases share nodes in PyYAML, but flatten() would walk each use: a bomb is refused
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml's loader is ~10x faster when built
    with path.open(encoding="utf-8") as f:
        return yaml.load(f, Loader=loader) or {}  # noqa: S506 -- a safe loader


def flatten(node: Any, prefix: str = "") -> dict[str, Any]:
    """Nested mappings as dotted keys; lists and scalars are the leaves. An empty mapping is a leaf ``{}``."""
    if not isinstance(node, dict) or (not node and prefix):
        return {prefix: node}
    flat: dict[str, Any] = {}
    for key, value in node.items():
        path = f"{prefix}.{key}" if prefix else str(key)
        if isinstance(value, dict) and value:
            flat.update(flatten(value, path))
        else:
            flat[path] = value  # a leaf: no call (1,000 configs of ~100 keys are flattened per `runs compare`)
    return flat


def read_metrics(run_dir: Path) -> list[dict[str, float]]:
    """metrics.csv as rows of floats (an empty cell is NaN); [] when the run has none yet."""
    path = run_dir / folder.METRICS
    try:
        with path.open(encoding="utf-8", newline="") as f:
            return [{k: _float(v) for k, v in row.items() if k} for row in csv.DictReader(f)]
    except FileNotFoundError:
        return []
    except (OSError, ValueError, csv.Error) as e:  # not UTF-8 (binary), unreadable, a broken CSV
        raise folder.RunFileError(f"{path} cannot be read ({getattr(e, 'strerror', None) or e})") from None


def _float(text: str | None) -> float:
    try:
        return float(text) if text not in (None, "") else math.nan
    except ValueError:
        return math.nan


def resolve(ref: str, output_dir: str | Path, option: str = "--output-dir DIR") -> Path:
    """A run folder for RUN (a path, a run id, an id prefix, or ``last``), or a DlcliError saying where it looked.

    The one lookup every command that reopens a run uses (runs, eval, predict, export, serve, resume);
    ``option`` is how that command is told to look in another output folder.
    """
    try:
        return folder.resolve_run(ref, output_dir)
    except FileNotFoundError as e:
        nested = [p for p in find_run_dirs(output_dir) + find_empty_run_dirs(output_dir)
                  if ref.strip() not in ("", ".", "..", "last") and p.name.startswith(ref)]
        if len(nested) == 1:  # a run one level down, e.g. in a sweep's own folder
            return nested[0].resolve()
        raise DlcliError(f"{e}. RUN is a run folder, a run id, an id prefix, or `last`; ids are looked up under "
                         f"{Path(output_dir).expanduser().resolve()} ({option} looks elsewhere)") from None
