"""``TableCounter`` (the worker's side of DuckDB's streamed codes) adds up exactly the tables a
plain count of the code tuples gives, whatever the batches and the slices they are cut into."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest

from synth_engine.generators.counts import TableCounter


def plain_table(columns: list[np.ndarray], sizes: list[int], group: tuple[int, ...]) -> np.ndarray:
    """The table of ``group``'s code tuples, counted one row at a time."""
    table = np.zeros(tuple(sizes[c] for c in group), dtype=np.int64)
    for cell, n in Counter(zip(*(columns[c].tolist() for c in group), strict=True)).items():
        table[cell] += n
    return table


def test_tables_added_up_over_uneven_batches_and_slices_equal_a_plain_count() -> None:
    rng = np.random.default_rng(5)
    sizes = [2, 7, 1, 33, 5, 128, 3]
    rows = 2_345
    dtypes = [np.int8, np.int16, np.int8, np.int64, np.int32, np.int16, np.uint8]
    columns = [rng.integers(0, size, rows).astype(dtype) for size, dtype in zip(sizes, dtypes, strict=True)]
    # groups sharing a prefix out of order, single columns, a column twice, four columns
    groups = [(0, 1, 3), (4,), (0, 3, 1), (0, 1, 4), (5, 6), (0, 1, 5), (2,), (6, 3, 1, 4), (1, 1), (0, 3, 6)]
    counter = TableCounter(sizes, groups)
    counter.slice_rows = 97  # slices that do not divide the batches
    start = 0
    for size in [1, 500, 0, 1_000, 844]:  # batches of uneven sizes (one empty) adding up to the rows
        counter.add([column[start : start + size] for column in columns])
        start += size
    assert start == rows
    for group, table in zip(groups, counter.tables(), strict=True):
        expected = plain_table(columns, sizes, group)
        assert table.shape == expected.shape and np.array_equal(table, expected)
        assert table.sum() == rows


def test_a_code_outside_its_column_or_batches_of_uneven_columns_are_refused() -> None:
    counter = TableCounter([3, 4], [(0, 1)])
    with pytest.raises(ValueError, match="column 1 holds a code outside 0..3"):
        counter.add([np.array([0, 1]), np.array([2, 4])])
    with pytest.raises(ValueError, match="column 0 holds a code outside 0..2"):
        counter.add([np.array([-1, 1]), np.array([2, 3])])
    with pytest.raises(ValueError, match="differ in length"):
        counter.add([np.array([0, 1]), np.array([2])])
    assert counter.tables()[0].sum() == 0  # a refused batch counts nothing
