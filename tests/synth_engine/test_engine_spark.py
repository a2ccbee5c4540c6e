"""Counts computed by Apache Spark equal the in-memory counts, and MST fitted from them is the same model.

The table of ``test_engine_postgres`` (missing values, undeclared categories, a nullable boolean, a
datetime with sub-second parts, integer and float columns with and without bounds), plus a float
column on a declared grid, written as Parquet files and read by one local Spark session (Debian's
OpenJDK) for the whole module.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from synth_engine.engines.spark import SparkCounts, SparkUnavailableError, holdout_predicate, spark_session
from synth_engine.generators import GeneratorError, SchemaMismatchError
from synth_engine.generators.counts import FrameCounts
from synth_engine.generators.domain import parse_schema
from tests.synth_engine.test_engine_postgres import adult_frame, adult_schema, fitted

pytestmark = pytest.mark.spark

MASTER = "local[1]"


def spark_frame() -> pd.DataFrame:
    frame = adult_frame(1200)
    rng = np.random.default_rng(5)
    price = np.round(rng.uniform(0.0, 40.0, len(frame)) / 0.25) * 0.25
    price[rng.random(len(frame)) < 0.05] = np.nan
    frame["price"] = price
    return frame


def spark_schema() -> dict:
    schema = adult_schema()
    schema["columns"].append({"name": "price", "type": "float", "min": 0, "max": 40, "step": 0.25})
    return schema


def write_parquet(frame: pd.DataFrame, directory, parts: int = 3) -> str:
    """Spark reads timestamps in micro- or milliseconds, not pandas' default nanoseconds."""
    directory.mkdir(parents=True, exist_ok=True)
    for part, rows in enumerate(np.array_split(np.arange(len(frame)), parts)):
        frame.iloc[rows].to_parquet(directory / f"part-{part}.parquet", index=False, coerce_timestamps="us")
    return str(directory)


@pytest.fixture(scope="module")
def spark():
    return spark_session(MASTER)


@pytest.fixture(scope="module")
def lake(spark, tmp_path_factory):
    frame, schema = spark_frame(), spark_schema()
    path = write_parquet(frame, tmp_path_factory.mktemp("lake") / "visits")
    return frame, schema, path, SparkCounts(spark, schema, parquet=path)


class Recorded:
    """A count source that answers from ``source`` and keeps every question and answer."""

    def __init__(self, source) -> None:
        self.source, self.engine, self.asked = source, source.engine, []

    def __getattr__(self, name: str):
        method = getattr(self.source, name)

        def answer(*args, **kwargs):
            found = method(*args, **kwargs)
            self.asked.append((name, args, kwargs, found))
            return found

        return answer


def same(ours, theirs) -> bool:
    if isinstance(ours, tuple):  # category_counts: keys and counts, in any order
        return dict(zip(ours[0], ours[1].tolist(), strict=True)) == dict(
            zip(theirs[0], theirs[1].tolist(), strict=True)
        )
    if isinstance(ours, list):
        return len(ours) == len(theirs) and all(
            a.shape == b.shape and np.array_equal(a, b) for a, b in zip(ours, theirs, strict=True)
        )
    return np.array_equal(ours, theirs)


@pytest.mark.parametrize("selection_rows", [1_000_000, 200])  # 200: the tree scored on a sample of the 1,200 rows
def test_every_count_is_the_same_from_spark_and_mst_fitted_from_them_samples_byte_identical_rows(
    lake, selection_rows
) -> None:
    frame, schema, _, counts = lake
    assert counts.check() == []
    spark = Recorded(counts)
    from_spark = fitted(spark, schema, label_fraction=0.3, selection_rows=selection_rows)
    from_memory = fitted(FrameCounts(frame), schema, label_fraction=0.3, selection_rows=selection_rows)
    memory = FrameCounts(frame)
    asked = {name for name, *_ in spark.asked}
    # and the fit's questions were asked inside its fitting (which keeps nothing in Spark)
    assert asked == {"fitting", "row_count", "category_counts", "magnitude_counts", "fine_counts", "binned_counts"}
    assert spark.asked[0][0] == "fitting"
    sampled = [kwargs["sample"] for name, _, kwargs, _ in spark.asked if kwargs.get("sample") is not None]
    assert len(sampled) == (selection_rows < 1_000_000)
    for name, args, kwargs, found in spark.asked[1:]:
        assert same(found, getattr(memory, name)(*args, **kwargs)), name
    assert from_spark.count_engine_ == "spark" and from_memory.count_engine_ == "pandas"
    assert from_spark.privacy_spent().to_dict() == from_memory.privacy_spent().to_dict()
    assert {codec.name for codec in from_spark.codecs_} >= {"seen", "score", "price", "flag", "workclass"}
    ours, theirs = from_spark.sample(2000), from_memory.sample(2000)
    assert ours.to_csv(index=False).encode() == theirs.to_csv(index=False).encode()


def test_the_split_checksum_and_samples_are_computed_by_spark_and_do_not_depend_on_row_order(
    spark, lake, tmp_path
) -> None:
    frame, schema, path, counts = lake
    holdout = holdout_predicate(schema, 7, 0.25)
    held = SparkCounts(spark, schema, parquet=path, where=holdout).row_count()
    assert held + SparkCounts(spark, schema, parquet=path).restricted(f"NOT {holdout}").row_count() == len(frame)
    assert 0.18 < held / len(frame) < 0.32
    original = counts.checksum()
    assert original[0] == len(frame)
    reordered = write_parquet(frame.sample(frac=1.0, random_state=1), tmp_path / "shuffled", parts=2)
    assert SparkCounts(spark, schema, parquet=reordered).checksum() == original
    changed = write_parquet(frame.assign(age=frame["age"].where(frame.index != 3, 41)), tmp_path / "changed")
    assert SparkCounts(spark, schema, parquet=changed).checksum()[1] != original[1]
    sample = counts.sample_rows(where=holdout, seed=7, limit=50)
    assert list(sample.columns) == [spec.name for spec in parse_schema(schema)] and len(sample) == 50
    assert [len(chunk) for chunk in counts.row_chunks(500)] == [500, 500, 200]


def test_data_that_does_not_match_the_schema_is_refused_by_spark_before_any_fit(spark, lake, tmp_path) -> None:
    frame, schema, path, _ = lake
    with pytest.raises(SchemaMismatchError, match="no Parquet data"):
        SparkCounts(spark, schema, parquet=str(tmp_path / "absent"))
    extra = {"columns": [*schema["columns"], {"name": "absent", "type": "integer"}]}
    with pytest.raises(SchemaMismatchError, match="no column 'absent'"):
        SparkCounts(spark, extra, parquet=path).check()
    changed = {
        "education": {"type": "integer"},
        "workclass": {"categories": ["Private"]},
        "score": {"nullable": False},
        "price": {"step": 0.3},
        "hours-per-week": {"type": "float"},
    }
    columns = [{**c, **changed.get(c["name"], {})} for c in schema["columns"]]
    with pytest.raises(SchemaMismatchError, match="declared integer but is string"):
        SparkCounts(spark, {"columns": columns}, parquet=path).check()
    columns = [c for c in columns if c["name"] != "education"]
    bad = frame.assign(score=frame["score"].where(frame.index != 5, np.inf)).drop(columns="education")
    bad.loc[7, "income"] = None
    with pytest.raises(SchemaMismatchError) as refused:
        SparkCounts(spark, {"columns": columns}, parquet=write_parquet(bad, tmp_path / "bad")).check()
    assert str(refused.value).split("; ") == [
        "column 'workclass' has values outside its declared categories: add them to the schema",
        "label column 'income' has missing values: a label column is not nullable unless the schema declares "
        '"nullable": true (then missing is one of its released values)',
        "column 'score' is declared nullable: false but has missing values",
        "column 'score' holds ±inf: replace it or mark it missing",
        "column 'price' is declared on a grid of step 0.3 but holds values off it",
    ]
    with pytest.raises(GeneratorError, match="has no rows"):
        SparkCounts(spark, schema, parquet=write_parquet(frame.head(0), tmp_path / "empty", parts=1)).check()


def test_the_session_is_launched_with_its_memory_bounds_and_leaves_the_workers_environment_as_it_was(spark) -> None:
    """The JVM's heap, collector and glibc arenas, the Arrow batches and the executors' arenas
    (docs/engines.md, "The session"): the JVM launched by this process carries them; the worker's own
    environment does not keep the arenas' variable."""
    import os

    import psutil

    from synth_engine.engines.spark import SessionMemory

    memory = SessionMemory()
    conf = spark.sparkContext.getConf()
    assert conf.get("spark.driver.memory") == memory.driver_memory == "512m"
    assert conf.get("spark.driver.extraJavaOptions").endswith(" -XX:+UseSerialGC")
    assert conf.get("spark.sql.execution.arrow.maxRecordsPerBatch") == "32768"
    assert conf.get("spark.executorEnv.MALLOC_ARENA_MAX") == "2"
    (jvm,) = [child for child in psutil.Process().children(recursive=True) if child.name() == "java"]
    assert jvm.environ().get("MALLOC_ARENA_MAX") == "2"
    assert "-Xmx512m" in jvm.cmdline() and "-XX:+UseSerialGC" in " ".join(jvm.cmdline())
    assert "MALLOC_ARENA_MAX" not in os.environ


def test_a_session_that_does_not_start_in_time_or_at_all_is_refused_with_a_reason(spark) -> None:
    with pytest.raises(SparkUnavailableError, match="could not start on master 'nowhere'"):
        spark_session("nowhere")
    with pytest.raises(SparkUnavailableError, match=r"did not start on master 'local\[1\]' within 0.01 s"):
        spark_session(MASTER, start_timeout=0.01)
    assert spark_session(MASTER).range(3).count() == 3  # the worker starts a local session again


def test_a_query_slower_than_its_bound_is_cancelled_with_the_reason_and_the_session_stays_usable() -> None:
    """A stand-in for a cluster that lost its executors mid-count: each row of the table takes 0.5 s
    (a Python UDF sleeping), so the count cannot finish within its 2 s bound; its job group is
    cancelled (no job is left running) and the next query on the same session answers."""
    import time

    spark = spark_session(MASTER)  # the worker's session now (a test above restarts it)

    from pyspark.sql.types import LongType

    from synth_engine.engines.spark import SparkQueryTimeoutError

    def slow(value: int) -> int:
        import time as clock  # runs in the executor's Python

        clock.sleep(0.5)
        return value

    spark.udf.register("synthgate_test_slow", slow, LongType())
    # filtered on the UDF's value, so a count cannot prune the UDF away
    rows = spark.range(0, 40, 1, 2).selectExpr("synthgate_test_slow(id) AS age").where("age >= 0")
    rows.createOrReplaceTempView("slow_rows")
    schema = {"columns": [{"name": "age", "type": "integer"}]}
    slow_rows = SparkCounts(spark, schema, table="slow_rows", query_timeout=2)
    started = time.monotonic()
    with pytest.raises(SparkQueryTimeoutError, match=r"did not finish the row count over slow_rows within 2 s"):
        slow_rows.row_count()
    assert time.monotonic() - started < 15  # 40 rows at 0.5 s on 1 core would take 20 s
    with pytest.raises(SparkQueryTimeoutError, match="streaming the rows for the fingerprint"):
        next(slow_rows.restricted(None).row_chunks(10))
    tracker = spark.sparkContext.statusTracker()
    deadline = time.monotonic() + 20
    while tracker.getActiveJobsIds() and time.monotonic() < deadline:
        time.sleep(0.2)
    assert tracker.getActiveJobsIds() == []
    spark.range(0, 5).selectExpr("id AS age").createOrReplaceTempView("slow_rows")  # the same name, fast now
    fast = SparkCounts(spark, schema, table="slow_rows", query_timeout=60)
    assert fast.row_count() == 5 and [len(chunk) for chunk in fast.row_chunks(3)] == [3, 2]
