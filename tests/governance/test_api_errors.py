"""Every error, including DRF's and Django's own, answers ``{code, message, extra}``."""

from __future__ import annotations

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import RequestFactory
from knox.models import AuthToken
from rest_framework.test import APIClient

from governance import selectors
from tests.governance.factories import UserFactory


def client_as(user) -> APIClient:
    client = APIClient()
    client.force_authenticate(user)
    return client


def test_anonymous_is_401_with_a_token_challenge(db):
    response = APIClient().get("/api/datasets/")

    assert response.status_code == 401
    assert response["WWW-Authenticate"] == "Token"
    assert response.json() == {
        "code": "not_authenticated",
        "message": "Authentication credentials were not provided.",
        "extra": {},
    }


def test_an_unknown_token_is_401(db):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION="Token not-a-real-token")

    response = client.get("/api/datasets/")

    assert response.status_code == 401
    assert response.json() == {"code": "authentication_failed", "message": "Invalid token.", "extra": {}}


def test_a_real_token_authenticates(cast):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {AuthToken.objects.create(user=cast.auditor)[1]}")

    assert client.get("/api/datasets/").status_code == 200


def test_a_session_authenticates_and_its_writes_need_the_csrf_token(cast):
    client = APIClient(enforce_csrf_checks=True)
    # django-axes counts logins per client, so authenticate() needs the request.
    assert client.login(request=RequestFactory().post("/accounts/login/"), username="steward", password="pw")

    read = client.get("/api/purposes/")
    write = client.post("/api/purposes/", {"name": "p", "max_epsilon": "1"}, format="json")

    assert read.status_code == 200
    assert write.status_code == 403
    assert write.json()["code"] == "permission_denied"
    assert write.json()["message"].startswith("CSRF Failed")


def test_a_user_with_no_role_is_403(db):
    response = client_as(UserFactory(username="nobody")).get("/api/purposes/")

    assert response.status_code == 403
    assert response.json() == {
        "code": "permission_denied",
        "message": "Your account has no Synthgate role; ask a steward to assign one.",
        "extra": {},
    }


def test_a_missing_object_is_404(cast):
    response = client_as(cast.steward).get("/api/datasets/census/")

    assert response.status_code == 404
    assert response.json() == {"code": "not_found", "message": "No dataset named 'census'.", "extra": {}}


def test_an_unknown_api_path_is_404_for_anyone(db):
    response = APIClient().post("/api/nothing-here/")

    assert response.status_code == 404
    assert response.json() == {"code": "not_found", "message": "No API endpoint at /api/nothing-here/.", "extra": {}}


def test_a_missing_trailing_slash_is_404_with_a_hint(db):
    response = APIClient().get("/api/datasets")

    assert response.status_code == 404
    assert response.json()["message"] == (
        "No API endpoint at /api/datasets. Did you mean /api/datasets/ (with the trailing slash)?"
    )


def test_an_unsupported_method_is_405(cast):
    response = client_as(cast.steward).delete("/api/purposes/")

    assert response.status_code == 405
    assert response.json() == {"code": "method_not_allowed", "message": 'Method "DELETE" not allowed.', "extra": {}}


def test_malformed_json_is_400(cast):
    response = client_as(cast.steward).post("/api/purposes/", "{not json", content_type="application/json")

    assert response.status_code == 400
    assert response.json()["code"] == "parse_error"
    assert response.json()["message"].startswith("JSON parse error")
    assert response.json()["extra"] == {}


def test_a_shape_error_names_every_field_and_the_first_one(cast):
    response = client_as(cast.steward).post("/api/purposes/", {"max_epsilon": "x"}, format="json")

    assert response.status_code == 400
    assert response.json() == {
        "code": "invalid",
        "message": "name: This field is required.",
        "extra": {
            "field": "name",
            "fields": {"name": ["This field is required."], "max_epsilon": ["A valid number is required."]},
        },
    }


def test_a_rule_error_from_a_service_names_its_field(cast):
    response = client_as(cast.steward).post("/api/purposes/", {"name": "p", "max_epsilon": "0"}, format="json")

    assert response.status_code == 400
    assert response.json() == {
        "code": "invalid",
        "message": "max_epsilon must be greater than 0; got 0.",
        "extra": {"field": "max_epsilon"},
    }


def test_an_oversized_form_field_is_413(cast, settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 100
    data = {
        "file": SimpleUploadedFile("a.csv", b"a\n1\n"),
        "name": "a",
        "epsilon_cap": "1",
        "delta_cap": "0",
        "description": "x" * 1000,
    }

    response = client_as(cast.steward).post("/api/datasets/", data, format="multipart")

    assert response.status_code == 413
    assert response.json()["code"] == "request_too_large"
    assert set(response.json()) == {"code", "message", "extra"}


def test_too_many_form_fields_is_400(cast, settings):
    settings.DATA_UPLOAD_MAX_NUMBER_FIELDS = 2
    data = {"file": SimpleUploadedFile("a.csv", b"a\n1\n"), "name": "a", "epsilon_cap": "1", "delta_cap": "0"}

    response = client_as(cast.steward).post("/api/datasets/", data, format="multipart")

    assert response.status_code == 400
    assert response.json()["code"] == "bad_request"


def test_an_unexpected_failure_is_a_logged_500_without_details(cast, monkeypatch, caplog):
    def broken(**kwargs):
        raise RuntimeError("database on fire")

    monkeypatch.setattr(selectors, "purpose_list", broken)

    response = client_as(cast.steward).get("/api/purposes/")

    assert response.status_code == 500
    assert response.json() == {"code": "server_error", "message": "Internal server error.", "extra": {}}
    assert "database on fire" not in response.content.decode()
    assert any(record.exc_info and "database on fire" in str(record.exc_info[1]) for record in caplog.records)


@pytest.mark.parametrize("path", ["/api/requests/abc/", "/api/datasets/adult/versions/one/"])
def test_a_malformed_id_in_the_path_is_404(cast, path):
    response = client_as(cast.steward).get(path)

    assert response.status_code == 404
    assert response.json()["code"] == "not_found"
