"""Attack statistics: one number per synthetic table, higher when the canary was in the fit.

The attacker knows D, the canary and the generator (the DP threat model: everything but the
coin that decided whether the canary was in). Three statistics, each a different view of
the release:

- ``pattern_count``: share of synthetic rows carrying the canary's give-away pattern (its
  unique category, a value near its extreme, its unseen combination). Catches copies and
  structural leaks (an impossible value becoming possible).
- ``marginal_likelihood_ratio``: log-likelihood of the canary row under the release's smoothed
  1-way marginals (plus the 2-way marginal of the pattern's two columns) minus the same under
  D's; the classic membership test on released marginals (Homer et al. 2008; Sankararaman
  et al. 2009).
- ``density_ratio``: DOMIAS (van Breugel et al., AISTATS 2023, Eq. 2): the synthetic data's
  kernel density at the canary over D's density there, so over-representation *relative to
  the population* scores, not mere typicality.

Pure numeric code, no Django.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from scipy.special import logsumexp

from synth_engine.assurance.canaries import Canary

ATTACKS = ("pattern_count", "marginal_likelihood_ratio", "density_ratio")
SMOOTHING = 0.5  # Jeffreys-style pseudo-count per cell of a smoothed marginal
UNSEEN = "\x00unseen"
MISSING = "\x00missing"
N_NUMERIC_BINS = 10
MAX_DENSITY_ROWS = 2000  # synthetic rows the kernel density uses (a fixed, seeded subsample)


@dataclass
class AttackContext:
    """What the attacker prepares from D and the canary before any release is seen."""

    reference: pd.DataFrame
    canary: Canary
    numeric_columns: list[str]
    bin_edges: dict[str, np.ndarray]
    scale: dict[str, tuple[float, float]]
    categories: dict[str, list[Any]]
    ranges: dict[str, tuple[float, float]] = field(default_factory=dict)
    canary_cells: dict[str, str] = field(default_factory=dict)
    reference_log_likelihood: float = 0.0
    reference_embedding: np.ndarray = field(default_factory=lambda: np.zeros((0, 0)))
    canary_embedding: np.ndarray = field(default_factory=lambda: np.zeros(0))

    @classmethod
    def prepare(cls, reference: pd.DataFrame, canary: Canary, numeric_columns: list[str]) -> AttackContext:
        bin_edges, scale, categories, ranges = {}, {}, {}, {}
        for column in reference.columns:
            if column in numeric_columns:
                values = _signed_log(reference[column])
                values = values[np.isfinite(values)]
                ranges[column] = (float(values.min()), float(values.max()))
                inner = np.unique(np.quantile(values, np.linspace(0, 1, N_NUMERIC_BINS + 1))[1:-1])
                bin_edges[column] = inner
                scale[column] = (float(np.median(values)), float(max(np.std(values), 1e-6)))
            else:
                categories[column] = sorted(reference[column].dropna().astype(str).unique().tolist())
        context = cls(reference, canary, list(numeric_columns), bin_edges, scale, categories, ranges)
        canary_frame = pd.DataFrame([canary.row], columns=reference.columns)
        context.canary_cells = {column: cells[0] for column, cells in _table_cells(context, canary_frame).items()}
        context.reference_log_likelihood = _independent_log_likelihood(context, _table_cells(context, reference))
        context.reference_embedding = _embed(context, reference)
        context.canary_embedding = _embed(context, canary_frame)[0]
        return context


def attack_scores(context: AttackContext, synthetic: pd.DataFrame) -> dict[str, float]:
    """Every attack statistic of one synthetic table."""
    cells = _table_cells(context, synthetic)
    return {
        "pattern_count": pattern_count(context, synthetic),
        "marginal_likelihood_ratio": marginal_likelihood_ratio(context, cells),
        "density_ratio": density_ratio(context, synthetic),
    }


def pattern_count(context: AttackContext, synthetic: pd.DataFrame) -> float:
    """Share of synthetic rows that carry the canary's pattern."""
    if len(synthetic) == 0:
        return 0.0
    return float(context.canary.matches(synthetic).mean())


def marginal_likelihood_ratio(context: AttackContext, cells: dict[str, np.ndarray]) -> float:
    """log L(canary | release marginals) − log L(canary | D's marginals), smoothed; ``cells``
    is the release in :func:`_table_cells` form."""
    score = _independent_log_likelihood(context, cells) - context.reference_log_likelihood
    if len(context.canary.columns) == 2:
        first, second = context.canary.columns
        pair = f"{context.canary_cells[first]}|{context.canary_cells[second]}"
        joint = np.char.add(np.char.add(cells[first].astype(str), "|"), cells[second].astype(str))
        score += _log_share(joint, pair)
        score -= _log_share(cells[first], context.canary_cells[first])
        score -= _log_share(cells[second], context.canary_cells[second])
    return score


def density_ratio(context: AttackContext, synthetic: pd.DataFrame, bandwidth: float = 0.5) -> float:
    """DOMIAS score: log p_synthetic(canary) − log p_D(canary) with Gaussian kernels of width
    ``bandwidth`` on standardised log-scaled numerics and one-hot categories."""
    rows = synthetic
    if len(rows) > MAX_DENSITY_ROWS:
        rows = rows.sample(MAX_DENSITY_ROWS, random_state=0)
    at = context.canary_embedding
    return _log_kernel_density(_embed(context, rows), at, bandwidth) - _log_kernel_density(
        context.reference_embedding, at, bandwidth
    )


def _independent_log_likelihood(context: AttackContext, cells: dict[str, np.ndarray]) -> float:
    """log-likelihood of the canary row under a table's smoothed 1-way marginals."""
    return sum(_log_share(cells[column], context.canary_cells[column]) for column in context.reference.columns)


def _table_cells(context: AttackContext, frame: pd.DataFrame) -> dict[str, np.ndarray]:
    return {column: _cells(context, column, frame[column]) for column in context.reference.columns}


def _cells(context: AttackContext, column: str, series: pd.Series) -> np.ndarray:
    """Cell labels of a column: D's categories (anything else is one unseen cell) or D's
    quantile bins of the log-scaled value (with an overflow cell beyond D's range)."""
    if column in context.numeric_columns:
        values = _signed_log(series)
        low, high = context.ranges[column]
        bins = np.searchsorted(context.bin_edges[column], values, side="right").astype(str).astype(object)
        bins[values > high] = "above"
        bins[values < low] = "below"
        bins[~np.isfinite(values)] = "missing"
        return bins.astype(str)
    raw = series.to_numpy(dtype=object)
    labels = np.where(pd.isna(raw), MISSING, raw.astype(str))
    known = np.isin(labels, context.categories[column] + [MISSING])
    return np.where(known, labels, UNSEEN)


def _log_share(cells: np.ndarray, cell: str) -> float:
    values, counts = np.unique(cells, return_counts=True)
    hits = counts[values == cell]
    n_cells = len(values) + (0 if len(hits) else 1)
    return float(np.log((hits.sum() + SMOOTHING) / (len(cells) + SMOOTHING * n_cells)))


def _embed(context: AttackContext, frame: pd.DataFrame) -> np.ndarray:
    parts = []
    for column in context.reference.columns:
        if column in context.numeric_columns:
            centre, spread = context.scale[column]
            values = (_signed_log(frame[column]) - centre) / spread
            parts.append(np.nan_to_num(values, nan=0.0)[:, None])
        else:
            cells = _cells(context, column, frame[column])
            levels = np.array(context.categories[column] + [UNSEEN, MISSING])
            parts.append((cells[:, None] == levels[None, :]).astype(np.float64))
    return np.hstack(parts)


def _log_kernel_density(points: np.ndarray, at: np.ndarray, bandwidth: float) -> float:
    squared = ((points - at[None, :]) ** 2).sum(axis=1)
    return float(logsumexp(-squared / (2.0 * bandwidth**2)) - np.log(max(len(points), 1)))


def _signed_log(series: pd.Series) -> np.ndarray:
    values = pd.to_numeric(series, errors="coerce").to_numpy(dtype=np.float64)
    signed: np.ndarray = np.sign(values) * np.log1p(np.abs(values))
    return signed
