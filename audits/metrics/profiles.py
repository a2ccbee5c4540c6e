"""Column profiles of one table: missing share, distinct values and a histogram per column.

Pure pandas/NumPy (no Django). The dashboard calls :func:`table_profile` on a stored version's
rows, or on a sample of them (:func:`sample_positions` picks which), and caches the result; what
a page may show (synthetic rows to anyone who may read the release, real rows to stewards,
approvers and auditors only) is decided by the caller, not here.

The result is plain JSON: ``{"rows": n profiled, "columns": [{"name", "type", "missing_share",
"missing", "distinct", "histogram": {"kind", "labels", "counts", "other"}}]}``. A numeric column
(integer, float, datetime) with at most :data:`MAX_BARS` distinct values gets one bar per value;
otherwise :data:`NUMERIC_BINS` equal-width bins between its smallest and largest value, labelled
by their lower edges (``edges`` holds all of them). A categorical or boolean column gets its
:data:`MAX_BARS` - 1 commonest values, in order of frequency, and the rest pooled in ``other``
(with ``other_values`` distinct values in it).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import numpy as np
import pandas as pd

from core.schema import NUMERIC_TYPES, numeric_values

MAX_BARS = 12
NUMERIC_BINS = 12


def sample_positions(n_rows: int, size: int, *, seed: int) -> np.ndarray:
    """``size`` distinct row positions out of ``n_rows``, sorted, drawn uniformly with ``seed``
    (all of them when ``n_rows <= size``)."""
    if n_rows <= size:
        return np.arange(n_rows)
    chosen: np.ndarray = np.sort(np.random.default_rng(seed).choice(n_rows, size=size, replace=False))
    return chosen


def table_profile(frame: pd.DataFrame, types: dict[str, str]) -> dict[str, Any]:
    """Profile every column of ``frame``; ``types`` maps a column to its schema type."""
    return {
        "rows": int(len(frame)),
        "columns": [column_profile(frame[name], str(name), types.get(str(name), "categorical")) for name in frame],
    }


def column_profile(series: pd.Series, name: str, kind: str) -> dict[str, Any]:
    total = len(series)
    missing = int(series.isna().sum())
    present = series.dropna()
    if kind in NUMERIC_TYPES:
        values = numeric_values(present, kind)
        values = values[~np.isnan(values)]
        distinct = int(np.unique(values).size)
        histogram = _numeric_histogram(values, kind)
    else:
        labels = present.astype(str)
        distinct = int(labels.nunique())
        histogram = _categorical_histogram(labels)
    return {
        "name": name,
        "type": kind,
        "missing": missing,
        "missing_share": missing / total if total else 0.0,
        "distinct": distinct,
        "histogram": histogram,
    }


def _categorical_histogram(labels: pd.Series) -> dict[str, Any]:
    counts = labels.value_counts(sort=False)
    # Commonest first; equal counts in the labels' own order, so the result does not depend on row order.
    ranked = sorted(counts.items(), key=lambda item: (-int(item[1]), str(item[0])))
    kept = ranked if len(ranked) <= MAX_BARS else ranked[: MAX_BARS - 1]
    pooled = ranked[len(kept) :]
    return {
        "kind": "categorical",
        "labels": [str(label) for label, _ in kept],
        "counts": [int(count) for _, count in kept],
        "other": int(sum(count for _, count in pooled)),
        "other_values": len(pooled),
    }


def _numeric_histogram(values: np.ndarray, kind: str) -> dict[str, Any]:
    if values.size == 0:
        return {"kind": "numeric", "labels": [], "counts": [], "edges": [], "other": 0, "other_values": 0}
    unique, counts = np.unique(values, return_counts=True)
    if unique.size <= MAX_BARS:
        return {
            "kind": "values",
            "labels": [value_text(value, kind) for value in unique],
            "counts": [int(count) for count in counts],
            "other": 0,
            "other_values": 0,
        }
    binned, edges = np.histogram(values, bins=NUMERIC_BINS, range=(float(unique[0]), float(unique[-1])))
    return {
        "kind": "numeric",
        "labels": [value_text(edge, kind) for edge in edges[:-1]],
        "counts": [int(count) for count in binned],
        "edges": [value_text(edge, kind) for edge in edges],
        "other": 0,
        "other_values": 0,
    }


def value_text(value: float, kind: str) -> str:
    """A number as people write it on an axis: a date for a datetime, thousands separated, no
    exponent above 1,000 and at most 4 significant digits below."""
    number = float(value)
    if kind == "datetime":
        return datetime.fromtimestamp(number, tz=UTC).strftime("%Y-%m-%d")
    if number.is_integer() and abs(number) < 1e15:
        return f"{int(number):,}"
    if abs(number) >= 1000:
        return f"{number:,.0f}"
    return f"{number:.4g}".replace("e-0", "e-")


def first_rows(frame: pd.DataFrame, rows: int) -> list[list[str]]:
    """The first ``rows`` rows as text (missing as empty), for a preview table."""
    head = frame.head(rows)
    return [[_cell(value) for value in row] for row in head.itertuples(index=False, name=None)]


def _cell(value: Any) -> str:
    if value is None or (not isinstance(value, str) and pd.isna(value)):
        return ""
    return str(value)
