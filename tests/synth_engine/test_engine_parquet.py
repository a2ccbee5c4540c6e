"""Counts of Parquet files read batch by batch equal the in-memory counts, and MST fitted from them
is the same model. No database: the table of ``test_engine_postgres`` written as three files."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from synth_engine.engines.parquet import ParquetCounts
from synth_engine.generators import SchemaMismatchError
from synth_engine.generators.counts import FrameCounts
from synth_engine.generators.domain import parse_schema
from tests.synth_engine.test_engine_postgres import adult_frame, adult_schema, fitted


@pytest.fixture
def lake(tmp_path):
    frame, schema = adult_frame(), adult_schema()
    for part, rows in enumerate(np.array_split(np.arange(len(frame)), 3)):
        frame.iloc[rows].to_parquet(tmp_path / f"part-{part}.parquet", index=False)
    return frame, schema, ParquetCounts(tmp_path, schema, batch_rows=400)


def test_every_count_mst_reads_is_the_same_from_parquet_batches_as_from_the_frame(lake) -> None:
    frame, schema, files = lake
    memory = FrameCounts(frame)
    assert files.row_count() == len(frame)
    for spec in parse_schema(schema):
        if spec.type == "categorical" and spec.categories is None:
            keys, counts = files.category_counts(spec)
            expected_keys, expected = memory.category_counts(spec)
            assert dict(zip(keys, counts.tolist(), strict=True)) == dict(
                zip(expected_keys, expected.tolist(), strict=True)
            )
        if spec.is_numeric and spec.maximum is None:
            integer = spec.type != "float"
            assert np.array_equal(
                files.magnitude_counts(spec, integer=integer), memory.magnitude_counts(spec, integer=integer)
            )
    model = fitted(memory, schema)
    for ours, theirs in zip(files.fine_counts(model.codecs_), memory.fine_counts(model.codecs_), strict=True):
        assert np.array_equal(ours, theirs)
    groups = [(7, a, b) for a, b in itertools.combinations([0, 2, 5, 8, 9, 10], 2)] + [(7, 4), (1,)]
    for ours, theirs in zip(
        files.binned_counts(model.codecs_, model.bins_, groups),
        memory.binned_counts(model.codecs_, model.bins_, groups),
        strict=True,
    ):
        assert np.array_equal(ours, theirs)


@pytest.mark.parametrize("params", [{}, {"label_fraction": 0.3}])
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
