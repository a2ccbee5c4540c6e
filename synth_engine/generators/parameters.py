"""Types and bounds of every generator hyperparameter a request may set.

A request's parameters are checked against these when it is filed and again at approval, so a
job never reads the data (and never spends budget) with parameters that cannot run: a string
for ``epochs``, ``epochs=10**9`` or ``hidden_dims=[65536, 65536]`` are refused up front with a
message naming the parameter and its range. Bounds are generous for real use and small enough
that one job stays within a worker's time and memory.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any


class ParameterError(ValueError):
    """A generator parameter of the wrong type or outside its range; the message names it."""


@dataclass(frozen=True)
class Bound:
    kind: str  # "int", "float", "bool", "choice", "int_list"; an "int" or "float" also takes ``choices``
    low: float | None = None
    high: float | None = None
    low_open: bool = False
    high_open: bool = False
    choices: tuple[str, ...] = ()
    max_items: int = 0

    def describe(self) -> str:
        if self.kind == "bool":
            return "true or false"
        if self.kind == "choice":
            return f"one of {', '.join(self.choices)}"
        left = "(" if self.low_open else "["
        right = ")" if self.high_open else "]"
        interval = f"{left}{_number(self.low)}, {_number(self.high)}{right}"
        if self.kind == "int_list":
            return f"a list of 1 to {self.max_items} whole numbers in {interval}"
        number = f"{'a whole number' if self.kind == 'int' else 'a number'} in {interval}"
        return " or ".join([number, *(repr(choice) for choice in self.choices)])


def _number(value: float | None) -> str:
    return f"{value:g}" if isinstance(value, float) else f"{value:,}"


FRACTION = Bound("float", 0.0, 1.0, low_open=True, high_open=True)
FRACTION_OR_ZERO = Bound("float", 0.0, 1.0, high_open=True)
CELLS = Bound("int", 2, 4096)

PARAMETER_BOUNDS: dict[str, dict[str, Bound]] = {
    "mst": {
        "max_bins": Bound("int", 2, 1024),
        "max_cells": CELLS,
        "domain_fraction": FRACTION,
        "one_way_fraction": FRACTION,
        "selection_fraction": FRACTION,
        "threshold_delta_fraction": FRACTION,
        "min_bin_sigmas": Bound("float", 0.0, 100.0),
        "estimation_iterations": Bound("int", 1, 10_000),
        "structure": Bound("choice", choices=("auto", "tree")),
        "label_fraction": FRACTION_OR_ZERO,
        "label_features": Bound("int", 0, 10_000, choices=("auto",)),
        "label_selection_fraction": FRACTION,
        "selection_rows": Bound("int", 0, 1_000_000_000),
        "label_edge_weight": Bound("float", 1.0, 1000.0),
    },
    "dp-tvae": {
        "epochs": Bound("int", 1, 1000),
        "batch_size": Bound("int", 1, 65_536),
        "learning_rate": Bound("float", 0.0, 1.0, low_open=True),
        "embedding_dim": Bound("int", 1, 1024),
        "hidden_dims": Bound("int_list", 1, 4096, max_items=8),
        "max_grad_norm": Bound("float", 0.0, 100.0, low_open=True),
        "loss_factor": Bound("float", 0.0, 100.0, low_open=True),
        "max_cells": CELLS,
        "domain_fraction": FRACTION,
        "label_fraction": FRACTION_OR_ZERO,
        "threshold_delta_fraction": FRACTION,
        "num_threads": Bound("int", 1, 64),
    },
    "copula": {
        "n_quantiles": Bound("int", 2, 100_000),
        "per_class": Bound("bool"),
        "min_class_rows": Bound("int", 1, 1_000_000),
    },
}


def check_parameters(generator: str, params: dict[str, Any]) -> None:
    """Refuse a parameter of the wrong type or outside its bounds (unknown names are the registry's)."""
    bounds = PARAMETER_BOUNDS.get(generator, {})
    for name, value in params.items():
        if name in bounds and not _fits(value, bounds[name]):
            raise ParameterError(
                f"parameter {name!r} of generator {generator!r} must be {bounds[name].describe()}; got {value!r}"
            )


def _fits(value: Any, bound: Bound) -> bool:
    if bound.kind == "bool":
        return isinstance(value, bool)
    if bound.kind == "choice" or (isinstance(value, str) and value in bound.choices):
        return value in bound.choices
    if bound.kind == "int_list":
        if not isinstance(value, list | tuple) or not value:
            return False
        return len(value) <= bound.max_items and all(_in_range(item, bound, True) for item in value)
    return _in_range(value, bound, bound.kind == "int")


def _in_range(value: Any, bound: Bound, integer: bool) -> bool:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return False
    if integer and not isinstance(value, int):
        return False
    if not math.isfinite(value):
        return False
    low, high = float(bound.low or 0), float(bound.high or 0)
    above = value > low if bound.low_open else value >= low
    below = value < high if bound.high_open else value <= high
    return above and below
