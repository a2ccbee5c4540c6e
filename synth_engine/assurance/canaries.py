"""Worst-case canaries: the one row that makes D′ = D + canary as different from D as it can be.

Each canary says which pattern in a synthetic table would betray it (:meth:`Canary.matches`),
so the attacks can count it. The three kinds follow the leaks published audits found in open
DP synthesisers (Annamalai, Ganev & De Cristofaro 2024, Sec. 5): a category only the canary
holds (leaks through domain estimation), a numeric value far outside everyone else's range
(leaks through bounds and bins), and a combination of common values that no one else has
(leaks through the joint model). Pure numeric code, no Django.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

CANARY_KINDS = ("unique_category", "extreme_numeric", "unique_combination")
CANARY_CATEGORY = "zz-canary-category"
EXTREME_FACTOR = 1000.0  # the canary's value is this many times the largest magnitude in D


@dataclass(frozen=True)
class Canary:
    """One canary row and the pattern that would give it away.

    ``pattern`` maps a column to the canary's value in it (categorical columns), or, for a
    numeric column, to ``{"at_least": x}``: any synthetic value at or beyond ``x``, the
    geometric midpoint between D's largest magnitude and the canary's, counts as a trace.
    """

    kind: str
    row: dict[str, Any]
    pattern: dict[str, Any]
    description: str
    columns: tuple[str, ...] = field(default=())

    def matches(self, frame: pd.DataFrame) -> np.ndarray:
        """Boolean mask of ``frame``'s rows that carry the canary's pattern."""
        mask = np.ones(len(frame), dtype=bool)
        for column, rule in self.pattern.items():
            if isinstance(rule, dict):
                values = pd.to_numeric(frame[column], errors="coerce").to_numpy(dtype=np.float64)
                mask &= np.nan_to_num(np.abs(values), nan=0.0) >= rule["at_least"]
            else:
                mask &= (frame[column].astype(object) == rule).to_numpy()
        return mask

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "description": self.description, "pattern": self.pattern}


def make_canary(kind: str, frame: pd.DataFrame, schema: dict[str, Any]) -> Canary:
    """The canary of ``kind`` for base table ``frame`` (a typical row with one thing made unique).

    Raises ``ValueError`` naming what the table lacks (for example no numeric column).
    """
    builders = {
        "unique_category": _unique_category,
        "extreme_numeric": _extreme_numeric,
        "unique_combination": _unique_combination,
    }
    if kind not in builders:
        raise ValueError(f"unknown canary kind {kind!r}; choose one of {list(CANARY_KINDS)}")
    return builders[kind](frame, _columns_by_type(schema))


def with_canary(frame: pd.DataFrame, canary: Canary) -> pd.DataFrame:
    """D′: ``frame`` plus the canary as its last row, with ``frame``'s dtypes kept."""
    row = pd.DataFrame([canary.row], columns=frame.columns)
    combined = pd.concat([frame, row], ignore_index=True)
    for column in frame.columns:
        if pd.api.types.is_integer_dtype(frame[column].dtype):
            combined[column] = combined[column].astype(frame[column].dtype)
    return combined


def _columns_by_type(schema: dict[str, Any]) -> dict[str, list[str]]:
    groups: dict[str, list[str]] = {"categorical": [], "numeric": []}
    for column in schema["columns"]:
        if column.get("role") in ("label", "identifier"):
            continue
        if column["type"] == "categorical":
            groups["categorical"].append(column["name"])
        elif column["type"] in ("integer", "float"):
            groups["numeric"].append(column["name"])
    return groups


def _typical_row(frame: pd.DataFrame) -> dict[str, Any]:
    """The most common value of every column: the canary blends in everywhere but one place."""
    return {column: frame[column].mode(dropna=True).iloc[0] for column in frame.columns}


def _unique_category(frame: pd.DataFrame, columns: dict[str, list[str]]) -> Canary:
    if not columns["categorical"]:
        raise ValueError("a unique-category canary needs a categorical column that is not the label")
    column = columns["categorical"][0]
    row = _typical_row(frame) | {column: CANARY_CATEGORY}
    return Canary(
        "unique_category",
        row,
        {column: CANARY_CATEGORY},
        f"{column} = {CANARY_CATEGORY!r}, a category no other row holds",
        (column,),
    )


def _extreme_numeric(frame: pd.DataFrame, columns: dict[str, list[str]]) -> Canary:
    if not columns["numeric"]:
        raise ValueError("an extreme-numeric canary needs an integer or float column that is not the label")
    column = columns["numeric"][0]
    largest = max(float(pd.to_numeric(frame[column]).abs().max()), 1.0)
    value = largest * EXTREME_FACTOR
    if pd.api.types.is_integer_dtype(frame[column].dtype):
        value = int(value)
    row = _typical_row(frame) | {column: value}
    at_least = float(np.sqrt(largest * float(value)))
    return Canary(
        "extreme_numeric",
        row,
        {column: {"at_least": at_least}},
        f"{column} = {value:g}, {EXTREME_FACTOR:g}x the largest value in D (traces: |{column}| >= {at_least:.4g})",
        (column,),
    )


def _unique_combination(frame: pd.DataFrame, columns: dict[str, list[str]]) -> Canary:
    """Two common values of two categorical columns that never occur together in D: the pair
    with the largest count expected under independence among those observed zero times."""
    names = columns["categorical"]
    best: tuple[float, str, Any, str, Any] | None = None
    for i, first in enumerate(names):
        for second in names[i + 1 :]:
            table = pd.crosstab(frame[first], frame[second])
            expected = np.outer(table.sum(axis=1), table.sum(axis=0)) / max(table.to_numpy().sum(), 1)
            expected[table.to_numpy() > 0] = -1.0
            index = np.unravel_index(int(np.argmax(expected)), expected.shape)
            score = float(expected[index])
            if score > 0 and (best is None or score > best[0]):
                best = (score, first, table.index[index[0]], second, table.columns[index[1]])
    if best is None:
        raise ValueError("a unique-combination canary needs two categorical columns with an unseen pair of values")
    _, first, first_value, second, second_value = best
    row = _typical_row(frame) | {first: first_value, second: second_value}
    return Canary(
        "unique_combination",
        row,
        {first: first_value, second: second_value},
        f"{first} = {first_value!r} with {second} = {second_value!r}: each common, never together in D "
        f"({best[0]:.1f} rows expected under independence)",
        (first, second),
    )
