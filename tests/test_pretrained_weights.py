"""ImageNet backbones: torchvision/timm weight files and `model.pretrained=imagenet` into dlcli's ResNet and VGG.

No test downloads anything. The reference files are generated here, from the reference architectures'
parameter names and shapes (written out below, independently of dlcli's name map), with random values;
a forward pass computed by hand from the same tensors (torch.nn.functional, the reference nets' order of
operations) must equal dlcli's, so every tensor has landed where the map says.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from dlcli.errors import DlcliError
from dlcli.training.build import build_model, load_data

RESNET = {18: ((2, 2, 2, 2), False), 34: ((3, 4, 6, 3), False), 50: ((3, 4, 6, 3), True)}
VGG = {11: [64, "M", 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"],
       16: [64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M"]}
RESNET_ARGS = ["model=resnet", "model.width=1", "model.small_input=false"]
VGG_ARGS = ["model=vgg", "model.width=1"]


# -- the reference architectures' parameter names and shapes (torchvision's resnet.py / vgg.py, timm's vgg.py) --

def _bn(shapes: dict, prefix: str, channels: int) -> None:
    for suffix in ("weight", "bias", "running_mean", "running_var"):
        shapes[f"{prefix}.{suffix}"] = (channels,)
    shapes[f"{prefix}.num_batches_tracked"] = ()


def torchvision_resnet(depth: int) -> dict[str, tuple]:
    blocks, bottleneck = RESNET[depth]
    shapes: dict[str, tuple] = {"conv1.weight": (64, 3, 7, 7)}
    _bn(shapes, "bn1", 64)
    inplanes = 64
    for stage, (count, planes) in enumerate(zip(blocks, (64, 128, 256, 512), strict=True), 1):
        out = planes * (4 if bottleneck else 1)
        for b in range(count):
            p = f"layer{stage}.{b}"
            convs = [(planes, inplanes, 1), (planes, planes, 3), (out, planes, 1)] if bottleneck \
                else [(planes, inplanes, 3), (planes, planes, 3)]
            for k, (o, i, size) in enumerate(convs, 1):
                shapes[f"{p}.conv{k}.weight"] = (o, i, size, size)
                _bn(shapes, f"{p}.bn{k}", o)
            if b == 0 and (stage > 1 or inplanes != out):
                shapes[f"{p}.downsample.0.weight"] = (out, inplanes, 1, 1)
                _bn(shapes, f"{p}.downsample.1", out)
            inplanes = out
    shapes["fc.weight"], shapes["fc.bias"] = (1000, inplanes), (1000,)
    return shapes


def torchvision_vgg(depth: int, batch_norm: bool, classifier: bool = True, timm: bool = False) -> dict[str, tuple]:
    shapes: dict[str, tuple] = {}
    n, channels = 0, 3
    for v in VGG[depth]:
        if v == "M":
            n += 1
            continue
        shapes[f"features.{n}.weight"], shapes[f"features.{n}.bias"] = (v, channels, 3, 3), (v,)
        if batch_norm:
            _bn(shapes, f"features.{n + 1}", v)
        n += 3 if batch_norm else 2
        channels = v
    if classifier and timm:  # timm: the first two linear layers as convolutions, the last one head.fc
        shapes.update({"pre_logits.fc1.weight": (4096, 512, 7, 7), "pre_logits.fc1.bias": (4096,),
                       "pre_logits.fc2.weight": (4096, 4096, 1, 1), "pre_logits.fc2.bias": (4096,),
                       "head.fc.weight": (1000, 4096), "head.fc.bias": (1000,)})
    elif classifier:
        shapes.update({"classifier.0.weight": (4096, 512 * 7 * 7), "classifier.0.bias": (4096,),
                       "classifier.3.weight": (4096, 4096), "classifier.3.bias": (4096,),
                       "classifier.6.weight": (1000, 4096), "classifier.6.bias": (1000,)})
    return shapes


def random_weights(shapes: dict[str, tuple], seed: int = 0) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    out = {}
    for name, shape in shapes.items():
        if name.endswith("num_batches_tracked"):
            out[name] = torch.tensor(1000)
        elif name.endswith("running_var"):
            out[name] = torch.rand(shape, generator=g) + 0.5
        elif len(shape) > 1:  # He-scaled, so activations keep their size through the layers
            fan_in = int(np.prod(shape[1:]))
            out[name] = torch.randn(shape, generator=g) * (2 / fan_in) ** 0.5
        else:
            out[name] = torch.randn(shape, generator=g) * 0.2
    return out


def save(weights: dict[str, torch.Tensor], path) -> None:
    if str(path).endswith(".safetensors"):
        from safetensors.torch import save_file

        save_file(weights, str(path))
    else:
        torch.save(weights, path)


# -- the reference forward passes, by hand --

def _norm(w: dict, x: torch.Tensor, p: str) -> torch.Tensor:
    return F.batch_norm(x, w[f"{p}.running_mean"], w[f"{p}.running_var"], w[f"{p}.weight"], w[f"{p}.bias"],
                        training=False, eps=1e-5)


def resnet_features(w: dict, x: torch.Tensor, depth: int) -> torch.Tensor:
    blocks, bottleneck = RESNET[depth]
    x = F.max_pool2d(F.relu(_norm(w, F.conv2d(x, w["conv1.weight"], stride=2, padding=3), "bn1")), 3, 2, 1)
    for stage, count in enumerate(blocks, 1):
        for b in range(count):
            p, stride = f"layer{stage}.{b}", 2 if stage > 1 and b == 0 else 1
            if bottleneck:
                out = F.relu(_norm(w, F.conv2d(x, w[f"{p}.conv1.weight"]), f"{p}.bn1"))
                out = F.relu(_norm(w, F.conv2d(out, w[f"{p}.conv2.weight"], stride=stride, padding=1), f"{p}.bn2"))
                out = _norm(w, F.conv2d(out, w[f"{p}.conv3.weight"]), f"{p}.bn3")
            else:
                out = F.relu(_norm(w, F.conv2d(x, w[f"{p}.conv1.weight"], stride=stride, padding=1), f"{p}.bn1"))
                out = _norm(w, F.conv2d(out, w[f"{p}.conv2.weight"], padding=1), f"{p}.bn2")
            if f"{p}.downsample.0.weight" in w:
                x = _norm(w, F.conv2d(x, w[f"{p}.downsample.0.weight"], stride=stride), f"{p}.downsample.1")
            x = F.relu(out + x)
    return x.mean((2, 3))  # (B, C)


def vgg_features(w: dict, x: torch.Tensor, depth: int, batch_norm: bool, classic: bool) -> torch.Tensor:
    n = 0
    for v in VGG[depth]:
        if v == "M":
            x, n = F.max_pool2d(x, 2, 2), n + 1
            continue
        x = F.conv2d(x, w[f"features.{n}.weight"], w[f"features.{n}.bias"], padding=1)
        if batch_norm:
            x = _norm(w, x, f"features.{n + 1}")
        x, n = F.relu(x), n + (3 if batch_norm else 2)
    if not classic:
        return x.mean((2, 3))
    x = F.adaptive_avg_pool2d(x, (7, 7)).flatten(1)  # (B, 512*49)
    fc1, fc2 = (w["classifier.0.weight"], w["classifier.3.weight"]) if "classifier.0.weight" in w else \
        (w["pre_logits.fc1.weight"].flatten(1), w["pre_logits.fc2.weight"].flatten(1))
    b1, b2 = (w["classifier.0.bias"], w["classifier.3.bias"]) if "classifier.0.bias" in w else \
        (w["pre_logits.fc1.bias"], w["pre_logits.fc2.bias"])
    return F.relu(F.linear(F.relu(F.linear(x, fc1, b1)), fc2, b2))


@pytest.fixture
def rgb_npz(tmp_path):
    """30 random 3x32x32 RGB images (pixels 0..255), 3 classes."""
    rng = np.random.default_rng(0)
    path = tmp_path / "rgb.npz"
    np.savez(path, x=rng.integers(0, 256, (30, 3, 32, 32)).astype(np.float32), y=np.repeat([0, 1, 2], 10))
    return path


def built(make_config, rgb_npz, *overrides):
    cfg = make_config("data=npz", f"data.path={rgb_npz}", "data.resize=32", *overrides).config
    prepared = load_data(cfg)
    return cfg, prepared, build_model(cfg, prepared).eval()


@pytest.mark.parametrize(("depth", "suffix"), [(18, ".pth"), (18, ".safetensors"), (50, ".pth")])
def test_a_torchvision_resnet_file_lands_where_the_map_says(make_config, rgb_npz, tmp_path, depth, suffix):
    weights = random_weights(torchvision_resnet(depth))
    path = tmp_path / f"resnet{depth}{suffix}"
    save(weights, path)
    cfg, prepared, model = built(make_config, rgb_npz, *RESNET_ARGS, f"model.depth={depth}",
                                 f"model.pretrained={path}")
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        want = F.linear(resnet_features(weights, x, depth), model.fc.weight, model.fc.bias)
        torch.testing.assert_close(model(x), want, rtol=1e-4, atol=1e-4)
    report = model.dlcli_pretrained
    n_backbone = len(weights) - 2
    assert report.format == "resnet" and len(report.loaded) == n_backbone and not report.new and not report.unused
    assert report.skipped == ["fc.weight", "fc.bias"] and model.fc.weight.shape == (3, 512 * (4 if depth == 50 else 1))
    assert not torch.equal(model.fc.weight, weights["fc.weight"][:3])  # the head starts fresh
    assert f"{n_backbone} tensors loaded" in report.describe() and "torchvision/timm ResNet" in report.describe()
    # an ImageNet backbone sets the inputs it expects, unless the config sets them: data.resize=32 stays
    assert cfg["data"]["channels"] == 3 and cfg["data"]["resize"] == 32 and cfg["data"]["scaling"] == "channel"
    assert prepared.preprocessing["scaling"]["mean"] == pytest.approx([123.675, 116.28, 103.53])
    assert prepared.preprocessing["scaling"]["std"] == pytest.approx([58.395, 57.12, 57.375])
    assert prepared.preprocessing["backbone_inputs"] == {
        "channels": 3, "scaling": "channel", "channel_mean": [123.675, 116.28, 103.53],
        "channel_std": [58.395, 57.12, 57.375]}


@pytest.mark.slow
@pytest.mark.parametrize(("depth", "batch_norm", "suffix"), [(16, True, ".pth"), (11, False, ".safetensors")])
def test_a_torchvision_vgg_file_features_land_where_the_map_says(make_config, rgb_npz, tmp_path, depth, batch_norm,
                                                                  suffix):
    """model.head=gap: the convolutions (and VGG-BN's conv biases, folded into the norms) load; the file's
    4096-wide classifier layers stay unused, and the report says so."""
    weights = random_weights(torchvision_vgg(depth, batch_norm))
    path = tmp_path / f"vgg{depth}{suffix}"
    save(weights, path)
    _, _, model = built(make_config, rgb_npz, *VGG_ARGS, f"model.depth={depth}", "model.head=gap",
                        f"model.norm={'batch' if batch_norm else 'none'}", f"model.pretrained={path}")
    x = torch.randn(2, 3, 32, 32) * 50
    with torch.no_grad():
        want = F.linear(vgg_features(weights, x, depth, batch_norm, classic=False), model.head[2].weight,
                        model.head[2].bias)
        torch.testing.assert_close(model(x), want, rtol=1e-4, atol=1e-4)
    report = model.dlcli_pretrained
    assert report.skipped == ["head.2.weight", "head.2.bias"] and model.head[2].weight.shape == (3, 512)
    assert sorted(report.unused) == [f"classifier.{i}.{p}" for i in (0, 3) for p in ("bias", "weight")]


@pytest.mark.slow
@pytest.mark.parametrize("timm", [False, True], ids=["torchvision", "timm"])
def test_a_vgg16_bn_file_with_its_classifier_loads_whole(make_config, rgb_npz, tmp_path, timm):
    """The reference VGG-16-BN (138M weights, model.head=classic): the 4096-4096 classifier loads too;
    timm's convolution-shaped pre_logits become linear layers."""
    weights = random_weights(torchvision_vgg(16, True, timm=timm))
    path = tmp_path / "vgg16_bn.safetensors"
    save(weights, path)
    _, _, model = built(make_config, rgb_npz, *VGG_ARGS, "model.depth=16", "model.norm=batch", "model.head=classic",
                        f"model.pretrained={path}")
    x = torch.randn(2, 3, 32, 32) * 50
    with torch.no_grad():
        want = F.linear(vgg_features(weights, x, 16, True, classic=True), model.head[8].weight, model.head[8].bias)
        torch.testing.assert_close(model(x), want, rtol=1e-4, atol=1e-4)
    report = model.dlcli_pretrained
    assert report.format == ("vgg_timm" if timm else "vgg") and not report.unused and not report.new
    assert report.skipped == ["head.8.weight", "head.8.bias"] and model.head[8].weight.shape == (3, 4096)


def test_vgg16_bn_names_and_shapes_all_map(tmp_path):
    """Every tensor of the reference VGG-16-BN, classifier included, has its place in model.head=classic."""
    from dlcli.models.vgg import vgg
    from dlcli.training.weights_map import name_map

    shapes = torchvision_vgg(16, True)
    with torch.device("meta"):  # shapes only: no 138M weights in memory
        own = {k: tuple(v.shape) for k, v in vgg((3, 224, 224), 5, depth=16, width=1.0, norm="batch",
                                                   head="classic").state_dict().items()}
    mapped = name_map("vgg", shapes, own, {"head": "classic"})
    assert set(mapped.takes) | set(mapped.head) == set(own)
    for name, take in mapped.takes.items():
        shape = shapes[take.ref]
        assert (int(np.prod(shape)),) == (int(np.prod(own[name])),), name
    used = {t.ref for t in mapped.takes.values()} | {t.minus for t in mapped.takes.values() if t.minus}
    assert used | set(mapped.head_refs) == set(shapes)  # every conv bias too: folded into its norm


@pytest.mark.parametrize(("file_depth", "overrides", "message"), [
    (50, ["model=resnet", "model.depth=18"],
     "model.depth is 18, the weights need 50; model.width is 0.25, the weights need 1; model.small_input is "
     "true, the weights need false. Set model.depth=50 model.width=1 model.small_input=false"),
    (18, ["model=vgg", "model.width=1"], "model 'vgg' cannot take it. Use model=resnet model.depth=18 model.width=1 "
                                         "model.small_input=false"),
    (18, [*RESNET_ARGS, "model.depth=18", "model.activation=gelu"],
     "model.activation is gelu, the weights need relu. Set model.activation=relu"),
    (18, [*RESNET_ARGS, "model.depth=18", "data.channels=1"], "data.channels is 1, the weights need 3. Set "
                                                              "data.channels=3"),
])
def test_weights_that_do_not_fit_name_the_difference_and_the_fix(make_config, rgb_npz, tmp_path, file_depth,
                                                                 overrides, message):
    path = tmp_path / "resnet.pth"
    save(random_weights(torchvision_resnet(file_depth)), path)
    with pytest.raises(DlcliError) as e:
        built(make_config, rgb_npz, *overrides, f"model.pretrained={path}")
    assert message in str(e.value)


def test_a_vgg_file_and_a_norm_mismatch(make_config, rgb_npz, tmp_path):
    path = tmp_path / "vgg11_bn.pth"
    save(random_weights(torchvision_vgg(11, True, classifier=False)), path)
    with pytest.raises(DlcliError, match=r"holds a VGG-11 \(batch norm\), width 1, 3 input channels, which does not "
                                         r"fit this model: model.norm is none.* Set model.norm=batch"):
        built(make_config, rgb_npz, *VGG_ARGS, "model.depth=11", "model.norm=none", "model.head=gap",
              f"model.pretrained={path}")


def test_unsupported_reference_variants_are_named(make_config, rgb_npz, tmp_path):
    shapes = torchvision_resnet(50)
    shapes = {k.replace("layer3.", "layerX.") if k.startswith("layer3.") else k: v for k, v in shapes.items()}
    path = tmp_path / "odd.pth"
    save(random_weights(shapes), path)  # its third stage is gone: 3-4-0-3 blocks
    with pytest.raises(DlcliError, match=r"holds a ResNet-32 \(bottleneck blocks 3-4-0-3\), which dlcli's resnet "
                                         r"does not build .* Supported: model=resnet \(depth 18, 34, 50\)"):
        built(make_config, rgb_npz, *RESNET_ARGS, f"model.pretrained={path}")


class Payload:
    def __reduce__(self):
        import os

        return (os.system, ("touch pwned",))


def test_a_pt_file_carrying_code_is_refused_and_never_runs(make_config, rgb_npz, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    evil = tmp_path / "resnet18.pt"
    torch.save({**random_weights(torchvision_resnet(18)), "extra": Payload()}, evil)
    with pytest.raises(DlcliError, match=r"resnet18.pt was refused: it holds more than tensors and plain data "
                                         r"\(unsupported GLOBAL posix.system\)"):
        built(make_config, rgb_npz, *RESNET_ARGS, f"model.pretrained={evil}")
    assert not (tmp_path / "pwned").exists()


@pytest.fixture
def offline(tmp_path, monkeypatch):
    """torch.hub's cache under tmp_path, and every HTTPS request sent to a closed local port: a download
    fails at once, and a test that used the network would fail."""
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    for var in ("https_proxy", "HTTPS_PROXY", "http_proxy", "HTTP_PROXY"):
        monkeypatch.setenv(var, "http://127.0.0.1:9")
    for var in ("no_proxy", "NO_PROXY"):
        monkeypatch.delenv(var, raising=False)
    return tmp_path / "torch" / "hub" / "checkpoints"


def test_imagenet_offline_names_the_file_the_url_and_the_folder(rgb_npz, tmp_path, offline, monkeypatch):
    from typer.testing import CliRunner

    from dlcli.cli import app

    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(app, ["train", "data=npz", f"data.path={rgb_npz}", *RESNET_ARGS, "model.depth=18",
                                      "model.pretrained=imagenet", "output_dir=out", "threads=1"])
    assert result.exit_code == 2, result.output
    message = " ".join(result.stderr.split())  # rich wraps long lines
    assert "cannot download resnet18-f37072fd.pth" in message
    assert "https://download.pytorch.org/models/resnet18-f37072fd.pth" in message
    assert f"{offline}/" in message and "Traceback" not in result.output
    assert not list(offline.glob("*")) and not list(tmp_path.glob("out/*"))  # nothing half-written, no run folder


def test_imagenet_checks_the_layout_before_any_download(make_config, rgb_npz, offline):
    with pytest.raises(DlcliError, match=r"torchvision's resnet18-f37072fd.pth holds a ResNet-18 .* Set model.width=1 "
                                         r"model.small_input=false"):
        built(make_config, rgb_npz, "model=resnet", "model.depth=18", "model.pretrained=imagenet")
    with pytest.raises(DlcliError, match=r"no ImageNet weights for model=resnet depth 10. They exist for "
                                         r"model=resnet \(depth 18, 34, 50\)"):
        built(make_config, rgb_npz, *RESNET_ARGS, "model.depth=10", "model.pretrained=imagenet")
    with pytest.raises(DlcliError, match="publishes VGG-11 with batch norm or none, not model.norm=group"):
        built(make_config, rgb_npz, *VGG_ARGS, "model.norm=group", "model.pretrained=imagenet")
    assert not offline.exists()


def test_imagenet_uses_a_file_already_in_the_cache_without_network(make_config, rgb_npz, offline):
    weights = random_weights(torchvision_resnet(18), seed=3)
    offline.mkdir(parents=True)
    torch.save(weights, offline / "resnet18-f37072fd.pth")  # placed by hand: trusted by its name, as torch.hub does
    cfg, _, model = built(make_config, rgb_npz, *RESNET_ARGS, "model.depth=18", "model.pretrained=imagenet",
                          "data.scaling=minmax")
    report = model.dlcli_pretrained
    assert report.source == str(offline / "resnet18-f37072fd.pth") and len(report.loaded) == 120
    assert torch.equal(model.stem[0][0].weight, weights["conv1.weight"])
    assert cfg["data"]["scaling"] == "minmax" and cfg["data"]["channel_mean"] is None  # set by the user: kept


def test_a_missing_weight_file_is_named(make_config, rgb_npz, tmp_path):
    with pytest.raises(DlcliError, match=r"model.pretrained: no such file: .*nothere.safetensors"):
        built(make_config, rgb_npz, *RESNET_ARGS, f"model.pretrained={tmp_path / 'nothere.safetensors'}")


@pytest.mark.slow
def test_the_transfer_preset_runs_end_to_end_on_an_image_folder(tmp_path, monkeypatch):
    """experiment=transfer_image_folder with a generated ResNet-18 file, 16x16 images resized to 64x64,
    one epoch per stage: the run records the ImageNet inputs and what loaded, and trains the head first."""
    import subprocess
    import sys

    from PIL import Image

    rng = np.random.default_rng(0)
    for cls, tint in (("cats", (200, 60, 60)), ("dogs", (60, 60, 200))):
        (tmp_path / "images" / cls).mkdir(parents=True)
        for i in range(12):
            pixels = np.clip(rng.normal(tint, 40, (16, 16, 3)), 0, 255).astype(np.uint8)
            Image.fromarray(pixels).save(tmp_path / "images" / cls / f"{i}.png")
    weights_file = tmp_path / "resnet18.pth"
    torch.save(random_weights(torchvision_resnet(18)), weights_file)
    out = tmp_path / "out"
    cmd = [sys.executable, "-m", "dlcli", "train", "experiment=transfer_image_folder",
           f"data.root={tmp_path / 'images'}", f"model.pretrained={weights_file}",
           "data.resize=64", "data.size=[16,16]", f"output_dir={out}", "threads=1",
           "trainer.enable_progress_bar=false",
           "finetune.stages=[{epochs:1,train:[fc.*],lr:0.001},{epochs:1,lr_multiplier:0.1}]"]
    result = subprocess.run(cmd, capture_output=True, text=True, cwd=tmp_path, timeout=600)
    assert result.returncode == 0, result.stderr
    header = " ".join(result.stderr.split())
    assert "pretrained: 120 tensors loaded from" in header and "(torchvision/timm ResNet)" in header
    assert "inputs: set for the ImageNet backbone of model.pretrained=" in header
    (run_dir,) = out.iterdir()
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["status"] == "completed" and summary["epochs"] == 2
    assert summary["pretrained"]["format"] == "resnet" and summary["pretrained"]["skipped"] == ["fc.weight", "fc.bias"]
    config = json.loads((run_dir / "config.json").read_text())
    assert config["data"]["resize"] == 64 and config["data"]["channels"] == 3
    assert config["data"]["scaling"] == "channel" and config["data"]["channel_std"] == [58.395, 57.12, 57.375]
    pre = json.loads((run_dir / "preprocessing.json").read_text())
    assert pre["input_shape"] == [3, 64, 64]
