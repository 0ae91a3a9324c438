"""Lazy public names for a package: `import sdm` stays cheap (torch, numba and matplotlib load on use)."""
from __future__ import annotations

import importlib
from typing import Callable


def lazy_exports(package: str, exports: dict[str, str], namespace: dict) -> tuple[Callable, Callable]:
    """Module-level `__getattr__` and `__dir__` that import `exports[name]` (a module path) on first use."""

    def __getattr__(name: str):
        module = exports.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        return getattr(importlib.import_module(module), name)

    def __dir__():
        return sorted(set(namespace) | set(exports))

    return __getattr__, __dir__
