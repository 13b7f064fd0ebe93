"""``dlcli config``: inspect composed configs without training."""

from __future__ import annotations

from pathlib import Path

import typer

from dlcli.cli.common import CONFIG_DIRS, DEBUG, OVERRIDES, PLUGINS, print_notes, use_plugins, user_errors

app = typer.Typer(help="Inspect the composed config.", no_args_is_help=True)


@app.command("show")
def show(
    overrides: list[str] = OVERRIDES,
    config_dir: list[Path] = CONFIG_DIRS,
    plugin: list[str] = PLUGINS,
    debug: bool = DEBUG,
    check: bool = typer.Option(True, "--check/--no-check",
                               help="Validate the config (names, keys, types) and fill in defaults."),
) -> None:
    """Print the config `dlcli train` would use with these overrides, as YAML."""
    from omegaconf import OmegaConf

    from dlcli.config.compose import compose

    with user_errors(debug):
        use_plugins(plugin)
        composed = compose(overrides or [], config_dir or [], check=check)
    print_notes(composed.notes)
    typer.echo(OmegaConf.to_yaml(OmegaConf.create(composed.config)), nl=False)
