"""Purposes and the audit log through the API."""

from __future__ import annotations

from unittest.mock import ANY

import pytest
from rest_framework.test import APIClient

from governance.models import AuditEvent, Purpose
from tests.database import owner_without_append_only_triggers
from tests.governance.factories import PurposeFactory, dataset_register_adult, request_file


def client_as(user) -> APIClient:
    client = APIClient()
    client.force_authenticate(user)
    return client


# --- purposes ------------------------------------------------------------------------------


def test_a_steward_creates_a_purpose_with_its_policy(cast):
    response = client_as(cast.steward).post(
        "/api/purposes/",
        {
            "name": "fraud-research",
            "description": "Fraud models",
            "max_epsilon": "0.75",
            "approvals_required": 2,
            "allowed_recipients": ["external", "internal"],
            "audit_thresholds": {"membership_domias_auc": 0.55},
            "holdout_fraction": "0.25",
            "release_days": 30,
        },
        format="json",
    )

    assert response.status_code == 201
    assert response.json() == {
        "name": "fraud-research",
        "description": "Fraud models",
        "max_epsilon": "0.75",
        "approvals_required": 2,
        "allowed_recipients": ["external", "internal"],
        "allow_non_private": False,
        "holdout_fraction": "0.25",
        "audit_thresholds": {"membership_domias_auc": 0.55},
        "release_days": 30,
        "created_at": ANY,
        "updated_at": ANY,
    }
    assert AuditEvent.objects.filter(action="purpose.create", object_id=str(Purpose.objects.get().pk)).exists()


def test_a_purpose_without_thresholds_gets_the_defaults(cast):
    response = client_as(cast.steward).post("/api/purposes/", {"name": "p", "max_epsilon": 1}, format="json")

    assert response.status_code == 201
    assert response.json()["audit_thresholds"]["membership_domias_auc"] == 0.55
    assert response.json()["allowed_recipients"] == ["internal"]


BAD_PURPOSES = [
    (
        "threshold out of range",
        {"audit_thresholds": {"tvd_1way": 1.5}},
        "audit_thresholds: tvd_1way: 1.5 is greater than the maximum of 1",
        "audit_thresholds",
    ),
    (
        "unknown threshold",
        {"audit_thresholds": {"fidelity_tvd_max": 0.1}},
        "'fidelity_tvd_max' was unexpected",
        "audit_thresholds",
    ),
    (
        "thresholds not an object",
        {"audit_thresholds": [0.1]},
        "audit_thresholds: Expected a dictionary",
        "audit_thresholds",
    ),
    ("three approvals", {"approvals_required": 3}, "approvals_required must be 1 or 2; got 3.", "approvals_required"),
    (
        "unknown recipient",
        {"allowed_recipients": ["public"]},
        "allowed_recipients must be a non-empty subset",
        "allowed_recipients",
    ),
    ("max epsilon zero", {"max_epsilon": "0"}, "max_epsilon must be greater than 0", "max_epsilon"),
    (
        "holdout too large",
        {"holdout_fraction": "0.9"},
        "holdout_fraction must be between 0.05 and 0.5",
        "holdout_fraction",
    ),
    ("name not a slug", {"name": "Fraud Research"}, "name: Enter a valid", "name"),
]


@pytest.mark.parametrize(
    ("changes", "message", "field"), [pytest.param(*case[1:], id=case[0]) for case in BAD_PURPOSES]
)
def test_a_bad_purpose_is_refused_naming_the_field_and_nothing_is_written(cast, changes, message, field):
    before = (Purpose.objects.count(), AuditEvent.objects.count())

    response = client_as(cast.steward).post(
        "/api/purposes/", {"name": "p", "max_epsilon": "1", **changes}, format="json"
    )

    assert response.status_code == 400
    assert response.json()["code"] == "invalid"
    assert message in response.json()["message"]
    assert response.json()["extra"]["field"] == field
    assert (Purpose.objects.count(), AuditEvent.objects.count()) == before


def test_a_second_purpose_with_the_same_name_is_a_conflict(cast):
    PurposeFactory(name="research")
    before = AuditEvent.objects.count()

    response = client_as(cast.steward).post("/api/purposes/", {"name": "research", "max_epsilon": "1"}, format="json")

    assert response.status_code == 409
    assert response.json() == {"code": "conflict", "message": "A purpose named 'research' already exists.", "extra": {}}
    assert AuditEvent.objects.count() == before


def test_lists_and_reads_purposes(cast):
    PurposeFactory(name="b-purpose")
    PurposeFactory(name="a-purpose", max_epsilon="0.5")
    client = client_as(cast.requester)

    listing = client.get("/api/purposes/")
    one = client.get("/api/purposes/a-purpose/")

    assert [item["name"] for item in listing.json()["results"]] == ["a-purpose", "b-purpose"]
    assert one.json() == listing.json()["results"][0]
    assert one.json()["max_epsilon"] == "0.5"


# --- audit log -----------------------------------------------------------------------------


@pytest.fixture
def history(cast):
    dataset_register_adult(steward=cast.steward)
    PurposeFactory()
    return request_file(requester=cast.requester)


def test_lists_the_audit_log_in_order_with_hashes(cast, history):
    response = client_as(cast.auditor).get("/api/audit-events/")

    assert response.status_code == 200
    events = response.json()["results"]
    assert [event["action"] for event in events][-2:] == ["request.create", "request.submit"]
    assert [event["id"] for event in events] == sorted(event["id"] for event in events)
    assert all(later["prev_hash"] == earlier["hash"] for earlier, later in zip(events, events[1:], strict=False))
    submit = next(event for event in events if event["action"] == "request.submit")
    assert submit == {
        "id": ANY,
        "created_at": ANY,
        "actor": "requester",
        "channel": "api",
        "action": "request.submit",
        "object_type": "datarequest",
        "object_id": str(history.pk),
        "before": {"state": "draft"},
        "after": {"state": "submitted"},
        "prev_hash": ANY,
        "hash": ANY,
    }


def test_filters_the_audit_log_by_action_and_object(cast, history):
    client = client_as(cast.steward)

    by_action = client.get("/api/audit-events/", {"action": "request.submit"}).json()
    by_object = client.get("/api/audit-events/", {"object_type": "datarequest", "object_id": history.pk}).json()

    assert [event["action"] for event in by_action["results"]] == ["request.submit"]
    assert [event["action"] for event in by_object["results"]] == ["request.create", "request.submit"]


def test_paginates_the_audit_log(cast, history):
    total = AuditEvent.objects.count()

    page = client_as(cast.steward).get("/api/audit-events/", {"page_size": 2, "page": 2}).json()

    assert page["count"] == total
    assert [event["id"] for event in page["results"]] == [3, 4]
    assert page["previous"].endswith("/api/audit-events/?page_size=2")


def test_verifies_an_intact_chain(cast, history):
    response = client_as(cast.auditor).get("/api/audit-events/verify/")

    assert response.status_code == 200
    assert response.json() == {
        "ok": True,
        "events_checked": AuditEvent.objects.count(),
        "first_broken_id": None,
        "reason": "",
    }


@pytest.mark.django_db(transaction=True)  # the insider's owner connection sees committed rows only
def test_verify_names_the_first_altered_event(cast, history):
    with owner_without_append_only_triggers():
        AuditEvent.objects.filter(pk=2).update(actor_name="mallory")

    response = client_as(cast.steward).get("/api/audit-events/verify/")

    assert response.status_code == 200
    body = response.json()
    assert (body["ok"], body["events_checked"], body["first_broken_id"]) == (False, 1, 2)
    assert "was altered" in body["reason"]
