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
Above :attr:`~synth_engine.generators.mst.MSTGenerator.selection_rows`, the 2-way tables scored
for MST's tree are counted on a :class:`RowSample` of the rows: those whose :func:`row_hash` of
their fine codes falls below a bound, by integer arithmetic every engine computes alike.
:class:`TableCounter` adds up the tables of groups of code columns over batches of rows, for an
engine that streams small-integer codes to the worker (``synth_engine.engines.duckdb``).
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
import pandas as pd

from core.schema import ColumnSpec, numeric_values
from synth_engine.generators.domain import Codec, magnitude_index, missing_mask

#: the prime modulus of :func:`row_hash` (2³¹ − 1: every product of two residues fits in 64 bits)
HASH_PRIME = 2_147_483_647
#: the multiplier whose powers weigh the columns in :func:`row_hash` (a primitive root of the prime)
HASH_BASE = 48_271


def hash_weights(columns: int) -> list[int]:
    """Column ``c``'s weight in :func:`row_hash`: ``HASH_BASE ** (c + 1) mod HASH_PRIME``."""
    return [pow(HASH_BASE, c + 1, HASH_PRIME) for c in range(columns)]


def row_hash(codes: Sequence[np.ndarray]) -> np.ndarray:
    """Each row's hash of its fine codes (``codes[c]``: column ``c``'s, every column of the schema
    in order), in ``[0, HASH_PRIME)``: ``h = Σ_c ((code_c + 1) · w_c mod p) mod p``, then ``h² mod p``
    (the square mixes the columns' terms, so the kept rows follow no linear pattern of the codes).

    Integer arithmetic in 64 bits only (each product is below 2⁶²), so every engine computes it
    alike: NumPy here and on Spark's executors, SQL in PostgreSQL and DuckDB
    (:meth:`~synth_engine.engines.sql.SqlCounts.sample_condition`). Rows with the same codes have
    the same hash: duplicates are kept or dropped together."""
    if not codes:
        return np.zeros(0, dtype=np.int64)
    total = np.zeros(len(codes[0]), dtype=np.int64)
    for code, weight in zip(codes, hash_weights(len(codes)), strict=True):
        total += ((np.asarray(code, dtype=np.int64) + 1) * weight) % HASH_PRIME
    total %= HASH_PRIME
    return (total * total) % HASH_PRIME


@dataclass(frozen=True)
class RowSample:
    """The rows whose :func:`row_hash` is below ``keep`` (of ``HASH_PRIME``): a deterministic,
    content-defined sample of about ``keep / HASH_PRIME`` of the rows, the same in every engine."""

    keep: int

    @classmethod
    def of_rate(cls, rate: float) -> RowSample:
        """About ``rate`` of the rows (in (0, 1])."""
        if not 0 < rate <= 1:
            raise ValueError(f"a sampling rate must be in (0, 1], got {rate}")
        return cls(min(HASH_PRIME, max(1, int(rate * HASH_PRIME))))

    @property
    def rate(self) -> float:
        return self.keep / HASH_PRIME

    def mask(self, codes: Sequence[np.ndarray]) -> np.ndarray:
        """Which rows are kept, from the fine codes of every column of the schema (in order)."""
        return row_hash(codes) < self.keep


class CountSource(Protocol):
    """The grouped counts of one table, computed wherever the table lives."""

    #: What computed the counts, for the record (``"pandas"``, ``"postgresql"``).
    engine: str

    def fitting(self) -> contextlib.AbstractContextManager[None]:
        """The questions of one fit are asked inside it: what the source keeps from one stage to
        the next (PostgreSQL: its counting connections and every row's stored fine codes) is
        released when it exits, whether the fit ended, failed or was interrupted."""
        ...

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
        self,
        codecs: list[Codec],
        bins: list[np.ndarray],
        groups: list[tuple[int, ...]],
        sample: RowSample | None = None,
    ) -> list[np.ndarray]:
        """Per group of column indices, the counts of their binned codes (``bins[c][fine code]``),
        shaped ``(k_c for c in group)`` where ``k_c = bins[c].max() + 1``; given ``sample``, of the
        rows it keeps only (its :meth:`RowSample.mask` over the fine codes of all ``codecs``)."""
        ...


class FrameCounts:
    """The counts of a pandas frame (fine codes are encoded once and kept)."""

    engine = "pandas"

    def __init__(self, frame: pd.DataFrame) -> None:
        self.frame = frame
        self._fine: dict[str, np.ndarray] = {}

    def fitting(self) -> contextlib.AbstractContextManager[None]:
        return contextlib.nullcontext()  # the fine codes, once encoded, are kept with the frame

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
        self,
        codecs: list[Codec],
        bins: list[np.ndarray],
        groups: list[tuple[int, ...]],
        sample: RowSample | None = None,
    ) -> list[np.ndarray]:
        binned: dict[int, np.ndarray] = {}
        sizes = [int(b.max()) + 1 for b in bins]
        kept = None if sample is None else sample.mask([self.codes(codec) for codec in codecs])
        rows = len(self.frame) if kept is None else int(kept.sum())
        tables = []
        for group in groups:
            combined = np.zeros(rows, dtype=np.int64)
            for column in group:
                if column not in binned:
                    codes = self.codes(codecs[column])
                    binned[column] = bins[column][codes if kept is None else codes[kept]]
                combined = combined * sizes[column] + binned[column]
            shape = tuple(sizes[column] for column in group)
            tables.append(np.bincount(combined, minlength=int(np.prod(shape))).reshape(shape))
        return tables


class TableCounter:
    """The tables of code tuples of groups of columns, added up over batches of rows.

    ``sizes[c]`` is the number of codes of column ``c`` (its codes are ``0 .. sizes[c] - 1``) and
    each group a tuple of column indices; :meth:`add` takes one batch (an integer code array per
    column, all of one length) and :meth:`tables` gives each group's table, shaped
    ``(sizes[c] for c in group)``. A batch is counted :attr:`slice_rows` rows at a time, so the
    arrays stay in the processor's cache: each group's cell index is its first columns' index
    (computed once a slice for every group sharing it, as the ``(label, a)`` of every
    ``(label, a, b)``) times the last column's size plus its code, then ``numpy.bincount``: a few
    nanoseconds a row and group.
    """

    slice_rows = 65_536

    def __init__(self, sizes: Sequence[int], groups: Sequence[tuple[int, ...]]) -> None:
        self.sizes = [int(size) for size in sizes]
        self.groups = [tuple(int(column) for column in group) for group in groups]
        if any(not group for group in self.groups):
            raise ValueError("a group names no column")
        self.flat = [np.zeros(int(np.prod([self.sizes[c] for c in group])), dtype=np.int64) for group in self.groups]
        # groups sharing their first columns are counted one after another, so one prefix is kept at a time
        self.order = sorted(range(len(self.groups)), key=lambda g: (self.groups[g][:-1], g))
        self.columns = sorted({column for group in self.groups for column in group})

    def add(self, columns: Sequence[np.ndarray]) -> None:
        """Count one batch: ``columns[c]`` holds column ``c``'s codes (columns no group names may be empty)."""
        rows = {len(columns[c]) for c in self.columns}
        if len(rows) > 1:
            raise ValueError(f"the columns of a batch differ in length: {sorted(rows)}")
        for c in self.columns:
            codes = columns[c]
            if len(codes) and (int(codes.min()) < 0 or int(codes.max()) >= self.sizes[c]):
                raise ValueError(f"column {c} holds a code outside 0..{self.sizes[c] - 1}")
        n = rows.pop() if rows else 0
        for start in range(0, n, self.slice_rows):
            part = {c: columns[c][start : start + self.slice_rows] for c in self.columns}
            head: tuple[int, ...] | None = None
            base = np.zeros(0, dtype=np.int64)
            for g in self.order:
                group = self.groups[g]
                if len(group) == 1:
                    index = part[group[0]]
                else:
                    if group[:-1] != head:
                        head, base = group[:-1], self._index(part, group[:-1])
                    index = base * self.sizes[group[-1]]
                    index += part[group[-1]]
                self.flat[g] += np.bincount(index, minlength=self.flat[g].size)

    def _index(self, part: dict[int, np.ndarray], columns: tuple[int, ...]) -> np.ndarray:
        """The cell index of ``columns``' codes (row-major), as int64."""
        index = part[columns[0]].astype(np.int64)
        for column in columns[1:]:
            index *= self.sizes[column]
            index += part[column]
        return index

    def tables(self) -> list[np.ndarray]:
        return [
            flat.reshape(tuple(self.sizes[c] for c in group))
            for flat, group in zip(self.flat, self.groups, strict=True)
        ]
