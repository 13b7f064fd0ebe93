"""A trained module's predictions for one split of a :class:`Prepared` dataset, with its targets.

What ``dlcli eval --report`` draws its tables and plots from, and ``--tune-threshold`` picks a threshold on:
the same batches and the same :meth:`TaskModule.predictions` (probabilities, values in the targets' units)
as the test metrics, collected instead of reduced.
"""

from __future__ import annotations

from typing import Any

import numpy as np


def split_predictions(module: Any, datamodule: Any, split: str) -> tuple[np.ndarray, np.ndarray]:
    """(predictions, targets) of ``split`` ("val" or "test") in the loader's order, as numpy arrays.

    Differenced forecasts get their bases added back to both, so both are in the series' units.
    """
    import torch

    from dlcli.training.module import split_extras

    loader = datamodule.val_dataloader() if split == "val" else datamodule.test_dataloader()
    device = module.device
    preds, targets = [], []
    with torch.no_grad():
        for x, y, *extras in loader:
            lengths, offset = split_extras(extras)
            x = x.to(device)
            out = module(x, None if lengths is None else lengths.to(device))
            p = module.predictions(out, x).cpu()
            y = module.spec.metric_target(y) if module.spec.classes else y
            if offset is not None:  # changes + their bases = levels, as the module's test metrics see them
                p, y = p + offset.cpu(), y + offset
            preds.append(p.float().numpy())
            targets.append(y.cpu().numpy())
    return np.concatenate(preds), np.concatenate(targets)
