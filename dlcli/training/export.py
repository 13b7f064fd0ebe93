"""``export(run)``: a finished run's model as a file other programs run, checked against PyTorch.

The exported graph is the model plus its output activation (:meth:`TaskModule.predictions`), so it
gives what ``dlcli predict`` gives: class probabilities (softmax; sigmoid for binary and multilabel),
values in the targets' original units (regression), embeddings (metric learning, contrastive),
reconstructions (reconstruction) or per-step symbol probabilities (transcription). Its input is the
model's input after the run's preprocessing, which is saved beside it (``<name>.preprocessing.json``).
"""

from __future__ import annotations

import contextlib
import logging
import os
import secrets
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from dlcli.errors import DlcliError
from dlcli.runs import folder
from dlcli.tasks import get_task
from dlcli.training.reload import LoadedRun

FORMATS = {"onnx": ".onnx", "torchscript": ".pt", "pt2": ".pt2"}
TOLERANCE = 1e-4  # the largest difference between exported and PyTorch outputs that passes the check
EXPORT_BATCH, CHECK_BATCHES = 2, (5, 1)  # traced with one batch size, checked on others (the batch is dynamic)


@dataclass
class ExportResult:
    path: Path
    metadata_path: Path
    format: str
    max_abs_diff: float | None  # None: no runtime here to check an ONNX file with
    checked_with: str
    metadata: dict[str, Any]
    scale: float = 1.0  # the largest output magnitude checked

    @property
    def ok(self) -> bool:
        """Within TOLERANCE: absolute, or relative to the outputs' scale where it exceeds 1."""
        return self.max_abs_diff is None or self.max_abs_diff <= TOLERANCE * max(1.0, self.scale)


def outputs(module: Any, x: Any) -> Any:
    """The task module's predictions for model inputs ``x``: the reference the exported file is checked against."""
    return module.predictions(module(x), x)


def graph(module: Any) -> Any:
    """A plain ``nn.Module`` computing :func:`outputs`: the model and its output activation, without Lightning."""
    import torch
    from torch import nn

    spec = module.spec

    class Exported(nn.Module):
        """Model inputs -> predictions (what the task's ``gives`` says)."""

        def __init__(self) -> None:
            super().__init__()
            self.model = module.model
            self.register_buffer("y_mean", module.y_mean.clone())
            self.register_buffer("y_std", module.y_std.clone())

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return spec.predictions(spec.output(self.model(x)), x, self.y_mean, self.y_std)

    return Exported().eval()


def sample_inputs(run: LoadedRun, n: int, seed: int = 0) -> Any:
    """Random model inputs of the run's shape: standard-normal arrays, or token ids with padding at the end."""
    import torch

    pre = run.preprocessing
    g = torch.Generator().manual_seed(seed)
    shape = tuple(pre["input_shape"])
    if pre.get("text") is None:
        return torch.randn(n, *shape, generator=g)
    ids = torch.randint(1, len(pre["vocab"]), (n, *shape), generator=g)
    lengths = torch.randint(1, shape[-1] + 1, (n, 1), generator=g)
    return ids * (torch.arange(shape[-1]) < lengths)  # (N, L) ids, then 0 (padding) after each text's length


def export(run: LoadedRun, fmt: str = "onnx", output: str | Path | None = None,
           checkpoint: str = "best") -> ExportResult:
    """Write the run's model as ``fmt`` with its preprocessing beside it; check it against PyTorch."""
    if fmt not in FORMATS:
        raise DlcliError(f"--format is one of {', '.join(FORMATS)}, got '{fmt}'")
    _check_exporter(fmt)
    run.checkpoint_path(checkpoint)
    if run.preprocessing.get("variable_length"):  # the graph would need the lengths as a second input
        raise DlcliError(f"run {run.run_dir.name} was trained on variable-length sequences (padded at the end), "
                         "and exporting a model that takes sequence lengths is not supported yet. Use "
                         "`dlcli predict` with the run, or train on fixed-length sequences to export")
    path = Path(output).expanduser() if output else run.run_dir / "export" / f"model{FORMATS[fmt]}"
    if path.is_dir():
        path = path / f"model{FORMATS[fmt]}"
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise DlcliError(f"cannot create '{path.parent}' for the export (--output): {e.strerror or e}") from None
    module = run.module(checkpoint)
    exported = graph(module)
    example = sample_inputs(run, EXPORT_BATCH)
    model_name = run.config["model"]["name"]
    # written beside the target under a temporary name, checked, then renamed: a kill never leaves half a model
    partial = path.with_name(f".{path.stem}.partial-{secrets.token_hex(3)}{path.suffix}")
    try:
        try:
            with _quiet():
                {"onnx": _onnx, "torchscript": _torchscript, "pt2": _pt2}[fmt](exported, example, partial)
        except DlcliError:
            raise
        except Exception as e:  # the exporters raise many kinds; each means this model does not export this way
            if isinstance(e, ImportError) and fmt == "onnx":  # ...but a package the exporter imports is missing:
                raise missing_extra("ONNX", (e.name or "onnxscript").split(".")[0], e) from None  # not the model
            others = ", ".join(f for f in FORMATS if f != fmt)
            first = str(e).strip().splitlines()[0] if str(e).strip() else ""
            raise DlcliError(f"model '{model_name}' cannot be exported to {fmt}: {type(e).__name__}: {first}. "
                             f"Try --format {others}") from None
        diff, scale, checked_with = check(module, run, fmt, partial)
        os.replace(partial, path)
    finally:
        partial.unlink(missing_ok=True)
    metadata = _metadata(run, fmt, path, checkpoint, diff, checked_with)
    meta_path = path.with_suffix(".preprocessing.json")
    folder.write_json(meta_path, metadata)
    return ExportResult(path, meta_path, fmt, diff, checked_with, metadata, scale)


@contextlib.contextmanager
def _quiet():
    """The exporters' progress lines and deprecation notices stay out of dlcli's output."""
    loggers = [logging.getLogger(name) for name in ("torch.onnx", "torch.export", "torch._dynamo", "onnxscript")]
    levels = [lg.level for lg in loggers]
    for lg in loggers:
        lg.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings(), contextlib.redirect_stdout(None):
            warnings.simplefilter("ignore")
            yield
    finally:
        for lg, level in zip(loggers, levels, strict=True):
            lg.setLevel(level)


EXPORT_EXTRA = 'pip install "dlcli[export]"'  # onnx, onnxscript, onnxruntime (pyproject.toml)


def missing_extra(fmt: str, package: str, error: BaseException) -> DlcliError:
    """The error for a package of the ``export`` extra that cannot be imported: it names the package and the
    command that installs it (never the model, which is not at fault)."""
    return DlcliError(f"{fmt} export needs the package '{package}', which cannot be imported here "
                      f"({type(error).__name__}: {error}). Install dlcli's export extra (onnx, onnxscript, "
                      f"onnxruntime): {EXPORT_EXTRA} (with -U to upgrade an older version)")


def _check_exporter(fmt: str) -> None:
    """ONNX: the exporter's packages import (imported, not only looked up: an installed but broken package
    fails here too), before anything is loaded or written; the error names the package and the install."""
    if fmt != "onnx":
        return  # torch itself exports TorchScript and torch.export programs
    import importlib

    for package in ("onnx", "onnxscript"):
        try:
            importlib.import_module(package)
        except ImportError as e:
            raise missing_extra("ONNX", package, e) from None


def _onnx(model: Any, example: Any, path: Path) -> None:
    import torch

    batch = torch.export.Dim("batch", min=1)
    # torch.export-based exporter (the legacy TorchScript-based one is deprecated); the batch stays dynamic
    torch.onnx.export(model, (example,), str(path), dynamo=True, input_names=["x"], output_names=["y"],
                      dynamic_shapes={"x": {0: batch}}, external_data=False, verbose=False)


def _torchscript(model: Any, example: Any, path: Path) -> None:
    import torch

    traced = torch.jit.trace(model, example, check_trace=False)
    torch.jit.save(traced, str(path))


def _pt2(model: Any, example: Any, path: Path) -> None:
    import torch

    program = torch.export.export(model, (example,), dynamic_shapes={"x": {0: torch.export.Dim("batch", min=1)}})
    torch.export.save(program, str(path))


def check(module: Any, run: LoadedRun, fmt: str, path: Path) -> tuple[float | None, float, str]:
    """(largest absolute difference between the exported file's outputs and the task module's on random
    inputs, largest output magnitude, what ran the file)."""
    import torch

    run_exported, checked_with = _runner(fmt, path)
    if run_exported is None:
        return None, 1.0, checked_with
    diff, scale = 0.0, 0.0
    for i, n in enumerate(CHECK_BATCHES):
        x = sample_inputs(run, n, seed=i + 1)
        with torch.no_grad():
            expected = outputs(module, x).numpy()
        got = np.asarray(run_exported(x))
        if got.shape != expected.shape:
            raise DlcliError(f"the exported model gives outputs of shape {got.shape} for a batch of {n}, "
                             f"PyTorch {expected.shape}")
        diff = max(diff, float(np.abs(got - expected).max()))
        scale = max(scale, float(np.abs(expected).max()))
    return diff, scale, checked_with


def _runner(fmt: str, path: Path) -> tuple[Any, str]:
    """A function running the exported file on a tensor, and what runs it."""
    import torch

    if fmt == "torchscript":
        loaded = torch.jit.load(str(path))
        return (lambda x: loaded(x).detach().numpy()), "torch.jit.load"
    if fmt == "pt2":
        program = torch.export.load(str(path)).module()
        return (lambda x: program(x).detach().numpy()), "torch.export.load"
    try:
        import onnxruntime as ort
    except ImportError:  # onnx (needed to export at all) has an evaluator of its own
        from onnx.reference import ReferenceEvaluator

        evaluator = ReferenceEvaluator(str(path))
        return (lambda x: evaluator.run(None, {"x": x.numpy()})[0]), "onnx.reference"
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return (lambda x: session.run(None, {"x": x.numpy()})[0]), "onnxruntime"


def _metadata(run: LoadedRun, fmt: str, path: Path, checkpoint: str, diff: float | None,
              checked_with: str) -> dict[str, Any]:
    """Everything a program needs to feed the exported model: preprocessing, shapes, classes, outputs."""
    from dlcli.training.train import versions

    pre = run.preprocessing
    text = pre.get("text") is not None
    return {
        "format": fmt, "file": path.name, "run_id": run.run_dir.name, "run_dir": str(run.run_dir),
        "checkpoint": checkpoint, "exported_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "task": run.task, "model": run.config["model"]["name"],
        "input": {"name": "x", "shape": ["batch", *pre["input_shape"]], "dtype": "int64" if text else "float32",
                  "what": "token ids from the vocabulary below, padded with 0 at the end" if text
                  else "inputs after the preprocessing below (CSV column encoding: preprocessing.columns, "
                  "encoded_names; then scaling)" if pre.get("columns")
                  else "inputs after the preprocessing below (image conversion, then scaling)"},
        "output": {"name": "y", "what": get_task(run.task).gives},
        "classes": run.classes, "feature_names": pre.get("feature_names"),
        # binary and multilabel: a class (label) is predicted when its probability is above this (per label,
        # when a list); tuned by `dlcli eval --tune-threshold`, else 0.5, as `dlcli predict` decides
        "threshold": run.threshold if run.decision in ("positive", "labels") else None,
        "check": {"max_abs_diff": diff, "tolerance": TOLERANCE, "with": checked_with,
                  "inputs": f"random, batches of {' and '.join(map(str, CHECK_BATCHES))}"},
        "preprocessing": pre, "versions": versions(),
    }
