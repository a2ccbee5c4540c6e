"""Every tamper from issue 12, done for real against a PostgreSQL cluster with the production role
split, and each one now detected by `log verify` (and, for the ledger, by `budget show`).

The application connects as ``synthgate_app`` (INSERT and SELECT only on the log and the ledger);
an insider with the owner role can disable triggers and rewrite rows, but cannot sign checkpoints.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from decimal import Decimal

import psycopg2
import pytest

from governance.models import AuditChainHead, AuditEvent
from governance.services import audit_log_verify, budget_balance, budget_spend
from governance.services.audit_log import event_hash
from tests.faults.cluster import APP, OWNER
from tests.governance.factories import cast_create
from tests.governance.test_cli import synthgate
from tests.jobs.conftest import approved_request_create

pytestmark = pytest.mark.fault


@pytest.fixture
def history(app_database, adult_schema):
    """A log of a few dozen events written by the application: three approved requests, one spent."""
    cast = cast_create()
    requests = [approved_request_create(cast, adult_schema, seed=seed) for seed in (1, 2, 3)]
    budget_spend(
        request=requests[0],
        job=None,
        epsilon=Decimal("1"),
        delta=Decimal("0.000001"),
        mechanism="mst",
        accountant={},
        actor=None,
    )
    verified = audit_log_verify(grace_seconds=0)
    assert verified.ok, verified.problems
    assert verified.checkpoint.length == AuditEvent.objects.count()  # every append was signed
    return requests


def _sql(cluster, database, user, *statements, params=None):
    connection = psycopg2.connect(host="127.0.0.1", port=cluster.port, user=user, dbname=database)
    connection.autocommit = False
    try:
        cursor = connection.cursor()
        for statement in statements:
            cursor.execute(statement, params)
        connection.commit()
    finally:
        connection.close()


def _as_owner_without_triggers(cluster, database, *statements):
    disable = [
        f"ALTER TABLE {table} DISABLE TRIGGER USER" for table in ("governance_auditevent", "governance_budgetentry")
    ]
    enable = [
        f"ALTER TABLE {table} ENABLE TRIGGER USER" for table in ("governance_auditevent", "governance_budgetentry")
    ]
    _sql(cluster, database, OWNER, *disable, *statements)
    _sql(cluster, database, OWNER, *enable)  # after the commit: deferred foreign-key checks are pending until then


def _rehash_from(cluster, database, first_id: int) -> None:
    """What a careful insider does after a change: recompute every later hash and move the head."""
    events = list(AuditEvent.objects.filter(id__gte=first_id).order_by("id"))
    prev = AuditEvent.objects.get(id=first_id - 1).hash if first_id > 1 else "0" * 64
    updates = []
    for event in events:
        digest = event_hash(
            prev_hash=prev,
            event_id=event.id,
            created_at=event.created_at,
            actor_name=event.actor_name,
            channel=event.channel,
            action=event.action,
            object_type=event.object_type,
            object_id=event.object_id,
            before=event.before,
            after=event.after,
        )
        updates.append(
            f"UPDATE governance_auditevent SET prev_hash = '{prev}', hash = '{digest}' WHERE id = {event.id}"
        )
        prev = digest
    # Two passes through a temporary value: the hash column is unique.
    temporary = [f"UPDATE governance_auditevent SET hash = 'tmp-' || id WHERE id >= {first_id}"]
    head = f"UPDATE governance_auditchainhead SET last_hash = '{prev}', length = {events[-1].id}"
    _as_owner_without_triggers(cluster, database, *temporary, *updates, head)


def test_an_inserted_event_with_a_recomputed_hash_is_not_covered_by_a_checkpoint(cluster, app_database, history):
    head = AuditChainHead.objects.get()
    created_at = datetime.now(UTC)
    after = {"dataset": "adult", "request": history[1].pk, "note": "forged"}
    digest = event_hash(
        prev_hash=head.last_hash,
        event_id=head.length + 1,
        created_at=created_at,
        actor_name="system",
        channel="worker",
        action="request.withdraw",
        object_type="datarequest",
        object_id=str(history[1].pk),
        before=None,
        after=after,
    )
    # The application role itself may append: it is the role that appends.
    _sql(
        cluster,
        app_database,
        APP,
        "INSERT INTO governance_auditevent (id, created_at, actor_name, channel, action, object_type, object_id, "
        "before, after, prev_hash, hash) VALUES (%(id)s, %(at)s, 'system', 'worker', 'request.withdraw', "
        "'datarequest', %(object)s, NULL, %(after)s, %(prev)s, %(hash)s)",
        "UPDATE governance_auditchainhead SET length = %(id)s, last_hash = %(hash)s",
        params={
            "id": head.length + 1,
            "at": created_at,
            "object": str(history[1].pk),
            "after": json.dumps(after),
            "prev": head.last_hash,
            "hash": digest,
        },
    )

    result = audit_log_verify(grace_seconds=0)

    assert not result.ok
    assert result.first_broken_id == head.length + 1
    assert "not covered by any signed checkpoint" in result.reason


def test_a_cut_tail_with_the_head_rewound_is_caught_by_the_latest_checkpoint(cluster, app_database, history):
    length = AuditEvent.objects.count()
    cut_from = length - 9
    prev = AuditEvent.objects.get(id=cut_from - 1).hash
    _as_owner_without_triggers(
        cluster,
        app_database,
        f"DELETE FROM governance_auditevent WHERE id >= {cut_from}",
        f"UPDATE governance_auditchainhead SET length = {cut_from - 1}, last_hash = '{prev}'",
    )
    assert AuditEvent.objects.count() == length - 10

    result = audit_log_verify()

    assert not result.ok
    assert result.first_broken_id == cut_from
    assert f"records {length} events, but the log ends at event {cut_from - 1}" in result.reason


def test_a_rewritten_middle_event_with_every_later_hash_recomputed_is_named(cluster, app_database, history):
    middle = AuditEvent.objects.count() // 2
    _as_owner_without_triggers(
        cluster,
        app_database,
        f"UPDATE governance_auditevent SET actor_name = 'someone-else' WHERE id = {middle}",
    )
    _rehash_from(cluster, app_database, middle)

    result = audit_log_verify()

    assert not result.ok
    assert result.first_broken_id == middle
    assert f"event {middle} disagrees with its signed checkpoint" in result.reason


def test_a_forged_release_row_is_caught_by_log_verify_and_budget_show(cluster, app_database, history):
    spent = history[0]
    before = budget_balance(dataset=spent.dataset).epsilon_remaining
    _sql(
        cluster,
        app_database,
        APP,
        "INSERT INTO governance_budgetentry (dataset_id, request_id, kind, epsilon, delta, mechanism, accountant, "
        "note, created_at) VALUES (%(dataset)s, %(request)s, 'release', 1, 0, '', '{}', 'forged', now())",
        params={"dataset": spent.dataset_id, "request": spent.pk},
    )
    assert budget_balance(dataset=spent.dataset).epsilon_remaining == before + 1  # what the forger wanted

    result = audit_log_verify()
    shown = synthgate("budget", "show", "adult", "--as", "steward", "--json")

    assert not result.ok
    assert any("(release ε=1 on request" in problem and "no audit event" in problem for problem in result.problems)
    assert shown.code == 1
    assert "does not match the audit log" in shown.message


def test_the_application_role_cannot_change_or_unarm_the_log_and_ledger(cluster, app_database, history):
    for statement in (
        "UPDATE governance_budgetentry SET epsilon = 0",
        "DELETE FROM governance_auditevent WHERE id = 1",
        "TRUNCATE governance_budgetentry",
        "ALTER TABLE governance_budgetentry DISABLE TRIGGER ALL",
    ):
        with pytest.raises(psycopg2.errors.InsufficientPrivilege):
            _sql(cluster, app_database, APP, statement)
    assert audit_log_verify().ok


def test_an_owner_who_disables_the_triggers_to_alter_a_ledger_row_is_caught(cluster, app_database, history):
    spend_id = history[0].budget_entries.get(kind="spend").pk
    _as_owner_without_triggers(
        cluster, app_database, f"UPDATE governance_budgetentry SET epsilon = 0.5 WHERE id = {spend_id}"
    )

    result = audit_log_verify()

    assert not result.ok
    assert any(f"ledger entry #{spend_id}" in problem and "altered" in problem for problem in result.problems)
    assert synthgate("budget", "show", "adult", "--as", "steward").code == 1


def test_the_signed_reports_carry_the_latest_checkpoint(cluster, app_database, history):
    from datetime import date, timedelta

    from django.contrib.auth import get_user_model

    from audits.compliance.build import compliance_report_build
    from audits.facts import _audit_log_checkpoint

    length = AuditEvent.objects.count()
    today = date.today()
    steward = get_user_model().objects.get(username="steward")
    report = compliance_report_build(
        actor=steward, date_from=today - timedelta(days=7), date_to=today + timedelta(days=1)
    )

    carried = report["audit_log"]["checkpoint"]
    assert report["audit_log"]["ok"]
    assert (carried["length"], carried["hash"]) == (length, AuditEvent.objects.get(id=length).hash)
    assert _audit_log_checkpoint()["length"] >= length  # the datasheet's facts
