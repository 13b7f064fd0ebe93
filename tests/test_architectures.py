"""The named CNN architectures (vgg, resnet, inception): reference sizes, shapes, shortcuts and errors.

test_registry.py already builds each with its defaults and runs forward/backward; these tests check that
the networks are the ones the papers describe, and that they accept the images users have.
"""

from __future__ import annotations

import pytest
import torch
from torch import nn

from dlcli.errors import DlcliError
from dlcli.registry import MODELS, load_components

load_components()


def build(name: str, in_shape: tuple[int, ...] = (3, 16, 16), out_features: int = 5, **params) -> nn.Module:
    return MODELS.get(name).build(params, in_shape=in_shape, out_features=out_features)


def count(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


# torchvision's counts for 1000 ImageNet classes. GoogLeNet: torchvision's 6,624,904 uses a 3x3 convolution
# in the "5x5" branch; the paper's 5x5 adds (25 - 9) * sum(5x5 reduce * 5x5) = 16 * 23,808 weights.
REFERENCE_SIZES = [
    ("resnet", {"depth": 18, "small_input": False}, 11_689_512),
    ("resnet", {"depth": 50, "small_input": False}, 25_557_032),
    ("vgg", {"depth": 16, "norm": "none", "head": "classic"}, 138_357_544),
    ("inception", {"blocks": [2, 5, 2], "stem": "imagenet"}, 6_624_904 + 16 * 23_808),
]


@pytest.mark.parametrize(("name", "params", "expected"), REFERENCE_SIZES, ids=lambda v: str(v))
def test_width_one_has_the_reference_parameter_count(name, params, expected):
    params = {"width": 1.0, "norm": "batch", **params}
    with torch.device("meta"):  # no memory and no weight init: VGG-16's 138M weights build in a blink
        model = build(name, (3, 224, 224), 1000, **params)
    assert count(model) == expected


IMAGE_SHAPES = [(1, 8, 8), (3, 32, 32), (3, 20, 28), (1, 3, 5)]  # grayscale, RGB, non-square, tiny
VARIANTS = [
    ("vgg", {}),
    ("vgg", {"head": "classic", "depth": 13, "width": 0.125}),
    ("resnet", {"depth": 10}),
    ("resnet", {"depth": 50, "small_input": False, "width": 0.125, "norm": "group"}),
    ("inception", {}),
    ("inception", {"stem": "imagenet", "factorize_5x5": True, "blocks": [1, 1, 1], "norm": "layer"}),
]


@pytest.mark.parametrize("in_shape", IMAGE_SHAPES, ids=lambda s: "x".join(map(str, s)))
@pytest.mark.parametrize(("name", "params"), VARIANTS, ids=[f"{n}-{i}" for i, (n, _) in enumerate(VARIANTS)])
def test_any_image_maps_to_logits(name, params, in_shape):
    model = build(name, in_shape, 7, **params).eval()
    with torch.no_grad():
        out = model(torch.randn(2, *in_shape))
    assert out.shape == (2, 7)
    assert torch.isfinite(out).all()


def test_vgg_depth_counts_convolutions_and_linears():
    for depth in (11, 13, 16, 19):
        model = build("vgg", depth=depth, head="classic", width=0.125)
        convs = sum(isinstance(m, nn.Conv2d) for m in model.modules())
        linears = sum(isinstance(m, nn.Linear) for m in model.modules())
        assert (convs, linears) == (depth - 3, 3)


def test_vgg_skips_pooling_a_side_already_one_pixel_long():
    model = build("vgg", (1, 8, 8))
    pools = [m for m in model.features if isinstance(m, nn.MaxPool2d)]
    assert len(pools) == 3  # 8 -> 4 -> 2 -> 1, then stages 4 and 5 keep the 1x1 map
    assert model.features(torch.randn(2, 1, 8, 8)).shape[2:] == (1, 1)
    # A non-square image is pooled only along the side that still has room: 2x16 -> 1x8 -> 1x4 -> 1x2 -> 1x1.
    wide = build("vgg", (1, 2, 16))
    assert sum(isinstance(m, nn.MaxPool2d) for m in wide.features) == 4
    assert wide.features(torch.randn(2, 1, 2, 16)).shape[2:] == (1, 1)


def test_width_scales_channels_in_multiples_of_eight():
    model = build("resnet", width=0.5)
    assert model.fc.in_features == 256  # 512 * 0.5
    assert build("resnet", width=0.01).fc.in_features == 8  # never below 8, so group norm's 8 groups fit


def _first_blocks(model):
    """The first block of stage 1 (identity shortcut) and of stage 2 (projection shortcut, stride 2)."""
    return model.stages[0][0], model.stages[1][0]


@pytest.mark.parametrize("norm", ["batch", "none"])
def test_zero_init_residual_block_passes_its_shortcut_through(norm):
    # With the residual branch zeroed, a block is act(x + 0): if the shortcut were missing it would give act(0) = 0.
    model = build("resnet", depth=18, norm=norm, zero_init_residual=True)
    identity_block, projection_block = _first_blocks(model)
    x = torch.randn(2, identity_block.out_channels, 6, 6)
    assert isinstance(identity_block.shortcut, nn.Identity)
    assert torch.allclose(identity_block(x), torch.relu(x))
    assert torch.allclose(projection_block(x), torch.relu(projection_block.shortcut(x)))
    assert projection_block(x).shape == (2, projection_block.out_channels, 3, 3)  # stride 2 on both paths


def test_residual_block_adds_branch_and_shortcut():
    model = build("resnet", depth=10, norm="none")  # no norm: the block is deterministic per sample
    block, _ = _first_blocks(model)
    x = torch.randn(2, block.out_channels, 5, 5)
    assert torch.allclose(block(x), torch.relu(block.residual(x) + x))
    assert not torch.allclose(block(x), torch.relu(block.residual(x)))  # the input really is added


def test_resnet_50_uses_bottlenecks_four_times_wider():
    model = build("resnet", depth=50, width=0.125)
    assert model.fc.in_features == 64 * 4  # 512 * 0.125 planes, times the bottleneck's expansion
    assert sum(len(stage) for stage in model.stages) == 3 + 4 + 6 + 3


def test_small_input_stem_keeps_the_image_size():
    x = torch.randn(2, 3, 16, 16)
    assert build("resnet", small_input=True).stem(x).shape[2:] == (16, 16)
    assert build("resnet", small_input=False).stem(x).shape[2:] == (4, 4)  # 7x7 stride 2, then max-pool stride 2


def test_inception_module_concatenates_four_branches():
    from dlcli.nets.inception import InceptionModule

    module = InceptionModule(16, 8, 8, 16, 8, 8, 8, norm="batch", activation="relu")
    out = module(torch.randn(2, 16, 7, 9))
    assert out.shape == (2, 8 + 16 + 8 + 8, 7, 9)  # channels summed, size kept by every branch
    factorized = InceptionModule(16, 8, 8, 16, 8, 8, 8, norm="batch", activation="relu", factorize_5x5=True)
    assert count(factorized) < count(module)  # two 3x3 (2 * 9 weights) instead of one 5x5 (25)


def test_inception_blocks_set_modules_per_stage():
    from dlcli.nets.inception import InceptionModule

    model = build("inception", blocks=[1, 3, 2])
    assert sum(isinstance(m, InceptionModule) for m in model.modules()) == 6
    assert sum(isinstance(m, nn.MaxPool2d) for m in model.stages) == 2  # one between each pair of stages


@pytest.mark.parametrize("name", ["vgg", "resnet", "inception"])
def test_non_image_input_is_a_clear_error(name):
    with pytest.raises(DlcliError, match=rf"model '{name}' needs images \(C, H, W\).*\(13,\)"):
        build(name, (13,))


@pytest.mark.parametrize(("name", "params", "message"), [
    ("resnet", {"width": 0.0}, "width must be > 0"),
    ("vgg", {"dropout": 1.0}, r"dropout must be in \[0, 1\)"),
    ("inception", {"blocks": []}, "modules per stage"),
])
def test_bad_parameters_are_clear_errors(name, params, message):
    with pytest.raises(DlcliError, match=message):
        build(name, **params)


def test_resnet_learns_a_small_batch():
    # A behaviour check beyond shapes: gradients flow through the whole net and it can fit 16 digits-sized images.
    torch.manual_seed(0)
    model = build("resnet", (1, 8, 8), 4, depth=10, width=0.125)
    x, y = torch.randn(16, 1, 8, 8), torch.arange(16) % 4
    opt = torch.optim.Adam(model.parameters(), lr=0.01)
    for _ in range(40):
        opt.zero_grad()
        nn.functional.cross_entropy(model(x), y).backward()
        opt.step()
    model.eval()
    with torch.no_grad():
        assert (model(x).argmax(1) == y).float().mean() == 1.0
