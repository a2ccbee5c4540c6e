"""Packages whose names load on first use (PEP 562), so importing the package stays cheap.

A service package re-exports names from modules that bring pandas, PyTorch, WeasyPrint or pyHanko
(seconds to import). Django's start-up (the apps' ready hooks) and read-only commands that never
call those names must not pay for them. The package lists its names under ``TYPE_CHECKING`` (so
type checkers see them) and in a name → module map given here.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable
from typing import Any


def lazy_exports(package: str, homes: dict[str, str]) -> Callable[[str], Any]:
    """A module ``__getattr__`` for ``package`` that imports ``homes[name]`` (a module path) when asked."""

    def __getattr__(name: str) -> Any:
        if name not in homes:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(homes[name]), name)
        setattr(sys.modules[package], name, value)
        return value

    return __getattr__
