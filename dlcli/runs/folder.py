"""Create run folders and write their files atomically (temp file, fsync, rename)."""

from __future__ import annotations

import errno
import json
import os
import re
import secrets
import socket
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from dlcli.errors import DlcliError

SUMMARY = "summary.json"
CONFIG = "config.yaml"
CONFIG_JSON = "config.json"  # the same config as JSON: `runs ls/compare` read 1,000 of these in a blink
OVERRIDES = "overrides.yaml"
METRICS = "metrics.csv"
PREPROCESSING = "preprocessing.json"
CHECKPOINTS = "checkpoints"
LAST_CKPT = "last.ckpt"

MARKER = ".dlcli-run"  # written the moment dlcli makes a run folder: `runs rm` deletes only folders that have it
LOCK = ".lock"  # held (flock) by the one process that trains, resumes or deletes the run

HEARTBEAT_S = 30.0  # a live run refreshes summary.json's heartbeat at least this often (and every epoch)
STALE_S = 600.0  # a running run whose heartbeat is older than this is taken for dead


def slug(name: str) -> str:
    """A run name as it appears in folder names: letters, digits, ``_``, ``.`` and ``-``; at most 100 of them
    (validation refuses longer names; this bound keeps any other caller's folder name within 255 bytes)."""
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", name)[:100].strip("._") or "run"


def new_run_dir(output_dir: str | Path, name: str, suffix: str | None = None) -> Path:
    """A fresh folder ``<output_dir>/<YYYYmmdd-HHMMSS>-<name>-<4 hex>``, created exclusively.

    ``mkdir`` without ``exist_ok`` fails if the folder exists, so two runs started in the
    same second (even in two processes) can never share one: the loser draws again. ``suffix``
    replaces the random 4 hex digits (a multi-process job's key, which its other processes look for).
    """
    root = Path(output_dir).expanduser()
    root.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    for attempt in range(100):
        if suffix and attempt:
            raise RuntimeError(f"run folder {root}/{stamp}-{slug(name)}-{suffix} exists already")
        path = root / f"{stamp}-{slug(name)}-{suffix or secrets.token_hex(2)}"
        try:
            path.mkdir()
        except FileExistsError:
            continue
        (path / MARKER).write_text("a run folder made by dlcli\n", encoding="utf-8")
        return path.resolve()
    raise RuntimeError(f"could not create a new run folder under {root}")


def made_by_dlcli(run_dir: str | Path) -> bool:
    """Whether dlcli made this folder: it holds the marker, or it is a run from before markers (its
    summary.json's run_id is the folder's own name)."""
    run_dir = Path(run_dir)
    if (run_dir / MARKER).is_file():
        return True
    try:
        summary = read_json(run_dir / SUMMARY)
    except (OSError, ValueError):
        return False
    return isinstance(summary, dict) and summary.get("run_id") == run_dir.name


def check_writable(output_dir: str | Path) -> Path:
    """Make sure run folders can be created under ``output_dir``, before any work; creates nothing.

    The folder, or its nearest existing parent when it is still to be made, is probed by writing one byte to
    a temporary file there (and removing it): a full disk or a read-only mount fails here, not after the data
    was read. Raises DlcliError naming the folder.
    """
    from dlcli.errors import DlcliError

    root = Path(output_dir).expanduser().absolute()
    existing = next(p for p in (root, *root.parents) if p.exists() or p == p.parent)
    try:
        if not existing.is_dir():
            raise NotADirectoryError(0, f"{existing} is a file, not a folder")
        if existing == root or os.access(existing, os.W_OK | os.X_OK):  # a real write tells what access cannot
            fd, probe = tempfile.mkstemp(dir=existing, prefix=".dlcli-write-check-")
            try:  # a real byte, synced: a full disk still lets an empty file be made
                os.write(fd, b"\0")
                os.fsync(fd)
            finally:
                os.close(fd)
                os.unlink(probe)
        elif not os.access(existing, os.W_OK | os.X_OK):
            raise PermissionError(0, f"no permission to create folders in {existing}")
    except OSError as e:
        raise DlcliError(f"output_dir: cannot write run folders to {root} ({e.strerror or e}). Free some space "
                         "or fix its permissions, or choose another folder with output_dir=PATH") from None
    return root


def atomic_write_text(path: str | Path, text: str) -> None:
    """Write ``text`` so that ``path`` is either the old file or the whole new one."""
    path = Path(path)
    with no_space_named(path):
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        try:
            os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600; give the file the usual permissions
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                f.write(text)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise


class NoSpace(DlcliError):
    """A write failed for lack of room (a full disk, or a quota): the message names the file."""


@contextmanager
def no_space_named(path: str | Path) -> Iterator[None]:
    """A full disk (ENOSPC, a quota's EDQUOT; torch's "unexpected pos" when its writer runs out) while writing
    ``path`` becomes a :class:`NoSpace` naming it, rather than a bare ``Errno 28``."""
    try:
        yield
    except OSError as e:
        if e.errno not in (errno.ENOSPC, errno.EDQUOT):
            raise
        raise NoSpace(f"cannot write {path}: no space left on its device ({e.strerror}). Free some space, or "
                      "choose output_dir=PATH on another disk") from None
    except RuntimeError as e:
        if "unexpected pos" not in str(e) and "No space left" not in str(e):
            raise
        raise NoSpace(f"cannot write {path}: no space left on its device. Free some space, or choose "
                      "output_dir=PATH on another disk") from None


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def write_json(path: str | Path, data: Any) -> None:
    atomic_write_text(path, json.dumps(data, indent=2, default=_plain) + "\n")


def write_yaml(path: str | Path, data: Any) -> None:
    from omegaconf import OmegaConf

    atomic_write_text(path, OmegaConf.to_yaml(OmegaConf.create(data)))


def write_csv(path: str | Path, rows: list[dict[str, Any]]) -> None:
    """Rows of dicts as CSV; the columns are the union of keys, in first-seen order."""
    columns: list[str] = []
    for row in rows:
        columns += [k for k in row if k not in columns]
    lines = [",".join(columns)]
    lines += [",".join("" if row.get(c) is None else _cell(row[c]) for c in columns) for row in rows]
    atomic_write_text(path, "\n".join(lines) + "\n")


def _cell(value: Any) -> str:
    return repr(value) if isinstance(value, float) else str(value)


def _plain(value: Any) -> Any:
    if hasattr(value, "item"):  # numpy / torch scalars
        return value.item()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"cannot write {type(value).__name__} to JSON")


def read_json(path: str | Path) -> Any:
    """A JSON file; ValueError for one that is not JSON, not UTF-8, or nested too deep to read."""
    try:
        return json.loads(Path(path).read_text(encoding="utf-8"))
    except RecursionError:
        raise ValueError("nested too deep") from None


# summary.json's keys that dlcli reads back, with the types they must have; a file written by hand or
# damaged otherwise is named, never a traceback (keys not listed here are only shown, never computed with)
_NUMBER = (int, float)
SUMMARY_TYPES: dict[str, tuple[type, ...]] = {
    "run_id": (str,), "name": (str,), "status": (str,), "kind": (str,), "task": (str, type(None)),
    "data": (str, type(None)), "model": (str, type(None)), "metrics": (dict,), "best": (dict, type(None)),
    "duration_s": (*_NUMBER, type(None)), "fit_duration_s": (*_NUMBER, type(None)), "epochs": (int,),
    "epoch_seconds": (list,), "pid": (int, type(None)), "hostname": (str, type(None)),
    "heartbeat": (str, type(None)), "started_at": (str,), "sweep": (str, type(None)), "plugins": (dict, list),
    "split_sizes": (dict,), "overrides": (list,), "seed": (int, type(None)), "num_params": (int, type(None)),
    "cv": (dict, type(None)),  # a cross-validation fold: id, fold, folds, repeat, repeats, strategy
}


class RunFileError(DlcliError, ValueError):
    """A run's file that cannot be used: its path and what is wrong, in the message (exit 2)."""


def read_run_json(path: str | Path) -> dict[str, Any]:
    """A run's JSON file that must hold a mapping (preprocessing.json, threshold.json, ...); RunFileError
    naming it when it is missing, unreadable or damaged."""
    try:
        data = read_json(path)
    except (OSError, ValueError) as e:
        raise RunFileError(f"{path} cannot be read ({getattr(e, 'strerror', None) or e})") from None
    if not isinstance(data, dict):
        raise RunFileError(f"{path} is damaged: it holds {type(data).__name__}, not a mapping of keys to values")
    return data


def read_summary(run_dir: str | Path) -> dict[str, Any]:
    """A run's summary.json, checked against :data:`SUMMARY_TYPES`; RunFileError naming the file and the
    problem for a missing, unreadable or damaged one."""
    path = Path(run_dir) / SUMMARY
    summary = read_run_json(path)
    for key, types in SUMMARY_TYPES.items():
        if key in summary and not isinstance(summary[key], types) or isinstance(summary.get(key), bool):
            raise RunFileError(f"{path} is damaged: '{key}' is {type(summary[key]).__name__}, expected "
                               f"{' or '.join(t.__name__ for t in types)}")
    bad = [k for k, v in summary.get("metrics", {}).items() if not isinstance(v, _NUMBER + (type(None),))]
    if bad:
        raise RunFileError(f"{path} is damaged: metric '{bad[0]}' is not a number")
    return summary


def resolve_run(ref: str, output_dir: str | Path, key: str = "RUN") -> Path:
    """A run folder from a path, a run id, an id prefix, or ``last`` (the training run that started last).

    Ids, prefixes and ``last`` look only at real run folders directly under ``output_dir``: a symlink there is
    never followed, and ``last`` skips lr-find results and folders without a readable summary.json. ``key``
    names what the user gave (e.g. ``model.pretrained``) in the error messages.
    """
    if not ref.strip() or ref.strip() in (".", ".."):
        raise FileNotFoundError(f"{key}={ref!r} names no run")
    path = Path(ref).expanduser()
    if path.is_dir() and ref != "last":
        return path.resolve()
    root = Path(output_dir).expanduser()
    runs = sorted(p for p in _entries(root) if not p.is_symlink() and (p / CONFIG).is_file())
    if ref == "last":
        started = [(t, p.name, p) for p in runs if (t := _training_start(p)) is not None]
        if not started:
            raise FileNotFoundError(f"{key}=last: no training runs under {root}")
        return max(started)[2].resolve()
    matches = [p for p in runs if p.name.startswith(ref)] or [p for p in runs if ref in p.name]
    if len(matches) > 1:
        raise FileNotFoundError(f"{key}='{ref}' matches {len(matches)} runs in {root}: "
                                f"{', '.join(m.name for m in matches[:5])}. Give more of the run id")
    if not matches:
        raise FileNotFoundError(f"{key}='{ref}': no such run folder, or run id under {root}")
    return matches[0].resolve()


def _entries(root: Path) -> list[Path]:
    try:
        return [Path(e.path) for e in os.scandir(root) if e.is_dir(follow_symlinks=False)]
    except (FileNotFoundError, NotADirectoryError, PermissionError):
        return []


def started_at(run_dir: str | Path) -> float | None:
    """When a run started, as seconds since the epoch (summary.json's started_at, else its run id's stamp)."""
    return _training_start(Path(run_dir))


def _training_start(run_dir: Path) -> float | None:
    """When a training run started (summary.json's started_at), or None for what is not one: an lr-find
    result, a folder without a readable summary.json (a crash before it was written)."""
    try:
        summary = read_json(run_dir / SUMMARY)
        if not isinstance(summary, dict) or summary.get("kind") == "lr_find":
            return None
    except (OSError, ValueError):
        return None
    try:
        return _parse_time(summary["started_at"])
    except (KeyError, TypeError, ValueError):  # no start time recorded: the one in the run id, else the oldest
        stamp = re.match(r"(\d{8}-\d{6})", str(summary.get("run_id", "")))
        return datetime.strptime(stamp.group(1), "%Y%m%d-%H%M%S").timestamp() if stamp else 0.0


def _parse_time(text: str) -> float:
    """An ISO 8601 time as written by :func:`now_iso` or ``%Y-%m-%dT%H:%M:%S%z``, as seconds since the epoch."""
    try:
        return datetime.fromisoformat(text).timestamp()
    except ValueError:
        return datetime.strptime(text, "%Y-%m-%dT%H:%M:%S%z").timestamp()


_held: dict[Path, int] = {}  # run folder -> the open lock file this process holds it by


class RunBusy(Exception):
    """Another process holds the run (trains, resumes or deletes it)."""


def claim(run_dir: str | Path) -> Path:
    """Hold the run for this process: an exclusive ``flock`` on ``<run>/.lock``, kept until :func:`release`
    or until the process ends, however it ends (the kernel drops the lock with the process: no stale lock,
    no PID guessing). Raises :class:`RunBusy` at once when another process holds it."""
    path = Path(run_dir).resolve()
    if path in _held:
        return path
    try:
        import fcntl
    except ImportError:  # no flock (Windows): liveness falls back to the pid and heartbeat in summary.json
        return path
    try:
        fd = os.open(path / LOCK, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as e:  # a read-only or vanished run folder: nothing can be done to it here
        raise DlcliError(f"cannot open {path / LOCK} ({e.strerror}): the run folder must be writable to train, "
                         "resume or delete it") from None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        os.close(fd)
        raise RunBusy(str(path)) from None
    _held[path] = fd
    return path


@contextmanager
def holding(run_dir: str | Path, busy: str) -> Iterator[Path]:
    """Hold the run for the block (:func:`claim`, then :func:`release`); DlcliError ``busy`` when another
    process holds it."""
    try:
        path = claim(run_dir)
    except RunBusy:
        raise DlcliError(busy) from None
    try:
        yield path
    finally:
        release(path)


def release(run_dir: str | Path) -> None:
    """Let go of a run this process holds (nothing if it holds none)."""
    fd = _held.pop(Path(run_dir).resolve(), None)
    if fd is not None:
        os.close(fd)  # closing the file drops its flock


def held() -> set[Path]:
    return set(_held)


def is_claimed(run_dir: str | Path) -> bool | None:
    """Whether some process holds the run now (this one included); None when the run has no lock file
    (a run from before locks, or one on a platform without flock): then only summary.json can tell."""
    path = Path(run_dir) / LOCK
    try:
        import fcntl

        fd = os.open(path, os.O_RDONLY)
    except (ImportError, OSError):
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except OSError:
        return True
    finally:
        os.close(fd)  # also drops the shared lock just taken
    return False


def owner() -> dict[str, Any]:
    """Who runs a run, for summary.json: this process's id and host, and a fresh heartbeat."""
    return {"pid": os.getpid(), "hostname": socket.gethostname(), "heartbeat": now_iso()}


def now_iso() -> str:
    """The current time, ISO 8601 with the UTC offset (readable, and parsed back by :func:`run_status`)."""
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def pid_alive(pid: int) -> bool:
    """Whether a process with this id exists on this machine."""
    try:
        os.kill(pid, 0)  # signal 0: no signal sent, only the existence check
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # it exists, owned by someone else
    return True


def run_status(run_dir: str | Path, stale_s: float = STALE_S) -> str:
    """The run's status from summary.json: ``running``, ``completed``, ``failed``, ``interrupted`` -- or ``dead``
    for a run marked running whose process is gone (same host) or whose heartbeat is older than ``stale_s``.

    ``unknown`` when there is no readable summary.json. Reads one small file; imports no torch.
    """
    try:
        summary = read_json(Path(run_dir) / SUMMARY)
    except (OSError, ValueError):
        return "unknown"
    return summary_status(summary, stale_s, run_dir)


def summary_status(summary: dict[str, Any], stale_s: float = STALE_S,
                   run_dir: str | Path | None = None) -> str:
    """:func:`run_status` from an already read summary.json (``runs ls`` reads each file once)."""
    status = summary.get("status", "unknown")
    if status != "running":
        return status
    if run_dir is not None and socket.gethostname() == summary.get("hostname"):
        claimed = is_claimed(run_dir)  # the lock tells for certain on this machine: its holder is alive
        if claimed is not None:
            return "running" if claimed else "dead"
    pid, host = summary.get("pid"), summary.get("hostname")
    if isinstance(pid, int) and host == socket.gethostname() and not pid_alive(pid):
        return "dead"
    try:
        beat = datetime.fromisoformat(summary["heartbeat"]).timestamp()
    except (KeyError, TypeError, ValueError):
        return "running"  # a run from before heartbeats: nothing tells
    return "dead" if time.time() - beat > stale_s else "running"
