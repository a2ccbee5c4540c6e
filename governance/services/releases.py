"""The release gate, downloads and revocation.

A request is released only when its approvals are complete, its latest audit passed (or a
second approver accepted the risk of a failed one), and the audit's datasheet is signed.
Every refusal names the unmet condition.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from django.conf import settings
from django.contrib.auth.models import User
from django.db import transaction
from django.utils import timezone

from core.context import current_channel
from core.errors import ConflictError, NotFoundError, PermissionDeniedError
from core.limits import text_checked
from governance.models import DataRequest, Decision, Download, DownloadKind, Release, RequestState, Role
from governance.permissions import request_visible_to, user_has_role
from governance.services.audit_log import audit_event_record
from governance.services.requests import access_request_lock, request_transition


def release_conditions(*, request: DataRequest) -> list[str]:
    """The unmet release conditions of a request (empty when it may be released)."""
    from audits.models import AuditStatus

    unmet = []
    approvers = request.approvals.filter(decision=Decision.APPROVE).values("approver").distinct().count()
    if approvers < request.purpose.approvals_required:
        unmet.append(f"approvals incomplete: {approvers} of {request.purpose.approvals_required} distinct approvers")
    run = request.audit_runs.order_by("-created_at", "-id").first()
    if run is None:
        unmet.append("no audit has run on the synthetic data")
    elif run.status != AuditStatus.PASSED and not run.risk_acceptances.exists():
        unmet.append(
            f"the audit did not pass ({run.status}; failed checks: {', '.join(run.failed_checks) or 'none'}) "
            "and no approver accepted the risk"
            + (" — an inconclusive audit cannot be accepted" if run.status == AuditStatus.INCONCLUSIVE else "")
        )
    elif not hasattr(run, "datasheet"):
        unmet.append("the audit's datasheet is not signed")
    if request.state != RequestState.READY:
        unmet.append(f"the request is {request.state!r}, not 'ready'")
    return unmet


def release_create(*, actor: User, request_id: int) -> Release:
    """Release a ready request's synthetic version with its signed datasheet, until the purpose's expiry."""

    with transaction.atomic():
        request = access_request_lock(request_id)
        if not request_visible_to(actor, request):
            raise NotFoundError(f"No request #{request_id}.")
        if not user_has_role(actor, Role.STEWARD, Role.APPROVER):
            raise PermissionDeniedError("Only a steward or an approver can release synthetic data.")
        unmet = release_conditions(request=request)
        if unmet:
            raise ConflictError(
                f"Request #{request.pk} cannot be released: {'; '.join(unmet)}.", extra={"unmet_conditions": unmet}
            )
        run = request.audit_runs.order_by("-created_at", "-id").first()
        release = Release.objects.create(
            request=request,
            version=run.version,
            audit_run=run,
            datasheet=run.datasheet,
            released_by=actor,
            expires_at=timezone.now() + timedelta(days=request.purpose.release_days),
        )
        audit_event_record(
            actor=actor,
            action="release.create",
            obj=release,
            after={
                "request": request.pk,
                "version": run.version_id,
                "datasheet_sha256": run.datasheet.sha256,
                "expires_at": release.expires_at,
            },
        )
        request_transition(
            request=request, target=RequestState.RELEASED, actor=actor, action="release", extra={"release": release.pk}
        )
        return release


def release_download(*, actor: User, release_id: int, kind: str) -> Path:
    """The path of a release's synthetic file or datasheet; every download is logged."""
    from governance.selectors import release_get

    with transaction.atomic():
        release = release_get(user=actor, release_id=release_id)
        if release.revoked_at is not None:
            raise ConflictError(
                f"Release #{release.pk} was revoked on {release.revoked_at:%Y-%m-%d}: {release.revoke_reason}",
                extra={"revoked_at": release.revoked_at.isoformat()},
            )
        if release.expires_at <= timezone.now():
            raise ConflictError(
                f"Release #{release.pk} expired on {release.expires_at:%Y-%m-%d}.",
                extra={"expires_at": release.expires_at.isoformat()},
            )
        if kind not in DownloadKind.values:
            raise NotFoundError(f"Nothing called {kind!r} to download; choose data or datasheet.")
        download = Download.objects.create(release=release, user=actor, kind=kind, channel=current_channel())
        audit_event_record(
            actor=actor, action="release.download", obj=download, after={"release": release.pk, "kind": kind}
        )
    key = release.version.storage_key if kind == DownloadKind.DATA else release.datasheet.storage_key
    return Path(settings.DATA_DIR) / key


def release_revoke(*, actor: User, release_id: int, reason: str) -> Release:
    """Stop all further downloads of a release."""
    from core.errors import ValidationError

    if not reason or not reason.strip():
        raise ValidationError("A reason is required to revoke a release.", extra={"field": "reason"})
    reason = text_checked(reason, field="reason")
    if not user_has_role(actor, Role.STEWARD, Role.APPROVER):
        raise PermissionDeniedError("Only a steward or an approver can revoke a release.")
    with transaction.atomic():
        release = Release.objects.select_related("request").filter(pk=release_id).first()
        if release is None:
            raise NotFoundError(f"No release #{release_id}.")
        request = access_request_lock(release.request_id)
        release = Release.objects.select_for_update().get(pk=release_id)
        if release.revoked_at is not None:
            raise ConflictError(f"Release #{release.pk} is already revoked.")
        release.revoked_at, release.revoked_by, release.revoke_reason = timezone.now(), actor, reason
        release.save(update_fields=["revoked_at", "revoked_by", "revoke_reason", "updated_at"])
        audit_event_record(actor=actor, action="release.revoke", obj=release, after={"reason": reason})
        request.decision_reason = reason
        request_transition(
            request=request,
            target=RequestState.REVOKED,
            actor=actor,
            action="revoke",
            extra={"release": release.pk, "reason": reason},
        )
        return release
