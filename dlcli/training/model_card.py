"""``report.md``: an evaluation report as a model card a person can read (dlcli/training/report.py writes the
sections on the predictions; this file the frame around them).

The frame: what was evaluated, the data and its splits, the config's differences from the defaults (train.yaml
composed afresh with the run's component choices, as ``dlcli config show`` would), the metrics, the versions.
"""

from __future__ import annotations

import time
from typing import Any

from dlcli.errors import DlcliError
from dlcli.training.reload import LoadedRun


def markdown(run: LoadedRun, cfg: dict, result: Any, metrics: dict[str, float], sections: list[str]) -> str:
    from dlcli.training.train import versions

    pre = run.preprocessing
    classes = run.classes
    data = cfg["data"]
    source = data.get("path") or data.get("root")
    split_sizes = pre.get("split_sizes") or {}
    lines = [f"# Evaluation report: {run.run_dir.name}", "",
             f"{run.task} run of model `{run.config['model']['name']}` on data `{data['name']}`"
             + (f" (`{source}`)" if source else "") + f"; {result.checkpoint} checkpoint scored on the "
             f"{result.data} ({result.rows} rows), {time.strftime('%Y-%m-%d %H:%M:%S %z')}.", "",
             "## Data and splits", "",
             md_table(["", ""], [
                 ["task", run.task],
                 ["inputs", "texts" if pre.get("text") is not None else f"shape {tuple(pre['input_shape'])}"
                  + (f", {len(pre['feature_names'])} named features" if pre.get("feature_names") else "")],
                 *([["classes", f"{len(classes)}: " + ", ".join(map(str, classes[:30]))
                     + (" ..." if len(classes) > 30 else "")]] if classes else []),
                 ["split sizes", ", ".join(f"{k} {v}" for k, v in split_sizes.items()) or "not recorded"],
                 ["seed", str(cfg.get("seed"))],
                 ["scaling", str((pre.get("scaling") or {}).get("method", "none"))
                  if pre.get("text") is None else "vocabulary of " + str(len(pre.get("vocab") or []))]]), "",
             "## Configuration", "", *config_differences_md(run.config), "",
             "## Metrics", "", md_table(["metric", "value"], [[k, f"{v:.4f}"] for k, v in sorted(metrics.items())]),
             "", *sections, "## Versions", "",
             md_table(["library", "version"], [[k, v] for k, v in _versions(versions()).items()]), "",
             f"Written by `dlcli eval {run.run_dir.name} --report`; the plots and tables are beside this file.", ""]
    return "\n".join(lines)


def _versions(base: dict[str, str]) -> dict[str, str]:
    import matplotlib
    import numpy
    import sklearn
    import torchmetrics

    return {**base, "torchmetrics": torchmetrics.__version__, "scikit-learn": sklearn.__version__,
            "numpy": numpy.__version__, "matplotlib": matplotlib.__version__}


def config_differences(config: dict) -> tuple[list[tuple[str, str, str]], list[tuple[str, Any, Any]]]:
    """(component choices that differ from train.yaml's defaults: (group, default, chosen); keys whose values
    differ from the defaults of the chosen components: (key, default, run's)).

    The defaults are composed afresh from the shipped configs, with the run's component choices.
    """
    from dlcli.config.compose import group_options, shipped_config_dir

    defaults = _composed([])
    dirs = [shipped_config_dir()]
    choices, overrides = [], []
    for group, node in config.items():
        if not isinstance(node, dict) or not isinstance(node.get("name"), str):
            continue
        default = (defaults.get(group) or {}).get("name")
        if node["name"] != default and node["name"] in group_options(group, dirs):
            choices.append((group, str(default), node["name"]))
            overrides.append(f"{group}={node['name']}")
    try:
        base = _composed(overrides)
    except DlcliError:  # e.g. a component from a plugin that is not loaded now: compare with the defaults
        base = defaults
    flat_run, flat_base = _flat(config), _flat(base)
    keys = [k for k in sorted(set(flat_run) | set(flat_base)) if k not in ("output_dir", "name")]
    changed = [(k, flat_base.get(k, "(absent)"), flat_run.get(k, "(absent)")) for k in keys
               if flat_run.get(k, "(absent)") != flat_base.get(k, "(absent)")]
    return choices, changed


def _composed(overrides: list[str]) -> dict:
    """train.yaml with ``overrides``, validated as a run's saved config is (or as composed, where the defaults
    alone do not validate, e.g. data=csv without its path)."""
    from dlcli.config.compose import compose
    from dlcli.config.validate import validate

    raw = compose(overrides, check=False).config
    try:
        return validate(raw)
    except DlcliError:
        return raw


def config_differences_md(config: dict) -> list[str]:
    choices, changed = config_differences(config)
    lines = ["Compared with `train.yaml`'s defaults, composed afresh (`dlcli config show`)."]
    if choices:
        lines += ["", "Components: " + ", ".join(f"`{g}={c}` (default {d})" for g, d, c in choices) + "."]
    lines += ["", md_table(["key", "default", "this run"], [[f"`{k}`", _cell(d), _cell(r)] for k, d, r in changed])
              if changed else "Every other key has its default value."]
    return lines


def _flat(node: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(node, dict) and node:
        out: dict[str, Any] = {}
        for k, v in node.items():
            out.update(_flat(v, f"{prefix}{k}."))
        return out
    return {prefix[:-1]: node}


def _cell(value: Any) -> str:
    text = str(value)
    return (text[:80] + " ...") if len(text) > 80 else text


def md_table(header: list[str], rows: list[list[str]]) -> str:
    def cell(text: str) -> str:
        return str(text).replace("|", "\\|").replace("\n", " ")

    lines = ["| " + " | ".join(map(cell, header)) + " |", "|" + "|".join("---" for _ in header) + "|"]
    return "\n".join(lines + ["| " + " | ".join(map(cell, row)) + " |" for row in rows])
