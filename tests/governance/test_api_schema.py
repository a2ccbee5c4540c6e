"""The OpenAPI schema: served at /api/schema/, and valid with no warnings."""

from __future__ import annotations

from pathlib import Path

import pytest
from django.core.management import call_command
from rest_framework.test import APIClient

ROOT = Path(__file__).resolve().parents[2]

GOVERNANCE_PATHS = {
    "/api/auth/token/": {"post"},
    "/api/datasets/": {"get", "post"},
    "/api/datasets/{name}/": {"get"},
    "/api/datasets/{name}/versions/": {"get", "post"},
    "/api/datasets/{name}/versions/{number}/": {"get"},
    "/api/datasets/{name}/budget/": {"get"},
    "/api/purposes/": {"get", "post"},
    "/api/purposes/{name}/": {"get"},
    "/api/requests/": {"get", "post"},
    "/api/requests/{request_id}/": {"get"},
    "/api/requests/{request_id}/submit/": {"post"},
    "/api/requests/{request_id}/approve/": {"post"},
    "/api/requests/{request_id}/reject/": {"post"},
    "/api/requests/{request_id}/withdraw/": {"post"},
    "/api/audit-events/": {"get"},
    "/api/audit-events/verify/": {"get"},
}


def test_the_schema_is_served_with_every_governance_operation(db):
    response = APIClient().get("/api/schema/", {"format": "json"})

    assert response.status_code == 200
    schema = response.json()
    paths = schema["paths"]
    for path, methods in GOVERNANCE_PATHS.items():
        assert methods <= set(paths[path]), path
    assert set(schema["components"]["schemas"]["Error"]["properties"]) == {"code", "message", "extra"}
    approve = paths["/api/requests/{request_id}/approve/"]["post"]
    assert {"200", "400", "401", "403", "404", "409"} <= set(approve["responses"])
    register = paths["/api/datasets/"]["post"]
    assert "multipart/form-data" in register["requestBody"]["content"]
    assert {"name", "sensitivity", "page", "page_size"} <= {
        p["name"] for p in paths["/api/datasets/"]["get"]["parameters"]
    }


def test_decimals_are_documented_as_strings(db):
    schema = APIClient().get("/api/schema/", {"format": "json"}).json()

    epsilon = schema["components"]["schemas"]["DataRequest"]["properties"]["epsilon"]
    assert (epsilon["type"], epsilon["format"]) == ("string", "decimal")


def test_the_schema_validates_without_warnings(tmp_path):
    target = tmp_path / "schema.yml"

    call_command("spectacular", "--validate", "--fail-on-warn", "--file", str(target))

    assert "/api/requests/{request_id}/approve/" in target.read_text()


def _schema() -> dict:
    return APIClient().get("/api/schema/", {"format": "json"}).json()


def test_every_operation_id_is_chosen_in_the_code_not_generated(db):
    source = "\n".join(
        path.read_text(encoding="utf-8")
        for app in ("governance", "synth_engine", "audits", "core")
        for path in (ROOT / app).rglob("*.py")
    )
    operations = [op for methods in _schema()["paths"].values() for op in methods.values()]

    generated = [op["operationId"] for op in operations if f'operation_id="{op["operationId"]}"' not in source]
    assert generated == []


def test_the_jobs_list_is_documented_as_the_page_it_returns_with_typed_filters(db):
    operation = _schema()["paths"]["/api/jobs/"]["get"]

    page = operation["responses"]["200"]["content"]["application/json"]["schema"]["$ref"]
    assert page.endswith("/PaginatedJobList")
    parameters = {p["name"]: p["schema"] for p in operation["parameters"]}
    assert parameters["status"]["enum"] == ["cancelled", "failed", "queued", "running", "succeeded"]
    assert parameters["request"] == {"type": "integer", "minimum": 1}
    assert parameters["page_size"] == {"type": "integer", "minimum": 1, "maximum": 500}
    assert {"404", "409"} <= set(_schema()["paths"]["/api/jobs/{job_id}/cancel/"]["post"]["responses"])


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ({"page_size": "null"}, "page_size"),
        ({"page_size": "0"}, "page_size"),
        ({"page_size": "501"}, "page_size"),
        ({"status": "bogus"}, "status"),
        ({"request": "1.5"}, "request"),
    ],
)
def test_the_server_refuses_what_the_schema_forbids(cast, query, field):
    client = APIClient()
    client.force_authenticate(cast.auditor)

    response = client.get("/api/jobs/", query)

    assert response.status_code == 400
    assert response.json()["code"] == "invalid" and response.json()["extra"]["field"] == field


def test_the_jobs_list_answers_a_page(cast):
    client = APIClient()
    client.force_authenticate(cast.auditor)

    body = client.get("/api/jobs/", {"page_size": "5"}).json()

    assert set(body) == {"count", "next", "previous", "results"}


def test_the_api_docs_load_swagger_ui_from_this_server(db):
    page = APIClient().get("/api/docs/").content.decode()

    assert "drf_spectacular_sidecar/swagger-ui-dist/swagger-ui-bundle.js" in page
    assert "cdn.jsdelivr.net" not in page and "unpkg.com" not in page


def test_the_browsable_api_titles_pages_in_words_not_class_names(cast):
    client = APIClient()
    client.force_authenticate(cast.auditor)

    page = client.get("/api/requests/", HTTP_ACCEPT="text/html").content.decode()
    missing = client.get("/api/nowhere/", HTTP_ACCEPT="text/html").content.decode()

    assert "Request collection" in page and "Request Collection Api" not in page
    assert "Not found" in missing and "Api Not Found Api" not in missing
