"""``run_cv``: the folds of a cross-validation, each an ordinary run trained in this process, and ``cv.json``.

config (composed) -> one config per fold (cv.fold, cv.repeat set), all validated before anything trains ->
``<output_dir>/cv/<id>/`` -> train each fold with :func:`dlcli.training.train.train` -> cv.json after each fold
(the folds' runs, sizes, metrics, and per metric mean, std and n over the folds) -> :class:`CvResult`
"""

from __future__ import annotations

import copy
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dlcli.errors import DlcliError
from dlcli.runs import folder
from dlcli.runs.compare import Stat

CV_DIR = "cv"  # <output_dir>/cv/<id>/cv.json, beside the fold runs in <output_dir>
CV_JSON = "cv.json"
CV_KEYS = ("folds", "fold", "repeats", "repeat", "strategy", "group", "id")  # the config's cv node


@dataclass
class CvResult:
    """What a cross-validation reports; the same as its cv.json."""

    cv_id: str
    cv_dir: Path
    status: str  # completed | failed | interrupted
    runs: list[dict[str, Any]]  # per fold: fold, repeat, run_id, run_dir, status, split_sizes, metrics, best
    stats: dict[str, Stat]  # metric -> mean ± std over the folds that have it
    monitor: str | None  # the metric each fold's best epoch was chosen by (callbacks.model_checkpoint.monitor)
    score: Stat | None  # the monitored metric at each fold's best epoch, over the folds: what a sweep optimises
    record: dict[str, Any] = field(default_factory=dict)


def fold_configs(config: dict, folds: int, repeats: int = 1, strategy: str = "stratified",
                 group: str | None = None, cv_id: str = "cv") -> list[dict]:
    """One validated config per fold, repeat after repeat: ``config`` with its cv node set for that fold.

    Each is validated here, so a config that cannot run is refused (ConfigError) before any fold trains.
    """
    from dlcli.config.validate import validate

    out = []
    for repeat in range(repeats):
        for fold in range(folds):
            cfg = copy.deepcopy(config)
            cfg["cv"] = {"folds": folds, "fold": fold, "repeats": repeats, "repeat": repeat, "strategy": strategy,
                         "group": group, "id": cv_id}
            cfg["name"] = f"{config['name']}-fold{fold}" + (f"r{repeat}" if repeats > 1 else "")
            out.append(validate(cfg))
    return out


def fold_overrides(overrides: list[str], cv: dict) -> list[str]:
    """The fold's overrides.yaml: the user's (less any cv.* of theirs) and the cv keys that make it this fold,
    so that `dlcli train <them>` trains the same fold again."""
    own = [o for o in overrides if not o.lstrip("+~").startswith("cv.")]
    return own + [f"cv.{k}={'null' if cv[k] is None else cv[k]}" for k in CV_KEYS]


def new_cv_dir(output_dir: str | Path, cv_id: str | None) -> tuple[str, Path]:
    """(id, its new folder ``<output_dir>/cv/<id>``): ``cv_id``, or ``cv-<date>-<time>`` (plus -2, -3, ... when
    that second is taken). A given id that exists already is refused: a cv folder is never reused."""
    root = Path(output_dir).expanduser() / CV_DIR
    root.mkdir(parents=True, exist_ok=True)
    if cv_id is not None:
        path = root / cv_id
        try:
            path.mkdir()
        except FileExistsError:
            raise DlcliError(f"a cross-validation named '{cv_id}' exists already ({path}): give another --name, "
                             "or leave --name out for a dated one") from None
        return cv_id, path
    stamp = f"cv-{time.strftime('%Y%m%d-%H%M%S')}"
    for n in range(1, 1000):
        candidate = stamp if n == 1 else f"{stamp}-{n}"
        try:
            (root / candidate).mkdir()
            return candidate, root / candidate
        except FileExistsError:
            continue
    raise DlcliError(f"no free cv folder name under {root} for {stamp}: give one with --name")


def run_cv(config: dict, overrides: list[str] | tuple[str, ...] = (), *, folds: int = 5, repeats: int = 1,
           strategy: str = "stratified", group: str | None = None, cv_id: str | None = None,
           on_fold: Callable[[dict[str, Any]], None] | None = None) -> CvResult:
    """Cross-validate ``config`` (composed, see :func:`dlcli.config.compose.compose`): ``folds`` folds, drawn
    ``repeats`` times, each trained as an ordinary run (quietly, in this process), one after another.

    The test split is the same rows in every fold (dlcli/cv/split.py). ``on_fold`` is called with each fold's
    entry of cv.json as it ends. A failed fold stops the cv (cv.json says which; its error is raised again), so
    does Ctrl-C or SIGTERM (status interrupted). Returns the folds' runs and each metric's mean ± std.
    """
    from dlcli.training.train import train

    overrides = list(overrides)
    fold_configs(config, folds, repeats, strategy, group, cv_id or "cv")  # refuse a bad config before any folder
    cv_id, cv_dir = new_cv_dir(config["output_dir"], cv_id)
    configs = fold_configs(config, folds, repeats, strategy, group, cv_id)
    record: dict[str, Any] = {
        "id": cv_id, "status": "running", "folds": folds, "repeats": repeats, "strategy": strategy, "group": group,
        "overrides": overrides, "output_dir": str(Path(config["output_dir"]).expanduser().absolute()),
        "started_at": folder.now_iso(), "finished_at": None, "monitor": None, "score": None, "failed": None,
        "runs": [], "metrics": {},
    }
    result = CvResult(cv_id, cv_dir, "running", record["runs"], {}, None, None, record)
    _write(cv_dir, record)
    for cfg in configs:
        cv = cfg["cv"]
        try:
            run = train(cfg, fold_overrides(overrides, cv), console=None, progress=False)
        except BaseException as e:
            interrupted = isinstance(e, KeyboardInterrupt | SystemExit)
            made = _fold_run(cfg)
            if made is not None:
                record["runs"].append(_entry(cv, made, folder.read_summary(made)))
            record["failed"] = {"fold": cv["fold"], "repeat": cv["repeat"],
                                "run_dir": str(made) if made else None, "error": f"{type(e).__name__}: {e}"}
            if not record["runs"] and isinstance(e, DlcliError):  # refused before any fold ran: nothing to keep
                shutil.rmtree(cv_dir, ignore_errors=True)
                raise
            _finish(result, "interrupted" if interrupted else "failed")
            raise
        entry = _entry(cv, run.run_dir, run.summary)
        record["runs"].append(entry)
        _summarise(result)
        _write(cv_dir, record)
        if on_fold is not None:
            on_fold(entry)
    _finish(result, "completed")
    return result


def _entry(cv: dict, run_dir: Path, summary: dict) -> dict[str, Any]:
    return {"fold": cv["fold"], "repeat": cv["repeat"], "run_id": run_dir.name, "run_dir": str(run_dir),
            "status": summary.get("status"), "split_sizes": summary.get("split_sizes"),
            "metrics": summary.get("metrics") or {}, "best": summary.get("best")}


def _fold_run(cfg: dict) -> Path | None:
    """The run folder a fold made before it failed, if it got that far (found by its summary's cv entry)."""
    from dlcli.runs.table import find_run_dirs

    cv = cfg["cv"]
    for run_dir in find_run_dirs(cfg["output_dir"], depth=1):
        try:
            link = folder.read_summary(run_dir).get("cv") or {}
        except folder.RunFileError:
            continue
        if (link.get("id"), link.get("fold"), link.get("repeat")) == (cv["id"], cv["fold"], cv["repeat"]):
            return run_dir
    return None


def _summarise(result: CvResult) -> None:
    """Each metric's mean ± std over the folds so far, by `runs compare --group-by cv.id`'s statistics."""
    from dlcli.runs.compare import compare
    from dlcli.runs.table import read_record

    records = [r for entry in result.runs if (r := read_record(Path(entry["run_dir"]))) is not None]
    if not records:
        return
    row = compare(records, group_by=["cv.id"]).rows[0]
    result.stats = {k: v for k, v in row.items() if isinstance(v, Stat)}
    monitors = {(entry.get("best") or {}).get("monitor") for entry in result.runs} - {None}
    result.monitor = monitors.pop() if len(monitors) == 1 else None
    result.score = result.stats.get(result.monitor) if result.monitor else None
    record = result.record
    record["metrics"] = {k: {"mean": s.mean, "std": s.std, "n": s.n} for k, s in result.stats.items()}
    record["monitor"] = result.monitor
    record["score"] = None if result.score is None else \
        {"mean": result.score.mean, "std": result.score.std, "n": result.score.n}


def _finish(result: CvResult, status: str) -> None:
    result.status = result.record["status"] = status
    result.record["finished_at"] = folder.now_iso()
    _summarise(result)
    _write(result.cv_dir, result.record)


def _write(cv_dir: Path, record: dict) -> None:
    folder.write_json(cv_dir / CV_JSON, record)

