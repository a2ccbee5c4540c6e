"""The dashboard's form for registering a table where it lives (`/datasets/new/source/`): the same
service as `synthgate source register` and `POST /api/sources/`, every mistake at once beside its
field, and a schema proposed from the table's column types, on the machine's PostgreSQL (the
warehouse of tests/jobs/test_reference_source.py)."""

from __future__ import annotations

import json

import pytest
from django.db import connection  # noqa: F401 (the skip condition reads it)

from core.schema import proposed_type_columns
from governance.models import AuditEvent, BudgetEntry, DatasetVersion
from tests.jobs import test_reference_source as source_tests
from tests.jobs.test_reference_source import TABLE

warehouse = source_tests.warehouse  # the fixture: the adult table in a source database named "warehouse"

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif("connection.vendor != 'postgresql'", reason="a referenced table needs PostgreSQL"),
]
URL = "/datasets/new/source/"


def _form(**fields):
    return {
        "name": "adult",
        "sensitivity": "confidential",
        "connection": "warehouse",
        "table": TABLE,
        "epsilon_cap": "10",
        "delta_cap": "1e-4",
        "action": "register",
        **fields,
    }


def test_a_steward_registers_a_table_where_it_lives_from_the_form(cast, warehouse, adult_schema, login):
    client = login(cast.steward)
    page = client.get(URL)
    assert page.status_code == 200 and '<option value="warehouse">warehouse</option>' in page.content.decode()
    assert "postgres://" not in page.content.decode()  # the connection by name only
    assert login(cast.requester).get(URL).status_code == 403

    response = client.post(URL, _form(schema_json=json.dumps(adult_schema), description="census, in the warehouse"))
    assert response.status_code == 302 and response["Location"] == "/datasets/adult/"
    version = DatasetVersion.objects.get(dataset__name="adult")
    assert version.source_reference["table"] == TABLE and version.source_reference["connection"] == "warehouse"
    assert version.n_rows == 2000 and version.storage_key == ""
    assert "Register data where it lives" in client.get("/datasets/").content.decode()
    detail = client.get("/datasets/adult/")  # where the form leads: the rows stay where they are
    assert detail.status_code == 200, detail.content.decode()[:2000]
    assert (
        "fixed at registration" in detail.content.decode() and "/datasets/adult/declare/" not in detail.content.decode()
    )
    assert client.get("/datasets/adult/schema/")["Location"] == "/datasets/adult/"  # no declaring step for it


def test_every_mistake_is_shown_at_once_beside_its_field_and_nothing_is_registered(cast, warehouse, login):
    client = login(cast.steward)
    empty = client.post(URL, _form(name="", connection="", table="", delta_cap="2", schema_json=""))
    assert empty.status_code == 400
    errors = empty.context["form"].errors
    assert errors["name"] == ["This field is required."]
    assert errors["connection"] == ["Choose the source database the table is in."]
    assert errors["table"] == ["Name the table or view (table or schema.table)."]
    assert errors["delta_cap"] == ["δ cap must be less than 1; got 2."]  # in the form's words
    assert errors["schema_json"][0].startswith("Give the schema: paste it, or propose one")

    # The form is complete; the service names every mistake it finds, the table's included.
    schema = {"columns": [{"name": "age", "type": "integer"}, {"name": "ward", "type": "categorical"}]}
    refused = client.post(URL, _form(epsilon_cap="-1", schema_json=json.dumps(schema)))
    assert refused.status_code == 400
    errors = refused.context["form"].errors
    assert "ε cap (total privacy budget) must be greater than 0" in errors["epsilon_cap"][0]
    assert "does not match the schema" in errors["table"][0] and "no column 'ward'" in errors["table"][0]

    missing = client.post(URL, _form(table="no_such_table", schema_json="{not json"))
    assert missing.status_code == 400 and missing.context["form"].errors["schema_json"][0].startswith(
        "This is not valid JSON"
    )
    gone = client.post(URL, _form(table="no_such_table", schema_json=json.dumps(schema)))
    assert "does not exist" in gone.context["form"].errors["table"][0]
    assert not DatasetVersion.objects.exists() and not AuditEvent.objects.filter(action__startswith="dataset").exists()


def test_a_schema_is_proposed_from_the_column_types_and_registers_after_review(cast, warehouse, login):
    client = login(cast.steward)
    proposed = client.post(URL, {"connection": "warehouse", "table": TABLE, "action": "propose"})
    assert proposed.status_code == 200 and proposed.context["proposed"]
    schema = json.loads(proposed.context["form"].data["schema_json"])
    types = {column["name"]: column["type"] for column in schema["columns"]}
    assert types["age"] == "integer" and types["workclass"] == "categorical"
    # types only (no value was read), each only proposed: the catalog's, not the steward's
    assert all(
        column == {"name": column["name"], "type": column["type"], "type_proposed": True}
        for column in schema["columns"]
    )
    assert 'id="schema-proposed"' in proposed.content.decode()

    nowhere = client.post(URL, {"connection": "warehouse", "table": "no_such_table", "action": "propose"})
    assert nowhere.status_code == 400 and "does not exist" in nowhere.context["form"].errors["table"][0]

    registered = client.post(URL, _form(schema_json=json.dumps(schema)))
    assert registered.status_code == 302
    version = DatasetVersion.objects.get(dataset__name="adult")
    # written out in full, as an upload's; registering the proposal as it is declares no type
    assert version.schema["columns"] == [{**column, "role": "other"} for column in schema["columns"]]
    assert proposed_type_columns(version.schema) == list(types)
    assert "integer" not in login(cast.requester).get("/datasets/adult/").content.decode()
    detail = client.get("/datasets/adult/").content.decode()
    assert 'id="proposed-types-detail"' in detail and "Declare the proposed types as shown" in detail
    accepted = client.post("/datasets/adult/schema/", {"action": "accept_types"})
    assert accepted.status_code == 302 and accepted["Location"] == "/datasets/adult/"
    version.refresh_from_db()
    assert proposed_type_columns(version.schema) == []
    assert {column["name"]: column["type"] for column in version.schema["columns"]} == types
    assert 'id="proposed-types-detail"' not in client.get("/datasets/adult/").content.decode()
    assert AuditEvent.objects.filter(action="dataset_version.declare").count() == len(types)


def test_a_row_count_declared_public_is_taken_from_the_form_and_a_wrong_one_refused_with_the_reason(
    cast, warehouse, adult_schema, login
):
    client = login(cast.steward)
    assert 'name="declared_rows"' in client.get(URL).content.decode()
    wrong = client.post(URL, _form(schema_json=json.dumps(adult_schema), declared_rows="2001"))
    assert wrong.status_code == 400
    assert (
        wrong.context["form"]
        .errors["declared_rows"][0]
        .startswith("The table has 2,000 rows, not the 2,001 declared public")
    )
    assert not DatasetVersion.objects.exists() and not BudgetEntry.objects.exists()
    assert not AuditEvent.objects.filter(action__startswith="dataset").exists()

    right = client.post(URL, _form(schema_json=json.dumps(adult_schema), declared_rows="2000"))
    assert right.status_code == 302, right.context["form"].errors
    version = DatasetVersion.objects.get(dataset__name="adult")
    assert version.rows_declared and version.public_rows == 2000
    assert not BudgetEntry.objects.exists()  # no estimate of the size is charged


# ---------------------------------------------------------------- Parquet lakes: the engine is chosen


@pytest.fixture
def parquet_lake(settings, adult_schema, tmp_path):
    """The adult fixture as three Parquet files under ``<root>/adult``; ``<root>`` is the allowed root."""
    import numpy as np
    import pandas as pd

    from tests.jobs.test_reference_parquet import FIXTURE

    root = tmp_path / "lake"
    (root / "adult").mkdir(parents=True)
    settings.SYNTHGATE_SOURCE_PARQUET_ROOTS = [str(root.resolve())]
    frame = pd.read_csv(FIXTURE, dtype=str, keep_default_na=False)[[c["name"] for c in adult_schema["columns"]]]
    for column in adult_schema["columns"]:
        if column["type"] == "integer":
            frame[column["name"]] = frame[column["name"]].astype("int64")
    for part, rows in enumerate(np.array_split(np.arange(len(frame)), 3)):
        frame.iloc[rows].to_parquet(root / "adult" / f"part-{part}.parquet", index=False)
    return root / "adult"


def _lake_form(path, schema, **fields):
    return _form(connection="", table="", path=str(path), schema_json=json.dumps(schema), **fields)


def test_a_steward_chooses_the_engine_that_counts_a_parquet_lake_and_mistakes_are_in_the_forms_words(
    cast, parquet_lake, adult_schema, login, settings
):
    client = login(cast.steward)
    page = client.get(URL).content.decode()
    assert 'name="engine"' in page and 'value="duckdb"' in page and 'value="spark"' in page

    settings.SYNTHGATE_SOURCE_S3_ROOTS = ["s3://clinic-lake/exports"]
    on_s3 = client.post(URL, _lake_form("s3://clinic-lake/exports/adult", adult_schema, engine="spark"))
    assert on_s3.status_code == 400
    assert on_s3.context["form"].errors["engine"] == [
        "Spark cannot read files on S3 here: choose DuckDB for an s3:// path, or give a path on disk that every "
        "Spark executor sees."
    ]
    unknown = client.post(URL, _lake_form(parquet_lake, adult_schema, engine="flink"))
    assert unknown.status_code == 400 and unknown.context["form"].errors["engine"][0].startswith(
        "Select a valid choice"
    )
    assert not DatasetVersion.objects.exists()

    proposed = client.post(URL, {"path": str(parquet_lake), "engine": "duckdb", "action": "propose"})
    assert proposed.status_code == 200 and proposed.context["proposed"], proposed.context["form"].errors
    columns = json.loads(proposed.context["form"].data["schema_json"])["columns"]
    assert {column["name"]: column["type"] for column in columns}["age"] == "integer"  # the Parquet schema's int64
    assert all(column["type_proposed"] is True for column in columns)  # read from the files: only proposed

    registered = client.post(URL, _lake_form(parquet_lake, adult_schema, engine="duckdb"))
    assert registered.status_code == 302, registered.context["form"].errors
    reference = DatasetVersion.objects.get(dataset__name="adult").source_reference
    assert reference["engine"] == "duckdb" and reference["path"] == str(parquet_lake)

    settings.SYNTHGATE_SOURCE_PARQUET_ROOTS, settings.SYNTHGATE_SOURCE_S3_ROOTS = [], []
    assert 'name="engine"' not in client.get(URL).content.decode()  # no lake allowed: nothing to choose


@pytest.mark.spark
def test_a_parquet_lake_registered_from_the_form_with_spark_is_counted_by_spark(
    cast, parquet_lake, adult_schema, login, settings
):
    from tests.synth_engine.test_engine_spark import MASTER

    settings.SYNTHGATE_SPARK_MASTER = MASTER
    client = login(cast.steward)
    proposed = client.post(URL, {"path": str(parquet_lake), "engine": "spark", "action": "propose"})
    assert proposed.status_code == 200 and proposed.context["proposed"], proposed.context["form"].errors
    types = {
        column["name"]: column["type"] for column in json.loads(proposed.context["form"].data["schema_json"])["columns"]
    }
    assert types["age"] == "integer" and types["workclass"] == "categorical"

    registered = client.post(URL, _lake_form(parquet_lake, adult_schema, engine="spark"))
    assert registered.status_code == 302, registered.context["form"].errors
    version = DatasetVersion.objects.get(dataset__name="adult")
    assert version.source_reference["engine"] == "spark" and version.n_rows == 2000


def _spark_table_form(table, schema, **fields):
    return _form(connection="", table="", spark_table=table, schema_json=json.dumps(schema), **fields)


def test_a_spark_catalog_table_is_offered_only_when_allowed_and_mistakes_are_beside_its_field(
    cast, parquet_lake, adult_schema, login, settings
):
    client = login(cast.steward)
    settings.SYNTHGATE_SOURCE_SPARK_DATABASES = []
    assert 'name="spark_table"' not in client.get(URL).content.decode()  # no Spark database allowed
    settings.SYNTHGATE_SOURCE_SPARK_DATABASES = ["global_temp"]
    assert 'name="spark_table"' in client.get(URL).content.decode()

    both = client.post(URL, _spark_table_form("global_temp.adult_visits", adult_schema, path=str(parquet_lake)))
    assert both.status_code == 400
    assert both.context["form"].errors["spark_table"] == [
        "Give one place for the data: a source database and table, Parquet files, or a Spark table."
    ]
    # Refused by name, before any Spark session is asked for, beside the field that named it.
    outside = client.post(URL, _spark_table_form("clinic.adult_visits", adult_schema))
    assert outside.status_code == 400
    assert "outside the Spark databases" in outside.context["form"].errors["spark_table"][0]
    malformed = client.post(URL, {"spark_table": "adult; DROP TABLE x", "action": "propose"})
    assert (
        malformed.status_code == 400
        and "must be named database.table" in malformed.context["form"].errors["spark_table"][0]
    )
    assert not DatasetVersion.objects.exists()


@pytest.mark.spark
def test_a_spark_catalog_table_registered_from_the_form_is_proposed_and_counted_by_spark(
    cast, parquet_lake, adult_schema, login, settings
):
    from synth_engine.engines.spark import spark_session
    from tests.synth_engine.test_engine_spark import MASTER

    settings.SYNTHGATE_SPARK_MASTER = MASTER
    settings.SYNTHGATE_SOURCE_SPARK_DATABASES = ["global_temp"]
    spark_session(MASTER).read.parquet(str(parquet_lake)).createOrReplaceGlobalTempView("adult_visits")
    client = login(cast.steward)
    proposed = client.post(URL, {"spark_table": "global_temp.adult_visits", "action": "propose"})
    assert proposed.status_code == 200 and proposed.context["proposed"], proposed.context["form"].errors
    columns = json.loads(proposed.context["form"].data["schema_json"])["columns"]
    assert {column["name"]: column["type"] for column in columns}["age"] == "integer"
    assert all(column["type_proposed"] is True for column in columns)  # from the catalog: only proposed

    registered = client.post(URL, _spark_table_form("global_temp.adult_visits", adult_schema))
    assert registered.status_code == 302, registered.context["form"].errors
    reference = DatasetVersion.objects.get(dataset__name="adult").source_reference
    assert reference["engine"] == "spark" and reference["table"] == "global_temp.adult_visits"
    assert "path" not in reference and DatasetVersion.objects.get(dataset__name="adult").n_rows == 2000
