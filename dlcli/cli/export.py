"""``dlcli export RUN --format onnx|torchscript|pt2``: a finished run's model for deployment."""

from __future__ import annotations

from pathlib import Path

import typer

from dlcli.cli.common import DEBUG, PLUGINS, escape, out, use_plugins, user_errors
from dlcli.cli.eval import CHECKPOINT, RUN
from dlcli.cli.predict import OUTPUT_DIR


def export_command(
    run: str = RUN,
    fmt: str = typer.Option("onnx", "--format", "-f", metavar="onnx|torchscript|pt2",
                            help="onnx (onnxruntime and others), torchscript (torch.jit, deprecated by PyTorch) "
                                 "or pt2 (torch.export)."),
    output: Path = typer.Option(None, "--output", "-o", metavar="PATH", show_default=False,
                                help="The file to write (default: <run>/export/model.<onnx|pt|pt2>)."),
    checkpoint: str = CHECKPOINT,
    output_dir: str = OUTPUT_DIR,
    plugin: list[str] = PLUGINS,
    debug: bool = DEBUG,
) -> None:
    """Export a run's best model and output activation, with its preprocessing beside it; checked against PyTorch.

    Writes e.g. model.onnx and model.preprocessing.json (the run's preprocessing, classes, input shape and
    what the outputs are), then runs the file on random inputs and compares its outputs with PyTorch's.

    Examples: `dlcli export last`, `dlcli export last --format pt2 --output model.pt2`.
    """
    with user_errors(debug):
        use_plugins(plugin)
        from dlcli.training.export import TOLERANCE, export
        from dlcli.training.reload import load_run

        result = export(load_run(run, output_dir), fmt, output, checkpoint)
    out.print(f"exported: {escape(str(result.path))}", soft_wrap=True)
    out.print(f"preprocessing and metadata: {escape(str(result.metadata_path))}", soft_wrap=True)
    out.print(f"outputs: {escape(result.metadata['output']['what'])}", soft_wrap=True)
    if result.max_abs_diff is None:
        out.print(f"check: {result.checked_with}")
        return
    scaled = f" x {result.scale:.3g}, the outputs' scale" if result.scale > 1 else ""
    out.print(f"check: max abs difference from PyTorch {result.max_abs_diff:.2e} on random inputs "
              f"({result.checked_with}; tolerance {TOLERANCE:g}{scaled})")
    if not result.ok:
        from dlcli.cli.common import err

        err.print(f"[bold red]error:[/] the exported model's outputs differ from PyTorch's by "
                  f"{result.max_abs_diff:.2e}, more than {TOLERANCE:g}{scaled}")
        raise typer.Exit(1)
