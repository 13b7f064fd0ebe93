"""Errors a user can fix. The CLI prints their message and exits with code 2, no traceback."""

from __future__ import annotations


class DlcliError(Exception):
    """Bad input: the message names the key, file or value and suggests the fix."""

    exit_code = 2


class DataError(DlcliError):
    """A data file is missing, unreadable or malformed."""
