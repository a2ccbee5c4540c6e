"""Input checks and the controlled rounding every generator shares (pure; no Django).

One home for the rules a target and a row count must meet, so the generators agree: ``True`` is
not an ε (MST used to accept it as 1 while dp-tvae refused it), nor a row count.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from synth_engine.generators.base import GeneratorError


def _is_number(value: Any) -> bool:
    return not isinstance(value, bool | np.bool_) and isinstance(value, int | float | np.integer | np.floating)


def check_privacy_target(epsilon: Any, delta: Any) -> None:
    """Refuse an ε that is not a positive finite number, or a δ outside (0, 1)."""
    if not _is_number(epsilon) or not math.isfinite(epsilon) or epsilon <= 0:
        raise GeneratorError(f"epsilon must be a positive finite number, got {epsilon!r}")
    if not _is_number(delta) or not 0 < delta < 1:
        raise GeneratorError(f"delta must be in (0, 1) for the Gaussian mechanism, got {delta!r}")


def check_target_is_numeric(epsilon: Any, delta: Any) -> None:
    """What a non-private generator asks of the (ε, δ) it ignores: numbers (∞ included). ``True``
    is no more an ε here than for the private generators."""
    for name, value in (("epsilon", epsilon), ("delta", delta)):
        if not _is_number(value):
            raise GeneratorError(f"{name} must be a number, got {value!r}")


def check_n_rows(n_rows: Any) -> None:
    """Refuse a row count that is not a positive integer (booleans included)."""
    if isinstance(n_rows, bool | np.bool_) or not isinstance(n_rows, int | np.integer) or n_rows <= 0:
        raise GeneratorError(f"n_rows must be a positive integer, got {n_rows!r}")


def round_rows(weights: np.ndarray, totals: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Integer counts, row by row, summing to ``totals`` in proportion to each row of ``weights``
    (controlled rounding of every row at once).

    Each count is ⌊n·p⌋ or ⌈n·p⌉ and its expectation is exactly n·p: systematic rounding, one
    uniform start per row and the row's cumulative expected counts cut at whole numbers, so
    the cells that round up are spread along the row (of neighbouring numeric cells, one in
    two when each is half a row over its floor). Cells of weight 0 get no rows; a row of weight
    0 everywhere is rounded as uniform.

    Returns
    -------
    ndarray of int64, shape ``weights.shape``
    """
    return round_cumulative(cumulative_shares(weights), totals, rng)


def cumulative_shares(weights: np.ndarray) -> np.ndarray:
    """Each row's cumulative shares (ending at 1), as ``round_rows`` cuts them; a row of weight 0
    everywhere is uniform. A caller rounding many totals by one table computes them once."""
    weights = np.clip(np.asarray(weights, dtype=np.float64), 0.0, None)
    weights = np.where(weights.sum(axis=1, keepdims=True) > 0, weights, 1.0)
    cumulative = np.cumsum(weights, axis=1)
    cumulative /= cumulative[:, -1:]
    return cumulative


def round_cumulative(cumulative: np.ndarray, totals: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """``round_rows`` of the weights whose ``cumulative_shares`` are ``cumulative``."""
    totals = np.asarray(totals, dtype=np.int64)
    edges = np.floor(cumulative * totals[:, None] + rng.random((len(cumulative), 1))).astype(np.int64)
    edges[:, -1] = totals
    return np.diff(edges, axis=1, prepend=0)


def round_counts(weights: np.ndarray, n_rows: int, rng: np.random.Generator) -> np.ndarray:
    """Integer counts summing to ``n_rows`` in proportion to ``weights`` (controlled rounding).

    Each count is ⌊n·p⌋ or ⌈n·p⌉; the leftover rows go to cells drawn without replacement in
    proportion to their fractional parts, so the expected count is exactly n·p with the least
    possible variance (as in Private-PGM's ``synthetic_data``).
    """
    total = weights.sum()
    probs = weights / total if total > 0 else np.full(len(weights), 1.0 / len(weights))
    expected = n_rows * probs
    counts = np.floor(expected).astype(np.int64)
    leftover = n_rows - int(counts.sum())
    if leftover > 0:
        fractions = np.maximum(expected - counts, 0.0) + 1e-12
        extra = rng.choice(len(weights), size=leftover, replace=False, p=fractions / fractions.sum())
        counts[extra] += 1
    return counts
