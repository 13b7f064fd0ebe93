"""``dlcli lr-find``: a learning-rate range test on the composed run."""

from __future__ import annotations

from pathlib import Path

import typer

from dlcli.cli.common import CONFIG_DIRS, DEBUG, OVERRIDES, PLUGINS, out, print_notes, use_plugins, user_errors


def lr_find_command(
    overrides: list[str] = OVERRIDES,
    config_dir: list[Path] = CONFIG_DIRS,
    plugin: list[str] = PLUGINS,
    min_lr: float = typer.Option(1e-6, "--min-lr", help="The rate to start from."),
    max_lr: float = typer.Option(1.0, "--max-lr", help="The rate to end at."),
    steps: int = typer.Option(100, "--steps", help="Training steps, the rate growing exponentially."),
    debug: bool = DEBUG,
) -> None:
    """Find a learning rate: train briefly with a growing rate, print the suggestion, save the loss-vs-rate plot.

    Example: `dlcli lr-find model=cnn`, then `dlcli train model=cnn optimizer.lr=<suggestion>`.
    """
    from dlcli.config.compose import compose

    with user_errors(debug):
        _check_range(min_lr, max_lr, steps)
        use_plugins(plugin)
        composed = compose(overrides or [], config_dir or [])
        print_notes(composed.notes)
        from dlcli.training.lr_find import lr_find

        result = lr_find(composed.config, min_lr=min_lr, max_lr=max_lr, num_steps=steps)
    if result.suggestion is None:
        out.print("no suggestion: the loss never fell steadily; try a wider --min-lr/--max-lr or more --steps")
    else:
        out.print(f"suggested learning rate: [bold]{result.suggestion:.3g}[/]  "
                  f"(use it with optimizer.lr={result.suggestion:.3g})")
    out.print(f"plot: {result.run_dir / 'plots' / 'lr_find.png'}", soft_wrap=True)


def _check_range(min_lr: float, max_lr: float, steps: int) -> None:
    """The finder's own flags, before anything is composed or loaded."""
    from dlcli.errors import DlcliError

    if steps < 1:
        raise DlcliError(f"--steps {steps}: the finder needs at least 1 training step (e.g. --steps 100)")
    if not 0 < min_lr < max_lr:
        raise DlcliError(f"--min-lr {min_lr:g} --max-lr {max_lr:g}: give rates with 0 < --min-lr < --max-lr "
                         "(e.g. --min-lr 1e-6 --max-lr 1)")
