"""A fingerprint of the data files a config names, to notice when a run's data has changed since.

``fingerprint(data_cfg)`` hashes every file the config names (data.path, data.val_path,
data.test_path; MNIST's four IDX files and CIFAR-10's six batches under data.root) with SHA-256.
A folder (an image folder's root) is fingerprinted by its file names and sizes and the content of its
files: all of them up to FULL_HASH_BYTES in all, else an evenly spread sample of SAMPLE_FILES (so a
change inside a file the sample skips, keeping its size, goes unnoticed there). ``compare(saved, now)``
lists what changed; :func:`check` refuses to go on with changed data unless it is allowed.
"""

from __future__ import annotations

import hashlib
import warnings
from pathlib import Path
from typing import Any

from dlcli.errors import DataError

FULL_HASH_BYTES = 64 * 2**20  # folders up to 64 MiB are hashed whole
SAMPLE_FILES = 256  # larger folders: every name and size, and the content of this many files
CHUNK = 2**20
ALLOW_FLAG = "--allow-changed-data"


def data_files(data_cfg: dict) -> list[tuple[str, str, Path, bool]]:
    """(config key, path as named, path, is a folder) of every data file or folder the config names."""
    out = []
    for key in ("path", "val_path", "test_path"):
        if data_cfg.get(key):
            out.append((f"data.{key}", str(data_cfg[key]), Path(str(data_cfg[key])).expanduser(), False))
    for key in ("root", "val_root", "test_root"):
        if not data_cfg.get(key):
            continue
        root = Path(str(data_cfg[key])).expanduser()
        if data_cfg.get("name") == "idx":  # the four IDX files, each raw or gzipped
            for name_key in ("train_images", "train_labels", "test_images", "test_labels"):
                name = str(data_cfg.get(name_key) or "")
                path = next((p for p in (root / name, root / f"{name}.gz") if p.is_file()), root / name)
                out.append((f"data.{key}", str(path), path, False))
        elif data_cfg.get("name") == "cifar10":  # its six binary batches
            from dlcli.data.images import CIFAR10_DIR, CIFAR10_FILES

            folder = root / CIFAR10_DIR if (root / CIFAR10_DIR).is_dir() else root
            out += [(f"data.{key}", str(folder / n), folder / n, False) for n in CIFAR10_FILES]
        else:
            out.append((f"data.{key}", str(data_cfg[key]), root, True))
    return out


def fingerprint(data_cfg: dict) -> dict[str, dict[str, Any]]:
    """File or folder (as the config names it) -> {key, bytes, sha256} (folders: also files, sampled)."""
    return {shown: _folder(path, key) if folder else _file(path, key)
            for key, shown, path, folder in data_files(data_cfg)}


def _file(path: Path, key: str) -> dict[str, Any]:
    if not path.is_file():
        return {"key": key, "missing": True}
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(CHUNK):
            digest.update(chunk)
    return {"key": key, "bytes": path.stat().st_size, "sha256": digest.hexdigest(), "absolute": str(path.absolute())}


def _folder(root: Path, key: str) -> dict[str, Any]:
    if not root.is_dir():
        return {"key": key, "missing": True}
    files = sorted((p.relative_to(root).as_posix(), p) for p in root.rglob("*")
                   if p.is_file() and not any(part.startswith(".") for part in p.relative_to(root).parts))
    sizes = [p.stat().st_size for _, p in files]
    total = sum(sizes)
    sampled = total > FULL_HASH_BYTES and len(files) > SAMPLE_FILES
    hashed = set(range(len(files))) if not sampled else \
        {round(i * (len(files) - 1) / (SAMPLE_FILES - 1)) for i in range(SAMPLE_FILES)}
    digest = hashlib.sha256()
    for i, ((name, path), size) in enumerate(zip(files, sizes, strict=True)):
        digest.update(f"{name}\0{size}\0".encode())
        if i in hashed:
            digest.update(_file(path, key).get("sha256", "").encode())
    return {"key": key, "files": len(files), "bytes": total, "sha256": digest.hexdigest(), "sampled": sampled,
            "absolute": str(root.absolute())}


def _counterpart(shown: str, entry: dict, now: dict[str, dict]) -> tuple[str, dict] | None:
    """The entry of ``now`` for the same data: the same path, else the same key and file name (a moved file)."""
    if shown in now:
        return shown, now[shown]
    same = [(s, e) for s, e in now.items() if e.get("key") == entry.get("key") and Path(s).name == Path(shown).name]
    same = same or [(s, e) for s, e in now.items() if e.get("key") == entry.get("key")]
    return same[0] if len(same) == 1 else None


def compare(saved: dict[str, dict], now: dict[str, dict], shared_only: bool = False) -> list[str]:
    """The files and folders of ``saved`` whose content is not the same ``now`` (or that are gone).

    ``shared_only``: only those ``now`` names by the same path (other data is not a change).
    """
    changed = []
    for shown, entry in saved.items():
        if shared_only and shown not in now:
            continue
        match = _counterpart(shown, entry, now)
        if match is None or any(match[1].get(k) != entry.get(k) for k in ("sha256", "bytes", "files")):
            changed.append(shown)
    return changed


def _describe(shown: str, entry: dict, now: dict[str, dict]) -> str:
    match = _counterpart(shown, entry, now)
    name = f"'{shown}' ({entry.get('key')})"
    if match is None:
        return f"{name} is not among the data named now ({', '.join(map(repr, now)) or 'none'})"
    if match[1].get("missing"):
        was = entry.get("absolute")
        if was and not Path(shown).expanduser().is_absolute() and Path(was).exists():
            return (f"{name} is not in this folder ({Path.cwd()}): a relative path is read from the folder a command "
                    f"runs in, and the run read it as {was}. Run from {Path(was).parent}, or give the file: "
                    f"{entry.get('key')}={was}")
        return f"{name} is gone"
    where = f" (now '{match[0]}')" if match[0] != shown else ""

    def state(e: dict) -> str:
        files = f"{e['files']} files, " if "files" in e else ""
        return f"{files}{e.get('bytes')} bytes, sha256 {str(e.get('sha256'))[:12]}"

    return f"{name}{where} has other content ({state(entry)} then; {state(match[1])} now)"


def check(saved_pre: dict[str, Any], data_cfg: dict, allow: bool, what: str, shared_only: bool = False,
          now: dict[str, dict] | None = None, flag: str = ALLOW_FLAG) -> bool:
    """True when the data files ``saved_pre`` recorded are unchanged (or it recorded none).

    Changed: a DataError naming each changed file, or, when ``allow``, a warning and False.
    """
    saved = saved_pre.get("data_fingerprint")
    if not saved:
        return True  # a run from before fingerprints were recorded: nothing to compare with
    now = fingerprint(data_cfg) if now is None else now
    changed = compare(saved, now, shared_only)
    if not changed:
        return True
    details = "; ".join(_describe(s, saved[s], now) for s in changed)
    if allow:
        warnings.warn(f"the data of {what} has changed since: {details}. Going on, as {flag} asks: its splits "
                      "rebuilt from this data may not be the ones it was trained and tested on", stacklevel=2)
        return False
    raise DataError(f"the data of {what} has changed since: {details}. Its splits rebuilt from "
                    "this data would not be the ones it was trained and tested on (rows it trained on could be "
                    f"scored as test rows). Give the original data, or {flag} to go on anyway")
