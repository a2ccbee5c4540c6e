"""Stand-ins for a job and its audit, made through the services, so release tests need no generation."""

from __future__ import annotations

from django.db import transaction
from django.utils import timezone

from audits.models import AuditKind, AuditRun, AuditStatus, CheckResult
from audits.services import datasheet_issue
from governance.models import DataRequest, RequestState
from governance.services import request_transition


def audited(request: DataRequest, *, failed_value: float | None = 0.31) -> AuditRun:
    """Move an approved request through generation and audit with a signed run on record.

    With ``failed_value`` the run failed ``tvd_1way`` with that value (threshold 0.1) and the request
    is blocked; with None the run passed and the request is ready.
    """
    failed = failed_value is not None
    final = RequestState.BLOCKED if failed else RequestState.READY
    with transaction.atomic():
        for target in (RequestState.GENERATING, RequestState.AUDITING, final):
            request_transition(request=request, target=target, actor=None, action=f"test_{target}")
    version = request.source_version
    run = AuditRun.objects.create(
        version=version,
        train_version=version,
        holdout_version=version,
        request=request,
        kind=AuditKind.GENERATION,
        status=AuditStatus.FAILED if failed else AuditStatus.PASSED,
        seed=1,
        failed_checks=["tvd_1way"] if failed else [],
        finished_at=timezone.now(),
    )
    CheckResult.objects.create(
        run=run,
        name="tvd_1way",
        category="fidelity",
        value=failed_value if failed else 0.04,
        threshold=0.1,
        direction="lower_is_better",
        passed=not failed,
    )
    datasheet_issue(run=run)  # a real signed report: the release gate verifies it
    return run
