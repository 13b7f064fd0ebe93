"""Reference weight files (torchvision, timm) for dlcli's ResNet and VGG: their parameter names mapped to dlcli's.

torchvision and timm name a ResNet's tensors alike; their VGGs share ``features.N`` and differ in the
classifier. The map (the README's "Pretrained backbones" shows the same table), reference -> dlcli:

ResNet (torchvision, timm)
  conv1.*                          -> stem.0.0.*   (stem.0.* for the 3x3 small-input stem)
  bn1.*                            -> stem.0.1.*   (stem.1.*)
  layer{s}.{b}.conv{k}.*           -> stages.{s-1}.{b}.residual.{3k-3}.*   k = 1, 2 (basic) or 1, 2, 3 (bottleneck)
  layer{s}.{b}.bn{k}.*             -> stages.{s-1}.{b}.residual.{3k-2}.*
  layer{s}.{b}.downsample.{i}.*    -> stages.{s-1}.{b}.shortcut.{i}.*      i = 0 (1x1 convolution), 1 (its norm)
  fc.*                             -> fc.*                                 the head: re-initialised
VGG (torchvision)
  features.{n}.*   (the i-th Conv2d)    -> features.{j}.0.*   (the i-th conv unit)
  features.{n+1}.* (its BatchNorm2d)    -> features.{j}.1.*   (VGG-BN, see below)
  classifier.0.*, classifier.3.*        -> head.2.*, head.5.*  (model.head=classic: the 4096-wide layers)
  classifier.6.*                        -> head.8.*            the head: re-initialised
VGG (timm)
  features.*                            as torchvision's
  pre_logits.fc1.*                      -> head.2.*  a 7x7 convolution as linear: (4096, 512, 7, 7) -> (4096, 25088)
  pre_logits.fc2.*                      -> head.5.*  a 1x1 convolution: (4096, 4096, 1, 1) -> (4096, 4096)
  head.fc.*                             -> head.8.*  the head: re-initialised

VGG-BN: torchvision's convolutions keep a bias before their batch norm; dlcli's have none (a norm's shift
does that job). The bias is folded into the norm's running mean (``running_mean - bias``), which gives the
same outputs in eval mode and in training mode (batch statistics subtract the bias anyway).

With ``model.head=gap`` a VGG file's classifier layers are left unused (the report names them).
Torch-free: names and shapes only; :mod:`dlcli.training.transfer` copies the tensors.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from dlcli.errors import DlcliError

# format key -> what the report and messages call it
FORMATS = {"resnet": "torchvision/timm ResNet", "vgg": "torchvision VGG", "vgg_timm": "timm VGG"}
FAMILY = {"resnet": "resnet", "vgg": "vgg", "vgg_timm": "vgg"}
SUPPORTED = "model=resnet (depth 18, 34, 50) and model=vgg (depth 11, 13, 16, 19; norm batch or none)"

Shapes = Mapping[str, tuple[int, ...]]


def detect_format(names: Iterable[str]) -> str | None:
    """The reference format the tensor names follow (a key of FORMATS), or None (dlcli's own names)."""
    names = set(names)
    if "conv1.weight" in names and any(n.startswith("layer1.") for n in names):
        return "resnet"
    if "conv1.0.weight" in names and any(n.startswith("layer1.") for n in names):
        return "resnet"  # timm's deep-stem variants: detected, then refused by name in reference_layout
    if "features.0.weight" in names:
        return "vgg_timm" if any(n.startswith(("pre_logits.", "head.fc.")) for n in names) else "vgg"
    return None


@dataclass(frozen=True)
class Layout:
    """The architecture a weight file holds (or the one torchvision publishes), in dlcli's terms."""

    family: str  # resnet | vgg
    depth: int
    channels: int  # of the first convolution: 64 x width
    in_channels: int | None  # the images' channels (None: not known yet)
    norm: str = "batch"  # batch | none
    small_input: bool = False  # resnet: a 3x3 stem without max-pool
    classic_head: bool = False  # vgg: the file holds the 4096-4096 classifier layers

    def describe(self) -> str:
        width = f"width {self.channels / 64:g}"
        if self.family == "resnet":
            from dlcli.nets.resnet import RESNET_LAYOUTS

            stem = "3x3 small-input stem" if self.small_input else "7x7 ImageNet stem"
            return f"ResNet-{self.depth} ({_blocks(*RESNET_LAYOUTS[self.depth])}), {width}, {stem}, batch norm" \
                   f"{self._inputs()}"
        norm = "batch norm" if self.norm == "batch" else "no norm"
        head = ", the 4096-4096 classifier" if self.classic_head else ""
        return f"VGG-{self.depth} ({norm}), {width}{head}{self._inputs()}"

    def _inputs(self) -> str:
        return f", {self.in_channels} input channels" if self.in_channels else ""


def reference_layout(fmt: str, shapes: Shapes, source: str) -> Layout:
    """The architecture of a reference file, read from its tensor names and shapes."""
    if FAMILY[fmt] == "resnet":
        return _resnet_layout(shapes, source)
    return _vgg_layout(fmt, shapes, source)


def _resnet_layout(shapes: Shapes, source: str) -> Layout:
    from dlcli.nets.resnet import RESNET_LAYOUTS

    if "conv1.weight" not in shapes:
        raise DlcliError(f"model.pretrained: {source} is a ResNet variant with a deep stem (timm's resnet*d, "
                         f"resnet*t: conv1.0, conv1.1, ...), which dlcli's resnet does not build. Supported: "
                         f"{SUPPORTED}, as torchvision publishes them (timm's plain resnet18/34/50 too)")
    counts = []
    for stage in range(1, 5):
        blocks = {int(m.group(1)) for n in shapes if (m := re.match(rf"layer{stage}\.(\d+)\.", n))}
        counts.append(len(blocks))
    bottleneck = "layer1.0.conv3.weight" in shapes
    depth = (3 if bottleneck else 2) * sum(counts) + 2
    if RESNET_LAYOUTS.get(depth) != (tuple(counts), bottleneck):
        raise DlcliError(f"model.pretrained: {source} holds a ResNet-{depth} ({_blocks(counts, bottleneck)}), which "
                         f"dlcli's resnet does not build (depth 10, 18, 34, 50). Supported: {SUPPORTED}")
    stem = shapes["conv1.weight"]  # (64w, C, k, k)
    return Layout("resnet", depth, stem[0], stem[1], small_input=stem[-1] == 3)


def _blocks(counts: Iterable[int], bottleneck: bool) -> str:
    return f"{'bottleneck' if bottleneck else 'basic'} blocks {'-'.join(map(str, counts))}"


def _vgg_layout(fmt: str, shapes: Shapes, source: str) -> Layout:
    from dlcli.nets.vgg import VGG_STAGES

    convs = _reference_convs(shapes)
    depth = len(convs) + 3  # the convolutions plus the classifier's three linear layers
    if depth not in VGG_STAGES:
        raise DlcliError(f"model.pretrained: {source} holds a VGG with {len(convs)} convolutions, which dlcli's "
                         f"vgg does not build (11, 13, 16, 19 layers: 8, 10, 13, 16 convolutions). "
                         f"Supported: {SUPPORTED}")
    first = shapes[f"features.{convs[0]}.weight"]  # (64w, C, 3, 3)
    norm = "batch" if f"features.{convs[0] + 1}.running_mean" in shapes else "none"
    classic = ("pre_logits.fc1.weight" if fmt == "vgg_timm" else "classifier.0.weight") in shapes
    return Layout("vgg", depth, first[0], first[1], norm=norm, classic_head=classic)


def _reference_convs(shapes: Shapes) -> list[int]:
    """Indices N of the convolutions ``features.N`` (4-D weights), in order."""
    return sorted(int(m.group(1)) for n, s in shapes.items()
                  if (m := re.fullmatch(r"features\.(\d+)\.weight", n)) and len(s) == 4)


def layout_fixes(layout: Layout, model: Mapping[str, Any], in_channels: int | None) -> list[tuple[str, Any, Any]]:
    """(key, this run's value, the value the weights need) for every setting that keeps them from fitting."""
    from dlcli.nets.vgg import scale_channels

    fixes: list[tuple[str, Any, Any]] = []
    if model.get("depth") != layout.depth:
        fixes.append(("model.depth", model.get("depth"), layout.depth))
    if scale_channels(64, float(model.get("width", 1.0))) != layout.channels:
        fixes.append(("model.width", model.get("width"), layout.channels / 64))
    if layout.family == "resnet" and bool(model.get("small_input")) != layout.small_input:
        fixes.append(("model.small_input", model.get("small_input"), layout.small_input))
    if model.get("norm") != layout.norm:
        fixes.append(("model.norm", model.get("norm"), layout.norm))
    if model.get("activation", "relu") != "relu":  # the reference nets were trained with ReLU
        fixes.append(("model.activation", model.get("activation"), "relu"))
    if in_channels is not None and layout.in_channels is not None and in_channels != layout.in_channels:
        fixes.append(("data.channels", in_channels, layout.in_channels))
    return fixes


def check_fits(layout: Layout, model: Mapping[str, Any], in_channels: int | None, source: str) -> None:
    """Raise a DlcliError naming every difference and the overrides that fix them."""
    if model.get("name") != layout.family:
        raise DlcliError(f"model.pretrained: {source} holds a {layout.describe()}; model '{model.get('name')}' "
                         f"cannot take it. Use model={layout.family} {_overrides(_all_settings(layout))}")
    fixes = layout_fixes(layout, model, in_channels)
    if fixes:
        what = "; ".join(f"{key} is {show(have)}, the weights need {show(want)}" for key, have, want in fixes)
        raise DlcliError(f"model.pretrained: {source} holds a {layout.describe()}, which does not fit this "
                         f"model: {what}. Set {_overrides((k, w) for k, _, w in fixes)}")


def _all_settings(layout: Layout) -> list[tuple[str, Any]]:
    out: list[tuple[str, Any]] = [("model.depth", layout.depth), ("model.width", layout.channels / 64)]
    if layout.family == "resnet":
        out.append(("model.small_input", layout.small_input))
    else:
        out.append(("model.norm", layout.norm))
    return out


def _overrides(pairs: Iterable[tuple[str, Any]]) -> str:
    return " ".join(f"{key}={show(value)}" for key, value in pairs)


def show(value: Any) -> str:
    """A value as an override writes it: false, 1, 0.5, [224,224]."""
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, list | tuple):
        return "[" + ",".join(show(v) for v in value) + "]"
    return str(value)


@dataclass(frozen=True)
class Take:
    """Where one of dlcli's tensors comes from in the file."""

    ref: str
    as_linear: bool = False  # timm's pre_logits: a convolution over the whole 7x7 map is a linear layer
    minus: str | None = None  # VGG-BN: the convolution's bias, folded into the norm's running mean


@dataclass
class NameMap:
    takes: dict[str, Take]  # dlcli name -> its source in the file
    head: list[str]  # dlcli names of the head, re-initialised for the run's outputs
    head_refs: list[str]  # the file's head tensors (its 1000 ImageNet classes), not loaded


_RESNET_RULES = [  # (reference module, dlcli module): regular expressions over the name before the tensor suffix
    (r"layer(\d)\.(\d+)\.conv(\d)", lambda m: f"stages.{int(m[1]) - 1}.{m[2]}.residual.{3 * int(m[3]) - 3}"),
    (r"layer(\d)\.(\d+)\.bn(\d)", lambda m: f"stages.{int(m[1]) - 1}.{m[2]}.residual.{3 * int(m[3]) - 2}"),
    (r"layer(\d)\.(\d+)\.downsample\.([01])", lambda m: f"stages.{int(m[1]) - 1}.{m[2]}.shortcut.{m[3]}"),
]


def name_map(fmt: str, shapes: Shapes, own: Iterable[str], model: Mapping[str, Any]) -> NameMap:
    """The map for this model (its head kind decides where a VGG's classifier goes)."""
    own = list(own)
    if FAMILY[fmt] == "resnet":
        # the stem: ImageNet's is a Sequential(ConvNormAct, MaxPool2d), the small-input one a ConvNormAct
        stem = "stem" if model.get("small_input") else "stem.0"
        rules = [(r"conv1", lambda m: f"{stem}.0"), (r"bn1", lambda m: f"{stem}.1"), *_RESNET_RULES]
        takes = {}
        for ref in shapes:
            module, _, suffix = ref.rpartition(".")
            for pattern, target in rules:
                if m := re.fullmatch(pattern, module):
                    takes[f"{target(m)}.{suffix}"] = Take(ref)
                    break
        return NameMap(takes, [n for n in own if n.startswith("fc.")], [r for r in shapes if r.startswith("fc.")])
    return _vgg_map(fmt, shapes, own, model.get("head") == "classic")


def _vgg_map(fmt: str, shapes: Shapes, own: list[str], classic: bool) -> NameMap:
    takes: dict[str, Take] = {}
    units = sorted(int(m.group(1)) for n in own if (m := re.fullmatch(r"features\.(\d+)\.0\.weight", n)))
    for n, j in zip(_reference_convs(shapes), units, strict=False):  # the i-th convolution <-> the i-th unit
        conv, norm, unit = f"features.{n}", f"features.{n + 1}", f"features.{j}"
        takes[f"{unit}.0.weight"] = Take(f"{conv}.weight")
        if f"{unit}.0.bias" in own:  # no norm: dlcli's convolution has its bias
            takes[f"{unit}.0.bias"] = Take(f"{conv}.bias")
        if f"{norm}.running_mean" in shapes:
            for suffix in ("weight", "bias", "running_var", "num_batches_tracked"):
                takes[f"{unit}.1.{suffix}"] = Take(f"{norm}.{suffix}")
            bias = f"{conv}.bias" if f"{conv}.bias" in shapes else None
            takes[f"{unit}.1.running_mean"] = Take(f"{norm}.running_mean", minus=bias)
    if fmt == "vgg_timm":
        hidden, last = [("pre_logits.fc1", "head.2", True), ("pre_logits.fc2", "head.5", True)], "head.fc"
    else:
        hidden, last = [("classifier.0", "head.2", False), ("classifier.3", "head.5", False)], "classifier.6"
    if classic:  # head.2, head.5: the 4096-wide layers; head.8: the output layer
        for ref, unit, as_linear in hidden:
            for suffix in ("weight", "bias"):
                takes[f"{unit}.{suffix}"] = Take(f"{ref}.{suffix}", as_linear=as_linear)
        head = [n for n in own if n.startswith("head.8.")]
    else:  # gap: head.2 is the output layer; the file's hidden layers stay unused
        head = [n for n in own if n.startswith("head.2.")]
    return NameMap(takes, head, [r for r in shapes if r.startswith(f"{last}.")])
