"""The hash-chained audit log: every state change and ledger entry is recorded, the chain
verifies when intact, names the first broken event when edited or cut, and never forks
under concurrent appends.
"""

from __future__ import annotations

import contextlib
import threading
from datetime import UTC, datetime
from decimal import Decimal

import pytest
from django.db import connection, connections, transaction

from core.context import channel
from governance.models import Approval, AuditChainHead, AuditEvent, BudgetEntry, RequestState
from governance.services import (
    access_request_approve,
    access_request_reject,
    access_request_withdraw,
    audit_event_record,
    audit_log_verify,
    budget_spend,
)
from governance.services.audit_log import GENESIS_HASH, event_hash
from tests.database import APP_ROLE, as_owner, owner_without_append_only_triggers
from tests.governance.factories import PurposeFactory, dataset_register_adult, request_file
from tests.jobs.worker import database_url as worker_database_url

on_postgresql = pytest.mark.skipif("connection.vendor != 'postgresql'", reason="needs PostgreSQL")


def record_events(count: int, actor=None) -> list[AuditEvent]:
    return [
        audit_event_record(
            actor=actor,
            action="test.event",
            object_type="thing",
            object_id=str(number),
            before={"n": number - 1},
            after={"n": number},
        )
        for number in range(1, count + 1)
    ]


# --- appending ------------------------------------------------------------------------------


@pytest.mark.django_db
def test_the_first_event_links_to_the_genesis_hash_and_each_next_to_its_predecessor():
    events = record_events(3)

    assert [event.id for event in events] == [1, 2, 3]
    assert events[0].prev_hash == GENESIS_HASH
    assert [event.prev_hash for event in events[1:]] == [events[0].hash, events[1].hash]
    head = AuditChainHead.objects.get()
    assert (head.length, head.last_hash) == (3, events[2].hash)


@pytest.mark.django_db
def test_an_event_hash_covers_its_content_and_is_recomputable_from_the_stored_row():
    event = record_events(1)[0]
    stored = AuditEvent.objects.get(pk=event.pk)
    assert stored.hash == event_hash(
        prev_hash=stored.prev_hash,
        event_id=stored.id,
        created_at=stored.created_at,
        actor_name=stored.actor_name,
        channel=stored.channel,
        action=stored.action,
        object_type=stored.object_type,
        object_id=stored.object_id,
        before=stored.before,
        after=stored.after,
    )


@pytest.mark.django_db
def test_records_actor_channel_object_and_exact_values(cast):
    with channel("cli"):
        event = audit_event_record(
            actor=cast.steward,
            action="dataset.register",
            obj=cast.requester,
            before=None,
            after={
                "epsilon_cap": Decimal("5.000"),
                "delta": Decimal("0.00001"),
                "at": datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC),
                "owner": cast.steward,
                "city": "Málaga",
            },
        )

    stored = AuditEvent.objects.get(pk=event.pk)
    assert (stored.actor, stored.actor_name, stored.channel) == (cast.steward, "steward", "cli")
    assert (stored.object_type, stored.object_id) == ("user", str(cast.requester.pk))
    assert stored.after == {
        "epsilon_cap": "5",
        "delta": "0.00001",
        "at": "2024-01-02T03:04:05+00:00",
        "owner": cast.steward.pk,
        "city": "Málaga",
    }
    assert audit_log_verify().ok


@pytest.mark.django_db
def test_an_event_without_an_actor_is_recorded_as_system():
    event = audit_event_record(actor=None, action="purpose.create", object_type="purpose", object_id="1")
    assert (event.actor, event.actor_name, event.channel) == (None, "system", "api")


@pytest.mark.django_db
def test_an_append_rolled_back_with_its_transaction_leaves_no_gap():
    from django.db import transaction

    record_events(2)
    with contextlib.suppress(RuntimeError), transaction.atomic():
        audit_event_record(actor=None, action="doomed", object_type="x", object_id="1")
        raise RuntimeError("the business change failed")
    survivor = audit_event_record(actor=None, action="kept", object_type="x", object_id="2")

    assert survivor.id == 3
    assert list(AuditEvent.objects.values_list("action", flat=True)) == ["test.event", "test.event", "kept"]
    assert audit_log_verify().ok


# --- verification --------------------------------------------------------------------------


@pytest.mark.django_db
def test_verify_accepts_an_empty_log():
    result = audit_log_verify()
    assert (result.ok, result.events_checked, result.first_broken_id, result.last_hash) == (True, 0, None, GENESIS_HASH)


@pytest.mark.django_db
def test_verify_accepts_an_intact_chain():
    events = record_events(5)
    result = audit_log_verify(batch_size=2)
    assert (result.ok, result.events_checked, result.first_broken_id, result.reason) == (True, 5, None, "")
    assert result.last_hash == events[-1].hash


@pytest.mark.django_db(transaction=True)  # the owner's edit must see committed rows
def test_verify_names_an_event_whose_content_was_edited():
    record_events(4)
    with owner_without_append_only_triggers():
        AuditEvent.objects.filter(pk=2).update(after={"n": 200})

    result = audit_log_verify()

    assert (result.ok, result.first_broken_id, result.events_checked) == (False, 2, 1)
    assert result.reason == "event 2 (test.event) was altered: its content does not match its hash"


@pytest.mark.django_db(transaction=True)  # the owner's edit must see committed rows
def test_verify_names_the_next_event_when_an_edited_event_was_re_hashed():
    events = record_events(4)
    forged = AuditEvent.objects.get(pk=2)
    forged.after = {"n": 200}
    forged.hash = event_hash(
        prev_hash=forged.prev_hash,
        event_id=2,
        created_at=forged.created_at,
        actor_name=forged.actor_name,
        channel=forged.channel,
        action=forged.action,
        object_type=forged.object_type,
        object_id=forged.object_id,
        before=forged.before,
        after=forged.after,
    )
    with owner_without_append_only_triggers():
        AuditEvent.objects.filter(pk=2).update(after=forged.after, hash=forged.hash)

    result = audit_log_verify()

    assert forged.hash != events[1].hash
    assert (result.ok, result.first_broken_id) == (False, 3)
    assert result.reason == "event 3 does not link to the hash of event 2"


@pytest.mark.django_db(transaction=True)  # the owner's edit must see committed rows
def test_verify_names_an_event_deleted_from_the_middle():
    record_events(4)
    with owner_without_append_only_triggers():
        AuditEvent.objects.filter(pk=2).delete()

    result = audit_log_verify()

    assert (result.ok, result.first_broken_id, result.events_checked) == (False, 2, 1)
    assert result.reason == "event 2 is missing (next stored event is 3)"


@pytest.mark.django_db(transaction=True)  # the owner's edit must see committed rows
def test_verify_names_the_last_event_when_it_was_deleted():
    record_events(4)
    with owner_without_append_only_triggers():
        AuditEvent.objects.filter(pk=4).delete()

    result = audit_log_verify()

    assert (result.ok, result.first_broken_id, result.events_checked) == (False, 4, 3)
    assert "events were removed from the end" in result.reason


@pytest.mark.django_db(transaction=True)  # the owner's edit must see committed rows
def test_verify_notices_every_event_deleted():
    record_events(2)
    with owner_without_append_only_triggers():
        AuditEvent.objects.all().delete()
    result = audit_log_verify()
    assert (result.ok, result.first_broken_id) == (False, 1)


TAMPERS = [
    "UPDATE governance_auditevent SET after = '{}'::jsonb WHERE id = 1",
    "DELETE FROM governance_auditevent WHERE id = 1",
    "TRUNCATE governance_auditevent CASCADE",
    "ALTER TABLE governance_auditevent DISABLE TRIGGER USER",
]


@on_postgresql
@pytest.mark.django_db
@pytest.mark.parametrize("statement", TAMPERS)
def test_the_suites_own_connection_is_the_application_role_and_may_not_change_the_log(statement):
    """The tests run the application as it runs in production: as a role that is not a superuser
    and may only INSERT and SELECT the log, so PostgreSQL refuses the change on privileges alone."""
    from django.db.utils import DatabaseError

    record_events(1)
    with connection.cursor() as cursor:
        cursor.execute("SELECT current_user, rolsuper FROM pg_roles WHERE rolname = current_user")
        assert cursor.fetchone() == (APP_ROLE, False)
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")  # else TRUNCATE refuses for pending FK checks
    assert worker_database_url().startswith(f"postgres://{APP_ROLE}@")  # and so do the workers tests start
    refused = "permission denied for table|must be owner of table"
    with pytest.raises(DatabaseError, match=refused), transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(statement)
    assert audit_log_verify().ok
    assert AuditEvent.objects.get(pk=1).after == {"n": 1}


@on_postgresql
@pytest.mark.django_db(transaction=True)  # the owner's connection sees committed rows only
@pytest.mark.parametrize("statement", TAMPERS[:3])
def test_the_append_only_triggers_refuse_even_the_owner_until_disabled(statement):
    from django.db.utils import DatabaseError

    record_events(1)
    with as_owner():
        with connection.cursor() as cursor:
            cursor.execute("SELECT current_user")
            assert cursor.fetchone() != (APP_ROLE,)
        with pytest.raises(DatabaseError, match="append-only"), transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(statement)
    assert audit_log_verify().ok


# --- the whole lifecycle is recorded --------------------------------------------------------


@pytest.fixture
def workflow(cast, settings, tmp_path):
    settings.DATA_DIR = tmp_path
    dataset_register_adult(steward=cast.steward)
    PurposeFactory(name="research", approvals_required=2)
    return cast


def actions_since(first_id: int) -> list[tuple[str, str, dict | None, dict | None]]:
    return [
        (event.action, event.actor_name, event.before, event.after)
        for event in AuditEvent.objects.filter(id__gt=first_id).order_by("id")
    ]


@pytest.mark.django_db
def test_a_full_request_lifecycle_writes_one_event_per_change(workflow):
    cast = workflow
    start = AuditEvent.objects.count()

    request = request_file(requester=cast.requester, epsilon="1", delta="1e-6")
    access_request_approve(actor=cast.approver, request_id=request.pk, reason="fine")
    access_request_approve(actor=cast.second_approver, request_id=request.pk, reason="also fine")
    request.refresh_from_db()
    budget_spend(
        request=request,
        job=None,
        epsilon=Decimal("0.75"),
        delta=Decimal("1e-6"),
        mechanism="mst",
        accountant={"rho": 0.01},
        actor=None,
    )

    events = actions_since(start)
    approvals = list(Approval.objects.order_by("id"))
    entries = {entry.kind: entry for entry in BudgetEntry.objects.all()}
    assert [action for action, *_ in events] == [
        "request.create",
        "request.submit",
        "approval.approve",
        "approval.approve",
        "budget.reserve",
        "request.approve",
        "budget.spend",
        "budget.release",
    ]
    create, submit, first, second, reserve, approve, spend, release = events
    assert create[1] == "requester" and create[2] is None
    assert create[3]["state"] == "draft" and create[3]["epsilon"] == "1" and create[3]["dataset"] == "adult"
    assert submit[1:] == ("requester", {"state": "draft"}, {"state": "submitted"})
    assert first[1:] == ("approver", None, {"request": request.pk, "decision": "approve", "reason": "fine"})
    assert second[1] == "second_approver"
    assert reserve[3] == {
        "dataset": "adult",
        "request": request.pk,
        "job": None,
        "epsilon": "1",
        "delta": "0.000001",
        "mechanism": "",
    }
    assert approve[1:] == (
        "second_approver",
        {"state": "submitted"},
        {"state": "approved", "approvers": 2, "reserved_epsilon": "1", "reserved_delta": "0.000001"},
    )
    assert spend[1] == "system" and spend[3]["epsilon"] == "0.75" and spend[3]["mechanism"] == "mst"
    assert release[3]["epsilon"] == "0.25" and release[3]["delta"] == "0"
    objects = AuditEvent.objects.filter(id__gt=start).values_list("object_type", "object_id")
    assert list(objects) == [
        ("datarequest", str(request.pk)),
        ("datarequest", str(request.pk)),
        ("approval", str(approvals[0].pk)),
        ("approval", str(approvals[1].pk)),
        ("budgetentry", str(entries["reserve"].pk)),
        ("datarequest", str(request.pk)),
        ("budgetentry", str(entries["spend"].pk)),
        ("budgetentry", str(entries["release"].pk)),
    ]
    assert audit_log_verify().ok


@pytest.mark.django_db
def test_rejection_and_withdrawal_are_recorded_with_their_reasons(workflow):
    cast = workflow
    rejected = request_file(requester=cast.requester)
    withdrawn = request_file(requester=cast.requester)
    start = AuditEvent.objects.order_by("id").last().id

    access_request_reject(actor=cast.approver, request_id=rejected.pk, reason="too much ε")
    access_request_withdraw(actor=cast.requester, request_id=withdrawn.pk, reason="not needed")

    assert actions_since(start) == [
        ("approval.reject", "approver", None, {"request": rejected.pk, "decision": "reject", "reason": "too much ε"}),
        ("request.reject", "approver", {"state": "submitted"}, {"state": "rejected", "reason": "too much ε"}),
        ("request.withdraw", "requester", {"state": "submitted"}, {"state": "withdrawn", "reason": "not needed"}),
    ]
    assert audit_log_verify().ok


@pytest.mark.django_db
def test_withdrawing_an_approved_request_records_the_release_of_its_reservation(workflow):
    cast = workflow
    PurposeFactory(name="quick", approvals_required=1)
    request = request_file(requester=cast.requester, purpose_name="quick", epsilon="2")
    access_request_approve(actor=cast.approver, request_id=request.pk)
    start = AuditEvent.objects.order_by("id").last().id

    access_request_withdraw(actor=cast.requester, request_id=request.pk)

    events = actions_since(start)
    assert [(action, before) for action, _, before, _ in events] == [
        ("request.withdraw", {"state": "approved"}),
        ("budget.release", None),
    ]
    assert events[1][3]["epsilon"] == "2"


@pytest.mark.django_db
def test_a_refused_action_writes_no_event(workflow):
    from core.errors import FourEyesError

    cast = workflow
    request = request_file(requester=cast.requester)
    count = AuditEvent.objects.count()
    with pytest.raises(FourEyesError):
        access_request_approve(actor=cast.requester, request_id=request.pk)
    assert AuditEvent.objects.count() == count
    request.refresh_from_db()
    assert request.state == RequestState.SUBMITTED


# --- concurrency -----------------------------------------------------------------------------


def append_concurrently(n_threads: int) -> list[BaseException]:
    barrier = threading.Barrier(n_threads)
    errors: list[BaseException] = []

    def append(number: int) -> None:
        try:
            barrier.wait(timeout=30)
            audit_event_record(
                actor=None,
                action="concurrent.append",
                object_type="thread",
                object_id=str(number),
                after={"thread": number},
            )
        except BaseException as error:  # collected and asserted on by the test
            errors.append(error)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=append, args=(number,)) for number in range(n_threads)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    return errors


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("existing", [0, 3], ids=["empty-log", "existing-log"])
def test_concurrent_appends_never_fork_the_chain(existing):
    """Every thread has its own connection; the head row's lock serialises the appends."""
    n_threads = 24
    record_events(existing)

    errors = append_concurrently(n_threads)

    assert errors == []
    events = list(AuditEvent.objects.order_by("id"))
    assert [event.id for event in events] == list(range(1, existing + n_threads + 1))
    assert len({event.prev_hash for event in events}) == len(events)  # no two events share a predecessor
    assert sorted(int(e.object_id) for e in events if e.action == "concurrent.append") == list(range(n_threads))
    result = audit_log_verify()
    assert (result.ok, result.events_checked) == (True, existing + n_threads)
    assert AuditChainHead.objects.get().length == existing + n_threads
