"""The privacy-budget ledger: exact Decimal amounts, reserve at the final approval, spend at
first data access (idempotent), release of what is unused or withdrawn, and append-only
rows that PostgreSQL itself refuses to change.
"""

from __future__ import annotations

import json
from datetime import timedelta
from decimal import Decimal
from io import StringIO

import numpy as np
import pandas as pd
import pytest
from django.core.management import call_command
from django.db import connection, transaction
from django.db.utils import DatabaseError
from django.utils import timezone

from audits.compliance.build import compliance_report_build
from core.amounts import amount_text
from core.errors import BudgetExhaustedError, ConflictError, ValidationError
from dashboard.selectors import dataset_rows
from governance.models import Approval, AuditEvent, BudgetEntry, DataRequest, EntryKind, RequestState
from governance.services import (
    access_request_approve,
    access_request_withdraw,
    audit_log_verify,
    budget_balance,
    budget_release,
    budget_reservation,
    budget_spend,
    ledger_amount,
    request_transition,
)
from governance.services.budget import row_estimate_epsilon
from tests.database import as_owner
from tests.governance import factories
from tests.governance.factories import PurposeFactory, request_entries

on_postgresql = pytest.mark.skipif("connection.vendor != 'postgresql'", reason="needs PostgreSQL")


# What registration spends on the source version's DP row estimate (δ = 0), before any request.
ESTIMATE = Decimal("0.02")


# The ledger's dataset: 20,000 rows of two yes/no columns. Filing refuses an ε the generator
# would refuse for the version (issue 11.2), and on a table this long and narrow MST takes
# requests of ε = 0.01 at δ = 1e-7 (the 2,000-row, 15-column adult fixture needs ε ≥ 0.25), so
# the ledger's arithmetic is tested at the amounts it always was.
LEDGER = "ledger"


def request_file(**fields) -> DataRequest:
    return factories.request_file(dataset_name=LEDGER, **fields)


@pytest.fixture
def ledger(cast, settings, tmp_path):
    """A dataset with caps ε = 0.32, δ = 3e-6, of which the row estimate spent ε = 0.02 at
    registration (0.3 left for requests), and a one-approver purpose."""
    from governance.services import dataset_register

    settings.DATA_DIR = tmp_path
    assert row_estimate_epsilon() == ESTIMATE
    rows = np.random.default_rng(0).choice(["yes", "no"], size=(20_000, 2))
    path = tmp_path / "ledger.csv"
    pd.DataFrame(rows, columns=["smoker", "insured"]).to_csv(path, index=False)
    dataset = dataset_register(
        actor=cast.steward, name=LEDGER, path=path, filename=path.name, epsilon_cap="0.32", delta_cap="3e-6"
    ).version.dataset
    factories.proposed_types_declared(steward=cast.steward, name=LEDGER)
    PurposeFactory(name="research", approvals_required=1, max_epsilon=Decimal("1"))
    return cast, dataset


def approved_request(cast, *, epsilon="0.1", delta="1e-7") -> DataRequest:
    request = request_file(requester=cast.requester, epsilon=epsilon, delta=delta)
    return access_request_approve(actor=cast.approver, request_id=request.pk)


def snapshot(request: DataRequest) -> tuple:
    request.refresh_from_db()
    return (request.state, Approval.objects.count(), request_entries().count(), AuditEvent.objects.count())


def spend(request: DataRequest, epsilon: str, delta: str = "1e-7", mechanism: str = "mst") -> BudgetEntry:
    return budget_spend(
        request=request,
        job=None,
        epsilon=Decimal(epsilon),
        delta=Decimal(delta),
        mechanism=mechanism,
        accountant={"accountant": "zcdp", "rho": 0.001},
        actor=None,
    )


# --- reserving ------------------------------------------------------------------------------


@pytest.mark.django_db
def test_three_requests_of_a_tenth_fill_a_cap_of_three_tenths_exactly(ledger):
    cast, dataset = ledger
    for _ in range(3):
        assert approved_request(cast).state == RequestState.APPROVED

    balance = budget_balance(dataset=dataset)
    assert balance.epsilon_reserved == Decimal("0.3")
    assert balance.epsilon_remaining == Decimal("0")
    assert isinstance(balance.epsilon_remaining, Decimal)
    assert sum(request_entries().values_list("epsilon", flat=True), Decimal(0)) == Decimal("0.3")


@pytest.mark.django_db
def test_a_fourth_request_is_refused_stating_the_remaining_budget_and_changes_nothing(ledger):
    cast, dataset = ledger
    for _ in range(3):
        approved_request(cast)
    fourth = request_file(requester=cast.requester, epsilon="0.1", delta="1e-7")
    before = snapshot(fourth)

    with pytest.raises(BudgetExhaustedError) as caught:
        access_request_approve(actor=cast.approver, request_id=fourth.pk, reason="one more")

    error = caught.value
    assert error.code == "budget_exhausted" and error.status == 409
    assert f"request #{fourth.pk}" in error.message and f"'{LEDGER}'" in error.message
    assert "asks ε=0.1" in error.message
    assert "remaining ε=0," in error.message
    assert error.extra == {
        "requested": {"epsilon": "0.1", "delta": "0.0000001"},
        "remaining": {"epsilon": "0", "delta": "0.0000027"},
    }
    assert snapshot(fourth) == before
    assert before[0] == RequestState.SUBMITTED
    assert not fourth.approvals.exists() and not fourth.budget_entries.exists()


@pytest.mark.django_db
def test_a_request_for_part_of_the_remaining_budget_still_fits(ledger):
    cast, dataset = ledger
    approved_request(cast, epsilon="0.25")
    with pytest.raises(BudgetExhaustedError) as caught:
        approved_request(cast, epsilon="0.1")
    assert caught.value.extra["remaining"]["epsilon"] == "0.05"
    assert "remaining ε=0.05," in caught.value.message
    assert approved_request(cast, epsilon="0.05").state == RequestState.APPROVED
    assert budget_balance(dataset=dataset).epsilon_remaining == 0


@pytest.mark.django_db
def test_the_delta_cap_is_enforced_exactly_as_well(ledger):
    cast, dataset = ledger
    for _ in range(3):
        approved_request(cast, epsilon="0.01", delta="1e-6")
    assert budget_balance(dataset=dataset).delta_remaining == Decimal("0")
    fourth = request_file(requester=cast.requester, epsilon="0.01", delta="1e-6")
    before = snapshot(fourth)

    with pytest.raises(BudgetExhaustedError) as caught:
        access_request_approve(actor=cast.approver, request_id=fourth.pk)

    assert caught.value.extra["remaining"] == {"epsilon": "0.27", "delta": "0"}
    assert snapshot(fourth) == before


@pytest.mark.django_db
def test_a_zero_delta_request_is_refused_at_filing_when_the_generator_needs_delta(ledger):
    """δ = 0 is within every cap, but MST's Gaussian mechanism needs δ > 0: the job would fail at its
    planning, so filing refuses it, with the reason, and writes nothing."""
    cast, dataset = ledger
    approved_request(cast, epsilon="0.01", delta="3e-6")  # the δ cap is used up: δ = 0 is what fits
    before = (DataRequest.objects.count(), request_entries().count(), AuditEvent.objects.count())
    with pytest.raises(ValidationError) as caught:
        request_file(requester=cast.requester, epsilon="0.01", delta="0")
    assert caught.value.extra["field"] == "delta"
    assert "Generator 'mst' cannot run at ε = 0.01, δ = 0" in caught.value.message
    assert "delta must be in (0, 1)" in caught.value.message and "Nothing was spent or reserved" in caught.value.message
    assert (DataRequest.objects.count(), request_entries().count(), AuditEvent.objects.count()) == before


@pytest.mark.django_db
def test_budget_is_reserved_at_the_final_approval_only(ledger):
    cast, dataset = ledger
    PurposeFactory(name="two-eyes", approvals_required=2, max_epsilon=Decimal("1"))
    request = request_file(requester=cast.requester, purpose_name="two-eyes", epsilon="0.2")

    access_request_approve(actor=cast.approver, request_id=request.pk)
    assert not request_entries().exists()
    assert budget_balance(dataset=dataset).epsilon_remaining == Decimal("0.3")

    access_request_approve(actor=cast.second_approver, request_id=request.pk)
    entry = request_entries().get()
    assert (entry.kind, entry.epsilon, entry.delta, entry.request, entry.actor) == (
        EntryKind.RESERVE,
        Decimal("0.2"),
        Decimal("1e-6"),
        request,
        cast.second_approver,
    )
    assert entry.note == "reserved at final approval"
    assert budget_reservation(request=request) == (Decimal("0.2"), Decimal("1e-6"))


@pytest.mark.django_db
def test_an_exhausted_second_approval_keeps_the_first_and_writes_nothing_more(ledger):
    cast, dataset = ledger
    approved_request(cast, epsilon="0.25")
    PurposeFactory(name="two-eyes", approvals_required=2, max_epsilon=Decimal("1"))
    request = request_file(requester=cast.requester, purpose_name="two-eyes", epsilon="0.1")
    access_request_approve(actor=cast.approver, request_id=request.pk)
    before = snapshot(request)

    with pytest.raises(BudgetExhaustedError):
        access_request_approve(actor=cast.second_approver, request_id=request.pk)

    assert snapshot(request) == before
    assert list(request.approvals.values_list("approver__username", flat=True)) == ["approver"]


# --- spending ---------------------------------------------------------------------------------


@pytest.mark.django_db
def test_spending_the_whole_reservation_writes_one_spend_and_no_release(ledger):
    cast, dataset = ledger
    request = approved_request(cast, epsilon="0.1")

    entry = spend(request, "0.1")

    assert (entry.kind, entry.epsilon, entry.mechanism, entry.accountant) == (
        EntryKind.SPEND,
        Decimal("0.1"),
        "mst",
        {"accountant": "zcdp", "rho": 0.001},
    )
    assert list(request.budget_entries.values_list("kind", flat=True)) == ["reserve", "spend"]
    balance = budget_balance(dataset=dataset)
    assert (balance.epsilon_spent, balance.epsilon_reserved, balance.epsilon_remaining) == (
        Decimal("0.1") + ESTIMATE,
        Decimal("0"),
        Decimal("0.2"),
    )
    assert budget_reservation(request=request) == (0, 0)


@pytest.mark.django_db
def test_spending_is_idempotent_per_request(ledger):
    cast, _ = ledger
    request = approved_request(cast, epsilon="0.1")
    first = spend(request, "0.08")
    events = AuditEvent.objects.count()

    again = spend(request, "0.08")
    different = spend(request, "0.05")  # a redelivered task with other numbers still gets the first spend

    assert again.pk == first.pk == different.pk
    assert request.budget_entries.filter(kind=EntryKind.SPEND).count() == 1
    assert request.budget_entries.filter(kind=EntryKind.RELEASE).count() == 1
    assert AuditEvent.objects.count() == events


@pytest.mark.django_db
def test_the_unused_part_of_a_reservation_is_released_with_the_spend(ledger):
    cast, dataset = ledger
    request = approved_request(cast, epsilon="0.3", delta="2e-6")

    spend(request, "0.125", delta="5e-7")

    rows = {
        kind: (epsilon, delta)
        for kind, epsilon, delta in request.budget_entries.values_list("kind", "epsilon", "delta")
    }
    assert rows == {
        "reserve": (Decimal("0.3"), Decimal("2e-6")),
        "spend": (Decimal("0.125"), Decimal("5e-7")),
        "release": (Decimal("0.175"), Decimal("1.5e-6")),
    }
    balance = budget_balance(dataset=dataset)
    assert (balance.epsilon_spent, balance.epsilon_reserved, balance.epsilon_remaining) == (
        Decimal("0.125") + ESTIMATE,
        Decimal("0"),
        Decimal("0.175"),
    )
    assert (balance.delta_spent, balance.delta_reserved, balance.delta_remaining) == (
        Decimal("5e-7"),
        Decimal("0"),
        Decimal("2.5e-6"),
    )
    assert [e.action for e in AuditEvent.objects.order_by("-id")[:2]] == ["budget.release", "budget.spend"]


@pytest.mark.django_db
def test_spending_more_than_the_reservation_is_refused_and_writes_nothing(ledger):
    cast, _ = ledger
    request = approved_request(cast, epsilon="0.1")
    before = snapshot(request)

    with pytest.raises(BudgetExhaustedError) as caught:
        spend(request, "0.100000000001")
    assert caught.value.extra == {"reserved": {"epsilon": "0.1", "delta": "0.0000001"}}
    with pytest.raises(BudgetExhaustedError):
        spend(request, "0.1", delta="2e-7")

    assert snapshot(request) == before


@pytest.mark.django_db
def test_spending_without_a_reservation_is_refused(ledger):
    cast, _ = ledger
    request = request_file(requester=cast.requester, epsilon="0.1")
    before = snapshot(request)
    with pytest.raises(ConflictError, match="no outstanding reservation"):
        spend(request, "0.1")
    assert snapshot(request) == before


# --- releasing --------------------------------------------------------------------------------


@pytest.mark.django_db
def test_withdrawing_an_approved_request_releases_its_reservation(ledger):
    cast, dataset = ledger
    request = approved_request(cast, epsilon="0.3", delta="1e-6")
    assert budget_balance(dataset=dataset).epsilon_remaining == 0

    access_request_withdraw(actor=cast.requester, request_id=request.pk, reason="no longer needed")

    release = request.budget_entries.get(kind=EntryKind.RELEASE)
    assert (release.epsilon, release.delta, release.note, release.actor) == (
        Decimal("0.3"),
        Decimal("1e-6"),
        "request withdrawn",
        cast.requester,
    )
    balance = budget_balance(dataset=dataset)
    assert (balance.epsilon_remaining, balance.delta_remaining) == (Decimal("0.3"), Decimal("3e-6"))
    assert approved_request(cast, epsilon="0.3").state == RequestState.APPROVED


@pytest.mark.django_db
def test_withdrawing_a_submitted_request_releases_nothing(ledger):
    cast, _ = ledger
    request = request_file(requester=cast.requester)
    access_request_withdraw(actor=cast.requester, request_id=request.pk)
    assert not request_entries().exists()


@pytest.mark.django_db
def test_a_release_happens_once(ledger):
    cast, _ = ledger
    request = approved_request(cast, epsilon="0.2")
    first = budget_release(request=request, actor=None, note="job failed before touching data")
    entries = request_entries().count()

    assert budget_release(request=request, actor=None, note="again") is None
    assert first.epsilon == Decimal("0.2")
    assert request_entries().count() == entries


@pytest.mark.django_db
def test_nothing_is_released_once_the_data_was_touched(ledger):
    cast, dataset = ledger
    request = approved_request(cast, epsilon="0.2")
    spend(request, "0.2")
    before = snapshot(request)

    assert budget_release(request=request, actor=None, note="job failed after touching data") is None

    assert snapshot(request) == before
    assert budget_balance(dataset=dataset).epsilon_spent == Decimal("0.2") + ESTIMATE


@pytest.mark.django_db
def test_a_failed_job_keeps_its_spend(ledger):
    cast, dataset = ledger
    request = approved_request(cast, epsilon="0.2")
    with transaction.atomic():
        locked = DataRequest.objects.select_for_update().get(pk=request.pk)
        request_transition(request=locked, target=RequestState.GENERATING, actor=None, action="start")
    spend(request, "0.15")
    with transaction.atomic():
        locked = DataRequest.objects.select_for_update().get(pk=request.pk)
        request_transition(request=locked, target=RequestState.FAILED, actor=None, action="fail")
    budget_release(request=request, actor=None, note="job failed")

    balance = budget_balance(dataset=dataset)
    assert (balance.epsilon_spent, balance.epsilon_reserved, balance.epsilon_remaining) == (
        Decimal("0.15") + ESTIMATE,
        Decimal("0"),
        Decimal("0.15"),
    )


# --- balance and amounts ----------------------------------------------------------------------


@pytest.mark.django_db
def test_the_balance_sums_caps_spends_and_outstanding_reservations(ledger):
    cast, dataset = ledger
    spent = approved_request(cast, epsilon="0.1", delta="1e-6")
    spend(spent, "0.07", delta="4e-7")
    approved_request(cast, epsilon="0.05", delta="5e-7")  # outstanding
    withdrawn = approved_request(cast, epsilon="0.1", delta="1e-6")
    access_request_withdraw(actor=cast.requester, request_id=withdrawn.pk)

    balance = budget_balance(dataset=dataset)

    assert (balance.epsilon_cap, balance.delta_cap) == (Decimal("0.32"), Decimal("3e-6"))
    assert (balance.epsilon_spent, balance.delta_spent) == (Decimal("0.07") + ESTIMATE, Decimal("4e-7"))
    assert (balance.epsilon_reserved, balance.delta_reserved) == (Decimal("0.05"), Decimal("5e-7"))
    assert (balance.epsilon_remaining, balance.delta_remaining) == (Decimal("0.18"), Decimal("2.1e-6"))
    assert audit_log_verify().ok


@pytest.mark.django_db
def test_an_empty_ledger_leaves_the_whole_cap(ledger):
    _, dataset = ledger
    balance = budget_balance(dataset=dataset)
    assert (balance.epsilon_spent, balance.epsilon_reserved, balance.epsilon_remaining) == (ESTIMATE, 0, Decimal("0.3"))


@pytest.mark.parametrize(
    ("value", "places", "expected"),
    [
        (0.1, 12, Decimal("0.100000000000")),
        (1 / 3, 3, Decimal("0.334")),
        (2.0, 2, Decimal("2.00")),
        (Decimal("0.1234"), 2, Decimal("0.13")),
        (1e-7, 20, Decimal("1.0000000000000000E-7")),
    ],
)
def test_ledger_amounts_round_up_so_the_ledger_never_under_reports(value, places, expected):
    amount = ledger_amount(value, places=places)
    assert amount == expected
    assert amount >= Decimal(repr(value) if isinstance(value, float) else value)


# --- append-only, enforced by PostgreSQL --------------------------------------------------------


def arm_deferred_constraints() -> None:
    # Django's foreign keys are deferred; PostgreSQL refuses TRUNCATE with checks pending.
    with connection.cursor() as cursor:
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")


@on_postgresql
@pytest.mark.django_db
@pytest.mark.parametrize("table", ["governance_budgetentry", "governance_auditevent"])
@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE {table} SET created_at = now()",
        "DELETE FROM {table}",
        "TRUNCATE {table} CASCADE",
    ],
)
def test_postgresql_refuses_to_change_or_remove_ledger_and_log_rows(ledger, table, statement):
    cast, _ = ledger
    approved_request(cast)
    arm_deferred_constraints()
    counts = (BudgetEntry.objects.count(), AuditEvent.objects.count())

    with (
        pytest.raises(DatabaseError, match=f"permission denied for table {table}"),  # the application role
        transaction.atomic(),
        connection.cursor() as cursor,
    ):
        cursor.execute(statement.format(table=table))

    assert (BudgetEntry.objects.count(), AuditEvent.objects.count()) == counts


@on_postgresql
@pytest.mark.django_db
def test_postgresql_refuses_orm_updates_and_deletes_of_ledger_rows(ledger):
    cast, _ = ledger
    entry = approved_request(cast).budget_entries.get()
    with pytest.raises(DatabaseError), transaction.atomic():
        BudgetEntry.objects.filter(pk=entry.pk).update(epsilon=Decimal("0"))
    with pytest.raises(DatabaseError), transaction.atomic():
        entry.delete()
    entry.refresh_from_db()
    assert entry.epsilon == Decimal("0.1")


@on_postgresql
@pytest.mark.django_db(transaction=True)  # the owner's connection sees committed rows only
def test_only_a_superuser_session_in_maintenance_mode_can_purge(ledger):
    """The documented escape hatch: a superuser that sets ``synthgate.maintenance = 'on'``
    passes the triggers (the test suite's flush uses it, as the owner). The flag is no help to
    the application role, which is not a superuser and may not delete ledger rows at all."""
    cast, _ = ledger
    approved_request(cast)

    with pytest.raises(DatabaseError, match="permission denied"), transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SET LOCAL synthgate.maintenance = 'on'")
        cursor.execute("DELETE FROM governance_budgetentry")

    with as_owner():  # the suite's owner is a superuser
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute("SET LOCAL synthgate.maintenance = 'on'")  # LOCAL: gone when this block ends
            cursor.execute("DELETE FROM governance_budgetentry")
            cursor.execute("SELECT count(*) FROM governance_budgetentry")
            assert cursor.fetchone() == (0,)
            transaction.set_rollback(True)
        with pytest.raises(DatabaseError, match="append-only"), transaction.atomic(), connection.cursor() as cursor:
            cursor.execute("DELETE FROM governance_budgetentry")  # the flag did not outlive its transaction

    assert request_entries().count() == 1


# --- one balance, read the same everywhere ----------------------------------------------


@pytest.mark.django_db
def test_the_balance_as_of_a_moment_leaves_out_later_entries(ledger):
    cast, dataset = ledger
    first = approved_request(cast)
    moment = first.budget_entries.get().created_at
    approved_request(cast, epsilon="0.15")

    assert budget_balance(dataset=dataset, before=moment).epsilon_reserved == Decimal("0")
    assert budget_balance(dataset=dataset).epsilon_reserved == Decimal("0.25")


@pytest.mark.django_db
def test_the_api_the_cli_the_dashboard_and_the_report_show_one_balance_in_plain_amounts(ledger, client):
    cast, dataset = ledger
    spend(approved_request(cast), "0.05")
    approved_request(cast, epsilon="0.1", delta="1e-6")
    expected = {"cap": "0.32", "spent": "0.07", "reserved": "0.1", "remaining": "0.15"}

    client.force_login(cast.auditor)
    api = client.get(f"/api/datasets/{dataset.name}/budget/").json()["epsilon"]
    out = StringIO()
    call_command("budget", "show", dataset.name, "--json", "--as", cast.auditor.username, stdout=out)
    cli = json.loads(out.getvalue())["epsilon"]
    [row] = [row for row in dataset_rows(user=cast.auditor) if row.dataset.pk == dataset.pk]
    today = timezone.now().date()
    [report] = compliance_report_build(
        actor=cast.auditor, date_from=today - timedelta(days=1), date_to=today, dataset=dataset.name
    )["budgets"]

    assert api == cli == expected
    assert {part: amount_text(value) for part, value in row.balance.amounts("epsilon").items()} == expected
    assert report["epsilon_cap"] == "0.32"
    assert report["closing"]["epsilon_remaining"] == "0.15"
    assert report["closing"]["delta_reserved"] == "0.000001"
