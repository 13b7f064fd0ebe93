"""Bounds on hostile or runaway input, checked before anything is loaded or built.

- A YAML file's anchors (``&a``) and aliases (``*a``) share one node in PyYAML, but OmegaConf copies
  each alias where it appears: nine lines of nine aliases each ("billion laughs") become 9**9 nodes,
  which took over 10 minutes and 3 GB to compose. :func:`yaml_file_problem` counts the nodes a file
  expands to, on PyYAML's node graph (each shared node counted once per use, computed once), and
  refuses a file past :data:`MAX_YAML_NODES` before OmegaConf ever sees it.
- A composed config nested deeper than :data:`MAX_DEPTH` or holding a list longer than
  :data:`MAX_LIST_ITEMS` is refused with the key that does it (:func:`structure_problems`).
- The run's ``name`` becomes part of a folder name (at most 255 bytes on most file systems), and
  ``threads`` is handed to torch: both are checked at validation (:func:`top_level_problems`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

MAX_YAML_NODES = 100_000  # nodes one YAML file may expand to; conf/'s largest file has a few hundred
MAX_DEPTH = 50  # nesting of mappings and lists; conf/ nests at most a handful deep
MAX_LIST_ITEMS = 100_000  # items in one list of the composed config
MAX_YAML_BYTES = 10_000_000  # a config file's size: larger ones are refused before they are parsed at all
MAX_NAME = 100  # characters in a run's name: the folder adds 21 more, far below the file systems' 255 bytes


def yaml_file_problem(path: Path) -> str | None:
    """Why the YAML file at ``path`` is refused (it expands too far, nests too deep, or refers to itself);
    None when it is within bounds, or is not valid YAML (Hydra reports that one with its line)."""
    import yaml

    try:
        if path.stat().st_size > MAX_YAML_BYTES:
            return (f"{path}: {path.stat().st_size:,} bytes, over the {MAX_YAML_BYTES:,} a config file may hold: "
                    "refused unread. Put large lists of values in a data file")
        with open(path, encoding="utf-8") as f:
            # the pure-Python composer: aliases stay shared node objects, nothing is expanded yet
            root = yaml.compose(f, Loader=yaml.SafeLoader)
    except RecursionError:
        return (f"{path}: nested too deep for a config (over {MAX_DEPTH} levels of mappings and lists): refused. "
                "Flatten the file")
    except (yaml.YAMLError, OSError, UnicodeDecodeError):
        return None
    if root is None:
        return None
    sizes: dict[int, int] = {}
    active: set[int] = set()

    def size(node: Any, depth: int) -> int:
        """Nodes ``node`` stands for once every alias under it is copied in place."""
        if depth > MAX_DEPTH:
            raise _Refused(f"{path}: nested more than {MAX_DEPTH} levels deep (mappings and lists): refused. "
                           "Flatten the file")
        key = id(node)
        if key in sizes:
            return sizes[key]
        if key in active:
            raise _Refused(f"{path}: a YAML alias refers to a node that contains it (a recursive structure, "
                           "which would expand forever): refused. Write the values out instead")
        active.add(key)
        if isinstance(node, yaml.SequenceNode):
            n = 1 + sum(size(child, depth + 1) for child in node.value)
        elif isinstance(node, yaml.MappingNode):
            n = 1 + sum(size(k, depth + 1) + size(v, depth + 1) for k, v in node.value)
        else:
            n = 1
        active.discard(key)
        sizes[key] = n
        return n

    try:
        total = size(root, 0)
    except _Refused as e:
        return str(e)
    if total > MAX_YAML_NODES:
        return (f"{path}: its YAML aliases (*name, repeating an &name anchor) expand it too far: to {total:,} "
                f"values, over the {MAX_YAML_NODES:,} a config file may hold. It is refused unread (an alias "
                "bomb takes minutes and gigabytes to load). Write the values out, or use fewer nested aliases")
    return None


class _Refused(Exception):
    pass


def yaml_dir_problems(dirs: list[Path]) -> list[str]:
    """A message for every YAML file under ``dirs`` that :func:`yaml_file_problem` refuses."""
    found = []
    for d in dirs:
        for f in sorted(d.rglob("*.yaml")):  # the files Hydra reads
            problem = yaml_file_problem(f)
            if problem:
                found.append(problem)
    return found


def check_yaml_file(path: Path) -> None:
    """Raise DlcliError when the YAML file at ``path`` is out of bounds; call it before loading the file."""
    from dlcli.errors import DlcliError

    problem = yaml_file_problem(Path(path))
    if problem:
        raise DlcliError(problem)


def structure_problems(node: Any) -> list[tuple[str, str]]:
    """(dotted key, message) for a composed config nested deeper than MAX_DEPTH or with a list over
    MAX_LIST_ITEMS items; one problem per key, the walk does not go below a refused node."""
    found: list[tuple[str, str]] = []
    pending = [(node, "", 0)]
    while pending:
        here, path, depth = pending.pop()
        if depth > MAX_DEPTH:
            found.append((path, f"nested more than {MAX_DEPTH} levels deep: a config is refused past that. "
                                "Flatten it"))
            continue
        if isinstance(here, dict):
            pending += [(v, f"{path}.{k}" if path else str(k), depth + 1) for k, v in here.items()]
        elif isinstance(here, (list, tuple)):
            if len(here) > MAX_LIST_ITEMS:
                found.append((path, f"a list of {len(here):,} items, over the {MAX_LIST_ITEMS:,} a config list may "
                                    "hold: refused. Put long lists of values in a data file"))
                continue
            pending += [(v, f"{path}[{i}]", depth + 1) for i, v in enumerate(here)]
    return found


def top_level_problems(out: dict) -> list[tuple[str, str]]:
    """(key, message) for a run ``name`` too long or with control characters."""
    found = []
    name = out.get("name")
    if isinstance(name, str):
        if len(name) > MAX_NAME:
            found.append(("name", f"{len(name)} characters, at most {MAX_NAME}: it names the run folder. "
                                  f"Shorten it, e.g. name={name[:20]!r}"))
        controls = sorted({c for c in name if not c.isprintable()})
        if controls:
            shown = ", ".join(repr(c) for c in controls)
            found.append(("name", f"holds control characters ({shown}), which would reach file names and "
                                  "terminals: use printable text"))
    return found
