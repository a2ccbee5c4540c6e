"""Permission-aware reads of audit runs, datasheets and releases.

A run made for a request is visible when the request is; an external or request-less run
is visible to stewards, approvers and auditors.
"""

from __future__ import annotations

from django.contrib.auth.models import User
from django.db.models import Q, QuerySet

from audits.models import AuditRun, Release
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
