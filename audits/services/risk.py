"""Risk acceptance: a second approver accepts a failed audit, check by check, each with its own reason."""

from __future__ import annotations

import re
from collections.abc import Mapping

from django.contrib.auth.models import User
from django.db import transaction

from audits.models import AuditRun, AuditStatus, RiskAcceptance
from core.errors import ConflictError, NotFoundError, PermissionDeniedError, ValidationError
from core.limits import text_checked
from governance.models import DataRequest, Decision, RequestState, Role
from governance.permissions import request_visible_to, user_has_role
from governance.services import access_request_lock, audit_event_record, request_transition

MIN_REASON_CHARS = 20
MIN_REASON_WORDS = 4


def risk_accept(*, actor: User, request_id: int, reasons: Mapping[str, str]) -> RiskAcceptance:
    """A second approver accepts a failed audit check by check, with a reason for each failed check.

    Four eyes on the exception: the acceptor is an approver who neither filed the request nor was
    its only approver. ``reasons`` must name exactly the latest run's failed checks.
    """
    reasons = _reasons_checked(reasons)
    with transaction.atomic():
        request = access_request_lock(request_id)
        if not request_visible_to(actor, request):
            raise NotFoundError(f"No request #{request_id}.")
        if request.requester_id == actor.pk or not user_has_role(actor, Role.APPROVER):
            raise PermissionDeniedError("Only an approver who did not file the request can accept its audit risk.")
        run = request.audit_runs.order_by("-created_at", "-id").first()
        if request.state != RequestState.BLOCKED or run is None or run.status != AuditStatus.FAILED:
            raise ConflictError(
                f"Request #{request.pk} is {request.state!r}; risk can only be accepted for a blocked request whose "
                "latest audit failed (an inconclusive audit — positive control not caught — cannot be accepted).",
                extra={"state": request.state, "audit_status": getattr(run, "status", None)},
            )
        _acceptor_not_sole_approver(request, actor)
        _reasons_name_the_failed_checks(reasons, run)
        summary = "; ".join(f"{name}: {reasons[name]}" for name in run.failed_checks)
        acceptance = RiskAcceptance.objects.create(
            run=run,
            request=request,
            approver=actor,
            reason=summary,
            failed_checks=run.failed_checks,
            reasons={name: reasons[name] for name in run.failed_checks},
        )
        audit_event_record(
            actor=actor,
            action="audit.risk_accept",
            obj=acceptance,
            after={
                "request": request.pk,
                "audit_run": run.pk,
                "failed_checks": run.failed_checks,
                "reasons": acceptance.reasons,
            },
        )
        request_transition(
            request=request,
            target=RequestState.READY,
            actor=actor,
            action="accept_risk",
            extra={"audit_run": run.pk, "failed_checks": run.failed_checks},
        )
        return acceptance


def _reasons_checked(reasons: Mapping[str, str]) -> dict[str, str]:
    """Each reason long enough, several distinct words, not the check's name, and not the same text twice."""
    if not isinstance(reasons, Mapping) or not reasons:
        raise ValidationError("Name each failed check you accept, with a reason for each.", extra={"field": "reasons"})
    checked: dict[str, str] = {}
    seen: dict[str, str] = {}
    for name, reason in reasons.items():
        text = text_checked(str(reason or "").strip(), field="reasons")
        sequence = re.findall(r"[^\W_]+", text.lower())
        words = {word for word in sequence if word.isalpha() and word not in name.lower().split("_")}
        if len(text) < MIN_REASON_CHARS or len(words) < MIN_REASON_WORDS:
            raise ValidationError(
                f"The reason for accepting {name!r} is too short: say in at least {MIN_REASON_CHARS} characters and "
                f"{MIN_REASON_WORDS} distinct words, other than the check's name, why this failure is acceptable.",
                extra={"field": "reasons", "check": name},
            )
        key = " ".join(sequence)
        if key in seen:
            raise ValidationError(
                f"The reasons for {seen[key]!r} and {name!r} are the same; give each failed check its own reason.",
                extra={"field": "reasons", "check": name},
            )
        seen[key], checked[str(name)] = str(name), text
    return checked


def _acceptor_not_sole_approver(request: DataRequest, actor: User) -> None:
    approvers = set(request.approvals.filter(decision=Decision.APPROVE).values_list("approver_id", flat=True))
    if approvers == {actor.pk}:
        raise PermissionDeniedError(
            "You were this request's only approver; another approver must accept the risk (four eyes on the exception)."
        )


def _reasons_name_the_failed_checks(reasons: dict[str, str], run: AuditRun) -> None:
    failed, named = set(run.failed_checks), set(reasons)
    if failed != named:
        missing, unknown = sorted(failed - named), sorted(named - failed)
        raise ValidationError(
            "A risk acceptance names each failed check with its own reason"
            + (f"; no reason given for {', '.join(missing)}" if missing else "")
            + (f"; {', '.join(unknown)} did not fail" if unknown else "")
            + ".",
            extra={"field": "reasons", "failed_checks": run.failed_checks, "missing": missing, "unknown": unknown},
        )
