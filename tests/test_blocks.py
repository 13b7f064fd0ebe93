"""Building blocks, sequential and graph models, the cnn, and `dlcli model summary`."""

from __future__ import annotations

import pytest
import torch
from torch import nn
from typer.testing import CliRunner

from dlcli.blocks import ACTIVATIONS, Maxout, initialize, make_activation, make_norm
from dlcli.cli import app
from dlcli.config.compose import compose
from dlcli.config.validate import ConfigError
from dlcli.errors import DlcliError
from dlcli.registry import MODELS, load_components
from dlcli.training.build import build_model, load_data

load_components()


def build(name, in_shape=(1, 8, 8), out=10, task="multiclass", **params):
    return MODELS.get(name).build(params, in_shape=in_shape, out_features=out, task=task)


@pytest.mark.parametrize("name", ACTIVATIONS)
def test_every_activation_builds_and_keeps_shape_except_maxout(name):
    x = torch.randn(3, 8)
    y = make_activation(name)(x)
    assert y.shape == ((3, 4) if name == "maxout" else (3, 8))


def test_activation_values():
    x = torch.tensor([[-2.0, 0.0, 3.0, 1.0]])
    assert make_activation("leaky_relu", slope=0.1)(x)[0].tolist() == pytest.approx([-0.2, 0.0, 3.0, 1.0])
    assert Maxout(2)(x).tolist() == [[0.0, 3.0]]  # max of (-2, 0) and of (3, 1)
    assert torch.allclose(make_activation("softmax")(x).sum(1), torch.tensor([1.0]))


def test_norms():
    assert isinstance(make_norm("batch", 16, dims=2), nn.BatchNorm2d)
    assert isinstance(make_norm("layer", 16, dims=0), nn.LayerNorm)
    assert isinstance(make_norm("instance", 16, dims=2), nn.InstanceNorm2d)
    assert make_norm("group", 16, dims=2, groups=4).num_groups == 4
    with pytest.raises(DlcliError, match="divisible by 5"):
        make_norm("group", 16, dims=2, groups=5)


@pytest.mark.parametrize("scheme", ["xavier_uniform", "xavier_normal", "kaiming_uniform", "kaiming_normal",
                                    "orthogonal", "normal"])
def test_init_schemes_reinitialise_weights_and_zero_biases(scheme):
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(64, 64), nn.Conv2d(3, 8, 3))
    before = model[0].weight.detach().clone()
    initialize(model, scheme)
    assert not torch.equal(before, model[0].weight)
    assert torch.count_nonzero(model[0].bias) == 0 and torch.count_nonzero(model[1].bias) == 0
    if scheme == "orthogonal":
        w = model[0].weight.detach()
        assert torch.allclose(w @ w.T, torch.eye(64), atol=1e-4)
    if scheme == "normal":
        assert abs(model[0].weight.std().item() - 0.02) < 0.005


def test_keras_example_in_yaml():
    cfg = compose(["experiment=digits_sequential"]).config
    assert cfg["model"]["layers"][-1] == {"dense": {"units": 10, "activation": "softmax"}}
    model = build_model(cfg, load_data(cfg))
    # Flatten, Dense 128 + ReLU, Dropout 0.2, Dense 10 (its softmax folded into the loss)
    assert sum(p.numel() for p in model.parameters()) == 64 * 128 + 128 + 128 * 10 + 10
    assert not any(isinstance(m, nn.Softmax) for m in model.modules())
    assert model(torch.zeros(2, 1, 8, 8)).shape == (2, 10)


def test_softmax_is_kept_when_the_task_does_not_take_logits():
    model = build("sequential", in_shape=(4,), out=4, task="regression",
                  layers=[{"dense": {"units": 4, "activation": "softmax"}}])
    assert any(isinstance(m, nn.Softmax) for m in model.modules())


def test_sequential_errors_name_the_layer():
    with pytest.raises(DlcliError, match=r"model.layers\[1\]: unknown layer 'dens'. Did you mean 'dense'\?"):
        build("sequential", layers=["flatten", {"dens": {"units": 3}}])
    with pytest.raises(ConfigError, match=r"model.layers\[1\].unitz: unknown key for layer 'dense'"):
        build("sequential", layers=["flatten", {"dense": {"unitz": 3}}])
    with pytest.raises(DlcliError, match=r"outputs shape \(7,\), the task needs \(10,\)"):
        build("sequential", layers=["flatten", {"dense": {"units": 7}}])
    with pytest.raises(DlcliError, match=r"layer 'conv2d' needs an image"):
        build("sequential", in_shape=(5,), layers=[{"conv2d": {"filters": 4}}, "flatten", "dense"])


def test_graph_residual_block_adds_the_shortcut():
    cfg = compose(["experiment=digits_graph_residual"]).config
    model = build_model(cfg, load_data(cfg))
    assert model.merges["residual"] == ("add", ["stem", "conv2"])
    x = torch.randn(2, 1, 8, 8)
    model.eval()
    stem = model.layers["stem"](x)
    conv2 = model.layers["conv2"](model.layers["conv1"](stem))
    expected = model.layers["logits"](model.layers["pool"](torch.relu(stem + conv2)))
    assert torch.allclose(model(x), expected, atol=1e-6)


def test_graph_inception_module_concatenates_branches():
    cfg = compose(["experiment=digits_graph_inception"]).config
    model = build_model(cfg, load_data(cfg))
    assert model.merges["mixed"][0] == "concatenate"
    assert model.layers["logits"].in_features == 8 + 16 + 8 + 8  # the four branches' channels
    assert model(torch.zeros(2, 1, 8, 8)).shape == (2, 10)


def test_graph_errors():
    with pytest.raises(DlcliError, match="input 'b' is not an earlier node"):
        build("graph", nodes={"a": {"layer": "flatten", "input": "b"}, "b": {"layer": "flatten"}})
    with pytest.raises(DlcliError, match="unknown merge 'sum'"):
        build("graph", nodes={"a": {"layer": "flatten"}, "m": {"merge": "sum", "inputs": ["a", "a"]}})
    with pytest.raises(DlcliError, match=r"add needs inputs of one shape"):
        build("graph", nodes={"a": {"layer": "flatten"}, "b": {"layer": "dense", "input": "a", "units": 3},
                              "m": {"merge": "add", "inputs": ["a", "b"]}})


@pytest.mark.parametrize("in_shape", [(1, 8, 8), (3, 32, 32), (3, 20, 28)])
def test_cnn_takes_grayscale_and_rgb_of_any_size(in_shape):
    model = build("cnn", in_shape=in_shape, channels=[8, 16, 32])
    assert model(torch.zeros(2, *in_shape)).shape == (2, 10)


def test_cnn_flatten_head_and_too_small_images():
    model = build("cnn", channels=[8], head="flatten", hidden=[16])
    assert model(torch.zeros(2, 1, 8, 8)).shape == (2, 10)
    with pytest.raises(DlcliError, match="too small"):
        build("cnn", in_shape=(1, 4, 4), channels=[8, 8, 8, 8], padding="valid", pool="none")


def dense_inputs(model: nn.Sequential) -> int:
    return next(m for m in model if isinstance(m, nn.Linear)).in_features


@pytest.mark.parametrize(("in_shape", "features", "pooled_to"), [
    ((1, 8, 8), 64 * 2 * 2, None),  # digits: (64, 2, 2) flattened
    ((1, 28, 28), 64 * 7 * 7, None),  # MNIST: (64, 7, 7) = 3,136 features, flattened
    ((3, 32, 32), 64 * 8 * 8, None),  # CIFAR-sized: exactly the 4,096 bound, flattened
    ((3, 224, 224), 64 * 8 * 8, (8, 8)),  # (64, 56, 56) would be 200,704 features: pooled to 8x8 first
    ((3, 128, 64), 64 * 12 * 5, (12, 5)),  # (64, 32, 16): a grid of about its shape that fills the bound
])
def test_cnn_auto_head_flattens_small_maps_and_pools_big_ones_to_the_bound(in_shape, features, pooled_to):
    model = build("cnn", in_shape=in_shape)  # the defaults: channels [32, 64], head auto, head_features 4096
    assert dense_inputs(model) == features <= 4096
    pools = [m for m in model if isinstance(m, nn.AdaptiveAvgPool2d)]
    assert [tuple(p.output_size) for p in pools] == ([pooled_to] if pooled_to else [])
    assert model(torch.rand(2, *in_shape)).shape == (2, 10)


def test_cnn_heads_by_name():
    big = (3, 224, 224)
    assert dense_inputs(build("cnn", in_shape=big, head="flatten")) == 64 * 56 * 56  # asked for: every position
    assert dense_inputs(build("cnn", in_shape=big, head="gap")) == 64
    assert dense_inputs(build("cnn", in_shape=big, head_features=64 * 4)) == 64 * 2 * 2
    assert dense_inputs(build("cnn", in_shape=big, channels=[32, 128], head_features=100)) == 128  # 1x1: gap
    with pytest.raises(DlcliError, match="head_features must be at least 1"):
        build("cnn", head_features=0)


def test_cnn_auto_head_grid_stays_within_the_bound_and_the_map():
    from dlcli.models.cnn import head_grid

    for c, h, w, bound in [(64, 56, 56, 4096), (64, 13, 111, 4096), (3, 112, 7, 100), (100, 8, 8, 1024),
                           (64, 7, 7, 1024), (16, 1, 56, 64)]:
        gh, gw = head_grid((c, h, w), bound)
        assert 1 <= gh <= h and 1 <= gw <= w and (c * gh * gw <= bound or gh == gw == 1), (c, h, w, bound)
        assert c * (gh + 1) * gw > bound or gh == h  # no room left: one more row would not fit (or none is left)
        assert c * gh * (gw + 1) > bound or gw == w
    assert head_grid((64, 7, 7), 64 * 49) is None  # fits as it is: flattened


def test_cnn_default_head_drops_half_its_inputs_while_training():
    model = build("cnn", in_shape=(1, 28, 28))
    (dropout,) = [m for m in model if isinstance(m, nn.Dropout)]
    assert dropout.p == 0.5 and isinstance(model[-1], nn.Linear)


@pytest.mark.parametrize("model", ["cnn", "resnet", "vgg", "inception", "vit", "sequential"])
def test_model_summary_totals_match_the_model(model):
    result = CliRunner().invoke(app, ["model", "summary", f"model={model}"])
    assert result.exit_code == 0, result.output
    cfg = compose([f"model={model}"]).config
    total = sum(p.numel() for p in build_model(cfg, load_data(cfg)).parameters())
    assert f"total params: {total:,}" in result.stdout
    assert f"trainable params: {total:,}" in result.stdout and "non-trainable params: 0" in result.stdout
    assert "input (1, 8, 8) -> output (10,)" in result.stdout


def test_model_summary_shows_each_layer():
    result = CliRunner().invoke(app, ["model", "summary", "model=cnn"])
    assert "Conv2d" in result.stdout and "(32, 8, 8)" in result.stdout and "18,432" in result.stdout


def test_autoencoders_reconstruct_the_input_shape_and_denoise_only_while_training():
    dense = build("autoencoder", in_shape=(1, 8, 8), out=64, task="reconstruction", latent=4)
    conv = build("autoencoder", in_shape=(3, 10, 14), out=3 * 10 * 14, task="reconstruction", kind="conv")
    assert dense(torch.zeros(2, 1, 8, 8)).shape == (2, 64)
    assert conv(torch.zeros(2, 3, 10, 14)).shape == (2, 3 * 10 * 14)
    assert dense.encode(torch.zeros(2, 1, 8, 8)).shape == (2, 4)
    noisy = build("autoencoder", in_shape=(4,), out=4, task="reconstruction", noise=0.5)
    x = torch.ones(3, 4)
    noisy.eval()
    assert torch.equal(noisy(x), noisy(x))  # no noise at evaluation
    noisy.train()
    assert not torch.equal(noisy(x), noisy(x))  # fresh noise on every training pass
    with pytest.raises(DlcliError, match="kind=conv needs images"):
        build("autoencoder", in_shape=(5,), out=5, kind="conv")
