"""``train(cfg)``: one run, top to bottom. The CLI and the tests call this.

validate -> data -> model, loss, optimizer -> run folder -> fit (or go on fitting, when resumed) ->
test the best checkpoint -> summary.json -> RunResult
"""

from __future__ import annotations

import logging
import platform
import shutil
import signal
import threading
import time
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from dlcli import startup
from dlcli.config.validate import validate
from dlcli.cv.split import cv_link
from dlcli.errors import DlcliError
from dlcli.registry import CALLBACKS, LOGGERS, plugins
from dlcli.runs import folder
from dlcli.runs.direction import metric_mode  # the rule lives in a light module: `runs` sorts by it
from dlcli.sweep.link import sweep_link
from dlcli.tasks import default_monitor, get_task
from dlcli.training.build import component_params

if TYPE_CHECKING:
    from dlcli.training.resume import Resume


@dataclass
class RunResult:
    """What a finished run reports; the same as its summary.json."""

    run_dir: Path
    status: str
    metrics: dict[str, float]
    best: dict[str, Any] | None
    summary: dict[str, Any] = field(default_factory=dict)
    primary: bool = True  # False in the extra processes of a multi-device run: they report nothing


# trainer.* keys dlcli applies, not passed to Lightning's Trainer: the LightningModule steps the optimiser
# (so it clips and accumulates), and the float32 matmul precision is torch's process-wide setting
DLCLI_TRAINER_KEYS = ("gradient_clip_val", "gradient_clip_algorithm", "accumulate_grad_batches", "matmul_precision")
_STARTED = time.time()  # about when this process started (rank 0's folder is newer)
RUN_DIR_ENV = "DLCLI_RUN_DIR"  # how the extra processes of a multi-device run find rank 0's folder


class Terminated(SystemExit):
    """SIGTERM arrived: the run is marked interrupted and the process exits with 143 (128 + SIGTERM)."""

    def __init__(self) -> None:
        super().__init__(143)


def _claim_run_dir(cfg: dict, resume: Resume | None) -> tuple[Path, bool]:
    """(run folder, whether this process owns it): a new folder, or the resumed run's own.

    With several processes, only global rank 0 makes the folder and writes its files; every rank trains
    into the same one. When Lightning starts them (``trainer.devices=2`` on one machine), it runs this
    same command again with LOCAL_RANK set, and rank 0 passes the path on in the environment. When a
    launcher starts them all (torchrun, SLURM's srun), they share no environment: rank 0 names the
    folder after the job (:func:`_job_key`), and the others wait for that folder to appear.
    """
    import os

    env = os.environ
    if int(env.get("LOCAL_RANK", "0")) > 0 and env.get(RUN_DIR_ENV):
        return Path(env[RUN_DIR_ENV]), False
    if resume is not None:  # every process knows the folder; rank 0 writes to it
        env[RUN_DIR_ENV] = str(resume.run_dir)
        if _global_rank() == 0:
            _claim(resume.run_dir)  # already held when prepare_resume claimed it, as `dlcli resume` does
        return resume.run_dir, _global_rank() == 0
    key = _job_key()
    if key is not None and _global_rank() > 0:
        return _wait_for_run_dir(cfg, key), False
    run_dir = folder.new_run_dir(cfg["output_dir"], cfg["name"], suffix=key)
    folder.claim(run_dir)  # a fresh folder: nobody else can hold it yet
    env[RUN_DIR_ENV] = str(run_dir)
    return run_dir, True


def _claim(run_dir: Path) -> None:
    try:
        folder.claim(run_dir)
    except folder.RunBusy:
        raise DlcliError(f"run {run_dir.name} is held by another process (training, resuming or deleting it): "
                         "a run has one owner at a time; nothing was changed") from None


def _job_key() -> str | None:
    """4 hex digits shared by every process of a job that torchrun or SLURM launched, else None."""
    import hashlib
    import os

    env = os.environ
    if int(env.get("WORLD_SIZE", "1")) > 1 and "TORCHELASTIC_RUN_ID" in env:  # torchrun
        parts = ["torchrun", env["TORCHELASTIC_RUN_ID"], env.get("MASTER_ADDR", ""), env.get("MASTER_PORT", "")]
    elif int(env.get("SLURM_NTASKS", "1")) > 1 and "SLURM_JOB_ID" in env:  # srun: one task per device
        parts = ["slurm", env["SLURM_JOB_ID"], env.get("SLURM_STEP_ID", "")]
    else:
        return None
    return hashlib.sha1("|".join(parts).encode()).hexdigest()[:4]


def _global_rank() -> int:
    """This process's rank in the whole job: torchrun sets RANK, srun SLURM_PROCID."""
    import os

    env = os.environ
    if "TORCHELASTIC_RUN_ID" not in env and int(env.get("SLURM_NTASKS", "1")) > 1:
        return int(env.get("SLURM_PROCID", "0"))
    return int(env.get("RANK", "0"))


def _wait_for_run_dir(cfg: dict, key: str, timeout: float = 600.0) -> Path:
    """Rank 0's folder for this job: named ``*-<name>-<key>``, and changed since this process started
    (an earlier job with the same key, e.g. torchrun's default rendezvous on the same port, is older)."""
    root = Path(cfg["output_dir"]).expanduser()
    slug = folder.slug(cfg["name"])
    deadline = time.monotonic() + timeout
    while True:
        fresh = [p for p in root.glob(f"*-{slug}-{key}")
                 if p.is_dir() and p.stat().st_mtime >= _STARTED - 60]
        if fresh:
            return max(fresh, key=lambda p: p.stat().st_mtime).resolve()
        if time.monotonic() > deadline:
            raise DlcliError(f"rank {_global_rank()} waited {timeout:.0f} s for rank 0 to create the run folder "
                             f"{root}/*-{slug}-{key}: output_dir must be a folder every machine of the job "
                             "shares, and rank 0 must be running")
        time.sleep(0.5)


@contextmanager
def _signals_stop_the_run() -> Iterator[None]:
    """SIGTERM raises :class:`Terminated`, as Ctrl-C raises KeyboardInterrupt, so both end the run cleanly.

    During fit, Lightning puts its own SIGTERM handler in front of this one. The handlers in place
    before are restored on the way out (Lightning leaves Ctrl-C ignored after catching one).
    """
    if threading.current_thread() is not threading.main_thread():
        yield  # signal handlers can only be set from the main thread
        return

    def on_sigterm(signum, frame) -> None:
        raise Terminated()

    before = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
    signal.signal(signal.SIGTERM, on_sigterm)
    try:
        yield
    finally:
        for signum, handler in before.items():
            if handler is not None:
                signal.signal(signum, handler)


@contextmanager
def _matmul_precision(precision: str | None) -> Iterator[None]:
    """torch's float32 matmul precision for the run ("high" allows TF32 on NVIDIA GPUs), then as it was."""
    if precision is None:
        yield
        return
    import torch

    before = torch.get_float32_matmul_precision()
    torch.set_float32_matmul_precision(precision)
    try:
        yield
    finally:
        torch.set_float32_matmul_precision(before)


def _ignore_signals() -> None:
    """While an interrupted run writes its last words, a second Ctrl-C or SIGTERM must not cut them off."""
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)


def versions() -> dict[str, str]:
    import pytorch_lightning as pl
    import torch

    import dlcli

    return {"python": platform.python_version(), "torch": torch.__version__,
            "lightning": pl.__version__, "dlcli": dlcli.__version__}


def _provenance(run_dir: Path, data_fingerprint: dict | None) -> dict[str, Any] | None:
    """summary.json's ``provenance`` (dlcli/runs/provenance.py); None when its files cannot be written: a run
    is never lost for its provenance."""
    from dlcli.runs import provenance

    try:
        return provenance.record(run_dir, data_fingerprint)
    except (OSError, folder.NoSpace):
        return None


def _quiet_lightning() -> None:
    """Keep the terminal to dlcli's own output: no GPU/TPU banners, no hints for tiny data."""
    for name in ("pytorch_lightning", "lightning", "lightning.pytorch", "lightning_fabric"):
        logging.getLogger(name).setLevel(logging.WARNING)
    warnings.filterwarnings("ignore", message=".*does not have many workers.*")
    warnings.filterwarnings("ignore", message=".*The number of training batches.*")
    warnings.filterwarnings("ignore", message=".*GPU available but not used.*")
    warnings.filterwarnings("ignore", message=".*LeafSpec.*")
    # resuming: the folder holds the run's checkpoints; a callback removed by an override drops its state
    warnings.filterwarnings("ignore", message=".*Checkpoint directory .* exists and is not empty.*")
    warnings.filterwarnings("ignore", message=".*callbacks used to create the checkpoint need to be provided.*")


def train(cfg: dict, overrides: list[str] | tuple[str, ...] = (), *, console: Any = None,
          progress: bool = True, resume: Resume | None = None, progress_console: Any = None) -> RunResult:
    """Train, test and record one run from a composed config (see :func:`dlcli.config.compose.compose`).

    ``console`` (a rich Console) gets the run's header; None trains silently. ``progress_console`` (default
    ``console``) gets the epochs as they end: a live progress bar with the finished epochs' lines above it
    when it is a terminal, else one plain line per epoch (dlcli/training/progress.py); ``progress=False``
    or ``trainer.enable_progress_bar=false`` shows neither.
    ``resume`` (see :func:`dlcli.training.resume.prepare_resume`) continues that run in its own folder
    from its last checkpoint: model, optimizer, scheduler, epoch, callbacks and random generators.
    The run is held (see :func:`dlcli.runs.folder.claim`) while this trains it, and let go when it ends.
    """
    before = folder.held()
    try:
        return _train(cfg, overrides, console=console, progress=progress, resume=resume,
                      progress_console=progress_console)
    finally:
        for run_dir in folder.held() - before | ({resume.run_dir.resolve()} if resume is not None else set()):
            folder.release(run_dir)


def _train(cfg: dict, overrides: list[str] | tuple[str, ...], *, console: Any, progress: bool,
           resume: Resume | None, progress_console: Any) -> RunResult:
    t_start = time.perf_counter()
    cfg = validate(cfg)
    if resume is None:
        folder.check_writable(cfg["output_dir"])  # a run that could not be saved never starts
    import pytorch_lightning as pl
    import torch
    from pytorch_lightning.utilities.exceptions import SIGTERMException

    from dlcli.data.stream import data_path
    from dlcli.training.build import build_run
    from dlcli.training.checkpoint_io import load_checkpoint
    from dlcli.training.pruning import TrialPruning

    _quiet_lightning()
    if isinstance(cfg["threads"], int):
        torch.set_num_threads(cfg["threads"])
    seed = cfg["seed"]
    pl.seed_everything(seed, workers=True, verbose=False)

    # data (split, scaled on train only), then the model, loss, optimizer, schedule: all by registry name.
    # A resumed run re-applies its own saved preprocessing; its weights come from the checkpoint.
    prepared, datamodule, module = build_run(cfg, fitted=resume.preprocessing if resume else None)
    model, data_cfg = module.model, cfg["data"]
    threads = set_threads(cfg, model, prepared)  # threads=auto: from the free cores and the model's work
    n_params = sum(p.numel() for p in model.parameters())
    pretrained = getattr(model, "dlcli_pretrained", None)

    # the run folder: made now, filled once everything that can refuse the config has accepted it
    run_dir, primary = _claim_run_dir(cfg, resume)
    if resume is None:
        summary: dict[str, Any] = {
            "run_id": run_dir.name, "name": cfg["name"], "status": "running", "task": prepared.task,
            "data": data_cfg["name"], "model": cfg["model"]["name"], "seed": seed, "num_params": n_params,
            "split_sizes": prepared.preprocessing["split_sizes"], "overrides": list(overrides),
            "split_sources": prepared.preprocessing.get("split_sources"),
            "started_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "versions": versions(), "threads": threads[0],
            "metrics": {}, "best": None, "duration_s": None, "fit_duration_s": None,
            "trainable_params": sum(p.numel() for p in model.parameters() if p.requires_grad),
            "pretrained": pretrained.as_dict() if pretrained else None, **folder.owner(),
            "tags": list(cfg.get("tags") or []), "note": None,  # `dlcli runs tag / note` change them later
            "plugins": plugins(),  # resume, eval, predict and export of this run need them again
            **sweep_link(),  # "sweep" and "trial" when a sweep launched this run
            **cv_link(cfg),  # "cv" (id, fold, folds, repeat, repeats, strategy) when the run is a cv fold
        }
    else:
        summary = resume.summary_now(list(overrides))
    summary["data_path"] = data_path(prepared)  # "memory" or "streamed" (data.cache, dlcli/data/stream.py)

    shows = console if progress_console is None else progress_console  # where the epochs are shown
    try:
        trainer, checkpoint, recorder = make_trainer(cfg, prepared.task, run_dir, primary, summary=summary,
                                                     progress=shows if progress and primary else None,
                                                     resume=resume, has_val="val" in prepared.splits)
    except BaseException:
        if primary and resume is None:
            shutil.rmtree(run_dir, ignore_errors=True)  # it holds nothing yet: leave no empty run behind
        raise
    if primary:
        try:
            folder.write_yaml(run_dir / folder.CONFIG, cfg)
            folder.write_json(run_dir / folder.CONFIG_JSON, cfg)  # the same, quick to read for `dlcli runs`
            if resume is None:
                folder.write_yaml(run_dir / folder.OVERRIDES, list(overrides))
                folder.write_json(run_dir / folder.PREPROCESSING, prepared.preprocessing)
                summary["provenance"] = _provenance(run_dir, prepared.preprocessing.get("data_fingerprint"))
            folder.write_json(run_dir / folder.SUMMARY, summary)
        except BaseException:
            if resume is None:
                shutil.rmtree(run_dir, ignore_errors=True)  # a disk that filled up: no half-made run left behind
            raise
    if console is not None and primary:
        _print_header(console, cfg, prepared, n_params, run_dir, pretrained, resume, threads)

    def finish(status: str, **extra: Any) -> None:
        summary.update(status=status, duration_s=round(time.perf_counter() - t_start, 3),
                       epochs=recorder.written, epoch_seconds=recorder.seconds[:recorder.written],
                       heartbeat=folder.now_iso(), peak_rss_mib=_peak_rss_mib(), **extra)
        if primary:  # the picture first: a kill between the two leaves a run still "running", so resumable
            _save_curves(run_dir, recorder.rows[:recorder.written])
            folder.write_json(run_dir / folder.SUMMARY, summary)

    with _signals_stop_the_run(), _matmul_precision(cfg["trainer"].get("matmul_precision")):
        try:
            # fit (from the last checkpoint, when resumed), then evaluate the best epoch's weights
            # (loaded safely: tensors only) on the test split
            if cfg["model"].get("compile"):
                module.compile_model()
            startup.settle()  # imports and building are done: the collector runs again (dlcli/startup.py)
            t_fit = time.perf_counter()
            trainer.fit(module, datamodule=datamodule, ckpt_path=resume.ckpt_path if resume else None)
            summary["fit_duration_s"] = round(time.perf_counter() - t_fit, 3)
            # resumed from a last.ckpt of the final epoch (killed after it was saved, or while testing): Lightning
            # restores the recorder's rows from it but runs no epoch, so nothing has written them yet
            recorder.flush(trainer)
            recorder.recover(run_dir / folder.SUMMARY)  # ddp_spawn: the spawned processes recorded the epochs
            pruned_at = next((c.pruned_at for c in trainer.callbacks if isinstance(c, TrialPruning)), None)
            summary["best"] = recorder.best()
            row = recorder.rows[-1] if recorder.rows else {}
            if checkpoint is not None and checkpoint.best_model_path:
                tested = load_checkpoint(checkpoint.best_model_path)
                module.load_state_dict(tested["state_dict"])
                # the best epoch is the one whose weights are tested, as its checkpoint says: with
                # model_checkpoint.every_n_epochs > 1, the best of all epochs may never have been saved;
                # its train/val metrics are reported beside the test metrics: one model throughout
                summary["best"] = recorder.at_epoch(tested["epoch"]) or summary["best"]
                row = next((r for r in recorder.rows if r["epoch"] == tested["epoch"]), row)
            metrics = {k: v for k, v in row.items() if "/" in k and not k.startswith("lr")}
            if "test" in prepared.splits and pruned_at is None:  # a pruned trial is not worth testing
                for key, value in trainer.test(module, datamodule=datamodule, verbose=False)[0].items():
                    metrics[key] = float(value)
            summary["metrics"] = metrics
            if primary and module.test_confusion is not None:
                from dlcli.runs.plots import save_confusion

                save_confusion(run_dir, module.test_confusion.tolist(), list(prepared.class_names or []))
        except (KeyboardInterrupt, SystemExit) as e:  # Ctrl-C (Lightning turns it into sys.exit(1)), or SIGTERM
            _ignore_signals()
            finish("interrupted")
            if console is not None and primary:
                console.print(_resume_hint(run_dir, recorder.written), markup=False, soft_wrap=True)
            if isinstance(e, Terminated | SIGTERMException):
                raise Terminated() from None
            raise KeyboardInterrupt from None
        except BaseException as e:
            finish("failed", error=f"{type(e).__name__}: {e}")
            raise
    if pruned_at is not None:  # the sweep's pruner stopped it: an ended run, not a failed one
        finish("pruned", pruned_after_epoch=pruned_at)
        if console is not None and primary:
            console.print(f"pruned after epoch {pruned_at + 1}: the sweep's pruner stopped this trial (its "
                          "checkpoints are kept)", markup=False, soft_wrap=True)
        return RunResult(run_dir, "pruned", summary["metrics"], summary["best"], summary, primary)
    finish("completed")
    return RunResult(run_dir, "completed", summary["metrics"], summary["best"], summary, primary)


def _peak_rss_mib() -> float | None:
    """This process's peak resident memory so far, in MiB (None where the platform does not tell).

    Linux: ``VmHWM`` from /proc/self/status, the high-water mark of this program's own memory. ``ru_maxrss``
    is not used there: it keeps the peak of the process that started this one across ``exec`` (a run
    launched from a 2 GiB parent would report 2 GiB).
    """
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return round(int(line.split()[1]) / 2**10, 1)  # kB
    except (OSError, ValueError, IndexError):
        pass
    try:
        import resource
    except ImportError:  # Windows
        return None
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return round(peak / (2**20 if platform.system() == "Darwin" else 2**10), 1)  # bytes on macOS, KiB on Linux


def _save_curves(run_dir: Path, rows: list[dict]) -> None:
    """plots/curves.png from the epochs recorded so far; a picture that fails is a warning, never a lost run."""
    from dlcli.runs.plots import save_curves

    try:
        save_curves(run_dir, rows)
    except Exception as e:  # e.g. a broken matplotlib: the run's results are saved all the same
        warnings.warn(f"plots/curves.png not written: {type(e).__name__}: {e}", stacklevel=2)


def _resume_hint(run_dir: Path, epochs: int) -> str:
    if not (run_dir / folder.CHECKPOINTS / folder.LAST_CKPT).is_file():
        return f"run stopped in its first epoch; `dlcli resume {run_dir}` starts it over"
    return f"run stopped after {epochs} whole epochs (checkpoints/last.ckpt); continue it with: dlcli resume {run_dir}"


def set_threads(cfg: dict, model: Any, prepared: Any) -> tuple[int, str]:
    """Give torch the threads that ``cfg["threads"]`` asks for (``auto``: dlcli/training/threads.py);
    returns (the thread count now, why)."""
    import torch

    from dlcli.training.threads import choose

    accelerator = cfg["trainer"].get("accelerator", "auto")
    if accelerator == "auto":
        accelerator = "cuda" if torch.cuda.is_available() else "cpu"
    batch = None
    if cfg["threads"] == "auto" and accelerator == "cpu":  # a batch of the run's shape, to count the model's work
        dtype = torch.long if prepared.vocab_size else torch.float32
        batch = torch.zeros((cfg["data"].get("batch_size") or 32, *prepared.in_shape), dtype=dtype)
    n, why = choose(cfg["threads"], model, batch, accelerator)
    if n is not None:
        torch.set_num_threads(n)
    return torch.get_num_threads(), why


def _print_header(console: Any, cfg: dict, prepared: Any, n_params: int, run_dir: Path, pretrained: Any,
                  resume: Resume | None, threads: tuple[int, str]) -> None:
    sizes = prepared.preprocessing["split_sizes"]
    kind = get_task(prepared.task).describe(prepared.num_classes)
    console.print(f"[bold]dlcli[/] {cfg['name']}: {kind}, {n_params:,} parameters, "
                  f"{' / '.join(f'{v} {k}' for k, v in sizes.items())} samples")
    console.print(f"run folder: {run_dir}")
    console.print(f"threads: {threads[0]} ({threads[1]})", markup=False)
    for note in prepared.preprocessing.get("notes") or []:  # what the data loading dropped, left out, imputed
        console.print(f"note: {note}", markup=False, soft_wrap=True)
    from dlcli.data.stream import describe

    streamed = describe(prepared, cfg["data"])  # streamed images (data.cache): say so, and why
    if streamed:
        console.print(streamed, markup=False)
    from dlcli.data.splits import header_line  # where each split came from: a file, or a share carved at random

    if split_line := header_line(resume.preprocessing if resume is not None else prepared.preprocessing):
        console.print(split_line, markup=False, soft_wrap=True)
    if cfg["model"].get("compile"):
        console.print("model.compile: torch.compile compiles the model on the first batches, so the first "
                      "epoch takes longer (seconds to minutes); summary.json's epoch_seconds show it", markup=False)
    if resume is not None:
        console.print(resume.describe(cfg), markup=False)
        return
    if pretrained:
        console.print(pretrained.describe(), markup=False, soft_wrap=True)
    if "backbone_inputs" in prepared.preprocessing:
        from dlcli.training.imagenet import describe_inputs

        console.print(describe_inputs(cfg["model"]["pretrained"], prepared.preprocessing["backbone_inputs"]),
                      markup=False, soft_wrap=True)
    if prepared.preprocessing.get("reused_from"):
        what = "vocabulary" if prepared.preprocessing.get("vocab") else \
            "column encoding and scaling statistics" if prepared.preprocessing.get("columns") else "scaling statistics"
        console.print(f"preprocessing: the {what} of {prepared.preprocessing['reused_from']} re-applied",
                      markup=False)


def make_trainer(cfg: dict, task: str, run_dir: Path, primary: bool, progress: Any = None,
                 summary: dict[str, Any] | None = None, resume: Resume | None = None, has_val: bool = True):
    """The Lightning Trainer with the configured callbacks and logger, plus dlcli's own: the metrics.csv
    recorder, the heartbeat (rewriting ``summary`` into summary.json), the divergence check, the random
    generators' state in checkpoints. ``progress``: the rich Console that shows the epochs (see :func:`train`),
    or None.

    Returns (trainer, the checkpoint callback or None, the metrics.csv recorder).
    """
    import pytorch_lightning as pl
    from lightning_fabric.utilities.exceptions import MisconfigurationException

    from dlcli.nets.callbacks import CallbackGroup, ResumeGuard, RNGState, TerminateOnNaN
    from dlcli.training.checkpoint_io import AtomicCheckpointIO
    from dlcli.training.recorder import EpochRecorder, Heartbeat, SummaryBeat

    monitor, mode = default_monitor(task)
    callbacks, checkpoint, tiebreak = [], None, None
    for name, params in cfg["callbacks"].items():
        params = dict(params)
        if params.get("monitor") == "auto":
            params["monitor"] = monitor
        if params.get("mode") == "auto":
            params["mode"] = metric_mode(params["monitor"])
        built = CALLBACKS.get(name).build(params, run_dir=str(run_dir))
        built = built if isinstance(built, list) else [built]  # a builder may return several
        if name == "model_checkpoint":  # its metric decides the best epoch
            checkpoint, monitor, mode = built[0], params["monitor"], params["mode"]
            if checkpoint.tiebreak:
                tiebreak = (checkpoint.tiebreak, checkpoint.tiebreak_mode)
        callbacks += built
    own: list[pl.Callback] = []  # dlcli's own callbacks, which Lightning calls as one (CallbackGroup)
    stages = (cfg.get("finetune") or {}).get("stages")
    if stages:  # one fit, stage after stage; the run lasts as long as the stages together
        from dlcli.nets.callbacks import StagedFinetune

        own.append(StagedFinetune(stages))
    if "terminate_on_nan" not in cfg["callbacks"]:  # a diverged run always stops within the epoch
        own.append(TerminateOnNaN())
    own.append(RNGState())  # a resumed run draws the same random numbers as an uninterrupted one
    if resume is not None:
        own.append(ResumeGuard(extend=resume.extend))
    recorder = EpochRecorder(run_dir, monitor, mode, write=primary, tiebreak=tiebreak)
    own.append(recorder)
    if primary and summary is not None:  # after the recorder: the beat reports the epoch just recorded
        own.append(Heartbeat(SummaryBeat(run_dir, summary, recorder)))
    bar = None
    if progress is not None and cfg["trainer"]["enable_progress_bar"]:
        from dlcli.training.progress import EpochLines, EpochProgressBar, plain_writer

        if progress.is_terminal:  # a live bar where that console writes, with the finished epochs above it
            bar = EpochProgressBar(leave=False, console_kwargs={"file": progress.file, "force_terminal": True})
            own.append(EpochLines(recorder, bar.print_above))
        else:  # a pipe or a file shows no live bar: one line per epoch, after the recorder has its row
            own.append(EpochLines(recorder, plain_writer(progress)))
    callbacks.append(CallbackGroup(own))
    from dlcli.training.pruning import pruning_callback  # (every process: they stop at the same epoch)

    pruning = pruning_callback(recorder)  # a pruning sweep's trial reports each epoch to the study
    if pruning is not None:
        callbacks.append(pruning)
    if bar is not None:
        callbacks.append(bar)
    logger = LOGGERS.get(cfg["logger"]["name"]).build(component_params(cfg["logger"]), run_dir=str(run_dir),
                                                      config=cfg)
    if logger is None and "lr_monitor" in cfg["callbacks"]:
        raise DlcliError("callbacks.lr_monitor logs to an experiment logger, and logger=none has none: add "
                         "logger=csv or logger=tensorboard, or drop it with ~callbacks.lr_monitor (metrics.csv "
                         "records the learning rate of every epoch anyway)")
    # the module steps the optimiser itself (see TaskModule._optimize): clipping and accumulation are its job
    kwargs = {k: v for k, v in cfg["trainer"].items() if v is not None and k not in DLCLI_TRAINER_KEYS}
    if stages:
        kwargs["max_epochs"] = sum(stage["epochs"] for stage in stages)
    if not has_val:  # no validation split (data.val_fraction=0): no validation loop over nothing each epoch
        kwargs["limit_val_batches"] = 0
    kwargs.update(enable_progress_bar=bar is not None, enable_model_summary=False, logger=logger or False,
                  enable_checkpointing=checkpoint is not None, default_root_dir=str(run_dir),
                  plugins=[AtomicCheckpointIO()])  # checkpoints written atomically, read with weights_only
    try:
        trainer = pl.Trainer(callbacks=callbacks, **kwargs)
    except (MisconfigurationException, ValueError) as e:  # e.g. accelerator=gpu on a machine without one
        import torch

        if kwargs.get("accelerator") in ("gpu", "cuda") and not torch.cuda.is_available():
            raise DlcliError(f"trainer.accelerator={kwargs['accelerator']}, but torch {torch.__version__} sees no "
                             "NVIDIA GPU here (a CPU build of torch, or no driver). Train on the CPU with "
                             "trainer.accelerator=cpu (or leave trainer=default), or install a CUDA build of "
                             "torch") from None
        raise DlcliError(f"trainer: {e} (check trainer.accelerator, trainer.devices, trainer.strategy, "
                         "trainer.precision; `dlcli config show` prints them)") from None
    return trainer, checkpoint, recorder
