"""Batch augmentation, declared in YAML and applied to training batches on the device.

`augmentation: {name: pipeline, ops: [...]}` lists ops in order, like a sequential model's layers:
`- rotation: {degrees: 15, p: 0.5}`. Image ops come from kornia and work on (B, C, H, W) batches;
`mixup` and `cutmix` mix pairs of samples and their targets (class ids become soft targets, which
cross_entropy takes as they are). Validation and test batches are never augmented, except for
task=contrastive: its loss compares two augmented views of each image, on every split.
"""

from __future__ import annotations

from typing import Any

from dlcli.config.types import Count, NonNegativeFloat, PositiveFloat, Prob
from dlcli.errors import DlcliError
from dlcli.registry import AUG_OPS, AUGMENTATIONS
from dlcli.tasks import get_task

# The ops a pipeline may list (AUG_OPS): each builder takes `in_shape` (C, H, W) and its own parameters.
MIXERS = ("mixup", "cutmix")
NEEDS_VIEWS = ("task=contrastive learns from two augmented views of each image: choose an augmentation, "
               "e.g. augmentation=standard")


def _pair(v: float | list[float]) -> tuple[float, float]:
    return (float(v[0]), float(v[1])) if isinstance(v, (list, tuple)) else (float(v), float(v))


@AUG_OPS.register()
def hflip(in_shape: tuple[int, ...], p: Prob = 0.5):
    """Mirror left-right."""
    import kornia.augmentation as K

    return K.RandomHorizontalFlip(p=p)


@AUG_OPS.register()
def vflip(in_shape: tuple[int, ...], p: Prob = 0.5):
    """Mirror top-bottom."""
    import kornia.augmentation as K

    return K.RandomVerticalFlip(p=p)


@AUG_OPS.register()
def rotation(in_shape: tuple[int, ...], degrees: float = 15.0, p: Prob = 0.5):
    """Rotate by a random angle in [-degrees, degrees]."""
    import kornia.augmentation as K

    return K.RandomRotation(degrees, p=p)


@AUG_OPS.register()
def translate(in_shape: tuple[int, ...], fraction: float = 0.1, p: Prob = 0.5):
    """Shift by up to `fraction` of the width and height."""
    import kornia.augmentation as K

    return K.RandomAffine(degrees=0.0, translate=(fraction, fraction), p=p)


@AUG_OPS.register()
def affine(in_shape: tuple[int, ...], degrees: float = 10.0, translate: float = 0.1,
           scale: list[float] = (0.9, 1.1), shear: float = 5.0, p: Prob = 0.5):
    """Random affine: rotation, translation, zoom (scale) and shear together."""
    import kornia.augmentation as K

    return K.RandomAffine(degrees=degrees, translate=(translate, translate), scale=_pair(scale), shear=shear, p=p)


@AUG_OPS.register()
def resized_crop(in_shape: tuple[int, ...], scale: list[float] = (0.8, 1.0), ratio: list[float] = (0.75, 1.333),
                 p: Prob = 0.5):
    """Crop a random area (a `scale` share of the image) and zoom it back to the image size."""
    import kornia.augmentation as K

    return K.RandomResizedCrop(tuple(in_shape[-2:]), scale=_pair(scale), ratio=_pair(ratio), p=p)


@AUG_OPS.register()
def brightness(in_shape: tuple[int, ...], factor: float = 0.2, p: Prob = 0.5):
    """Add a random brightness in [-factor, factor] (pixels in 0..1: use data.scaling=minmax)."""
    import kornia.augmentation as K

    return K.RandomBrightness((1 - factor, 1 + factor), clip_output=False, p=p)


@AUG_OPS.register()
def contrast(in_shape: tuple[int, ...], factor: float = 0.2, p: Prob = 0.5):
    """Scale contrast by a random factor in [1 - factor, 1 + factor]."""
    import kornia.augmentation as K

    return K.RandomContrast((1 - factor, 1 + factor), clip_output=False, p=p)


@AUG_OPS.register()
def saturation(in_shape: tuple[int, ...], factor: float = 0.2, p: Prob = 0.5):
    """Scale colour saturation by a random factor in [1 - factor, 1 + factor] (RGB only)."""
    import kornia.augmentation as K

    if in_shape[0] != 3:
        raise DlcliError(f"augmentation op 'saturation' needs RGB images, got {in_shape[0]} channel(s)")
    return K.RandomSaturation((1 - factor, 1 + factor), p=p)


@AUG_OPS.register()
def hue(in_shape: tuple[int, ...], shift: float = 0.05, p: Prob = 0.5):
    """Shift the hue by up to `shift` of the colour circle, in [-0.5, 0.5] (RGB only)."""
    import kornia.augmentation as K

    if in_shape[0] != 3:
        raise DlcliError(f"augmentation op 'hue' needs RGB images, got {in_shape[0]} channel(s)")
    return K.RandomHue((-shift, shift), p=p)


@AUG_OPS.register()
def gaussian_noise(in_shape: tuple[int, ...], std: NonNegativeFloat = 0.05, p: Prob = 0.5):
    """Add gaussian noise of standard deviation `std`."""
    import kornia.augmentation as K

    return K.RandomGaussianNoise(mean=0.0, std=std, p=p)


@AUG_OPS.register()
def gaussian_blur(in_shape: tuple[int, ...], kernel_size: Count = 3, sigma: list[float] = (0.1, 1.0), p: Prob = 0.5):
    """Blur with a gaussian kernel whose sigma is drawn from `sigma`."""
    import kornia.augmentation as K

    return K.RandomGaussianBlur((kernel_size, kernel_size), _pair(sigma), p=p)


@AUG_OPS.register()
def erasing(in_shape: tuple[int, ...], scale: list[float] = (0.02, 0.2), ratio: list[float] = (0.3, 3.3),
            value: float = 0.0, p: Prob = 0.5):
    """Cutout / random erasing: blank a random rectangle (a `scale` share of the image) with `value`."""
    import kornia.augmentation as K

    return K.RandomErasing(scale=_pair(scale), ratio=_pair(ratio), value=value, p=p)


@AUG_OPS.register()
def mixup(in_shape: tuple[int, ...], alpha: PositiveFloat = 0.2, p: Prob = 1.0):
    """MixUp: blend pairs of samples and their targets with a Beta(alpha, alpha) weight."""
    from dlcli.nets.augment import MixUp

    return MixUp(alpha, p)


@AUG_OPS.register()
def cutmix(in_shape: tuple[int, ...], alpha: PositiveFloat = 1.0, p: Prob = 1.0):
    """CutMix: paste a box from another image; targets mixed by the pasted area."""
    from dlcli.nets.augment import CutMix

    return CutMix(alpha, p)


@AUGMENTATIONS.register()
def none(in_shape: tuple[int, ...], num_classes: int | None, task: str):
    """No augmentation."""
    if get_task(task).needs_views:
        raise DlcliError(NEEDS_VIEWS)
    return None


def check_ops(node: dict, path: str, check: Any) -> None:
    """Validation of `augmentation=pipeline`: every op in ``augmentation.ops`` registered, with its
    parameters (names, types, ranges such as p in [0, 1]) -- all problems at once, before any data is read."""
    check.named_list(AUG_OPS, node.get("ops"), f"{path}.ops")


@AUGMENTATIONS.register(check=check_ops)
def pipeline(in_shape: tuple[int, ...], num_classes: int | None, task: str, ops: list = (),
             mix_off_last_epochs: int = 0):
    """Ops in order, each with its probability; mixup/cutmix last (one per batch), off for the last N epochs."""
    from dlcli.config.validate import check_params
    from dlcli.models.composed import _layer_spec
    from dlcli.nets.augment import Pipeline

    image_ops, mixers = [], []
    for i, spec in enumerate(ops):
        where = f"augmentation.ops[{i}]"
        name, params = _layer_spec(spec, where)
        if name not in AUG_OPS:
            raise DlcliError(f"{where}: {AUG_OPS.unknown_message(name)}")
        entry = AUG_OPS.get(name)
        params = check_params(entry.params, params, where, f"augmentation op '{name}'")
        if not 0 <= params.get("p", 1.0) <= 1:
            raise DlcliError(f"{where}.p: a probability in [0, 1], got {params['p']}")
        if name in MIXERS:
            if get_task(task).needs_views:
                raise DlcliError(f"{where}: {name} blends two images into one; task={task} needs views "
                                 f"of a single image. Remove {name}")
            if not get_task(task).mixes_targets:
                raise DlcliError(f"{where}: {name} mixes class targets; this is a {task} task")
            mixers.append(entry.build(params, in_shape=in_shape))
            continue
        if len(in_shape) != 3:
            raise DlcliError(f"{where}: image op '{name}' needs images (C, H, W); samples here are {tuple(in_shape)}")
        image_ops.append(entry.build(params, in_shape=in_shape))
    if get_task(task).needs_views and not image_ops:
        raise DlcliError(f"augmentation: no image ops. {NEEDS_VIEWS}")
    # soft targets: one per class, or for one-logit binary tasks the two classes' (num_classes is 2 there)
    return Pipeline(image_ops, mixers, num_classes or 2, mix_off_last_epochs)
