"""Releases that went out despite failed checks are flagged as exceptions, each accepted check listed
with its value, who accepted it and why: in the service, the release API, the CLI, the dashboard's
release list, release page and home page, and the compliance report. Check values are exact for
stewards, approvers and auditors; the requester reads the check, its verdict and the threshold, no value
(it compares the release with the real rows)."""

from __future__ import annotations

import io

import pytest
from django.core.management import call_command
from django.test import Client
from django.utils import timezone
from rest_framework.test import APIClient

from audits.compliance import compliance_report_build
from audits.selectors import release_exceptions, released_despite_failed_checks
from audits.services import release_create, risk_accept
from governance.services import access_request_approve
from tests.audits.failed_audit import audited
from tests.governance.factories import PurposeFactory, dataset_register_adult, request_file

pytestmark = pytest.mark.django_db

EXACT = 0.3141592653
REASON = "The marginals differ, but this research only needs the joint income structure, reviewed by hand"


@pytest.fixture
def releases(cast, adult_schema):
    """Two releases on `adult`: one after a passed audit, one despite a failed `tvd_1way` (value EXACT)."""
    PurposeFactory(name="research")
    dataset_register_adult(steward=cast.steward, schema=adult_schema)
    made = {}
    for name, value in (("passed", None), ("despite", EXACT)):
        request = request_file(requester=cast.requester, epsilon="1", recipient="lab")
        access_request_approve(actor=cast.approver, request_id=request.pk)
        request = access_request_approve(actor=cast.second_approver, request_id=request.pk)
        audited(request, failed_value=value)
        if value is not None:
            risk_accept(actor=cast.second_approver, request_id=request.pk, reasons={"tvd_1way": REASON})
        made[name] = release_create(actor=cast.approver, request_id=request.pk)
    return made


def _exception(value: float | None) -> dict:
    return {
        "check": "tvd_1way",
        "category": "fidelity",
        "value": value,
        "threshold": 0.1,
        "direction": "lower_is_better",
        "approver": "second_approver",
        "reason": REASON,
    }


def _without_time(rows: list[dict]) -> list[dict]:
    return [{key: value for key, value in row.items() if key != "accepted_at"} for row in rows]


def test_the_service_lists_each_accepted_check_exact_for_approvers_without_a_value_for_the_requester(cast, releases):
    despite, passed = releases["despite"], releases["passed"]

    assert released_despite_failed_checks(despite) and not released_despite_failed_checks(passed)
    for reader in (cast.approver, cast.steward, cast.auditor, None):
        assert _without_time(release_exceptions(release=despite, user=reader)) == [_exception(EXACT)]
    requester_view = release_exceptions(release=despite, user=cast.requester)
    assert _without_time(requester_view) == [_exception(None)]
    assert requester_view[0]["accepted_at"] <= timezone.now()
    assert release_exceptions(release=passed, user=cast.approver) == []


def _api(user) -> APIClient:
    client = APIClient()
    client.force_authenticate(user)
    return client


def test_the_release_api_flags_the_exception_in_lists_and_details(cast, releases):
    despite, passed = releases["despite"], releases["passed"]
    for user, value in ((cast.requester, None), (cast.approver, EXACT), (cast.auditor, EXACT)):
        listing = {row["id"]: row for row in _api(user).get("/api/releases/").json()["results"]}
        detail = _api(user).get(f"/api/releases/{despite.pk}/").json()
        for body in (listing[despite.pk], detail):
            assert body["despite_failed_checks"] is True
            assert _without_time(body["exceptions"]) == [_exception(value)]
            assert body["exceptions"][0]["accepted_at"]
        assert (listing[passed.pk]["despite_failed_checks"], listing[passed.pk]["exceptions"]) == (False, [])
    assert _api(cast.other_requester).get(f"/api/releases/{despite.pk}/").status_code == 404


def test_the_openapi_schema_documents_the_exceptions(cast):
    schema = _api(cast.auditor).get("/api/schema/", HTTP_ACCEPT="application/json").json()
    release = schema["components"]["schemas"]["Release"]["properties"]
    assert release["despite_failed_checks"]["type"] == "boolean"
    assert release["exceptions"]["items"]["$ref"] == "#/components/schemas/ReleaseException"
    assert {"check", "value", "threshold", "approver", "accepted_at", "reason"} <= set(
        schema["components"]["schemas"]["ReleaseException"]["properties"]
    )


def _page(user, path: str) -> str:
    client = Client()
    client.force_login(user)
    response = client.get(path)
    assert response.status_code == 200, path
    return response.content.decode()


def test_release_pages_and_home_flag_the_exception_with_its_reason(cast, releases):
    despite, passed = releases["despite"], releases["passed"]
    flag = "released despite failed checks"
    for user, shown, hidden in (
        (cast.requester, "<code>tvd_1way</code> failed against", "0.31"),
        (cast.approver, "0.314", None),
    ):
        listing = _page(user, "/releases/")
        assert listing.count(flag) == 1 and REASON in listing and shown in listing
        page = _page(user, f"/releases/{despite.pk}/")
        assert "Exception: released despite failed checks" in page and REASON in page
        assert "accepted by second_approver" in page and shown in page
        home = _page(user, "/")
        assert "Released despite failed checks" in home and f"Release #{despite.pk}</a>" in home
        assert REASON in home and f"Release #{passed.pk}</a>" not in home
        if hidden:
            for text in (listing, page, home):
                assert hidden not in text  # the requester reads no value of a check against the real rows
        assert flag not in _page(user, f"/releases/{passed.pk}/").lower()
    assert "Released despite failed checks" not in _page(cast.other_requester, "/")


def test_the_compliance_report_and_its_page_list_the_exception(cast, releases):
    today = timezone.now().date()
    report = compliance_report_build(actor=cast.auditor, date_from=today, date_to=today)
    rows = {row["id"]: row for row in report["releases"]}
    assert rows[releases["despite"].pk]["despite_failed_checks"] is True
    assert _without_time(rows[releases["despite"].pk]["exceptions"]) == [_exception(EXACT)]
    assert (rows[releases["passed"].pk]["despite_failed_checks"], rows[releases["passed"].pk]["exceptions"]) == (
        False,
        [],
    )
    page = _page(cast.auditor, f"/compliance/?start={today}&end={today}")
    assert "released despite failed checks" in page and REASON in page


def test_release_show_on_the_cli_states_the_exception(cast, releases):
    out = io.StringIO()
    call_command("release", "show", str(releases["despite"].pk), "--as", "requester", stdout=out)
    text = out.getvalue()
    assert "Exception: released despite failed checks" in text
    assert "tvd_1way failed against the limit 0.1, accepted by second_approver" in text and REASON in text
    assert "0.31" not in text  # the requester reads no value of a check against the real rows
    listing = io.StringIO()
    call_command("release", "list", "--as", "approver", "--json", stdout=listing)
    assert '"despite_failed_checks": true' in listing.getvalue()
