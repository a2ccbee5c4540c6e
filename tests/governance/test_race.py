"""Concurrent approvals can never overspend a privacy budget.

Forty requests of ε = 0.25 against a cap of ε = 5.0 are approved at the same moment from
forty threads, each with its own database connection: exactly twenty fit, the ledger sums
to exactly 5.0, and the other twenty are refused with BudgetExhaustedError having changed
nothing. The dataset's row lock (``SELECT ... FOR UPDATE`` on PostgreSQL; SQLite's single
writer, taken at ``BEGIN IMMEDIATE``) is what makes the check and the reservation agree.

These tests need real transactions (``transaction=True``): inside a test-case transaction
every thread would wait on rows the test itself holds, or not see them at all.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.db import connections, transaction

from core.errors import BudgetExhaustedError, ConflictError
from governance.models import Approval, AuditEvent, BudgetEntry, DataRequest, Dataset, EntryKind, RequestState
from governance.services import access_request_approve, access_request_withdraw, audit_log_verify, budget_balance
from tests.governance.factories import PurposeFactory, cast_create, dataset_register_adult, request_file

N_REQUESTS = 40
EPSILON = Decimal("0.25")
ESTIMATE = Decimal("0.02")  # the source version's DP row estimate
CAP = Decimal("5.0")
ROUNDS = 5

pytestmark = pytest.mark.django_db(transaction=True)


def run_together(calls: list[Callable[[], Any]]) -> list[Any]:
    """Run each call in its own thread, released together by a barrier; return result or exception."""
    barrier = threading.Barrier(len(calls))
    outcomes: list[Any] = [None] * len(calls)

    def run(position: int) -> None:
        try:
            barrier.wait(timeout=60)
            outcomes[position] = calls[position]()
        except BaseException as error:  # every outcome is asserted on by the caller
            outcomes[position] = error
        finally:
            connections.close_all()  # this thread's own connection

    threads = [threading.Thread(target=run, args=(position,)) for position in range(len(calls))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=300)
    assert not any(thread.is_alive() for thread in threads), "an approval hung"
    return outcomes


def approve_as(approver_id: int, request_id: int) -> Callable[[], DataRequest]:
    def approve() -> DataRequest:
        approver = get_user_model().objects.get(pk=approver_id)  # loaded on the thread's own connection
        return access_request_approve(actor=approver, request_id=request_id, reason="race")

    return approve


@pytest.fixture
def race_setup(settings, tmp_path):
    settings.DATA_DIR = tmp_path
    cast = cast_create()
    PurposeFactory(name="race", approvals_required=1, max_epsilon=Decimal("1"))
    return cast


def test_forty_concurrent_approvals_fill_a_cap_of_five_exactly(race_setup):
    cast = race_setup
    report = []
    for round_number in range(1, ROUNDS + 1):
        name = f"adult-race-{round_number}"
        # the cap pays for the source version's row estimate (ε 0.02, at registration) and then CAP exactly
        dataset_register_adult(steward=cast.steward, name=name, epsilon_cap=str(CAP + ESTIMATE), delta_cap="1e-4")
        with transaction.atomic():  # one commit for the setup; the race itself has no outer transaction
            requests = [
                request_file(
                    requester=cast.requester,
                    dataset_name=name,
                    purpose_name="race",
                    epsilon=str(EPSILON),
                    delta="1e-6",
                    n_rows=200,
                )
                for _ in range(N_REQUESTS)
            ]
        events_before = AuditEvent.objects.count()

        outcomes = run_together([approve_as(cast.approver.pk, request.pk) for request in requests])

        approved = [r.pk for r, outcome in zip(requests, outcomes, strict=True) if isinstance(outcome, DataRequest)]
        refused = [(r.pk, o) for r, o in zip(requests, outcomes, strict=True) if isinstance(o, BudgetExhaustedError)]
        unexpected = [o for o in outcomes if not isinstance(o, DataRequest | BudgetExhaustedError)]
        report.append(f"round {round_number}: {len(approved)} approved, {len(refused)} refused")
        assert unexpected == [], report
        assert (len(approved), len(refused)) == (20, 20), report

        dataset = Dataset.objects.get(name=name)
        reservations = list(
            BudgetEntry.objects.filter(dataset=dataset, request__isnull=False).values_list(
                "kind", "request_id", "epsilon"
            )
        )
        assert sorted(request_id for _, request_id, _ in reservations) == sorted(approved)
        assert {kind for kind, _, _ in reservations} == {EntryKind.RESERVE}
        assert sum((epsilon for *_, epsilon in reservations), Decimal(0)) == Decimal("5.0")
        balance = budget_balance(dataset=dataset)
        assert (balance.epsilon_reserved, balance.epsilon_spent, balance.epsilon_remaining) == (CAP, ESTIMATE, 0)

        states = Counter(DataRequest.objects.filter(dataset=dataset).values_list("state", flat=True))
        assert states == {RequestState.APPROVED: 20, RequestState.SUBMITTED: 20}
        refused_ids = [request_id for request_id, _ in refused]
        assert not Approval.objects.filter(request_id__in=refused_ids).exists()
        assert not BudgetEntry.objects.filter(request_id__in=refused_ids).exists()
        assert Approval.objects.filter(request_id__in=approved).count() == 20
        for _, error in refused:
            assert "remaining ε=0" in error.message
            assert Decimal(error.extra["remaining"]["epsilon"]) == 0
        # Three events per approval (approval, reservation, transition); none for a refusal.
        assert AuditEvent.objects.count() - events_before == 3 * 20
        assert not AuditEvent.objects.filter(
            object_type="datarequest", object_id__in=[str(i) for i in refused_ids], action="request.approve"
        ).exists()
    print("\n".join(report))
    assert audit_log_verify().ok


def test_two_approvers_deciding_at_once_approve_and_reserve_once(race_setup):
    cast = race_setup
    PurposeFactory(name="two-eyes", approvals_required=2, max_epsilon=Decimal("1"))
    dataset_register_adult(steward=cast.steward, name="adult-pair", epsilon_cap="5", delta_cap="1e-4")
    for _ in range(5):
        request = request_file(
            requester=cast.requester, dataset_name="adult-pair", purpose_name="two-eyes", epsilon="0.5", delta="1e-6"
        )

        outcomes = run_together(
            [approve_as(cast.approver.pk, request.pk), approve_as(cast.second_approver.pk, request.pk)]
        )

        assert all(isinstance(outcome, DataRequest) for outcome in outcomes), outcomes
        request.refresh_from_db()
        assert request.state == RequestState.APPROVED
        assert request.approvals.count() == 2
        assert list(request.budget_entries.values_list("kind", "epsilon")) == [(EntryKind.RESERVE, Decimal("0.5"))]
        assert AuditEvent.objects.filter(action="request.approve", object_id=str(request.pk)).count() == 1
    assert audit_log_verify().ok


def test_one_approver_clicking_twice_at_once_records_one_approval(race_setup):
    cast = race_setup
    PurposeFactory(name="two-eyes", approvals_required=2, max_epsilon=Decimal("1"))
    dataset_register_adult(steward=cast.steward, name="adult-double", epsilon_cap="5", delta_cap="1e-4")
    request = request_file(
        requester=cast.requester, dataset_name="adult-double", purpose_name="two-eyes", epsilon="0.5", delta="1e-6"
    )

    outcomes = run_together([approve_as(cast.approver.pk, request.pk) for _ in range(4)])

    assert sum(isinstance(outcome, DataRequest) for outcome in outcomes) == 1
    assert sum(isinstance(outcome, ConflictError) for outcome in outcomes) == 3, outcomes
    request.refresh_from_db()
    assert request.state == RequestState.SUBMITTED
    assert request.approvals.count() == 1
    assert not request.budget_entries.exists()


def test_withdrawal_racing_approval_never_leaves_a_reservation_behind(race_setup):
    cast = race_setup
    dataset_register_adult(steward=cast.steward, name="adult-withdraw", epsilon_cap="5", delta_cap="1e-4")
    for _ in range(5):
        request = request_file(
            requester=cast.requester, dataset_name="adult-withdraw", purpose_name="race", epsilon="0.5", delta="1e-6"
        )

        def withdraw(request_id: int = request.pk) -> DataRequest:
            requester = get_user_model().objects.get(pk=cast.requester.pk)
            return access_request_withdraw(actor=requester, request_id=request_id)

        run_together([approve_as(cast.approver.pk, request.pk), withdraw])

        request.refresh_from_db()
        assert request.state == RequestState.WITHDRAWN
        reserved = sum(
            (e for k, e in request.budget_entries.values_list("kind", "epsilon") if k == "reserve"), Decimal(0)
        )
        released = sum(
            (e for k, e in request.budget_entries.values_list("kind", "epsilon") if k == "release"), Decimal(0)
        )
        assert reserved == released  # either never reserved, or reserved and released again
    balance = budget_balance(dataset=Dataset.objects.get(name="adult-withdraw"))
    assert balance.epsilon_remaining == Decimal("5") - ESTIMATE  # the row estimate, spent at registration
    assert audit_log_verify().ok


@pytest.mark.skipif("connections['default'].vendor != 'postgresql'", reason="row locks need PostgreSQL")
def test_an_approval_waits_for_the_datasets_row_lock(race_setup):
    """The race above would also pass if only the audit log's head lock serialised approvals
    (every approval appends an event before it reads the balance). This pins the documented
    guarantee itself: approving takes the dataset's row lock, whatever else it does."""
    cast = race_setup
    version = dataset_register_adult(steward=cast.steward, name="adult-lock", epsilon_cap="5", delta_cap="1e-4")
    request = request_file(
        requester=cast.requester, dataset_name="adult-lock", purpose_name="race", epsilon="0.5", delta="1e-6"
    )
    holding, release = threading.Event(), threading.Event()

    def hold_dataset_lock() -> None:
        try:
            with transaction.atomic():
                # NO KEY UPDATE: it blocks another FOR UPDATE but not the KEY SHARE locks that
                # foreign-key checks take, so only an explicit lock on the dataset waits for it.
                Dataset.objects.select_for_update(no_key=True).get(pk=version.dataset_id)
                holding.set()
                release.wait(timeout=30)
        finally:
            connections.close_all()

    holder = threading.Thread(target=hold_dataset_lock)
    holder.start()
    assert holding.wait(timeout=10)
    outcome: list[Any] = []
    approver = threading.Thread(
        target=lambda: outcome.append(run_together([approve_as(cast.approver.pk, request.pk)])[0])
    )
    approver.start()
    approver.join(timeout=1.5)
    still_waiting = approver.is_alive()
    release.set()
    holder.join(timeout=30)
    approver.join(timeout=30)

    assert still_waiting, "the approval did not wait for the dataset's row lock"
    assert isinstance(outcome[0], DataRequest) and outcome[0].state == RequestState.APPROVED
