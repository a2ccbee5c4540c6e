"""Declared domains must be public knowledge: registration warns (service, API, CLI, dashboard)
when a declared bound equals the data's exact minimum or maximum, or a declared category list
equals exactly the categories present, and records the warning with the registration."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import call_command
from rest_framework.test import APIClient

from governance.ingest import READ_FROM_DATA
from governance.models import AuditEvent
from governance.services import dataset_register

CSV = b"age,town,hours\n17,Leeds,40\n40,York,1\n90,Leeds,99\n"
READ = {
    "columns": [
        {"name": "age", "type": "integer", "min": 17, "max": 90},
        {"name": "town", "type": "categorical", "categories": ["Leeds", "York"]},
        {"name": "hours", "type": "integer", "min": 0, "max": 99},
    ]
}
CODEBOOK = {
    "columns": [
        {"name": "age", "type": "integer", "min": 15, "max": 100},
        {"name": "town", "type": "categorical", "categories": ["Leeds", "York", "Hull"]},
        {"name": "hours", "type": "integer", "min": 0, "max": 99, "domain_source": "CPS codebook: top-coded at 99"},
    ]
}
EXPECTED = [
    f"Column 'age': the declared min 17 equals the exact minimum of the data; {READ_FROM_DATA}.",
    f"Column 'age': the declared max 90 equals the exact maximum of the data; {READ_FROM_DATA}.",
    f"Column 'town': the declared categories are exactly the 2 present in the data; {READ_FROM_DATA}.",
    f"Column 'hours': the declared max 99 equals the exact maximum of the data; {READ_FROM_DATA}.",
]


@pytest.fixture
def table(tmp_path) -> Path:
    path = tmp_path / "people.csv"
    path.write_bytes(CSV)
    return path


def register(actor, path: Path, schema: dict):
    return dataset_register(
        actor=actor, name="people", path=path, filename=path.name, epsilon_cap="5", delta_cap="0", schema=schema
    )


@pytest.mark.django_db
def test_bounds_and_categories_read_from_the_data_are_warned_about_and_logged(cast, data_dir, table):
    result = register(cast.steward, table, READ)

    assert result.warnings == EXPECTED
    assert AuditEvent.objects.get(action="dataset_version.create").after["warnings"] == EXPECTED


@pytest.mark.django_db
def test_codebook_bounds_and_a_named_public_source_are_not_warned_about(cast, data_dir, table):
    result = register(cast.steward, table, CODEBOOK)

    assert result.warnings == []
    assert "warnings" not in AuditEvent.objects.get(action="dataset_version.create").after


@pytest.mark.django_db
def test_the_bundled_adult_schema_declares_no_bound_read_from_the_data(cast, data_dir, adult_schema):
    path = Path(__file__).resolve().parents[2] / "sample_data" / "adult.csv.gz"
    result = dataset_register(
        actor=cast.steward,
        name="adult",
        path=path,
        filename=path.name,
        epsilon_cap="10",
        delta_cap="2e-5",
        schema=adult_schema,
    )
    assert result.warnings == []


@pytest.mark.django_db
def test_the_api_returns_the_warnings(cast, data_dir):
    client = APIClient()
    client.force_authenticate(cast.steward)
    fields = {
        "file": SimpleUploadedFile("people.csv", CSV, content_type="text/csv"),
        "name": "people",
        "epsilon_cap": "5",
        "delta_cap": "0",
        "schema": json.dumps(READ),
    }
    response = client.post("/api/datasets/", fields, format="multipart")

    assert response.status_code == 201 and response.json()["warnings"] == EXPECTED


@pytest.mark.django_db
def test_the_cli_prints_the_warnings(cast, data_dir, table, tmp_path):
    schema = tmp_path / "schema.json"
    schema.write_text(json.dumps(READ))
    stdout = io.StringIO()
    call_command(
        "dataset", "register", str(table), "--name", "people", "--schema", str(schema), "--epsilon-cap", "5",
        "--delta-cap", "0", "--as", "steward", stdout=stdout,
    )  # fmt: skip
    assert all(f"warning: {warning}" in stdout.getvalue() for warning in EXPECTED)


@pytest.mark.django_db
def test_the_dashboard_shows_the_warnings(cast, data_dir, client):
    client.force_login(cast.steward)
    fields = {
        "file": SimpleUploadedFile("people.csv", CSV, content_type="text/csv"),
        "name": "people",
        "epsilon_cap": "5",
        "delta_cap": "0",
        "sensitivity": "internal",
        "schema_json": json.dumps(READ),
    }
    response = client.post("/datasets/new/", fields, follow=True)

    assert response.status_code == 200
    assert "declared domains must be public knowledge" in response.content.decode()
