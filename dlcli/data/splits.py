"""Official splits: files that are the test or validation split, and the split each run records.

``data.test_path`` / ``data.val_path`` (``data.test_root`` / ``data.val_root`` for folders) name files
read by the same loader as ``data.path`` (``data.root``); their rows are marked in ``Table.split`` and
become those splits as they are. A dataset with its own test files (MNIST's t10k, CIFAR-10's
test_batch) marks them itself under ``data.split=official``. Only the splits no file gives are carved
at random, from the rows marked train. Each run records where every split came from
(``split_sources``) and which rows it holds (``split_indices``), so that a reopened run uses the same
rows, or says why it cannot.
"""

from __future__ import annotations

import base64
import hashlib
import zlib
from typing import TYPE_CHECKING, Any

from dlcli.data.table import Table
from dlcli.errors import DataError

if TYPE_CHECKING:
    import numpy as np

SPLITS = ("train", "val", "test")
FILE_KEYS = {"test": ("test_path", "test_root"), "val": ("val_path", "val_root")}  # split -> its keys
LIST_ROWS = 10_000  # up to this many rows, split_indices lists the row numbers (readable in the JSON)
CODED_ROWS = 1_000_000  # up to this many, one compressed byte per row; above, only a hash and the counts


# ------------------------------------------------------------------------------------------- loading

def cv_group(cfg: dict) -> str | None:
    """The column a cross-validation fold's config (``cfg["cv"]``) reads each row's group from, or None."""
    cv = cfg.get("cv")
    return cv["group"] if cv and cv.get("folds") and cv.get("strategy") == "group" else None


def load_table(data_cfg: dict, seed: int, extra_files: bool = True, group: str | None = None) -> Table:
    """The configured dataset; with ``extra_files``, the rows of data.val_path / data.test_path (or the
    *_root folders) appended and marked as those splits. ``group`` (cv.group): the column read as each
    row's group, for cross-validation by groups (the test file's rows, never in a fold, need none)."""
    from dlcli.config.schema import DataConfig
    from dlcli.config.validate import dataclass_params
    from dlcli.registry import DATASETS

    builder = DATASETS.get(data_cfg["name"])
    common = set(dataclass_params(DataConfig))
    own = {k: v for k, v in data_cfg.items() if k not in common}
    split = data_cfg.get("split", "official")
    table = builder.build(own, seed=seed, split=split, group=group)
    if group is not None and table.groups is None:
        raise DataError(f"cv.strategy=group reads groups from a column (cv.group), and data '{data_cfg['name']}' has "
                        "no columns: use a CSV (data=csv) with a column of groups, or another cv.strategy")
    if split == "random":  # a dataset's own test rows join the pool (also for loaders that ignore data.split)
        table.split, table.split_sources = None, None
    if not extra_files:
        return table
    for name in ("val", "test"):
        for key in FILE_KEYS[name]:
            if not data_cfg.get(key):
                continue
            base = key.split("_", 1)[1]  # test_path -> path, val_root -> root
            named = [k for k in (base, f"val_{base}") if k != key and data_cfg.get(k) == data_cfg[key]]
            if named:  # (checked here, not by the validator: `dlcli eval RUN data.path=TEST` scores TEST alone)
                raise DataError(f"data.{key} is data.{named[0]} too ('{data_cfg[key]}'): the {name} rows would "
                                f"also be {'training' if named[0] == base else 'validation'} rows. Give another "
                                f"{'file' if base == 'path' else 'folder'}")
            if table.split is not None and (table.split == name).any():
                raise DataError(f"data.{key} gives the {name} split, but data '{data_cfg['name']}' already has its "
                                f"own {name} rows ({(table.split_sources or {}).get(name, 'data.split=official')}). "
                                f"Drop data.{key}, or join the dataset's own {name} rows into the training pool "
                                "with data.split=random")
            other = builder.build({**_as_decided(own, builder.params, table), base: data_cfg[key]}, seed=seed,
                                  split=split)
            table = _append(table, other, name, f"'{data_cfg[base]}' (data.{base})", f"'{data_cfg[key]}' (data.{key})",
                            str(data_cfg[base]), str(data_cfg[key]))
    return table


def _as_decided(own: dict, params: dict, table: Table) -> dict:
    """The loader's options for another file: the training file's, with what its content decided fixed."""
    out = dict(own)
    if own.get("color") == "auto":  # image folders: the colour mode the training images decided
        out["color"] = table.files.color if table.files is not None else \
            "rgb" if table.x.ndim == 4 and table.x.shape[1] == 3 else "grayscale"
    if "cache" in params:  # streamed images (data.cache): every split streamed, or every one in memory
        out["cache"] = "none" if table.files is not None else "memory"
    if table.columns is not None and {"features", "categorical", "numeric"} <= set(params):
        types = table.columns["types"]  # a CSV: the training file's columns, with the types inferred there
        out.update(features=list(types), categorical=[n for n, t in types.items() if t == "categorical"] or None,
                   numeric=[n for n, t in types.items() if t == "numeric"] or None)
    return out


def _append(a: Table, b: Table, name: str, a_name: str, b_name: str, a_source: str, b_source: str) -> Table:
    """``a`` with every row of ``b`` appended, marked ``name``; DataError (naming both files) when they do
    not hold the same kind of data."""
    from dataclasses import replace

    import numpy as np

    def refuse(what: str) -> DataError:
        return DataError(f"{b_name} does not fit {a_name}: {what}. The {name} file must hold the same kind of "
                         "data as the training file")

    if (a.text is None) != (b.text is None):
        raise refuse("one holds texts, the other arrays")
    if a.kind != b.kind:
        raise refuse(f"its targets are {b.kind or 'of another kind'}, the training file's {a.kind or 'other'}")
    if (a.columns or {}).get("types") != (b.columns or {}).get("types"):  # a CSV's typed columns
        raise refuse(f"its columns are {(b.columns or {}).get('types')}, the training file's "
                     f"{(a.columns or {}).get('types')}")
    if (a.files is None) != (b.files is None):
        raise refuse("one is streamed from disk (data.cache), the other is not")
    bx = b.x if b.files is None else b.files
    if a.feature_names and b.feature_names and list(a.feature_names) != list(b.feature_names):
        position = {f: i for i, f in enumerate(b.feature_names)}  # one lookup per column: wide files stay linear
        trained = set(a.feature_names)
        missing = [f for f in a.feature_names if f not in position]
        extra = [f for f in b.feature_names if f not in trained]
        if missing or extra or bx.ndim != 2:
            raise refuse("other columns" + (f"; it lacks {', '.join(missing[:10])}" if missing else "")
                         + (f"; it has {', '.join(extra[:10])} besides" if extra else ""))
        bx = bx[:, [position[f] for f in a.feature_names]]  # the training file's column order
    ax = a.x if a.files is None else a.files
    if a.text is None and tuple(ax.shape[1:]) != tuple(bx.shape[1:]):
        raise refuse(f"samples of shape {tuple(bx.shape[1:])}, the training file's {tuple(ax.shape[1:])}")
    if a.y.ndim != b.y.ndim or tuple(a.y.shape[1:]) != tuple(b.y.shape[1:]):
        raise refuse(f"targets of shape {tuple(b.y.shape[1:])}, the training file's {tuple(a.y.shape[1:])}")
    if np.issubdtype(a.y.dtype, np.number) != np.issubdtype(b.y.dtype, np.number):
        raise refuse("its labels are " + ("numbers" if np.issubdtype(b.y.dtype, np.number) else "text")
                     + ", the training file's are not")
    by, names = _align_labels(a, b, refuse)
    marker = a.split if a.split is not None else np.full(len(a.y), "train", dtype="<U5")
    sources = {"train": a_source, **(a.split_sources or {}), name: b_source}
    columns = None if a.columns is None else \
        {**a.columns, "notes": [*(a.columns.get("notes") or []), *(b.columns or {}).get("notes", [])]}
    files = None if a.files is None else replace(a.files, paths=np.concatenate([a.files.paths, b.files.paths]))
    x = None if a.files is not None else np.concatenate([a.x, bx])
    # per-sample extras (sequence lengths, forecast offsets: padding.py, forecast.py) follow their rows
    extras = {k: None if getattr(a, k) is None or getattr(b, k) is None
              else np.concatenate([getattr(a, k), getattr(b, k)]) for k in ("lengths", "offset")}
    if a.groups is not None:  # a test file's rows are in no fold: they need no group
        extras["groups"] = np.concatenate([a.groups, np.full(len(b.y), "", dtype=object)])
    notes = [*(a.notes or []), *(b.notes or [])] or None
    return replace(a, x=x, y=np.concatenate([a.y, by]), class_names=names, columns=columns, files=files, notes=notes,
                   split=np.concatenate([marker, np.full(len(b.y), name, dtype="<U5")]), split_sources=sources,
                   **extras)


def _align_labels(a: Table, b: Table, refuse: Any) -> tuple[np.ndarray, list[str] | None]:
    """``b``'s targets in ``a``'s label values, and the class names of both together.

    Class names stand for the sorted distinct labels (an image folder's label 1 is its second class
    folder, whichever that is), so labels are matched by name; a class only ``b`` has gets a new label.
    """
    import numpy as np

    if a.class_names is None and b.class_names is None:
        return b.y, None
    if a.y.ndim != 1:  # label columns, or a transcription's symbols: the same names in the same order
        if list(a.class_names or []) != list(b.class_names or []):
            raise refuse(f"its labels are {b.class_names}, the training file's {a.class_names}")
        return b.y, a.class_names
    va, vb = np.unique(a.y), np.unique(b.y)
    if a.class_names is None or b.class_names is None or len(a.class_names) != len(va) \
            or len(b.class_names) != len(vb):
        return b.y, (a.class_names if a.class_names == b.class_names else None)
    named = {str(n): v for n, v in zip(a.class_names, va, strict=True)}
    value_names = {v.item() if hasattr(v, "item") else v: str(n) for n, v in zip(a.class_names, va, strict=True)}
    mapping, numeric = {}, np.issubdtype(a.y.dtype, np.number)
    for n, v in zip(b.class_names, vb, strict=True):
        if str(n) in named:
            mapping[v.item() if hasattr(v, "item") else v] = named[str(n)]
            continue
        new = (max(value_names) + 1) if numeric else str(n)  # a class the training file does not have
        mapping[v.item() if hasattr(v, "item") else v] = new
        value_names[new] = str(n)
    by = np.array([mapping[v.item() if hasattr(v, "item") else v] for v in b.y], dtype=a.y.dtype)
    every = np.unique(np.concatenate([a.y, by]))
    return by, [value_names[v.item() if hasattr(v, "item") else v] for v in every]


# ------------------------------------------------------------------------------------------ splitting

def fixed_split(y: np.ndarray, fixed: np.ndarray, val_fraction: float, test_fraction: float, seed: int,
                stratify: bool, ordered: bool) -> dict[str, np.ndarray]:
    """Rows marked val / test are those splits; the splits no file gives are carved from the rows marked
    train, by their fraction *of those rows* (seeded, stratified as asked; the latest rows for time series)."""
    import numpy as np

    from dlcli.data.prepare import split_indices

    given = {name: np.flatnonzero(fixed == name) for name in ("val", "test")}
    pool = np.flatnonzero(fixed == "train")
    carved = split_indices(y[pool], 0.0 if len(given["val"]) else val_fraction,
                           0.0 if len(given["test"]) else test_fraction, seed, stratify, ordered)
    out = {k: pool[v] for k, v in carved.items()}
    out.update({k: v for k, v in given.items() if len(v)})
    return {k: np.sort(out[k]) for k in SPLITS if k in out}


def split_record(idx: dict[str, np.ndarray], table: Table, cfg: dict, seed: int) -> dict[str, Any]:
    """What preprocessing.json records of the split: where each split came from, and its rows."""
    return {"split_sources": describe_sources(idx, table, cfg, seed),
            "split_indices": encode_membership(idx, len(table.y))}


def describe_sources(idx: dict[str, np.ndarray], table: Table, cfg: dict, seed: int) -> dict[str, str]:
    """Split -> where its rows came from: a file, or a share of the rows carved at random (or in time)."""
    given = table.split_sources or {}
    fixed = {k for k in ("val", "test") if table.split is not None and (table.split == k).any()}
    source = next((str(cfg[k]) for k in ("path", "root") if cfg.get(k)), f"data '{cfg['name']}'")
    out, carved = {}, []
    for name in ("val", "test"):
        if name not in idx:
            continue
        if name in fixed:
            out[name] = given.get(name, f"the dataset's own {name} rows")
            continue
        carved.append(name)
        how = "taken last in time" if table.ordered else f"at random, seed {seed}"
        out[name] = f"{cfg[f'{name}_fraction'] * 100:g}% of {'the training rows' if fixed else 'all rows'} {how}"
    train = given.get("train", source)
    return {"train": train + (f", less the {' and '.join(carved)} rows" if carved else ""), **out}


def header_line(pre: dict[str, Any]) -> str | None:
    """One line for the run's header: each split's size and where it came from."""
    sources, sizes = pre.get("split_sources"), pre.get("split_sizes") or {}
    if not sources:
        return None
    return "splits: " + ", ".join(f"{name} {sizes.get(name, 0):,} ({where})" for name, where in sources.items())


def encode_membership(idx: dict[str, np.ndarray], rows: int) -> dict[str, Any]:
    """Each split's rows, compactly: listed (small data), one zlib-compressed byte per row (base64), or,
    above a million rows, a hash of those bytes and the counts (enough to verify, not to rebuild)."""
    import numpy as np

    if rows <= LIST_ROWS:
        return {"rows": rows, "indices": {k: [int(i) for i in v] for k, v in idx.items()}}
    codes = np.full(rows, 255, dtype=np.uint8)  # 0 train, 1 val, 2 test, 255 none
    for code, name in enumerate(SPLITS):
        if name in idx:
            codes[idx[name]] = code
    counts = {k: int(len(v)) for k, v in idx.items()}
    if rows <= CODED_ROWS:
        return {"rows": rows, "counts": counts, "codes": base64.b64encode(zlib.compress(codes.tobytes(), 9)).decode()}
    return {"rows": rows, "counts": counts, "sha256": hashlib.sha256(codes.tobytes()).hexdigest()}


def decode_membership(record: dict[str, Any] | None) -> dict[str, np.ndarray] | None:
    """Split -> row indices from :func:`encode_membership`; None when only a hash was kept (or nothing)."""
    import numpy as np

    if not record:
        return None
    if "indices" in record:
        return {k: np.asarray(v, dtype=np.int64) for k, v in record["indices"].items()}
    if "codes" in record:
        codes = np.frombuffer(zlib.decompress(base64.b64decode(record["codes"])), dtype=np.uint8)
        return {name: np.flatnonzero(codes == code) for code, name in enumerate(SPLITS) if (codes == code).any()}
    return None


def use_recorded(table: Table, pre: dict[str, Any]) -> bool:
    """Mark ``table``'s rows with the split a run recorded, so that it is rebuilt row for row (whatever the
    seed or the splitting code does now). False, leaving the table as it is, when nothing fits."""
    import numpy as np

    recorded = pre.get("split_indices") or {}
    membership = decode_membership(recorded)
    if membership is None or recorded.get("rows") != len(table.y):
        return False
    marker = np.full(len(table.y), "train", dtype="<U5")
    for name in ("val", "test"):
        if name in membership:
            marker[membership[name]] = name
    table.split = marker
    return True


def check_same_split(now: dict[str, Any], recorded: dict[str, Any], run_name: str, data: str) -> None:
    """DataError when the split rebuilt now is not the one the run recorded (when it recorded one)."""
    before, after = recorded.get("split_indices"), now.get("split_indices")
    if before is None or after is None or before == after:
        return
    sizes = {k: len(v) for k, v in (decode_membership(after) or {}).items()} or after.get("counts")
    raise DataError(f"the split of {data} rebuilt now ({sizes}) is not the one run {run_name} recorded in "
                    f"preprocessing.json ({recorded.get('split_sizes')}): its test split would hold other rows. "
                    "Evaluate it on the data it was trained on")


def warn_unseen_classes(prepared: Any, table: Table) -> None:
    """Warn when a split from a file has classes the training rows never have: the model cannot learn them."""
    import warnings

    import numpy as np

    names = prepared.class_names
    train = prepared.splits.get("train")
    if table.split is None or not names or train is None or train[1].ndim != 1 \
            or not np.issubdtype(train[1].dtype, np.integer):
        return
    seen = set(np.unique(train[1]).tolist())
    for name in ("val", "test"):
        if name not in prepared.splits:
            continue
        unseen = sorted(set(np.unique(prepared.splits[name][1]).tolist()) - seen)
        if unseen:
            where = (table.split_sources or {}).get(name, f"the {name} split")
            warnings.warn(f"{where} has classes the training rows never have: "
                          f"{', '.join(str(names[i]) for i in unseen[:10])}. The model cannot learn them; "
                          f"its {name} scores count those rows as errors", stacklevel=2)


# ---------------------------------------------------------------------------------------- config checks

def split_key_problems(data: dict, params: dict | None, datasets: Any) -> list[tuple[str, str]]:
    """(key, message) for data.test_path / val_path / test_root / val_root that cannot apply to this dataset."""
    out = []
    for split in ("test", "val"):
        for base in ("path", "root"):
            key = f"{split}_{base}"
            value = data.get(key)
            if value is None or params is None:
                continue
            what = "file" if base == "path" else "folder"
            if base not in params:
                takes = ", ".join(e.name for e in datasets if base in e.params)
                out.append((f"data.{key}", f"data '{data.get('name')}' is not read from a {what} (it has no "
                                           f"data.{base}), so it has no {split} {what} to add. data.{key} is for "
                                           f"{takes}; remove it"))
    return out


def legacy_config(config: dict) -> dict:
    """A run's config from before data.split existed: its loaders joined every file into one pool."""
    data = config.get("data")
    if isinstance(data, dict) and "split" not in data:
        data["split"] = "random"
    return config
