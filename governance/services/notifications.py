"""E-mail about requests, through Django's e-mail backend (console in the demo, SMTP in production).

Who hears what, when a request reaches a state:

- ``submitted``: every approver with an e-mail address except the requester (it awaits them);
- ``approved``, ``rejected``, ``ready``, ``blocked``, ``failed``, ``released``, ``revoked``,
  ``expired``: the requester.

A message carries the request's number, dataset, purpose, the new state and where to look,
never a figure computed from the data. It is sent after the transaction commits, so a change
that rolls back sends nothing, and a mail server that fails is logged without undoing the change.
"""

from __future__ import annotations

import logging
import smtplib

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.mail import send_mail
from django.db import transaction

from governance.models import DataRequest, RequestState, Role

logger = logging.getLogger(__name__)

S = RequestState
TO_REQUESTER: dict[str, str] = {
    S.APPROVED: "was approved; the generation job can start",
    S.REJECTED: "was rejected",
    S.READY: "passed its audit and is ready to release",
    S.BLOCKED: "is blocked: its audit did not pass (a second approver may accept the risk, check by check)",
    S.FAILED: "failed during generation or audit",
    S.RELEASED: "was released; the synthetic data can be downloaded until the release expires",
    S.REVOKED: "had its release revoked; the data can no longer be downloaded",
    S.EXPIRED: "had its release expire",
}


def request_state_notify(*, request: DataRequest, target: str) -> None:
    """Queue the e-mail for ``request`` reaching ``target``; it goes out when the transaction commits."""
    recipients = _recipients(request, target)
    if not recipients:
        return
    subject, body = _message(request, target)
    transaction.on_commit(lambda: _send(subject, body, recipients, request.pk))


def _recipients(request: DataRequest, target: str) -> list[str]:
    if target == S.SUBMITTED:
        approvers = get_user_model().objects.filter(groups__name=Role.APPROVER, is_active=True)
        return sorted({user.email for user in approvers.exclude(pk=request.requester_id) if user.email})
    if target in TO_REQUESTER and request.requester.email:
        return [request.requester.email]
    return []


def _message(request: DataRequest, target: str) -> tuple[str, str]:
    about = f"request #{request.pk} ({request.dataset.name}, purpose {request.purpose.name})"
    if target == S.SUBMITTED:
        headline = f"{about} by {request.requester.username} awaits your approval"
    else:
        headline = f"Your {about} {TO_REQUESTER[target]}"
    body = "\n".join(
        [
            headline[0].upper() + headline[1:] + ".",
            "",
            f"Open it in the dashboard at /requests/{request.pk}/ or with `synthgate request show {request.pk}`.",
        ]
    )
    return f"Synthgate: request #{request.pk} {target}", body


def _send(subject: str, body: str, recipients: list[str], request_id: int) -> None:
    try:
        send_mail(subject, body, settings.DEFAULT_FROM_EMAIL, recipients)
    except (OSError, smtplib.SMTPException):  # the state change stands; a lost e-mail must not undo it
        logger.exception("Could not e-mail about request %s", request_id)
