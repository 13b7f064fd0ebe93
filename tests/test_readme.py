"""The README stays true: its Quick start is what CI runs, and it names every group and option."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
pytestmark = pytest.mark.skipif(not README.is_file(), reason="needs a checkout (README.md)")


def quick_start() -> list[str]:
    section = README.read_text().split("## Quick start", 1)[1].split("\n## ", 1)[0]
    block = re.search(r"```bash\n(.*?)```", section, re.S).group(1)
    return [line for line in block.splitlines() if line.strip()]


def test_quick_start_is_two_commands_and_ci_runs_the_second():
    install_and_train, install_and_test = quick_start()
    assert install_and_train.endswith("dlcli train")
    assert install_and_test in (ROOT / ".ci" / "run").read_text()


def test_readme_names_every_config_group_and_option():
    text = README.read_text()
    for group in sorted(p for p in (ROOT / "conf").iterdir() if p.is_dir()):
        assert f"`{group.name}`" in text, f"README misses config group {group.name}"
        for option in group.glob("*.yaml"):
            assert f"`{option.stem}`" in text, f"README misses {group.name}={option.stem}"


def test_readme_names_every_command():
    from typer.main import get_command

    from dlcli.cli import app

    text = README.read_text()
    cli = get_command(app)
    for name, cmd in cli.commands.items():
        subs = getattr(cmd, "commands", None)
        for full in ([f"dlcli {name} {s}" for s in subs] if subs else [f"dlcli {name}"]):
            assert full in text, f"README misses `{full}`"
