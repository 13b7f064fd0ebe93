"""Where a run came from: the command, the git state of the working directory, the installed packages, CUDA,
and the data's fingerprint. Recorded once, when a run starts, as summary.json's ``provenance`` and the files
under ``<run>/provenance/``; read back by ``dlcli runs diff``.

Provenance never fails a run: what cannot be found (no git binary, not a repository, a timeout) is recorded
as null. It costs little: three short git calls and one pass over the installed distributions' metadata.
"""

from __future__ import annotations

import functools
import hashlib
import os
import subprocess
import sys
from importlib import metadata
from pathlib import Path
from typing import Any

from dlcli.runs import folder

DIR = "provenance"  # <run>/provenance/: the files too long for summary.json
REQUIREMENTS = "requirements.txt"
DIFF = "diff.patch"
GIT_TIMEOUT_S = 5.0  # a git on a slow network file system must not hold up the run for long


def _git(cwd: Path, *args: str) -> str | None:
    """git's stdout (stripped of the last newline), or None when git is missing, fails or times out."""
    try:
        done = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, errors="replace",
                              timeout=GIT_TIMEOUT_S, check=False)
    except (OSError, subprocess.SubprocessError):  # no git binary, cwd gone, timeout
        return None
    return done.stdout.removesuffix("\n") if done.returncode == 0 else None


def git_state(cwd: Path | None = None) -> tuple[dict[str, Any] | None, str | None]:
    """({commit, branch, dirty}, the uncommitted diff of tracked files or None) for the repository holding
    ``cwd``; (None, None) outside any repository or without git."""
    cwd = Path.cwd() if cwd is None else cwd
    # one call for the commit, the branch and the changed tracked files (each git call from a process holding
    # torch costs a fork); tracked files only, like the diff saved beside: a scratch file does not make it dirty
    status = _git(cwd, "status", "--porcelain=v2", "--branch", "--untracked-files=no")
    if status is None:  # not in a repository, or no git
        return None, None
    heads = dict(line[2:].split(" ", 1) for line in status.splitlines() if line.startswith("# ") and " " in line[2:])
    oid, head = heads.get("branch.oid"), heads.get("branch.head")
    commit = None if oid in (None, "(initial)") else oid  # a repository with no commit yet
    branch = "HEAD" if head in (None, "(detached)") else head
    dirty = any(not line.startswith("#") for line in status.splitlines())
    diff = _git(cwd, "diff", "HEAD") if commit and dirty else None
    return {"commit": commit, "branch": None if branch == "HEAD" else branch, "dirty": dirty}, diff


def requirements() -> str:
    """The installed distributions as ``name==version`` lines, sorted case-insensitively (pip freeze's shape).

    Read once per process and set of metadata folders (~0.02 s for ~120 packages): a process that trains many
    runs (a notebook, the tests, a sweep's warm parent and the trials it forks) pays it once."""
    return _requirements(_metadata_folders())


def _metadata_folders() -> tuple[str, ...]:
    """The search path's folders that hold installed distributions' metadata, in order: all that decides the
    list (a folder put on sys.path for a plugin or the working directory changes nothing unless it holds
    some)."""
    found = []
    for entry in sys.path:
        try:
            with os.scandir(entry or ".") as listing:
                if any(e.name.endswith((".dist-info", ".egg-info")) for e in listing):
                    found.append(os.path.abspath(entry or "."))
        except NotADirectoryError:  # a zip archive: kept in the key as it is
            found.append(os.path.abspath(entry))
        except OSError:  # a folder that does not exist: nothing there
            continue
    return tuple(found)


@functools.lru_cache(maxsize=4)
def _requirements(search_path: tuple[str, ...]) -> str:
    seen: dict[str, str] = {}
    for dist in metadata.distributions():
        name, version = name_and_version(dist)
        if name and name.lower() not in seen:  # the first on sys.path wins, as for import
            seen[name.lower()] = f"{name}=={version}"
    return "".join(line + "\n" for _, line in sorted(seen.items()))


def name_and_version(dist: metadata.Distribution) -> tuple[str | None, str | None]:
    """A distribution's ``Name`` and ``Version``, read from the head of its metadata file.

    The same values as ``dist.metadata["Name"]`` and ``dist.version``, which parse the whole file (a long
    description included) with the email parser, once each: ten times slower over all the installed
    distributions. The core metadata fields come first, before the first blank line."""
    text = dist.read_text("METADATA") or dist.read_text("PKG-INFO") or ""
    name = version = None
    for line in text.splitlines():
        if not line.strip():  # the end of the headers; the description follows
            break
        key, _, value = line.partition(":")
        if key == "Name" and name is None:
            name = value.strip()
        elif key == "Version" and version is None:
            version = value.strip()
        if name is not None and version is not None:
            break
    return name, version


def cuda() -> dict[str, Any] | None:
    """torch's CUDA and cuDNN versions and the GPU names, or None without a usable GPU."""
    import torch

    if not torch.cuda.is_available():
        return None
    return {"version": torch.version.cuda, "cudnn": torch.backends.cudnn.version(),
            "devices": [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())]}


def record(run_dir: Path, data_fingerprint: dict | None) -> dict[str, Any]:
    """Write ``<run>/provenance/`` (requirements.txt; diff.patch when the code is dirty) and return the mapping
    kept in summary.json. Paths in it are relative to the run folder."""
    out = run_dir / DIR
    out.mkdir(exist_ok=True)
    git, diff = git_state()
    if git is not None and diff is not None:
        folder.atomic_write_text(out / DIFF, diff + "\n")
        git["diff"] = f"{DIR}/{DIFF}"
    packages = requirements()
    folder.atomic_write_text(out / REQUIREMENTS, packages)
    return {"command": list(sys.argv), "git": git, "packages": f"{DIR}/{REQUIREMENTS}",
            "packages_sha256": hashlib.sha256(packages.encode()).hexdigest(), "cuda": cuda(),
            # the same record as preprocessing.json's data_fingerprint (hashed once, when the data was read)
            "data_fingerprint": data_fingerprint}


def read_requirements(run_dir: Path) -> dict[str, str] | None:
    """name (lower case) -> version from a run's provenance/requirements.txt; None when it has none."""
    path = run_dir / DIR / REQUIREMENTS
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return None
    found: dict[str, str] = {}
    for line in text.splitlines():
        name, sep, version = line.strip().partition("==")
        if sep:
            found[name.lower()] = version
    return found


def differences(run_dir: Path, summary: dict[str, Any], limit: int = 5) -> list[str]:
    """How the code and packages here differ from those a run recorded, one line each (empty: the same, or
    the run recorded nothing to compare). For ``resume`` and ``eval``, which warn with them: a run resumed or
    evaluated under other code may not behave as it did."""
    recorded = summary.get("provenance")
    if not isinstance(recorded, dict):
        return []
    out = []
    then = recorded.get("git") if isinstance(recorded.get("git"), dict) else None
    now, _ = git_state()
    if then is not None and now is not None and then.get("commit"):
        if then.get("commit") != now.get("commit"):
            out.append(f"the code is at commit {str(now.get('commit'))[:10]}, the run was trained at "
                       f"{str(then['commit'])[:10]}")
        if now.get("dirty"):
            saved = f" (its own changes: {run_dir / then['diff']})" if then.get("dirty") and then.get("diff") else ""
            out.append(f"the code here has uncommitted changes{saved}")
        elif then.get("dirty"):
            out.append(f"the run was trained with uncommitted changes ({run_dir / str(then.get('diff'))}) that "
                       "the code here does not have")
    before = read_requirements(run_dir)
    if before is not None:
        here = {line.split("==", 1)[0].lower(): line.split("==", 1)[1] for line in requirements().splitlines()}
        changed = sorted(name for name in set(before) | set(here) if before.get(name) != here.get(name))
        shown = [f"{name} {before.get(name, '(none)')} -> {here.get(name, '(none)')}" for name in changed[:limit]]
        if changed:
            more = f" and {len(changed) - limit} more" if len(changed) > limit else ""
            several = len(changed) != 1
            out.append(f"{len(changed)} installed package{'s' * several} differ{'' if several else 's'}: "
                       f"{', '.join(shown)}"
                       f"{more} (`dlcli runs diff` compares two runs')")
    return out


def warn_if_changed(run_dir: Path, summary: dict[str, Any], console: Any, doing: str) -> None:
    """Print :func:`differences` as a warning on ``console`` (stderr), naming what is being done (resume, eval)."""
    lines = differences(run_dir, summary)
    if lines:
        console.print(f"warning: {doing} run {run_dir.name} under other code than it was trained with:",
                      markup=False, highlight=False, soft_wrap=True)
        for line in lines:
            console.print(f"  {line}", markup=False, highlight=False, soft_wrap=True)
