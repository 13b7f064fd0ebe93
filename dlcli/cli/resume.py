"""``dlcli resume RUN``: continue a stopped, killed or finished run in its own folder."""

from __future__ import annotations

import typer

from dlcli.cli.common import ALLOW_CHANGED_DATA, DEBUG, OVERRIDES, PLUGINS, err, out, use_plugins, user_errors
from dlcli.cli.eval import OUTPUT_DIR

RUN = typer.Argument(..., metavar="RUN", show_default=False,
                     help="The run: its folder, its run id, an id prefix, or `last` (the newest under outputs/).")


def resume_command(
    run: str = RUN,
    overrides: list[str] = OVERRIDES,
    output_dir: str = OUTPUT_DIR,
    plugin: list[str] = PLUGINS,
    allow_changed_data: bool = ALLOW_CHANGED_DATA,
    debug: bool = DEBUG,
) -> None:
    """Continue a run from its checkpoints/last.ckpt: model, optimizer, scheduler, epoch, random state.

    Overrides may change trainer.* (trainer.max_epochs=50 trains a finished run on), threads and
    data.num_workers; --output-dir DIR looks for RUN there. Examples: `dlcli resume last`,
    `dlcli resume 20261121-101500-digits-mlp-a1b2 trainer.max_epochs=50`.
    """
    from dlcli.cli.train import report

    with user_errors(debug):
        use_plugins(plugin)
        from dlcli.training.resume import prepare_resume

        cfg, resume = prepare_resume(run, overrides or [], output_dir, allow_changed_data=allow_changed_data)
        from dlcli.runs.provenance import warn_if_changed

        warn_if_changed(resume.run_dir, resume.summary, err, "resuming")
        from dlcli.training.train import train

        result = train(cfg, overrides or [], console=err, progress_console=out, resume=resume)
    if result.primary:
        report(result)
