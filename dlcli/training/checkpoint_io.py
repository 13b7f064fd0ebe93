"""Checkpoint files: written atomically, read with ``weights_only=True``.

A checkpoint is written to a temporary file beside its target, flushed and fsynced, then renamed over it:
a kill at any moment leaves either the previous whole file or the new whole file, never a torn one.
Loading never unpickles code: dlcli's checkpoints hold only tensors and plain data.
"""

from __future__ import annotations

import os
import pickle
import tempfile
import zipfile
from pathlib import Path
from typing import Any

from lightning_fabric.plugins.io.torch_io import TorchCheckpointIO

from dlcli.errors import DlcliError


def save_atomic(checkpoint: dict[str, Any], path: str | Path) -> None:
    """torch.save ``checkpoint`` to ``path`` through a temporary file in the same folder: write, fsync, rename."""
    import torch

    from dlcli.runs.folder import no_space_named

    path = Path(path)
    with no_space_named(path):
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        try:
            with os.fdopen(fd, "wb") as f:
                torch.save(checkpoint, f)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, path)  # atomic: readers see the old file or the new one
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
    _fsync_dir(path.parent)  # make the rename itself survive a power cut


def _fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:  # e.g. a platform that cannot open folders
        return
    try:
        os.fsync(fd)
    except OSError:
        pass  # some file systems refuse fsync on a folder; the rename is still atomic
    finally:
        os.close(fd)


def load_checkpoint(path: str | Path, map_location: Any = "cpu", key: str | None = None,
                    mmap: bool = False) -> dict[str, Any]:
    """``torch.load(path, weights_only=True)``: tensors and plain data only; a file that would build any
    other Python object (and so could run code) is refused before anything in it runs.

    ``key`` names what the user gave (e.g. ``model.pretrained``) in the error messages. ``mmap``: the
    tensors stay in the file until used (big weight files), where its format allows it (torch.save's
    zip format; older files are read whole).
    """
    import torch

    what = f"{key}: {path}" if key else f"checkpoint {path}"
    try:
        if mmap and zipfile.is_zipfile(path):
            return torch.load(path, map_location=map_location, weights_only=True, mmap=True)
        return torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as e:
        raise DlcliError(
            f"{what} was refused: it holds more than tensors and plain data ({unsafe_reason(e)}), and "
            "loading it could run code, so nothing in it was loaded. Use a checkpoint written by dlcli (a run "
            "folder's checkpoints/best.ckpt) or a plain state_dict of tensors, from a source you trust") from None
    except (OSError, EOFError, KeyError, ValueError, RuntimeError) as e:
        raise DlcliError(f"{what}: cannot read it as a PyTorch checkpoint ({type(e).__name__}: "
                         f"{str(e).splitlines()[0] if str(e) else 'no detail'}): is it truncated, or another "
                         "kind of file? Give a .ckpt or .pt file saved with torch.save") from None


def unsafe_reason(error: Exception) -> str:
    """What a weights-only load met, from torch's message: e.g. 'unsupported GLOBAL posix.system'.

    (torch's first line suggests loading with weights_only=False: dlcli never does, so it is not shown.)
    """
    import re

    m = re.search(r"(Unsupported global: GLOBAL \S+|unsupported GLOBAL \S+|Unsupported operand \d+)", str(error))
    return m.group(1) if m else "objects a weights-only load does not build"


def remove_partial(folder: str | Path) -> list[Path]:
    """Delete the temporary files of checkpoint writes that a killed run left in ``folder``."""
    removed = []
    for tmp in Path(folder).glob(".*.ckpt.*.tmp"):
        tmp.unlink(missing_ok=True)
        removed.append(tmp)
    return removed


class AtomicCheckpointIO(TorchCheckpointIO):
    """Lightning's checkpoint I/O with atomic, fsynced writes and ``weights_only=True`` loads."""

    def save_checkpoint(self, checkpoint: dict[str, Any], path, storage_options: Any = None) -> None:
        if storage_options is not None:
            raise TypeError("storage_options are not supported by dlcli's checkpoint I/O")
        save_atomic(checkpoint, path)

    def load_checkpoint(self, path, map_location: Any = None, weights_only: bool | None = None) -> dict[str, Any]:
        if not Path(path).is_file():
            raise FileNotFoundError(f"checkpoint file not found: {path}")
        return moved_here(load_checkpoint(path, map_location if map_location is not None else "cpu"), path)


def moved_here(checkpoint: dict[str, Any], path: str | Path) -> dict[str, Any]:
    """The checkpoint's saved checkpoint folder (and the paths in it) made the folder it is read from.

    A ModelCheckpoint saves absolute paths (its ``dirpath``, the best checkpoint's path). In a run folder that
    was moved or copied, they name the old place: Lightning then keeps only ``best_model_path`` -- the old
    file, or a missing one -- and forgets the best score, so the resumed run tests the wrong weights and
    writes a stray ``best-v1.ckpt``. Rewritten to the checkpoint's own folder, nothing depends on where the
    run folder lies.
    """
    here = str(Path(path).resolve().parent)
    for state in (checkpoint.get("callbacks") or {}).values():
        old = state.get("dirpath") if isinstance(state, dict) else None
        if not isinstance(old, str) or old == here:
            continue

        def moved(value: Any, old: str = old) -> Any:
            if isinstance(value, str) and (value == old or value.startswith(old + os.sep)):
                return here + value[len(old):]
            return value

        for key, value in list(state.items()):
            state[key] = {moved(k): v for k, v in value.items()} if key == "best_k_models" and isinstance(
                value, dict) else moved(value)
    return checkpoint
