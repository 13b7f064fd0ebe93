"""A Keras-like summary of the composed model on the composed data's input shape (via torchinfo)."""

from __future__ import annotations

from dataclasses import dataclass, field

from dlcli.config.validate import validate


@dataclass
class LayerRow:
    name: str  # dotted path inside the model, e.g. "layers.conv1"
    kind: str  # the module's class, e.g. "Conv2d"
    depth: int
    output_shape: tuple[int, ...] | None  # without the batch dimension; None if not run
    params: int  # parameters this module owns itself (not its children's)


@dataclass
class ModelSummary:
    model: str
    input_shape: tuple[int, ...]
    output_shape: tuple[int, ...]
    total: int
    trainable: int
    rows: list[LayerRow] = field(default_factory=list)

    @property
    def non_trainable(self) -> int:
        return self.total - self.trainable


def summarize(cfg: dict, depth: int = 4) -> ModelSummary:
    """Build the data and model of ``cfg`` and describe each layer's output shape and parameters."""
    import torch
    import torchinfo

    from dlcli.training.build import build_model, load_data

    cfg = validate(cfg)
    prepared = load_data(cfg)
    model = build_model(cfg, prepared)
    dtype = torch.long if prepared.vocab_size else torch.float32
    model.eval()  # batch statistics are not updated by the dry run
    stats = torchinfo.summary(model, input_size=(2, *prepared.in_shape), dtypes=[dtype], depth=depth, verbose=0,
                              col_names=("output_size", "num_params"))
    names = {id(m): n for n, m in model.named_modules()}
    rows = []
    for info in stats.summary_list:
        if info.depth == 0:
            continue
        out = tuple(info.output_size[1:]) if info.output_size else None
        own = sum(p.numel() for p in info.module.parameters(recurse=False))
        rows.append(LayerRow(names.get(id(info.module), info.var_name), info.class_name, info.depth, out, own))
    with torch.no_grad():
        out_shape = tuple(model(torch.zeros(2, *prepared.in_shape, dtype=dtype)).shape[1:])
    params = list(model.parameters())
    return ModelSummary(cfg["model"]["name"], tuple(prepared.in_shape), out_shape,
                        sum(p.numel() for p in params), sum(p.numel() for p in params if p.requires_grad), rows)
