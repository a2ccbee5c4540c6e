"""Data requests: validated filing, the state machine, four-eyes approval (in the service and
in the database), and who may see which request.
"""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.db import IntegrityError, connection, transaction

from core.errors import (
    ConflictError,
    FourEyesError,
    InvalidTransitionError,
    NotFoundError,
    PermissionDeniedError,
    ValidationError,
)
from governance.models import (
    Approval,
    AuditEvent,
    DataRequest,
    Dataset,
    Decision,
    RequestState,
    Role,
)
from governance.selectors import request_get, request_list
from governance.services import (
    TRANSITIONS,
    access_request_approve,
    access_request_reject,
    access_request_submit,
    access_request_withdraw,
    allowed_transitions,
    audit_log_verify,
    request_transition,
)
from tests.governance.factories import (
    PurposeFactory,
    UserFactory,
    dataset_register_adult,
    request_entries,
    request_file,
)

pytestmark = pytest.mark.django_db
on_postgresql = pytest.mark.skipif("connection.vendor != 'postgresql'", reason="needs PostgreSQL")
S = RequestState


@pytest.fixture
def world(cast, settings, tmp_path, adult_schema):
    """The cast, the adult dataset (ε cap 10, label `income`) and a two-approver purpose with max ε 5."""
    settings.DATA_DIR = tmp_path
    dataset_register_adult(steward=cast.steward, schema=adult_schema)
    PurposeFactory(name="research", approvals_required=2, max_epsilon=Decimal("5"))
    return cast


def counts() -> tuple[int, int, int, int]:
    return (
        DataRequest.objects.count(),
        Approval.objects.count(),
        request_entries().count(),
        AuditEvent.objects.count(),
    )


def file(cast, **overrides) -> DataRequest:
    return request_file(requester=cast.requester, **overrides)


def in_state(request: DataRequest, state: str) -> DataRequest:
    """Put a request in ``state`` directly (test set-up only; services never do this)."""
    DataRequest.objects.filter(pk=request.pk).update(state=state)
    request.refresh_from_db()
    return request


# --- filing -----------------------------------------------------------------------------------


def test_files_and_submits_a_request_against_the_newest_source_version(world):
    cast = world
    request = file(cast, epsilon="1.5", delta="1e-6", n_rows="500", justification="churn model")

    assert request.state == S.SUBMITTED
    assert request.submitted_at is not None and request.decided_at is None
    assert (request.requester, request.dataset.name, request.purpose.name) == (cast.requester, "adult", "research")
    assert (request.epsilon, request.delta, request.n_rows) == (Decimal("1.5"), Decimal("1e-6"), 500)
    assert request.source_version == Dataset.objects.get().versions.get(number=1)
    assert (request.generator, request.recipient_kind, request.seed) == ("mst", "internal", None)


def test_files_a_draft_and_submits_it_later(world):
    cast = world
    draft = file(cast, submit=False)
    assert (draft.state, draft.submitted_at) == (S.DRAFT, None)

    submitted = access_request_submit(actor=cast.requester, request_id=draft.pk)

    assert submitted.state == S.SUBMITTED and submitted.submitted_at is not None


def test_floats_are_read_as_the_decimal_they_print_as(world):
    # 0.3 is no binary fraction (0.2999…), and large enough for the generator on this table
    request = file(world, epsilon=0.3, delta=1e-7)
    assert (request.epsilon, request.delta) == (Decimal("0.3"), Decimal("1e-7"))


@pytest.mark.parametrize(
    ("field", "overrides", "message"),
    [
        ("epsilon", {"epsilon": "5.000001"}, "ε = 5.000001 is more than purpose “research” allows (at most ε = 5"),
        ("epsilon", {"epsilon": "0"}, "epsilon must be greater than 0"),
        ("epsilon", {"epsilon": "-0.5"}, "epsilon must be greater than 0"),
        ("epsilon", {"epsilon": "lots"}, "epsilon must be a number; got 'lots'"),
        ("epsilon", {"epsilon": None}, "epsilon must be a number"),
        ("epsilon", {"epsilon": "NaN"}, "epsilon must be a finite number"),
        ("epsilon", {"epsilon": "Infinity"}, "epsilon must be a finite number"),
        ("delta", {"delta": "1"}, "delta must be less than 1"),
        ("delta", {"delta": "-1e-9"}, "delta must be at least 0"),
        ("n_rows", {"n_rows": 0}, "rows must be between 1 and 10,000,000; got 0"),
        ("n_rows", {"n_rows": -5}, "rows must be between 1 and"),
        ("n_rows", {"n_rows": 10_000_001}, "rows must be between 1 and 10,000,000; got 10000001"),
        ("n_rows", {"n_rows": "ten"}, "rows must be a whole number; got 'ten'"),
        ("n_rows", {"n_rows": "2.5"}, "rows must be a whole number"),
        ("recipient_kind", {"recipient_kind": "public"}, "allows recipients ['internal', 'external'], not 'public'"),
        ("generator", {"generator": "gan"}, "unknown generator 'gan'"),
        ("generator", {"generator_params": {"epochs": 3}}, "unknown parameter(s) ['epochs']"),
        ("generator", {"generator": "copula"}, "is not differentially private"),
        ("rebalance", {"rebalance": {"column": "sex", "shares": {"Female": 0.5}}}, "needs the label column (income)"),
        ("rebalance", {"rebalance": {"column": "income", "shares": {">50K": 1.5}}}, "must lie in (0, 1)"),
        ("rebalance", {"rebalance": {"column": "income", "shares": {">50K": "half"}}}, "must be numbers"),
        ("rebalance", {"rebalance": {"column": "income", "shares": {}}}, "needs target shares"),
    ],
)
def test_refuses_a_bad_field_naming_it_and_writes_nothing(world, field, overrides, message):
    before = counts()
    with pytest.raises(ValidationError) as caught:
        file(world, **overrides)
    assert caught.value.extra["field"] == field
    assert message in caught.value.message
    assert counts() == before


def test_the_row_limit_comes_from_settings(world, settings):
    settings.SYNTHGATE_MAX_ROWS = 1000
    assert file(world, n_rows=1000).n_rows == 1000
    with pytest.raises(ValidationError) as caught:
        file(world, n_rows=1001)
    assert caught.value.extra == {"field": "n_rows", "max_rows": 1000}


def test_the_epsilon_limit_is_inclusive(world):
    assert file(world, epsilon="5").epsilon == Decimal("5")


def test_a_purpose_that_allows_non_private_generators_accepts_them(world):
    PurposeFactory(name="testing", approvals_required=1, allow_non_private=True, allowed_recipients=["internal"])
    assert file(world, purpose_name="testing", generator="copula").generator == "copula"


def test_accepts_rebalancing_on_the_label_column(world):
    request = file(world, rebalance={"column": "income", "shares": {">50K": "0.5"}})
    assert request.rebalance == {"column": "income", "shares": {">50K": 0.5}}


@pytest.mark.parametrize(
    ("field", "overrides"),
    [
        ("dataset", {"dataset_name": "census"}),
        ("purpose", {"purpose_name": "marketing"}),
    ],
)
def test_refuses_an_unknown_dataset_or_purpose(world, field, overrides):
    before = counts()
    with pytest.raises(NotFoundError) as caught:
        file(world, **overrides)
    assert caught.value.extra == {"field": field}
    assert counts() == before


def test_refuses_a_dataset_without_a_source_version(world):
    Dataset.objects.create(name="empty", owner=world.steward, epsilon_cap=1, delta_cap=0)
    with pytest.raises(ConflictError, match="no source version"):
        file(world, dataset_name="empty")


@pytest.mark.parametrize("who", ["steward", "approver", "auditor"])
def test_only_a_requester_may_file(world, who):
    before = counts()
    with pytest.raises(PermissionDeniedError):
        request_file(requester=getattr(world, who))
    assert counts() == before


# --- the state machine --------------------------------------------------------------------------

ALL_STATES = list(S)


@pytest.mark.parametrize("source", ALL_STATES, ids=[s.value for s in ALL_STATES])
def test_every_transition_is_allowed_or_refused_as_the_state_machine_says(world, source):
    request = file(world)
    for target in ALL_STATES:
        in_state(request, source)
        events = AuditEvent.objects.count()
        locked = DataRequest.objects.get(pk=request.pk)
        if target in TRANSITIONS[source]:
            with transaction.atomic():
                moved = request_transition(request=locked, target=target, actor=world.steward, action="move")
            assert moved.state == target
            assert DataRequest.objects.get(pk=request.pk).state == target
            event = AuditEvent.objects.order_by("id").last()
            assert (event.action, event.before, event.after) == ("request.move", {"state": source}, {"state": target})
        else:
            with pytest.raises(InvalidTransitionError) as caught:
                request_transition(request=locked, target=target, actor=world.steward, action="move")
            assert caught.value.extra == {"state": source, "allowed_transitions": allowed_transitions(source)}
            assert caught.value.code == "invalid_transition" and caught.value.status == 409
            assert f"it is {source.value!r}" in caught.value.message
            assert DataRequest.objects.get(pk=request.pk).state == source
            assert AuditEvent.objects.count() == events


def test_the_final_states_allow_nothing_and_say_so(world):
    for state in (S.REJECTED, S.WITHDRAWN, S.FAILED, S.REVOKED, S.EXPIRED):
        assert allowed_transitions(state) == []
    request = in_state(file(world), S.REJECTED)
    with pytest.raises(InvalidTransitionError, match=r"nothing \(final\)"):
        access_request_withdraw(actor=world.requester, request_id=request.pk)


def test_the_state_machine_names_every_state():
    assert set(TRANSITIONS) == set(S)
    assert allowed_transitions(S.SUBMITTED) == ["approved", "rejected", "withdrawn"]


@pytest.mark.parametrize("state", [S.DRAFT, S.APPROVED, S.GENERATING, S.REJECTED, S.WITHDRAWN, S.RELEASED])
@pytest.mark.parametrize("decision", ["approve", "reject"])
def test_only_a_submitted_request_can_be_decided(world, state, decision):
    request = in_state(file(world), state)
    before = counts()
    with pytest.raises(InvalidTransitionError) as caught:
        if decision == "approve":
            access_request_approve(actor=world.approver, request_id=request.pk)
        else:
            access_request_reject(actor=world.approver, request_id=request.pk, reason="no")
    assert caught.value.extra == {"state": state, "allowed_transitions": allowed_transitions(state)}
    assert counts() == before


def test_a_submitted_request_cannot_be_submitted_again(world):
    request = file(world)
    with pytest.raises(InvalidTransitionError) as caught:
        access_request_submit(actor=world.requester, request_id=request.pk)
    assert caught.value.extra["allowed_transitions"] == ["approved", "rejected", "withdrawn"]


@pytest.mark.parametrize("state", [S.DRAFT, S.SUBMITTED, S.APPROVED, S.BLOCKED, S.READY])
def test_the_requester_can_withdraw_from_each_open_state(world, state):
    request = in_state(file(world), state)
    withdrawn = access_request_withdraw(actor=world.requester, request_id=request.pk, reason="changed plans")
    assert (withdrawn.state, withdrawn.decision_reason) == (S.WITHDRAWN, "changed plans")


@pytest.mark.parametrize("state", [S.GENERATING, S.AUDITING, S.RELEASED, S.REJECTED, S.WITHDRAWN])
def test_withdrawing_is_refused_once_generation_started_or_the_request_ended(world, state):
    request = in_state(file(world), state)
    before = counts()
    with pytest.raises(InvalidTransitionError):
        access_request_withdraw(actor=world.requester, request_id=request.pk)
    assert counts() == before


# --- deciding -------------------------------------------------------------------------------------


def test_two_distinct_approvals_approve_a_two_approver_request(world):
    cast = world
    request = file(cast)

    after_first = access_request_approve(actor=cast.approver, request_id=request.pk, reason="ok")
    assert after_first.state == S.SUBMITTED
    assert after_first.decided_at is None

    approved = access_request_approve(actor=cast.second_approver, request_id=request.pk, reason="ok too")
    assert approved.state == S.APPROVED and approved.decided_at is not None
    assert list(approved.approvals.values_list("approver__username", "decision", "requester")) == [
        ("approver", "approve", cast.requester.pk),
        ("second_approver", "approve", cast.requester.pk),
    ]


def test_the_same_approver_cannot_approve_twice(world):
    cast = world
    request = file(cast)
    access_request_approve(actor=cast.approver, request_id=request.pk)
    before = counts()

    with pytest.raises(ConflictError, match="already decided"):
        access_request_approve(actor=cast.approver, request_id=request.pk)

    assert counts() == before
    request.refresh_from_db()
    assert request.state == S.SUBMITTED


def test_a_one_approver_purpose_is_approved_by_one(world):
    PurposeFactory(name="quick", approvals_required=1)
    request = file(world, purpose_name="quick")
    assert access_request_approve(actor=world.approver, request_id=request.pk).state == S.APPROVED


def test_an_approver_who_approved_cannot_then_reject(world):
    request = file(world)
    access_request_approve(actor=world.approver, request_id=request.pk)
    with pytest.raises(ConflictError):
        access_request_reject(actor=world.approver, request_id=request.pk, reason="changed my mind")
    request.refresh_from_db()
    assert request.state == S.SUBMITTED


def test_one_rejection_ends_the_request_even_after_an_approval(world):
    cast = world
    request = file(cast)
    access_request_approve(actor=cast.approver, request_id=request.pk)

    rejected = access_request_reject(actor=cast.second_approver, request_id=request.pk, reason="ε too high")

    assert (rejected.state, rejected.decision_reason) == (S.REJECTED, "ε too high")
    assert rejected.decided_at is not None
    assert rejected.approvals.get(approver=cast.second_approver).decision == Decision.REJECT
    assert not request_entries().exists()


@pytest.mark.parametrize("reason", ["", "   ", None])
def test_a_rejection_needs_a_reason(world, reason):
    request = file(world)
    before = counts()
    with pytest.raises(ValidationError) as caught:
        access_request_reject(actor=world.approver, request_id=request.pk, reason=reason)
    assert caught.value.extra == {"field": "reason"}
    assert counts() == before


@pytest.mark.parametrize(
    "decide",
    [
        lambda actor, pk: access_request_approve(actor=actor, request_id=pk),
        lambda actor, pk: access_request_reject(actor=actor, request_id=pk, reason="mine"),
    ],
    ids=["approve", "reject"],
)
def test_a_requester_who_is_also_an_approver_can_never_decide_their_own_request(world, decide):
    both = UserFactory(username="both", roles=[Role.REQUESTER, Role.APPROVER])
    request = request_file(requester=both)
    before = counts()

    with pytest.raises(FourEyesError) as caught:
        decide(both, request.pk)

    assert caught.value.code == "four_eyes" and caught.value.status == 403
    assert counts() == before
    request.refresh_from_db()
    assert request.state == S.SUBMITTED


def test_the_requester_cannot_approve_their_own_request(world):
    request = file(world)
    with pytest.raises(FourEyesError):
        access_request_approve(actor=world.requester, request_id=request.pk)


@pytest.mark.parametrize("who", ["steward", "auditor"])
def test_a_user_who_is_not_an_approver_cannot_decide(world, who):
    request = file(world)
    before = counts()
    with pytest.raises(PermissionDeniedError, match="Only an approver"):
        access_request_approve(actor=getattr(world, who), request_id=request.pk)
    with pytest.raises(PermissionDeniedError, match="Only an approver"):
        access_request_reject(actor=getattr(world, who), request_id=request.pk, reason="no")
    assert counts() == before


def test_another_requester_cannot_see_let_alone_decide_a_request(world):
    request = file(world)
    before = counts()
    for action in (
        lambda: access_request_approve(actor=world.other_requester, request_id=request.pk),
        lambda: access_request_reject(actor=world.other_requester, request_id=request.pk, reason="no"),
        lambda: access_request_withdraw(actor=world.other_requester, request_id=request.pk),
        lambda: access_request_submit(actor=world.other_requester, request_id=request.pk),
    ):
        with pytest.raises(NotFoundError, match=f"No request #{request.pk}"):
            action()
    assert counts() == before


def test_only_the_requester_may_withdraw_or_submit(world):
    draft = file(world, submit=False)
    with pytest.raises(PermissionDeniedError, match="Only the requester can submit"):
        access_request_submit(actor=world.approver, request_id=draft.pk)
    with pytest.raises(PermissionDeniedError, match="Only the requester can withdraw"):
        access_request_withdraw(actor=world.steward, request_id=draft.pk)


def test_an_unknown_request_is_not_found(world):
    with pytest.raises(NotFoundError, match="No request #999999"):
        access_request_approve(actor=world.approver, request_id=999999)


# --- four-eyes in the database ------------------------------------------------------------------


def test_the_database_refuses_an_approval_by_the_requester(world):
    request = file(world)
    with pytest.raises(IntegrityError), transaction.atomic():
        Approval.objects.create(
            request=request, approver=world.requester, requester=world.requester, decision=Decision.APPROVE
        )
    assert not Approval.objects.exists()


def test_the_database_refuses_two_decisions_by_one_approver(world):
    request = file(world)
    Approval.objects.create(
        request=request, approver=world.approver, requester=world.requester, decision=Decision.APPROVE
    )
    with pytest.raises(IntegrityError), transaction.atomic():
        Approval.objects.create(
            request=request, approver=world.approver, requester=world.requester, decision=Decision.REJECT
        )


@on_postgresql
def test_postgresql_refuses_an_approval_whose_requester_is_not_the_requests(world):
    """The copied requester column could be forged to dodge the check constraint; the trigger
    compares it with the request's real requester."""
    request = file(world)
    with pytest.raises(IntegrityError, match="four-eyes"), transaction.atomic():
        Approval.objects.create(
            request=request, approver=world.requester, requester=world.other_requester, decision=Decision.APPROVE
        )
    approval = Approval.objects.create(
        request=request, approver=world.approver, requester=world.requester, decision=Decision.APPROVE
    )
    with pytest.raises(IntegrityError, match="four-eyes"), transaction.atomic():
        Approval.objects.filter(pk=approval.pk).update(approver=world.requester, requester=world.other_requester)
    assert connection.vendor == "postgresql"


# --- who sees what --------------------------------------------------------------------------------


def test_a_requester_sees_only_their_own_requests(world):
    mine = file(world)
    theirs = request_file(requester=world.other_requester)

    assert list(request_list(user=world.requester)) == [mine]
    assert list(request_list(user=world.other_requester)) == [theirs]
    assert request_get(user=world.requester, request_id=mine.pk) == mine
    with pytest.raises(NotFoundError, match=f"No request #{theirs.pk}"):
        request_get(user=world.requester, request_id=theirs.pk)


@pytest.mark.parametrize("who", ["steward", "approver", "auditor"])
def test_stewards_approvers_and_auditors_see_every_request(world, who):
    requests = {file(world).pk, request_file(requester=world.other_requester).pk}
    assert {r.pk for r in request_list(user=getattr(world, who))} == requests


def test_a_user_without_a_role_sees_nothing(world):
    nobody = UserFactory(username="nobody")
    with pytest.raises(PermissionDeniedError):
        request_list(user=nobody)


def test_a_whole_decision_history_verifies(world):
    cast = world
    for outcome in ("approve", "reject", "withdraw"):
        request = file(cast, epsilon="0.5")
        if outcome == "approve":
            access_request_approve(actor=cast.approver, request_id=request.pk)
            access_request_approve(actor=cast.second_approver, request_id=request.pk)
        elif outcome == "reject":
            access_request_reject(actor=cast.approver, request_id=request.pk, reason="no")
        else:
            access_request_withdraw(actor=cast.requester, request_id=request.pk)
    assert audit_log_verify().ok


def test_a_client_token_makes_filing_idempotent(world):
    first = file(world, client_token="tok-1")
    again = file(world, epsilon="2", client_token="tok-1")
    other = file(world, client_token="tok-2")

    assert again.pk == first.pk and again.epsilon == first.epsilon
    assert other.pk != first.pk
    assert DataRequest.objects.count() == 2
    assert AuditEvent.objects.filter(action="request.create").count() == 2
