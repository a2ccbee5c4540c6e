"""Permission-aware reads of audit runs, datasheets and releases, and a release's exceptions.

A run made for a request is visible when the request is; an external or request-less run
is visible to stewards, approvers and auditors.
"""

from __future__ import annotations

from typing import Any

from django.contrib.auth.models import User
from django.db.models import Q, QuerySet

from audits.models import AuditRun, AuditStatus, Release
from audits.recipient import reads_real_diagnostics, recipient_threshold, recipient_value
from core.errors import NotFoundError
from governance.models import Role
from governance.permissions import user_has_role
from governance.selectors import request_list


def audit_run_list(*, user: User) -> QuerySet[AuditRun]:
    visible = Q(request__in=request_list(user=user).values("pk"))
    if user_has_role(user, Role.STEWARD, Role.APPROVER, Role.AUDITOR):
        visible |= Q(request__isnull=True)
    return AuditRun.objects.filter(visible).select_related(
        "version", "version__dataset", "request", "train_version", "holdout_version"
    )


def audit_run_get(*, user: User, run_id: int) -> AuditRun:
    run = audit_run_list(user=user).prefetch_related("checks").filter(pk=run_id).first()
    if run is None:
        raise NotFoundError(f"No audit run #{run_id}.")
    return run


def release_list(*, user: User) -> QuerySet[Release]:
    """Releases of the requests the user may see."""
    visible = request_list(user=user).values("pk")
    return Release.objects.filter(request__in=visible).select_related(
        "request", "version", "datasheet", "released_by", "revoked_by"
    )


def release_get(*, user: User, release_id: int) -> Release:
    release = release_list(user=user).filter(pk=release_id).first()
    if release is None:
        raise NotFoundError(f"No release #{release_id}.")
    return release


def released_despite_failed_checks(release: Release) -> bool:
    """Whether the release went out on an audit that did not pass (an accepted risk): an exception."""
    return release.audit_run.status != AuditStatus.PASSED


def release_exceptions(*, release: Release, user: User | None) -> list[dict[str, Any]]:
    """The failed checks a release went out with, each with who accepted it, when, and the reason for it.

    One row per accepted check, in the order the acceptances were made. The check's value is exact for
    stewards, approvers and auditors (``user`` None: an internal reader such as the compliance report)
    and coarsened to two decimals for anyone else (``audits.recipient``); thresholds and directions are
    policy, and the reasons are the approver's words, not statistics of the real rows.
    """
    if not released_despite_failed_checks(release):
        return []
    run = release.audit_run
    exact = user is None or reads_real_diagnostics(user)
    checks = {check.name: check for check in run.checks.all()}
    acceptances = sorted(run.risk_acceptances.all(), key=lambda acceptance: (acceptance.created_at, acceptance.pk))
    rows = []
    for acceptance in acceptances:
        for name in acceptance.failed_checks:
            check = checks.get(name)
            value = None if check is None else check.value if exact else recipient_value(check, check.value)
            rows.append(
                {
                    "check": name,
                    "category": getattr(check, "category", ""),
                    "value": value,
                    "threshold": getattr(check, "threshold", None) if exact else recipient_threshold(check),
                    "direction": getattr(check, "direction", ""),
                    "approver": acceptance.approver.username,
                    "accepted_at": acceptance.created_at,
                    "reason": (acceptance.reasons or {}).get(name) or acceptance.reason,
                }
            )
    return rows
