"""Counts computed by DuckDB over Parquet files equal the in-memory counts, MST fitted from them is
the same model, and the table is checked, fingerprinted, split and sampled in DuckDB.

No database: the table of ``test_engine_postgres`` (missing values, undeclared and declared
categories, a nullable boolean, datetimes with sub-second parts) written as three Parquet files in
two directories.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from synth_engine.engines.duckdb import DuckDBCounts, parquet_files
from synth_engine.generators import GeneratorError, SchemaMismatchError
from synth_engine.generators.counts import FrameCounts
from tests.synth_engine.test_engine_postgres import (
    adult_frame,
    adult_schema,
    assert_same_counts,
    assert_same_fine_counts,
    fitted,
    grid_frame,
)


def write_lake(frame: pd.DataFrame, root, parts: int = 3) -> None:
    for part, rows in enumerate(np.array_split(np.arange(len(frame)), parts)):
        directory = root / f"year={2024 + part % 2}"
        directory.mkdir(parents=True, exist_ok=True)
        frame.iloc[rows].to_parquet(directory / f"part-{part}.parquet", index=False)


@pytest.fixture
def lake(tmp_path):
    frame, schema = adult_frame(), adult_schema()
    write_lake(frame, tmp_path / "lake")
    counts = DuckDBCounts(tmp_path / "lake", schema, memory_limit="256MB", threads=1)
    yield frame, schema, counts
    counts.close()


def test_every_count_mst_reads_is_the_same_from_duckdb_as_from_the_frame(lake) -> None:
    frame, schema, counts = lake
    assert len(counts.files) == 3 and counts.check() == []
    assert_same_counts(counts, frame, schema)


@pytest.mark.parametrize("params", [{}, {"label_fraction": 0.0}, {"structure": "tree"}, {"label_features": 2}])
def test_mst_fitted_from_duckdb_counts_samples_byte_identical_rows(lake, params) -> None:
    frame, schema, counts = lake
    from_memory = fitted(FrameCounts(frame), schema, **params)
    from_lake = fitted(counts, schema, **params)
    assert from_lake.count_engine_ == "duckdb"
    assert from_memory.privacy_spent().to_dict() == from_lake.privacy_spent().to_dict()
    ours, theirs = from_lake.sample(3000), from_memory.sample(3000)
    assert ours.to_csv(index=False).encode() == theirs.to_csv(index=False).encode()


def test_a_file_a_directory_and_a_glob_name_the_files_they_hold(lake, tmp_path) -> None:
    frame, schema, counts = lake
    first = tmp_path / "lake" / "year=2024" / "part-0.parquet"
    assert parquet_files(first) == [str(first)]
    assert [name.rsplit("/", 2)[-2] for name in parquet_files(tmp_path / "lake" / "year=2024")] == ["year=2024"] * 2
    in_2025 = DuckDBCounts(str(tmp_path / "lake" / "*2025" / "*.parquet"), schema)
    assert in_2025.row_count() == 500 and in_2025.files == [str(tmp_path / "lake" / "year=2025" / "part-1.parquet")]
    assert_same_counts(in_2025, frame.iloc[500:1000], schema)
    in_2025.close()
    with pytest.raises(SchemaMismatchError, match="no Parquet file"):
        DuckDBCounts(tmp_path / "absent", schema)
    with pytest.raises(SchemaMismatchError, match="no Parquet file"):
        DuckDBCounts(str(tmp_path / "lake" / "*.csv"), schema)


def refused(frame: pd.DataFrame, schema: dict, tmp_path, name: str) -> DuckDBCounts:
    (tmp_path / name).mkdir()
    frame.to_parquet(tmp_path / name / "data.parquet", index=False)
    return DuckDBCounts(tmp_path / name, schema)


def test_data_that_does_not_match_the_schema_is_refused_in_duckdb_before_any_fit(lake, tmp_path) -> None:
    frame, schema, counts = lake

    def changed(column: str, **declared) -> dict:
        return {"columns": [{**c, **declared} if c["name"] == column else c for c in schema["columns"]]}

    extra = {"columns": [*schema["columns"], {"name": "absent", "type": "integer"}]}
    with pytest.raises(SchemaMismatchError, match="no column 'absent'"):
        DuckDBCounts(counts.path, extra).check()
    with pytest.raises(SchemaMismatchError, match="declared integer but is VARCHAR"):
        DuckDBCounts(counts.path, changed("education", type="integer")).check()
    with pytest.raises(SchemaMismatchError, match="declared datetime but is BIGINT"):
        DuckDBCounts(counts.path, changed("age", type="datetime", min=None, max=None)).check()
    with pytest.raises(SchemaMismatchError, match="outside its declared categories"):
        DuckDBCounts(counts.path, changed("workclass", categories=["Private"])).check()
    with pytest.raises(SchemaMismatchError, match="nullable: false"):
        DuckDBCounts(counts.path, changed("score", nullable=False)).check()
    with pytest.raises(SchemaMismatchError, match="weekdays calendar"):  # the fixture's dates include weekends
        DuckDBCounts(counts.path, changed("seen", resolution="day", calendar="weekdays")).check()
    weekdays = frame.assign(seen=frame["seen"].where(frame["seen"].dt.dayofweek < 5, pd.Timestamp("2020-03-02")))
    assert refused(weekdays, changed("seen", resolution="day", calendar="weekdays"), tmp_path, "weekdays").check() == []
    infinite = frame.assign(score=frame["score"].where(frame.index != 5, -np.inf))
    with pytest.raises(SchemaMismatchError, match="±inf"):
        refused(infinite, schema, tmp_path, "infinite").check()
    fractions = frame.assign(age=frame["age"].astype(float).where(frame.index != 7, 40.5))
    with pytest.raises(SchemaMismatchError, match="declared integer but has fractions"):
        refused(fractions, schema, tmp_path, "fractions").check()
    with pytest.raises(GeneratorError, match="no rows"):
        refused(frame.head(0), schema, tmp_path, "empty").check()


def test_the_checksum_is_order_independent_and_changes_with_one_value(lake, tmp_path) -> None:
    frame, schema, counts = lake
    shuffled = frame.sample(frac=1.0, random_state=4)
    write_lake(shuffled, tmp_path / "shuffled", parts=4)
    again = DuckDBCounts(tmp_path / "shuffled", schema)
    assert again.checksum() == counts.checksum() and counts.checksum()[0] == len(frame)
    edited = frame.copy()
    edited.loc[10, "age"] += 1
    write_lake(edited, tmp_path / "edited")
    assert DuckDBCounts(tmp_path / "edited", schema).checksum()[1] != counts.checksum()[1]


def test_the_holdout_is_a_keyed_hash_split_its_counts_add_up_and_samples_come_from_each_side(lake) -> None:
    frame, schema, counts = lake
    holdout = counts.holdout(seed=8, fraction=0.2)
    assert holdout == counts.holdout(seed=8, fraction=0.2) != counts.holdout(seed=9, fraction=0.2)
    train, held = counts.restricted(f"NOT {holdout}"), counts.restricted(holdout)
    assert train.row_count() + held.row_count() == len(frame) and 200 < held.row_count() < 400
    model = fitted(FrameCounts(frame), schema)
    whole = counts.fine_counts(model.codecs_)
    parts = zip(train.fine_counts(model.codecs_), held.fine_counts(model.codecs_), strict=True)
    assert all(np.array_equal(a + b, total) for (a, b), total in zip(parts, whole, strict=True))
    sample = counts.sample(holdout, seed=8, limit=100)
    assert list(sample.columns) == [column["name"] for column in schema["columns"]] and len(sample) == 100
    assert counts.sample(holdout, seed=8, limit=100).equals(sample)
    everything = counts.sample(holdout, seed=8, limit=10_000)
    assert len(everything) == held.row_count()
    assert sum(len(rows) for rows in counts.row_chunks(400)) == len(frame)


def test_values_outside_declared_bounds_are_counted_in_the_edge_cells_as_in_memory(lake) -> None:
    frame, schema, counts = lake
    narrow = {
        "columns": [
            {**c, "min": 30, "max": 60}
            if c["name"] == "age"
            else {**c, "min": -10.0, "max": 40.0}
            if c["name"] == "score"
            else c
            for c in schema["columns"]
        ]
    }
    assert frame["age"].min() < 30 and frame["age"].max() > 60 and frame["score"].max() > 40.0
    narrowed = DuckDBCounts(counts.path, narrow)
    model = fitted(FrameCounts(frame), narrow)
    for ours, theirs in zip(
        narrowed.fine_counts(model.codecs_), FrameCounts(frame).fine_counts(model.codecs_), strict=True
    ):
        assert np.array_equal(ours, theirs)
    narrowed.close()


def test_a_small_memory_limit_counts_the_grouping_sets_in_several_statements_with_the_same_counts(lake) -> None:
    frame, schema, counts = lake
    small = DuckDBCounts(counts.path, schema, memory_limit="100MB", threads=1)
    assert small.max_sets < 10 < counts.max_sets  # the test's 18 groups take three statements here
    assert_same_counts(small, frame, schema)
    small.close()


def test_values_a_hair_off_a_declared_step_count_in_duckdb_as_the_codec_snaps_them(tmp_path) -> None:
    frame, schema = grid_frame()
    (tmp_path / "grid").mkdir()
    frame.to_parquet(tmp_path / "grid" / "data.parquet", index=False)
    counts = DuckDBCounts(tmp_path / "grid", schema)
    assert counts.check() == []
    assert_same_fine_counts(counts, frame, schema)
    counts.close()


def test_a_table_wider_than_one_grouping_bitmask_counts_every_set_as_in_memory(tmp_path) -> None:
    # 41 columns: the sets are told apart by two GROUPING() masks (31 columns each at most), and
    # the binned stage's keys come back packed in one text per row
    import itertools

    rng = np.random.default_rng(1)
    frame = pd.DataFrame({f"x{i}": rng.integers(0, 5 + i % 7, 1500) for i in range(40)})
    frame["y"] = rng.choice(["a", "b"], 1500)
    integer = {"type": "integer", "role": "other", "min": 0, "max": 12, "nullable": False}
    schema = {
        "columns": [{"name": f"x{i}", **integer} for i in range(40)]
        + [{"name": "y", "type": "categorical", "role": "label", "categories": ["a", "b"], "nullable": False}]
    }
    (tmp_path / "wide").mkdir()
    frame.to_parquet(tmp_path / "wide" / "data.parquet", index=False)
    counts = DuckDBCounts(tmp_path / "wide", schema)
    model = fitted(FrameCounts(frame), schema)
    groups = [(40, a, b) for a, b in itertools.combinations(range(0, 40, 3), 2)] + [(38, 5), (39,), (33, 2)]
    ours = counts.binned_counts(model.codecs_, model.bins_, groups)
    theirs = FrameCounts(frame).binned_counts(model.codecs_, model.bins_, groups)
    assert all(a.shape == b.shape and np.array_equal(a, b) for a, b in zip(ours, theirs, strict=True))
    assert_same_fine_counts(counts, frame, schema)
    counts.close()
