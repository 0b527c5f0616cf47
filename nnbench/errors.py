"""Errors a user can fix. The command line prints them as one line, no traceback."""


class NnbenchError(ValueError):
    """Base class: a problem with what the user asked for, with the fix in the message."""


class DataError(NnbenchError):
    """A data file is missing, truncated, corrupt or not what it claims to be."""


class ConfigError(NnbenchError):
    """An experiment file, an option or a flag is malformed."""
