"""Models composed in YAML from layers: `sequential` (Keras' Sequential API) and `graph` (its Functional API).

Input sizes are inferred: each layer is built for the shape the previous one produces, found by a
dry run. A final dense layer may leave out `units`: it gets the task's output width. A final
softmax (multiclass) or sigmoid (binary) is folded into the loss, which works on logits for
numerical stability; predictions apply it again.
"""

from __future__ import annotations

from typing import Any

from dlcli.errors import DlcliError
from dlcli.registry import LAYERS, MODELS

MERGES = ("add", "concatenate", "multiply")


def _layer_spec(spec: Any, where: str) -> tuple[str, dict]:
    """`flatten` or `{dense: {units: 128}}` -> ("dense", {"units": 128})."""
    if isinstance(spec, str):
        return spec, {}
    if isinstance(spec, dict) and len(spec) == 1:
        (name, params), = spec.items()
        if params is None:
            params = {}
        if isinstance(params, dict):
            return str(name), dict(params)
    raise DlcliError(f"{where}: a layer is a name (`- flatten`) or a one-key mapping "
                     f"(`- dense: {{units: 128}}`), got {spec!r}")


def check_layers(node: dict, path: str, check: Any) -> None:
    """Validation of `model=sequential`: every layer in ``model.layers`` named in the layer registry, with
    its parameters (names, types, ranges) -- all problems at once, before any data is read."""
    check.named_list(LAYERS, node.get("layers"), f"{path}.layers")


def check_nodes(node: dict, path: str, check: Any) -> None:
    """Validation of `model=graph`: each node a registered layer with its parameters, or a known merge,
    wired to earlier nodes; ``model.output`` one of them."""
    nodes = node.get("nodes")
    if not isinstance(nodes, dict):
        return
    seen = {"input"}
    for name, spec in nodes.items():
        where = f"{path}.nodes.{name}"
        if name == "input":
            check.problem(where, "'input' names the model's input; give the node another name")
        if not isinstance(spec, dict):
            check.problem(where, "expected a mapping with 'layer' and 'input', or 'merge' and 'inputs'")
            continue
        spec = dict(spec)
        if "merge" in spec:
            op, inputs = spec.pop("merge"), spec.pop("inputs", None)
            if op not in MERGES:
                check.problem(f"{where}.merge", f"unknown merge '{op}'. Available: {', '.join(MERGES)}")
            if not isinstance(inputs, list) or len(inputs) < 2:
                check.problem(f"{where}.inputs", "a merge needs 'inputs', a list of two or more node names")
            else:
                for i in inputs:
                    if i not in seen:
                        check.problem(f"{where}.inputs", f"'{i}' is not an earlier node (nodes are evaluated in order)")
            if spec:
                check.problem(where, f"unknown keys for a merge: {', '.join(map(str, spec))}")
        else:
            layer, source = spec.pop("layer", None), spec.pop("input", "input")
            if layer is None:
                check.problem(where, "needs 'layer' (a layer name) or 'merge'")
            else:
                check.entry(LAYERS, str(layer), spec, where)
            if source not in seen:
                check.problem(f"{where}.input", f"'{source}' is not an earlier node (nodes are evaluated in order)")
        seen.add(name)
    output = node.get("output")
    if output is not None and output not in nodes:
        check.problem(f"{path}.output", f"no node '{output}'. Nodes: {', '.join(map(str, nodes))}")


def _fold_output_activation(name: str, params: dict, task: str | None, last: bool) -> tuple[str, dict] | None:
    """Drop a last softmax / sigmoid that the loss applies itself (on logits)."""
    from dlcli.tasks import get_task

    act = get_task(task).output_activation if last and task else None
    if act is None:
        return name, params
    if name == "activation" and params.get("name") == act:
        return None
    if params.get("activation") == act:
        return name, {**params, "activation": "none"}
    return name, params


def build_layer(name: str, params: dict, in_shape: tuple[int, ...], where: str, vocab_size: int | None,
                out_features: int | None = None):
    """Build one registered layer for ``in_shape``; returns (module, output shape)."""
    from dlcli.blocks import output_shape
    from dlcli.config.validate import check_params

    if name not in LAYERS:
        raise DlcliError(f"{where}: {LAYERS.unknown_message(name)}")
    entry = LAYERS.get(name)
    if name == "dense" and params.get("units") is None and out_features is not None:
        params = {**params, "units": out_features}
    params = check_params(entry.params, params, where, f"layer '{name}'")
    module = entry.build(params, in_shape=tuple(in_shape), vocab_size=vocab_size)
    try:
        import torch

        shape = output_shape(module, tuple(in_shape), torch.long if name == "embedding" else torch.float32)
    except (RuntimeError, ValueError) as e:
        raise DlcliError(f"{where} ({name}) cannot take an input of shape {tuple(in_shape)}: "
                         f"{str(e).splitlines()[0]}") from None
    return module, shape


def _check_output(shape: tuple[int, ...], out_features: int, what: str) -> None:
    if shape != (out_features,):
        raise DlcliError(f"{what} outputs shape {shape}, the task needs ({out_features},): end with a dense layer "
                         f"with units: {out_features} (or leave units out)")


@MODELS.register(inputs="any", check=check_layers)
def sequential(in_shape: tuple[int, ...], out_features: int, vocab_size: int | None = None,
               task: str | None = None,
               layers: list = ("flatten", {"dense": {"units": 128, "activation": "relu"}}, {"dropout": {"rate": 0.2}},
                               {"dense": {"activation": "softmax"}})):
    """Layers in order, like Keras' Sequential API; each layer's input size is inferred."""
    from torch import nn

    specs = list(layers)
    if not specs:
        raise DlcliError("model.layers is empty: list at least one layer")
    parsed = [_layer_spec(spec, f"model.layers[{i}]") for i, spec in enumerate(specs)]
    # the last layer that is not a bare activation may leave `units` out: it gets the task's output width
    last_sized = max((i for i, (name, _) in enumerate(parsed) if name != "activation"), default=len(parsed) - 1)
    modules, shape = [], tuple(in_shape)
    for i, (name, params) in enumerate(parsed):
        folded = _fold_output_activation(name, params, task, last=i == len(parsed) - 1)
        if folded is None:
            continue
        module, shape = build_layer(*folded, shape, f"model.layers[{i}]", vocab_size,
                                    out_features if i == last_sized else None)
        modules.append(module)
    _check_output(shape, out_features, "the sequential model")
    return nn.Sequential(*modules)


def _merged_shape(op: str, shapes: list[tuple[int, ...]], where: str) -> tuple[int, ...]:
    if op == "concatenate":
        rest = {s[1:] for s in shapes}
        if len(rest) != 1:
            raise DlcliError(f"{where}: concatenate joins along channels; the other dimensions must match, "
                             f"got {shapes}")
        return (sum(s[0] for s in shapes), *shapes[0][1:])
    if len(set(shapes)) != 1:
        raise DlcliError(f"{where}: {op} needs inputs of one shape, got {shapes}")
    return shapes[0]


@MODELS.register(inputs="any", check=check_nodes)
def graph(in_shape: tuple[int, ...], out_features: int, nodes: dict[str, dict], vocab_size: int | None = None,
          task: str | None = None, output: str | None = None):
    """Named nodes wired by their inputs, like Keras' Functional API; merges: add, concatenate, multiply."""
    if not nodes:
        raise DlcliError("model.nodes is empty: declare at least one node")
    output = output or list(nodes)[-1]
    if output not in nodes:
        raise DlcliError(f"model.output: no node '{output}'. Nodes: {', '.join(nodes)}")
    shapes: dict[str, tuple[int, ...]] = {"input": tuple(in_shape)}
    order, layers, merges = [], {}, {}
    for node, spec in nodes.items():
        where = f"model.nodes.{node}"
        if node == "input":
            raise DlcliError(f"{where}: 'input' names the model's input; give the node another name")
        if not isinstance(spec, dict):
            raise DlcliError(f"{where}: expected a mapping with 'layer' and 'input', or 'merge' and 'inputs'")
        spec = dict(spec)
        if "merge" in spec:
            op, inputs = spec.pop("merge"), spec.pop("inputs", None)
            if op not in MERGES:
                raise DlcliError(f"{where}: unknown merge '{op}'. Available: {', '.join(MERGES)}")
            if not isinstance(inputs, list) or len(inputs) < 2:
                raise DlcliError(f"{where}: a merge needs 'inputs', a list of two or more node names")
            if spec:
                raise DlcliError(f"{where}: unknown keys for a merge: {', '.join(spec)}")
            for i in inputs:
                if i not in shapes:
                    raise DlcliError(f"{where}: input '{i}' is not an earlier node (nodes are evaluated in order)")
            shapes[node] = _merged_shape(op, [shapes[i] for i in inputs], where)
            merges[node] = (op, list(inputs))
            order.append((node, None))
            continue
        name, source = spec.pop("layer", None), spec.pop("input", "input")
        if name is None:
            raise DlcliError(f"{where}: needs 'layer' (a layer name) or 'merge'")
        if source not in shapes:
            raise DlcliError(f"{where}: input '{source}' is not an earlier node (nodes are evaluated in order)")
        folded = _fold_output_activation(name, spec, task, last=node == output)
        if folded is None:
            raise DlcliError(f"{where}: the output node's softmax/sigmoid is applied by the loss: drop the node")
        name, spec = folded
        layers[node], shapes[node] = build_layer(name, spec, shapes[source], where, vocab_size,
                                                 out_features if node == output else None)
        order.append((node, source))
    _check_output(shapes[output], out_features, f"the graph model's output node '{output}'")
    from dlcli.blocks import Graph

    return Graph(layers, order, merges, output)
