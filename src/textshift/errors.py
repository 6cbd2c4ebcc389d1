"""textshift's exceptions.

Every error a user can cause subclasses :class:`TextshiftError` (a ``ValueError``) or
one of the standard exceptions it is closest to, and carries a one-line message that says
what was expected, what was found and how to fix it. The CLI turns them into that one line
and exit code 2; ``TEXTSHIFT_TRACEBACK=1`` shows the full traceback instead.
"""

from __future__ import annotations


class TextshiftError(ValueError):
    """Base class for errors caused by input: bad data, bad options, bad model folders."""


class DataError(TextshiftError):
    """A data file is missing, unreadable, empty or lacks the expected columns/values."""


class DataFileNotFoundError(DataError, FileNotFoundError):
    """A data file does not exist."""


class ModelError(TextshiftError):
    """A model folder is missing, incomplete, corrupted or not safe to load."""


class BackboneNotFoundError(ModelError):
    """A backbone name is neither a local folder nor a model available offline."""


class OutputExistsError(TextshiftError, FileExistsError):
    """An output path exists and textshift refuses to replace it."""


class OutputBusyError(TextshiftError):
    """Another process is writing the same output right now."""


class ConfigError(TextshiftError):
    """A setting is out of range or options conflict.

    ``setting`` names the settings-dataclass field that was refused, when one was (the command line adds the
    flag that sets it to the message).
    """

    def __init__(self, message: str = "", *, setting: str | None = None):
        super().__init__(message)
        self.setting = setting


class OutputNotWritableError(ConfigError, PermissionError):
    """Nothing can be created where an output goes (permissions, a read-only file system)."""


class ForeignOutputError(OutputExistsError):
    """An output path holds what textshift did not write (or is an input, or the current folder): refused even
    with ``overwrite``."""
