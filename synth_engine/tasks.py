"""Celery tasks: thin wrappers over synth_engine.services."""

from __future__ import annotations

from celery import shared_task


@shared_task(bind=True, acks_late=True, reject_on_worker_lost=True, max_retries=3)
def generation_job_execute(self, job_id: int) -> str:
    """Run one generation job; a redelivered task finds the job's state and does no double work."""
    from core.context import channel
    from synth_engine.services import generation_job_run

    with channel("worker"):
        job = generation_job_run(job_id=job_id)
    return job.status
