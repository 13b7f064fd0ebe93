"""Compose the run config from YAML with Hydra's compose API, then validate it.

Search path, first match wins: each ``-C/--config-dir`` folder in the order given, then
the configs shipped inside the package. (Hydra's ``hydra.searchpath`` alone appends
folders *after* the primary source, so a user's ``model/mlp.yaml`` would be ignored without
a word behind the shipped one; :func:`_hydra` makes a scratch primary source holding only
``train.yaml``, so here the user's file wins, and the CLI says so.)

Hydra stops at the first bad override. To report every problem at once, a failing
override is set aside, composition is retried without it, and the problem is reported
with the rest: an unknown key is put back into the plain config so the validator names
it with the closest valid key.

A config that would run code (a ``_target_`` key, a resolver outside the safe few) is
refused before anything is resolved (see :mod:`dlcli.config.safety`).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

from dlcli.config.limits import structure_problems, yaml_dir_problems
from dlcli.config.safety import code_problems, yaml_tag_message
from dlcli.config.types import show
from dlcli.config.validate import ConfigError, Problem, validate
from dlcli.errors import DlcliError
from dlcli.registry import closest

PRIMARY = "train"


@cache
def shipped_config_dir() -> Path:
    """The ``conf/`` folder: inside the installed package, or at the top of a checkout."""
    import importlib.util

    spec = importlib.util.find_spec("dlcli.conf")
    if spec is not None and spec.submodule_search_locations:
        for loc in spec.submodule_search_locations:
            if (Path(loc) / f"{PRIMARY}.yaml").is_file():
                return Path(loc)
    checkout = Path(__file__).resolve().parents[2] / "conf"
    if (checkout / f"{PRIMARY}.yaml").is_file():
        return checkout
    raise DlcliError("dlcli's shipped configs are missing: reinstall dlcli (`pip install .`)")


@dataclass
class Composed:
    """A composed, validated config and where its parts came from."""

    config: dict
    overrides: list[str]
    choices: dict[str, str] = field(default_factory=dict)  # group -> chosen option, e.g. model -> mlp
    search_dirs: list[Path] = field(default_factory=list)  # first match wins
    notes: list[str] = field(default_factory=list)  # user files that replace shipped ones

    def where(self, path: str) -> str:
        return _where(path, self.overrides, self.choices, self.search_dirs)


def _where(path: str, overrides: list[str], choices: dict[str, str], dirs: list[Path]) -> str:
    """Where the key at ``path`` was set: an override, or the YAML file of its group."""
    for line in overrides:
        key, _, value = line.partition("=")
        key = key.lstrip("+~")
        inline = value.lstrip().startswith("{")  # key={a: 1}: the override holds the keys below it
        if key == path or key.startswith(path + ".") or \
                (path.startswith((key + ".", key + "[")) and (key not in choices or inline)):
            return f"from override '{line}'"
    group = path.split(".", 1)[0]
    rel = f"{group}/{choices[group]}.yaml" if group in choices else f"{PRIMARY}.yaml"
    for d in dirs:
        if (d / rel).is_file():
            return f"in {d / rel}"
    return ""


def config_dirs_checked(config_dirs: list[str | Path]) -> list[Path]:
    dirs = []
    for d in config_dirs:
        p = Path(d).expanduser().resolve()
        if not p.is_dir():
            raise DlcliError(f"config dir '{d}' (-C/--config-dir) does not exist or is not a folder")
        dirs.append(p)
    return dirs


def _precedence_notes(dirs: list[Path]) -> list[str]:
    """A line for each YAML that hides a file of the same name later on the search path."""
    notes = []
    for i, d in enumerate(dirs[:-1]):
        for f in sorted(d.rglob("*.yaml")):
            rel = f.relative_to(d)
            for later in dirs[i + 1:]:
                if (later / rel).is_file():
                    notes.append(f"{f} takes precedence over {later / rel}")
                    break
    return notes


def group_options(group: str, dirs: list[Path]) -> list[str]:
    return sorted({f.stem for d in dirs for f in (d / group).glob("*.yaml")} if group else set())


def compose(overrides: list[str] | tuple[str, ...] = (), config_dirs: list[str | Path] = (),
            check: bool = True) -> Composed:
    """Compose ``train.yaml`` with ``overrides`` (Hydra grammar) and validate the result.

    Raises :class:`ConfigError` listing every problem found.
    """
    user_dirs = config_dirs_checked(list(config_dirs))
    dirs = user_dirs + [shipped_config_dir()]
    overrides = list(overrides)
    # an alias bomb in a -C folder is refused before Hydra (through OmegaConf) expands it
    bombs = [Problem("", message) for message in yaml_dir_problems(user_dirs)]
    if bombs:
        raise ConfigError(bombs)
    parsed, problems = _parse(overrides)
    refused_hydra = _hydra_code_problems(parsed, user_dirs)  # before Hydra composes anything
    if refused_hydra:
        raise ConfigError(problems + refused_hydra)
    cfg, choices, unknown = _compose_setting_aside(parsed, dirs, problems)
    # no code from configuration: refused before anything is resolved, validated, built or run
    plain = _plain_config(cfg, unknown, resolve=False)
    refused = [Problem(path, message, _where(path, overrides, choices, dirs))
               for path, message in code_problems(plain) + structure_problems(plain)]
    if refused:
        raise ConfigError(problems + refused)
    raw = _resolved(cfg, unknown, problems)
    composed = Composed(raw, overrides, choices, dirs, _precedence_notes(dirs))
    if check:
        try:
            composed.config = validate(raw, composed.where, composed.notes)
        except ConfigError as e:
            problems += e.problems
    if problems:
        raise ConfigError(problems)
    return composed


def _parse(overrides: list[str]) -> tuple[dict[str, Any], list[Problem]]:
    """Parse each override with Hydra's grammar: {line: Override}, and a problem per bad line."""
    from hydra.core.override_parser.overrides_parser import OverridesParser
    from hydra.errors import HydraException

    parser = OverridesParser.create()
    parsed, problems = {}, []
    overrides, spaced = _unspaced(list(overrides))
    for words, joined in spaced:
        problems.append(Problem("overrides", f"{' '.join(map(repr, words))} look like one override written with "
                                             f"spaces around '=': write it without them, {joined}"))
    for line in overrides:
        try:
            parsed[line] = parser.parse_override(line)
        except HydraException as e:
            problems.append(Problem("overrides", f"cannot parse override '{line}': {str(e).splitlines()[0]}. "
                                                 "Overrides look like key=value, group=option, +new.key=value or ~key"))
    return parsed, problems


def _unspaced(words: list[str]) -> tuple[list[str], list[tuple[list[str], str]]]:
    """``words`` less those that make an override only once joined (``data = iris``, ``data= iris``,
    ``data =iris``: the shell splits at the spaces); and each such run of words with the override they make."""
    def joins(a: str, b: str) -> bool:  # `key=` then a value, or a key then `=value` (never two overrides)
        return (a.endswith("=") and "=" not in b) or (b.startswith("=") and "=" not in a)

    rest, spaced, i = [], [], 0
    while i < len(words):
        j = i
        while j + 1 < len(words) and joins(words[j], words[j + 1]):
            j += 1
        if j > i:
            spaced.append((words[i:j + 1], "".join(words[i:j + 1])))
        else:
            rest.append(words[i])
        i = j + 1
    return rest, spaced


@contextmanager
def _hydra(dirs: list[Path]) -> Iterator[list[str]]:
    """Hydra initialised to search ``dirs`` in order (the user's before the shipped one), by its public API.

    Yields the override to pass to every ``compose``. Hydra's initializers take one source, which must hold
    the primary config, and ``hydra.searchpath`` entries are searched after that source, in list order. So
    the one source is a scratch folder holding only the first ``train.yaml`` found along ``dirs`` (a link to
    it), and every folder of ``dirs`` follows through ``hydra.searchpath``: groups resolve first match wins.
    This is the way Hydra's maintainers give for external configs that override installed ones (hydra
    issue #2758: an external primary source, the installed configs added by ``hydra.searchpath``).
    """
    import tempfile

    from hydra import initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra

    GlobalHydra.instance().clear()  # a Hydra left initialised by the caller (a notebook, a test)
    primary = next(d / f"{PRIMARY}.yaml" for d in dirs if (d / f"{PRIMARY}.yaml").is_file())
    quoted = ",".join("'file://" + str(d).replace("\\", "\\\\").replace("'", "\\'") + "'" for d in dirs)
    with tempfile.TemporaryDirectory(prefix="dlcli-conf-") as scratch:
        try:
            Path(scratch, f"{PRIMARY}.yaml").symlink_to(primary)
        except OSError:  # no symlinks (Windows without the privilege): a copy reads the same
            Path(scratch, f"{PRIMARY}.yaml").write_bytes(primary.read_bytes())
        with initialize_config_dir(config_dir=scratch, job_name="dlcli", version_base="1.3"):
            yield [f"hydra.searchpath=[{quoted}]"]


def _compose_setting_aside(parsed: dict[str, Any], dirs: list[Path],
                           problems: list[Problem]) -> tuple[Any, dict[str, str], list[tuple[str, Any]]]:
    """Compose with every override Hydra accepts; a refused one becomes a problem and is set aside.

    Returns the composed config (unresolved, without Hydra's own node), the group choices
    (model -> mlp), and the plain-key overrides Hydra refused as (key, value), to be put back
    for the validator to name. Appends to ``problems``; raises ConfigError when nothing can be
    composed at all.
    """
    from hydra import compose as hydra_compose
    from hydra.errors import ConfigCompositionException, MissingConfigException
    from omegaconf import OmegaConf, open_dict
    from yaml import YAMLError

    active = [line for line in parsed if not _bad_group_choice(line, parsed[line], dirs, problems)]
    unknown: list[tuple[str, Any]] = []  # plain-key overrides Hydra refused: validated later
    with _hydra(dirs) as search:
        while True:
            try:
                cfg = hydra_compose(config_name=PRIMARY, overrides=active + search, return_hydra_config=True)
                break
            except MissingConfigException as e:
                group, _, option = (e.missing_cfg_file or "").rpartition("/")
                line = next((o for o in active if parsed[o].key_or_group == group), None)
                options = e.options or group_options(group, dirs)
                hint = closest(option, options)
                problems.append(Problem(
                    group, f"no config '{option}' in group '{group}'."
                    + (f" Did you mean '{group}={hint[0]}'?" if hint else "")
                    + f" Available: {', '.join(options)}",
                    f"from override '{line}'" if line else "",
                ))
                if line is None:
                    raise ConfigError(problems) from None
                active.remove(line)
            except ConfigCompositionException as e:
                line = _failing_override(str(e), active, parsed)
                if line is None:
                    problems.append(Problem("", str(e).split("\nConfig search path")[0].strip()))
                    raise ConfigError(problems) from None
                ov = parsed[line]
                plain = not (ov.is_delete() or ov.is_add() or ov.is_force_add())
                if plain and "Could not override" in str(e):
                    unknown.append((ov.key_or_group, ov.value()))  # the validator suggests a key
                else:
                    message = str(e.__cause__ or e).splitlines()[0]
                    if message.startswith("Ambiguous value"):
                        message = ("a comma makes a sweep, and `dlcli train` runs one config: sweep with "
                                   "`dlcli train -m ...` or `dlcli sweep ...`; for a list write key=[a,b], or "
                                   "quote the value: key='a,b'")
                    problems.append(Problem(ov.key_or_group, message, f"from override '{line}'"))
                active.remove(line)
            except YAMLError as e:
                problems.append(Problem("", yaml_tag_message(e) or f"invalid YAML: {' '.join(str(e).split())}"))
                raise ConfigError(problems) from None
            except (ValueError, TypeError) as e:  # Hydra refusing an input it cannot name the override of
                problems.append(Problem("", f"{e}. Overrides: {' '.join(active)}"))
                raise ConfigError(problems) from e
    choices = {k: v for k, v in OmegaConf.to_container(cfg.hydra.runtime.choices).items()
               if not k.startswith("hydra/") and isinstance(v, str)}
    with open_dict(cfg):
        del cfg["hydra"]
    return cfg, choices, unknown


def _plain_config(cfg: Any, unknown: list[tuple[str, Any]], resolve: bool) -> dict:
    """The composed config as a plain dict, with the overrides Hydra refused put back."""
    from omegaconf import OmegaConf

    raw = OmegaConf.to_container(cfg, resolve=resolve)
    for key, value in unknown:
        set_path(raw, key, plain_value(value))
    return raw


def _resolved(cfg: Any, unknown: list[tuple[str, Any]], problems: list[Problem]) -> dict:
    """Interpolations resolved; a failure becomes a problem. Called only once ``code_problems`` has found no
    resolver outside SAFE_RESOLVERS, and none of those turns a string into new interpolations (``oc.decode``
    is not among them), so nothing else can be called."""
    from omegaconf.errors import OmegaConfBaseException

    try:
        return _plain_config(cfg, unknown, resolve=True)
    except OmegaConfBaseException as e:
        problems.append(Problem(getattr(e, "full_key", "") or "", f"cannot resolve: {e.msg.splitlines()[0]}"))
        return _plain_config(cfg, unknown, resolve=False)


def _hydra_code_problems(parsed: dict[str, Any], user_dirs: list[Path]) -> list[Problem]:
    """``_target_`` and the other code keys under ``hydra.`` (an override, or a user YAML's ``hydra:`` node).

    The check on the composed config cannot see them: Hydra's own node is dropped from it, and holds
    Hydra's own ``_target_`` keys (its launcher, its sweeper). dlcli runs none of them, but a config that
    asks for code is refused as anywhere else, so that nothing written for a tool that would run it passes.
    """
    import yaml

    found = []
    for line, ov in parsed.items():
        key = ov.key_or_group
        if not key.startswith("hydra.") and key != "hydra":
            continue
        value = plain_value(ov.value()) if not ov.is_sweep_override() else None
        node: Any = value
        for part in reversed(key.split(".")):
            node = {part: node}
        found += [Problem(path, message, f"from override '{line}'") for path, message in code_problems(node)]
    for d in user_dirs:
        for f in sorted(d.rglob("*.yaml")):
            try:
                data = yaml.safe_load(f.read_text(encoding="utf-8"))  # bounded: yaml_dir_problems passed it
            except (yaml.YAMLError, OSError, UnicodeDecodeError):
                continue  # Hydra reports the file if it is used
            if f.relative_to(d).parts[0] == "hydra":  # an option of Hydra's own groups (hydra/launcher/x.yaml)
                node = {"hydra": data}
            elif isinstance(data, dict) and isinstance(data.get("hydra"), dict):
                node = {"hydra": data["hydra"]}
            else:
                continue
            found += [Problem(path, message, f"in {f}") for path, message in code_problems(node)]
    return found


def _bad_group_choice(line: str, ov: Any, dirs: list[Path], problems: list[Problem]) -> bool:
    """``model=0`` or ``~model=1``: a config group takes an option's name (Hydra raises a bare ValueError)."""
    group = ov.key_or_group
    options = group_options(group, dirs) if "." not in group and group.isidentifier() else []
    value = ov.value()
    if not options or ov.is_sweep_override() or isinstance(value, str) or (value is None and ov.is_delete()):
        return False
    if isinstance(value, dict) and not ov.is_delete():
        return False  # a mapping sets keys of the group's node
    if isinstance(value, list) and all(isinstance(v, str) for v in value) and not ov.is_delete():
        return False  # several options, merged in order (Hydra checks that each exists)
    problems.append(Problem(group, f"a config group takes the name of one of its options, got {show(value)}. "
                                   f"Available: {', '.join(options)}", f"from override '{line}'"))
    return True


def _failing_override(message: str, active: list[str], parsed: dict) -> str | None:
    m = re.search(r"(?:override|delete from config\.|item is already at) '([^']+)'", message) \
        or re.search(r"Error merging override (\S+)", message) \
        or re.search(r"Ambiguous value for argument '([^']+)'", message)
    if not m:
        return None
    token = m.group(1)
    for line in active:
        if token in (line, parsed[line].key_or_group):
            return line
    return None


def plain_value(value: Any) -> Any:
    """Hydra override values as plain Python (its parser returns its own containers)."""
    if isinstance(value, dict):
        return {k: plain_value(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain_value(v) for v in value]
    return value


def set_path(cfg: dict, dotted: str, value: Any) -> None:
    """cfg[a][b][c] = value for dotted 'a.b.c', making the missing parents."""
    node = cfg
    *parents, last = dotted.split(".")
    for key in parents:
        if not isinstance(node.get(key), dict):
            node[key] = {}
        node = node[key]
    node[last] = value
