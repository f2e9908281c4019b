"""User-facing errors.

Every error a user can cause (bad config, missing or corrupt file, mismatched
checkpoint) is raised as a :class:`DUCError` subclass whose message is one line
naming the file or key and the problem. ``train.py``, ``test.py`` and the tools
print it as ``error: <message>`` and exit with status 2; anything else is a bug
and keeps its traceback.
"""


class DUCError(Exception):
    """Base class of all user-facing errors (one-line message)."""


class ConfigError(DUCError):
    """A config file, key or value is invalid."""


class DataError(DUCError):
    """A dataset file, list line or sample is missing or invalid."""


class CheckpointError(DUCError):
    """A checkpoint is missing, corrupt or does not match the network."""


class EvaluationError(DUCError):
    """Predictions and ground truth cannot be matched or compared."""


class OutputError(DUCError):
    """An output folder or file cannot be created or written."""
