"""A dataset version that refers to Parquet files read by DuckDB: registration under the allowed
roots only (service, API, CLI), a job fitted from counts computed in DuckDB, files changed after
registration refused before any spend, and rows another dataset holds refused as for an upload.

The application database is the machine's PostgreSQL; the lake is the Adult fixture written as
Parquet files (integers as int64, categories as strings) under a temporary root.
"""

from __future__ import annotations

import io
import json
import logging
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from django.core.management import call_command

from audits.facts import datasheet_facts
from core.errors import ConflictError, ValidationError
from governance.models import AuditEvent, BudgetEntry, DatasetVersion, EntryKind
from governance.services import budget_balance
from governance.services.budget import row_estimate_epsilon
from synth_engine.models import JobStatus
from synth_engine.services import generation_job_start
from synth_engine.sources import source_register
from tests.governance.factories import dataset_register_adult
from tests.jobs.conftest import approved_request_create

pytestmark = pytest.mark.django_db(transaction=True)

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "adult_2000.csv"


@pytest.fixture
def lake(settings, adult_schema, tmp_path):
    """The adult fixture as three Parquet files under ``<root>/adult``; ``<root>`` is the allowed root."""
    root = tmp_path / "lake"
    settings.SYNTHGATE_SOURCE_PARQUET_ROOTS = [str(root.resolve())]
    frame = pd.read_csv(FIXTURE, dtype=str, keep_default_na=False)
    columns = [column["name"] for column in adult_schema["columns"]]
    frame = frame[columns]
    for column in adult_schema["columns"]:
        if column["type"] == "integer":
            frame[column["name"]] = frame[column["name"]].astype("int64")
    (root / "adult").mkdir(parents=True)
    for part, rows in enumerate(np.array_split(np.arange(len(frame)), 3)):
        frame.iloc[rows].to_parquet(root / "adult" / f"part-{part}.parquet", index=False)
    return root


def register(cast, schema, lake, **overrides):
    arguments = {
        "actor": cast.steward,
        "name": "adult",
        "path": str(lake / "adult" / "*.parquet"),
        "schema": schema,
        "epsilon_cap": "10",
        "delta_cap": "1e-4",
        **overrides,
    }
    return source_register(**arguments)


def test_a_steward_registers_parquet_files_by_reference_fingerprinted_in_duckdb(cast, lake, adult_schema):
    result = register(cast, adult_schema, lake)
    version = result.version
    assert result.created and version.n_rows == 2000 and version.storage_key == ""
    reference = version.source_reference
    assert reference["engine"] == "duckdb" and reference["path"] == str(lake / "adult" / "*.parquet")
    assert reference["n_rows"] == 2000 and int(reference["checksum"]) > 0
    assert version.fingerprint.n_distinct_rows > 0
    assert not register(cast, adult_schema, lake).created  # same files, content and schema: the same version


def test_a_path_outside_the_roots_or_not_matching_is_refused_and_nothing_is_stored(
    cast, lake, adult_schema, tmp_path, settings
):
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    (lake / "adult" / "part-0.parquet").rename(outside / "part-0.parquet")
    with pytest.raises(ValidationError, match="outside the directories Parquet sources may be read from"):
        register(cast, adult_schema, lake, path=str(outside / "part-0.parquet"))
    with pytest.raises(ValidationError, match="outside the directories"):
        register(cast, adult_schema, lake, path=str(lake / ".." / "elsewhere" / "*.parquet"))
    (lake / "adult" / "escape.parquet").symlink_to(outside / "part-0.parquet")
    with pytest.raises(ValidationError, match="resolves outside SYNTHGATE_SOURCE_PARQUET_ROOTS"):
        register(cast, adult_schema, lake)
    with pytest.raises(ValidationError, match="must be absolute"):
        register(cast, adult_schema, lake, path="adult/*.parquet")
    with pytest.raises(ValidationError, match="no Parquet file"):
        register(cast, adult_schema, lake, path=str(lake / "adult" / "*.csv"))
    extra = {"columns": [*adult_schema["columns"], {"name": "ward", "type": "categorical"}]}
    with pytest.raises(ValidationError, match="no column 'ward'"):
        register(cast, extra, lake, path=str(lake / "adult" / "part-1.parquet"))
    with pytest.raises(ValidationError, match="needs path, not connection"):
        register(cast, adult_schema, lake, engine="duckdb", connection="warehouse")
    settings.SYNTHGATE_SOURCE_PARQUET_ROOTS = []
    with pytest.raises(ValidationError, match="none are configured"):
        register(cast, adult_schema, lake)
    assert not DatasetVersion.objects.exists() and not AuditEvent.objects.filter(action__startswith="dataset").exists()


def test_a_job_on_parquet_files_fits_mst_from_duckdb_counts_and_the_datasheet_names_duckdb(cast, lake, adult_schema):
    register(cast, adult_schema, lake)
    request = approved_request_create(cast, adult_schema)
    job = generation_job_start(actor=cast.requester, request_id=request.pk)
    job.refresh_from_db()
    assert job.status == JobStatus.SUCCEEDED, job.error
    counts = job.output_version.lineage["counts"]
    assert counts["engine"] == "duckdb" and counts["path"] == str(lake / "adult" / "*.parquet")
    train, holdout = job.train_version, job.holdout_version
    assert train.n_rows + holdout.n_rows == 2000 and 0 < holdout.n_rows < train.n_rows
    assert counts["audit_sample_rows"] == {"train": train.n_rows, "holdout": holdout.n_rows}
    assert job.output_version.n_rows == 400
    assert BudgetEntry.objects.filter(request=request, kind=EntryKind.SPEND).count() == 1
    run = request.audit_runs.get()
    steps = datasheet_facts(run).preprocessing
    assert any("computed by the engine where the data lives (duckdb)" in step for step in steps)
    assert any("the Parquet data at" in step for step in steps)


def test_parquet_files_changed_after_registration_fail_the_job_before_any_spend(cast, lake, adult_schema):
    register(cast, adult_schema, lake)
    request = approved_request_create(cast, adult_schema)
    part = lake / "adult" / "part-2.parquet"
    frame = pd.read_parquet(part)
    frame.loc[frame.index[0], "age"] += 1
    frame.to_parquet(part, index=False)
    job = generation_job_start(actor=cast.requester, request_id=request.pk)
    job.refresh_from_db()
    assert job.status == JobStatus.FAILED and "changed since" in job.error and "Parquet data" in job.error
    assert not BudgetEntry.objects.filter(request=request, kind=EntryKind.SPEND).exists()
    balance = budget_balance(dataset=request.dataset)
    # only the source version's DP row estimate, spent at registration
    assert balance.epsilon_spent == row_estimate_epsilon() and balance.epsilon_reserved == 0


def test_rows_another_dataset_holds_are_refused_in_parquet_as_for_an_upload(cast, lake, adult_schema):
    dataset_register_adult(steward=cast.steward, name="adult", schema=adult_schema)  # the same 2,000 rows, uploaded
    with pytest.raises(ConflictError, match="overlap dataset 'adult'") as refused:
        register(cast, adult_schema, lake, name="clinic")
    assert refused.value.code == "population_overlap" and refused.value.extra["share_of_new"] == 1.0
    assert not DatasetVersion.objects.filter(dataset__name="clinic").exists()


def test_the_cli_and_the_api_register_a_parquet_lake(cast, lake, adult_schema, tmp_path):
    from rest_framework.test import APIClient

    schema_file = tmp_path / "adult.schema.json"
    schema_file.write_text(json.dumps(adult_schema))
    stdout = io.StringIO()
    path = str(lake / "adult")
    call_command(
        "source",
        "register",
        *("--name", "adult", "--path", path, "--schema", schema_file),
        *("--epsilon-cap", "10", "--delta-cap", "1e-4", "--as", "steward", "--json"),
        stdout=stdout,
    )
    registered = json.loads(stdout.getvalue())
    assert registered["created"] and registered["n_rows"] == 2000
    assert registered["reference"] == {"engine": "duckdb", "path": path}
    body = {"name": "adult", "engine": "duckdb", "path": path, "schema": adult_schema}
    body |= {"epsilon_cap": "10", "delta_cap": "1e-4"}
    client = APIClient()
    client.force_authenticate(cast.requester)
    assert client.post("/api/sources/", body, format="json").status_code == 403
    client.force_authenticate(cast.steward)
    assert client.post("/api/sources/", body, format="json").status_code == 200  # the CLI's version
    refused = client.post("/api/sources/", {**body, "path": "/etc/passwd"}, format="json")
    assert refused.status_code == 400 and refused.json()["code"] == "path_not_allowed"
    assert "/etc/passwd" in refused.json()["message"]


def test_datetimes_floats_and_booleans_fingerprint_as_an_upload_of_the_same_rows(cast, settings, tmp_path):
    from governance.services import dataset_register
    from tests.synth_engine.test_engine_postgres import adult_frame
    from tests.synth_engine.test_engine_postgres import adult_schema as engine_schema

    frame, schema = adult_frame(600), engine_schema()  # roles omitted, as a steward may write it
    root = tmp_path / "mixed"
    root.mkdir()
    settings.SYNTHGATE_SOURCE_PARQUET_ROOTS = [str(root.resolve())]
    frame.to_parquet(root / "rows.parquet", index=False)
    register(cast, schema, root, name="mixed", path=str(root / "rows.parquet"))
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


def test_a_drift_snapshot_of_parquet_files_samples_only_when_they_changed(cast, lake, adult_schema):
    from synth_engine.sources import reference_snapshot

    version = register(cast, adult_schema, lake).version
    assert reference_snapshot(version, seed=3, limit=50).unchanged
    extra = pd.read_parquet(lake / "adult" / "part-0.parquet").head(10)
    extra.to_parquet(lake / "adult" / "part-3.parquet", index=False)
    snapshot = reference_snapshot(version, seed=3, limit=50)
    assert not snapshot.unchanged and snapshot.n_rows == 2010 and len(snapshot.sample) == 50
    assert snapshot.engine == "duckdb" and "the Parquet data at" in snapshot.where


# ---------------------------------------------------------------- the same lake on S3 (moto's server)

S3_KEY_ID, S3_SECRET = "AKIDSYNTHGATELAKE01", "lake-secret-never-shown-0123456789"


@pytest.fixture
def s3_lake(lake, settings, s3_endpoint):
    """The lake's three files copied to ``s3://lake-bucket/exports/adult``; ``s3://lake-bucket/exports``
    is the allowed prefix, and the source keys are distinctive so a leak would be found."""
    import boto3

    keys = {"aws_access_key_id": S3_KEY_ID, "aws_secret_access_key": S3_SECRET}
    client = boto3.client("s3", endpoint_url=s3_endpoint, region_name="us-east-1", **keys)
    client.create_bucket(Bucket="lake-bucket")
    for part in sorted((lake / "adult").glob("*.parquet")):
        client.upload_file(str(part), "lake-bucket", f"exports/adult/{part.name}")
    client.put_object(Bucket="lake-bucket", Key="private/adult/part-0.parquet", Body=b"not for the platform")
    settings.SYNTHGATE_SOURCE_S3_ROOTS = ["s3://lake-bucket/exports"]
    settings.SYNTHGATE_SOURCE_S3_ENDPOINT_URL = s3_endpoint
    settings.SYNTHGATE_SOURCE_S3_ACCESS_KEY_ID = S3_KEY_ID
    settings.SYNTHGATE_SOURCE_S3_SECRET_ACCESS_KEY = S3_SECRET
    settings.SYNTHGATE_SOURCE_S3_REGION = "us-east-1"
    return client


def test_parquet_on_s3_registers_fits_and_snapshots_as_the_same_files_on_disk_and_no_key_shows(
    cast, lake, s3_lake, adult_schema, caplog
):
    from rest_framework.test import APIClient

    from synth_engine.engines.duckdb import DuckDBCounts
    from synth_engine.sources import reference_snapshot

    caplog.set_level(logging.DEBUG)
    on_disk = DuckDBCounts(lake / "adult", adult_schema)
    n_rows, checksum = on_disk.checksum()
    on_disk.close()
    version = register(cast, adult_schema, lake, path="s3://lake-bucket/exports//adult/").version
    reference = version.source_reference
    assert reference["engine"] == "duckdb" and reference["path"] == "s3://lake-bucket/exports/adult"
    assert (version.n_rows, reference["n_rows"], reference["checksum"]) == (2000, n_rows, checksum)
    assert version.storage_key == "" and version.fingerprint.n_distinct_rows > 0

    request = approved_request_create(cast, adult_schema)
    job = generation_job_start(actor=cast.requester, request_id=request.pk)
    job.refresh_from_db()
    assert job.status == JobStatus.SUCCEEDED, job.error
    counts = job.output_version.lineage["counts"]
    assert counts["engine"] == "duckdb" and counts["path"] == "s3://lake-bucket/exports/adult"
    assert job.train_version.n_rows + job.holdout_version.n_rows == 2000
    steps = datasheet_facts(request.audit_runs.get()).preprocessing
    assert any("(duckdb)" in step for step in steps) and any("s3://lake-bucket/exports/adult" in step for step in steps)

    assert reference_snapshot(version, seed=3, limit=50).unchanged
    frame = pd.read_parquet(lake / "adult" / "part-1.parquet")
    frame.loc[frame.index[:5], "age"] += 1
    frame.to_parquet(lake / "adult" / "part-1.parquet", index=False)
    s3_lake.upload_file(str(lake / "adult" / "part-1.parquet"), "lake-bucket", "exports/adult/part-1.parquet")
    snapshot = reference_snapshot(version, seed=3, limit=50)
    assert not snapshot.unchanged and snapshot.n_rows == 2000 and len(snapshot.sample) == 50
    again = generation_job_start(actor=cast.requester, request_id=approved_request_create(cast, adult_schema).pk)
    again.refresh_from_db()
    assert again.status == JobStatus.FAILED and "changed since" in again.error

    client = APIClient()
    client.force_authenticate(cast.steward)
    listed = client.get("/api/datasets/adult/versions/")
    assert listed.status_code == 200
    shown = [
        json.dumps(reference),
        json.dumps(job.output_version.lineage),
        " ".join(steps),
        again.error,
        json.dumps(listed.json()),
        caplog.text,
        *(json.dumps([event.before, event.after]) for event in AuditEvent.objects.all()),
    ]
    leaks = [line for text in shown for line in text.splitlines() if S3_SECRET in line or S3_KEY_ID in line]
    assert not leaks, leaks[:3]


def test_an_s3_path_outside_the_allowed_prefixes_or_for_spark_is_refused_before_anything_is_read(
    cast, lake, s3_lake, adult_schema, settings
):
    with pytest.raises(ValidationError, match="outside the S3 prefixes") as refused:
        register(cast, adult_schema, lake, path="s3://lake-bucket/private/adult")
    assert refused.value.code == "path_not_allowed" and "s3://lake-bucket/exports" in refused.value.message
    with pytest.raises(ValidationError, match="outside the S3 prefixes"):
        register(cast, adult_schema, lake, path="s3://lake-bucket/exports-old/adult")  # a prefix of a name: no
    with pytest.raises(ValidationError, match=r"'\.' and '\.\.' are not allowed"):
        register(cast, adult_schema, lake, path="s3://lake-bucket/exports/../private/adult")
    with pytest.raises(ValidationError, match="outside the S3 prefixes"):
        register(cast, adult_schema, lake, path="s3://lake-bucket/exp*/adult")
    with pytest.raises(ValidationError, match="no Parquet file at 's3://lake-bucket/exports/absent'"):
        register(cast, adult_schema, lake, path="s3://lake-bucket/exports/absent")
    with pytest.raises(ValidationError, match="register .* on S3 with engine 'duckdb'"):
        register(cast, adult_schema, lake, path="s3://lake-bucket/exports/adult", engine="spark")
    settings.SYNTHGATE_SOURCE_S3_ENDPOINT_URL = "http://127.0.0.1:1"  # nothing listens there
    with pytest.raises(ValidationError, match="cannot list 's3://lake-bucket/exports/adult' on S3") as unreachable:
        register(cast, adult_schema, lake, path="s3://lake-bucket/exports/adult")
    assert "EndpointConnectionError" in unreachable.value.message and S3_SECRET not in unreachable.value.message
    settings.SYNTHGATE_SOURCE_S3_ROOTS = []
    with pytest.raises(ValidationError, match="none are configured"):
        register(cast, adult_schema, lake, path="s3://lake-bucket/exports/adult")
    assert not DatasetVersion.objects.exists()
