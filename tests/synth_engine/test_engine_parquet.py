"""Counts of Parquet files read batch by batch equal the in-memory counts, and MST fitted from them
is the same model. No database: the table of ``test_engine_postgres`` written as three files."""

from __future__ import annotations

import numpy as np
import pytest

from synth_engine.engines.parquet import ParquetCounts
from synth_engine.generators import SchemaMismatchError
from synth_engine.generators.counts import FrameCounts
from tests.synth_engine.test_engine_postgres import adult_frame, adult_schema, assert_same_counts, fitted


@pytest.fixture
def lake(tmp_path):
    frame, schema = adult_frame(), adult_schema()
    for part, rows in enumerate(np.array_split(np.arange(len(frame)), 3)):
        frame.iloc[rows].to_parquet(tmp_path / f"part-{part}.parquet", index=False)
    return frame, schema, ParquetCounts(tmp_path, schema, batch_rows=400)


def test_every_count_mst_reads_is_the_same_from_parquet_batches_as_from_the_frame(lake) -> None:
    frame, schema, files = lake
    assert_same_counts(files, frame, schema)


@pytest.mark.parametrize("params", [{}, {"label_fraction": 0.0}])
def test_mst_fitted_from_parquet_counts_samples_byte_identical_rows(lake, params) -> None:
    frame, schema, files = lake
    from_files, from_memory = fitted(files, schema, **params), fitted(FrameCounts(frame), schema, **params)
    assert from_files.count_engine_ == "parquet"
    assert from_files.sample(2000).to_csv(index=False) == from_memory.sample(2000).to_csv(index=False)


def test_a_lake_without_a_schema_column_or_without_files_is_refused(lake, tmp_path) -> None:
    _, schema, _ = lake
    extra = {"columns": [*schema["columns"], {"name": "ward", "type": "categorical"}]}
    with pytest.raises(SchemaMismatchError, match="no column 'ward'"):
        ParquetCounts(tmp_path, extra)
    with pytest.raises(SchemaMismatchError, match="no Parquet file"):
        ParquetCounts(tmp_path / "absent", schema)
