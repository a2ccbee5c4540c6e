"""Synthgate's generators (pure numeric, no Django) and their lazy registry.

``get_generator("mst", max_bins=24)`` builds a generator by name; unknown names and unknown
parameters raise :class:`GeneratorError` listing what is valid.

The registry names each generator's module and class and imports it on first use, so a CLI call,
a request validation or a worker that only needs ``mst`` or ``copula`` never loads PyTorch and
Opacus (about 4 s and 400 MB); they are imported when ``dp-tvae`` is built or its class is named.
"""

from __future__ import annotations

import importlib
import inspect
from dataclasses import dataclass
from typing import Any

from synth_engine.generators.base import (
    Generator,
    GeneratorError,
    InsufficientBudgetError,
    PrivacySpent,
    SchemaMismatchError,
)
from synth_engine.generators.parameters import ParameterError, check_parameters


@dataclass(frozen=True)
class GeneratorEntry:
    """One registered generator: its public facts, and where its class lives."""

    name: str
    module: str
    class_name: str
    is_private: bool

    def load(self) -> type[Generator]:
        """The generator class (importing its module, and with it its libraries, on first use)."""
        cls: type[Generator] = getattr(importlib.import_module(self.module), self.class_name)
        return cls


GENERATORS: dict[str, GeneratorEntry] = {
    entry.name: entry
    for entry in (
        GeneratorEntry("mst", "synth_engine.generators.mst", "MSTGenerator", is_private=True),
        GeneratorEntry("dp-tvae", "synth_engine.generators.dp_tvae", "DPTVAEGenerator", is_private=True),
        GeneratorEntry("copula", "synth_engine.generators.copula", "GaussianCopulaGenerator", is_private=False),
    )
}
DEFAULT_GENERATOR = "mst"
_CLASSES = {entry.class_name: entry for entry in GENERATORS.values()}


def generator_class(name: str) -> type[Generator]:
    """The class registered as ``name``; raise :class:`GeneratorError` for an unknown name."""
    if name not in GENERATORS:
        raise GeneratorError(f"unknown generator {name!r}; choose one of {sorted(GENERATORS)}")
    return GENERATORS[name].load()


def generator_parameters(name: str) -> list[str]:
    """The hyperparameters ``name``'s constructor accepts."""
    return [p for p in inspect.signature(generator_class(name)).parameters if p != "self"]


def get_generator(name: str, **params: Any) -> Generator:
    """A new, unfitted generator ``name`` with ``params``; raise :class:`GeneratorError` for an
    unknown generator or parameter."""
    cls = generator_class(name)
    valid = generator_parameters(name)
    unknown = sorted(set(params) - set(valid))
    if unknown:
        raise GeneratorError(f"unknown parameter(s) {unknown} for generator {name!r}; valid parameters: {valid}")
    try:
        check_parameters(name, params)
    except ParameterError as error:
        raise GeneratorError(str(error)) from error
    return cls(**params)


def __getattr__(attribute: str) -> type[Generator]:
    """``from synth_engine.generators import MSTGenerator`` still works, importing lazily."""
    if attribute in _CLASSES:
        return _CLASSES[attribute].load()
    raise AttributeError(f"module {__name__!r} has no attribute {attribute!r}")


__all__ = [
    "DEFAULT_GENERATOR",
    "DPTVAEGenerator",
    "GENERATORS",
    "GaussianCopulaGenerator",
    "Generator",
    "GeneratorEntry",
    "GeneratorError",
    "InsufficientBudgetError",
    "MSTGenerator",
    "PrivacySpent",
    "SchemaMismatchError",
    "generator_class",
    "generator_parameters",
    "get_generator",
]
