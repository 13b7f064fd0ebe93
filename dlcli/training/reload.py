"""Reload a finished run from its folder: its config, its saved preprocessing and its trained model.

Evaluation, prediction and fine-tuning share this: raw inputs go through :meth:`LoadedRun.inputs`
(the same image conversion, scaling statistics or vocabulary as in training, never fitted again)
and the model is rebuilt from ``config.yaml`` and loaded from a checkpoint with ``weights_only=True``.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from dlcli.errors import DlcliError
from dlcli.runs import folder


@dataclass
class LoadedRun:
    run_dir: Path
    config: dict[str, Any]
    preprocessing: dict[str, Any]

    def inputs(self, raw: Any) -> np.ndarray:
        """Raw inputs (arrays as the dataset gives them, or a list of texts) -> the model's inputs."""
        from dlcli.data.prepare import transform_inputs

        return transform_inputs(raw, self.preprocessing)

    def module(self, checkpoint: str = "best") -> Any:
        """The run's task module (model, target scaling, output activation) with trained weights, in eval mode."""
        import torch

        from dlcli.data.prepare import Prepared
        from dlcli.registry import LOSSES
        from dlcli.training.build import build_model, component_params
        from dlcli.training.module import TaskModule

        pre = self.preprocessing
        path = self.run_dir / "checkpoints" / f"{checkpoint}.ckpt"
        if not path.is_file():
            raise DlcliError(f"run {self.run_dir} has no checkpoints/{checkpoint}.ckpt")
        cfg = copy.deepcopy(self.config)
        cfg["model"]["pretrained"] = None  # the run's own weights are loaded below, whatever it started from
        cfg["finetune"] = {"freeze": None, "stages": None}
        vocab = pre.get("vocab")
        shape = Prepared(pre["task"], {}, tuple(pre["input_shape"]), pre["out_features"], pre.get("classes"), pre,
                         len(vocab) if vocab else None)
        model = build_model(cfg, shape)
        loss = LOSSES.get(cfg["loss"]["name"]).build(component_params(cfg["loss"]))
        module = TaskModule(model, loss, pre["task"], shape.num_classes, make_optimizer=lambda _: None,
                            make_scheduler=lambda _: None, target_scaling=pre.get("target_scaling"),
                            has_anomalies=bool(pre.get("anomalies")), metrics=cfg["metrics"])
        state = torch.load(path, map_location="cpu", weights_only=True)
        module.load_state_dict(state["state_dict"])
        return module.eval()

    def predict(self, raw: Any, batch_size: int = 512, checkpoint: str = "best") -> np.ndarray:
        """Predictions for raw inputs: class probabilities, or values in the targets' units."""
        import torch

        module, x = self.module(checkpoint), torch.from_numpy(self.inputs(raw))
        with torch.no_grad():
            out = [module.predictions(module(x[i:i + batch_size])) for i in range(0, len(x), batch_size)]
        return torch.cat(out).numpy()


def load_run(ref: str, output_dir: str = "outputs") -> LoadedRun:
    """A run by folder path, run id, id prefix or ``last``; its config and preprocessing as saved."""
    try:
        run_dir = folder.resolve_run(ref, output_dir)
    except FileNotFoundError as e:
        raise DlcliError(str(e)) from None
    missing = [name for name in (folder.CONFIG, folder.PREPROCESSING) if not (run_dir / name).is_file()]
    if missing:
        raise DlcliError(f"{run_dir} is not a complete dlcli run folder: {', '.join(missing)} missing")
    from omegaconf import OmegaConf

    config = OmegaConf.to_container(OmegaConf.load(run_dir / folder.CONFIG))
    return LoadedRun(run_dir, config, folder.read_json(run_dir / folder.PREPROCESSING))
