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

from synth_engine.engines import duckdb as duckdb_engine
from synth_engine.engines.duckdb import DuckDBCounts, parquet_files
from synth_engine.generators import GeneratorError, SchemaMismatchError
from synth_engine.generators.counts import FrameCounts, TableCounter
from tests.synth_engine.test_engine_postgres import (
    PAID,
    adult_frame,
    adult_schema,
    assert_same_counts,
    assert_same_fine_counts,
    assert_same_sampled_counts,
    fitted,
    grid_frame,
    wide_frame,
    wide_groups,
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
    assert_same_sampled_counts(counts, frame, schema)


@pytest.mark.parametrize(
    "params",
    [
        {},
        {"label_fraction": 0.0},
        {"structure": "tree"},
        {"label_features": 2},
        {"label_features": 3, "label_edge_weight": 8.0},  # two σ's in the two_way stage
        {"row_estimate": PAID},
        {"selection_rows": 200},  # the tree scored on a sample of about 200 of the 1,500 rows
        {"selection_rows": 200, "structure": "tree"},
    ],
)
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
    # 41 columns: more than one GROUPING() mask would tell the sets apart (31 columns each at most);
    # the fine and binned stages stream 41 code columns a row and count them in the worker
    frame, schema = wide_frame()
    (tmp_path / "wide").mkdir()
    frame.to_parquet(tmp_path / "wide" / "data.parquet", index=False)
    counts = DuckDBCounts(tmp_path / "wide", schema)
    model = fitted(FrameCounts(frame), schema)
    groups = wide_groups()
    ours = counts.binned_counts(model.codecs_, model.bins_, groups)
    theirs = FrameCounts(frame).binned_counts(model.codecs_, model.bins_, groups)
    assert all(a.shape == b.shape and np.array_equal(a, b) for a, b in zip(ours, theirs, strict=True))
    assert_same_fine_counts(counts, frame, schema)
    counts.close()


def test_codes_streamed_in_small_batches_and_slices_count_as_in_memory(lake, tmp_path, monkeypatch) -> None:
    # batches of 128 rows from DuckDB (three files of 500 rows: batches end inside a file and
    # across files) and slices of 50 rows in the worker: every count of the fixture (missing
    # values, undeclared categories, a nullable boolean) and of the 41-column table as in memory
    monkeypatch.setattr(duckdb_engine, "BATCH_ROWS", 128)
    monkeypatch.setattr(TableCounter, "slice_rows", 50)
    frame, schema, counts = lake
    assert_same_counts(counts, frame, schema)
    wide, wide_schema = wide_frame()
    write_lake(wide, tmp_path / "wide", parts=2)
    streamed = DuckDBCounts(tmp_path / "wide", wide_schema, threads=1)
    model = fitted(FrameCounts(wide), wide_schema)
    ours = streamed.binned_counts(model.codecs_, model.bins_, wide_groups())
    theirs = FrameCounts(wide).binned_counts(model.codecs_, model.bins_, wide_groups())
    assert all(a.shape == b.shape and np.array_equal(a, b) for a, b in zip(ours, theirs, strict=True))
    assert_same_fine_counts(streamed, wide, wide_schema)
    streamed.close()


def test_a_missing_value_without_a_missing_code_is_refused_by_the_streamed_stages(tmp_path) -> None:
    # a model fitted where a column had no missing value has no missing code for it: counting
    # data where it is missing names the column instead of counting the row somewhere else
    frame, schema = wide_frame()
    model = fitted(FrameCounts(frame), schema)
    holed = frame.astype({"x7": "Int64"})
    holed.loc[1200, "x7"] = pd.NA
    (tmp_path / "holed").mkdir()
    holed.to_parquet(tmp_path / "holed" / "data.parquet", index=False)
    counts = DuckDBCounts(tmp_path / "holed", schema)
    assert model.codecs_[7].missing_code is None
    with pytest.raises(SchemaMismatchError, match="column 'x7' holds values its codec cannot encode"):
        counts.fine_counts(model.codecs_)
    with pytest.raises(SchemaMismatchError, match="column 'x7' holds values its codec cannot encode"):
        counts.binned_counts(model.codecs_, model.bins_, [(40, 7, 9)])
    assert counts.row_count() == len(frame)  # the connection answers again after a refused stream
    counts.close()


def test_parquet_on_s3_read_through_fsspec_counts_as_the_same_files_on_disk(lake, tmp_path, s3_endpoint) -> None:
    """The lake's files copied to S3 (moto's server) and read by DuckDB through s3fs (no httpfs):
    the same files, counts, checksum, split, samples and rows as on disk."""
    import boto3
    import s3fs

    frame, schema, local = lake
    keys = {"aws_access_key_id": "testing", "aws_secret_access_key": "testing"}
    boto3.client("s3", endpoint_url=s3_endpoint, region_name="us-east-1", **keys).create_bucket(Bucket="engine-lake")
    filesystem = s3fs.S3FileSystem(
        key="testing",
        secret="testing",
        endpoint_url=s3_endpoint,
        client_kwargs={"region_name": "us-east-1"},
        use_listings_cache=False,
        skip_instance_cache=True,
    )
    for name in local.files:
        filesystem.put_file(name, "engine-lake/clinic/" + name.split("/lake/", 1)[1])
    remote = DuckDBCounts("s3://engine-lake/clinic", schema, filesystem=filesystem, threads=1)
    try:
        assert [name.split("/clinic/")[1] for name in remote.files] == [name.split("/lake/")[1] for name in local.files]
        assert remote.check() == []
        assert_same_counts(remote, frame, schema)
        assert remote.checksum() == local.checksum()
        holdout = remote.holdout(seed=8, fraction=0.2)
        assert holdout == local.holdout(seed=8, fraction=0.2)
        for side in (holdout, f"NOT {holdout}"):
            assert remote.restricted(side).row_count() == local.restricted(side).row_count()
            assert remote.sample(side, seed=8, limit=50).equals(local.sample(side, seed=8, limit=50))
        assert sorted(repr(row) for rows in remote.row_chunks(400) for row in rows) == sorted(
            repr(row) for rows in local.row_chunks(400) for row in rows
        )
        in_2025 = DuckDBCounts("s3://engine-lake/clinic/*2025/*.parquet", schema, filesystem=filesystem)
        assert in_2025.files == ["s3://engine-lake/clinic/year=2025/part-1.parquet"] and in_2025.row_count() == 500
        in_2025.close()
        for absent in ("s3://engine-lake/absent", "s3://engine-lake/clinic/*.csv", "s3://no-such-bucket/x"):
            with pytest.raises(SchemaMismatchError, match="no Parquet file"):
                DuckDBCounts(absent, schema, filesystem=filesystem)
    finally:
        remote.close()
