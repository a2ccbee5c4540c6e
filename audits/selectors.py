"""Permission-aware reads of audit runs and datasheets.

A run made for a request is visible when the request is; an external or request-less run
is visible to stewards, approvers and auditors.
"""

from __future__ import annotations

from django.contrib.auth.models import User
from django.db.models import Q, QuerySet

from audits.models import AuditRun
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
