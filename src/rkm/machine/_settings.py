"""How the model's settings and state reach the network or trainer that holds them: two descriptors.

:class:`Setting` reads a setting of :mod:`rkm.hyperparams` where it is held and checks an
assignment with the table's check and then the rules between settings (the model's
``check_change``: ``min_W < max_W``, finite physics, memory), so no assignment can leave a
model that the constructor would refuse; :class:`Attribute` forwards a plain attribute (state,
not a setting), through a check where one is given. :class:`rkm.machine.RBM` declares its
attributes with them.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from .. import hyperparams


class Setting:
    """A setting held by the model's network or trainer: read there, checked when assigned."""

    def __init__(self, setting: hyperparams.Setting, attribute: str | None = None) -> None:
        self.setting, self.attribute = setting, attribute or setting.name
        self.__doc__ = setting.help

    def __get__(self, model: Any, cls: type | None = None) -> Any:
        if model is None:
            return self
        return getattr(getattr(model, self.setting.owner), self.attribute)

    def __set__(self, model: Any, value: Any) -> None:
        if not self.setting.mutable:
            raise AttributeError(f"{self.setting.name} is fixed at construction"
                                 + ("; use model.to(...)" if self.setting.name in ("mytype", "device") else "") + ".")
        value = self.setting.validate(value)
        model.check_change(self.setting.name, value)
        setattr(getattr(model, self.setting.owner), self.attribute, value)


class Attribute:
    """A plain attribute of the model's network or trainer (state, not a setting)."""

    def __init__(self, owner: str, name: str, doc: str, check: Callable[[str, Any, Any], Any] | None = None) -> None:
        self.owner, self.name, self.__doc__, self.check = owner, name, doc, check

    def __get__(self, model: Any, cls: type | None = None) -> Any:
        return self if model is None else getattr(getattr(model, self.owner), self.name)

    def __set__(self, model: Any, value: Any) -> None:
        held = getattr(model, self.owner)
        if self.check is not None:
            value = self.check(self.name, value, getattr(held, self.name))
        setattr(held, self.name, value)
