"""Validate a composed config before anything is built; report every problem at once.

The result is a plain dict with every value coerced to its declared type and every
default a component takes filled in, so the run folder's config.yaml shows exactly
what the run used.
"""

from __future__ import annotations

import dataclasses
import difflib
import inspect
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, get_type_hints

from dlcli.config.schema import (
    CvConfig,
    DataConfig,
    FinetuneConfig,
    ModelConfig,
    OptimizerConfig,
    RegularizationConfig,
    SchedulerConfig,
    TopConfig,
    TrainerConfig,
)
from dlcli.config.types import conform, describe, show
from dlcli.errors import DlcliError
from dlcli.registry import (
    CALLBACKS,
    DATASETS,
    REGISTRIES,
    TASKS,
    Param,
    Registry,
    closest,
    did_you_mean,
    load_components,
)

# Top-level groups whose node is `{name: <registry name>, <builder params>...}`.
COMPONENT_GROUPS = ("model", "loss", "optimizer", "scheduler", "augmentation", "logger")


@dataclass(frozen=True)
class Problem:
    path: str  # dotted key, e.g. "optimizer.lr"
    message: str
    where: str = ""  # e.g. "from override 'optimizer.lr=x'" or "in /.../adam.yaml"

    def __str__(self) -> str:
        suffix = f"  [{self.where}]" if self.where else ""
        return f"{self.path + ': ' if self.path else ''}{self.message}{suffix}"


class ConfigError(DlcliError):
    """One or more problems in a config; the message lists them all."""

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = problems
        n = len(problems)
        lines = [f"{n} problem{'s' if n > 1 else ''} in the config:"]
        lines += [f"  - {p}" for p in problems]
        super().__init__("\n".join(lines))


def dataclass_params(cls: type) -> dict[str, Param]:
    hints = get_type_hints(cls, include_extras=True)
    out = {}
    for f in dataclasses.fields(cls):
        if f.default is not dataclasses.MISSING:
            default = f.default
        elif f.default_factory is not dataclasses.MISSING:
            default = f.default_factory()
        else:
            default = inspect.Parameter.empty
        out[f.name] = Param(f.name, hints[f.name], default)
    return out


class _Checker:
    """Collects every problem in a config (and notes on what validation changed), instead of stopping at one."""

    def __init__(self, where: Callable[[str], str]) -> None:
        self.where = where
        self.problems: list[Problem] = []
        self.notes: list[str] = []

    def problem(self, path: str, message: str) -> None:
        self.problems.append(Problem(path, message, self.where(path)))

    def fields(self, params: dict[str, Param], node: Any, path: str, owner: str,
               hint: Callable[[str], str] | None = None) -> dict:
        """Check ``node``'s keys and values against ``params``; fill in defaults.

        ``hint(key)`` suggests a fix for an unknown key (default: the closest of ``params``).
        """
        if node is None:
            node = {}
        if not isinstance(node, dict):
            self.problem(path, f"expected a mapping for {owner}, got {show(node)}")
            return {}
        out: dict[str, Any] = {}
        required = [k for k, v in node.items() if v == "???"]  # Hydra's "required, not set yet"
        node = {k: v for k, v in node.items() if v != "???"}
        for key in required:
            if key in params and not params[key].required:  # optional in general, required by this config
                sub = f"{path}.{key}" if path else str(key)
                self.problem(sub, f"missing: this config needs a value ({describe(params[key].annotation)}); "
                                  f"set it with {sub}=...")
        for key, value in node.items():
            sub = f"{path}.{key}" if path else str(key)
            if key not in params:
                self.problem(
                    sub,
                    f"unknown key for {owner}.{hint(str(key)) if hint else did_you_mean(str(key), params)} "
                    f"Valid keys: {', '.join(params)}",
                )
                continue
            ok, coerced = conform(value, params[key].annotation)
            if not ok:
                hint = did_you_mean(value, _literal_strings(params[key].annotation)) \
                    if isinstance(value, str) else ""
                self.problem(sub, f"expected {describe(params[key].annotation)}, got {show(value)}.{hint}")
                continue
            out[key] = coerced
        for name, param in params.items():
            if name in out or name in node:
                continue
            if param.required:
                sub = f"{path}.{name}" if path else name
                self.problem(sub, f"missing: {owner} needs '{name}' ({describe(param.annotation)}); "
                                  f"set it with {sub}=...")
            else:
                out[name] = conform(param.default, param.annotation)[1]  # (256,) -> [256]
        return out

    def component(self, registry: Registry, node: Any, path: str,
                  extra: dict[str, Param] | None = None) -> dict:
        """A `{name: ..., **params}` node: the name must be registered, the params its builder's."""
        if not isinstance(node, dict) or "name" not in node:
            self.problem(path, f"expected a mapping with a 'name' key naming a {registry.kind}; "
                               f"got {show(node)}. Available: {', '.join(registry.names())}")
            return {}
        name = node["name"]
        if name not in registry:
            self.problem(f"{path}.name", registry.unknown_message(name))
            return dict(node)
        entry = registry.get(name)
        params = {"name": Param("name", str)} | (extra or {}) | entry.params

        def hint(key: str) -> str:  # a key of other entries (data.path without data=csv): choose one of them
            owners = [n for n in registry.names() if key in registry.get(n).params]
            if owners:
                return (f" It is a key of {registry.kind} {', '.join(owners[:6])}{' ...' * (len(owners) > 6)}, "
                        f"not of '{name}': choose one first, e.g. {path}={owners[0]} {path}.{key}=...")
            return did_you_mean(key, params)

        out = self.fields(params, node, path, f"{registry.kind} '{name}'", hint=hint)
        nested = entry.meta.get("check")  # a builder's own check of what it nests (a model's layers, ops)
        if nested is not None:
            nested(out, path, self)
        return out

    def named_list(self, registry: Registry, items: Any, path: str) -> None:
        """A list of ``registry`` entries, each a name or a one-key mapping of a name to its parameters
        (``model.layers``, ``augmentation.ops``): every entry's name and parameters checked."""
        for i, spec in enumerate(items if isinstance(items, list) else []):
            where = f"{path}[{i}]"
            if isinstance(spec, dict) and len(spec) == 1 and isinstance(next(iter(spec.values())), dict | None):
                (name, params), = spec.items()
            elif isinstance(spec, str):
                name, params = spec, None
            else:
                self.problem(where, f"a {registry.kind} is a name or a one-key mapping of a name to its parameters "
                                    f"(`{{name: {{param: value}}}}`), got {show(spec)}")
                continue
            self.entry(registry, str(name), params or {}, where)

    def entry(self, registry: Registry, name: str, params: dict, where: str) -> None:
        """One ``registry`` entry given by name at ``where``, with its parameters."""
        if name not in registry:
            self.problem(where, registry.unknown_message(name))
        else:
            self.fields(registry.get(name).params, params, where, f"{registry.kind} '{name}'")

    def callbacks(self, node: Any, path: str = "callbacks") -> dict:
        """`callbacks: {<callback name>: {params} | null}`; null switches one off."""
        if node is None:
            return {}
        if not isinstance(node, dict):
            self.problem(path, f"expected a mapping of callback name -> parameters, got {show(node)}")
            return {}
        out = {}
        for key, params in node.items():
            if params is None:  # `callbacks.early_stopping=null` trims a preset
                continue
            if key not in CALLBACKS:
                self.problem(f"{path}.{key}", CALLBACKS.unknown_message(key))
                continue
            out[key] = self.fields(CALLBACKS.get(key).params, params, f"{path}.{key}", f"callback '{key}'")
        return out


# What people type for a key that lives one level down: `dlcli train epochs=3` means trainer.max_epochs.
# (Any other nested key is found by its last part: `batch_size=64` -> data.batch_size.)
ALIASES = {
    "epochs": "trainer.max_epochs", "epoch": "trainer.max_epochs", "num_epochs": "trainer.max_epochs",
    "n_epochs": "trainer.max_epochs", "max_epochs": "trainer.max_epochs",
    "lr": "optimizer.lr", "learning_rate": "optimizer.lr",
    "bs": "data.batch_size", "batch": "data.batch_size",
    "wd": "optimizer.weight_decay", "workers": "data.num_workers",
    "gpus": "trainer.devices", "gpu": "trainer.devices",
}
# The schema of each group that has one: its keys count as known even where the YAML leaves them out.
_GROUP_SCHEMAS = {"trainer": TrainerConfig, "data": DataConfig, "model": ModelConfig, "optimizer": OptimizerConfig,
                  "scheduler": SchedulerConfig, "finetune": FinetuneConfig, "regularization": RegularizationConfig,
                  "cv": CvConfig}


def nested_keys(raw: dict) -> list[str]:
    """Every dotted key below the top level: the composed config's, each group's schema fields, and the
    parameters of the component each group names."""
    keys: list[str] = []

    def walk(node: dict, prefix: str) -> None:
        for key, value in node.items():
            keys.append(f"{prefix}.{key}")
            if isinstance(value, dict):
                walk(value, f"{prefix}.{key}")

    groups = dataclass_params(TopConfig)
    for group, node in raw.items():
        if group in groups and isinstance(node, dict):
            walk(node, group)
            registry = REGISTRIES.get("dataset" if group == "data" else group)
            if registry is not None and node.get("name") in registry:
                keys += [f"{group}.{name}" for name in registry.get(node["name"]).params]
    for group, schema in _GROUP_SCHEMAS.items():
        keys += [f"{group}.{name}" for name in dataclass_params(schema)]
    return list(dict.fromkeys(keys))


def top_level_hint(key: str, top: Iterable[str], nested: list[str]) -> str:
    """' Did you mean ...?' for an unknown top-level key: a nested key it names (``lr`` -> optimizer.lr, by the
    alias table or by the nested key's last part), else the closest top-level key or nested key's last part."""
    alias = ALIASES.get(key.lower())
    if alias in nested:
        return f" Did you mean '{alias}'?"
    by_leaf: dict[str, list[str]] = {}
    for path in nested:
        by_leaf.setdefault(path.rsplit(".", 1)[1], []).append(path)

    def choices(paths: list[str]) -> str:
        return " Did you mean " + " or ".join(f"'{p}'" for p in paths[:3]) + "?"

    if key in by_leaf:
        return choices(by_leaf[key])
    near_top = closest(key, top)
    # a nested key's last part must be clearly closer (there are many, and short ones match anything a little:
    # modle is model with two letters swapped, not callbacks.*.mode)
    near_leaf = difflib.get_close_matches(key, list(by_leaf), n=1, cutoff=0.7)
    if near_leaf and (not near_top or _likeness(key, near_leaf[0]) > _likeness(key, near_top[0]) + 0.1):
        return choices(by_leaf[near_leaf[0]])
    return f" Did you mean '{near_top[0]}'?" if near_top else ""


def _likeness(a: str, b: str) -> float:
    return difflib.SequenceMatcher(None, a, b).ratio()


def _literal_strings(ann: Any) -> list[str]:
    from typing import Literal, get_args, get_origin

    if get_origin(ann) is Literal:
        return [a for a in get_args(ann) if isinstance(a, str)]
    return [s for a in get_args(ann) for s in _literal_strings(a)]


# Rules that relate several keys, each seeing the whole checked config: ``rule(out, check)`` reports problems
# with ``check.problem`` and may fill in values, saying so with ``check.notes``. They run after every key was
# checked on its own, so a value they read has its declared type (or is missing, if it had a problem).
RULES: list[Callable[[dict, _Checker], None]] = []


def rule(fn: Callable[[dict, _Checker], None]) -> Callable[[dict, _Checker], None]:
    RULES.append(fn)
    return fn


def validate(raw: dict, where: Callable[[str], str] = lambda path: "", notes: list[str] | None = None) -> dict:
    """Check a composed config (plain dict); return it normalised or raise :class:`ConfigError`.

    ``where(path)`` tells where a key came from (an override, a YAML file), for the messages; what
    validation decided for the user (e.g. a monitor without a validation split) is appended to ``notes``.
    """
    from dlcli.config.safety import code_problems

    refused = [Problem(path, message, where(path)) for path, message in code_problems(raw)]
    if refused:  # a config that would run code is refused on its own, before anything else is looked at
        raise ConfigError(refused)
    load_components()
    check = _Checker(where)
    top = dataclass_params(TopConfig)
    out = check.fields(top, raw, "", "the top level", hint=lambda key: top_level_hint(key, top, nested_keys(raw)))
    out["trainer"] = check.fields(dataclass_params(TrainerConfig), raw.get("trainer"), "trainer", "trainer")
    out["finetune"] = check.fields(dataclass_params(FinetuneConfig), raw.get("finetune"), "finetune", "finetune")
    out["regularization"] = check.fields(dataclass_params(RegularizationConfig), raw.get("regularization"),
                                         "regularization", "regularization")
    out["cv"] = check.fields(dataclass_params(CvConfig), raw.get("cv"), "cv", "cv")
    out["data"] = check.component(DATASETS, raw.get("data"), "data", extra=dataclass_params(DataConfig))
    for group in COMPONENT_GROUPS:
        common = {"model": ModelConfig, "scheduler": SchedulerConfig, "optimizer": OptimizerConfig}.get(group)
        extra = dataclass_params(common) if common else None
        out[group] = check.component(REGISTRIES[group], raw.get(group), group, extra=extra)
    out["callbacks"] = check.callbacks(raw.get("callbacks"))
    if isinstance(out.get("task"), str) and out["task"] != "auto" and out["task"] not in TASKS:
        check.problem("task", f"unknown task '{out['task']}'.{did_you_mean(out['task'], TASKS.names())} "
                              f"Available: auto, {', '.join(TASKS.names())}")
    data = out["data"]
    if data.get("name") in DATASETS:  # data.test_path needs a dataset read from a file (dlcli/data/splits.py)
        from dlcli.data.splits import split_key_problems

        for path, message in split_key_problems(data, DATASETS.get(data["name"]).params, DATASETS):
            check.problem(path, message)
    from dlcli.metrics import known, misspelt

    callbacks = out.get("callbacks") if isinstance(out.get("callbacks"), dict) else {}
    watched = [(f"callbacks.{cb}.{key}", node.get(key)) for cb, node in callbacks.items() if isinstance(node, dict)
               for key in ("monitor", "tiebreak")]
    watched.append(("scheduler.monitor", (out.get("scheduler") or {}).get("monitor")))
    for path, value in watched:
        problem = misspelt(value) if isinstance(value, str) and value != "auto" else None
        if problem:
            check.problem(path, problem)
    for i, name in enumerate(out.get("metrics") or []):
        if not known(name):
            names = list(dict.fromkeys(n for entry in TASKS for n in entry.fn.metric_names))
            check.problem(f"metrics[{i}]", f"unknown metric '{name}'.{did_you_mean(name, names)} "
                                          f"Available: {', '.join(names)}")
    stage_keys = {"epochs": Param("epochs", int), "train": Param("train", list[str] | None, None),
                  "lr": Param("lr", float | None, None), "lr_multiplier": Param("lr_multiplier", float | None, None)}
    stages = (out.get("finetune") or {}).get("stages") or []
    for i, stage in enumerate(stages):
        fixed = check.fields(stage_keys, stage, f"finetune.stages[{i}]", "a fine-tuning stage")
        if fixed.get("lr") is not None and fixed.get("lr_multiplier") is not None:
            check.problem(f"finetune.stages[{i}]", "give lr or lr_multiplier, not both")
        if isinstance(fixed.get("epochs"), int) and fixed["epochs"] < 1:
            check.problem(f"finetune.stages[{i}].epochs", f"must be at least 1, got {fixed['epochs']}")
        stages[i] = fixed
    # trainer.max_epochs / min_steps left at null: the model family's own (model.max_epochs, model.min_steps), so
    # `model=fcn` trains as long as FCN needs while a number given for the trainer (anywhere) always wins
    for key in ("max_epochs", "min_steps"):
        if out["trainer"].get(key) is None and key in out["model"]:
            out["trainer"][key] = out["model"][key]
    stopping = out["callbacks"].get("early_stopping")
    if stopping is not None and stopping.get("patience") is None and "patience" in out["model"]:
        stopping["patience"] = out["model"]["patience"]
    for fn in RULES:
        fn(out, check)
    if check.problems:
        raise ConfigError(check.problems)
    if notes is not None:
        notes += [n for n in check.notes if n not in notes]
    return {k: out[k] for k in dataclass_params(TopConfig)}  # scalars first, then the groups


@rule
def _name_and_threads(out: dict, check: _Checker) -> None:
    """A run name fit for a folder name; ``threads`` above the cores this process may use is lowered to them,
    with a note (a run recorded on a bigger machine still resumes and evaluates here)."""
    from dlcli.config.limits import top_level_problems

    for path, message in top_level_problems(out):
        check.problem(path, message)
    threads = out.get("threads")
    if isinstance(threads, int) and not isinstance(threads, bool) and threads > 1:
        from dlcli.training.threads import cores

        if threads > (n := cores()):
            out["threads"] = n
            check.notes.append(f"threads={threads} is more than the {n} CPU cores this process may use (more "
                               f"threads than cores only slow training down): using {n}")


def tag_problem(tag: Any) -> str | None:
    """Why ``tag`` cannot label a run (None: it can). One rule for ``tags:``, ``train --tag`` and ``runs tag``:
    tags are listed comma-separated (``runs ls --tag a,b``) and shown in tables."""
    if not isinstance(tag, str) or not tag.strip() or not tag.isprintable() or "," in tag:
        return f"tag {tag!r}: a tag is printable text without commas (e.g. baseline, best, keep)"
    return None


@rule
def _tags_are_printable_words(out: dict, check: _Checker) -> None:
    for i, tag in enumerate(out.get("tags") or []):
        message = tag_problem(tag)
        if message:
            check.problem(f"tags[{i}]", message)


@rule
def _fractions_leave_training_data(out: dict, check: _Checker) -> None:
    data = out["data"]
    if isinstance(data.get("val_fraction"), float) and isinstance(data.get("test_fraction"), float) \
            and data["val_fraction"] + data["test_fraction"] >= 1:
        check.problem("data.val_fraction", "val_fraction + test_fraction must leave data to train on "
                      f"(now {data['val_fraction']} + {data['test_fraction']})")


@rule
def _warmup_and_stages(out: dict, check: _Checker) -> None:
    sched = out["scheduler"]
    if sched.get("warmup_epochs", 0) and sched.get("warmup_steps", 0):
        check.problem("scheduler.warmup_steps", "give scheduler.warmup_epochs or scheduler.warmup_steps, not both")
    elif sched.get("name") == "plateau" and sched.get("warmup_steps", 0):
        check.problem("scheduler.warmup_steps", "plateau steps once per epoch on a validation metric, so it can "
                                                "only warm up in whole epochs: use scheduler.warmup_epochs instead")
    if (out.get("finetune") or {}).get("stages") and sched.get("name") != "none":
        check.problem("finetune.stages", "stages set each stage's learning rate; use scheduler=none with them")


@rule
def _top_k_within_the_classes(out: dict, check: _Checker) -> None:
    """top<k>_acc with k above the classes of a dataset whose classes are known before it is read (the bundled
    ones declare them); for other data the same check runs once the data is read."""
    from dlcli.metrics import TOP_K

    name = out["data"].get("name")
    classes = DATASETS.get(name).meta.get("classes") if name in DATASETS else None
    for i, metric in enumerate(out.get("metrics") or []):
        k = TOP_K.match(metric)
        if classes is not None and k and int(k.group(1)) > classes:
            check.problem(f"metrics[{i}]", f"{metric} counts the true class among the top {k.group(1)}, and data "
                                           f"'{name}' has {classes} classes: use k from 1 to {classes}")


MONITORING_CALLBACKS = ("model_checkpoint", "early_stopping", "reduce_lr_on_plateau")


@rule
def _monitors_without_validation(out: dict, check: _Checker) -> None:
    """With no validation split (``data.val_fraction=0`` and no val file), what watched ``val/*`` watches the
    training loss -- said in a note -- rather than training for an epoch and failing on a missing metric."""
    data = out["data"]
    if data.get("val_fraction") != 0 or any(data.get(k) for k in ("val_path", "val_root")) \
            or out["cv"].get("folds"):  # cross-validation: the fold is the validation split
        return
    switched = []
    for key in MONITORING_CALLBACKS:
        node = out["callbacks"].get(key)
        if node is not None and (node.get("monitor") == "auto" or str(node.get("monitor")).startswith("val/")):
            node.update(monitor="train/loss", mode="min")
            if node.get("tiebreak"):
                node["tiebreak"] = None  # validation-only, like the monitor it breaks ties for
            switched.append(f"callbacks.{key}")
    sched = out["scheduler"]
    if str(sched.get("monitor", "")).startswith("val/"):
        sched["monitor"] = "train/loss"
        switched.append("scheduler")
    if switched:
        check.notes.append(f"data.val_fraction=0 leaves no validation split: {', '.join(switched)} watch train/loss "
                           "instead, so the best epoch is the one with the lowest training loss. Give "
                           "data.val_fraction > 0 (or data.val_path) to choose it on held-out data")


@rule
def _cross_validation(out: dict, check: _Checker) -> None:
    """cv.fold / cv.repeat within cv.folds / cv.repeats; cv.strategy=group names a column of a CSV; no
    validation file under cross-validation (each fold is the validation split)."""
    from dlcli.cv.split import cv_problems

    for path, message in cv_problems(out["cv"], out["data"]):
        check.problem(path, message)


def check_params(params: dict[str, Param], node: Any, path: str, owner: str) -> dict:
    """Check one component's parameters on their own (e.g. a layer inside a model); raise ConfigError."""
    check = _Checker(lambda p: "")
    out = check.fields(params, node, path, owner)
    if check.problems:
        raise ConfigError(check.problems)
    return out
