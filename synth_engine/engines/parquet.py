"""Grouped counts of Parquet files, read batch by batch: memory bounded by the batch, not the table.

:class:`ParquetCounts` answers the :class:`~synth_engine.generators.counts.CountSource` questions
by scanning a Parquet file or a directory of them with ``pyarrow.dataset`` in record batches of
:data:`BATCH_ROWS` rows, only the schema's columns; each batch is counted with
:class:`~synth_engine.generators.counts.FrameCounts` and the counts are added, so the answers are
the same integers as the in-memory path's on the same values. Each stage is one scan: the domain
stage's counts for every column are taken together, as are the fine 1-ways and the binned tables.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow.dataset as ds

from core.schema import ColumnSpec
from synth_engine.generators.base import SchemaMismatchError
from synth_engine.generators.counts import FrameCounts
from synth_engine.generators.domain import Codec, magnitude_thresholds, parse_schema

BATCH_ROWS = 200_000


class ParquetCounts:
    """The grouped counts of a Parquet file or directory, for the columns of ``schema``."""

    engine = "parquet"

    def __init__(self, path: str | Path, schema: dict[str, Any], *, batch_rows: int = BATCH_ROWS) -> None:
        self.path = Path(path)
        self.specs = parse_schema(schema)
        self.batch_rows = batch_rows
        if not self.path.exists():
            raise SchemaMismatchError(f"no Parquet file or directory at {self.path}")
        self.dataset = ds.dataset(str(self.path), format="parquet")
        absent = [spec.name for spec in self.specs if spec.name not in self.dataset.schema.names]
        if absent:
            raise SchemaMismatchError(f"the Parquet data has no column {', '.join(map(repr, absent))}")
        self._domain: dict[str, Any] | None = None

    def batches(self) -> Iterator[pd.DataFrame]:
        """The schema's columns, one batch at a time, as pandas frames."""
        columns = [spec.name for spec in self.specs]
        for batch in self.dataset.to_batches(columns=columns, batch_size=self.batch_rows):
            yield batch.to_pandas()

    def row_count(self) -> int:
        return int(self.dataset.count_rows())

    def _domain_counts(self) -> dict[str, Any]:
        """One scan for the domain stage: value counts and magnitude histograms of every column
        whose domain is not declared."""
        if self._domain is not None:
            return self._domain
        wanted = [spec for spec in self.specs if spec.needs_private_domain]
        categories: dict[str, Counter[Any]] = {spec.name: Counter() for spec in wanted if not spec.is_numeric}
        magnitudes = {
            spec.name: np.zeros(2 * len(magnitude_thresholds(integer=spec.type != "float")) + 1, dtype=np.int64)
            for spec in wanted
            if spec.is_numeric
        }
        if wanted:
            for frame in self.batches():
                counts = FrameCounts(frame)
                for spec in wanted:
                    if spec.is_numeric:
                        magnitudes[spec.name] += counts.magnitude_counts(spec, integer=spec.type != "float")
                    else:
                        keys, found = counts.category_counts(spec)
                        categories[spec.name].update(dict(zip(keys, found.tolist(), strict=True)))
        self._domain = {"categories": categories, "magnitudes": magnitudes}
        return self._domain

    def category_counts(self, spec: ColumnSpec) -> tuple[list[Any], np.ndarray]:
        found = self._domain_counts()["categories"][spec.name]
        return list(found), np.array(list(found.values()), dtype=np.int64)

    def magnitude_counts(self, spec: ColumnSpec, *, integer: bool) -> np.ndarray:
        cached = self._domain_counts()["magnitudes"]
        if spec.name in cached and integer == (spec.type != "float"):
            histogram: np.ndarray = cached[spec.name]
            return histogram
        total = np.zeros(2 * len(magnitude_thresholds(integer=integer)) + 1, dtype=np.int64)
        for frame in self.batches():  # a bucketing the domain stage did not ask for: one more scan
            total += FrameCounts(frame).magnitude_counts(spec, integer=integer)
        return total

    def fine_counts(self, codecs: list[Codec]) -> list[np.ndarray]:
        totals = [np.zeros(codec.n_codes, dtype=np.int64) for codec in codecs]
        for frame in self.batches():
            for total, counts in zip(totals, FrameCounts(frame).fine_counts(codecs), strict=True):
                total += counts
        return totals

    def binned_counts(
        self, codecs: list[Codec], bins: list[np.ndarray], groups: list[tuple[int, ...]]
    ) -> list[np.ndarray]:
        totals: list[np.ndarray] | None = None
        for frame in self.batches():
            counted = FrameCounts(frame).binned_counts(codecs, bins, groups)
            if totals is None:
                totals = counted
            else:
                for total, counts in zip(totals, counted, strict=True):
                    total += counts
        if totals is None:
            sizes = [int(b.max()) + 1 for b in bins]
            return [np.zeros(tuple(sizes[c] for c in group), dtype=np.int64) for group in groups]
        return totals
