"""Validate a composed config before anything is built; report every problem at once.

The result is a plain dict with every value coerced to its declared type and every
default a component takes filled in, so the run folder's config.yaml shows exactly
what the run used.
"""

from __future__ import annotations

import dataclasses
import inspect
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, get_type_hints

from dlcli.config.schema import (
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
    hints = get_type_hints(cls)
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
    def __init__(self, where: Callable[[str], str]) -> None:
        self.where = where
        self.problems: list[Problem] = []

    def problem(self, path: str, message: str) -> None:
        self.problems.append(Problem(path, message, self.where(path)))

    def fields(self, params: dict[str, Param], node: Any, path: str, owner: str) -> dict:
        """Check ``node``'s keys and values against ``params``; fill in defaults."""
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
                    f"unknown key for {owner}.{did_you_mean(str(key), params)} "
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
        params = {"name": Param("name", str)} | (extra or {}) | registry.get(name).params
        return self.fields(params, node, path, f"{registry.kind} '{name}'")

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


def _literal_strings(ann: Any) -> list[str]:
    from typing import Literal, get_args, get_origin

    if get_origin(ann) is Literal:
        return [a for a in get_args(ann) if isinstance(a, str)]
    return [s for a in get_args(ann) for s in _literal_strings(a)]


def validate(raw: dict, where: Callable[[str], str] = lambda path: "") -> dict:
    """Check a composed config (plain dict); return it normalised or raise :class:`ConfigError`.

    ``where(path)`` tells where a key came from (an override, a YAML file), for the messages.
    """
    from dlcli.config.safety import code_problems

    refused = [Problem(path, message, where(path)) for path, message in code_problems(raw)]
    if refused:  # a config that would run code is refused on its own, before anything else is looked at
        raise ConfigError(refused)
    load_components()
    check = _Checker(where)
    out = check.fields(dataclass_params(TopConfig), raw, "", "the top level")
    out["trainer"] = check.fields(dataclass_params(TrainerConfig), raw.get("trainer"), "trainer", "trainer")
    out["finetune"] = check.fields(dataclass_params(FinetuneConfig), raw.get("finetune"), "finetune", "finetune")
    out["regularization"] = check.fields(dataclass_params(RegularizationConfig), raw.get("regularization"),
                                         "regularization", "regularization")
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
    if isinstance(data.get("val_fraction"), float) and isinstance(data.get("test_fraction"), float):
        if not (0 <= data["val_fraction"] < 1 and 0 <= data["test_fraction"] < 1
                and data["val_fraction"] + data["test_fraction"] < 1):
            check.problem("data.val_fraction", "val_fraction and test_fraction must each be in [0, 1) "
                          f"and leave data to train on (now {data['val_fraction']} + {data['test_fraction']})")
    if data.get("name") in DATASETS:  # data.test_path needs a dataset read from a file (dlcli/data/splits.py)
        from dlcli.data.splits import split_key_problems

        for path, message in split_key_problems(data, DATASETS.get(data["name"]).params, DATASETS):
            check.problem(path, message)
    if isinstance(data.get("batch_size"), int) and data["batch_size"] < 1:
        check.problem("data.batch_size", f"must be at least 1, got {data['batch_size']}")
    from dlcli.metrics import known

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
    if stages and out["scheduler"].get("name") != "none":
        check.problem("finetune.stages", "stages set each stage's learning rate; use scheduler=none with them")
    sched = out["scheduler"]
    if sched.get("warmup_epochs", 0) and sched.get("warmup_steps", 0):
        check.problem("scheduler.warmup_steps", "give scheduler.warmup_epochs or scheduler.warmup_steps, not both")
    # trainer.max_epochs / min_steps left at null: the model family's own (model.max_epochs, model.min_steps), so
    # `model=fcn` trains as long as FCN needs while a number given for the trainer (anywhere) always wins
    for key in ("max_epochs", "min_steps"):
        if isinstance(out["model"].get(key), int) and out["model"][key] < 1:
            check.problem(f"model.{key}", f"must be at least 1, got {out['model'][key]}")
        elif out["trainer"].get(key) is None and key in out["model"]:
            out["trainer"][key] = out["model"][key]
    if isinstance(out["model"].get("patience"), int) and out["model"]["patience"] < 1:
        check.problem("model.patience", f"must be at least 1, got {out['model']['patience']}")
    stopping = out["callbacks"].get("early_stopping")
    if stopping is not None and stopping.get("patience") is None and "patience" in out["model"]:
        stopping["patience"] = out["model"]["patience"]
    if isinstance(out["trainer"].get("max_epochs"), int) and out["trainer"]["max_epochs"] < 1:
        check.problem("trainer.max_epochs", f"must be at least 1, got {out['trainer']['max_epochs']}")
    from dlcli.config.limits import top_level_problems

    for path, message in top_level_problems(out):  # name (a folder name), threads (the cores)
        check.problem(path, message)
    if check.problems:
        raise ConfigError(check.problems)
    return {k: out[k] for k in dataclass_params(TopConfig)}  # scalars first, then the groups


def check_params(params: dict[str, Param], node: Any, path: str, owner: str) -> dict:
    """Check one component's parameters on their own (e.g. a layer inside a model); raise ConfigError."""
    check = _Checker(lambda p: "")
    out = check.fields(params, node, path, owner)
    if check.problems:
        raise ConfigError(check.problems)
    return out
