"""A dataset version that refers to Parquet files counted by Apache Spark (engine ``spark``): rows
fingerprinted as an upload's, a job fitted from counts computed by a local Spark session whose
datasheet names Spark, and a job whose Spark session cannot start failing before any spend.

The application database is the machine's PostgreSQL; Spark runs locally on Debian's OpenJDK (one
session for the module, the master the engine tests use, so a run of both starts one JVM).
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from audits.facts import datasheet_facts
from core.errors import ConflictError
from governance.models import BudgetEntry, EntryKind
from governance.services import budget_balance, dataset_register
from governance.services.budget import row_estimate_epsilon
from synth_engine.models import JobStatus
from synth_engine.services import generation_job_start
from synth_engine.sources import source_register
from tests.jobs.conftest import approved_request_create
from tests.synth_engine.test_engine_spark import MASTER, write_parquet

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.spark]

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "adult_2000.csv"


@pytest.fixture
def lake(settings, adult_schema, tmp_path):
    """The adult fixture as three Parquet files under ``<root>/adult``; ``<root>`` is the allowed root."""
    root = tmp_path / "lake"
    settings.SYNTHGATE_SOURCE_PARQUET_ROOTS = [str(root.resolve())]
    settings.SYNTHGATE_SPARK_MASTER = MASTER
    frame = pd.read_csv(FIXTURE, dtype=str, keep_default_na=False)[[c["name"] for c in adult_schema["columns"]]]
    for column in adult_schema["columns"]:
        if column["type"] == "integer":
            frame[column["name"]] = frame[column["name"]].astype("int64")
    write_parquet(frame, root / "adult")
    return root


def register(cast, schema, path, **overrides):
    arguments = {
        "actor": cast.steward,
        "name": "adult",
        "engine": "spark",
        "path": str(path),
        "schema": schema,
        "epsilon_cap": "10",
        "delta_cap": "1e-4",
        **overrides,
    }
    return source_register(**arguments)


def test_a_job_on_parquet_counted_by_spark_fits_mst_there_and_the_datasheet_names_spark(cast, lake, adult_schema):
    version = register(cast, adult_schema, lake / "adult").version
    reference = version.source_reference
    assert reference["engine"] == "spark" and reference["n_rows"] == 2000 and version.storage_key == ""
    request = approved_request_create(cast, adult_schema)
    job = generation_job_start(actor=cast.requester, request_id=request.pk)
    job.refresh_from_db()
    assert job.status == JobStatus.SUCCEEDED, job.error
    counts = job.output_version.lineage["counts"]
    assert counts["engine"] == "spark" and counts["path"] == str(lake / "adult")
    train, holdout = job.train_version, job.holdout_version
    assert train.n_rows + holdout.n_rows == 2000 and 0 < holdout.n_rows < train.n_rows
    assert job.output_version.n_rows == 400
    assert BudgetEntry.objects.filter(request=request, kind=EntryKind.SPEND).count() == 1
    steps = datasheet_facts(request.audit_runs.get()).preprocessing
    assert any("computed by the engine where the data lives (spark)" in step for step in steps)


def test_rows_read_by_spark_fingerprint_as_an_upload_of_the_same_rows(cast, settings, tmp_path):
    from tests.synth_engine.test_engine_postgres import adult_frame
    from tests.synth_engine.test_engine_postgres import adult_schema as engine_schema

    frame, schema = adult_frame(600), engine_schema()  # datetimes, floats with NaN, nullable booleans
    settings.SYNTHGATE_SOURCE_PARQUET_ROOTS = [str(tmp_path.resolve())]
    settings.SYNTHGATE_SPARK_MASTER = MASTER
    register(cast, schema, write_parquet(frame, tmp_path / "mixed", parts=2), name="mixed")
    upload = tmp_path / "mixed.csv"
    frame.to_csv(upload, index=False)
    with pytest.raises(ConflictError, match="overlap dataset 'mixed'") as refused:
        dataset_register(
            actor=cast.steward,
            name="upload",
            path=upload,
            filename="mixed.csv",
            schema=schema,
            epsilon_cap="10",
            delta_cap="1e-4",
        )
    assert refused.value.extra["share_of_new"] == 1.0


def test_a_job_whose_spark_session_cannot_start_fails_with_the_reason_before_any_spend(
    cast, lake, adult_schema, settings
):
    register(cast, adult_schema, lake / "adult")
    request = approved_request_create(cast, adult_schema)
    settings.SYNTHGATE_SPARK_MASTER = "nowhere"  # a worker pointed at a master Spark cannot use
    job = generation_job_start(actor=cast.requester, request_id=request.pk)
    job.refresh_from_db()
    assert job.status == JobStatus.FAILED and "Spark could not start on master 'nowhere'" in job.error
    assert not BudgetEntry.objects.filter(request=request, kind=EntryKind.SPEND).exists()
    balance = budget_balance(dataset=request.dataset)
    # only the source version's DP row estimate, spent at registration
    assert balance.epsilon_spent == row_estimate_epsilon() and balance.epsilon_reserved == 0


def test_a_job_whose_spark_query_outlasts_its_bound_fails_with_the_reason_before_any_spend(
    cast, lake, adult_schema, settings, tmp_path
):
    """The session has started; each query is bounded (SYNTHGATE_SPARK_QUERY_TIMEOUT). The table is
    a view of the lake whose rows pass through a function that stalls while a flag file exists (a
    cluster that stopped answering): registered at full speed, then stalled, the job's first query
    that reads the stalled column (the checksum) is cancelled at the bound and the job fails with
    the reason, before any spend, instead of waiting for the heartbeat reaper; the reservation is
    released. (A 10 ms bound that only outlasted the queries by chance let a quiet machine finish
    the loading checks and time out in the fit, after the spend.)"""
    from pyspark.sql import functions as F

    from synth_engine.engines.spark import spark_session

    stall = tmp_path / "stall"

    def passing(value):  # runs in Spark's Python worker: reads the flag, returns the value unchanged
        import os
        import time

        while os.path.exists(str(stall)):
            time.sleep(0.05)
        return value

    rows = spark_session(MASTER).read.parquet(str(lake / "adult"))
    rows = rows.withColumn("age", F.udf(passing, rows.schema["age"].dataType)(F.col("age")))
    rows.createOrReplaceGlobalTempView("adult_stalling")
    settings.SYNTHGATE_SOURCE_SPARK_DATABASES = ["global_temp"]
    register(cast, adult_schema, "", table="global_temp.adult_stalling")
    request = approved_request_create(cast, adult_schema)
    settings.SYNTHGATE_SPARK_QUERY_TIMEOUT = 1.5
    stall.touch()
    try:
        job = generation_job_start(actor=cast.requester, request_id=request.pk)
    finally:
        stall.unlink()
    job.refresh_from_db()
    assert job.status == JobStatus.FAILED, job.error
    assert "Spark did not finish" in job.error and "within 1.5 s" in job.error
    assert "SYNTHGATE_SPARK_QUERY_TIMEOUT" in job.error
    assert not BudgetEntry.objects.filter(request=request, kind=EntryKind.SPEND).exists()
    balance = budget_balance(dataset=request.dataset)
    # only the source version's DP row estimate, spent at registration
    assert balance.epsilon_spent == row_estimate_epsilon() and balance.epsilon_reserved == 0


def test_a_catalog_table_registers_by_name_in_an_allowed_database_and_a_job_fits_from_spark_counts(
    cast, lake, adult_schema, settings
):
    """The same rows as a table of the session's catalog (a global temporary view: the local session
    has no metastore), registered by name with engine spark: refused outside the allowed databases,
    then checked, fingerprinted and counted through the catalog, the job's lineage naming the table."""
    from core.errors import ValidationError
    from synth_engine.engines.spark import SparkCounts, spark_session

    session = spark_session(MASTER)
    session.read.parquet(str(lake / "adult")).createOrReplaceGlobalTempView("adult_visits")
    table = "global_temp.adult_visits"
    with pytest.raises(ValidationError, match="outside the Spark databases.*none are configured") as refused:
        register(cast, adult_schema, "", table=table)
    assert refused.value.code == "path_not_allowed"
    settings.SYNTHGATE_SOURCE_SPARK_DATABASES = ["global_temp"]
    with pytest.raises(ValidationError, match="must be named database.table"):
        register(cast, adult_schema, "", table="adult_visits; DROP TABLE x")
    with pytest.raises(ValidationError, match="outside the Spark databases"):
        register(cast, adult_schema, "", table="clinic.adult_visits")
    with pytest.raises(ValidationError, match="needs path or table, not"):
        register(cast, adult_schema, lake / "adult", table=table)
    with pytest.raises(ValidationError, match="no table at 'global_temp.absent'"):
        register(cast, adult_schema, "", table="global_temp.absent")

    version = register(cast, adult_schema, "", table=table).version
    reference = version.source_reference
    on_files = SparkCounts(session, adult_schema, parquet=str(lake / "adult"))
    assert reference["engine"] == "spark" and reference["table"] == table and "path" not in reference
    assert (reference["n_rows"], reference["checksum"]) == on_files.checksum()
    request = approved_request_create(cast, adult_schema)
    job = generation_job_start(actor=cast.requester, request_id=request.pk)
    job.refresh_from_db()
    assert job.status == JobStatus.SUCCEEDED, job.error
    counts = job.output_version.lineage["counts"]
    assert counts["engine"] == "spark" and counts["table"] == table
    assert counts["where"] == f"the Spark table {table!r}"
    from synth_engine.sources import reference_snapshot

    assert reference_snapshot(version, seed=3, limit=50).unchanged  # a drift re-audit reopens it by name
