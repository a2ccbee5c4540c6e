"""Requests through the API: file, submit, approve (four-eyes), reject, withdraw; bad input writes nothing."""

from __future__ import annotations

from unittest.mock import ANY

import pytest
from rest_framework.test import APIClient

from core.times import time_iso
from governance.models import Approval, AuditEvent, BudgetEntry, DataRequest, Dataset, DatasetVersion, Role
from governance.services import access_request_approve
from tests.governance.factories import (
    PurposeFactory,
    UserFactory,
    dataset_register_adult,
    request_entries,
    request_file,
)

REQUEST = {"dataset": "adult", "purpose": "research", "epsilon": "0.5", "delta": "1e-6", "n_rows": 1000}


def client_as(user) -> APIClient:
    client = APIClient()
    client.force_authenticate(user)
    return client


def stored_state() -> dict:
    return {
        model.__name__: model.objects.count()
        for model in (Dataset, DatasetVersion, DataRequest, Approval, BudgetEntry, AuditEvent)
    }


@pytest.fixture
def adult(cast, adult_schema):
    """The adult table (income is the label) and a purpose needing two approvals, ε ≤ 5."""
    dataset_register_adult(steward=cast.steward, schema=adult_schema)
    return PurposeFactory()


def expected_request(**overrides) -> dict:
    return {
        "id": ANY,
        "state": "submitted",
        "allowed_transitions": ["approved", "rejected", "withdrawn"],
        "dataset": "adult",
        "source_version": 1,
        "purpose": "research",
        "requester": "requester",
        "epsilon": "0.5",
        "delta": "0.000001",
        "n_rows": 1000,
        "generator": "mst",
        "generator_params": {},
        "rebalance": None,
        "seed": None,
        "output_format": "csv",
        "recipient_kind": "internal",
        "recipient": "",
        "justification": "",
        "decision_reason": "",
        "submitted_at": ANY,
        "decided_at": None,
        "created_at": ANY,
        "updated_at": ANY,
        "approvals_required": 2,
        "approvals": [],
        **overrides,
    }


# --- filing --------------------------------------------------------------------------------


def test_files_and_submits_a_request(cast, adult):
    response = client_as(cast.requester).post(
        "/api/requests/",
        {
            **REQUEST,
            "generator": "mst",
            "generator_params": {"max_bins": 16},
            "rebalance": {"column": "income", "shares": {">50K": 0.5}},
            "recipient_kind": "external",
            "recipient": "University of X",
            "justification": "fairness study",
            "seed": 7,
        },
        format="json",
    )

    assert response.status_code == 201
    assert response.json() == expected_request(
        generator_params={"max_bins": 16},
        rebalance={"column": "income", "shares": {">50K": 0.5}},
        recipient_kind="external",
        recipient="University of X",
        justification="fairness study",
        seed=7,
    )
    request = DataRequest.objects.get()
    assert response.json()["id"] == request.pk
    assert response.json()["submitted_at"] == time_iso(request.submitted_at)


def test_accepts_epsilon_and_delta_as_json_numbers_and_keeps_them_exact(cast, adult):
    response = client_as(cast.requester).post(
        "/api/requests/", {**REQUEST, "epsilon": 0.3, "delta": 1e-7}, format="json"
    )

    assert response.status_code == 201, response.json()
    assert (response.json()["epsilon"], response.json()["delta"]) == ("0.3", "0.0000001")
    assert str(DataRequest.objects.get().epsilon.normalize()) == "0.3"


def test_a_draft_stays_a_draft_until_submitted(cast, adult):
    client = client_as(cast.requester)
    draft = client.post("/api/requests/", {**REQUEST, "draft": True}, format="json")

    submitted = client.post(f"/api/requests/{draft.json()['id']}/submit/")

    assert draft.status_code == 201
    assert draft.json() == expected_request(
        state="draft", allowed_transitions=["submitted", "withdrawn"], submitted_at=None
    )
    assert submitted.status_code == 200
    assert submitted.json()["state"] == "submitted"


# --- deciding ------------------------------------------------------------------------------


def test_two_approvals_approve_the_request_and_reserve_its_budget(cast, adult):
    request = request_file(requester=cast.requester, epsilon="0.5", n_rows=1000)
    first = client_as(cast.approver).post(f"/api/requests/{request.pk}/approve/", {"reason": "fine"}, format="json")
    assert first.status_code == 200
    assert first.json()["state"] == "submitted"
    assert [approval["approver"] for approval in first.json()["approvals"]] == ["approver"]
    assert request_entries().count() == 0

    second = client_as(cast.second_approver).post(f"/api/requests/{request.pk}/approve/")

    assert second.status_code == 200
    assert second.json() == expected_request(
        id=request.pk,
        state="approved",
        allowed_transitions=["generating", "withdrawn"],
        decided_at=ANY,
        approvals=[
            {"approver": "approver", "decision": "approve", "reason": "fine", "created_at": ANY},
            {"approver": "second_approver", "decision": "approve", "reason": "", "created_at": ANY},
        ],
    )
    entry = request_entries().get()
    assert (entry.kind, entry.epsilon, entry.request_id) == ("reserve", request.epsilon, request.pk)


def test_rejects_with_a_reason(cast, adult):
    request = request_file(requester=cast.requester)

    response = client_as(cast.approver).post(
        f"/api/requests/{request.pk}/reject/", {"reason": "too broad"}, format="json"
    )

    assert response.status_code == 200
    assert (response.json()["state"], response.json()["decision_reason"]) == ("rejected", "too broad")
    assert response.json()["allowed_transitions"] == []


def test_withdrawing_an_approved_request_releases_its_reservation(cast, adult):
    PurposeFactory(name="quick", approvals_required=1)
    request = request_file(requester=cast.requester, purpose_name="quick")
    access_request_approve(actor=cast.approver, request_id=request.pk)

    response = client_as(cast.requester).post(
        f"/api/requests/{request.pk}/withdraw/", {"reason": "not needed"}, format="json"
    )

    assert response.status_code == 200
    assert response.json()["state"] == "withdrawn"
    budget = client_as(cast.requester).get("/api/datasets/adult/budget/").json()
    # the source version's row estimate (ε 0.02) was spent at registration
    assert budget["epsilon"] == {"cap": "10", "spent": "0.02", "reserved": "0", "remaining": "9.98"}
    assert [entry["kind"] for entry in budget["entries"]] == ["estimate", "reserve", "release"]


# --- refusals: a specific 4xx, and nothing written -----------------------------------------

BAD_REQUESTS = [
    # id, changes to REQUEST, status, code, message fragment, extra subset
    ("epsilon zero", {"epsilon": "0"}, 400, "invalid", "epsilon must be greater than 0; got 0", {"field": "epsilon"}),
    ("epsilon negative", {"epsilon": -0.5}, 400, "invalid", "epsilon must be greater than 0", {"field": "epsilon"}),
    (
        "epsilon not a number",
        {"epsilon": "a lot"},
        400,
        "invalid",
        "epsilon: A valid number is required.",
        {"field": "epsilon"},
    ),
    (
        "epsilon too precise to store",
        {"epsilon": "0.0000000000001"},
        400,
        "invalid",
        "epsilon: Ensure that there are no more than 12 decimal places.",
        {"field": "epsilon"},
    ),
    (
        "epsilon above the purpose's max",
        {"epsilon": "6"},
        400,
        "invalid",
        "ε = 6 is more than purpose “research” allows (at most ε = 5",
        {"field": "epsilon", "max_epsilon": "5"},
    ),
    ("delta of one", {"delta": "1"}, 400, "invalid", "delta must be less than 1", {"field": "delta"}),
    ("zero rows", {"n_rows": 0}, 400, "invalid", "rows must be between 1 and", {"field": "n_rows"}),
    (
        "rows not a number",
        {"n_rows": "many"},
        400,
        "invalid",
        "n_rows: A valid integer is required.",
        {"field": "n_rows"},
    ),
    (
        "missing epsilon",
        {"epsilon": None},
        400,
        "invalid",
        "epsilon: This field may not be null.",
        {"field": "epsilon"},
    ),
    ("unknown dataset", {"dataset": "census"}, 404, "not_found", "No dataset named 'census'.", {"field": "dataset"}),
    (
        "unknown purpose",
        {"purpose": "marketing"},
        404,
        "not_found",
        "No purpose named 'marketing'.",
        {"field": "purpose"},
    ),
    ("unknown generator", {"generator": "gan"}, 400, "invalid", "unknown generator 'gan'", {"field": "generator"}),
    (
        "unknown generator parameter",
        {"generator_params": {"bins": 3}},
        400,
        "invalid",
        "unknown parameter(s)",
        {"field": "generator"},
    ),
    (
        "rebalance on a non-label column",
        {"rebalance": {"column": "sex", "shares": {"Female": 0.5}}},
        400,
        "invalid",
        "Rebalancing needs the label column (income); got 'sex'.",
        {"field": "rebalance"},
    ),
    (
        "rebalance shares not numbers",
        {"rebalance": {"column": "income", "shares": {">50K": "half"}}},
        400,
        "invalid",
        "rebalance: ",
        {"field": "rebalance"},
    ),
    (
        "recipient kind unknown",
        {"recipient_kind": "public"},
        400,
        "invalid",
        "recipient_kind: ",
        {"field": "recipient_kind"},
    ),
    (
        "non-private generator for a private purpose",
        {"generator": "copula"},
        400,
        "invalid",
        "is not differentially private",
        {"field": "generator"},
    ),
]


@pytest.mark.parametrize(
    ("changes", "status", "code", "message", "extra"), [pytest.param(*case[1:], id=case[0]) for case in BAD_REQUESTS]
)
def test_a_bad_request_is_refused_with_a_specific_error_and_nothing_is_written(
    cast, adult, changes, status, code, message, extra
):
    before = stored_state()

    response = client_as(cast.requester).post("/api/requests/", {**REQUEST, **changes}, format="json")

    assert response.status_code == status, response.json()
    body = response.json()
    assert (body["code"], set(body)) == (code, {"code", "message", "extra"})
    assert message in body["message"]
    assert extra.items() <= body["extra"].items()
    assert stored_state() == before


def test_the_requester_can_never_approve_their_own_request_even_as_an_approver(cast, adult):
    both = UserFactory(username="both", roles=[Role.REQUESTER, Role.APPROVER])
    request = request_file(requester=both)
    before = stored_state()

    response = client_as(both).post(f"/api/requests/{request.pk}/approve/")

    assert response.status_code == 403
    assert response.json() == {
        "code": "four_eyes",
        "message": f"You filed request #{request.pk}; a requester can never approve their own request.",
        "extra": {},
    }
    assert stored_state() == before


def test_a_user_without_the_approver_role_cannot_approve(cast, adult):
    request = request_file(requester=cast.requester)
    before = stored_state()

    response = client_as(cast.steward).post(f"/api/requests/{request.pk}/approve/")

    assert response.status_code == 403
    assert response.json() == {
        "code": "permission_denied",
        "message": "Only an approver can approve requests.",
        "extra": {},
    }
    assert stored_state() == before


def test_one_approver_cannot_approve_twice(cast, adult):
    request = request_file(requester=cast.requester)
    client = client_as(cast.approver)
    client.post(f"/api/requests/{request.pk}/approve/")
    before = stored_state()

    response = client.post(f"/api/requests/{request.pk}/approve/")

    assert response.status_code == 409
    assert response.json()["code"] == "conflict"
    assert "a second approval must come from a different approver" in response.json()["message"]
    assert stored_state() == before


WRONG_STATE = [
    # id, state to put the request in, actor, action, allowed transitions from that state
    ("approve a draft", "draft", "approver", "approve", ["submitted", "withdrawn"]),
    ("reject a draft", "draft", "approver", "reject", ["submitted", "withdrawn"]),
    ("submit twice", "submitted", "requester", "submit", ["approved", "rejected", "withdrawn"]),
    ("approve a rejected request", "rejected", "approver", "approve", []),
    ("withdraw a withdrawn request", "withdrawn", "requester", "withdraw", []),
    ("submit a withdrawn request", "withdrawn", "requester", "submit", []),
]


@pytest.mark.parametrize(
    ("state", "actor", "action", "allowed"), [pytest.param(*case[1:], id=case[0]) for case in WRONG_STATE]
)
def test_an_action_in_the_wrong_state_is_a_409_listing_allowed_transitions(cast, adult, state, actor, action, allowed):
    request = request_file(requester=cast.requester, submit=state != "draft")
    if state == "rejected":
        client_as(cast.approver).post(f"/api/requests/{request.pk}/reject/", {"reason": "no"}, format="json")
    if state == "withdrawn":
        client_as(cast.requester).post(f"/api/requests/{request.pk}/withdraw/")
    before = stored_state()

    response = client_as(getattr(cast, actor)).post(
        f"/api/requests/{request.pk}/{action}/", {"reason": "r"}, format="json"
    )

    assert response.status_code == 409
    assert response.json() == {
        "code": "invalid_transition",
        "message": f"Cannot {action} request #{request.pk}: it is {state!r}; allowed from {state!r}: "
        f"{', '.join(allowed) or 'nothing (final)'}.",
        "extra": {"state": state, "allowed_transitions": allowed},
    }
    assert stored_state() == before


def test_rejecting_without_a_reason_is_refused(cast, adult):
    request = request_file(requester=cast.requester)
    before = stored_state()

    response = client_as(cast.approver).post(f"/api/requests/{request.pk}/reject/", {}, format="json")

    assert response.status_code == 400
    assert response.json() == {
        "code": "invalid",
        "message": "reason: This field is required.",
        "extra": {"field": "reason", "fields": {"reason": ["This field is required."]}},
    }
    assert stored_state() == before


def test_an_approval_beyond_the_remaining_budget_names_what_remains_and_writes_nothing(cast):
    dataset_register_adult(steward=cast.steward, epsilon_cap="1.52", delta_cap="1e-4")  # 0.02: the row estimate
    PurposeFactory(approvals_required=1)
    first = request_file(requester=cast.requester, epsilon="1")
    second = request_file(requester=cast.other_requester, epsilon="1")
    client = client_as(cast.approver)
    assert client.post(f"/api/requests/{first.pk}/approve/").status_code == 200
    before = stored_state()

    response = client.post(f"/api/requests/{second.pk}/approve/")

    assert response.status_code == 409
    body = response.json()
    assert body["code"] == "budget_exhausted"
    assert "remaining ε=0.5" in body["message"]
    assert body["extra"]["remaining"]["epsilon"].rstrip("0") == "0.5"
    assert body["extra"]["requested"]["epsilon"].rstrip("0").rstrip(".") == "1"
    assert stored_state() == before
    assert client.get(f"/api/requests/{second.pk}/").json()["state"] == "submitted"


# --- lists ---------------------------------------------------------------------------------


def test_a_requester_lists_only_their_own_requests(cast, adult):
    mine = request_file(requester=cast.requester)
    request_file(requester=cast.other_requester)

    own = client_as(cast.requester).get("/api/requests/")
    everyone = client_as(cast.auditor).get("/api/requests/")

    assert [item["id"] for item in own.json()["results"]] == [mine.pk]
    assert own.json()["count"] == 1
    assert everyone.json()["count"] == 2
    assert "approvals" not in own.json()["results"][0]


def test_filters_requests_by_state_dataset_and_purpose(cast, adult):
    dataset_register_adult(steward=cast.steward, name="adult-two")
    PurposeFactory(name="other")
    draft = request_file(requester=cast.requester, submit=False)
    second_dataset = request_file(requester=cast.requester, dataset_name="adult-two")
    other_purpose = request_file(requester=cast.requester, purpose_name="other")
    client = client_as(cast.approver)

    def ids(**params):
        return sorted(item["id"] for item in client.get("/api/requests/", params).json()["results"])

    assert ids(state="draft") == [draft.pk]
    assert ids(dataset="adult-two") == [second_dataset.pk]
    assert ids(purpose="other") == [other_purpose.pk]
    assert ids(state="submitted", dataset="adult") == [other_purpose.pk]
    assert ids(requester="other_requester") == []


def test_paginates_requests_newest_first(cast, adult):
    made = [request_file(requester=cast.requester).pk for _ in range(3)]

    page = client_as(cast.requester).get("/api/requests/", {"page_size": 2}).json()

    assert page["count"] == 3
    assert [item["id"] for item in page["results"]] == made[::-1][:2]
    assert page["next"].endswith("/api/requests/?page=2&page_size=2")


def test_an_unknown_state_filter_is_a_400(cast, adult):
    response = client_as(cast.requester).get("/api/requests/", {"state": "pending"})

    assert response.status_code == 400
    assert response.json()["extra"]["field"] == "state"


def test_the_max_rows_setting_bounds_requests(cast, adult, settings):
    settings.SYNTHGATE_MAX_ROWS = 100

    response = client_as(cast.requester).post("/api/requests/", REQUEST, format="json")

    assert response.status_code == 400
    assert response.json()["extra"] == {"field": "n_rows", "max_rows": 100}


def test_a_request_with_several_mistakes_is_refused_naming_every_one(cast, adult):
    before = stored_state()
    wrong = {"epsilon": "7", "n_rows": 10**9, "generator": "copula", "justification": "x" * 100_000}

    response = client_as(cast.requester).post("/api/requests/", {**REQUEST, **wrong}, format="json")

    assert response.status_code == 400, response.json()
    body = response.json()
    fields = [item["field"] for item in body["extra"]["errors"]]
    assert fields == ["justification", "epsilon", "n_rows", "generator"]
    assert "is more than purpose “research” allows" in body["message"]
    assert "is not differentially private" in body["message"]
    assert stored_state() == before
