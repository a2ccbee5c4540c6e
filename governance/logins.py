"""Logging in: the username as people type it, failed-login throttling (django-axes) answered
429 in the API's error shape or as a dashboard page, and every lockout in the audit log."""

from __future__ import annotations

import logging
from typing import Any

from axes.signals import user_locked_out
from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.backends import ModelBackend
from django.contrib.auth.models import User
from django.dispatch import receiver
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.utils import timezone

from core.api import error_body
from governance.models import AuditEvent
from governance.usernames import username_normalise

logger = logging.getLogger(__name__)


class NormalisedUsernameBackend(ModelBackend):
    """Django's model backend, with the username normalised and matched regardless of case
    (usernames are unique that way, so at most one account matches)."""

    def authenticate(
        self, request: HttpRequest | None, username: str | None = None, password: str | None = None, **kwargs: Any
    ) -> User | None:
        typed = username_normalise(username if username is not None else kwargs.get(get_user_model().USERNAME_FIELD))
        stored = get_user_model().objects.filter(username__iexact=typed).values_list("username", flat=True).first()
        return super().authenticate(request, username=stored or typed, password=password)


def login_username(request: HttpRequest, credentials: dict[str, Any] | None) -> str:
    """What django-axes counts failures against: the normalised, case-folded username."""
    raw = (credentials or {}).get("username")
    if raw is None:
        raw = request.POST.get("username", "")
    return username_normalise(str(raw)).casefold()[:150]


def login_lockout_message() -> tuple[str, int]:
    seconds = int(settings.AXES_COOLOFF_TIME.total_seconds())
    minutes = max(1, round(seconds / 60))
    return (
        f"Too many failed logins for this account or from this address; try again in {minutes} minutes.",
        seconds,
    )


def login_lockout_response(
    request: HttpRequest, original_response: HttpResponse | None, credentials: dict[str, Any] | None
) -> HttpResponse:
    """django-axes' answer to a locked-out login: 429 with Retry-After, JSON under /api/."""
    message, seconds = login_lockout_message()
    response: HttpResponse
    if request.path.startswith("/api/"):
        body = error_body("too_many_attempts", message, {"retry_after_seconds": seconds})
        response = JsonResponse(body, status=429)
    else:
        response = render(request, "registration/locked_out.html", {"message": message}, status=429)
    response["Retry-After"] = str(seconds)
    return response


def login_lockout_record(*, username: str, ip_address: str | None) -> None:
    """One audit event per lockout: who was tried, from where (no password, ever).

    django-axes signals a lockout on every attempt while it lasts; only the first within the
    cool-off is recorded, so an attacker's retries cannot flood the audit log.
    """
    since = timezone.now() - settings.AXES_COOLOFF_TIME
    recent = AuditEvent.objects.filter(action="auth.lockout", created_at__gte=since)
    if recent.filter(after__username=username, after__ip_address=ip_address).exists():
        return
    # Imported here, on this rare path: this module is loaded by every django.setup() (the app's
    # ready()), and the services package brings pandas, which would add ~0.3 s to each CLI call.
    from governance.services.audit_log import audit_event_record

    user = get_user_model().objects.filter(username__iexact=username).first()
    logger.warning("Login locked out: username=%r ip=%s", username, ip_address)
    audit_event_record(
        actor=None,
        action="auth.lockout",
        obj=user,
        object_type="user",
        object_id=str(user.pk) if user else "",
        after={
            "username": username,
            "ip_address": ip_address,
            "failure_limit": settings.AXES_FAILURE_LIMIT,
            "lockout_seconds": int(settings.AXES_COOLOFF_TIME.total_seconds()),
        },
    )


def _on_locked_out(sender: Any, request: HttpRequest, username: str, ip_address: str, **kwargs: Any) -> None:
    login_lockout_record(username=username or "", ip_address=ip_address)


def connect_signals() -> None:
    receiver(user_locked_out, dispatch_uid="synthgate-login-lockout")(_on_locked_out)
