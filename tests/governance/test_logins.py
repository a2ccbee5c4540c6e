"""Logins and tokens as a trusted system has them (issue 12 §3): throttled failed logins with a
429 and an audit event, expiring hashed tokens that can be listed, rotated and revoked, Django's
password validators, normalised usernames without look-alikes, and security headers."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from axes.models import AccessAttempt
from django.contrib.auth import get_user_model
from django.test import override_settings
from django.utils import timezone
from knox.models import AuthToken
from rest_framework.test import APIClient

from core.errors import ConflictError, ValidationError
from governance.models import AuditEvent, Role
from governance.services import api_token_issue, user_create
from tests.governance.factories import UserFactory
from tests.governance.test_cli import synthgate

TOKEN_URL = "/api/auth/token/"


def token_attempt(username: str, password: str, address: str = "10.0.0.1"):
    return APIClient(REMOTE_ADDR=address).post(TOKEN_URL, {"username": username, "password": password}, format="json")


def with_token(secret: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {secret}")
    return client


# --- throttling ------------------------------------------------------------------------------


def test_the_fifth_wrong_password_locks_the_account_with_a_429_and_an_audit_event(cast):
    answers = [token_attempt("steward", f"wrong{i}").status_code for i in range(5)]
    locked = token_attempt("steward", "pw")  # even the right password, during the lockout

    assert answers == [400, 400, 400, 400, 429]
    assert locked.status_code == 429
    assert locked["Retry-After"] == "900"
    assert locked.json() == {
        "code": "too_many_attempts",
        "message": "Too many failed logins for this account or from this address; try again in 15 minutes.",
        "extra": {"retry_after_seconds": 900},
    }
    assert not AuthToken.objects.exists()
    # One event per lockout, however often it is retried while it lasts.
    event = AuditEvent.objects.get(action="auth.lockout")
    assert event.object_id == str(cast.steward.pk)
    assert event.after == {
        "username": "steward",
        "ip_address": "10.0.0.1",
        "failure_limit": 5,
        "lockout_seconds": 900,
    }


def test_the_lockout_ends_after_the_cool_off(cast):
    for i in range(5):
        token_attempt("steward", f"wrong{i}")
    assert token_attempt("steward", "pw").status_code == 429

    AccessAttempt.objects.update(attempt_time=timezone.now() - timedelta(minutes=16))

    assert token_attempt("steward", "pw").status_code == 200


def test_failures_are_counted_per_client_across_accounts(cast):
    for name in ("steward", "requester", "approver", "auditor", "nobody"):
        token_attempt(name, "wrong", address="10.0.0.9")

    from_same_client = token_attempt("second_approver", "pw", address="10.0.0.9")
    from_elsewhere = token_attempt("second_approver", "pw", address="10.0.0.10")

    assert from_same_client.status_code == 429
    assert from_elsewhere.status_code == 200


def test_failures_are_counted_per_account_across_clients_and_spellings(cast):
    for i, spelling in enumerate(("steward", "Steward", "STEWARD ", "ｓｔｅｗａｒｄ", "steward")):
        token_attempt(spelling, "wrong", address=f"10.0.1.{i}")

    assert token_attempt("steward", "pw", address="10.0.2.1").status_code == 429


def test_the_dashboard_login_is_throttled_with_a_429_page(cast):
    from django.test import Client

    client = Client(REMOTE_ADDR="10.0.3.1")
    answers = [
        client.post("/accounts/login/", {"username": "requester", "password": f"bad{i}"}).status_code for i in range(5)
    ]
    locked = client.post("/accounts/login/", {"username": "requester", "password": "pw"})

    assert answers == [200, 200, 200, 200, 429]
    assert locked.status_code == 429
    assert "try again in 15 minutes" in locked.content.decode()
    assert AuditEvent.objects.filter(action="auth.lockout", after__username="requester").exists()


def test_a_successful_login_resets_the_count(cast):
    for i in range(4):
        token_attempt("steward", f"wrong{i}")
    assert token_attempt("steward", "pw").status_code == 200
    for i in range(4):
        assert token_attempt("steward", f"again{i}").status_code == 400


def test_login_accepts_the_username_as_typed_in_another_case_or_width(cast):
    assert token_attempt(" Steward ", "pw").status_code == 200
    assert token_attempt("ＳＴＥＷＡＲＤ", "pw").status_code == 200


# --- tokens ----------------------------------------------------------------------------------


def test_a_token_is_stored_hashed_and_expires(cast):
    token, secret = api_token_issue(user=cast.auditor, actor=None)

    assert secret.startswith(token.token_key) and len(secret) == 67
    assert token.digest != secret and secret not in token.digest
    assert timedelta(days=29, hours=23) < token.expiry - timezone.now() <= timedelta(days=30)
    assert with_token(secret).get("/api/datasets/").status_code == 200

    AuthToken.objects.filter(pk=token.pk).update(expiry=timezone.now() - timedelta(seconds=1))

    expired = with_token(secret).get("/api/datasets/")
    assert expired.status_code == 401
    assert expired.json()["message"] == "Invalid token."


def test_tokens_are_listed_rotated_and_revoked_through_the_api(cast):
    first = token_attempt("requester", "pw").json()
    second = token_attempt("requester", "pw").json()
    client = with_token(first["token"])

    listed = client.get("/api/auth/tokens/").json()
    rotated = client.post(f"/api/auth/tokens/{second['token_key']}/rotate/")
    revoked = client.delete(f"/api/auth/tokens/{rotated.json()['token_key']}/")
    others = client.delete(f"/api/auth/tokens/{AuthToken.objects.create(user=cast.approver)[0].token_key}/")

    assert {row["token_key"] for row in listed} == {first["token_key"], second["token_key"]}
    assert set(listed[0]) == {"token_key", "created_at", "expires_at"}
    assert rotated.status_code == 200 and rotated.json()["token"] != second["token"]
    assert with_token(second["token"]).get("/api/datasets/").status_code == 401
    assert revoked.status_code == 204
    assert with_token(rotated.json()["token"]).get("/api/datasets/").status_code == 401
    assert others.status_code == 404  # another user's token is not yours to revoke
    actions = list(AuditEvent.objects.filter(action__startswith="token.").values_list("action", flat=True))
    assert actions == ["token.issue", "token.issue", "token.revoke", "token.issue", "token.revoke"]


def test_tokens_are_listed_rotated_and_revoked_from_the_cli(cast):
    created = synthgate("token", "create", "--as", "auditor", "--json").json()
    listed = synthgate("token", "list", "--as", "auditor", "--json").json()
    rotated = synthgate("token", "rotate", created["token_key"], "--as", "auditor", "--json").json()
    by_steward = synthgate("token", "revoke", "--all", "--user", "auditor", "--as", "steward", "--json").json()
    refused = synthgate("token", "list", "--user", "steward", "--as", "auditor")

    assert [row["token_key"] for row in listed] == [created["token_key"]]
    assert with_token(created["token"]).get("/api/datasets/").status_code == 401
    assert by_steward == {"user": "auditor", "revoked": 1}
    assert with_token(rotated["token"]).get("/api/datasets/").status_code == 401
    assert refused.code == 2 and "Only the token's holder or a data steward" in refused.stderr


@override_settings(SYNTHGATE_MAX_TOKENS_PER_USER=2)
def test_the_number_of_live_tokens_per_user_is_bounded(cast):
    api_token_issue(user=cast.auditor, actor=None)
    api_token_issue(user=cast.auditor, actor=None)

    with pytest.raises(ConflictError, match="already holds 2 unexpired tokens"):
        api_token_issue(user=cast.auditor, actor=None)


def test_user_create_prints_a_token_that_works(db):
    result = synthgate("user", "create", "erin", "--role", "auditor", "--json")

    assert result.code == 0
    assert with_token(result.json()["token"]).get("/api/auth/tokens/").status_code == 200


# --- passwords and usernames -----------------------------------------------------------------


def test_the_cli_refuses_a_weak_password_and_creates_nobody(db):
    result = synthgate("user", "create", "alice", "--role", "requester", "--password", "a", "--json")

    assert result.code == 2
    error = result.error()
    assert error["code"] == "weak_password"
    assert "This password is too short. It must contain at least 10 characters." in error["extra"]["problems"]
    assert not get_user_model().objects.filter(username="alice").exists()


@pytest.mark.parametrize("password", ["password123", "12345678901234", "alice-smith-x"])
def test_common_numeric_and_name_like_passwords_are_refused(db, password):
    with pytest.raises(ValidationError, match="The password is too weak"):
        user_create(username="alice-smith", roles=[Role.REQUESTER], actor=None, password=password)


def test_usernames_are_stored_normalised_and_unique_regardless_of_case(db):
    user, _ = user_create(username="  alice ", roles=[Role.REQUESTER], actor=None)

    assert user.username == "alice"
    for same in ("ALICE", "alice ", "ａｌｉｃｅ"):
        with pytest.raises(ConflictError, match="A user named 'alice' already exists."):
            user_create(username=same, roles=[Role.REQUESTER], actor=None)


@pytest.mark.parametrize("impostor", ["\u0430lice", "\u0430\u0440\u0440\u04cf\u0435", "bob\u0455"])
def test_names_with_letters_that_imitate_latin_are_refused(db, impostor):
    with pytest.raises(ValidationError, match="imitate Latin letters") as error:
        user_create(username=impostor, roles=[Role.REQUESTER], actor=None)

    assert error.value.code == "confusable_username"
    assert not get_user_model().objects.exists()


def test_a_latin_look_alike_of_an_existing_user_is_refused(db):
    UserFactory(username="alice")

    with pytest.raises(ConflictError, match="looks like the existing user 'alice'"):
        user_create(username="\u0251lice", roles=[Role.REQUESTER], actor=None)  # Latin small alpha


def test_the_database_refuses_a_case_variant_even_past_the_service(db):
    from django.db import IntegrityError, transaction

    UserFactory(username="carol")
    with pytest.raises(IntegrityError), transaction.atomic():
        get_user_model().objects.create(username="CAROL")


# --- headers and the schema ------------------------------------------------------------------


def test_pages_carry_a_strict_csp_and_a_permissions_policy_and_no_inline_script(cast):
    from django.test import Client

    client = Client()
    client.force_login(cast.steward)
    for url in ("/accounts/login/", "/", "/datasets/", "/requests/", "/purposes/"):
        response = client.get(url, follow=True)
        html = response.content.decode()
        policy = response["Content-Security-Policy"]

        assert "script-src 'self'" in policy and "unsafe-inline" not in policy, url
        assert "frame-ancestors 'none'" in policy and "object-src 'none'" in policy
        assert "camera=()" in response["Permissions-Policy"] and "geolocation=()" in response["Permissions-Policy"]
        assert not re.search(r"<script(?![^>]*\bsrc=)[^>]*>", html), f"inline script on {url}"
        assert not re.search(r"\son[a-z]+=", html), f"inline event handler on {url}"
        assert not re.search(r"\sstyle=", html), f"inline style on {url}"


def test_the_api_schema_needs_a_login_when_not_public(cast):
    with override_settings(SYNTHGATE_API_SCHEMA_PUBLIC=False):
        anonymous = APIClient().get("/api/schema/")
        _, secret = AuthToken.objects.create(user=cast.requester)
        signed_in = with_token(secret).get("/api/schema/")

    assert anonymous.status_code == 401
    assert signed_in.status_code == 200


def test_the_api_docs_load_only_same_origin_scripts_under_the_csp(db):
    client = APIClient()
    page = client.get("/api/docs/")
    script = client.get("/api/docs/", {"script": ""})

    html = page.content.decode()
    sources = re.findall(r'<script[^>]*\bsrc="([^"]+)"', html)
    assert page.status_code == 200
    assert "unsafe-inline" not in page["Content-Security-Policy"]
    assert sources and all(source.startswith("/") for source in sources), sources
    assert not re.search(r"<script(?![^>]*\bsrc=)[^>]*>", html)
    assert script.status_code == 200 and "SwaggerUIBundle" in script.content.decode()
