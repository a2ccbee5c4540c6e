"""The reapers are scheduled by `synthgate init`, like the drift sweep, and a tick does nothing when
every job and audit is alive."""

from __future__ import annotations

import pytest
from django_celery_beat.models import PeriodicTask

from audits.tasks import audit_runs_reap_stale
from synth_engine.models import GenerationJob, JobStatus
from synth_engine.tasks import generation_jobs_reap_stale
from tests.governance.test_cli import synthgate
from tests.jobs.conftest import approved_request_create

pytestmark = pytest.mark.django_db


def test_init_registers_both_reapers_with_beat_once(settings):
    settings.SYNTHGATE_REAPER_TICK_SECONDS = 60
    synthgate("init")
    synthgate("init")

    tasks = {task.task: task for task in PeriodicTask.objects.filter(task__contains="reap")}
    assert set(tasks) == {"synth_engine.tasks.generation_jobs_reap_stale", "audits.tasks.audit_runs_reap_stale"}
    for task in tasks.values():
        assert task.enabled
        assert (task.interval.every, task.interval.period) == (60, "seconds")


def test_a_reaper_tick_ends_nothing_that_is_alive(cast, adult_schema):
    job = GenerationJob.objects.create(
        request=approved_request_create(cast, adult_schema), generator="mst", status=JobStatus.QUEUED
    )
    GenerationJob.objects.filter(pk=job.pk).update(celery_task_id="queued-in-the-broker")

    assert generation_jobs_reap_stale.apply().get() == []
    assert audit_runs_reap_stale.apply().get() == []
    assert GenerationJob.objects.get(pk=job.pk).status == JobStatus.QUEUED
