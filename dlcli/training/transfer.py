"""Transfer learning: load pretrained weights (an earlier run, a checkpoint, torchvision/timm ImageNet weights)
into a compatible model; freeze parameters by name."""

from __future__ import annotations

from dataclasses import dataclass, field
from fnmatch import fnmatchcase
from pathlib import Path
from typing import Any

from dlcli.errors import DlcliError

WEIGHT_SUFFIXES = (".pth", ".pt", ".bin", ".safetensors", ".ckpt")


@dataclass
class LoadReport:
    source: str
    format: str = "dlcli"  # dlcli, or a reference format (weights_map.FORMATS)
    loaded: list[str] = field(default_factory=list)  # copied into this model
    skipped: list[str] = field(default_factory=list)  # re-initialised: other shape (dlcli), or the head (reference)
    new: list[str] = field(default_factory=list)  # in this model only
    unused: list[str] = field(default_factory=list)  # in the file only (e.g. a VGG's classifier with head=gap)

    def as_dict(self) -> dict[str, Any]:
        return {"source": self.source, "format": self.format, "loaded": len(self.loaded), "skipped": self.skipped,
                "new": self.new, "unused": self.unused}

    def describe(self) -> str:
        """The run header's line: what loaded, what starts fresh, from where."""
        from dlcli.training.weights_map import FORMATS

        if self.format == "dlcli":
            fresh = f"re-initialised (shape differs): {', '.join(self.skipped) or 'none'}"
        else:
            fresh = f"re-initialised: {len(self.skipped)} (the head, for this run's outputs: {', '.join(self.skipped)})"
        line = (f"pretrained: {len(self.loaded)} tensors loaded from {self.source} "
                f"({FORMATS.get(self.format, 'dlcli checkpoint')}); {fresh}; new: {', '.join(self.new) or 'none'}")
        return line + (f"; unused from the file: {', '.join(self.unused)}" if self.unused else "")


@dataclass(frozen=True)
class Source:
    """What ``model.pretrained`` names, resolved to a file."""

    path: Path
    format: str  # dlcli, or a reference format (torchvision/timm names, see dlcli/training/weights_map.py)

    @property
    def imagenet(self) -> bool:
        """torchvision/timm weights: an ImageNet backbone, whose inputs the data is fitted to."""
        return self.format != "dlcli"


def resolve_source(model: dict[str, Any], output_dir: str) -> Source:
    """``imagenet`` (torchvision's weights, fetched into torch.hub's cache when missing); a weight file
    (torchvision/timm names, or dlcli's); or an earlier run (folder, id, id prefix, ``last``)."""
    ref = str(model["pretrained"])
    if ref == "imagenet":
        from dlcli.training.imagenet import imagenet_weights

        return Source(imagenet_weights(model), "resnet" if model["name"] == "resnet" else "vgg")
    path = Path(ref).expanduser()
    if path.is_file():
        from dlcli.training.weights_map import check_fits, detect_format, reference_layout

        shapes = _shapes(path)
        fmt = detect_format(shapes)
        if fmt is not None:  # the model must fit before the data loads (the images' channels are checked later)
            check_fits(reference_layout(fmt, shapes, str(path)), model, None, str(path))
        return Source(path, fmt or "dlcli")
    if path.suffix in WEIGHT_SUFFIXES:
        raise DlcliError(f"model.pretrained: no such file: {path}")
    return Source(resolve_checkpoint(ref, output_dir), "dlcli")


def resolve_checkpoint(ref: str, output_dir: str) -> Path:
    """A checkpoint file; a run folder (its best, else last checkpoint); or a run id / id prefix / ``last``."""
    from dlcli.runs.folder import resolve_run

    path = Path(ref).expanduser()
    if path.is_file():
        return path
    try:
        path = resolve_run(ref, output_dir, "model.pretrained")
    except FileNotFoundError as e:
        raise DlcliError(f"{e}. Give a checkpoint file, a run folder, a run id, or imagenet") from None
    for name in ("best.ckpt", "last.ckpt"):
        if (path / "checkpoints" / name).is_file():
            return path / "checkpoints" / name
    raise DlcliError(f"model.pretrained: run folder {path} has no checkpoints/best.ckpt or last.ckpt")


def read_weights(path: Path) -> dict[str, Any]:
    """The tensors of a weight file by name: safetensors, or torch.save's format read with weights_only=True
    (a file that carries code is refused, never run). A checkpoint's ``state_dict`` (or ``model``) is
    unwrapped, and DataParallel's ``module.`` prefix dropped."""
    import torch

    if path.suffix == ".safetensors":
        from safetensors import SafetensorError
        from safetensors.torch import load_file

        try:
            return load_file(path)
        except (SafetensorError, OSError, ValueError) as e:
            raise DlcliError(f"model.pretrained: {path}: cannot read it as a safetensors file ({e}): is it "
                             "truncated, or another kind of file?") from None
    from dlcli.training.checkpoint_io import load_checkpoint

    state = load_checkpoint(path, key="model.pretrained", mmap=True)
    if isinstance(state, dict):
        for key in ("state_dict", "model"):  # Lightning's (dlcli's) checkpoints; some training scripts' files
            if isinstance(state.get(key), dict):
                state = state[key]
                break
    else:
        state = {}
    return {k.removeprefix("module."): v for k, v in state.items() if torch.is_tensor(v)}


def _shapes(path: Path) -> dict[str, tuple[int, ...]]:
    """The tensor names and shapes of a weight file (a safetensors file's tensors are not read)."""
    if path.suffix == ".safetensors":
        from safetensors import SafetensorError, safe_open

        try:
            with safe_open(path, "pt") as f:
                return {k: tuple(f.get_slice(k).get_shape()) for k in f.keys()}
        except (SafetensorError, OSError, ValueError) as e:
            raise DlcliError(f"model.pretrained: {path}: cannot read it as a safetensors file ({e}): is it "
                             "truncated, or another kind of file?") from None
    return {k: tuple(v.shape) for k, v in read_weights(path).items()}


def pretrained_preprocessing(source: Source, data_fingerprint: dict | None = None,
                             allow_changed_data: bool = False) -> tuple[Path, dict[str, Any]] | None:
    """(run folder, its saved preprocessing) for the dlcli run ``source`` comes from, if any.

    ``data_fingerprint`` (this run's data files): a file the pretrained run also read must not have changed
    since, or the splits would differ and this run's test rows could be rows that run trained on.
    """
    from dlcli.runs.folder import PREPROCESSING, read_json

    ckpt = source.path
    run_dir = ckpt.parent.parent if ckpt.parent.name == "checkpoints" else ckpt.parent
    if source.format != "dlcli" or not (run_dir / PREPROCESSING).is_file():
        return None  # a bare checkpoint or reference weights: this run fits its own preprocessing
    pre = read_json(run_dir / PREPROCESSING)
    if data_fingerprint is not None:
        from dlcli.data.fingerprint import check

        check(pre, {}, allow_changed_data, f"the pretrained run {run_dir.name} (model.pretrained)", shared_only=True,
              now=data_fingerprint, flag="model.allow_changed_data=true (or dlcli train --allow-changed-data)")
    return run_dir, pre


def load_pretrained(model: Any, model_cfg: dict[str, Any], output_dir: str) -> LoadReport:
    """Load what ``model.pretrained`` names into ``model``.

    A dlcli run or checkpoint: every tensor whose name and shape match is copied; others keep their fresh
    initialisation. torchvision/timm weights: every backbone tensor goes where the name map says
    (dlcli/training/weights_map.py) and must fit; the head starts fresh for this run's outputs.
    """
    source = resolve_source(model_cfg, output_dir)
    weights = read_weights(source.path)
    if source.format == "dlcli":
        return _load_matching(model, weights, source.path)
    return _load_reference(model, weights, source, model_cfg)


def _load_matching(model: Any, weights: dict[str, Any], path: Path) -> LoadReport:
    # dlcli's checkpoints hold the task module's tensors: the model's are under "model."
    weights = {k.removeprefix("model."): v for k, v in weights.items()}
    report = LoadReport(str(path))
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
        raise DlcliError(f"model.pretrained: no tensor of {path} fits this model (names or shapes differ): is it "
                         "the same model family?")
    model.load_state_dict(own)
    return report


def _load_reference(model: Any, weights: dict[str, Any], source: Source, model_cfg: dict[str, Any]) -> LoadReport:
    from dlcli.training.weights_map import check_fits, detect_format, name_map, reference_layout

    fmt = detect_format(weights) or source.format
    shapes = {k: tuple(v.shape) for k, v in weights.items()}
    own = model.state_dict()
    first_conv = next((t for t in own.values() if t.ndim == 4), None)  # (C_out, C_in, k, k): C_in = the images'
    check_fits(reference_layout(fmt, shapes, str(source.path)), model_cfg,
               None if first_conv is None else first_conv.shape[1], str(source.path))
    mapped = name_map(fmt, shapes, own, model_cfg)
    report = LoadReport(str(source.path), fmt, skipped=list(mapped.head))
    problems, used = [], set(mapped.head_refs)
    for name, tensor in own.items():
        take = mapped.takes.get(name)
        if name in mapped.head:
            continue
        if take is None or take.ref not in weights:
            if not name.endswith("num_batches_tracked"):  # some files leave this counter out; it is not a weight
                problems.append(f"{name} {tuple(tensor.shape)}: not in the file")
            continue
        value = weights[take.ref]
        if take.minus is not None:  # VGG-BN: the convolution's bias folded into the norm's running mean
            value = value - weights[take.minus]
            used.add(take.minus)
        if take.as_linear and value.ndim == 4:  # (out, in, k, k) over a k x k map -> (out, in*k*k), C-major
            value = value.reshape(value.shape[0], -1)
        used.add(take.ref)
        if tuple(value.shape) != tuple(tensor.shape):
            problems.append(f"{name} {tuple(tensor.shape)}: the file's {take.ref} is {tuple(value.shape)}")
            continue
        own[name] = value.to(tensor.dtype)
        report.loaded.append(name)
    if problems:
        raise DlcliError(f"model.pretrained: {len(problems)} tensor(s) of this model do not fit {source.path}: "
                         f"{'; '.join(problems[:6])}{' ...' if len(problems) > 6 else ''}. The map from torchvision/"
                         "timm names is in the README (Pretrained backbones)")
    report.unused = [k for k in weights if k not in used]
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
