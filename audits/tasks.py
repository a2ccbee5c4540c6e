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


def audit_run_after_job_enqueue(job_id: int) -> None:
    """The job → audit hook (registered in audits.apps): queue the audit of a job that succeeded."""
    audit_run_after_job.delay(job_id)


@shared_task(bind=True, acks_late=True)
def audit_runs_reap_stale(self) -> list[int]:
    """The beat-scheduled reaper: end audit runs whose worker is gone (safe to run twice)."""
    from audits.services import audit_runs_reap
    from core.context import channel

    with channel("worker"):
        return [run.pk for run in audit_runs_reap()]


@shared_task(bind=True, acks_late=True, reject_on_worker_lost=True, max_retries=3)
def drift_audits_scheduled(self) -> dict[str, str]:
    """The beat-scheduled sweep: re-audit active releases of every dataset that is due (safe to run twice)."""
    from audits.services import drift_audits_due
    from core.context import channel

    with channel("worker"):
        outcomes = drift_audits_due()
    return {str(outcome.release.pk): outcome.verdict for outcome in outcomes}


@shared_task(bind=True, acks_late=True)
def audit_log_checkpoints_compact(self) -> dict[str, object]:
    """The daily beat entry: fold the audit log's older checkpoint objects into one signed segment
    (``synthgate log compact``); nothing to do where checkpoints are lines of a file. A refusal (an
    object that does not verify) fails the task, in the worker's log, and removes nothing."""
    from core.context import channel
    from governance.services.audit_log import audit_log_compact_checkpoints
    from governance.services.checkpoints import checkpoint_storage

    if checkpoint_storage() is None:
        return {"segment": None, "reason": "checkpoints are lines of a file"}
    with channel("worker"):
        result = audit_log_compact_checkpoints()
    return {"segment": result.segment, "checkpoints": result.checkpoints, "removed": result.removed}
