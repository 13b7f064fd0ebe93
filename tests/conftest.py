"""Shared fixtures: every run writes under pytest's tmp_path, never into the repository."""

from __future__ import annotations

import pytest

from dlcli.config.compose import compose

# Settings that keep test runs short and quiet; a test adds its own overrides.
# One thread: the test machine's 2 cores are often shared, and spinning threads then slow torch down ~20x.
FAST = ["trainer.enable_progress_bar=false", "trainer.accelerator=cpu", "threads=1"]


@pytest.fixture(autouse=True, scope="session")
def one_thread():
    """Torch on one thread for the whole session: the test machine's 2 cores are often shared, and then
    spinning threads slow small models down 20-100x. (Training runs also say threads=1, in FAST.)"""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture
def out_dir(tmp_path):
    return tmp_path / "outputs"


@pytest.fixture
def make_config(out_dir):
    """compose(overrides) with the run folder under tmp_path."""

    def make(*overrides: str, config_dirs=()):
        return compose([f"output_dir={out_dir}", *FAST, *overrides], list(config_dirs))

    return make


@pytest.fixture(autouse=True)
def ctrl_c_handler_restored(request):
    """Every test starts with Python's own Ctrl-C handler; one that leaves another is named in a warning."""
    import signal
    import warnings

    yield
    if signal.getsignal(signal.SIGINT) is not signal.default_int_handler:
        warnings.warn(f"{request.node.nodeid} left SIGINT handled by {signal.getsignal(signal.SIGINT)!r}",
                      stacklevel=1)
        signal.signal(signal.SIGINT, signal.default_int_handler)
