"""Celery tasks: thin wrappers over synth_engine.services (imported in the body: services queue these)."""

from __future__ import annotations

from celery import shared_task
from django.conf import settings

from core.context import channel


@shared_task(bind=True, acks_late=True, reject_on_worker_lost=True)
def generation_job_execute(self, job_id: int) -> str:
    """Run one generation job; a redelivered task finds the job's state and does no double work.

    A job that lost its database connection before touching the data is retried with backoff
    (SYNTHGATE_JOB_RETRY_BACKOFF_SECONDS, doubling); when the retries are used up it ends failed
    and its reservation is released.
    """
    from synth_engine.services import JobRetryLaterError, generation_job_give_up, generation_job_run

    with channel("worker"):
        try:
            job = generation_job_run(job_id=job_id)
        except JobRetryLaterError as error:
            if self.request.retries >= settings.SYNTHGATE_JOB_RETRIES:
                reason = f"The database was lost {self.request.retries + 1} times before the data was read; "
                job = generation_job_give_up(job_id=job_id, reason=reason + "nothing was spent.")
                return job.status
            countdown = settings.SYNTHGATE_JOB_RETRY_BACKOFF_SECONDS * 2**self.request.retries
            raise self.retry(countdown=countdown, max_retries=settings.SYNTHGATE_JOB_RETRIES) from error
    return job.status


@shared_task(bind=True, acks_late=True)
def generation_jobs_reap_stale(self) -> list[int]:
    """The beat-scheduled reaper: end jobs whose worker is gone (safe to run twice)."""
    from synth_engine.services import generation_jobs_reap

    with channel("worker"):
        return [job.pk for job in generation_jobs_reap()]
