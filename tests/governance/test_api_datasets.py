"""Datasets through the API: register, versions, detail, budget, lists; bad uploads write nothing."""

from __future__ import annotations

import gzip
import hashlib
import json
import tempfile
from pathlib import Path
from unittest.mock import ANY

import pytest
from django.conf import settings
from django.core.files.uploadedfile import SimpleUploadedFile
from rest_framework.test import APIClient

from governance.models import (
    Approval,
    AuditEvent,
    BudgetEntry,
    DataRequest,
    Dataset,
    DatasetVersion,
)
from governance.services import access_request_approve
from tests.governance.factories import PurposeFactory, dataset_register_adult, request_file

CSV = b"id,age,sex,income\n1,30,F,yes\n2,40,M,no\n3,50,F,no\n"
CANONICAL = b"age,sex,income\n30,F,yes\n40,M,no\n50,F,no\n"
SCHEMA = {
    "columns": [
        {"name": "id", "type": "integer", "role": "identifier"},
        {"name": "age", "type": "integer", "role": "quasi_identifier", "min": 17, "max": 90},
        {"name": "sex", "type": "categorical", "role": "protected"},
        {"name": "income", "type": "categorical", "role": "label"},
    ]
}
STORED_SCHEMA = {"columns": SCHEMA["columns"][1:], "missing_values": [""]}


def client_as(user) -> APIClient:
    client = APIClient()
    client.force_authenticate(user)
    return client


def upload(content: bytes = CSV, filename: str = "people.csv", **fields) -> dict:
    return {
        "file": SimpleUploadedFile(filename, content, content_type="text/csv"),
        "name": "people",
        "epsilon_cap": "3.5",
        "delta_cap": "1e-5",
        **fields,
    }


def register(client: APIClient, **fields):
    return client.post("/api/datasets/", upload(**fields), format="multipart")


def stored_state() -> dict:
    """Every row count the API could change, and every file under the data directory."""
    files = sorted(
        str(path.relative_to(settings.DATA_DIR))
        for path in Path(settings.DATA_DIR).rglob("*")
        if path.is_file() and not path.name.startswith("test.sqlite3")
    )
    counts = {
        model.__name__: model.objects.count()
        for model in (Dataset, DatasetVersion, DataRequest, Approval, BudgetEntry, AuditEvent)
    }
    return {**counts, "files": files}


@pytest.fixture
def uploads_dir(tmp_path, monkeypatch) -> Path:
    """Where the API puts its temporary copy of an upload; every test checks it is left empty."""
    directory = tmp_path / "uploads"
    directory.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(directory))
    return directory


# --- registering ---------------------------------------------------------------------------


def test_registers_a_dataset_and_answers_with_version_schema_and_dropped_identifiers(cast, uploads_dir):
    response = register(
        client_as(cast.steward), schema=json.dumps(SCHEMA), description="People", sensitivity="restricted"
    )

    assert response.status_code == 201
    assert response.json() == {
        "created": True,
        "dataset": {
            "name": "people",
            "description": "People",
            "sensitivity": "restricted",
            "owner": "steward",
            "epsilon_cap": "3.5",
            "delta_cap": "0.00001",
            "created_at": ANY,
            "updated_at": ANY,
        },
        "version": {
            "dataset": "people",
            "number": 1,
            "kind": "source",
            "content_hash": hashlib.sha256(CANONICAL).hexdigest(),
            "n_rows": 3,
            "n_columns": 3,
            "size_bytes": len(CANONICAL),
            "schema": STORED_SCHEMA,
            "schema_inferred": False,
            "dropped_columns": ["id"],
            "original_filename": "people.csv",
            "rows_checked": True,
            "rows_contradiction": "",
            "parent": None,
            "lineage": {},
            "created_by": "steward",
            "created_at": ANY,
        },
        "dropped_columns": ["id"],
        "warnings": [],
        "suggested_declarations": {},
    }
    version = DatasetVersion.objects.get()
    assert (Path(settings.DATA_DIR) / version.storage_key).read_bytes() == CANONICAL
    assert response.json()["version"]["created_at"].endswith("Z")
    assert list(uploads_dir.iterdir()) == []


def test_shows_the_inferred_schema_when_none_is_declared(cast, uploads_dir):
    response = register(client_as(cast.steward))

    assert response.status_code == 201
    assert response.json()["version"]["schema_inferred"] is True
    assert response.json()["version"]["schema"]["columns"] == [
        {"name": "id", "type": "integer", "role": "other", "type_proposed": True},
        {"name": "age", "type": "integer", "role": "other", "type_proposed": True},
        {"name": "sex", "type": "categorical", "role": "other", "type_proposed": True},
        {"name": "income", "type": "categorical", "role": "other", "type_proposed": True},
    ]
    assert response.json()["dropped_columns"] == []


def test_accepts_the_schema_as_an_uploaded_json_file(cast, uploads_dir):
    schema_file = SimpleUploadedFile("schema.json", json.dumps(SCHEMA).encode(), content_type="application/json")

    response = register(client_as(cast.steward), schema=schema_file)

    assert response.status_code == 201
    assert response.json()["version"]["schema"] == STORED_SCHEMA


def test_identical_content_answers_200_with_the_existing_version(cast, uploads_dir):
    client = client_as(cast.steward)
    first = register(client, schema=json.dumps(SCHEMA))
    before = stored_state()

    again = register(client, schema=json.dumps(SCHEMA), filename="copy.csv")

    assert again.status_code == 200
    assert again.json()["created"] is False
    assert again.json()["version"] == first.json()["version"]
    assert stored_state() == before


def test_adds_a_source_version_to_an_existing_dataset_with_its_caps(cast, uploads_dir):
    client = client_as(cast.steward)
    register(client, schema=json.dumps(SCHEMA))
    more = CSV + b"4,60,M,yes\n"

    response = client.post(
        "/api/datasets/people/versions/",
        {"file": SimpleUploadedFile("more.csv", more), "schema": json.dumps(SCHEMA)},
        format="multipart",
    )

    assert response.status_code == 201
    body = response.json()
    assert (body["created"], body["version"]["number"], body["version"]["n_rows"]) == (True, 2, 4)
    assert (body["dataset"]["epsilon_cap"], body["dataset"]["delta_cap"]) == ("3.5", "0.00001")
    assert list(uploads_dir.iterdir()) == []


# --- reading -------------------------------------------------------------------------------


def test_detail_shows_caps_latest_source_version_and_every_column_role(cast, uploads_dir):
    register(client_as(cast.steward), schema=json.dumps(SCHEMA))

    response = client_as(cast.requester).get("/api/datasets/people/")

    assert response.status_code == 200
    body = response.json()
    assert body["latest_source_version"]["number"] == 1
    assert body["latest_source_version"]["schema"] == STORED_SCHEMA
    assert body["column_roles"] == {
        "id": "identifier",
        "age": "quasi_identifier",
        "sex": "protected",
        "income": "label",
    }
    assert {key: body[key] for key in ("name", "owner", "epsilon_cap", "delta_cap", "sensitivity")} == {
        "name": "people",
        "owner": "steward",
        "epsilon_cap": "3.5",
        "delta_cap": "0.00001",
        "sensitivity": "confidential",
    }


def test_lists_versions_and_reads_one_by_number(cast, adult_schema):
    dataset_register_adult(steward=cast.steward, schema=adult_schema)
    client = client_as(cast.auditor)

    listing = client.get("/api/datasets/adult/versions/")
    one = client.get("/api/datasets/adult/versions/1/")

    assert listing.status_code == 200
    assert [version["number"] for version in listing.json()["results"]] == [1]
    assert one.json() == listing.json()["results"][0]
    assert one.json()["n_rows"] == 2000
    # The declared label column comes back as declared: its categories and their public source.
    declared = next(column for column in adult_schema["columns"] if column["name"] == "income")
    assert declared["categories"] == ["<=50K", ">50K"]
    assert one.json()["schema"]["columns"][-1] == declared


def test_budget_shows_exact_caps_spent_reserved_remaining_and_every_ledger_entry(cast):
    dataset_register_adult(steward=cast.steward, epsilon_cap="10", delta_cap="1e-4")
    PurposeFactory(approvals_required=1)
    request = request_file(requester=cast.requester, epsilon="0.3", delta="1e-7")  # MST needs ε ≥ 0.25 here
    access_request_approve(actor=cast.approver, request_id=request.pk)

    response = client_as(cast.requester).get("/api/datasets/adult/budget/")

    assert response.status_code == 200
    assert response.json() == {
        "dataset": "adult",
        "epsilon": {"cap": "10", "spent": "0.02", "reserved": "0.3", "remaining": "9.68"},
        "delta": {"cap": "0.0001", "spent": "0", "reserved": "0.0000001", "remaining": "0.0000999"},
        "entries": [
            {
                "id": BudgetEntry.objects.get(kind="estimate").pk,
                "kind": "estimate",
                "epsilon": "0.02",
                "delta": "0",
                "request": None,
                "version": 1,
                "job": None,
                "mechanism": "discrete_laplace_row_count",
                "accountant": ANY,
                "actor": "steward",
                "note": "DP row estimate of adult@v1, once per version",
                "created_at": ANY,
            },
            {
                "id": BudgetEntry.objects.get(kind="reserve").pk,
                "kind": "reserve",
                "epsilon": "0.3",
                "delta": "0.0000001",
                "request": request.pk,
                "version": None,
                "job": None,
                "mechanism": "",
                "accountant": {},
                "actor": "approver",
                "note": "reserved at final approval",
                "created_at": ANY,
            },
        ],
    }


# --- lists: pagination and filters ---------------------------------------------------------


def test_paginates_with_page_size_and_next_links(cast):
    for name in ("a-one", "b-two", "c-three"):
        dataset_register_adult(steward=cast.steward, name=name)
    client = client_as(cast.approver)

    first = client.get("/api/datasets/", {"page_size": 2})
    second = client.get(first.json()["next"])

    assert first.json()["count"] == 3
    assert [item["name"] for item in first.json()["results"]] == ["a-one", "b-two"]
    assert first.json()["next"] == "http://testserver/api/datasets/?page=2&page_size=2"
    assert first.json()["previous"] is None
    assert [item["name"] for item in second.json()["results"]] == ["c-three"]
    assert second.json()["next"] is None


def test_a_page_past_the_end_is_a_404_in_the_error_shape(cast):
    response = client_as(cast.steward).get("/api/datasets/", {"page": 5})

    assert response.status_code == 404
    assert response.json() == {"code": "not_found", "message": "Invalid page.", "extra": {}}


def test_filters_datasets_by_name_and_sensitivity(cast, uploads_dir):
    dataset_register_adult(steward=cast.steward, name="adult")
    register(client_as(cast.steward), sensitivity="restricted")
    client = client_as(cast.requester)

    by_name = client.get("/api/datasets/", {"name": "adult"})
    by_sensitivity = client.get("/api/datasets/", {"sensitivity": "restricted"})

    assert [item["name"] for item in by_name.json()["results"]] == ["adult"]
    assert [item["name"] for item in by_sensitivity.json()["results"]] == ["people"]


def test_an_unknown_filter_value_is_a_400_naming_the_parameter(cast):
    response = client_as(cast.steward).get("/api/datasets/", {"sensitivity": "secret"})

    assert response.status_code == 400
    assert response.json()["code"] == "invalid"
    assert response.json()["extra"]["field"] == "sensitivity"
    assert "secret is not one of the available choices" in response.json()["message"]


# --- bad uploads: a specific 4xx, and nothing written --------------------------------------


def gzipped(data: bytes) -> bytes:
    return gzip.compress(data, compresslevel=9)


NUMERIC_SCHEMA = json.dumps({"columns": [{"name": "age", "type": "integer"}, {"name": "sex", "type": "categorical"}]})
LACKING_SCHEMA = json.dumps(
    {
        "columns": [
            {"name": "age", "type": "integer"},
            {"name": "sex", "type": "categorical"},
            {"name": "zip", "type": "categorical"},
        ]
    }
)

BAD_UPLOADS = [
    # id, upload fields, settings, status, code, message fragment, extra subset
    ("empty file", {"content": b""}, {}, 400, "invalid_dataset", "The file is empty.", {}),
    (
        "header only",
        {"content": b"age,sex\n"},
        {},
        400,
        "invalid_dataset",
        "The file has a header but no data rows.",
        {},
    ),
    (
        "ragged rows",
        {"content": b"age,sex\n30,F\n40\n"},
        {},
        400,
        "invalid_dataset",
        "Line 3 has 1 fields; the header has 2.",
        {"line": 3, "fields": 1, "expected": 2},
    ),
    (
        "duplicate column names",
        {"content": b"age,sex,age\n1,F,2\n"},
        {},
        400,
        "invalid_dataset",
        "Duplicate column names: age.",
        {"duplicate_columns": ["age"]},
    ),
    (
        "empty column name",
        {"content": b"age,,sex\n1,2,F\n"},
        {},
        400,
        "invalid_dataset",
        "Column 2 of the header has an empty name.",
        {"empty_name_positions": [2]},
    ),
    (
        "non-UTF-8 bytes",
        {"content": b"age,sex\n30,F\n40,caf\xe9\n"},
        {},
        400,
        "invalid_dataset",
        "The file is not valid UTF-8: byte 19 (line 3)",
        {"line": 3, "byte_offset": 19},
    ),
    (
        "unparseable number",
        {"content": b"age,sex\n30,F\nforty,M\n", "schema": NUMERIC_SCHEMA},
        {},
        400,
        "invalid_dataset",
        "Column 'age', row 2 (line 3): 'forty' is not a number",
        {"column": "age"},
    ),
    (
        "schema names missing columns",
        {"content": b"age,sex\n30,F\n", "schema": LACKING_SCHEMA},
        {},
        400,
        "invalid_dataset",
        "The schema names columns the file lacks: zip.",
        {"unknown_columns": ["zip"]},
    ),
    (
        "schema is not JSON",
        {"schema": "{columns"},
        {},
        400,
        "invalid",
        "schema: The schema is not valid JSON",
        {"field": "schema"},
    ),
    (
        "file over the upload limit",
        {},
        {"SYNTHGATE_MAX_UPLOAD_BYTES": 10},
        400,
        "invalid_dataset",
        "over the upload limit of 10 bytes",
        {"limit_bytes": 10},
    ),
    (
        "gzip expands past the limit",
        {"content": gzipped(b"age,sex\n" + b"30,F\n" * 1000), "filename": "p.csv.gz"},
        {"SYNTHGATE_MAX_EXPANDED_BYTES": 1000},
        400,
        "invalid_dataset",
        "The compressed upload expands past 1,000 bytes, the limit.",
        {"limit_bytes": 1000},
    ),
    (
        "gzip ratio excessive",
        {"content": gzipped(b"age,sex\n" + b"30,F\n" * 300_000), "filename": "p.csv.gz"},
        {"SYNTHGATE_MAX_COMPRESSION_RATIO": 50},
        400,
        "invalid_dataset",
        "expands more than 50:1",
        {"ratio_limit": 50},
    ),
    (
        "gzip corrupt",
        {"content": gzipped(CSV)[:-12] + b"garbage!", "filename": "p.csv.gz"},
        {},
        400,
        "invalid_dataset",
        "The compressed file is corrupt",
        {},
    ),
    (
        "epsilon cap zero",
        {"epsilon_cap": "0"},
        {},
        400,
        "invalid",
        "epsilon_cap must be greater than 0; got 0",
        {"field": "epsilon_cap"},
    ),
    (
        "epsilon cap negative",
        {"epsilon_cap": "-1"},
        {},
        400,
        "invalid",
        "epsilon_cap must be greater than 0",
        {"field": "epsilon_cap"},
    ),
    (
        "epsilon cap not a number",
        {"epsilon_cap": "lots"},
        {},
        400,
        "invalid",
        "epsilon_cap: A valid number is required.",
        {"field": "epsilon_cap"},
    ),
    (
        "delta cap of one",
        {"delta_cap": "1"},
        {},
        400,
        "invalid",
        "delta_cap must be less than 1; got 1",
        {"field": "delta_cap"},
    ),
    ("name not a slug", {"name": "my data!"}, {}, 400, "invalid", "name: Enter a valid", {"field": "name"}),
    (
        "unknown sensitivity",
        {"sensitivity": "secret"},
        {},
        400,
        "invalid",
        'sensitivity: "secret" is not a valid',
        {"field": "sensitivity"},
    ),
    ("no file", {"file": ""}, {}, 400, "invalid", "file: ", {"field": "file"}),
]


@pytest.mark.parametrize(
    ("fields", "overrides", "status", "code", "message", "extra"),
    [pytest.param(*case[1:], id=case[0]) for case in BAD_UPLOADS],
)
def test_a_bad_upload_is_refused_with_a_specific_error_and_nothing_is_written(
    cast, settings, uploads_dir, fields, overrides, status, code, message, extra
):
    dataset_register_adult(steward=cast.steward)  # something already stored, to be left alone
    for name, value in overrides.items():
        setattr(settings, name, value)
    fields = dict(fields)
    data = upload(content=fields.pop("content", CSV), filename=fields.pop("filename", "people.csv"), **fields)
    before = stored_state()

    response = client_as(cast.steward).post("/api/datasets/", data, format="multipart")

    assert response.status_code == status, response.json()
    body = response.json()
    assert (body["code"], set(body)) == (code, {"code", "message", "extra"})
    assert message in body["message"]
    assert extra.items() <= body["extra"].items()
    assert stored_state() == before
    assert list(uploads_dir.iterdir()) == []


def test_registering_an_existing_name_with_other_caps_is_a_conflict_and_writes_nothing(cast, uploads_dir):
    client = client_as(cast.steward)
    register(client)
    before = stored_state()

    response = register(client, content=CSV + b"4,60,M,yes\n", epsilon_cap="99")

    assert response.status_code == 409
    assert response.json() == {
        "code": "conflict",
        "message": "Dataset 'people' exists with caps ε = 3.5, δ = 0.00001; "
        "caps cannot be changed by registering a new version.",
        "extra": {"epsilon_cap": "3.5", "delta_cap": "0.00001"},
    }
    assert stored_state() == before


def test_a_json_body_is_refused_as_the_wrong_media_type(cast):
    response = client_as(cast.steward).post("/api/datasets/", {"name": "people"}, format="json")

    assert response.status_code == 415
    assert response.json() == {
        "code": "unsupported_media_type",
        "message": 'Unsupported media type "application/json" in request.',
        "extra": {},
    }
