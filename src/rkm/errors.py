"""Typed exceptions raised by rkm.

Every error the library raises on bad input derives from :class:`RKMError`, and
also from the built-in class a caller would expect (``ValueError``,
``FileNotFoundError``...), so both ``except rkm.RKMError`` and the usual
built-in handlers work. Messages say what was wrong and what to do.
"""

from __future__ import annotations

__all__ = ["RKMError", "ConfigError", "DataError", "DatasetNotFoundError", "CheckpointError", "NgspiceNotFoundError",
    "SimulationError", "RunInUseError", "StorageError"]


class RKMError(Exception):
    """Base class of every error rkm raises on purpose.

    Parameters
    ----------
    message : str
        What was wrong and what to do, in the words of the Python API (``conductance_range=``).
    names : iterable of str, keyword-only
        The settings or arguments the message names, spelled as Python spells them (``name`` or
        ``name=value``): an interface that spells them otherwise (the ``rkm`` command names its
        flags, ``--conductance-range``) rewrites exactly these (``rkm.app`` does).
    """

    def __init__(self, *args: object, names: tuple[str, ...] = ()) -> None:
        super().__init__(*args)
        self.names = tuple(names)

    def __reduce__(self) -> tuple:
        # keep the names when an error crosses processes (a Dask worker's error)
        return _rebuild, (type(self), self.args, self.names)


def _rebuild(cls: type[RKMError], args: tuple, names: tuple[str, ...]) -> RKMError:
    return cls(*args, names=names)


class ConfigError(RKMError, ValueError):
    """A constructor argument, option or configuration key is invalid."""


class DataError(RKMError, ValueError):
    """Input data has the wrong shape, values or type."""


class DatasetNotFoundError(RKMError, FileNotFoundError):
    """A dataset file or directory does not exist."""


class CheckpointError(RKMError, ValueError):
    """A save point is missing, truncated, corrupted or unsafe to load."""


class NgspiceNotFoundError(RKMError, FileNotFoundError):
    """The ngspice circuit simulator is not installed (or not where it was said to be)."""


class SimulationError(RKMError, RuntimeError):
    """An external circuit simulator failed on a deck; the message carries its own words."""


class RunInUseError(ConfigError):
    """A run folder is locked by another process (an ``rkm train`` that is still running)."""


class StorageError(RKMError, OSError):
    """A file could not be written (disk full, read-only file system, quota); ``errno`` says why."""
