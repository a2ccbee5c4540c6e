"""A dataset version that refers to a PostgreSQL table: registration, a job fitted from counts
computed in the database, and a table changed after registration refused before any spend.

The source database is the machine's PostgreSQL (the test database itself, reached through a
second connection configured like any warehouse in ``SYNTHGATE_SOURCE_DATABASES``). The table is
created by the owner role and only read by the application role (tests/database.py).
"""

from __future__ import annotations

import io
import json
from pathlib import Path

import pandas as pd
import psycopg2
import pytest
from django.core.management import call_command
from django.db import connection

from audits.facts import datasheet_facts
from core.errors import ConflictError, PermissionDeniedError, ValidationError
from governance.models import AuditEvent, BudgetEntry, DatasetVersion, EntryKind
from governance.services import budget_balance
from governance.services.budget import row_estimate_epsilon
from synth_engine.engines.postgres import quote_identifier
from synth_engine.models import JobStatus
from synth_engine.services import generation_job_start
from synth_engine.sources import source_register
from tests.database import APP_ROLE, as_owner
from tests.governance.factories import dataset_register_adult
from tests.jobs.conftest import approved_request_create
from tests.jobs.worker import database_url

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif("connection.vendor != 'postgresql'", reason="a referenced table needs PostgreSQL"),
]

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "adult_2000.csv"
TABLE = "warehouse_adult"


@pytest.fixture
def warehouse(settings, adult_schema):
    """The adult fixture as a table of a source database named ``warehouse``."""

    if connection.vendor != "postgresql":
        pytest.skip("a source database by reference is a PostgreSQL table (the suite is on SQLite)")
    settings.SYNTHGATE_SOURCE_DATABASES = {"warehouse": database_url()}
    frame = pd.read_csv(FIXTURE, dtype=str, keep_default_na=False)
    types = {column["name"]: "bigint" if column["type"] == "integer" else "text" for column in adult_schema["columns"]}
    with as_owner():  # the warehouse's loader owns the table; the application role may only read it
        owner = psycopg2.connect(database_url())
    owner.autocommit = True
    buffer = io.StringIO()
    frame[list(types)].to_csv(buffer, index=False, header=False)
    buffer.seek(0)
    with owner.cursor() as cursor:
        cursor.execute(f"DROP TABLE IF EXISTS {TABLE}")
        columns = ", ".join(f"{quote_identifier(name)} {kind}" for name, kind in types.items())
        cursor.execute(f"CREATE TABLE {TABLE} ({columns})")
        cursor.copy_expert(f"COPY {TABLE} FROM STDIN WITH (FORMAT csv)", buffer)
        cursor.execute(f"GRANT SELECT ON {TABLE} TO {APP_ROLE}")
    yield owner
    with owner.cursor() as cursor:
        cursor.execute(f"DROP TABLE IF EXISTS {TABLE}")
    owner.close()


def register(cast, schema, **overrides):
    arguments = {
        "actor": cast.steward,
        "name": "adult",
        "connection": "warehouse",
        "table": TABLE,
        "schema": schema,
        "epsilon_cap": "10",
        "delta_cap": "1e-4",
        **overrides,
    }
    return source_register(**arguments)


def test_a_steward_registers_a_table_by_reference_and_its_url_is_stored_nowhere(cast, warehouse, adult_schema):
    result = register(cast, adult_schema)
    version = result.version
    assert result.created and version.n_rows == 2000 and version.storage_key == ""
    assert version.source_reference["engine"] == "postgresql"
    assert version.source_reference["table"] == TABLE and version.source_reference["connection"] == "warehouse"
    url = database_url()
    stored = json.dumps([list(AuditEvent.objects.values()), list(DatasetVersion.objects.values())], default=str)
    assert url not in stored and "postgres://" not in stored
    assert not register(cast, adult_schema).created  # same table, content and schema: the same version


def test_a_table_that_does_not_match_or_cannot_be_reached_is_refused_and_nothing_is_stored(
    cast, warehouse, adult_schema
):
    extra = {"columns": [*adult_schema["columns"], {"name": "ward", "type": "categorical"}]}
    with pytest.raises(ValidationError, match="no column 'ward'"):
        register(cast, extra)
    with pytest.raises(ValidationError, match="No source database named 'lake'"):
        register(cast, adult_schema, connection="lake")
    with pytest.raises(ValidationError, match="needs a schema"):
        register(cast, None)
    with pytest.raises(PermissionDeniedError):
        register(cast, adult_schema, actor=cast.requester)
    assert not DatasetVersion.objects.exists() and not AuditEvent.objects.filter(action__startswith="dataset").exists()


def test_a_job_on_a_referenced_table_fits_mst_from_database_counts_and_spends_once(cast, warehouse, adult_schema):
    register(cast, adult_schema)
    request = approved_request_create(cast, adult_schema)
    job = generation_job_start(actor=cast.requester, request_id=request.pk)
    job.refresh_from_db()
    assert job.status == JobStatus.SUCCEEDED, job.error
    counts = job.output_version.lineage["counts"]
    assert counts["engine"] == "postgresql" and counts["table"] == TABLE
    train, holdout = job.train_version, job.holdout_version
    # Below SYNTHGATE_REFERENCE_AUDIT_ROWS the audit samples are the whole split, made in the database.
    assert train.n_rows + holdout.n_rows == 2000 and 0 < holdout.n_rows < train.n_rows
    assert counts["audit_sample_rows"] == {"train": train.n_rows, "holdout": holdout.n_rows}
    assert job.output_version.n_rows == 400
    assert BudgetEntry.objects.filter(request=request, kind=EntryKind.SPEND).count() == 1
    request.refresh_from_db()
    run = request.audit_runs.get()
    assert run.version_id == job.output_version_id
    steps = datasheet_facts(run).preprocessing  # the internal report names the engine and the samples
    assert any("computed by the engine where the data lives (postgresql)" in step for step in steps)
    assert any(f"{train.n_rows:,} training rows and {holdout.n_rows:,} holdout rows" in step for step in steps)


def test_a_changed_table_is_refused_as_changed_never_with_what_its_new_row_breaks(cast, warehouse, adult_schema):
    # One row with no label added after registration: the job refused it with the engine's check
    # first ("label column 'income' has missing values ..."), telling the requester what the new
    # row holds. Now the refusal says only that the table changed, as for any other change.
    register(cast, adult_schema)
    request = approved_request_create(cast, adult_schema)
    with warehouse.cursor() as cursor:
        cursor.execute(f"INSERT INTO {TABLE} SELECT * FROM {TABLE} WHERE ctid = (SELECT min(ctid) FROM {TABLE})")
        cursor.execute(f"UPDATE {TABLE} SET income = NULL WHERE ctid = (SELECT max(ctid) FROM {TABLE})")
    job = generation_job_start(actor=cast.requester, request_id=request.pk)
    job.refresh_from_db()
    assert job.status == JobStatus.FAILED and "changed since" in job.error, job.error
    assert "income" not in job.error and "missing" not in job.error
    assert not BudgetEntry.objects.filter(request=request, kind=EntryKind.SPEND).exists()


def test_a_table_changed_after_registration_fails_the_job_before_any_spend(cast, warehouse, adult_schema):
    register(cast, adult_schema)
    request = approved_request_create(cast, adult_schema)
    with warehouse.cursor() as cursor:
        cursor.execute(f"UPDATE {TABLE} SET age = age + 1 WHERE ctid = (SELECT min(ctid) FROM {TABLE})")
    job = generation_job_start(actor=cast.requester, request_id=request.pk)
    job.refresh_from_db()
    assert job.status == JobStatus.FAILED and "changed since" in job.error
    assert not BudgetEntry.objects.filter(request=request, kind=EntryKind.SPEND).exists()
    balance = budget_balance(dataset=request.dataset)
    # only the source version's DP row estimate, spent at registration
    assert balance.epsilon_spent == row_estimate_epsilon() and balance.epsilon_reserved == 0


def test_the_cli_registers_a_table_and_lists_connections_by_name_only(cast, warehouse, adult_schema, tmp_path):
    schema_file = tmp_path / "adult.schema.json"
    schema_file.write_text(json.dumps(adult_schema))
    stdout = io.StringIO()
    call_command(
        "source",
        "register",
        *("--name", "adult", "--connection", "warehouse", "--table", TABLE, "--schema", schema_file),
        *("--epsilon-cap", "10", "--delta-cap", "1e-4", "--as", "steward", "--json"),
        stdout=stdout,
    )
    registered = json.loads(stdout.getvalue())
    assert registered["created"] and registered["n_rows"] == 2000
    assert registered["reference"] == {"engine": "postgresql", "connection": "warehouse", "table": TABLE}
    stdout = io.StringIO()
    call_command("source", "connections", "--as", "steward", stdout=stdout)
    assert stdout.getvalue().strip() == "warehouse"


def test_rows_another_dataset_holds_are_refused_by_reference_as_for_an_upload(cast, warehouse, adult_schema):
    dataset_register_adult(steward=cast.steward, name="adult", schema=adult_schema)  # the same 2,000 rows, uploaded
    with pytest.raises(ConflictError, match="overlap dataset 'adult'") as refused:
        register(cast, adult_schema, name="clinic")
    assert refused.value.code == "population_overlap" and refused.value.extra["share_of_new"] == 1.0
    assert not DatasetVersion.objects.filter(dataset__name="clinic").exists()
    version = register(cast, adult_schema).version  # a new version of the same dataset draws on its ledger
    assert version.number == 2 and version.source_reference and version.fingerprint.n_distinct_rows > 0


def test_the_api_registers_a_table_by_reference_for_stewards_only(cast, warehouse, adult_schema):
    from rest_framework.test import APIClient

    body = {"name": "adult", "connection": "warehouse", "table": TABLE, "schema": adult_schema}
    body |= {"epsilon_cap": "10", "delta_cap": "1e-4"}
    client = APIClient()
    client.force_authenticate(cast.requester)
    assert client.post("/api/sources/", body, format="json").status_code == 403
    client.force_authenticate(cast.steward)
    created = client.post("/api/sources/", body, format="json")
    assert created.status_code == 201, created.json()
    assert created.json()["version"]["n_rows"] == 2000
    assert client.post("/api/sources/", body, format="json").status_code == 200
    refused = client.post("/api/sources/", {**body, "table": "no_such_table"}, format="json")
    assert refused.status_code == 400 and "does not exist" in refused.json()["message"]


def test_the_cli_and_the_api_take_a_row_count_declared_public_by_reference_and_refuse_a_wrong_one(
    cast, warehouse, adult_schema, tmp_path
):
    from rest_framework.test import APIClient

    from tests.governance.test_cli import synthgate

    schema_file = tmp_path / "adult.schema.json"
    schema_file.write_text(json.dumps(adult_schema))
    arguments = ("source", "register", "--name", "adult", "--connection", "warehouse", "--table", TABLE,
                 "--schema", schema_file, "--epsilon-cap", "10", "--delta-cap", "1e-4", "--as", "steward")  # fmt: skip
    refused = synthgate(*arguments, "--declared-rows", "1999")
    assert refused.code != 0 and "The table has 2,000 rows, not the 1,999 declared public" in refused.stderr
    malformed = synthgate(*arguments, "--declared-rows", "many", "--table", "no_such_table")
    assert malformed.code != 0 and "declared_rows must be a positive whole number" in malformed.stderr
    client = APIClient()
    client.force_authenticate(cast.steward)
    body = {"name": "adult", "connection": "warehouse", "table": TABLE, "schema": adult_schema}
    body |= {"epsilon_cap": "10", "delta_cap": "1e-4"}
    wrong = client.post("/api/sources/", {**body, "declared_rows": 2001}, format="json")
    assert wrong.status_code == 400 and "not the 2,001 declared public" in wrong.json()["message"]
    assert not DatasetVersion.objects.exists() and not BudgetEntry.objects.exists()
    assert not AuditEvent.objects.filter(action__startswith="dataset").exists()

    declared = synthgate(*arguments, "--declared-rows", "2000", "--json")
    assert declared.code == 0, declared.stderr
    version = DatasetVersion.objects.get()
    assert version.rows_declared and version.public_rows == 2000
    event = AuditEvent.objects.get(action="dataset_version.create")
    assert event.after["declared_rows"] == 2000
    assert not BudgetEntry.objects.exists()  # no estimate of the size is charged
    answer = client.post("/api/sources/", {**body, "declared_rows": 2000}, format="json")
    assert answer.status_code == 200  # the same version
