"""E-mail about requests, through Django's e-mail backend (console in the demo, SMTP in production).

Who hears what, when a request reaches a state:

- ``submitted``: every approver with an e-mail address except the requester (it awaits them);
- ``approved``, ``rejected``, ``ready``, ``blocked``, ``failed``, ``released``, ``revoked``,
  ``expired``: the requester;
- ``failed``: the dataset's steward as well (a job that fails is theirs to look into: a table
  that changed, data the generator refuses).

A message carries the request's number, dataset, purpose, the new state and where to look, and
for a rejection or a failure its reason (the approver's words, or the job's error: both shown to
the requester on the request's page already), never a figure computed from the data. It is sent
after the transaction commits, so a change that rolls back sends nothing, and a mail server that
fails is logged without undoing the change.
"""

from __future__ import annotations

import logging
import smtplib
from functools import partial

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


# States whose e-mail also tells the dataset's steward (its owner), in the steward's words.
TO_STEWARD: dict[str, str] = {S.FAILED: "failed during generation or audit"}
WITH_REASON = (S.REJECTED, S.FAILED)


def request_state_notify(*, request: DataRequest, target: str) -> None:
    """Queue the e-mails for ``request`` reaching ``target``; they go out when the transaction commits."""
    for recipients, headline in _messages(request, target):
        subject, body = _message(request, target, headline)
        transaction.on_commit(partial(_send, subject, body, recipients, request.pk))


def _messages(request: DataRequest, target: str) -> list[tuple[list[str], str]]:
    """(recipients, headline) per message: approvers, the requester, the steward."""
    about = f"request #{request.pk} ({request.dataset.name}, purpose {request.purpose.name})"
    if target == S.SUBMITTED:
        approvers = get_user_model().objects.filter(groups__name=Role.APPROVER, is_active=True)
        recipients = sorted({user.email for user in approvers.exclude(pk=request.requester_id) if user.email})
        return [(recipients, f"{about} by {request.requester.username} awaits your approval")] if recipients else []
    messages = []
    requester = request.requester.email
    if target in TO_REQUESTER and requester:
        messages.append(([requester], f"Your {about} {TO_REQUESTER[target]}"))
    owner = request.dataset.owner
    if target in TO_STEWARD and owner.email and owner.email != requester:
        messages.append(([owner.email], f"{about} by {request.requester.username} {TO_STEWARD[target]}"))
    return messages


def _message(request: DataRequest, target: str, headline: str) -> tuple[str, str]:
    reason = (request.decision_reason or "").strip() if target in WITH_REASON else ""
    body = "\n".join(
        [
            headline[0].upper() + headline[1:] + ".",
            *(["", f"Reason: {reason}"] if reason else []),
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
