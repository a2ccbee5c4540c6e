"""Synthgate's generators (pure numeric, no Django) and their registry.

``get_generator("mst", max_bins=24)`` builds a generator by name; unknown names and unknown
parameters raise :class:`GeneratorError` listing what is valid.
"""

from __future__ import annotations

import inspect
from typing import Any

from synth_engine.generators.base import (
    Generator,
    GeneratorError,
    InsufficientBudgetError,
    PrivacySpent,
    SchemaMismatchError,
)
from synth_engine.generators.copula import GaussianCopulaGenerator
from synth_engine.generators.dp_tvae import DPTVAEGenerator
from synth_engine.generators.mst import MSTGenerator
from synth_engine.generators.parameters import ParameterError, check_parameters

GENERATORS: dict[str, type[Generator]] = {
    MSTGenerator.name: MSTGenerator,
    DPTVAEGenerator.name: DPTVAEGenerator,
    GaussianCopulaGenerator.name: GaussianCopulaGenerator,
}
DEFAULT_GENERATOR = MSTGenerator.name


def generator_parameters(name: str) -> list[str]:
    """The hyperparameters ``name``'s constructor accepts."""
    return [p for p in inspect.signature(_generator_class(name)).parameters if p != "self"]


def get_generator(name: str, **params: Any) -> Generator:
    """A new, unfitted generator ``name`` with ``params``; raise :class:`GeneratorError` for an
    unknown generator or parameter."""
    cls = _generator_class(name)
    valid = generator_parameters(name)
    unknown = sorted(set(params) - set(valid))
    if unknown:
        raise GeneratorError(f"unknown parameter(s) {unknown} for generator {name!r}; valid parameters: {valid}")
    try:
        check_parameters(name, params)
    except ParameterError as error:
        raise GeneratorError(str(error)) from error
    return cls(**params)


def _generator_class(name: str) -> type[Generator]:
    if name not in GENERATORS:
        raise GeneratorError(f"unknown generator {name!r}; choose one of {sorted(GENERATORS)}")
    return GENERATORS[name]


__all__ = [
    "DEFAULT_GENERATOR",
    "DPTVAEGenerator",
    "GENERATORS",
    "GaussianCopulaGenerator",
    "Generator",
    "GeneratorError",
    "InsufficientBudgetError",
    "MSTGenerator",
    "PrivacySpent",
    "SchemaMismatchError",
    "generator_parameters",
    "get_generator",
]
