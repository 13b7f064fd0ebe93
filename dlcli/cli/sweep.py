"""``dlcli sweep OVERRIDES`` and ``dlcli sweep resume SWEEP``: many runs over a search space, in an Optuna study."""

from __future__ import annotations

import re
import time
from pathlib import Path
from typing import Any

import typer

from dlcli.cli.common import CONFIG_DIRS, DEBUG, OVERRIDES, PLUGINS, err, out, print_notes, use_plugins, user_errors
from dlcli.errors import DlcliError

STRATEGY = typer.Option(None, "--strategy", "-s", metavar="grid|random|tpe", show_default=False,
                        help="grid (default when every swept key is discrete: every combination), random, or tpe "
                             "(Bayesian, Optuna's TPE; the default when a range is continuous).")
TRIALS = typer.Option(None, "--trials", "-n", min=1, show_default=False,
                      help="How many trials (random, tpe); with `sweep resume`: how many more.")
METRIC = typer.Option(None, "--metric", show_default=False,
                      help="The metric to optimise, from the run's summary.json (default: the monitored metric, "
                           "val/acc for classification, val/loss otherwise; its best epoch's value).")
DIRECTION = typer.Option(None, "--direction", metavar="maximize|minimize", show_default=False,
                         help="Default: maximize for accuracy-like metrics, minimize for losses and errors.")
NAME = typer.Option(None, "--name", show_default=False,
                    help="The sweep's name (default: sweep-<time>). The same command with the same --name "
                         "resumes it.")
STORAGE = typer.Option(None, "--storage", metavar="URL", show_default=False,
                       help="An Optuna database URL for the study (postgresql://..., mysql://..., sqlite:///...), "
                            "so several machines can work on one sweep. Default: sqlite in the sweep's folder.")
JOBS = typer.Option(1, "--jobs", "-j", min=1, help="Trials run at once, each in its own process (and on its own "
                                                    "GPU when there are several).")
ON_FAILURE = typer.Option("continue", "--on-failure", metavar="continue|stop",
                          help="After a failed trial: go on with the others, or start no new trial.")
LAUNCHER = typer.Option("local", "--launcher", metavar="local|slurm",
                        help="local: processes here; slurm: SLURM jobs through submitit (a trial each, or "
                             "--trials-per-job K).")
SLURM = typer.Option(None, "--slurm", metavar="KEY=VALUE", show_default=False,
                     help="A submitit executor parameter for --launcher slurm (repeatable): slurm_partition=gpu, "
                          "timeout_min=60, gpus_per_node=1, cpus_per_task=4, mem_gb=16, ...")
TRIALS_PER_JOB = typer.Option(1, "--trials-per-job", min=1, metavar="K",
                              help="--launcher slurm: each SLURM job runs K trials, one after another (each its own "
                                   "process, forked from one that imports torch and Lightning once per job); "
                                   "--jobs such jobs run at once.")
PRUNER = typer.Option(None, "--pruner", metavar="none|median|percentile|hyperband|asha", show_default=False,
                      help="Stop unpromising trials early (Optuna's pruners): each trial reports --metric after "
                           "every epoch; median stops one worse than the median of earlier trials at that epoch, "
                           "percentile one in the worst quarter, hyperband and asha by successive halving. A "
                           "pruned trial's run is marked pruned (checkpoints kept) and is not run again. "
                           "Default: none.")
MIN_EPOCHS = typer.Option(None, "--min-epochs", min=0, show_default=False,
                          help="Epochs every trial trains before the pruner may stop it (default 2; hyperband "
                               "and asha: the first rung).")
CV = typer.Option(None, "--cv", min=2, metavar="K", show_default=False,
                  help="Cross-validate each trial: it runs `dlcli cv --folds K` (K runs, the test split held out of "
                       "all), and the study gets the folds' mean of --metric.")


def sweep_command(
    overrides: list[str] = OVERRIDES,
    strategy: str = STRATEGY,
    trials: int = TRIALS,
    metric: str = METRIC,
    direction: str = DIRECTION,
    name: str = NAME,
    storage: str = STORAGE,
    jobs: int = JOBS,
    on_failure: str = ON_FAILURE,
    launcher: str = LAUNCHER,
    slurm: list[str] = SLURM,
    trials_per_job: int = TRIALS_PER_JOB,
    pruner: str = PRUNER,
    min_epochs: int = MIN_EPOCHS,
    cv: int = CV,
    config_dir: list[Path] = CONFIG_DIRS,
    plugin: list[str] = PLUGINS,
    debug: bool = DEBUG,
) -> None:
    """Run one training per point of a search space, in Hydra's sweep syntax; `dlcli sweep resume SWEEP` goes on.

    Examples: `dlcli sweep optimizer.lr=1e-4,1e-3,1e-2 model=mlp,cnn` (grid), `dlcli sweep --strategy tpe
    --trials 20 'optimizer.lr=tag(log, interval(1e-4, 1e-1))'`, `dlcli sweep resume NAME --trials 10`.
    Each trial is an ordinary run folder; compare them with `dlcli runs compare --sweep NAME`.
    """
    overrides = list(overrides or [])
    with user_errors(debug):
        options = Options(jobs=jobs, on_failure=on_failure, launcher=launcher, slurm=slurm or [], storage=storage,
                          trials_per_job=trials_per_job)
        if overrides[:1] == ["resume"]:
            refused = [flag for flag, v in (("--strategy", strategy), ("--metric", metric),
                                             ("--direction", direction), ("--name", name),
                                             ("--pruner", pruner), ("--min-epochs", min_epochs), ("--cv", cv))
                       if v is not None]
            if refused:
                raise DlcliError(f"`dlcli sweep resume` keeps the sweep's own settings: drop {', '.join(refused)}")
            use_plugins(plugin)
            code = resume(overrides[1:], trials, options)
        else:
            use_plugins(plugin)
            code = start(overrides, strategy, trials, metric, direction, name, options, pruner or "none",
                         2 if min_epochs is None else min_epochs, cv,
                         [str(Path(d).expanduser().resolve()) for d in config_dir or []], list(plugin or []))
    if code:
        raise typer.Exit(code)


class Options:
    """How to run (not what): may differ between a sweep's invocations."""

    def __init__(self, jobs: int, on_failure: str, launcher: str, slurm: list[str], storage: str | None,
                 trials_per_job: int = 1) -> None:
        if on_failure not in ("continue", "stop"):
            raise DlcliError(f"--on-failure {on_failure}: choose continue or stop")
        if launcher not in ("local", "slurm"):
            raise DlcliError(f"--launcher {launcher}: choose local or slurm")
        self.jobs, self.on_failure, self.launcher, self.storage = jobs, on_failure, launcher, storage
        self.slurm = slurm_params(slurm)
        if self.slurm and launcher != "slurm":
            raise DlcliError("--slurm sets the SLURM jobs' parameters: add --launcher slurm")
        if trials_per_job > 1 and launcher != "slurm":
            raise DlcliError(f"--trials-per-job {trials_per_job} groups trials into SLURM jobs: add --launcher "
                             "slurm (here, every trial already starts from a process that has imported torch "
                             "and Lightning)")
        self.trials_per_job = trials_per_job

    def apply(self, spec: Any) -> None:
        spec.jobs, spec.on_failure, spec.launcher = self.jobs, self.on_failure, self.launcher
        spec.slurm = self.slurm or spec.slurm
        spec.trials_per_job = self.trials_per_job


def slurm_params(pairs: list[str]) -> dict[str, Any]:
    """``--slurm KEY=VALUE`` pairs; values parsed as YAML scalars (60 -> int, true -> bool)."""
    import yaml

    params = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise DlcliError(f"--slurm '{pair}': write KEY=VALUE, e.g. --slurm slurm_partition=gpu")
        params[key.strip()] = yaml.safe_load(value)
    return params


def start(overrides: list[str], strategy: str | None, trials: int | None, metric: str | None,
          direction: str | None, name: str | None, options: Options, pruner: str, min_epochs: int,
          cv: int | None, config_dirs: list[str], plugins: list[str]) -> int:
    """A new sweep, or the same sweep again (same --name): checks every value's config before any trial runs."""
    from dlcli.sweep.space import parse_space
    from dlcli.sweep.study import STRATEGIES, SweepSpec, default_database, driving, find_sweep, read_spec, sweep_dir

    space = parse_space(overrides)
    if strategy is None:
        strategy = "grid" if space.discrete else "tpe"
    if strategy not in STRATEGIES:
        raise DlcliError(f"--strategy {strategy}: choose one of {', '.join(STRATEGIES)}")
    continuous = [p.key for p in space.params if not p.discrete]
    if strategy == "grid" and continuous:
        raise DlcliError(f"a grid needs a list of values, and {', '.join(continuous)} is a continuous interval: "
                         "use --strategy random or tpe with --trials N, or list values (a,b,c or range(a,b,step))")
    if strategy == "grid":
        if trials is not None:
            raise DlcliError(f"a grid sweep runs every combination ({space.grid_size()}): drop --trials, or use "
                             "--strategy random --trials N for a sample of them")
        trials = space.grid_size()
    elif trials is None:
        if continuous:
            raise DlcliError(f"--strategy {strategy} over a continuous range ({', '.join(continuous)}) needs "
                             "--trials N: how many trials to run")
        trials = space.grid_size()
    if cv is not None and pruner != "none":
        raise DlcliError(f"--pruner {pruner} with --cv {cv}: a cross-validated trial trains its folds one after "
                         "another, and the pruner compares trials epoch by epoch within one training; drop one of "
                         "them")
    if cv is not None and any(p.key.startswith("cv.") for p in space.params):
        raise DlcliError("--cv sets every trial's folds: do not sweep cv.* keys with it")
    if options.launcher == "local":  # the trials' warm parent starts now, while the configs are checked
        from dlcli.sweep.warm import start_early

        start_early()
    # with --cv, every value is checked as fold 0 of K, as the trials will run it
    cfg = checked_config(space, config_dirs, [f"cv.folds={cv}", "cv.fold=0"] if cv is not None else [])
    if metric is not None:
        from dlcli.metrics import misspelt

        problem = misspelt(metric)
        if problem:
            raise DlcliError(f"--metric {problem}")
    metric = metric or monitored_metric(cfg)
    direction = direction or default_direction(metric)
    if direction not in ("maximize", "minimize"):
        raise DlcliError(f"--direction {direction}: choose maximize or minimize")
    from dlcli.sweep.prune import check_pruner

    check_pruner(pruner, metric, min_epochs)
    name = name or f"sweep-{time.strftime('%Y%m%d-%H%M%S')}"
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]*", name):
        raise DlcliError(f"--name '{name}': use letters, digits, '_', '.' and '-' (it names a folder)")
    output_dir = str(Path(cfg["output_dir"]).expanduser().absolute())
    folder_ = sweep_dir(output_dir, name)
    spec = SweepSpec(name=name, overrides=overrides, strategy=strategy, trials=trials, metric=metric,
                     direction=direction, seed=int(cfg["seed"]), output_dir=output_dir,
                     storage=options.storage or default_database(folder_), config_dirs=config_dirs, plugins=plugins,
                     pruner=pruner, min_epochs=min_epochs, cv=cv)
    options.apply(spec)
    with driving(folder_, name):  # a second `dlcli sweep --name NAME` meanwhile is refused, saying so
        if (folder_ / "sweep.yaml").is_file():
            before = read_spec(find_sweep(str(folder_), output_dir))
            differ = before.same_sweep(spec)
            if differ:
                raise DlcliError(f"sweep '{name}' exists in {folder_} with other {', '.join(differ)}: choose "
                                 f"another --name for a new sweep, or `dlcli sweep resume {name}` to go on with it")
            before.trials = max(before.trials, spec.trials)
            options.apply(before)
            spec = before
            err.print(f"sweep '{name}' exists: going on with it (completed trials are kept)", highlight=False)
        return run(spec, space)


def resume(args: list[str], more: int | None, options: Options) -> int:
    """``dlcli sweep resume SWEEP [output_dir=PATH]``: what is left of a sweep, plus ``--trials`` more."""
    from dlcli.sweep.space import parse_space
    from dlcli.sweep.study import driving, find_sweep, load_spec_from_database, read_spec

    if not args:
        raise DlcliError("`dlcli sweep resume SWEEP`: give the sweep's name (see outputs/sweeps/) or folder")
    ref, rest = args[0], args[1:]
    output_dir = "outputs"
    for line in rest:
        key, sep, value = line.partition("=")
        if key != "output_dir" or not sep:
            raise DlcliError(f"`dlcli sweep resume` takes only output_dir=PATH after SWEEP, got '{line}': a sweep's "
                             "overrides are its own (start a new sweep for others)")
        output_dir = value
    try:
        spec = read_spec(find_sweep(ref, output_dir))
    except DlcliError:
        if not options.storage:
            raise
        spec = load_spec_from_database(ref, options.storage)  # a shared database: no local folder needed
    if options.storage:
        spec.storage = options.storage
    options.apply(spec)
    if more:
        if spec.strategy == "grid":
            raise DlcliError(f"sweep '{spec.name}' is a grid of {spec.trials} combinations: --trials adds trials "
                             "to random and tpe sweeps")
        spec.trials += more
    with driving(spec.folder, spec.name):
        return run(spec, parse_space(spec.overrides))


def run(spec: Any, space: Any) -> int:
    """Write the sweep's folder and study, run what is left, report. Returns the exit code."""
    from dlcli.sweep.driver import run_sweep
    from dlcli.sweep.study import create_or_load, write_spec

    spec.folder.mkdir(parents=True, exist_ok=True)
    study = create_or_load(spec, space)
    write_spec(spec)
    pruning = f", {spec.pruner} pruning after {spec.min_epochs} epochs" if spec.pruner != "none" else ""
    pruning += f", each trial cross-validated over {spec.cv} folds" if spec.cv else ""
    err.print(f"sweep {spec.name}: {spec.strategy}, {spec.trials} trials, {spec.direction} {spec.metric}{pruning}; "
              f"{spec.jobs} at a time; folder {spec.folder}", highlight=False, soft_wrap=True)
    result = run_sweep(spec, space, study, err)
    return report(spec, space, result)


def report(spec: Any, space: Any, result: Any) -> int:
    """The table of every trial, the best one, and the exit code: 130 interrupted, 1 stopped or nothing completed."""
    from optuna.trial import TrialState

    from dlcli.sweep.driver import study_rows, trials_table

    out.print(trials_table(spec, space, study_rows(result.study), title=f"sweep {spec.name}"))
    trials = result.study.get_trials(deepcopy=False)
    completed = [t for t in trials if t.state == TrialState.COMPLETE]
    failed = sum(t.state == TrialState.FAIL for t in trials)
    pruned = sum(t.state == TrialState.PRUNED for t in trials)
    out.print(f"{len(completed)} completed, " + (f"{pruned} pruned, " if pruned or spec.pruner != "none" else "")
              + f"{failed} failed, {len(trials)} trials in the study "
              f"({len(result.ran)} run now)")
    if completed:
        best = result.study.best_trial
        params = " ".join(p.override(best.params[p.key]) for p in space.params)
        out.print(f"best: trial {best.number}, {spec.metric} = {best.value:.4f}: {params}", soft_wrap=True)
        out.print(f"best run: {best.user_attrs.get('run_dir')}", soft_wrap=True)
    by_cv = " --group-by cv.id" if spec.cv else ""  # a cross-validated trial is K runs: their mean ± std
    out.print(f"compare: dlcli runs compare --sweep {spec.name}{by_cv} --sort {spec.metric}", soft_wrap=True)
    if result.interrupted:
        err.print(f"interrupted: `dlcli sweep resume {spec.name}` runs what is left", highlight=False)
        return 130
    if result.stopped:
        err.print(f"stopped after a failed trial (--on-failure stop); `dlcli sweep resume {spec.name}` runs the "
                  "rest and the failed trial again", highlight=False)
        return 1
    return 0 if completed else 1


def checked_config(space: Any, config_dirs: list[str], extra: list[str] = ()) -> dict:
    """Compose and validate the config with every swept value once (and the ``extra`` overrides), before any
    trial runs; the first one back."""
    from dlcli.config.compose import compose

    first = None
    for overrides in space.samples():
        composed = compose([*overrides, *extra], config_dirs)
        if first is None:
            print_notes(composed.notes)
            first = composed.config
    return first


def monitored_metric(cfg: dict) -> str:
    """The metric that picks a run's best epoch: the checkpoint's monitor, or the task's default."""
    from dlcli.tasks import loss_tasks, planned_monitor

    monitor = ((cfg.get("callbacks") or {}).get("model_checkpoint") or {}).get("monitor", "auto")
    if monitor != "auto":
        return monitor
    # with task=auto the data decides at run time; the loss already says which kind of task it fits
    return planned_monitor(cfg.get("task", "auto"), loss_tasks(cfg["loss"]["name"]))[0]


def default_direction(metric: str) -> str:
    from dlcli.training.train import metric_mode

    return "maximize" if metric_mode(metric) == "max" else "minimize"
