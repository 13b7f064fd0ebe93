"""``dlcli resume RUN``: find the run, restore its config, check that it can go on, and say from where.

The training itself is :func:`dlcli.training.train.train` with ``resume=``: the same code path as a new
run, continuing in the run's own folder from ``checkpoints/last.ckpt`` (written atomically at the end
of every epoch, with the optimizer, scheduler, loops, callbacks and random generators).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dlcli.errors import DlcliError
from dlcli.runs import folder

# What an override may change when resuming: how long and where to train, not what is trained on what.
# The model, data, loss, optimizer and schedule shape the checkpoint and the data split, so they stay.
RESUMABLE = ("trainer.", "threads", "data.num_workers")
REMOVABLE = ("callbacks.early_stopping",)  # `~callbacks.early_stopping`: train on past its patience


@dataclass
class Resume:
    """What :func:`dlcli.training.train.train` needs to continue a run."""

    run_dir: Path
    ckpt_path: str | None  # checkpoints/last.ckpt; None: the run stopped in its first epoch and starts over
    from_epoch: int | None  # the checkpoint's epoch (0-based, as in metrics.csv)
    preprocessing: dict[str, Any]  # the run's own, re-applied to the data
    summary: dict[str, Any]  # as the run left it
    extend: bool  # more epochs were asked for than the run had

    def summary_now(self, overrides: list[str]) -> dict[str, Any]:
        """summary.json of the run as it goes on: running again, in this process, one resume more."""
        summary = {k: v for k, v in self.summary.items() if k != "error"}
        summary.update(status="running", resumes=int(summary.get("resumes") or 0) + 1,
                       resumed_from_epoch=self.from_epoch, resume_overrides=overrides,
                       resumed_at=folder.now_iso(), **folder.owner())
        return summary

    def describe(self, cfg: dict) -> str:
        if self.ckpt_path is None:
            return ("resume: the run stopped before its first epoch ended (no checkpoints/last.ckpt): "
                    "training starts over, with the same seed")
        return (f"resume: from checkpoints/last.ckpt, after epoch {self.from_epoch + 1} "
                f"of {cfg['trainer']['max_epochs']}")


def find_run(ref: str, output_dir: str | Path) -> Path:
    """The run folder for RUN (a folder, a run id, an id prefix or ``last``), or a DlcliError saying where it looked."""
    from dlcli.runs.table import resolve

    return resolve(ref, output_dir)


def prepare_resume(ref: str, overrides: list[str], output_dir: str | Path = "outputs",
                   allow_changed_data: bool = False) -> tuple[dict, Resume]:
    """(the run's config with ``overrides`` applied, how to resume it); DlcliError if it cannot be resumed.

    An ``output_dir=PATH`` override only says where to look for RUN. Data files that changed since the
    run recorded their fingerprint are refused (a DataError naming them), unless ``allow_changed_data``.
    """
    parsed = _parse(overrides)
    output_dir = next((value for key, _, value in parsed if key == "output_dir"), output_dir)
    run_dir = find_run(ref, output_dir)
    locked_before = (run_dir / folder.LOCK).is_file()  # a run from before locks has none: pid and heartbeat tell
    if int(os.environ.get("LOCAL_RANK", "0")) == 0 and int(os.environ.get("RANK", "0")) == 0:
        try:  # held from here on: a second resume, or an rm, meanwhile is refused at once
            folder.claim(run_dir)
        except folder.RunBusy:
            raise DlcliError(f"run {run_dir.name} is held by another process (training, resuming or deleting "
                             "it): a run has one owner at a time, so it is not resumed twice; nothing was "
                             "changed") from None
    try:
        return _prepare(ref, parsed, run_dir, allow_changed_data, locked_before)
    except BaseException:
        folder.release(run_dir)
        raise


def _prepare(ref: str, parsed: list, run_dir: Path, allow_changed_data: bool,
             locked_before: bool) -> tuple[dict, Resume]:
    missing = [n for n in (folder.CONFIG, folder.PREPROCESSING, folder.SUMMARY) if not (run_dir / n).is_file()]
    if missing:
        raise DlcliError(f"RUN={ref}: {run_dir} is not a complete dlcli run folder ({', '.join(missing)} missing), "
                         "so it cannot be resumed")
    summary = folder.read_summary(run_dir)
    if summary.get("kind") == "lr_find":
        raise DlcliError(f"RUN={ref}: {run_dir} is an lr-find result, not a training run")
    from dlcli.config.validate import validate
    from dlcli.training.reload import check_plugins, check_run_config

    cfg = _load_config(run_dir)
    check_plugins(run_dir, cfg)  # a run trained with --plugin needs it again
    cfg = check_run_config(run_dir, cfg)
    before = cfg["trainer"]["max_epochs"]
    for key, kind, value in parsed:
        if key != "output_dir":
            _apply(cfg, key, kind, value)
    cfg = validate(cfg)  # trainer.max_epochs=abc and the like: refused here, naming the key, before any work
    extend = cfg["trainer"]["max_epochs"] is not None and (before is None or cfg["trainer"]["max_epochs"] > before)
    _check_status(run_dir, summary, extend, locked_before)
    ckpt_path, from_epoch = _last_checkpoint(run_dir, cfg)
    reached, asked = (from_epoch + 1 if from_epoch is not None else 0), cfg["trainer"]["max_epochs"]
    if asked is not None and asked < reached:  # Lightning would refuse it mid-start, with the run marked failed
        raise DlcliError(f"RUN={ref}: trainer.max_epochs={asked} is fewer than the {reached} epochs run "
                         f"{run_dir.name} has already trained (its checkpoints/last.ckpt is from epoch {reached}). "
                         f"Give trainer.max_epochs={reached} or more, or leave it out to finish the planned "
                         f"{before} epochs; the run is unchanged")
    preprocessing = folder.read_run_json(run_dir / folder.PREPROCESSING)
    from dlcli.data.fingerprint import check

    check(preprocessing, cfg["data"], allow_changed_data, f"run {run_dir.name}")
    if ckpt_path is None and int(os.environ.get("LOCAL_RANK", "0")) == 0:  # stopped in its first epoch:
        (run_dir / folder.METRICS).unlink(missing_ok=True)  # starting over writes metrics.csv anew
    return cfg, Resume(run_dir, ckpt_path, from_epoch, preprocessing, summary, extend)


def _parse(overrides: list[str]) -> list[tuple[str, str, Any]]:
    """(key, 'set' | 'delete', value) for each override; DlcliError for one that resuming cannot honour."""
    from hydra.core.override_parser.overrides_parser import OverridesParser
    from hydra.errors import HydraException

    try:
        parsed = OverridesParser.create().parse_overrides(list(overrides))
    except HydraException as e:
        raise DlcliError(f"resume: cannot parse the overrides: {e}") from None
    out = []
    for o in parsed:
        key = o.key_or_group
        if o.is_delete():
            if key not in REMOVABLE:
                raise DlcliError(f"resume: '{o.input_line}' cannot remove {key} from a run that is going on; "
                                 f"only {', '.join('~' + r for r in REMOVABLE)} can be removed")
            out.append((key, "delete", None))
            continue
        if key != "output_dir" and not any(key == a or (a.endswith(".") and key.startswith(a)) for a in RESUMABLE):
            raise DlcliError(
                f"resume: '{o.input_line}' would change {key}, which the checkpoint or the data split depends "
                "on. A resumed run can change trainer.* (e.g. trainer.max_epochs=50 to train longer), threads "
                f"and data.num_workers{', and remove ' + ', '.join('~' + r for r in REMOVABLE)}. "
                "To change anything else, start a new run with `dlcli train` (model.pretrained=RUN starts "
                "from this run's weights)")
        out.append((key, "set", o.value()))
    return out


def _load_config(run_dir: Path) -> dict:
    from dlcli.training.reload import read_run_config

    return read_run_config(run_dir)


def _apply(cfg: dict, key: str, kind: str, value: Any) -> None:
    *parents, last = key.split(".")
    node = cfg
    for part in parents:
        node = node.setdefault(part, {})
    if kind == "delete":
        node.pop(last, None)
    else:
        node[last] = value


def _check_status(run_dir: Path, summary: dict, extend: bool, locked_before: bool = True) -> None:
    if int(os.environ.get("LOCAL_RANK", "0")) > 0:
        return  # the extra processes of a multi-device resume: rank 0 has already marked the run running
    if run_dir.resolve() in folder.held():  # this process holds the run now: whoever trained it is gone...
        # ...for certain if the run had a lock (its holder would still hold it); a run from before locks is
        # judged by its pid and heartbeat
        status = folder.summary_status(summary) if not locked_before else summary.get("status", "unknown")
        status = "dead" if status == "running" and locked_before else status
    else:
        status = folder.run_status(run_dir)
    if status == "running":
        raise DlcliError(f"run {run_dir.name} is still running (process {summary.get('pid')} on "
                         f"{summary.get('hostname')}, last heartbeat {summary.get('heartbeat')}); "
                         "stop it first (Ctrl-C, or kill -TERM it), then resume")
    if status == "completed" and not extend:
        raise DlcliError(f"run {run_dir.name} has completed ({summary.get('epochs')} epochs); to train it on, "
                         "give more epochs, e.g. trainer.max_epochs=N with N above its current trainer.max_epochs")


def _last_checkpoint(run_dir: Path, cfg: dict) -> tuple[str | None, int | None]:
    """(checkpoints/last.ckpt, its epoch), after checking it holds a whole training state."""
    from dlcli.training.checkpoint_io import load_checkpoint, remove_partial

    ckpt_dir = run_dir / folder.CHECKPOINTS
    if ckpt_dir.is_dir():
        remove_partial(ckpt_dir)  # temporary files of a write the kill cut short
    path = ckpt_dir / folder.LAST_CKPT
    saver = (cfg.get("callbacks") or {}).get("model_checkpoint") or {}
    if not path.is_file():
        if not saver or not saver.get("save_last", True):
            raise DlcliError(f"run {run_dir.name} keeps no checkpoints/last.ckpt (its config has no "
                             "callbacks.model_checkpoint with save_last=true), so it cannot be resumed")
        return None, None  # stopped before the end of its first epoch
    state = load_checkpoint(path)
    if "optimizer_states" not in state or "loops" not in state:
        raise DlcliError(f"{path} holds weights only (callbacks.model_checkpoint.save_weights_only=true), "
                         "not the optimizer and loop state that resuming needs")
    return str(path), int(state["epoch"])
