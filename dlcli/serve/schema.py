"""``GET /metadata``: what a served run takes and gives, from its saved preprocessing and summary (torch-free)."""

from __future__ import annotations

from typing import Any

from dlcli.runs import folder
from dlcli.training.reload import LoadedRun


def input_schema(run: LoadedRun) -> dict[str, Any]:
    """The inputs ``POST /predict`` takes for this run: records with these columns, arrays of this shape, images,
    or texts."""
    pre, data = run.preprocessing, run.config["data"]
    shape = list(pre["input_shape"])
    if pre.get("text") is not None:
        return {"kind": "text", "item": "a string", "tokens": pre["text"].get("level"),
                "max_length": pre["text"].get("max_length"), "vocabulary_size": len(pre.get("vocab") or []),
                "also": f"records with the column '{data.get('text') or 'text'}'"}
    if pre.get("columns") is not None:
        enc = pre["columns"]
        columns = [{"name": n, "type": "number" if t == "numeric" else "category",
                    **({"categories": enc["categories"][n]} if t != "numeric" else {})}
                   for n, t in zip(enc["names"], enc["types"], strict=True)]
        return {"kind": "record", "item": "an object {column: value}; a missing value is null",
                "columns": columns, "missing": enc["missing"]}
    if len(shape) == 3:
        size = data.get("size")
        return {"kind": "image", "shape": shape,
                "item": f"a nested array of shape {shape} (channels, height, width) or flat, of raw pixel values "
                        "as the run's data gave them; or image files uploaded as multipart fields 'file'",
                "image_size": list(size) if size else shape[1:]}
    names = pre.get("feature_names")
    schema: dict[str, Any] = {"kind": "array", "shape": shape,
                              "item": f"a nested array of shape {shape}, or flat ({_count(shape)} numbers)"}
    if len(shape) == 1 and names:
        schema.update(kind="record", item="an object {column: number}, or an array of the numbers in this order",
                      columns=[{"name": n, "type": "number"} for n in names])
    if pre.get("variable_length"):
        schema["variable_length"] = "sequences may be shorter (steps, features), or padded at the end with NaN"
    return schema


def _count(shape: list[int]) -> int:
    n = 1
    for s in shape:
        n *= int(s)
    return n


def preprocessing_summary(run: LoadedRun) -> dict[str, Any]:
    """The saved preprocessing in brief: what is applied to each input before the model."""
    pre = run.preprocessing
    summary: dict[str, Any] = {}
    if pre.get("text") is not None:
        summary["text"] = {k: v for k, v in pre["text"].items() if not isinstance(v, (list, dict))}
    if pre.get("columns") is not None:
        summary["columns"] = {"encoded_features": len(pre["columns"]["encoded_names"]),
                              "missing": pre["columns"]["missing"]}
    if pre.get("image"):
        summary["image"] = pre["image"]
    scaling = pre.get("scaling")
    if scaling:
        summary["scaling"] = scaling["method"]
    if pre.get("target_scaling"):
        summary["target_scaling"] = pre["target_scaling"].get("method") if isinstance(pre["target_scaling"], dict) \
            else pre["target_scaling"]
    return summary


def metadata(run: LoadedRun, backend: str, checkpoint: str, max_batch: int) -> dict[str, Any]:
    """``GET /metadata``: the run, what it takes and gives, and how it scored on its test split."""
    path = run.run_dir / folder.SUMMARY
    summary = folder.read_json(path) if path.is_file() else {}
    metrics = {k: v for k, v in (summary.get("metrics") or {}).items()
               if isinstance(v, (int, float))}
    return {"run": run.run_dir.name, "task": run.task, "model": run.config["model"]["name"],
            "data": run.config["data"]["name"], "classes": run.classes, "input": input_schema(run),
            "output": "label and probabilities per class" if run.classes else "value",
            "preprocessing": preprocessing_summary(run), "metrics": metrics,
            "serving": {"backend": backend, "checkpoint": checkpoint, "max_batch": max_batch}}
