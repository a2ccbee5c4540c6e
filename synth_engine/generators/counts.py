"""Where a generator's counts come from: the grouped counts MST needs, from a frame or an engine.

Everything :class:`~synth_engine.generators.mst.MSTGenerator` reads from the data is a grouped
count: the row count, the value counts of undeclared categorical columns and the power-of-two
magnitude histogram of numeric columns without declared bounds (the domain stage), the 1-way
histograms of every column's fine codes, and the counts of binned codes over groups of columns
(the 2-way tables scored for the tree, the (label ×) edge tables and the label × column tables).
A :class:`CountSource` answers exactly these questions; noise is added by the generator, so only
exact counts cross from the source to the worker, never rows.

:class:`FrameCounts` answers them from a pandas frame (the in-memory path). An engine source
(``synth_engine.engines.postgres.PostgresCounts``) answers them with SQL where the table lives;
both give the same integers on the same data, so a fit with a fixed seed is byte-identical.
"""

from __future__ import annotations

from typing import Any, Protocol

import numpy as np
import pandas as pd

from core.schema import ColumnSpec, numeric_values
from synth_engine.generators.domain import Codec, magnitude_index, missing_mask


class CountSource(Protocol):
    """The grouped counts of one table, computed wherever the table lives."""

    #: What computed the counts, for the record (``"pandas"``, ``"postgresql"``).
    engine: str

    def row_count(self) -> int:
        """Exact number of rows."""
        ...

    def category_counts(self, spec: ColumnSpec) -> tuple[list[Any], np.ndarray]:
        """Distinct non-missing values of a categorical column and how many rows hold each."""
        ...

    def magnitude_counts(self, spec: ColumnSpec, *, integer: bool) -> np.ndarray:
        """Histogram of :func:`~synth_engine.generators.domain.magnitude_index` over the
        non-missing values of a numeric column."""
        ...

    def fine_counts(self, codecs: list[Codec]) -> list[np.ndarray]:
        """Per column, the counts of its fine codes (length ``codec.n_codes``)."""
        ...

    def binned_counts(
        self, codecs: list[Codec], bins: list[np.ndarray], groups: list[tuple[int, ...]]
    ) -> list[np.ndarray]:
        """Per group of column indices, the counts of their binned codes (``bins[c][fine code]``),
        shaped ``(k_c for c in group)`` where ``k_c = bins[c].max() + 1``."""
        ...


class FrameCounts:
    """The counts of a pandas frame (fine codes are encoded once and kept)."""

    engine = "pandas"

    def __init__(self, frame: pd.DataFrame) -> None:
        self.frame = frame
        self._fine: dict[str, np.ndarray] = {}

    def row_count(self) -> int:
        return len(self.frame)

    def category_counts(self, spec: ColumnSpec) -> tuple[list[Any], np.ndarray]:
        series = self.frame[spec.name]
        counts = series[~missing_mask(series)].value_counts()
        keys = [key.item() if isinstance(key, np.generic) else key for key in counts.index]
        return keys, counts.to_numpy(dtype=np.int64)

    def magnitude_counts(self, spec: ColumnSpec, *, integer: bool) -> np.ndarray:
        values = numeric_values(self.frame[spec.name], spec.type)
        index, length = magnitude_index(values[~np.isnan(values)], integer=integer)
        return np.bincount(index, minlength=length)

    def codes(self, codec: Codec) -> np.ndarray:
        """The column's fine codes (encoded on first use)."""
        if codec.name not in self._fine:
            self._fine[codec.name] = codec.encode(self.frame[codec.name])
        return self._fine[codec.name]

    def fine_counts(self, codecs: list[Codec]) -> list[np.ndarray]:
        return [np.bincount(self.codes(codec), minlength=codec.n_codes) for codec in codecs]

    def binned_counts(
        self, codecs: list[Codec], bins: list[np.ndarray], groups: list[tuple[int, ...]]
    ) -> list[np.ndarray]:
        binned: dict[int, np.ndarray] = {}
        sizes = [int(b.max()) + 1 for b in bins]
        tables = []
        for group in groups:
            combined = np.zeros(len(self.frame), dtype=np.int64)
            for column in group:
                if column not in binned:
                    binned[column] = bins[column][self.codes(codecs[column])]
                combined = combined * sizes[column] + binned[column]
            shape = tuple(sizes[column] for column in group)
            tables.append(np.bincount(combined, minlength=int(np.prod(shape))).reshape(shape))
        return tables
