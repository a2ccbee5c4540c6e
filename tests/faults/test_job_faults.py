"""Faults under a running job, injected for real: PostgreSQL restarted under the worker, the whole
worker killed, the broker down at start, an audit's worker killed. Each ends in a terminal state
with an exact ledger (docs/faults.md).

The worker is made to wait at a chosen point by a table lock the test holds (the spend's INSERT
into the ledger, before the data is touched; the output versions' INSERT, after), so the fault
lands at the same place on a busy machine as on a quiet one.
"""

from __future__ import annotations

import time
from decimal import Decimal

import psycopg2
import pytest
from django.db import DatabaseError, connection

from audits.models import AuditRun, AuditStatus
from core.errors import ServiceUnavailableError
from governance.models import AuditEvent, BudgetEntry, DataRequest, EntryKind, RequestState
from governance.services import audit_log_verify, budget_balance
from governance.services.budget import row_estimate_epsilon
from synth_engine.models import GenerationJob, JobStatus
from synth_engine.services import generation_job_cancel, generation_job_start, generation_jobs_reap
from tests.faults.cluster import free_port, wait_for
from tests.governance.factories import cast_create
from tests.jobs.conftest import approved_request_create
from tests.jobs.worker import _reset_connections, celery_worker, worker_kill

pytestmark = [pytest.mark.fault, pytest.mark.worker]

TIMEOUT_SECONDS = 3
FAST = {
    "SYNTHGATE_HEARTBEAT_SECONDS": "1",
    "SYNTHGATE_HEARTBEAT_TIMEOUT_SECONDS": str(TIMEOUT_SECONDS),
    "SYNTHGATE_JOB_RETRY_BACKOFF_SECONDS": "1",
    "SYNTHGATE_DB_RECONNECT_SECONDS": "30",
    "SYNTHGATE_AUDIT_TARGETS": "200",
}
BEFORE_TOUCH = "governance_budgetentry"  # the spend is the job's first data access
AFTER_TOUCH = "governance_datasetversion"  # the outputs are written after training


@pytest.fixture(autouse=True)
def _fast_liveness(settings):
    settings.SYNTHGATE_HEARTBEAT_TIMEOUT_SECONDS = TIMEOUT_SECONDS
    settings.SYNTHGATE_AUDIT_TARGETS = 200


def _fresh(query):
    """Run a read, reconnecting once if PostgreSQL was restarted under this process."""
    try:
        return query()
    except DatabaseError:
        connection.close()
        return None


def _job(job_id: int) -> GenerationJob | None:
    return _fresh(lambda: GenerationJob.objects.get(pk=job_id))


def _terminal(job_id: int) -> GenerationJob | None:
    job = _job(job_id)
    return job if job is not None and job.is_terminal else None


class TableLock:
    """Hold a lock that makes the worker's INSERT into ``table`` wait (SELECTs still pass)."""

    def __init__(self, cluster, database: str, table: str) -> None:
        self.cluster, self.database, self.table = cluster, database, table
        self.connection = cluster.connect(database)
        self.connection.autocommit = False
        self.connection.cursor().execute(f"LOCK TABLE {table} IN SHARE ROW EXCLUSIVE MODE")

    def worker_waiting(self) -> bool:
        """True once a worker's INSERT into the locked table waits on the lock."""
        probe = self.cluster.connect(self.database)
        try:
            cursor = probe.cursor()
            cursor.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = %s AND wait_event_type = 'Lock' "
                "AND query LIKE %s",
                [self.database, f'INSERT INTO "{self.table}"%'],
            )
            return cursor.fetchone()[0] > 0
        finally:
            probe.close()

    def release(self) -> None:
        try:
            self.connection.rollback()
        except psycopg2.OperationalError:
            pass  # the lock went with a restarted server
        finally:
            self.connection.close()


def _ledger(request_id: int) -> dict[str, tuple[Decimal, Decimal]]:
    return {
        kind: (epsilon, delta)
        for kind, epsilon, delta in BudgetEntry.objects.filter(request_id=request_id).values_list(
            "kind", "epsilon", "delta"
        )
    }


def _request_state(request_id: int) -> str:
    return DataRequest.objects.get(pk=request_id).state


SPENT = (Decimal("1"), Decimal("0.000001"))


def _blocked_start(cluster, database, request, table):
    """Start the request's job with ``table`` locked; return once the worker waits to write it."""
    lock = TableLock(cluster, database, table)
    job = generation_job_start(actor=request.requester, request_id=request.pk)
    wait_for(lock.worker_waiting, timeout_seconds=120, what=f"the worker to wait on {table}")
    return job, lock


def _restart_under(cluster, job, lock) -> tuple[GenerationJob, float]:
    started = time.monotonic()
    cluster.restart()
    lock.release()
    job = wait_for(lambda: _terminal(job.pk), timeout_seconds=90, what="the job to end")
    return job, time.monotonic() - started


def test_database_restarts_and_a_down_broker_leave_every_job_terminal_with_an_exact_ledger(
    cluster, app_database, adult_schema
):
    from config.celery import app

    cast = cast_create()
    # Distinct seeds: equal outputs would be stored once, and the lock on new versions never met.
    before, after, unqueued = (approved_request_create(cast, adult_schema, seed=seed) for seed in (11, 12, 13))
    with celery_worker(extra_env=FAST, kill_on_exit=True, concurrency=2):
        # 1. PostgreSQL restarts while the job waits to record its spend: the data is untouched,
        #    so the job goes back to the queue and runs again after a backoff.
        job, lock = _blocked_start(cluster, app_database, before, BEFORE_TOUCH)
        assert GenerationJob.objects.get(pk=job.pk).data_touched_at is None
        first, first_seconds = _restart_under(cluster, job, lock)

        # 2. PostgreSQL restarts while the job writes its outputs: the data was touched, so the job
        #    ends failed on a fresh connection and the spend stands.
        job, lock = _blocked_start(cluster, app_database, after, AFTER_TOUCH)
        assert GenerationJob.objects.get(pk=job.pk).data_touched_at is not None
        second, second_seconds = _restart_under(cluster, job, lock)

        # 3. The broker is down when the job is started: a clear error at once, nothing spent, the
        #    request back to approved; started again once the broker is back, it runs.
        saved = {key: app.conf[key] for key in ("broker_url", "task_always_eager")}
        app.conf.update(broker_url=f"redis://127.0.0.1:{free_port()}/0")  # nothing listens there
        _reset_connections(app)
        refused_at = time.monotonic()
        try:
            with pytest.raises(ServiceUnavailableError, match="task queue cannot be reached"):
                generation_job_start(actor=unqueued.requester, request_id=unqueued.pk)
        finally:
            app.conf.update(**saved)
            _reset_connections(app)
        refused_seconds = time.monotonic() - refused_at
        refused = GenerationJob.objects.get(request=unqueued)
        assert (refused.status, _request_state(unqueued.pk)) == (JobStatus.FAILED, RequestState.APPROVED)
        assert _ledger(unqueued.pk) == {EntryKind.RESERVE: SPENT}
        third = generation_job_start(actor=unqueued.requester, request_id=unqueued.pk)
        third = wait_for(lambda: _terminal(third.pk), timeout_seconds=90, what="the restarted job to end")

    print(
        f"\nDB restart before touch: {first.status} (attempt {first.attempts}) {first_seconds:.1f} s after the restart"
        f"\nDB restart after touch: {second.status} {second_seconds:.1f} s after the restart"
        f"\nbroker down: refused in {refused_seconds:.1f} s; started again: {third.status}"
    )
    assert (first.status, first.attempts) == (JobStatus.SUCCEEDED, 2), first.error
    assert AuditEvent.objects.filter(action="job.retry", object_id=str(first.pk)).count() == 1
    assert _ledger(before.pk) == {EntryKind.RESERVE: SPENT, EntryKind.SPEND: SPENT}
    assert _request_state(before.pk) in (RequestState.AUDITING, RequestState.READY, RequestState.BLOCKED)

    assert second.status == JobStatus.FAILED
    assert "database connection was lost after the job had read the data" in second.error
    assert second.output_version_id is None
    assert _ledger(after.pk) == {EntryKind.RESERVE: SPENT, EntryKind.SPEND: SPENT}
    assert _request_state(after.pk) == RequestState.FAILED

    assert third.status == JobStatus.SUCCEEDED, third.error
    assert _ledger(unqueued.pk) == {EntryKind.RESERVE: SPENT, EntryKind.SPEND: SPENT}
    assert not GenerationJob.objects.filter(status__in=[JobStatus.QUEUED, JobStatus.RUNNING]).exists()
    assert budget_balance(dataset=before.dataset).epsilon_spent == Decimal("3") + row_estimate_epsilon()
    assert budget_balance(dataset=before.dataset).epsilon_reserved == 0
    assert audit_log_verify().ok


def test_a_killed_worker_leaves_no_job_or_audit_running(cluster, app_database, adult_schema):
    from audits.services import audit_run_on_demand, audit_runs_reap
    from tests.governance.factories import dataset_register_adult

    cast = cast_create()
    audited, touched = (approved_request_create(cast, adult_schema, seed=seed) for seed in (21, 22))
    dataset_register_adult(steward=cast.steward, name="adult-b", schema=adult_schema)
    untouched = approved_request_create(cast, adult_schema, dataset_name="adult-b", seed=23)
    with celery_worker(extra_env=FAST, kill_on_exit=True, concurrency=3) as worker:
        # An audit waiting to store its results, a job writing its outputs (data touched) and a job
        # about to record its spend (data untouched): then the whole worker dies.
        _, audit_lock = _blocked_start(cluster, app_database, audited, "audits_checkresult")
        touched_job, touched_lock = _blocked_start(cluster, app_database, touched, AFTER_TOUCH)
        untouched_job, untouched_lock = _blocked_start(cluster, app_database, untouched, BEFORE_TOUCH)
        run = AuditRun.objects.get(request=audited)
        assert run.status == AuditStatus.RUNNING
        worker_kill(worker)
        killed = time.monotonic()
        for lock in (audit_lock, touched_lock, untouched_lock):
            lock.release()

    assert GenerationJob.objects.get(pk=untouched_job.pk).status == JobStatus.RUNNING
    time.sleep(TIMEOUT_SECONDS + 0.5)
    cancelled = generation_job_cancel(actor=untouched.requester, job_id=untouched_job.pk)
    cancelled_seconds = time.monotonic() - killed
    reaped_jobs = generation_jobs_reap()
    reaped_runs = audit_runs_reap()
    reaped_seconds = time.monotonic() - killed
    assert generation_jobs_reap() == [] and audit_runs_reap() == []  # the next tick finds nothing

    touched_job.refresh_from_db()
    run.refresh_from_db()
    print(
        f"\nworker killed: cancel of the orphaned job {cancelled.status} {cancelled_seconds:.1f} s after the kill; "
        f"reaper: job {touched_job.status}, audit {run.status} {reaped_seconds:.1f} s after the kill "
        f"(heartbeat timeout {TIMEOUT_SECONDS} s in this test)"
    )
    assert cancelled.status == JobStatus.CANCELLED and "worker was gone" in cancelled.error
    assert _ledger(untouched.pk) == {EntryKind.RESERVE: SPENT, EntryKind.RELEASE: SPENT}
    assert _request_state(untouched.pk) == RequestState.FAILED

    assert [job.pk for job in reaped_jobs] == [touched_job.pk]
    assert touched_job.status == JobStatus.FAILED and "worker was lost" in touched_job.error
    assert _ledger(touched.pk) == {EntryKind.RESERVE: SPENT, EntryKind.SPEND: SPENT}
    assert _request_state(touched.pk) == RequestState.FAILED

    assert [r.pk for r in reaped_runs] == [run.pk]
    assert run.status == AuditStatus.ERROR and "worker running this audit was lost" in run.error
    assert _request_state(audited.pk) == RequestState.BLOCKED
    rerun = audit_run_on_demand(actor=cast.approver, version_id=run.version_id, seed=7)  # requesters may not
    assert rerun.status in (AuditStatus.PASSED, AuditStatus.FAILED, AuditStatus.INCONCLUSIVE)
    expected = RequestState.READY if rerun.status == AuditStatus.PASSED else RequestState.BLOCKED
    assert _request_state(audited.pk) == expected

    for dataset in (audited.dataset, untouched.dataset):
        assert budget_balance(dataset=dataset).epsilon_reserved == 0
    assert budget_balance(dataset=audited.dataset).epsilon_spent == Decimal("2") + row_estimate_epsilon()
    assert audit_log_verify().ok
