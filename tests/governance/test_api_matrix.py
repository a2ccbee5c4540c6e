"""The API's authorisation policy as one table: every route × method × role, with the exact status.

Columns: steward, requester (owns the requests below), other requester (the requests are
foreign to them), approver, auditor, an authenticated user with no role, anonymous.

Rules behind the numbers (all enforced by services and selectors, none by the API):
- anonymous → 401; a signed-in user with no Synthgate role → 403 on reads, 404 on requests;
- a request a user may not see → 404 (the other requester never learns it exists);
- an action a role may not take on something it can see → 403 (four-eyes included);
- the right role in the wrong state → 409.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from unittest.mock import ANY

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from knox.models import AuthToken
from rest_framework.test import APIClient

from governance.services import access_request_withdraw
from tests.governance.factories import PurposeFactory, UserFactory, dataset_register_adult, request_file

ROLES = ("steward", "requester", "other_requester", "approver", "auditor", "no_role", "anonymous")

TINY_CSV = b"age,sex,income\n30,F,yes\n40,M,no\n50,F,no\n"


def tiny_upload(name: str = "tiny") -> dict[str, Any]:
    return {
        "file": SimpleUploadedFile("tiny.csv", TINY_CSV, content_type="text/csv"),
        "name": name,
        "epsilon_cap": "1",
        "delta_cap": "0",
    }


def version_upload() -> dict[str, Any]:
    return {"file": SimpleUploadedFile("tiny.csv", TINY_CSV, content_type="text/csv")}


def new_purpose() -> dict[str, Any]:
    return {"name": "new-purpose", "max_epsilon": "1", "approvals_required": 1}


def new_request() -> dict[str, Any]:
    return {"dataset": "adult", "purpose": "research", "epsilon": "1", "delta": "1e-6", "n_rows": 200}


def declaration() -> dict[str, Any]:
    return {"columns": {"race": {"role": "quasi_identifier"}}}


def reason() -> dict[str, Any]:
    return {"reason": "not for this purpose"}


def reasons() -> dict[str, Any]:
    return {"reasons": {"tvd_1way": "the marginal gap is acceptable for this purpose"}}


def external_audit_upload() -> dict[str, Any]:
    return {
        "dataset": "no-such",
        "synthetic": SimpleUploadedFile("s.csv", TINY_CSV, content_type="text/csv"),
        "holdout": SimpleUploadedFile("h.csv", TINY_CSV, content_type="text/csv"),
    }


def datasheet_upload() -> dict[str, Any]:
    return {"file": SimpleUploadedFile("d.pdf", b"%PDF-1.7 not signed", content_type="application/pdf")}


MULTIPART = (tiny_upload, version_upload, external_audit_upload, datasheet_upload)

# method, path, body, expected status for:
#   steward  requester  other_req  approver  auditor  no_role  anonymous
MATRIX: list[tuple[str, str, Any, tuple[int, ...]]] = [
    ("GET", "/api/datasets/", None, (200, 200, 200, 200, 200, 403, 401)),
    ("POST", "/api/datasets/", tiny_upload, (201, 403, 403, 403, 403, 403, 401)),
    ("GET", "/api/datasets/adult/", None, (200, 200, 200, 200, 200, 403, 401)),
    ("GET", "/api/datasets/no-such/", None, (404, 404, 404, 404, 404, 403, 401)),
    ("DELETE", "/api/datasets/adult/", None, (405, 405, 405, 405, 405, 405, 401)),
    ("GET", "/api/datasets/adult/versions/", None, (200, 200, 200, 200, 200, 403, 401)),
    ("POST", "/api/datasets/adult/versions/", version_upload, (201, 403, 403, 403, 403, 403, 401)),
    ("POST", "/api/datasets/no-such/versions/", version_upload, (404, 404, 404, 404, 404, 403, 401)),
    ("GET", "/api/datasets/adult/versions/1/", None, (200, 200, 200, 200, 200, 403, 401)),
    ("GET", "/api/datasets/adult/versions/99/", None, (404, 404, 404, 404, 404, 403, 401)),
    ("GET", "/api/datasets/adult/budget/", None, (200, 200, 200, 200, 200, 403, 401)),
    ("POST", "/api/datasets/adult/declare/", declaration, (200, 403, 403, 403, 403, 403, 401)),
    ("POST", "/api/datasets/no-such/declare/", declaration, (404, 404, 404, 404, 404, 403, 401)),
    ("GET", "/api/purposes/", None, (200, 200, 200, 200, 200, 403, 401)),
    ("POST", "/api/purposes/", new_purpose, (201, 403, 403, 403, 403, 403, 401)),
    ("GET", "/api/purposes/research/", None, (200, 200, 200, 200, 200, 403, 401)),
    ("GET", "/api/purposes/no-such/", None, (404, 404, 404, 404, 404, 403, 401)),
    ("GET", "/api/requests/", None, (200, 200, 200, 200, 200, 403, 401)),
    ("POST", "/api/requests/", new_request, (403, 201, 201, 403, 403, 403, 401)),
    ("POST", "/api/requests/outlook/", new_request, (200, 200, 200, 200, 200, 403, 401)),
    ("GET", "/api/requests/{submitted}/", None, (200, 200, 404, 200, 200, 403, 401)),
    ("GET", "/api/requests/999999/", None, (404, 404, 404, 404, 404, 403, 401)),
    ("PUT", "/api/requests/{submitted}/", new_request, (405, 405, 405, 405, 405, 405, 401)),
    ("POST", "/api/requests/{draft}/submit/", None, (403, 200, 404, 403, 403, 404, 401)),
    ("POST", "/api/requests/{submitted}/submit/", None, (403, 409, 404, 403, 403, 404, 401)),
    ("POST", "/api/requests/{submitted}/approve/", None, (403, 403, 404, 200, 403, 404, 401)),
    ("POST", "/api/requests/{draft}/approve/", None, (403, 403, 404, 409, 403, 404, 401)),
    ("POST", "/api/requests/{submitted}/reject/", reason, (403, 403, 404, 200, 403, 404, 401)),
    ("POST", "/api/requests/{withdrawn}/reject/", reason, (403, 403, 404, 409, 403, 404, 401)),
    ("POST", "/api/requests/{submitted}/withdraw/", None, (403, 200, 404, 403, 403, 404, 401)),
    ("POST", "/api/requests/{withdrawn}/withdraw/", None, (403, 409, 404, 403, 403, 404, 401)),
    ("POST", "/api/requests/999999/approve/", None, (404, 404, 404, 404, 404, 404, 401)),
    ("GET", "/api/audit-events/", None, (200, 403, 403, 403, 200, 403, 401)),
    ("GET", "/api/audit-events/verify/", None, (200, 403, 403, 403, 200, 403, 401)),
    ("POST", "/api/requests/{submitted}/release/", None, (409, 403, 404, 409, 403, 404, 401)),
    ("POST", "/api/requests/999999/release/", None, (404, 404, 404, 404, 404, 404, 401)),
    ("GET", "/api/releases/", None, (200, 200, 200, 200, 200, 403, 401)),
    ("GET", "/api/releases/999999/", None, (404, 404, 404, 404, 404, 403, 401)),
    ("GET", "/api/releases/999999/download/", None, (404, 404, 404, 404, 404, 403, 401)),
    ("POST", "/api/releases/999999/revoke/", reason, (404, 403, 403, 404, 403, 403, 401)),
    ("GET", "/api/audits/", None, (200, 200, 200, 200, 200, 403, 401)),
    ("GET", "/api/audits/999999/", None, (404, 404, 404, 404, 404, 403, 401)),
    ("GET", "/api/audits/999999/datasheet/", None, (404, 404, 404, 404, 404, 403, 401)),
    ("POST", "/api/audits/external/", external_audit_upload, (404, 403, 403, 403, 403, 403, 401)),
    ("POST", "/api/versions/999999/audit/", None, (404, 404, 404, 404, 404, 404, 401)),
    ("POST", "/api/datasheets/verify/", datasheet_upload, (200, 200, 200, 200, 200, 200, 200)),
    ("POST", "/api/requests/{submitted}/accept-risk/", reasons, (403, 403, 404, 409, 403, 404, 401)),
    ("POST", "/api/requests/{withdrawn}/accept-risk/", None, (400, 400, 400, 400, 400, 400, 401)),
    ("GET", "/api/auth/tokens/", None, (200, 200, 200, 200, 200, 200, 401)),
    ("DELETE", "/api/auth/tokens/sg_000000000000/", None, (404, 404, 404, 404, 404, 404, 401)),
    ("POST", "/api/auth/tokens/sg_000000000000/rotate/", None, (404, 404, 404, 404, 404, 404, 401)),
    # assurance figures come from the bundled public sample: any signed-in user may read them
    ("GET", "/api/assurance/", None, (200, 200, 200, 200, 200, 200, 401)),
    ("GET", "/api/assurance/999999/", None, (404, 404, 404, 404, 404, 404, 401)),
    ("POST", "/api/assurance/", None, (405, 405, 405, 405, 405, 405, 401)),
    ("GET", "/api/no-such-endpoint/", None, (404, 404, 404, 404, 404, 404, 404)),
]

CASES = [
    pytest.param(method, path, body, role, expected[column], id=f"{method} {path} as {role}")
    for method, path, body, expected in MATRIX
    for column, role in enumerate(ROLES)
]


@dataclass
class World:
    users: dict[str, Any]
    requests: dict[str, int]


@pytest.fixture
def world(cast) -> World:
    dataset_register_adult(steward=cast.steward)
    PurposeFactory()
    draft = request_file(requester=cast.requester, submit=False)
    submitted = request_file(requester=cast.requester)
    withdrawn = request_file(requester=cast.requester)
    access_request_withdraw(actor=cast.requester, request_id=withdrawn.pk)
    users = {role: getattr(cast, role) for role in ROLES if hasattr(cast, role)}
    users["no_role"] = UserFactory(username="nobody")
    return World(users=users, requests={"draft": draft.pk, "submitted": submitted.pk, "withdrawn": withdrawn.pk})


def client_as(user: Any | None) -> APIClient:
    client = APIClient()
    if user is not None:
        _, secret = AuthToken.objects.create(user=user)
        client.credentials(HTTP_AUTHORIZATION=f"Token {secret}")
    return client


@pytest.mark.parametrize(("method", "path", "body", "role", "expected"), CASES)
def test_authorisation_matrix(world, method, path, body, role, expected):
    client = client_as(world.users.get(role))
    url = path.format(**world.requests)
    data = body() if body else None
    response = (
        client.generic(method, url)
        if data is None
        else getattr(client, method.lower())(url, data, format="multipart" if body in MULTIPART else "json")
    )

    assert response.status_code == expected, response.content
    if expected >= 400:
        assert set(response.json()) == {"code", "message", "extra"}


def test_matrix_covers_every_governance_route():
    """A new route must get a row in the table above."""
    from governance.urls import urlpatterns

    covered = {path.split("/api/", 1)[1] for _, path, _, _ in MATRIX}
    normalised = {
        route.replace("{draft}", "<int:request_id>")
        .replace("{submitted}", "<int:request_id>")
        .replace("{withdrawn}", "<int:request_id>")
        .replace("999999", "<int:request_id>")
        .replace("adult", "<slug:name>")
        .replace("no-such", "<slug:name>")
        .replace("versions/1/", "versions/<int:number>/")
        .replace("versions/99/", "versions/<int:number>/")
        .replace("research", "<slug:name>")
        .replace("releases/<int:request_id>", "releases/<int:release_id>")
        .replace("sg_000000000000", "<str:token_key>")
        for route in covered
    }
    missing = [
        str(pattern.pattern)
        for pattern in urlpatterns
        if str(pattern.pattern) not in normalised and str(pattern.pattern) != "auth/token/"
    ]
    assert missing == []


@pytest.mark.parametrize("role", [role for role in ROLES if role != "anonymous"])
def test_every_role_exchanges_its_password_for_a_token(world, role):
    response = APIClient().post(
        "/api/auth/token/", {"username": world.users[role].username, "password": "pw"}, format="json"
    )

    assert response.status_code == 200
    body = response.json()
    (stored,) = AuthToken.objects.filter(user=world.users[role])
    assert body == {"token": ANY, "token_key": stored.token_key, "expires_at": ANY}
    assert body["token"].startswith(stored.token_key) and stored.digest != body["token"]
    assert stored.expiry is not None


def test_anonymous_with_wrong_password_gets_no_token(world):
    response = APIClient().post("/api/auth/token/", {"username": "steward", "password": "wrong"}, format="json")

    assert response.status_code == 400
    assert response.json() == {
        "code": "invalid_credentials",
        "message": "Unable to log in with the username and password given.",
        "extra": {},
    }
    assert not AuthToken.objects.filter(user=world.users["steward"]).exists()
