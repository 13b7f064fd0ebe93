"""ImageNet backbones: torchvision's published weights (``model.pretrained=imagenet``) and the inputs they expect.

The one place dlcli downloads anything, and only when asked: the file goes into torch.hub's cache
(``$TORCH_HOME/hub/checkpoints``, by default ``~/.cache/torch/hub/checkpoints``), where torchvision
keeps the same files. A file already there is used as it is, without network (as torch.hub does);
a download is checked against the sha256 prefix in its published name before it is kept.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from dlcli.errors import DlcliError
from dlcli.training.weights_map import SUPPORTED, Layout, check_fits

BASE_URL = "https://download.pytorch.org/models/"
# torchvision's ImageNet-1k weights for each architecture (torchvision/models/resnet.py and vgg.py, the
# DEFAULT of each *_Weights enum). The hex part of a name is the start of the file's sha256.
IMAGENET_FILES = {
    ("resnet", 18, "batch"): "resnet18-f37072fd.pth",  # ResNet18_Weights.IMAGENET1K_V1, top-1 69.76
    ("resnet", 34, "batch"): "resnet34-b627a593.pth",  # ResNet34_Weights.IMAGENET1K_V1, 73.31
    ("resnet", 50, "batch"): "resnet50-11ad3fa6.pth",  # ResNet50_Weights.IMAGENET1K_V2, 80.86
    ("vgg", 11, "none"): "vgg11-8a719046.pth",  # VGG11_Weights.IMAGENET1K_V1, 69.02
    ("vgg", 13, "none"): "vgg13-19584684.pth",
    ("vgg", 16, "none"): "vgg16-397923af.pth",
    ("vgg", 19, "none"): "vgg19-dcbb9e9d.pth",
    ("vgg", 11, "batch"): "vgg11_bn-6002323d.pth",
    ("vgg", 13, "batch"): "vgg13_bn-abd245e5.pth",
    ("vgg", 16, "batch"): "vgg16_bn-6c64b313.pth",
    ("vgg", 19, "batch"): "vgg19_bn-c79401a0.pth",
}
# torchvision's normalisation for these weights, in 0..1 units; dlcli's image loaders give pixels in 0..255
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
IMAGENET_SIZE = 224  # the side the weights were trained and evaluated at


def imagenet_layout(model: dict[str, Any]) -> tuple[Layout, str]:
    """(the layout torchvision publishes for this model's family, depth and norm; its file name)."""
    key = (model.get("name"), model.get("depth"), model.get("norm"))
    if key[0] == "vgg" and key[2] not in ("batch", "none"):
        raise DlcliError(f"model.pretrained=imagenet: torchvision publishes VGG-{key[1]} with batch norm or none, "
                         f"not model.norm={key[2]}. Set model.norm=batch or model.norm=none")
    if key not in IMAGENET_FILES:
        depth = f" depth {key[1]}" if key[0] in ("resnet", "vgg") else ""
        raise DlcliError(f"model.pretrained=imagenet: torchvision publishes no ImageNet weights for "
                         f"model={key[0]}{depth}. They exist for {SUPPORTED}")
    return Layout(key[0], key[1], 64, 3, norm=key[2], classic_head=key[0] == "vgg"), IMAGENET_FILES[key]


def cache_dir() -> Path:
    """torch.hub's checkpoint folder: $TORCH_HOME/hub/checkpoints (default ~/.cache/torch/hub/checkpoints)."""
    import torch.hub

    return Path(torch.hub.get_dir()) / "checkpoints"


def imagenet_weights(model: dict[str, Any]) -> Path:
    """The cached file of torchvision's ImageNet weights for this model, downloaded first if it is not there.

    The model must have the published layout (width 1, the ImageNet stem, ...): checked before any download.
    """
    import http.client

    import torch.hub

    layout, name = imagenet_layout(model)
    check_fits(layout, model, None, f"torchvision's {name}")
    folder = cache_dir()
    path = folder / name
    if path.is_file():  # placed by torchvision, an earlier run, or by hand: trusted by its name, as torch.hub does
        return path
    url = BASE_URL + name
    print(f"model.pretrained=imagenet: downloading {url} to {folder}", file=sys.stderr)
    try:
        folder.mkdir(parents=True, exist_ok=True)
        # written to a temporary file, checked against the sha256 prefix in its name, then moved into place
        torch.hub.download_url_to_file(url, str(path), hash_prefix=name.rsplit("-", 1)[1].split(".")[0],
                                       progress=True)
    except (OSError, http.client.HTTPException, RuntimeError) as e:  # no network, HTTP error, a corrupt file
        reason = str(e).splitlines()[0] if str(e) else "no detail"
        raise DlcliError(
            f"model.pretrained=imagenet: cannot download {name} (torchvision's ImageNet weights) from {url} "
            f"({type(e).__name__}: {reason}). Without network, download {url} elsewhere and put the file, "
            f"named {name}, in {folder}/ (torch.hub's cache; TORCH_HOME moves it), then run again: a file "
            f"there is used without network. Or give its path: model.pretrained=/path/to/{name}") from None
    return path


def imagenet_inputs(data: dict[str, Any]) -> dict[str, Any]:
    """The data keys an ImageNet backbone needs that the config leaves open, with their values.

    ``data.channels`` and ``data.resize`` left null become 3 and 224x224; ``data.scaling: auto`` becomes
    ``channel`` with ImageNet's mean and standard deviation (those given stay) for RGB inputs. (A
    data.channels other than 3 is left for the weights' check to name.) Pixels are 0..255 in dlcli,
    so the statistics are torchvision's (0..1 units) times 255.
    """
    out: dict[str, Any] = {}
    if data.get("channels") is None:
        out["channels"] = 3
    if data.get("resize") is None:
        out["resize"] = [IMAGENET_SIZE, IMAGENET_SIZE]
    if data.get("scaling") == "auto" and data.get("channels") in (None, 3):  # RGB: ImageNet's three channels
        out["scaling"] = "channel"
        if data.get("channel_mean") is None:
            out["channel_mean"] = [round(v * 255, 4) for v in IMAGENET_MEAN]
        if data.get("channel_std") is None:
            out["channel_std"] = [round(v * 255, 4) for v in IMAGENET_STD]
    return out


def describe_inputs(ref: str, given: dict[str, Any]) -> str:
    """The run header's line about the data keys set for an ImageNet backbone."""
    from dlcli.training.weights_map import show

    if not given:
        return f"inputs: model.pretrained={ref} is an ImageNet backbone; data.channels, data.resize and " \
               "data.scaling are as you set them"
    keys = " ".join(f"data.{k}={show(v)}" for k, v in given.items())
    stats = " (ImageNet's mean/std, in 0..255 pixel units)" if "channel_mean" in given else ""
    return f"inputs: set for the ImageNet backbone of model.pretrained={ref}: {keys}{stats}; set a key " \
           "yourself to override it"
