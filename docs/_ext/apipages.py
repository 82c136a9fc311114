"""Sphinx extension: the API reference, one page per public module, written from ``__all__``.

A module is public when no part of its dotted name starts with an underscore; its ``__all__``
settles what it exports. Each exported name is documented in full once, on the page of the
module that owns it (the public module nearest to where it is defined); every other module
that re-exports it shows a short entry that links there, so ``rkm.RKM`` and
``rkm.machine.RKM`` both resolve and the docstring is rendered once. Classes built from rkm's
internal mixins (``RBM``, ``RKM``) list their inherited methods too: those are their API.

The pages are written into ``docs/api/`` when the build starts (the folder is generated and
ignored by git), so a new module or name appears without editing any page.
"""

from __future__ import annotations

import importlib
import inspect
import pkgutil
import types
from pathlib import Path
from typing import Any

PACKAGE = "rkm"
OUT = "api"
MANY_MEMBERS = 15


def _public(name: str) -> bool:
    return not any(part.startswith("_") for part in name.split("."))


def public_modules(package: str = PACKAGE) -> list[str]:
    """The dotted names of every public module of ``package``, parents before children."""
    root = importlib.import_module(package)
    names = [package]
    for info in pkgutil.walk_packages(root.__path__, prefix=package + "."):
        if _public(info.name):
            names.append(info.name)
    return sorted(names)


def exported(module: types.ModuleType) -> list[str]:
    """The names in a module's ``__all__``, in its order."""
    return list(getattr(module, "__all__", ()))


def _kind(obj: Any) -> str:
    if isinstance(obj, types.ModuleType):
        return "module"
    if inspect.isclass(obj):
        return "exception" if issubclass(obj, BaseException) else "class"
    if callable(obj):
        return "function"
    return "data"


def owners(modules: list[str]) -> dict[tuple[str, int], str]:
    """For each exported (name, object), the module whose page documents it in full."""
    exporters: dict[tuple[str, int], list[str]] = {}
    objects: dict[tuple[str, int], Any] = {}
    for modname in modules:
        module = importlib.import_module(modname)
        for name in exported(module):
            obj = getattr(module, name)
            key = (name, id(obj))
            exporters.setdefault(key, []).append(modname)
            objects[key] = obj
    home = {}
    for key, mods in exporters.items():
        obj = objects[key]
        defined = getattr(obj, "__module__", None) if _kind(obj) in ("class", "exception", "function") else None
        nearest = None
        if isinstance(defined, str):
            parts = defined.split(".")
            while parts and not _public(".".join(parts)):
                parts.pop()
            nearest = ".".join(parts)
        if PACKAGE in mods:
            home[key] = PACKAGE  # what users write: rkm.RKM, rkm.load_model, rkm.DataError
        else:
            home[key] = nearest if nearest in mods else max(mods, key=lambda m: (m.count("."), m))
    return home


def own_page(obj: Any) -> bool:
    """Whether a class is large enough for a page of its own (RBM, RKM, Network, ...)."""
    if _kind(obj) != "class":
        return False
    members = [n for n in dir(obj) if not n.startswith("_")]
    return len(members) > MANY_MEMBERS


def _title(text: str) -> str:
    return f"{text}\n{'=' * len(text)}\n"


def _private_bases(cls: type) -> bool:
    return any(_kind(base) == "class" and base.__module__.startswith(PACKAGE + ".") and not _public(base.__module__)
               for base in cls.__mro__[1:])


def _summary(obj: Any) -> str:
    if _kind(obj) == "data":
        return ""  # a constant's docstring is its type's
    doc = inspect.getdoc(obj) or ""
    return doc.strip().split("\n\n")[0].replace("\n", " ") if doc else ""


def module_page(modname: str, home: dict[tuple[str, int], str]) -> str:
    """The reStructuredText of one module's page."""
    module = importlib.import_module(modname)
    lines = [_title(modname), f".. automodule:: {modname}\n"]
    names = exported(module)
    submodules = [n for n in names if _kind(getattr(module, n)) == "module"]
    members = [n for n in names if n not in submodules]
    if submodules:
        lines.append(".. rubric:: Modules\n")
        lines += [f"* :mod:`{modname}.{n}`" for n in submodules]
        lines.append("")
    if not members:
        return "\n".join(lines) + "\n"
    lines.append(".. rubric:: Contents\n")
    lines.append(".. list-table::\n   :widths: 30 70\n")
    pages = []
    for name in members:
        obj = getattr(module, name)
        owner = home[(name, id(obj))]
        role = {"exception": "exc", "class": "class", "function": "func"}.get(_kind(obj), "data")
        lines.append(f"   * - :{role}:`~{owner}.{name}`\n     - {_summary(obj) if owner == modname else ''}".rstrip())
        if owner == modname and own_page(obj):
            pages.append(f"{modname}.{name}")
    lines.append("")
    if pages:
        lines.append(".. toctree::\n   :hidden:\n")
        lines += [f"   {page}" for page in pages]
        lines.append("")
    for name in members:
        obj = getattr(module, name)
        kind = _kind(obj)
        owner = home[(name, id(obj))]
        if owner != modname:
            role = {"exception": "exc", "class": "class", "function": "func"}.get(kind, "data")
            lines.append(f".. py:{kind}:: {name}\n   :module: {modname}\n   :no-index-entry:\n")
            lines.append(f"   Re-exported from :mod:`{owner}`: :{role}:`{owner}.{name}`.\n")
            continue
        if own_page(obj):
            continue
        directive = {"exception": "autoexception", "class": "autoclass", "function": "autofunction"}.get(kind, "autodata")
        lines.append(f".. {directive}:: {modname}.{name}")
        lines += _options(obj, kind)
    return "\n".join(lines) + "\n"


def _options(obj: Any, kind: str) -> list[str]:
    if kind in ("class", "exception"):
        options = ["   :members:", "   :undoc-members:", "   :show-inheritance:"]
        if _private_bases(obj):
            options.append("   :inherited-members:")
        return [*options, ""]
    return ["   :no-value:", ""] if kind == "data" else [""]


def class_page(modname: str, name: str) -> str:
    """The page of a large class (its members in source order, inherited ones included)."""
    obj = getattr(importlib.import_module(modname), name)
    return "\n".join([_title(f"{modname}.{name}"), f".. currentmodule:: {modname}\n",
                      f".. autoclass:: {name}", *_options(obj, "class")]) + "\n"


def index_page(modules: list[str]) -> str:
    """The API reference's front page: every public module with its one-line summary."""
    lines = [_title("API reference"),
             "Every public module of rkm and every name in its ``__all__``, from the docstrings. Modules and",
             "names that start with an underscore are internal and may change without notice. The names",
             "users write most are at the top level (:mod:`rkm`); pyrkm's methods of the machine are on",
             ":class:`rkm.machine.RKM` and :class:`rkm.machine.RBM`.\n",
             ".. list-table::\n   :header-rows: 1\n   :widths: 30 70\n",
             "   * - module\n     - what it holds"]
    for modname in modules:
        first = (inspect.getdoc(importlib.import_module(modname)) or "").split("\n")[0].rstrip(".")
        lines.append(f"   * - :mod:`{modname}`\n     - {first}")
    lines.append("\n.. toctree::\n   :hidden:\n")
    lines += [f"   {m}" for m in modules]
    return "\n".join(lines) + "\n"


def write_pages(srcdir: Path) -> list[Path]:
    """Write the API pages under ``srcdir/api``; rewrite only what changed (keeps rebuilds fast)."""
    out = srcdir / OUT
    out.mkdir(exist_ok=True)
    modules = public_modules()
    home = owners(modules)
    pages = {out / "index.rst": index_page(modules)}
    pages.update({out / f"{m}.rst": module_page(m, home) for m in modules})
    for (name, _), owner in home.items():
        obj = getattr(importlib.import_module(owner), name)
        if own_page(obj):
            pages[out / f"{owner}.{name}.rst"] = class_page(owner, name)
    for stale in set(out.glob("*.rst")) - set(pages):
        stale.unlink()
    for path, text in pages.items():
        if not path.exists() or path.read_text() != text:
            path.write_text(text)
    return sorted(pages)


def _builder_inited(app: Any) -> None:
    write_pages(Path(app.srcdir))


def setup(app: Any) -> dict[str, Any]:
    app.connect("builder-inited", _builder_inited)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
