"""Lazy public names of a package: its modules are imported on first use, not on import."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from importlib import import_module
from typing import Any

__all__ = ["lazy_attributes"]


def lazy_attributes(package: str, where: Mapping[str, str]) -> Callable[[str], Any]:
    """A module ``__getattr__`` that imports ``package.<where[name]>`` when ``name`` is asked.

    Keeps ``cubestream --help`` quick: the packages' heavy dependencies (xarray, stackstac) load
    only when a command uses them.
    """

    def attribute(name: str) -> Any:
        if name in where:
            return getattr(import_module(f"{package}.{where[name]}"), name)
        raise AttributeError(f"module {package!r} has no attribute {name!r}")

    return attribute
