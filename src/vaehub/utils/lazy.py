"""Names a package exports but imports only when first used (PEP 562), so that importing
the package, or one module of it, loads nothing else."""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any


def lazy_exports(
    package: str, exports: dict[str, str], namespace: dict[str, Any]
) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """A package's `__getattr__` and `__dir__` serving `exports` (name → defining module).

    Args:
        package: the package's name, for the error a missing name gets.
        exports: each exported name and the module that defines it.
        namespace: the package's `globals()`: a name, once imported, is kept there, so
            later lookups no longer reach `__getattr__`.
    """

    def __getattr__(name: str) -> Any:
        if name not in exports:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(exports[name]), name)
        namespace[name] = value
        return value

    def __dir__() -> list[str]:
        return sorted({*namespace, *exports})

    return __getattr__, __dir__
