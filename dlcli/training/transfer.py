"""Transfer learning: load an earlier run's weights into a compatible model; freeze parameters by name."""

from __future__ import annotations

from dataclasses import dataclass, field
from fnmatch import fnmatchcase
from pathlib import Path
from typing import Any

from dlcli.errors import DlcliError


@dataclass
class LoadReport:
    source: str
    loaded: list[str] = field(default_factory=list)  # same name and shape: copied
    skipped: list[str] = field(default_factory=list)  # same name, other shape (e.g. a new head): re-initialised
    new: list[str] = field(default_factory=list)  # in this model only

    def as_dict(self) -> dict[str, Any]:
        return {"source": self.source, "loaded": len(self.loaded), "skipped": self.skipped, "new": self.new}


def resolve_checkpoint(ref: str, output_dir: str) -> Path:
    """A checkpoint file; a run folder (its best, else last checkpoint); or a run id / id prefix / ``last``."""
    from dlcli.runs.folder import resolve_run

    path = Path(ref).expanduser()
    if path.is_file():
        return path
    try:
        path = resolve_run(ref, output_dir, "model.pretrained")
    except FileNotFoundError as e:
        raise DlcliError(f"{e}. Give a checkpoint file, a run folder, or a run id") from None
    for name in ("best.ckpt", "last.ckpt"):
        if (path / "checkpoints" / name).is_file():
            return path / "checkpoints" / name
    raise DlcliError(f"model.pretrained: run folder {path} has no checkpoints/best.ckpt or last.ckpt")


def pretrained_preprocessing(ref: str, output_dir: str, data_fingerprint: dict | None = None,
                             allow_changed_data: bool = False) -> tuple[Path, dict[str, Any]] | None:
    """(run folder, its saved preprocessing) for the run that ``model.pretrained`` names, if it is a dlcli run.

    ``data_fingerprint`` (this run's data files): a file the pretrained run also read must not have changed
    since, or the splits would differ and this run's test rows could be rows that run trained on.
    """
    from dlcli.runs.folder import PREPROCESSING, read_json

    ckpt = resolve_checkpoint(ref, output_dir)
    run_dir = ckpt.parent.parent if ckpt.parent.name == "checkpoints" else ckpt.parent
    if not (run_dir / PREPROCESSING).is_file():
        return None  # a bare checkpoint: this run fits its own preprocessing
    pre = read_json(run_dir / PREPROCESSING)
    if data_fingerprint is not None:
        from dlcli.data.fingerprint import check

        check(pre, {}, allow_changed_data, f"the pretrained run {run_dir.name} (model.pretrained)", shared_only=True,
              now=data_fingerprint, flag="model.allow_changed_data=true (or dlcli train --allow-changed-data)")
    return run_dir, pre


def load_pretrained(model: Any, ref: str, output_dir: str) -> LoadReport:
    """Copy every tensor whose name and shape match; others keep their fresh initialisation.

    Loading uses ``weights_only=True``: a checkpoint that carries code is refused, never run.
    """
    import torch

    from dlcli.training.checkpoint_io import load_checkpoint

    ckpt = resolve_checkpoint(ref, output_dir)
    state = load_checkpoint(ckpt, key="model.pretrained")
    weights = state.get("state_dict", state) if isinstance(state, dict) else {}
    # dlcli's checkpoints hold the task module's tensors: the model's are under "model."
    weights = {k.removeprefix("model."): v for k, v in weights.items() if torch.is_tensor(v)}
    report = LoadReport(str(ckpt))
    own = model.state_dict()
    for name, tensor in own.items():
        if name not in weights:
            report.new.append(name)
        elif weights[name].shape != tensor.shape:
            report.skipped.append(name)
        else:
            own[name] = weights[name]
            report.loaded.append(name)
    if not report.loaded:
        raise DlcliError(f"model.pretrained: no tensor of {ckpt} fits this model (names or shapes differ): is it "
                         "the same model family?")
    model.load_state_dict(own)
    return report


def freeze(model: Any, patterns: list[str]) -> list[str]:
    """Stop training the parameters whose names match any pattern; return their names."""
    frozen = []
    for name, p in model.named_parameters():
        if any(fnmatchcase(name, pat) for pat in patterns):
            p.requires_grad_(False)
            frozen.append(name)
    unused = [pat for pat in patterns if not any(fnmatchcase(n, pat) for n, _ in model.named_parameters())]
    if unused:
        names = [n for n, _ in model.named_parameters()][:8]
        raise DlcliError(f"finetune.freeze: pattern(s) {', '.join(map(repr, unused))} match no parameter. "
                         f"Parameter names look like: {', '.join(names)}")
    mark_frozen_norms(model)
    return frozen


def mark_frozen_norms(model: Any) -> None:
    """Flag batch-norm layers with nothing left to train, so their running statistics stay fixed too
    (the task module keeps flagged layers in eval mode while training)."""
    import torch

    for module in model.modules():
        if isinstance(module, torch.nn.modules.batchnorm._BatchNorm):
            params = list(module.parameters(recurse=False))
            module.dlcli_frozen = bool(params) and not any(p.requires_grad for p in params)
