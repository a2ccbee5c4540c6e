"""Starting a generation job without waiting for it: for the dashboard and `synthgate job run`.

With a broker the service queues the job and the caller returns at once. Without one (the
embedded default) Celery runs tasks in-process and eagerly, so the caller would wait for the
whole job and its audit; instead the service runs in a background thread and the caller
returns as soon as the job row is committed, then shows live progress (a page that polls,
the CLI's progress bars).
"""

from __future__ import annotations

import logging
import threading
from typing import Any

from django.conf import settings
from django.contrib.auth.models import User
from django.db import connections, transaction

from core.context import channel
from synth_engine.models import GenerationJob
from synth_engine.services import generation_job_start

logger = logging.getLogger(__name__)
COMMIT_WAIT_SECONDS = 60


def runs_in_background() -> bool:
    """Whether the dashboard starts jobs in a thread (by default: when there is no broker)."""
    return bool(settings.SYNTHGATE_DASHBOARD_BACKGROUND_JOBS)


def runs_in_process() -> bool:
    """No broker: tasks run eagerly, in this process."""
    return bool(settings.CELERY_TASK_ALWAYS_EAGER)


def job_start(*, actor: User, request_id: int, background: bool, channel_name: str) -> GenerationJob:
    """Start the request's job through the service; errors reach the caller either way.

    With ``background`` the service runs in a thread and this returns once the job row is
    committed (the job and its audit go on in the thread).
    """
    if not background:
        return generation_job_start(actor=actor, request_id=request_id)
    committed = threading.Event()
    outcome: dict[str, Any] = {}

    def run() -> None:
        try:
            with channel(channel_name), transaction.atomic():
                # Registered before the service's own callback, so it fires first: the page
                # is released when the job row commits, before the in-process job runs.
                transaction.on_commit(committed.set)
                outcome["job"] = generation_job_start(actor=actor, request_id=request_id)
        except Exception as error:  # reported to the page if it is still waiting, logged otherwise
            outcome.setdefault("error", error)
            if committed.is_set():
                logger.exception("Background generation for request %s failed", request_id)
        finally:
            committed.set()
            connections.close_all()

    threading.Thread(target=run, name=f"generation-request-{request_id}", daemon=True).start()
    committed.wait(timeout=COMMIT_WAIT_SECONDS)
    if "job" not in outcome and "error" in outcome:
        raise outcome["error"]
    if "job" not in outcome:
        raise TimeoutError(f"The job for request #{request_id} did not start within {COMMIT_WAIT_SECONDS} s.")
    return outcome["job"]
