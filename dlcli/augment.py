"""Batch augmentations, applied to training batches on the device.

A builder returns a callable ``(x, y) -> (x, y)`` on tensors, or None for no augmentation.
"""

from __future__ import annotations

from dlcli.registry import AUGMENTATIONS


@AUGMENTATIONS.register()
def none():
    """No augmentation."""
    return None
