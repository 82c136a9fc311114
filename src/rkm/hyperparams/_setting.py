"""One row of the table of settings (:class:`Setting`) and its markers."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from ..core import _checks
from ..errors import ConfigError

__all__ = ["Setting", "NOT_IN_CONFIG"]

_SAME = object()
"""Marker: the configuration default is the constructor default."""
NOT_IN_CONFIG = object()
"""Marker: a constructor argument that is no configuration key (the name, sizes, tensors)."""


@dataclass(frozen=True)
class Setting:
    """One row of the table.

    Attributes
    ----------
    name : str
        Constructor argument and configuration key.
    section : {'model', 'data', 'run'}
        Table of a run configuration.
    kind : type
        ``int``, ``float``, ``bool`` or ``str``: how a configuration value given as text is read.
    default : object
        Constructor default (``model``), or configuration default (``data``, ``run``).
    help : str
        One line for ``--help`` and the docstrings.
    check : callable, optional
        ``check(name, value) -> value``: validates and normalises; raises ConfigError.
    owner : {'network', 'trainer', 'devices', 'model', ''}
        Which object of a model holds the setting (``model`` settings only; ``devices`` is
        ``model.network.devices``).
    positional : bool
        One of the seed constructor's 25 positional parameters.
    config : object
        Default in a run configuration where it differs from ``default``; :data:`NOT_IN_CONFIG`
        for constructor arguments that are no configuration key.
    choices : callable, optional
        The current choices, for help texts.
    flag : str, optional
        Command-line flag (default: the name with ``-`` for ``_``); ``''`` for none.
    mutable : bool
        Whether ``model.NAME = value`` may change it after construction.
    optional : bool
        The value may be unset (None).
    type_doc : str
        The constructor's type where it is not ``kind`` (for the docstrings).
    from_config : callable, optional
        Turns a parsed configuration value into the constructor's (``'auto'`` -> None).
    reader : callable, optional
        Reads a configuration value in place of the conversion by ``kind``.
    """

    name: str
    section: str
    kind: type
    default: Any
    help: str
    check: Callable[[str, Any], Any] | None = None
    owner: str = ""
    positional: bool = False
    config: Any = _SAME
    choices: Callable[[], Iterable[str]] | None = None
    flag: str | None = None
    mutable: bool = True
    optional: bool = False
    type_doc: str = ""
    from_config: Callable[[Any], Any] | None = None
    reader: Callable[[Any], Any] | None = None

    @property
    def config_default(self) -> Any:
        """Default of the configuration key."""
        return self.default if self.config is _SAME else self.config

    @property
    def differs(self) -> bool:
        """Whether a run configuration's default means another value than the constructor's default."""
        if self.config is _SAME or not self.in_config or self.name == "average_data":  # False means None there
            return False
        try:
            return self.constructor_value(self.config_default) != self.default
        except ConfigError:
            return True

    @property
    def default_text(self) -> str:
        """The constructor's default in words: ``'hopfield'``, ``'required'``, ``'CUDA when available'``."""
        words = {"model_name": "required", "n_visible": "required", "n_hidden": "required",
                 "device": "CUDA when available", "seed": "drawn at random"}
        if self.default is None and self.name in words:
            return words[self.name]
        if isinstance(self.default, bool):
            return "true" if self.default else "false"
        return "unset" if self.default is None else str(self.default).removeprefix("torch.")

    @property
    def in_config(self) -> bool:
        """Whether the setting is a configuration key."""
        return self.config is not NOT_IN_CONFIG

    @property
    def cli_flag(self) -> str:
        """The ``rkm train`` flag, without dashes ('' for none)."""
        return self.name.replace("_", "-") if self.flag is None else self.flag

    def validate(self, value: Any) -> Any:
        """``value`` checked and normalised for the constructor (None passes where optional)."""
        if value is None and self.optional:
            return None
        return value if self.check is None else self.check(self.name, value)

    def constructor_value(self, value: Any) -> Any:
        """A parsed configuration value as the constructor takes it, checked."""
        return self.validate(value if self.from_config is None else self.from_config(value))

    def parse(self, value: Any, where: str = "") -> Any:
        """A configuration value (TOML or text) as this setting's type, then checked."""
        label = f"{self.section}.{self.name}" + (f" in {where}" if where else "")
        if value is None or (self.optional and isinstance(value, str) and value.strip().lower() in ("", "none")):
            if self.optional:
                return None
            raise ConfigError(f"{label} must be set.", names=(self.name,))
        if self.reader is not None:
            return self.reader(value)
        if self.kind is bool:
            return _checks.boolean(label, value)
        try:
            if self.kind is int:
                if isinstance(value, bool) or (isinstance(value, float) and not value.is_integer()):
                    raise ValueError
                return int(value)
            if self.kind is float:
                if isinstance(value, bool):
                    raise ValueError
                return float(value)
        except (TypeError, ValueError):
            raise ConfigError(f"{label} must be a {self.kind.__name__}, got {value!r}.", names=(self.name,)) from None
        if not isinstance(value, (str, int, float)):
            raise ConfigError(f"{label} must be a {self.kind.__name__}, got {value!r}.", names=(self.name,))
        return str(value) if self.kind is str else value
