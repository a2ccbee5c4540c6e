"""The OpenAPI schema: served at /api/schema/, and valid with no warnings."""

from __future__ import annotations

from django.core.management import call_command
from rest_framework.test import APIClient

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
