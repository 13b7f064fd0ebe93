"""Errors a user can fix. The CLI prints their message and exits with code 2, no traceback."""

from __future__ import annotations


class DlcliError(Exception):
    """Bad input: the message names the key, file or value and suggests the fix."""

    exit_code = 2

    def __init__(self, *args: object) -> None:
        if len(args) == 1 and isinstance(args[0], str):
            args = (_from_worker(args[0], type(self)),)
        super().__init__(*args)


def _from_worker(message: str, kind: type) -> str:
    """The message itself, when ``message`` is how torch's DataLoader re-raises an error from a worker process
    ("Caught DataError in DataLoader worker process 0.", then the worker's whole traceback, ending in the
    error's type and message): the user sees the message, not the traceback."""
    if not (message.startswith("Caught ") and "in DataLoader worker process" in message.split("\n", 1)[0]):
        return message
    last = f"\n{kind.__module__}.{kind.__qualname__}: "
    at = message.rfind(last)
    return message[at + len(last):].rstrip("\n") if at >= 0 else message


class DataError(DlcliError):
    """A data file is missing, unreadable or malformed."""
