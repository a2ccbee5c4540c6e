"""Declaring what is public inside the registration flow: the steward sees the stored (inferred)
schema and declares, per column, roles and a public domain (codebook categories, bounds, nullable).
Through the service (at registration and afterwards, several columns all or none), the API
(`POST /api/datasets/{name}/declare/`, and `declarations` on registration), the CLI (`dataset
register --declare`, and the pointer to `dataset declare`) and the dashboard's second registration
step. Every choice is logged; nothing becomes public that is not named; bad input is a 400 with the
reason and changes nothing."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from rest_framework.test import APIClient

from core.errors import PermissionDeniedError, ValidationError
from governance.cli_format import public_domain
from governance.models import AuditEvent, Dataset, DatasetVersion
from governance.services import dataset_register, dataset_schema_declare_columns
from tests.governance.test_cli import synthgate

pytestmark = pytest.mark.django_db

CSV = b"age,town,hours,income\n17,Leeds,40,low\n40,York,1,high\n90,Leeds,99,low\n33,York,38,high\n"
CODEBOOK = {
    "age": {"role": "quasi_identifier", "min": 15, "max": 100, "nullable": False, "domain_source": "census form"},
    "town": {"role": "protected", "categories": ["Leeds", "York", "Hull"], "domain_source": "county list"},
    "income": {"role": "label", "categories": ["low", "high"], "domain_source": "survey codebook"},
}


@pytest.fixture
def table(tmp_path) -> Path:
    path = tmp_path / "people.csv"
    path.write_bytes(CSV)
    return path


def register(actor, path: Path, **extra):
    return dataset_register(
        actor=actor, name="people", path=path, filename=path.name, epsilon_cap="5", delta_cap="0", **extra
    )


def columns(version: DatasetVersion) -> dict[str, dict]:
    return {column["name"]: column for column in version.schema["columns"]}


def assert_codebook_declared(version: DatasetVersion) -> None:
    stored = columns(version)
    for name, declared in CODEBOOK.items():
        assert {key: stored[name].get(key) for key in declared} == declared, name
    assert stored["hours"] == {"name": "hours", "type": "integer", "role": "other", "type_proposed": True}  # unnamed
    assert public_domain(stored["hours"]) == "private (DP, paid)"
    assert version.schema_inferred is False


# --- the service ----------------------------------------------------------------------------------


def test_declarations_at_registration_are_applied_to_the_inferred_schema_and_logged(cast, data_dir, table):
    result = register(cast.steward, table, declarations=CODEBOOK)

    assert_codebook_declared(result.version)
    event = AuditEvent.objects.get(action="dataset_version.create")
    assert event.after["declarations"] == CODEBOOK


@pytest.mark.parametrize(
    ("declarations", "reason"),
    [
        ({"wage": {"min": 0}}, "There is no column 'wage' to declare"),
        ({"age": {"colour": "red"}}, "Column 'age': cannot declare colour"),
        ({"town": {"categories": ["Leeds"]}}, "York"),
        ({"age": {"min": 50, "max": 20}}, "min is greater than max"),
        ({"age": {"min": "old"}}, "age"),
    ],
)
def test_a_bad_declaration_at_registration_stores_nothing(cast, data_dir, table, declarations, reason):
    with pytest.raises(ValidationError) as refused:
        register(cast.steward, table, declarations=declarations)

    assert reason in refused.value.message
    assert not Dataset.objects.exists() and not AuditEvent.objects.filter(action__startswith="dataset").exists()
    assert not (data_dir / "datasets").exists() or not any((data_dir / "datasets").rglob("*.csv"))


def test_several_columns_are_declared_all_or_none_one_event_each(cast, data_dir, table):
    version = register(cast.steward, table).version
    assert version.schema_inferred and all(c["role"] == "other" for c in version.schema["columns"])
    before = dict(version.schema)

    with pytest.raises(ValidationError) as refused:
        dataset_schema_declare_columns(
            actor=cast.steward, name="people", declarations={**CODEBOOK, "hours": {"min": 99, "max": 0}}
        )
    assert refused.value.extra["column"] == "hours"
    version.refresh_from_db()
    assert version.schema == before and not AuditEvent.objects.filter(action="dataset_version.declare").exists()
    with pytest.raises(PermissionDeniedError):
        dataset_schema_declare_columns(actor=cast.requester, name="people", declarations=CODEBOOK)
    with pytest.raises(ValidationError, match="Nothing to declare"):
        dataset_schema_declare_columns(actor=cast.steward, name="people", declarations={"age": {}})

    result = dataset_schema_declare_columns(actor=cast.steward, name="people", declarations=CODEBOOK)

    assert_codebook_declared(result.version)
    events = AuditEvent.objects.filter(action="dataset_version.declare").order_by("id")
    assert [event.after["column"]["name"] for event in events] == ["age", "town", "income"]
    assert events[0].before["column"] == {"name": "age", "type": "integer", "role": "other", "type_proposed": True}


# --- the API --------------------------------------------------------------------------------------


def client_as(user) -> APIClient:
    client = APIClient()
    client.force_authenticate(user)
    return client


def test_the_declare_endpoint_declares_columns_and_logs_each(cast, data_dir, table):
    register(cast.steward, table)

    response = client_as(cast.steward).post("/api/datasets/people/declare/", {"columns": CODEBOOK}, format="json")

    assert response.status_code == 200, response.content
    body = response.json()
    assert [column["name"] for column in body["columns"]] == ["age", "town", "income"]
    assert body["version"]["number"] == 1 and body["version"]["schema_inferred"] is False
    assert body["warnings"] == []
    assert_codebook_declared(DatasetVersion.objects.get())
    assert AuditEvent.objects.filter(action="dataset_version.declare", channel="api").count() == 3

    removed = client_as(cast.steward).post(
        "/api/datasets/people/declare/", {"columns": {"town": {"categories": None}}}, format="json"
    )
    assert removed.status_code == 200 and "categories" not in removed.json()["columns"][0]


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        ({"columns": {"wage": {"min": 0}}}, "has no column 'wage'"),
        ({"columns": {"age": {"colour": "red"}}}, "Cannot declare colour"),
        ({"columns": {"age": {"min": True}}}, "A bound is a number"),
        ({"columns": {"age": {"role": "boss"}}}, "not a valid choice"),
        ({"columns": {"age": {"nullable": "perhaps"}}}, "boolean"),
        ({"columns": {"age": {}}}, "Nothing to declare"),
        ({"columns": {}}, "empty"),
        ({}, "required"),
        ({"columns": {"town": {"categories": ["Leeds"]}}}, "outside the declared categories: York"),
        ({"columns": {"age": {"min": 50, "max": 20}}}, "min is greater than max"),
        ({"columns": {"age": {"role": "identifier"}}}, "cannot become an identifier"),
    ],
)
def test_the_declare_endpoint_answers_400_with_the_reason_and_changes_nothing(cast, data_dir, table, body, reason):
    version = register(cast.steward, table).version

    response = client_as(cast.steward).post("/api/datasets/people/declare/", body, format="json")

    assert response.status_code == 400, response.content
    error = response.json()
    assert set(error) == {"code", "message", "extra"}
    assert reason in json.dumps(error, ensure_ascii=False)
    version.refresh_from_db()
    assert version.schema_inferred and not AuditEvent.objects.filter(action="dataset_version.declare").exists()


def test_only_a_steward_declares_and_the_schema_documents_the_endpoint(cast, data_dir, table):
    register(cast.steward, table)
    for user in (cast.requester, cast.approver, cast.auditor):
        refused = client_as(user).post("/api/datasets/people/declare/", {"columns": CODEBOOK}, format="json")
        assert refused.status_code == 403
    assert not AuditEvent.objects.filter(action="dataset_version.declare").exists()

    schema = client_as(cast.steward).get("/api/schema/", HTTP_ACCEPT="application/json").json()
    operation = schema["paths"]["/api/datasets/{name}/declare/"]["post"]
    assert operation["operationId"] == "dataset_declare"
    assert {"200", "400", "403", "404", "409"} <= set(operation["responses"])
    declaration = schema["components"]["schemas"]["ColumnDeclaration"]["properties"]
    assert {"role", "categories", "min", "max", "nullable", "domain_source"} <= set(declaration)
    register_input = schema["components"]["schemas"]["DatasetRegisterInput"]["properties"]
    assert "declarations" in register_input


def test_registration_over_the_api_takes_declarations(cast, data_dir):
    fields = {
        "file": SimpleUploadedFile("people.csv", CSV, content_type="text/csv"),
        "name": "people",
        "epsilon_cap": "5",
        "delta_cap": "0",
        "declarations": json.dumps(CODEBOOK),
    }
    response = client_as(cast.steward).post("/api/datasets/", fields, format="multipart")

    assert response.status_code == 201, response.content
    assert_codebook_declared(DatasetVersion.objects.get())

    bad = dict(fields, file=SimpleUploadedFile("p.csv", CSV), name="people2", declarations='{"age": {"min": "x"')
    refused = client_as(cast.steward).post("/api/datasets/", bad, format="multipart")
    assert refused.status_code == 400 and "The declarations is not valid JSON" in refused.json()["message"]


# --- the CLI --------------------------------------------------------------------------------------


def test_cli_register_takes_declarations_and_points_to_dataset_declare(cast, data_dir, table, tmp_path):
    plain = synthgate(
        "dataset", "register", table, "--name", "people", "--epsilon-cap", "5", "--delta-cap", "0", "--as", "steward"
    )
    assert plain.code == 0
    assert "this schema was inferred" in plain.stdout
    assert "synthgate dataset declare people --column COLUMN" in plain.stdout
    assert "Nothing is public that is not declared" in plain.stdout

    other = tmp_path / "other.csv"
    other.write_bytes(b"score,grade\n1,a\n2,b\n3,a\n")
    declarations = tmp_path / "declare.json"
    declarations.write_text(json.dumps({"grade": {"role": "label", "categories": ["a", "b", "c"]}}))
    declared = synthgate(
        "dataset", "register", other, "--name", "scores", "--epsilon-cap", "5", "--delta-cap", "0",
        "--declare", declarations, "--as", "steward",
    )  # fmt: skip
    assert declared.code == 0, declared.message
    grade = columns(DatasetVersion.objects.get(dataset__name="scores"))["grade"]
    assert (grade["role"], grade["categories"]) == ("label", ["a", "b", "c"])

    declarations.write_text(json.dumps({"grade": {"categories": ["a"]}}))
    refused = synthgate(
        "dataset", "register", other, "--name", "scores2", "--epsilon-cap", "5", "--delta-cap", "0",
        "--declare", declarations, "--as", "steward",
    )  # fmt: skip
    assert refused.code == 2 and "outside the declared categories: b" in refused.message
    assert not Dataset.objects.filter(name="scores2").exists()


# --- the dashboard ------------------------------------------------------------------------------


def test_the_dashboard_registration_continues_to_the_schema_where_columns_are_declared(cast, data_dir, client):
    client.force_login(cast.steward)
    fields = {
        "file": SimpleUploadedFile("people.csv", CSV, content_type="text/csv"),
        "name": "people",
        "epsilon_cap": "5",
        "delta_cap": "0",
        "sensitivity": "internal",
    }
    registered = client.post("/datasets/new/", fields)
    assert registered.status_code == 302 and registered["Location"] == "/datasets/people/schema/"

    page = client.get("/datasets/people/schema/")
    text = page.content.decode()
    assert page.status_code == 200 and "Step 2 of 2" in text and "(inferred)" in text
    assert "Nothing about a column's values is public until you declare it" in text
    for name, kind in (("age", "integer"), ("town", "categorical"), ("hours", "integer"), ("income", "categorical")):
        assert f"<code>{name}</code> · {kind}" in text
    assert text.count("private (DP, paid)") == 4

    post = {"c0-column": "age", "c1-column": "town", "c2-column": "hours", "c3-column": "income"}
    nothing = client.post("/datasets/people/schema/", post)
    assert nothing.status_code == 400 and "Nothing to declare" in nothing.content.decode()

    bad = client.post("/datasets/people/schema/", {**post, "c0-minimum": "50", "c0-maximum": "20", "c3-role": "label"})
    assert bad.status_code == 400
    (_, age_form) = bad.context["forms"][0]
    # Shown in the age column's box, beside its minimum, in the form's words.
    assert age_form.errors["minimum"] == ["Public minimum is greater than public maximum."]
    assert not AuditEvent.objects.filter(action="dataset_version.declare").exists()

    good = client.post(
        "/datasets/people/schema/",
        {
            **post,
            "c0-role": "quasi_identifier",
            "c0-minimum": "15",
            "c0-maximum": "100",
            "c0-nullable": "no",
            "c0-domain_source": "census form",
            "c1-role": "protected",
            "c1-categories": "Leeds, York, Hull",
            "c1-domain_source": "county list",
            "c3-role": "label",
            "c3-categories": "low,high",
            "c3-domain_source": "survey codebook",
        },
    )
    assert good.status_code == 302 and good["Location"] == "/datasets/people/"
    assert_codebook_declared(DatasetVersion.objects.get())
    events = AuditEvent.objects.filter(action="dataset_version.declare", channel="web")
    assert sorted(event.after["column"]["name"] for event in events) == ["age", "income", "town"]

    client.force_login(cast.requester)
    assert client.get("/datasets/people/schema/").status_code == 403
    assert client.post("/datasets/people/schema/", {**post, "c2-role": "label"}).status_code == 403
