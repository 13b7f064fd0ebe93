"""Reload a finished run from its folder: its config, its saved preprocessing and its trained model.

Evaluation, prediction, export and fine-tuning share this: raw inputs go through :meth:`LoadedRun.inputs`
(the same image conversion, scaling statistics or vocabulary as in training, never fitted again)
and the model is rebuilt from ``config.yaml`` and loaded from a checkpoint with ``weights_only=True``.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from dlcli.errors import DataError, DlcliError
from dlcli.runs import folder
from dlcli.tasks import get_task

CHECKPOINTS = ("best", "last")
THRESHOLD_FILE = "threshold.json"  # a tuned decision threshold (dlcli/training/threshold.py)


@dataclass
class LoadedRun:
    run_dir: Path
    config: dict[str, Any]
    preprocessing: dict[str, Any]
    # checkpoint -> its task module, loaded once by predict(): a server predicts many times with one model
    _modules: dict[str, Any] = field(default_factory=dict, init=False, repr=False, compare=False)

    @property
    def task(self) -> str:
        return self.preprocessing["task"]

    @property
    def decision(self) -> str | None:
        """How its task decides a class from the outputs (Task.decision): argmax, positive, labels or None."""
        from dlcli.tasks import get_task

        return get_task(self.task).decision

    @property
    def classes(self) -> list[str] | None:
        return self.preprocessing.get("classes")

    @property
    def threshold(self) -> float | list[float]:
        """The decision threshold of a binary (one) or multilabel (one per label) run: the one
        ``dlcli eval --tune-threshold`` saved in ``threshold.json``, else 0.5."""
        from dlcli.tasks.base import THRESHOLD

        path = self.run_dir / THRESHOLD_FILE
        if self.decision not in ("positive", "labels") or not path.is_file():
            return THRESHOLD
        try:
            value = folder.read_json(path)["threshold"]
            limits = [float(v) for v in (value if isinstance(value, list) else [value])]
        except (OSError, ValueError, KeyError, TypeError) as e:
            raise DlcliError(f"{path} is unreadable ({type(e).__name__}: {e}): tune it again with `dlcli eval RUN "
                             "--tune-threshold f1`, or delete it to decide at 0.5") from None
        if len(limits) != (1 if self.decision == "positive" else len(self.classes or [])) or \
                not all(0 <= v <= 1 for v in limits):
            raise DlcliError(f"{path} holds {value!r}: a {self.task} run takes "
                             + ("one threshold" if self.decision == "positive"
                                else f"{len(self.classes or [])} thresholds")
                             + " between 0 and 1. Tune it again with `dlcli eval RUN --tune-threshold f1`")
        return limits[0] if self.decision == "positive" else limits

    def inputs(self, raw: Any) -> np.ndarray:
        """Raw inputs (arrays as the dataset gives them, or a list of texts) -> the model's inputs.

        Inputs far outside the training range, and texts of mostly unknown words, are warned about
        (dlcli/data/drift.py): the model's answer for them is a guess it does not know it makes.
        """
        import warnings

        from dlcli.data import drift, padding
        from dlcli.data.prepare import apply_scaler, transform_inputs, unscaled_inputs

        pre = self.preprocessing
        if pre.get("text") is not None:
            for message in drift.unknown_token_warnings(list(raw), pre):
                warnings.warn(message, stacklevel=2)
            return transform_inputs(raw, pre)
        lengths = self.lengths(raw)  # variable-length sequences: padded steps are 0 before and after scaling
        x = unscaled_inputs(padding.strip(raw, lengths), pre)
        for message in drift.range_warnings(x if lengths is None else padding.as_missing(x, lengths), pre):
            warnings.warn(message, stacklevel=2)
        return padding.scaled(apply_scaler(x, pre["scaling"]), lengths)

    def lengths(self, raw: Any, source: str = "the inputs") -> np.ndarray | None:
        """(N,) real steps of each raw sequence, for a run trained on variable-length sequences; else None."""
        from dlcli.data.padding import input_lengths

        return input_lengths(raw, self.preprocessing, source)

    def raw_arrays(self, x: np.ndarray, source: str) -> np.ndarray:
        """Arrays from a file, shaped as this run's dataset gave them (for :meth:`inputs`).

        Flat rows of an image run's pixels become (C, H, W) again; grayscale (N, H, W) images get
        their channel axis. ``source`` names the file in the error when the shapes cannot fit.
        """
        pre, x = self.preprocessing, np.asarray(x)
        if pre.get("text") is not None:
            raise DataError(f"{source} holds arrays, but run {self.run_dir.name} was trained on texts: "
                             "give texts (a text file, one per line)")
        if not np.issubdtype(x.dtype, np.number) and x.dtype != bool:
            raise DataError(f"{source} holds {x.dtype} values; the run's inputs are numbers")
        shape = tuple(pre["input_shape"])
        if pre.get("variable_length") and x.ndim == 3 and x.shape[2] == shape[1] and x.shape[1] < shape[0]:
            pad = np.full((len(x), shape[0] - x.shape[1], shape[1]), np.nan, dtype=np.float32)
            x = np.concatenate([x.astype(np.float32), pad], axis=1)  # shorter sequences: padded at the end
        if pre.get("columns") is not None:  # a CSV run: rows of its raw columns, encoded by inputs()
            names = pre["columns"]["names"]
            if x.ndim == 2 and x.shape[1] == len(names):
                return x
            raise DataError(f"{source} holds inputs of shape {x.shape[1:]}; run {self.run_dir.name} takes rows of "
                             f"its {len(names)} CSV columns: {', '.join(names[:20])}")
        if pre.get("image"):  # converted on the way in (channels, resize): any (C, H, W) images will do
            if x.ndim == 3:
                x = x[:, None]  # (N, H, W) -> (N, 1, H, W)
            if x.ndim == 4 and x.shape[1] in (1, 3):
                return x.astype(np.float32)
            raise DataError(f"{source} holds inputs of shape {x.shape[1:]}; run {self.run_dir.name} takes images "
                             "(channels, height, width) with 1 or 3 channels")
        if x.shape[1:] == shape:
            return x.astype(np.float32)
        if x.ndim >= 2 and int(np.prod(x.shape[1:])) == int(np.prod(shape)):
            return x.reshape(len(x), *shape).astype(np.float32)  # e.g. (N, 64) pixels -> (N, 1, 8, 8)
        raise DataError(f"{source} holds inputs of shape {x.shape[1:]}; run {self.run_dir.name} was trained on "
                         f"inputs of shape {shape} ({int(np.prod(shape))} values per row)")

    def checkpoint_path(self, checkpoint: str = "best") -> Path:
        """``checkpoints/<best|last>.ckpt``; a DlcliError says why it is missing."""
        if checkpoint not in CHECKPOINTS:
            raise DlcliError(f"--checkpoint is one of {', '.join(CHECKPOINTS)}, got '{checkpoint}'")
        path = self.run_dir / "checkpoints" / f"{checkpoint}.ckpt"
        if not path.is_file():
            why = " (the run may have stopped before its first epoch ended)"
            if "model_checkpoint" not in (self.config.get("callbacks") or {}):
                why = " (it was trained without callbacks.model_checkpoint)"
            elif self._status() in ("failed", "dead", "interrupted"):
                why = f" (the run {self._status()} before it wrote one: `dlcli runs show {self.run_dir.name}` says why)"
            other = next((c for c in CHECKPOINTS if c != checkpoint
                          and (self.run_dir / "checkpoints" / f"{c}.ckpt").is_file()), None)
            hint = f". Use --checkpoint {other}" if other else ""
            raise DlcliError(f"run {self.run_dir} has no checkpoints/{checkpoint}.ckpt{why}{hint}")
        return path

    def _status(self) -> str | None:
        """The run's status as its summary.json records it (None when it cannot be read)."""
        import json

        try:
            summary = json.loads((self.run_dir / "summary.json").read_text())
        except (OSError, ValueError):
            return None
        return summary.get("status") if isinstance(summary, dict) else None

    def module(self, checkpoint: str = "best", config: dict[str, Any] | None = None) -> Any:
        """The run's task module (model, target scaling, output activation) with trained weights, in eval mode.

        ``config`` (the run's config with eval overrides, e.g. other ``metrics``) replaces the saved one.
        """
        from dlcli.data.prepare import Prepared
        from dlcli.registry import AUGMENTATIONS, LOSSES, load_components
        from dlcli.training.build import build_model, component_params
        from dlcli.training.module import TaskModule

        load_components()  # the built-in components and installed plugins, as training had them
        pre = self.preprocessing
        path = self.checkpoint_path(checkpoint)
        cfg = copy.deepcopy(config if config is not None else self.config)
        cfg["model"]["pretrained"] = None  # the run's own weights are loaded below, whatever it started from
        cfg["finetune"] = {"freeze": None, "stages": None}
        vocab = pre.get("vocab")
        shape = Prepared(pre["task"], {}, tuple(pre["input_shape"]), pre["out_features"], pre.get("classes"), pre,
                         len(vocab) if vocab else None)
        model = build_model(cfg, shape)
        loss = LOSSES.get(cfg["loss"]["name"]).build(component_params(cfg["loss"]))
        augment = None
        if get_task(pre["task"]).needs_views:  # its test loss compares two augmented views
            augment = AUGMENTATIONS.get(cfg["augmentation"]["name"]).build(
                component_params(cfg["augmentation"]), in_shape=shape.in_shape, num_classes=shape.num_classes,
                task=shape.task, vocab=vocab, text=pre.get("text"))
        module = TaskModule(model, loss, pre["task"], shape.num_classes, make_optimizer=lambda _: None,
                            make_scheduler=lambda _: None, augment=augment, target_scaling=pre.get("target_scaling"),
                            has_anomalies=bool(pre.get("anomalies")), metrics=cfg["metrics"])
        from dlcli.training.checkpoint_io import load_checkpoint

        state = load_checkpoint(path)  # weights_only=True: a checkpoint carrying code is refused, never run
        try:
            module.load_state_dict(state["state_dict"])
        except (KeyError, TypeError, RuntimeError) as e:
            raise DlcliError(f"{path} does not fit the model the run's config.yaml builds "
                             f"({type(e).__name__}: {str(e).strip().splitlines()[0] if str(e).strip() else e}). "
                             "Was the checkpoint or the config replaced?") from None
        return module.eval()

    def loaded_module(self, checkpoint: str = "best") -> Any:
        """The checkpoint's task module (:meth:`module`), loaded on the first call and kept for the next ones."""
        if checkpoint not in self._modules:
            self._modules[checkpoint] = self.module(checkpoint)
        return self._modules[checkpoint]

    def predict(self, raw: Any, batch_size: int = 512, checkpoint: str = "best",
                forward: Callable[[np.ndarray], np.ndarray] | None = None) -> np.ndarray:
        """Predictions for raw inputs: class probabilities, or values in the targets' units.

        ``forward``: an exported model (e.g. an onnxruntime session, ``dlcli serve --backend onnx``) taking a
        batch of model inputs (after the preprocessing) to what the task module's predictions are; default the
        checkpoint's task module (:meth:`loaded_module`).
        """
        x = self.inputs(raw)
        if forward is not None:
            return np.concatenate([forward(x[i:i + batch_size]) for i in range(0, len(x), batch_size)])
        import torch

        module, x = self.loaded_module(checkpoint), torch.from_numpy(x)
        lengths = self.lengths(raw)  # variable-length sequences: (N,) real steps; else None
        with torch.no_grad():
            out = [module.predictions(module(x[i:i + batch_size], None if lengths is None
                                             else torch.from_numpy(lengths[i:i + batch_size])), x[i:i + batch_size])
                   for i in range(0, len(x), batch_size)]
        return torch.cat(out).numpy()

    def with_overrides(self, overrides: list[str] | tuple[str, ...], allowed: tuple[str, ...] = (),
                       config_dirs: list[str | Path] | tuple = (), command: str = "this command") -> dict[str, Any]:
        """The run's config with Hydra overrides applied and validated (see :func:`apply_overrides`)."""
        return apply_overrides(self.config, list(overrides), allowed, config_dirs, command)


def apply_overrides(config: dict[str, Any], overrides: list[str], allowed: tuple[str, ...] = (),
                    config_dirs: list[str | Path] | tuple = (), command: str = "this command") -> dict[str, Any]:
    """A saved run config with Hydra overrides, validated as a whole.

    ``group=option`` replaces that group's node with the option's YAML (and the overrides of keys
    under it); ``key=value`` sets, ``+key=value`` adds, ``~key`` removes. ``allowed`` names the
    top-level keys the overrides may touch (all when empty): the rest belong to the trained run.
    """
    from hydra.core.override_parser.overrides_parser import OverridesParser
    from hydra.errors import HydraException

    from dlcli.config.compose import compose, config_dirs_checked, plain_value, set_path, shipped_config_dir
    from dlcli.config.validate import validate

    cfg = copy.deepcopy(config)
    if not overrides:
        return cfg
    dirs = config_dirs_checked(list(config_dirs)) + [shipped_config_dir()]
    parser = OverridesParser.create()
    parsed = []
    for line in overrides:
        try:
            ov = parser.parse_override(line)
        except HydraException as e:
            raise DlcliError(f"cannot parse override '{line}': {str(e).splitlines()[0]}. Overrides look like "
                             "key=value, group=option, +new.key=value or ~key") from None
        if ov.is_sweep_override():
            raise DlcliError(f"override '{line}': a comma makes a sweep, and {command} takes one value: write a "
                             "list as key=[a,b], or quote the value: key='a,b'")
        key = ov.key_or_group
        if allowed and key.split(".", 1)[0] not in allowed:
            raise DlcliError(f"override '{line}': {command} may change {', '.join(allowed)}; '{key}' belongs to "
                             "the trained run. Train a new run to change it")
        parsed.append((line, ov))
    # group=option (as in Hydra, wherever it stands): the option's YAML with every override of keys under it
    groups = {ov.key_or_group: line for line, ov in parsed if "." not in ov.key_or_group and not ov.is_delete()
              and any((d / ov.key_or_group).is_dir() for d in dirs)}
    for group, line in groups.items():
        under = [o for o, p in parsed if p.key_or_group.startswith(group + ".")]
        cfg[group] = compose([line, *under], config_dirs, check=False).config[group]
    for line, ov in parsed:
        key = ov.key_or_group
        if key in groups or key.split(".", 1)[0] in groups:
            continue
        if ov.is_delete():
            _delete_path(cfg, key, line)
        else:
            set_path(cfg, key, plain_value(ov.value()))
    return validate(cfg)


def _delete_path(cfg: dict, dotted: str, line: str) -> None:
    node = cfg
    *parents, last = dotted.split(".")
    for key in parents:
        node = node.get(key) if isinstance(node, dict) else None
    if not isinstance(node, dict) or last not in node:
        raise DlcliError(f"override '{line}': the run's config has no key '{dotted}'")
    del node[last]


def split_output_dir(overrides: list[str]) -> tuple[str, list[str]]:
    """(``output_dir=PATH`` from the overrides, default ``outputs``; the other overrides): where RUN is looked up."""
    dirs = [o.split("=", 1)[1] for o in overrides if o.startswith("output_dir=")]
    return (dirs[-1] if dirs else "outputs"), [o for o in overrides if not o.startswith("output_dir=")]


def load_run(ref: str, output_dir: str | Path = "outputs") -> LoadedRun:
    """A run by folder path, run id, id prefix or ``last``; its config and preprocessing as saved."""
    from dlcli.runs.table import resolve

    run_dir = resolve(ref, output_dir)
    missing = [name for name in (folder.CONFIG, folder.PREPROCESSING) if not (run_dir / name).is_file()]
    if missing:
        raise DlcliError(f"{run_dir} is not a complete dlcli run folder: {', '.join(missing)} missing")
    config = read_run_config(run_dir)
    check_plugins(run_dir, config)
    check_run_config(run_dir, config)
    return LoadedRun(run_dir, config, folder.read_run_json(run_dir / folder.PREPROCESSING))


def check_run_config(run_dir: Path, config: dict[str, Any]) -> dict[str, Any]:
    """The run's config validated, as every command that reopens a run needs it; a DlcliError naming its
    config.yaml when it no longer validates (edited by hand, damaged, or from another dlcli version)."""
    from dlcli.config.validate import ConfigError, validate

    try:
        return validate(copy.deepcopy(config))
    except ConfigError as e:
        raise DlcliError(f"{run_dir / folder.CONFIG} is damaged or from another dlcli version: {e}") from None


def read_run_config(run_dir: Path) -> dict[str, Any]:
    """A run's config.yaml, the one way every command reads it: safety-checked, then brought up to date
    (a run from before data.split gets split=random, the one pool it was drawn from)."""
    from dlcli.data.splits import legacy_config

    return legacy_config(_read_config(run_dir / folder.CONFIG))


def check_plugins(run_dir: Path, config: dict[str, Any]) -> None:
    """Refuse a run whose config names components that only the plugins it was trained with register, when
    those plugins are not loaded now: a DlcliError naming them and the ``--plugin`` that loads them (rather
    than an "unknown model" that leaves the user guessing). summary.json records the plugins of each run."""
    from dlcli.config.validate import ConfigError, validate
    from dlcli.registry import load_components, plugins

    try:
        recorded = folder.read_json(run_dir / folder.SUMMARY).get("plugins") or {}
    except (OSError, ValueError, AttributeError):  # no summary, or not a mapping: nothing recorded to name
        return
    load_components()  # the installed plugins count as loaded
    missing = {module: how for module, how in dict(recorded).items() if module not in plugins()}
    if not missing:
        return
    try:
        validate(config)
    except ConfigError as e:
        # e.g. "model.name: unknown model 'my_net'" (what follows, the built-in names, is no help here)
        unknown = [f"{p.path}: {p.message.split('. ')[0]}" for p in e.problems if p.message.startswith("unknown ")]
        if not unknown:
            return
        names = ", ".join(f"'{module}' (then loaded by {how})" for module, how in missing.items())
        flags = " ".join(f"--plugin {module}" for module in missing)
        raise DlcliError(f"run {run_dir.name} was trained with the plugin{'s' if len(missing) > 1 else ''} "
                         f"{names}, not loaded now, and its config needs what they register: "
                         f"{'; '.join(unknown)}. Add {flags} to the "
                         "command (or name them in DLCLI_PLUGINS)") from None


def _read_config(path: Path) -> dict[str, Any]:
    """A run's config.yaml as plain data; one that would build objects or import code is refused."""
    from omegaconf import OmegaConf
    from yaml import YAMLError

    from dlcli.config.limits import check_yaml_file
    from dlcli.config.safety import code_problems, yaml_tag_message

    check_yaml_file(path)  # an alias bomb is refused before OmegaConf expands it
    try:
        config = OmegaConf.to_container(OmegaConf.load(path))
    except YAMLError as e:
        raise DlcliError(yaml_tag_message(e) or f"{path} is not valid YAML: {' '.join(str(e).split())}") from None
    problems = code_problems(config) if isinstance(config, dict) else [("", "not a mapping of keys to values")]
    if problems:
        raise DlcliError(f"{path} is refused: " + "; ".join(f"{key or 'the top level'}: {message}"
                                                             for key, message in problems))
    return config
