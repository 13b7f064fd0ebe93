"""1-D convolutional networks for time series: FCN, ResNet1D and InceptionTime.

Their input is a series: sequences (T, F), or rows of T values (an (N, T) array, read as univariate
series (T, 1)). They take the sequences' lengths, so padded steps of variable-length data count for
nothing (see dlcli/nets/series.py).
"""

from __future__ import annotations

from dlcli.config.types import Count
from dlcli.errors import DlcliError
from dlcli.registry import MODELS


def series_features(model: str, in_shape: tuple[int, ...]) -> int:
    """The features F per step of a (T, F) or (T,) input; a DlcliError naming the fix for anything else."""
    if len(in_shape) == 1:
        return 1  # rows of T values: one univariate series each
    if len(in_shape) == 2:
        return in_shape[1]
    raise DlcliError(f"model '{model}' needs series: sequences (T, F) or rows of T values, but the data gives "
                     f"samples of shape {tuple(in_shape)}. For images use model=cnn, resnet, vgg or inception")


def _check_kernels(model: str, key: str, sizes: list[int] | tuple[int, ...]) -> None:
    if not sizes or any(not isinstance(k, int) or k < 1 for k in sizes):
        raise DlcliError(f"model '{model}': {key} lists kernel sizes, each a whole number >= 1, got {list(sizes)}")


def _check_filters(model: str, filters: list[int] | tuple[int, ...]) -> None:
    if not filters or any(not isinstance(f, int) or f < 1 for f in filters):
        raise DlcliError(f"model '{model}': filters lists channel counts, each a whole number >= 1, "
                         f"got {list(filters)}")


@MODELS.register(inputs="series")
def fcn(in_shape: tuple[int, ...], out_features: int, filters: list[Count] = (128, 256, 128),
        kernel_sizes: list[Count] = (8, 5, 3)):
    """FCN for time series (Wang et al., 2017): three conv1d-BN-ReLU blocks, global average pooling, linear."""
    from dlcli.nets.series import fcn as build

    features = series_features("fcn", in_shape)
    _check_filters("fcn", filters)
    _check_kernels("fcn", "kernel_sizes", kernel_sizes)
    if len(filters) != len(kernel_sizes):
        raise DlcliError(f"model 'fcn': filters and kernel_sizes give one value per block, but filters has "
                         f"{len(filters)} and kernel_sizes {len(kernel_sizes)}")
    return build(features, out_features, tuple(filters), tuple(kernel_sizes))


@MODELS.register(inputs="series")
def resnet1d(in_shape: tuple[int, ...], out_features: int, filters: list[Count] = (64, 128, 128),
             kernel_sizes: list[Count] = (8, 5, 3)):
    """ResNet for time series (Wang et al., 2017): residual blocks of three conv1d-BN(-ReLU), GAP, linear."""
    from dlcli.nets.series import resnet1d as build

    features = series_features("resnet1d", in_shape)
    _check_filters("resnet1d", filters)
    _check_kernels("resnet1d", "kernel_sizes", kernel_sizes)
    return build(features, out_features, tuple(filters), tuple(kernel_sizes))


@MODELS.register(inputs="series")
def inception_time(in_shape: tuple[int, ...], out_features: int, depth: Count = 6, filters: Count = 32,
                   bottleneck: Count = 32, kernel_sizes: list[Count] = (39, 19, 9), residual: bool = True):
    """InceptionTime (Ismail Fawaz et al., 2020), one network: inception modules, a shortcut every 3, GAP, linear."""
    from dlcli.nets.series import inception_time as build

    features = series_features("inception_time", in_shape)
    if depth < 1 or filters < 1 or bottleneck < 0:
        raise DlcliError(f"model 'inception_time': depth and filters must be at least 1 and bottleneck at least 0 "
                         f"(0: none), got depth={depth}, filters={filters}, bottleneck={bottleneck}")
    _check_kernels("inception_time", "kernel_sizes", kernel_sizes)
    return build(features, out_features, depth, filters, bottleneck, tuple(kernel_sizes), residual)
