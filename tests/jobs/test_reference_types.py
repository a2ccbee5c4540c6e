"""A column type of data registered where it lives is the steward's to declare (issues 11.1, 11.3,
by reference): a type read from a database catalog or a Parquet schema reaches a version only as a
proposal (``type_proposed``), and the version cannot be requested (``undeclared_types``, nothing
written or spent) until a steward declares it, on every path (service, API, CLI, dashboard), as
for an upload's types read from its rows; a drift re-audit's snapshot never takes a type from the
catalog. On the machine's PostgreSQL (the warehouse of tests/jobs/test_reference_source.py)."""

from __future__ import annotations

import json

import pytest
from django.db import connection  # noqa: F401 (the skip condition reads it)
from rest_framework.test import APIClient

from core.errors import ConflictError, ValidationError
from core.schema import proposed_type_columns, schema_public
from governance.models import AuditEvent, BudgetEntry, DataRequest, DatasetVersion
from governance.services import dataset_schema_declare_columns
from synth_engine.sources import SnapshotError, reference_snapshot
from tests.governance.factories import PurposeFactory, request_file
from tests.governance.test_cli import synthgate
from tests.jobs import test_reference_source as source_tests
from tests.jobs.test_reference_source import TABLE, register

warehouse = source_tests.warehouse  # the fixture: the adult table in a source database named "warehouse"

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif("connection.vendor != 'postgresql'", reason="a referenced table needs PostgreSQL"),
]


def _left_to_the_catalog(schema, *untyped, marked=()):
    """``schema`` with the ``untyped`` columns given no type and the ``marked`` ones marked proposed."""
    columns = []
    for column in schema["columns"]:
        if column["name"] in untyped:
            column = {key: value for key, value in column.items() if key != "type"}
        elif column["name"] in marked:
            column = {**column, "type_proposed": True}
        columns.append(column)
    return {**schema, "columns": columns}


def test_a_type_left_to_the_catalog_is_only_proposed_and_filing_is_refused_until_a_steward_declares_it(
    cast, warehouse, adult_schema
):
    PurposeFactory(name="research", max_epsilon="5")
    schema = _left_to_the_catalog(adult_schema, "age", "hours-per-week", marked=("workclass",))
    version = register(cast, schema).version
    stored = {column["name"]: column for column in version.schema["columns"]}
    assert stored["age"]["type"] == "integer" and stored["age"]["type_proposed"] is True  # bigint in the catalog
    assert stored["workclass"]["type"] == "categorical" and stored["workclass"]["type_proposed"] is True
    assert proposed_type_columns(version.schema) == ["age", "workclass", "hours-per-week"]
    assert "type_proposed" not in stored["sex"]  # given, so declared
    assert all(c["type"] is None for c in schema_public(version.schema)["columns"] if c["name"] in ("age", "workclass"))

    entries, events = BudgetEntry.objects.count(), AuditEvent.objects.count()
    with pytest.raises(ValidationError) as refused:
        request_file(requester=cast.requester)
    assert refused.value.code == "undeclared_types"
    assert refused.value.extra["undeclared_types"] == ["age", "workclass", "hours-per-week"]
    assert "proposed from its data's catalog" in refused.value.message
    assert "synthgate dataset declare adult --accept-proposed-types" in refused.value.message
    assert (DataRequest.objects.count(), BudgetEntry.objects.count(), AuditEvent.objects.count()) == (
        0,
        entries,
        events,
    )

    # Only the proposed type, as proposed, may be declared: the data was checked against it in its engine.
    for declarations in ({"age": {"type": "float"}}, {"age": {"role": "other"}}):
        with pytest.raises(ConflictError, match="fixed at registration"):
            dataset_schema_declare_columns(actor=cast.steward, name="adult", declarations=declarations)
    assert DatasetVersion.objects.get().schema == version.schema

    declared = synthgate("dataset", "declare", "adult", "--accept-proposed-types", "--as", "steward")
    assert declared.code == 0, declared.message
    version.refresh_from_db()
    assert proposed_type_columns(version.schema) == []
    assert {c["name"]: c["type"] for c in version.schema["columns"]} == {
        c["name"]: c["type"] for c in adult_schema["columns"]
    }
    accepted = AuditEvent.objects.filter(action="dataset_version.declare").order_by("pk")
    assert [(event.actor, event.after["accepted_proposed_type"]) for event in accepted] == [
        (cast.steward, "integer"),
        (cast.steward, "categorical"),
        (cast.steward, "integer"),
    ]
    assert request_file(requester=cast.requester).state == "submitted"


def test_the_api_registers_types_left_to_the_catalog_as_proposals_and_declares_them(cast, warehouse, adult_schema):
    client = APIClient()
    client.force_authenticate(cast.steward)
    body = {"name": "adult", "connection": "warehouse", "table": TABLE, "epsilon_cap": "10", "delta_cap": "1e-4"}
    unknown = client.post(
        "/api/sources/",
        {**body, "schema": {"columns": [*adult_schema["columns"], {"name": "ward"}]}},
        format="json",
    )
    assert unknown.status_code == 400 and "names columns the data lacks: 'ward'" in unknown.json()["message"]
    assert not DatasetVersion.objects.exists()

    created = client.post("/api/sources/", {**body, "schema": _left_to_the_catalog(adult_schema, "age")}, format="json")
    assert created.status_code == 201, created.json()
    age = next(c for c in created.json()["version"]["schema"]["columns"] if c["name"] == "age")
    assert (age["type"], age["type_proposed"]) == ("integer", True)
    requester = APIClient()
    requester.force_authenticate(cast.requester)
    shown = requester.get("/api/datasets/adult/versions/1/").json()["schema"]["columns"]
    assert next(c for c in shown if c["name"] == "age")["type"] is None
    answer = client.post("/api/datasets/adult/declare/", {"accept_proposed_types": True}, format="json")
    assert answer.status_code == 200, answer.json()
    assert proposed_type_columns(DatasetVersion.objects.get().schema) == []


def test_a_snapshot_for_a_drift_re_audit_never_takes_a_type_from_the_catalog(cast, warehouse, adult_schema):
    version = register(cast, _left_to_the_catalog(adult_schema, "age")).version
    schema = version.schema
    with warehouse.cursor() as cursor:  # the loader changes the column's type under it
        cursor.execute(f"ALTER TABLE {TABLE} ALTER COLUMN age TYPE double precision")
    snapshot = reference_snapshot(version, seed=1, limit=100, always_sample=True)
    assert (
        str(snapshot.sample["age"].dtype).lower() == "int64"
    )  # read as the version's (proposed) type, not the catalog's
    with warehouse.cursor() as cursor:
        cursor.execute(f"UPDATE {TABLE} SET age = age + 0.5 WHERE ctid = (SELECT min(ctid) FROM {TABLE})")
    with pytest.raises(SnapshotError, match="column 'age' is declared integer but has fractions"):
        reference_snapshot(version, seed=1, limit=100, always_sample=True)
    version.refresh_from_db()
    assert version.schema == schema and proposed_type_columns(version.schema) == ["age"]


def test_the_cli_says_which_types_the_catalog_proposed_and_how_to_declare_them(cast, warehouse, adult_schema, tmp_path):
    schema_file = tmp_path / "adult.schema.json"
    schema_file.write_text(json.dumps(_left_to_the_catalog(adult_schema, "age", "sex")))
    run = synthgate("source", "register", "--name", "adult", "--connection", "warehouse", "--table", TABLE,
                    "--schema", schema_file, "--epsilon-cap", "10", "--delta-cap", "1e-4",
                    "--as", "steward")  # fmt: skip
    assert run.code == 0, run.message
    assert "The types of age, sex were read from the data's catalog and are NOT declared" in run.stdout
    assert "synthgate dataset declare adult --accept-proposed-types" in run.stdout
    assert proposed_type_columns(DatasetVersion.objects.get().schema) == ["age", "sex"]


def test_the_types_of_a_table_registered_before_proposals_existed_can_be_proposed_again(cast, warehouse, adult_schema):
    version = register(cast, adult_schema).version  # as the dashboard's proposal registered before: declared
    assert proposed_type_columns(version.schema) == []
    run = synthgate("dataset", "declare", "adult", "--repropose-types", "--column", "age", "--as", "steward")
    assert run.code == 0, run.message
    version.refresh_from_db()
    assert proposed_type_columns(version.schema) == ["age"]
    with pytest.raises(ValidationError) as refused:
        PurposeFactory(name="research", max_epsilon="5")
        request_file(requester=cast.requester)
    assert refused.value.code == "undeclared_types" and "proposed from its data's catalog" in refused.value.message
    assert synthgate("dataset", "declare", "adult", "--accept-proposed-types", "--as", "steward").code == 0
    version.refresh_from_db()
    assert proposed_type_columns(version.schema) == [] and version.schema["columns"][0]["type"] == "integer"
