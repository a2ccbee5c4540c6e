"""Celery tasks: thin wrappers over audits.services."""

from __future__ import annotations

from celery import shared_task


@shared_task(bind=True, acks_late=True, reject_on_worker_lost=True, max_retries=3)
def audit_run_after_job(self, job_id: int) -> str:
    """Audit the output of a finished generation job (safe to deliver twice)."""
    from audits.services import audit_run_for_job
    from core.context import channel

    with channel("worker"):
        run = audit_run_for_job(job_id=job_id)
    return run.status
