"""No code from configuration: a config is plain data, and components are named through the registry.

Three ways a YAML config could run code elsewhere, and what dlcli does about each:

- Hydra's ``instantiate`` imports and calls whatever ``_target_`` names. dlcli never calls it, and
  refuses its keys anywhere in a config, so a config written for such a tool fails loudly here
  instead of being half-understood.
- YAML tags such as ``!!python/object/apply:os.system`` construct Python objects. Hydra loads YAML
  with OmegaConf's loader, built on PyYAML's SafeLoader, which cannot construct them; dlcli turns
  the loader's error into a message that names the file and says why (see :func:`yaml_tag_message`).
- OmegaConf resolvers (``${name:args}``) are Python functions that any imported library may register
  (some projects register ``eval``). A config may use only :data:`SAFE_RESOLVERS`; any other name is
  refused before anything is resolved. The check parses every string with OmegaConf's own grammar
  (nested calls and names built from interpolations included), and no safe resolver turns a string into
  new interpolations, so resolution can call nothing else.
"""

from __future__ import annotations

import re
from typing import Any

# The keys by which Hydra's instantiate imports (_target_) and calls code, or shapes that call.
CODE_KEYS = ("_target_", "_partial_", "_call_", "_args_", "_recursive_", "_convert_")

# Resolvers a config may use: they read an environment variable, select or list nodes of the same
# config, or give the date. oc.decode and oc.create are left out on purpose: they parse a string into
# new config whose interpolations are resolved in turn, out of sight of the check below.
SAFE_RESOLVERS = ("oc.env", "oc.select", "oc.dict.keys", "oc.dict.values", "oc.deprecated", "now")

_PLUGIN_HINT = "dlcli names components through its registry (name: mlp); bring your own with --plugin MODULE"


def code_problems(node: Any, path: str = "") -> list[tuple[str, str]]:
    """(dotted key, message) for every key or value in ``node`` that would import or run code."""
    found: list[tuple[str, str]] = []
    if isinstance(node, dict):
        for key, value in node.items():
            sub = f"{path}.{key}" if path else str(key)
            if key in CODE_KEYS:
                found.append((sub, f"'{key}' is refused: it makes a config import and call Python code "
                                   f"(Hydra's instantiate). {_PLUGIN_HINT}"))
                continue
            found += code_problems(value, sub)
    elif isinstance(node, (list, tuple)):
        for i, value in enumerate(node):
            found += code_problems(value, f"{path}[{i}]")
    elif isinstance(node, str) and "${" in node:
        for name in resolver_names(node):
            if name.startswith("${"):
                found.append((path, f"{node!r}: a resolver name made by an interpolation ({name}) is refused. "
                                    f"Resolvers allowed in a config: {', '.join(SAFE_RESOLVERS)}"))
            elif name not in SAFE_RESOLVERS:
                found.append((path, f"{node!r}: the resolver '{name}' is refused: a config may only use "
                                    f"{', '.join(SAFE_RESOLVERS)}. Write the value itself, or compute it in a "
                                    "plugin (--plugin MODULE)"))
    return found


def resolver_names(text: str) -> list[str]:
    """The resolvers an OmegaConf string calls, nested ones too (``${a:${b:x}}`` -> a, b), parsed as
    OmegaConf parses it. A name built from an interpolation is returned as written (``${x}``).

    A string OmegaConf cannot parse calls nothing: resolving it fails, and that is reported later.
    """
    from omegaconf import grammar_parser
    from omegaconf.errors import GrammarParseError
    from omegaconf.grammar.gen.OmegaConfGrammarParser import OmegaConfGrammarParser

    try:
        tree = grammar_parser.parse(text)
    except GrammarParseError:
        return []
    names: list[str] = []

    def walk(node: Any) -> None:
        if isinstance(node, OmegaConfGrammarParser.ResolverNameContext):
            names.append(node.getText())
        for child in getattr(node, "children", None) or []:
            walk(child)

    walk(tree)
    return names


def yaml_tag_message(error: Exception) -> str | None:
    """A clear message for a YAML file that uses a ``!!python/...`` tag; None for other YAML errors."""
    problem = str(getattr(error, "problem", "") or "")
    m = re.search(r"tag '(?:tag:yaml\.org,2002:)?(python/[^']*)'", problem)
    if not m:
        return None
    mark = getattr(error, "problem_mark", None)
    where = f"{mark.name}, line {mark.line + 1}" if mark is not None else "a config file"
    return (f"{where}: the YAML tag '!!{m.group(1)}' is refused: it would build Python objects, and so run "
            f"code. Configs hold plain values only (numbers, strings, lists, mappings). {_PLUGIN_HINT}")
