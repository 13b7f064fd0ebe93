"""Named component registries: YAML says ``name: mlp``, the registry finds the builder.

Each registry entry is a plain function whose keyword parameters are the component's
config keys (with their types and defaults) and whose docstring's first line is its
one-line description. Builders import torch inside their body, so that reading the
registry (``dlcli list``, ``dlcli config show``, validation) never pays for torch.

Some parameters are not the user's to set: the model's input width is inferred from the
data, the optimizer receives the parameters to optimise. A registry names those
``injected`` parameters; they are passed by dlcli and hidden from the config.
"""

from __future__ import annotations

import difflib
import inspect
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any, get_type_hints

from dlcli.errors import DlcliError


def closest(word: str, options: Iterable[str], n: int = 1) -> list[str]:
    """The option(s) closest to ``word``, for 'did you mean ...?' hints."""
    return difflib.get_close_matches(word, list(options), n=n, cutoff=0.5)


def did_you_mean(word: str, options: Iterable[str]) -> str:
    """' Did you mean 'x'?' or '' when nothing is close."""
    match = closest(word, options)
    return f" Did you mean '{match[0]}'?" if match else ""


@dataclass(frozen=True)
class Param:
    """One user-settable parameter of a component."""

    name: str
    annotation: Any
    default: Any = inspect.Parameter.empty

    @property
    def required(self) -> bool:
        return self.default is inspect.Parameter.empty


@dataclass
class Entry:
    """A registered component: its name, builder, parameters and metadata."""

    name: str
    fn: Callable[..., Any]
    params: dict[str, Param]
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def summary(self) -> str:
        doc = inspect.getdoc(self.fn) or ""
        return doc.strip().splitlines()[0] if doc.strip() else ""

    def build(self, config: dict[str, Any] | None = None, /, **injected: Any) -> Any:
        """Call the builder with the user's ``config`` values and those ``injected`` values it takes.

        dlcli offers every builder of a kind the same injected values (a model gets ``in_shape``,
        ``out_features`` and, for text, ``vocab_size``); each builder declares the ones it uses.
        """
        accepted = inspect.signature(self.fn).parameters
        return self.fn(**(config or {}), **{k: v for k, v in injected.items() if k in accepted})


class UnknownComponent(DlcliError):
    """A config names a component that no registry entry has."""


class Registry:
    """Components of one kind, registered by name with :meth:`register`."""

    def __init__(self, kind: str, injected: tuple[str, ...] = ()) -> None:
        self.kind = kind  # singular, as a user says it: "model", "loss"
        self.injected = injected
        self._entries: dict[str, Entry] = {}

    def register(self, name: str | None = None, **meta: Any) -> Callable[[Callable], Callable]:
        """Decorator: register ``fn`` under ``name`` (default: the function's name)."""

        def deco(fn: Callable) -> Callable:
            key = name or fn.__name__
            if key in self._entries:
                other = self._entries[key].fn
                raise ValueError(
                    f"duplicate {self.kind} name '{key}': {fn.__module__}.{fn.__qualname__} "
                    f"and {other.__module__}.{other.__qualname__}"
                )
            self._entries[key] = Entry(key, fn, self._params(fn), dict(meta))
            return fn

        return deco

    def _params(self, fn: Callable) -> dict[str, Param]:
        hints = get_type_hints(fn, include_extras=True)
        params = {}
        for p in inspect.signature(fn).parameters.values():
            if p.name in self.injected or p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD):
                continue
            params[p.name] = Param(p.name, hints.get(p.name, Any), p.default)
        return params

    def get(self, name: str) -> Entry:
        if name not in self._entries:
            raise UnknownComponent(self.unknown_message(name))
        return self._entries[name]

    def unknown_message(self, name: Any) -> str:
        return (
            f"unknown {self.kind} '{name}'.{did_you_mean(str(name), self._entries)} "
            f"Available: {', '.join(self.names())}"
        )

    def names(self) -> list[str]:
        return sorted(self._entries)

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and name in self._entries  # a YAML list or mapping is no name

    def __iter__(self) -> Iterator[Entry]:
        return iter(self._entries[n] for n in self.names())

    def __len__(self) -> int:
        return len(self._entries)


# One registry per component kind. Injected parameters are supplied by dlcli at build time.
# A model builder's `inputs` meta says what its input is: "any" (flattened), "vector" (F,),
# "image" (C, H, W), "sequence" (T, F), "series" (T, F) or rows of T values read as univariate series (T, 1),
# or "tokens" (T,) of integer ids (with `vocab_size`).
MODELS = Registry("model", injected=("in_shape", "out_features", "vocab_size", "task"))
LAYERS = Registry("layer", injected=("in_shape", "vocab_size"))
LOSSES = Registry("loss")
OPTIMIZERS = Registry("optimizer", injected=("params",))
SCHEDULERS = Registry("scheduler", injected=("optimizer", "max_epochs", "steps_per_epoch"))
AUGMENTATIONS = Registry("augmentation", injected=("in_shape", "num_classes", "task", "vocab", "text"))
AUG_OPS = Registry("augmentation op", injected=("in_shape",))  # the ops an augmentation pipeline lists
CALLBACKS = Registry("callback", injected=("run_dir",))
# split: data.split, official | random; group: cv.group, a CSV column read as each row's group (Table.groups)
DATASETS = Registry("dataset", injected=("seed", "split", "group"))
LOGGERS = Registry("logger", injected=("run_dir", "config"))
# A task is a class (dlcli/tasks/): its facts and its steps from a loaded table to a report; see dlcli.tasks.base.
TASKS = Registry("task")

REGISTRIES: dict[str, Registry] = {
    "model": MODELS,
    "layer": LAYERS,
    "loss": LOSSES,
    "optimizer": OPTIMIZERS,
    "scheduler": SCHEDULERS,
    "augmentation": AUGMENTATIONS,
    "augmentation_op": AUG_OPS,
    "callback": CALLBACKS,
    "dataset": DATASETS,
    "logger": LOGGERS,
    "task": TASKS,
}


def load_components() -> None:
    """Import the modules that register dlcli's built-in components, then the installed plugins.

    An explicit list, not a folder scan: what is registered is visible here. These
    modules are light; their builders import torch only when called.
    """
    _load_builtins()
    _load_installed_plugins()


def _load_builtins() -> None:
    from dlcli import augment, callbacks, loggers, losses, optim, schedulers, text_augment  # noqa: F401
    from dlcli.data import builtin, files, images, sequences, text  # noqa: F401
    from dlcli.models import (  # noqa: F401
        autoencoder,
        cnn,
        composed,
        inception,
        layers,
        mlp,
        recurrent,
        resnet,
        series,
        transformer,
        vgg,
        vit,
    )
    from dlcli.tasks import (  # noqa: F401
        binary,
        contrastive,
        metric_learning,
        multiclass,
        multilabel,
        reconstruction,
        regression,
        transcription,
    )


# ---------------------------------------------------------------------------------------------- plugins
# Your own components come from Python modules you name, never from YAML: a plugin module registers
# them with the decorators above when imported. Three ways to name one, all explicit:
#   --plugin MODULE on any command; the DLCLI_PLUGINS environment variable (comma-separated modules);
#   an installed distribution's entry point in the group "dlcli.plugins".

PLUGIN_GROUP = "dlcli.plugins"
PLUGINS_ENV = "DLCLI_PLUGINS"
_plugins: dict[str, str] = {}  # imported plugin module -> how it was named
_installed_loaded = False


def plugins() -> dict[str, str]:
    """The plugin modules imported so far, each with how it was named (``--plugin``, an entry point, ...)."""
    return dict(_plugins)


def load_plugins(modules: Iterable[str] = ()) -> None:
    """Import dlcli's components, the installed plugins, and the plugin ``modules`` (``--plugin``).

    Built-ins come first, so a plugin that reuses a built-in name is refused as a duplicate.
    """
    load_components()
    for module in modules:
        import_plugin(module, "--plugin")


def _load_installed_plugins() -> None:
    """Once per process: the ``dlcli.plugins`` entry points of installed distributions, then DLCLI_PLUGINS."""
    global _installed_loaded
    if _installed_loaded:
        return
    _installed_loaded = True  # set first: a plugin that fails is reported once, not on every call
    import os
    from importlib.metadata import entry_points

    for ep in sorted(entry_points(group=PLUGIN_GROUP), key=lambda ep: ep.name):
        dist = getattr(ep.dist, "name", None)
        source = f"entry point '{ep.name}' in group {PLUGIN_GROUP}" + (f" of {dist}" if dist else "")
        import_plugin(ep.module, source, fix="fix or uninstall that distribution")
    for module in os.environ.get(PLUGINS_ENV, "").split(","):
        if module.strip():
            import_plugin(module.strip(), PLUGINS_ENV)


def import_plugin(module: str, source: str, fix: str = "") -> None:
    """Import one plugin module; a DlcliError naming it if it cannot be found or fails to import.

    A module that is not on the import path is looked for in the current folder too, as
    ``python -m`` would: ``--plugin my_plugin`` finds ``./my_plugin.py``.
    """
    import importlib
    import os
    import sys

    if module in _plugins:
        return
    if not all(part.isidentifier() for part in module.split(".")):
        raise DlcliError(f"plugin '{module}' ({source}) is not a Python module name: give a module such as "
                         "my_plugin (for ./my_plugin.py) or my_package.components")
    fix = fix or "fix the module, or leave it out"
    try:
        try:
            importlib.import_module(module)
        except ModuleNotFoundError as e:
            if e.name != module.split(".")[0] or os.getcwd() in sys.path:
                raise
            sys.path.append(os.getcwd())  # a module of the user's, beside them
            importlib.import_module(module)
    except ModuleNotFoundError as e:
        if e.name == module or module.startswith(f"{e.name}."):  # the plugin itself, not one of its imports
            raise DlcliError(f"plugin module '{module}' ({source}) not found. Put {module.split('.')[0]}.py (or "
                             "its package) in the current folder or on PYTHONPATH, or install it") from e
        raise DlcliError(f"plugin '{module}' ({source}) failed to import: {type(e).__name__}: {e}; {fix}") from e
    except Exception as e:  # the plugin's own code: any error is the plugin's, named as such
        raise DlcliError(f"plugin '{module}' ({source}) failed to import: {type(e).__name__}: {e}; {fix}") from e
    _plugins[module] = source
