"""The ``dlcli`` command line: a thin Typer layer over the library.

Nothing heavy is imported here: torch and Lightning load inside the commands that train.
"""

from __future__ import annotations

import sys

import typer

from dlcli.cli import config as config_cmd
from dlcli.cli import cv as cv_cmd
from dlcli.cli import eval as eval_cmd
from dlcli.cli import export as export_cmd
from dlcli.cli import listing, lr_find, train
from dlcli.cli import model as model_cmd
from dlcli.cli import predict as predict_cmd
from dlcli.cli import resume as resume_cmd
from dlcli.cli import runs as runs_cmd
from dlcli.cli import serve as serve_cmd
from dlcli.cli import sweep as sweep_cmd
from dlcli.cli.common import fit_consoles

app = typer.Typer(
    name="dlcli",
    help="Declarative deep-learning training: YAML configs + command-line overrides -> a trained model "
         "and a run folder under outputs/.",
    no_args_is_help=True,
    add_completion=True,  # --install-completion / --show-completion (bash, zsh, fish, PowerShell)
    pretty_exceptions_show_locals=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _show_version(value: bool) -> None:
    if not value:
        return
    from importlib.metadata import PackageNotFoundError, version

    try:
        typer.echo(f"dlcli {version('dlcli')}")
    except PackageNotFoundError:  # imported from a checkout that was never installed: no metadata to read
        typer.echo("dlcli: no version (not installed; `pip install -e .` installs it)", err=True)
        raise typer.Exit(1) from None
    raise typer.Exit()


@app.callback()
def _options(
    version: bool = typer.Option(False, "--version", is_eager=True, callback=_show_version,
                                 help="Show dlcli's version and exit."),
) -> None:
    fit_consoles()  # the streams are known now (also under a test runner that swaps them)


app.command("train")(train.train_command)
app.command("resume")(resume_cmd.resume_command)
app.command("eval")(eval_cmd.eval_command)
app.command("predict")(predict_cmd.predict_command)
app.command("export")(export_cmd.export_command)
app.command("serve")(serve_cmd.serve_command)
app.command("list")(listing.list_command)
app.command("lr-find")(lr_find.lr_find_command)
app.command("sweep")(sweep_cmd.sweep_command)
app.command("cv")(cv_cmd.cv_command)
app.add_typer(config_cmd.app, name="config")
app.add_typer(model_cmd.app, name="model")
app.add_typer(runs_cmd.app, name="runs")


def main() -> None:
    from dlcli import startup

    startup.pause()  # until the command's imports are done (dlcli/startup.py)
    if _the_program():  # (not when a Python program calls main(): its own exit stays as it is)
        startup.exit_after_atexit()
    try:
        app()
    except SystemExit as e:
        startup.exiting(e.code if isinstance(e.code, int) else 0 if e.code is None else 1)
        raise
    except KeyboardInterrupt:  # Python's own exit by SIGINT, as a shell expects
        raise
    except BaseException:  # its traceback is printed before the exit
        startup.exiting(1)
        raise
    finally:
        # The command is done and the process is about to exit. Python's last garbage collection would walk
        # every object torch and Lightning made at import (2.0-2.3 s of a 1-epoch run's 10-14 s here; 0.3 s
        # without it): frozen, they are left to the operating system, which frees the memory at once.
        # atexit handlers and open files are unaffected (they are not left to that collection).
        import gc

        gc.freeze()


def _the_program() -> bool:
    """Whether this process is `dlcli ...` or `python -m dlcli ...` (or a run's extra process, started as
    `python dlcli/__main__.py`)."""
    from pathlib import Path

    argv0 = Path(sys.argv[0]) if sys.argv and sys.argv[0] else None
    if argv0 is None:
        return False
    return argv0.stem == "dlcli" or argv0.resolve() == (Path(__file__).resolve().parents[1] / "__main__.py")
