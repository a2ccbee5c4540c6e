"""The queue itself, with a real Celery worker process against this machine's Redis."""

from __future__ import annotations

import signal
import time

import pytest

from governance.models import BudgetEntry, EntryKind
from synth_engine.models import GenerationJob, JobStatus
from synth_engine.services import generation_job_start
from tests.jobs.conftest import approved_request_create
from tests.jobs.worker import celery_worker, pool_children

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.worker]


def _wait(job_id: int, condition, timeout_seconds: float = 180) -> GenerationJob:
    deadline = time.monotonic() + timeout_seconds
    while time.monotonic() < deadline:
        job = GenerationJob.objects.get(pk=job_id)
        if condition(job):
            return job
        time.sleep(0.1)
    raise AssertionError(f"job {job_id} never reached the expected state; last: {job.status}/{job.phase}")


def test_a_real_worker_moves_a_job_through_the_service(cast, adult_schema):
    request = approved_request_create(cast, adult_schema)
    with celery_worker():
        job = generation_job_start(actor=cast.requester, request_id=request.pk)
        job = _wait(job.pk, lambda j: j.is_terminal)

    assert job.status == JobStatus.SUCCEEDED, job.error
    assert job.celery_task_id
    assert BudgetEntry.objects.filter(request=request, kind=EntryKind.SPEND).count() == 1
    request.refresh_from_db()
    assert request.state in ("auditing", "ready", "blocked")  # the worker audits next


def test_sigkill_of_the_worker_mid_job_ends_terminal_with_exactly_one_spend(cast, adult_schema):
    # The whole 48,842-row sample takes seconds to fit, so the kill lands while the job trains.
    from governance.services import dataset_register
    from tests.conftest import SAMPLE_DATA

    dataset_register(
        actor=cast.steward,
        name="adult",
        path=SAMPLE_DATA / "adult.csv.gz",
        filename="adult.csv.gz",
        epsilon_cap="10",
        delta_cap="1e-5",  # below 1/n for 48,842 rows (implausible caps are refused)
        schema=adult_schema,
    )
    request = approved_request_create(cast, adult_schema, epsilon="3")
    with celery_worker() as worker:
        job = generation_job_start(actor=cast.requester, request_id=request.pk)
        _wait(job.pk, lambda j: j.phase == "training")
        children = pool_children(worker)
        assert children, "the prefork worker has no pool process"
        for child in children:
            child.send_signal(signal.SIGKILL)
        job = _wait(job.pk, lambda j: j.is_terminal, timeout_seconds=120)

    # The task is redelivered (acks_late + reject_on_worker_lost); the service sees the data was
    # already touched and ends the job instead of training (and charging) a second time.
    print(f"after SIGKILL: status={job.status} attempts={job.attempts} error={job.error!r}")
    assert job.status in (JobStatus.FAILED, JobStatus.SUCCEEDED)
    assert BudgetEntry.objects.filter(request=request, kind=EntryKind.SPEND).count() == 1
    if job.status == JobStatus.FAILED:
        assert "lost" in job.error
    assert job.attempts >= 1
