"""User-facing errors. The CLI prints the message of a :class:`BaldroError` as one line and exits with status 2."""

from __future__ import annotations


class BaldroError(Exception):
    """An error caused by the user's input (a file, a config, a flag), with a message that says how to fix it."""


class DataError(BaldroError):
    """A dataset file or split is missing or malformed. The message names the file, the row and the field."""


class ConfigError(BaldroError):
    """A config file or ``--set`` override is invalid."""
