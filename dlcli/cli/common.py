"""Options and error handling shared by the commands."""

from __future__ import annotations

import re
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import typer
from rich.console import Console

from dlcli.errors import DlcliError

_SHOW_WARNING = warnings.showwarning  # Python's own, for warnings from other libraries
out = Console(highlight=False)
err = Console(stderr=True, highlight=False)
# Output that is not a terminal (a pipe, a file, a CI or SLURM log) has no width to fit: rich would wrap it at
# 80 columns and split paths. There lines are never wrapped (soft wrap) and tables get all the width they need.
UNWRAPPED_WIDTH = 100_000


def fit_consoles() -> None:
    """Size ``out`` and ``err`` for where they write now: a terminal's width, or no limit for anything else.

    Called as each command starts (the app's callback), when sys.stdout and sys.stderr are the ones it writes to.
    """
    for console in (out, err):
        terminal = console.is_terminal
        console.soft_wrap = not terminal
        console.width = None if terminal else UNWRAPPED_WIDTH  # None: the terminal's own width, as rich finds it

OVERRIDES = typer.Argument(
    None, metavar="[OVERRIDES]...",
    help="Hydra overrides: group=option (model=perceptron), key=value (optimizer.lr=0.01), "
         "+new.key=value, ~key (remove).",
    show_default=False,
)
CONFIG_DIRS = typer.Option(
    None, "--config-dir", "-C", metavar="DIR",
    help="Your own config folder, searched before the shipped configs (repeatable): "
         "DIR/model/my_net.yaml becomes model=my_net.",
    show_default=False,
)
DEBUG = typer.Option(False, "--debug", help="Show full tracebacks for errors.")
ALLOW_CHANGED_DATA = typer.Option(
    False, "--allow-changed-data",
    help="Go on although a data file changed since the run recorded its fingerprint (preprocessing.json): "
         "its splits rebuilt from the changed data may not be the ones it was trained and tested on.",
)
PLUGINS = typer.Option(
    None, "--plugin", metavar="MODULE",
    help="Import a Python module of yours that registers components (repeatable): --plugin my_plugin "
         "for ./my_plugin.py. Also DLCLI_PLUGINS=mod1,mod2, and installed 'dlcli.plugins' entry points.",
    show_default=False,
)


@contextmanager
def user_errors(debug: bool) -> Iterator[None]:
    """Turn bad input into a short message and exit code 2; other failures into exit 1.

    dlcli's own warnings (e.g. --allow-changed-data going on with changed data) print as `warning: ...`.
    """
    with warnings.catch_warnings():
        warnings.showwarning = _show_warning
        with _errors(debug):
            yield


def _show_warning(message, category, filename, lineno, file=None, line=None) -> None:
    if Path(str(filename)).resolve().is_relative_to(Path(__file__).resolve().parents[1]):  # raised in dlcli
        err.print(f"[yellow]warning:[/] {escape(str(message))}", soft_wrap=True)
    else:
        _SHOW_WARNING(message, category, filename, lineno, file, line)


@contextmanager
def _errors(debug: bool) -> Iterator[None]:
    try:
        yield
    except DlcliError as e:
        if debug:
            raise
        err.print(f"[bold red]error:[/] {escape(str(e))}", soft_wrap=True)
        raise typer.Exit(e.exit_code) from None
    except KeyboardInterrupt:
        err.print("interrupted")
        raise typer.Exit(130) from None
    except (typer.Exit, SystemExit):
        raise
    except Exception as e:
        if debug:
            raise
        err.print(f"[bold red]error:[/] {type(e).__name__}: {escape(str(e))}", soft_wrap=True)
        err.print("Run again with --debug for the full traceback.")
        raise typer.Exit(1) from None


def use_plugins(modules: list[str] | None) -> None:
    """Register dlcli's components and the plugins' (``--plugin``, DLCLI_PLUGINS, entry points).

    Call it inside :func:`user_errors`, before composing: a plugin that fails exits 2, naming it.
    """
    from dlcli.registry import load_plugins

    load_plugins(modules or [])


def print_notes(notes: list[str]) -> None:
    for note in notes:
        err.print(f"note: {escape(note)}", soft_wrap=True)


def escape(text: str) -> str:
    """``text`` printed as written: rich markup (``[red]``) escaped, control characters made visible."""
    from rich.markup import escape as rich_escape

    return rich_escape(printable(text))


# C0 and C1 control characters (ESC starts the terminal's escape sequences; C1's CSI does too), DEL, and the
# Unicode line separators
_CONTROLS = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029]")


def printable(text: str, keep: str = "\n\t") -> str:
    """``text`` with its control characters (but those in ``keep``) written as escapes (ESC as ``\\x1b``),
    so that text read from files (a run's name) cannot move the cursor, recolour or retitle the terminal."""
    return _CONTROLS.sub(lambda m: m.group() if m.group() in keep else repr(m.group())[1:-1], text)
