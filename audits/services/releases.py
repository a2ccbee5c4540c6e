"""The release gate, the release datasheet, downloads and revocation.

Release sits on the top floor of the domain apps, in audits, above governance and the engine: it
reads approvals (governance), the audit and its signed report (audits), and writes a ``Release``
plus its signed ``ReleaseDatasheet``. Nothing below imports this module.

A request is released only when its approvals are complete, its latest audit passed (or a
second approver accepted each failed check by name), and the audit report's signature verifies
cryptographically against the record. Every refusal names the unmet condition. At release the
recipient-safe release datasheet is rendered, signed with the release id and the synthetic
version's hash in its signed metadata, verified, and recorded in the same transaction.
"""

from __future__ import annotations

import hashlib
from datetime import timedelta

from django.conf import settings
from django.contrib.auth.models import User
from django.db import transaction
from django.utils import timezone

from audits import datasheets as sheets
from audits.facts import datasheet_facts
from audits.keys import signing_identity, trusted_certificates
from audits.models import AuditRun, AuditStatus, Datasheet, Download, DownloadKind, Release, ReleaseDatasheet
from audits.selectors import release_get
from audits.services.datasheets import signed_pdf_record
from core.context import current_channel
from core.errors import ConflictError, NotFoundError, PermissionDeniedError, ValidationError
from core.limits import text_checked
from governance.models import DataRequest, Decision, RequestState, Role
from governance.permissions import request_visible_to, user_has_role
from governance.services import audit_event_record, files_removed_on_error, request_transition
from governance.services.requests import access_request_lock
from governance.storage import Removable, StoredFile, version_storage


def release_conditions(*, request: DataRequest) -> list[str]:
    """The unmet release conditions of a request (empty when it may be released)."""
    unmet = []
    approvers = request.approvals.filter(decision=Decision.APPROVE).values("approver").distinct().count()
    if approvers < request.purpose.approvals_required:
        unmet.append(f"approvals incomplete: {approvers} of {request.purpose.approvals_required} distinct approvers")
    run = request.audit_runs.order_by("-created_at", "-id").first()
    if run is None:
        unmet.append("no audit has run on the synthetic data")
    elif run.status != AuditStatus.PASSED and not _every_failure_accepted(run):
        unmet.append(
            f"the audit did not pass ({run.status}; failed checks: {', '.join(run.failed_checks) or 'none'}) "
            "and no approver accepted the risk"
            + (" — an inconclusive audit cannot be accepted" if run.status == AuditStatus.INCONCLUSIVE else "")
        )
    else:
        unmet += audit_report_problems(run)
    if request.state != RequestState.READY:
        unmet.append(f"the request is {request.state!r}, not 'ready'")
    return unmet


def _every_failure_accepted(run: AuditRun) -> bool:
    accepted = {name for acceptance in run.risk_acceptances.all() for name in acceptance.failed_checks}
    return run.status == AuditStatus.FAILED and bool(accepted) and set(run.failed_checks) <= accepted


def audit_report_problems(run: AuditRun) -> list[str]:
    """Why the run's signed audit report does not verify (empty when it does): the gate's check."""
    sheet = Datasheet.objects.filter(run=run).first()
    if sheet is None:
        return ["the audit's report is not signed"]
    storage = version_storage()
    if not storage.exists(sheet.storage_key):
        return [f"the audit's signed report is missing from storage ({sheet.storage_key})"]
    report = sheets.verify_pdf(
        storage.read_bytes(sheet.storage_key),
        trusted_certs=trusted_certificates(),
        expected_sha256=sheet.sha256,
        expected_version_hash=run.version.content_hash,
    )
    return [] if report.ok else [f"the audit's signed report does not verify: {' '.join(report.problems)}"]


def release_create(*, actor: User, request_id: int) -> Release:
    """Release a ready request's synthetic version with a signed release datasheet, until the purpose's expiry."""
    with files_removed_on_error() as written, transaction.atomic():
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
        run = request.audit_runs.select_related("datasheet").order_by("-created_at", "-id").first()
        if run is None:  # release_conditions refuses a request with no audit; kept for the reader and mypy
            raise ConflictError(f"Request #{request.pk} has no audit run to release.")
        release = Release.objects.create(
            request=request,
            version=run.version,
            audit_run=run,
            datasheet=run.datasheet,
            released_by=actor,
            expires_at=timezone.now() + timedelta(days=request.purpose.release_days),
        )
        sheet = release_datasheet_issue(release=release, written=written)
        audit_event_record(
            actor=actor,
            action="release.create",
            obj=release,
            after={
                "request": request.pk,
                "version": run.version_id,
                "audit_report_sha256": run.datasheet.sha256,
                "datasheet_sha256": sheet.sha256,
                "expires_at": release.expires_at,
                "despite_failed_checks": run.status != AuditStatus.PASSED,
                "accepted_checks": sorted({n for a in run.risk_acceptances.all() for n in a.failed_checks}),
            },
        )
        request_transition(
            request=request, target=RequestState.RELEASED, actor=actor, action="release", extra={"release": release.pk}
        )
        return release


def release_datasheet_issue(*, release: Release, written: list[Removable]) -> ReleaseDatasheet:
    """Render the recipient-safe datasheet of ``release``, sign it naming the release, verify it, record it."""
    signed = sheets.sign_pdf(
        sheets.render_datasheet_pdf(datasheet_facts(release.audit_run, release=release)),
        signing_identity(),
        reason=f"Synthgate release #{release.pk} of request #{release.request_id}",
        location=settings.SYNTHGATE_ORGANISATION,
        version_hash=release.version.content_hash,
        release_id=str(release.pk),
    )
    report = sheets.verify_pdf(
        signed.pdf_bytes,
        trusted_certs=trusted_certificates(),
        expected_version_hash=release.version.content_hash,
        expected_release_id=str(release.pk),
    )
    if not report.ok:  # never hand out a datasheet the verifier would refuse
        raise ConflictError(f"The release datasheet did not verify after signing: {' '.join(report.problems)}")
    return signed_pdf_record(
        ReleaseDatasheet,
        signed,
        storage_key=f"datasheets/{release.version.dataset.name}/release-{release.pk}-{signed.sha256[:16]}.pdf",
        written=written,
        fields={"release": release},
        event={"release": release.pk},
    )


def release_download(*, actor: User, release_id: int, kind: str) -> StoredFile:
    """A release's synthetic file or release datasheet, to ``open("rb")``; refused once revoked or
    expired; logged."""
    with transaction.atomic():
        release = release_get(user=actor, release_id=release_id)
        release_check_active(release)
        if kind not in DownloadKind.values:
            raise NotFoundError(f"Nothing called {kind!r} to download; choose data or datasheet.")
        path, sha256 = _release_file(release, kind)
        download = Download.objects.create(release=release, user=actor, kind=kind, channel=current_channel())
        audit_event_record(
            actor=actor,
            action="release.download",
            obj=download,
            after={"release": release.pk, "kind": kind, "sha256": sha256},
        )
    return path


def release_check_active(release: Release) -> None:
    """Refuse anything served from a revoked or expired release."""
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


def _release_file(release: Release, kind: str) -> tuple[StoredFile, str]:
    """The synthetic version or the release datasheet (both in the artefact storage), and the
    SHA-256 of the bytes it holds now, hashed as they are read."""
    if kind == DownloadKind.DATA:
        path, expected = StoredFile(version_storage(), release.version.storage_key), None
    else:
        sheet = ReleaseDatasheet.objects.filter(release=release).first()
        if sheet is None:
            raise ConflictError(f"Release #{release.pk} has no signed release datasheet.")
        path, expected = StoredFile(version_storage(), sheet.storage_key), sheet.sha256
    sha256 = ""
    if path.is_file():
        with path.open("rb") as stream:
            digest = hashlib.sha256()
            for block in iter(lambda: stream.read(1 << 20), b""):
                digest.update(block)
            sha256 = digest.hexdigest()
    if expected is not None and sha256 != expected:
        raise ConflictError(f"Release #{release.pk}'s datasheet in storage differs from the one signed; not served.")
    return path, sha256


def release_revoke(*, actor: User, release_id: int, reason: str) -> Release:
    """Stop all further downloads of a release."""
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
