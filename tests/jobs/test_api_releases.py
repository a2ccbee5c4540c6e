"""The release gate over the API: refusals naming each unmet condition, risk acceptance, release,
logged downloads with expiry, and revocation — status and body for every role."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone
from knox.models import AuthToken
from rest_framework.fields import DateTimeField
from rest_framework.test import APIClient

from audits.models import AuditKind, AuditRun, AuditStatus, Download, Release
from governance.models import RequestState
from synth_engine.services import generation_job_start
from tests.governance.factories import PurposeFactory
from tests.jobs.conftest import approved_request_create, reasons_for

pytestmark = pytest.mark.django_db(transaction=True)

# Strict enough that any synthetic table fails fidelity, so the audit fails deterministically
# and the risk-acceptance path can be exercised.
FAILING_THRESHOLDS = {"tvd_1way": 0.0001}


def client_as(user) -> APIClient:
    client = APIClient()
    if user is not None:
        _, secret = AuthToken.objects.create(user=user)
        client.credentials(HTTP_AUTHORIZATION=f"Token {secret}")
    return client


def iso(value) -> str | None:
    return None if value is None else DateTimeField().to_representation(value)


def assert_error(response, status: int, code: str | None = None) -> dict:
    assert response.status_code == status, response.content
    body = response.json()
    assert set(body) == {"code", "message", "extra"}
    if code is not None:
        assert body["code"] == code
    return body


def _declared_threshold(check) -> float | None:
    calibration = check.details.get("calibration") or {}
    if "purpose_threshold" in calibration:  # fidelity: one limit
        return calibration["purpose_threshold"]
    if calibration:  # bias: a limit per protected column, one purpose threshold
        return next(iter(calibration.values()))["purpose_threshold"]
    return check.threshold


def release_body(release: Release, downloads: list[dict], *, exact: bool = True) -> dict:
    """The API's release as ``exact`` (steward, approver, auditor) or recipient (requester) readers get it."""
    release.refresh_from_db()
    run = release.audit_run
    exceptions = [
        {
            "check": name,
            "category": check.category,
            # a requester reads no value that compares the release with the real rows
            "value": check.value if exact else None,
            # a requester reads the purpose's threshold, not a limit calibrated to the real rows
            "threshold": check.threshold if exact else _declared_threshold(check),
            "direction": check.direction,
            "approver": acceptance.approver.username,
            "accepted_at": iso(acceptance.created_at),
            "reason": acceptance.reasons[name],
        }
        for acceptance in run.risk_acceptances.order_by("created_at", "id")
        for name in acceptance.failed_checks
        for check in run.checks.filter(name=name)
    ]
    return {
        "id": release.pk,
        "request": release.request_id,
        "version": release.version_id,
        "version_number": release.version.number,
        "version_hash": release.version.content_hash,
        "n_rows": release.version.n_rows,
        "audit_run": release.audit_run_id,
        "datasheet_sha256": release.release_datasheet.sha256,
        "released_by": release.released_by.username,
        "created_at": iso(release.created_at),
        "expires_at": iso(release.expires_at),
        "revoked_at": iso(release.revoked_at),
        "revoked_by": release.revoked_by.username if release.revoked_by_id else None,
        "revoke_reason": release.revoke_reason,
        "stale_at": None,
        "active": release.revoked_at is None and release.expires_at > timezone.now(),
        "despite_failed_checks": run.status != AuditStatus.PASSED,
        "exceptions": exceptions,
        "downloads": downloads,
    }


@pytest.fixture
def blocked_request(cast, adult_schema):
    """A request whose generation audit failed (fidelity thresholds no table meets): state blocked."""
    PurposeFactory(name="research", approvals_required=2, audit_thresholds=FAILING_THRESHOLDS)
    request = approved_request_create(cast, adult_schema, rows=1600)
    generation_job_start(actor=cast.requester, request_id=request.pk)
    request.refresh_from_db()
    assert request.state == RequestState.BLOCKED
    assert request.audit_runs.get().status == AuditStatus.FAILED
    return request


def test_release_before_the_audit_is_refused_naming_every_unmet_condition(cast, adult_schema):
    request = approved_request_create(cast, adult_schema)
    url = f"/api/requests/{request.pk}/release/"

    body = assert_error(client_as(cast.approver).post(url), 409, "conflict")

    assert body["extra"] == {
        "unmet_conditions": ["no audit has run on the synthetic data", "the request is 'approved', not 'ready'"]
    }
    assert "no audit has run on the synthetic data" in body["message"]
    assert_error(client_as(cast.steward).post(url), 409, "conflict")
    for user in (cast.requester, cast.auditor):
        assert_error(client_as(user).post(url), 403, "permission_denied")
    assert_error(client_as(cast.other_requester).post(url), 404, "not_found")  # may not see it at all
    assert_error(client_as(None).post(url), 401)
    assert_error(client_as(cast.approver).post("/api/requests/999999/release/"), 404, "not_found")
    assert not Release.objects.exists()


def test_an_inconclusive_audit_cannot_be_accepted_or_released(cast, adult_schema):
    request = approved_request_create(cast, adult_schema)
    source = request.source_version
    # An inconclusive run (a positive control not caught) made directly: no generator needed.
    AuditRun.objects.create(
        version=source,
        train_version=source,
        holdout_version=source,
        request=request,
        kind=AuditKind.GENERATION,
        status=AuditStatus.INCONCLUSIVE,
        seed=1,
        controls=[
            {"family": "membership", "share": 0.05, "n_planted": 20, "caught": False, "caught_by": [], "checks": []}
        ],
    )
    type(request).objects.filter(pk=request.pk).update(state=RequestState.BLOCKED)

    refused = assert_error(
        client_as(cast.second_approver).post(
            f"/api/requests/{request.pk}/accept-risk/",
            {"reasons": {"membership_domias_auc": "looks fine to me for this smoke test"}},
            format="json",
        ),
        409,
        "conflict",
    )
    assert refused["extra"] == {"state": "blocked", "audit_status": "inconclusive"}
    assert "inconclusive" in refused["message"]

    body = assert_error(client_as(cast.approver).post(f"/api/requests/{request.pk}/release/"), 409)
    assert body["extra"]["unmet_conditions"] == [
        "the audit did not pass (inconclusive; failed checks: none) and no approver accepted the risk — an "
        "inconclusive audit cannot be accepted",
        "the request is 'blocked', not 'ready'",
    ]
    assert not request.risk_acceptances.exists()


def test_a_failed_audit_is_released_only_after_an_approver_accepts_the_risk(cast, blocked_request):
    request = blocked_request
    run = request.audit_runs.get()
    release_url, accept_url = f"/api/requests/{request.pk}/release/", f"/api/requests/{request.pk}/accept-risk/"

    refused = assert_error(client_as(cast.approver).post(release_url), 409, "conflict")
    assert refused["extra"]["unmet_conditions"] == [
        f"the audit did not pass (failed; failed checks: {', '.join(run.failed_checks)}) and no approver "
        "accepted the risk",
        "the request is 'blocked', not 'ready'",
    ]

    reason = {"reasons": reasons_for(run, "fidelity is enough for a smoke test")}
    assert_error(client_as(None).post(accept_url, reason, format="json"), 401)
    assert_error(client_as(cast.requester).post(accept_url, reason, format="json"), 403, "permission_denied")
    assert_error(client_as(cast.other_requester).post(accept_url, reason, format="json"), 404, "not_found")
    for user in (cast.steward, cast.auditor):
        assert_error(client_as(user).post(accept_url, reason, format="json"), 403, "permission_denied")
    missing = assert_error(client_as(cast.second_approver).post(accept_url, {}, format="json"), 400, "invalid")
    assert missing["extra"]["field"] == "reasons"
    blank = {"reasons": {name: "  " for name in run.failed_checks}}
    assert_error(client_as(cast.second_approver).post(accept_url, blank, format="json"), 400)
    assert not request.risk_acceptances.exists()

    accepted = client_as(cast.second_approver).post(accept_url, reason, format="json")

    assert accepted.status_code == 201, accepted.content
    acceptance = request.risk_acceptances.get()
    assert accepted.json() == {
        "id": acceptance.pk,
        "request": request.pk,
        "audit_run": run.pk,
        "approver": "second_approver",
        "reason": "; ".join(f"{name}: {why}" for name, why in reason["reasons"].items()),
        "failed_checks": run.failed_checks,
        "reasons": reason["reasons"],
        "request_state": "ready",
        "created_at": iso(acceptance.created_at),
    }

    assert_error(client_as(cast.requester).post(release_url), 403, "permission_denied")
    created = client_as(cast.approver).post(release_url)

    assert created.status_code == 201, created.content
    release = Release.objects.get()
    assert created.json() == release_body(release, [])
    assert created.json()["active"] is True
    assert release.audit_run_id == run.pk and release.version_id == run.version_id
    request.refresh_from_db()
    assert request.state == RequestState.RELEASED
    again = assert_error(client_as(cast.approver).post(release_url), 409)
    assert "the request is 'released', not 'ready'" in again["extra"]["unmet_conditions"]

    _reads_per_role(cast, release)
    _downloads_are_logged_and_refused_after_expiry_and_revocation(cast, release)


def _reads_per_role(cast, release: Release) -> None:
    for user in (cast.steward, cast.requester, cast.approver, cast.second_approver, cast.auditor):
        listing = client_as(user).get("/api/releases/")
        assert listing.status_code == 200
        assert listing.json()["count"] == 1
        listed = dict(release_body(release, [], exact=user != cast.requester))
        del listed["downloads"]
        assert listing.json()["results"] == [listed]
        detail = client_as(user).get(f"/api/releases/{release.pk}/")
        assert detail.status_code == 200
        assert detail.json() == release_body(release, [], exact=user != cast.requester)
    foreign = client_as(cast.other_requester)
    assert foreign.get("/api/releases/").json()["count"] == 0
    assert_error(foreign.get(f"/api/releases/{release.pk}/"), 404, "not_found")
    assert_error(client_as(None).get("/api/releases/"), 401)
    assert_error(client_as(cast.steward).get("/api/releases/999999/"), 404)


def _downloads_are_logged_and_refused_after_expiry_and_revocation(cast, release: Release) -> None:
    url = f"/api/releases/{release.pk}/download/"
    requester = client_as(cast.requester)

    data = requester.get(url, {"kind": "data"})
    assert data.status_code == 200
    assert data["Content-Type"] == "text/csv"
    assert f'filename="release-{release.pk}-synthetic.csv"' in data["Content-Disposition"]
    assert b"".join(data.streaming_content).decode().splitlines()[0].startswith("age,")
    sheet = client_as(cast.auditor).get(url, {"kind": "datasheet"}, HTTP_ACCEPT="application/pdf")
    assert sheet.status_code == 200
    assert sheet["Content-Type"] == "application/pdf"
    assert b"".join(sheet.streaming_content).startswith(b"%PDF")
    assert list(Download.objects.filter(release=release).values_list("user__username", "kind", "channel")) == [
        ("requester", "data", "api"),
        ("auditor", "datasheet", "api"),
    ]

    assert_error(requester.get(url, {"kind": "model"}), 400, "invalid")
    assert_error(client_as(cast.other_requester).get(url, {"kind": "data"}), 404, "not_found")
    assert_error(client_as(None).get(url, {"kind": "data"}), 401)
    assert Download.objects.filter(release=release).count() == 2

    detail = requester.get(f"/api/releases/{release.pk}/").json()
    assert [(row["user"], row["kind"], row["channel"]) for row in detail["downloads"]] == [
        ("requester", "data", "api"),
        ("auditor", "datasheet", "api"),
    ]

    original_expiry = release.expires_at
    Release.objects.filter(pk=release.pk).update(expires_at=timezone.now() - timedelta(minutes=1))
    expired = assert_error(requester.get(url, {"kind": "data"}), 409, "conflict")
    assert "expired" in expired["message"]
    assert requester.get(f"/api/releases/{release.pk}/").json()["active"] is False
    Release.objects.filter(pk=release.pk).update(expires_at=original_expiry)
    assert Download.objects.filter(release=release).count() == 2

    revoke_url = f"/api/releases/{release.pk}/revoke/"
    reason = {"reason": "source withdrawn by its owner"}
    assert_error(requester.post(revoke_url, reason, format="json"), 403, "permission_denied")
    assert_error(client_as(cast.auditor).post(revoke_url, reason, format="json"), 403)
    assert_error(client_as(None).post(revoke_url, reason, format="json"), 401)
    assert_error(client_as(cast.steward).post(revoke_url, {}, format="json"), 400, "invalid")
    assert_error(client_as(cast.steward).post("/api/releases/999999/revoke/", reason, format="json"), 404)

    revoked = client_as(cast.steward).post(revoke_url, reason, format="json")

    assert revoked.status_code == 200, revoked.content
    release.refresh_from_db()
    downloads = [
        {"user": user, "kind": kind, "channel": "api", "created_at": iso(at)}
        for user, kind, at in Download.objects.filter(release=release).values_list(
            "user__username", "kind", "created_at"
        )
    ]
    assert revoked.json() == release_body(release, downloads)
    assert revoked.json()["revoked_by"] == "steward" and revoked.json()["active"] is False
    assert release.request.state == RequestState.REVOKED

    for kind in ("data", "datasheet"):
        refused = assert_error(requester.get(url, {"kind": kind}), 409, "conflict")
        assert "revoked" in refused["message"] and "source withdrawn by its owner" in refused["message"]
    assert Download.objects.filter(release=release).count() == 2
    assert_error(client_as(cast.steward).post(revoke_url, reason, format="json"), 409)
