"""Import pyrkm 0.1.0 without torchvision.

pyrkm's ``utils.py`` does ``from torchvision.models import inception_v3`` at import time
(used only by ``Compute_FID``), and ``pip install pyrkm`` pulls torchvision from PyPI,
whose compiled ops do not load beside rkm's pinned CPU build of torch. The benchmark
installs pyrkm with ``pip install --no-deps`` (see ``benchmarks/setup.sh``) and, inside
its own worker process only, registers a stub ``torchvision`` package before importing
pyrkm. Neither package is edited, nothing is written to site-packages, and the stub
never leaves the process that installed it.

The stub is a meta-path finder placed first on ``sys.meta_path``: ``torchvision`` and
every ``torchvision.*`` submodule import as empty stub modules whose public attributes
are callables that raise :class:`TorchvisionStubError` when called. So
``from torchvision.models import inception_v3`` succeeds, and ``inception_v3(...)`` (i.e.
``pyrkm.Compute_FID``) fails with a message naming the stub. Nothing the training
benchmark calls touches torchvision.

``python -m benchmarks.pyrkm_compat`` checks that pyrkm imports this way.
"""

from __future__ import annotations

import importlib.abc
import importlib.machinery
import sys
import types

STUB_VERSION = "0.0+rkm-benchmark-stub"


class TorchvisionStubError(RuntimeError):
    """A torchvision function was called in a process where torchvision is stubbed out."""


def _unavailable(qualname: str):
    def stub(*args, **kwargs):
        raise TorchvisionStubError(
            f"{qualname} is not available: torchvision is replaced by a stub in this benchmark process "
            "(benchmarks/pyrkm_compat.py) because PyPI's torchvision cannot load beside the CPU build of "
            "torch. Only pyrkm's training code is benchmarked; FID (inception_v3) is not."
        )

    stub.__name__ = stub.__qualname__ = qualname.rsplit(".", 1)[-1]
    return stub


class _StubModule(types.ModuleType):
    """A module whose every public attribute is a callable that raises TorchvisionStubError."""

    __torchvision_stub__ = True

    def __getattr__(self, name: str):
        if name.startswith("__") and name.endswith("__"):
            raise AttributeError(name)
        value = _unavailable(f"{self.__name__}.{name}")
        setattr(self, name, value)
        return value


class _TorchvisionStubFinder(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Resolves ``torchvision`` and ``torchvision.*`` to stub packages."""

    def find_spec(self, fullname, path=None, target=None):
        if fullname == "torchvision" or fullname.startswith("torchvision."):
            return importlib.machinery.ModuleSpec(fullname, self, is_package=True)
        return None

    def create_module(self, spec):
        return _StubModule(spec.name)

    def exec_module(self, module):
        module.__path__ = []
        if module.__name__ == "torchvision":
            module.__version__ = STUB_VERSION


def install_torchvision_stub() -> bool:
    """Make ``import torchvision`` (and submodules) resolve to the stub in this process.

    Returns False, and changes nothing, when a torchvision module is already imported.
    """
    if "torchvision" in sys.modules:
        return False
    if not any(isinstance(f, _TorchvisionStubFinder) for f in sys.meta_path):
        sys.meta_path.insert(0, _TorchvisionStubFinder())
    return True


def is_stub(module) -> bool:
    return bool(getattr(module, "__torchvision_stub__", False))


def import_pyrkm():
    """Import and return pyrkm 0.1.0 with torchvision stubbed out.

    Raises ImportError (with the install command) when pyrkm is not installed.
    """
    install_torchvision_stub()
    try:
        import pyrkm
    except ModuleNotFoundError as exc:
        if exc.name == "pyrkm":
            raise ImportError(
                "pyrkm is not installed; run `bash benchmarks/setup.sh` "
                "(pip install --no-deps pyrkm==0.1.0 into .venv)."
            ) from exc
        raise
    return pyrkm


def _check() -> int:
    pyrkm = import_pyrkm()
    import torchvision

    print(f"pyrkm {getattr(pyrkm, '__version__', '?')} imported from {pyrkm.__file__}")
    print(f"torchvision: {'stub ' + torchvision.__version__ if is_stub(torchvision) else torchvision.__file__}")
    if is_stub(torchvision):
        from torchvision.models import inception_v3

        try:
            inception_v3(pretrained=True)
        except TorchvisionStubError:
            print("torchvision.models.inception_v3 raises TorchvisionStubError, as intended")
        else:  # pragma: no cover - the stub always raises
            print("unexpected: the stub did not raise")
            return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(_check())
