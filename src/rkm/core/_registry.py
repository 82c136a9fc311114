"""Registries of the variation points: comparators, negative phases, optimisers.

A :class:`Registry` maps a setting's value (``sampling``, ``train_algo``, ``optimizer``) to the
class that implements it; ``@REGISTRY.register`` adds a class under its ``name``. A
:class:`Component` is the base of the classes with state a save point keeps.
"""

from __future__ import annotations

from typing import ClassVar, Generic, TypeVar

import torch

T = TypeVar("T", bound=type)


class Registry(dict[str, T], Generic[T]):
    """Classes by name; ``what`` names them in messages."""

    def __init__(self, what: str) -> None:
        super().__init__()
        self.what = what

    def register(self, cls: T) -> T:
        """Class decorator: make ``cls`` available under ``cls.name``."""
        name = getattr(cls, "name", "")
        if not name:
            raise TypeError(f"{cls.__name__} needs a class attribute `name` to be registered as a {self.what}.")
        self[name] = cls
        return cls


class Component:
    """A registered piece with state of its own (none here): a name, its state's tensors, a move."""

    name: ClassVar[str] = ""

    def state_dict(self) -> dict[str, torch.Tensor]:
        """The tensors a save point keeps."""
        return {}

    def load_state_dict(self, tensors: dict[str, torch.Tensor]) -> None:
        """Restore :meth:`state_dict` (tensors of other components are ignored)."""

    def to(self, device: torch.device, dtype: torch.dtype) -> None:
        """Move the state to ``device`` / ``dtype``."""
