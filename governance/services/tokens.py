"""API tokens (django-rest-knox): issued with an expiry, stored only as a SHA-512 digest, listed
by their public prefix (``token_key``), rotated and revoked. The secret is returned once."""

from __future__ import annotations

from datetime import datetime

from django.conf import settings
from django.contrib.auth.models import User
from django.db import transaction
from django.db.models import Q, QuerySet
from django.utils import timezone
from knox.models import AuthToken
from knox.settings import knox_settings

from core.errors import ConflictError, NotFoundError, PermissionDeniedError
from governance.models import Role
from governance.services.audit_log import audit_event_record


def _may_manage(actor: User | None, user: User) -> bool:
    # None is the operator at the console (`synthgate user create`); a steward manages everyone's.
    if actor is None or actor.pk == user.pk:
        return True
    return actor.groups.filter(name=Role.STEWARD).exists()


def api_token_list(*, actor: User | None, user: User) -> QuerySet[AuthToken]:
    """A user's unexpired tokens, newest first (their holder or a steward)."""
    if not _may_manage(actor, user):
        raise PermissionDeniedError("Only the token's holder or a data steward can list its tokens.")
    now = timezone.now()
    return AuthToken.objects.filter(Q(expiry__isnull=True) | Q(expiry__gt=now), user=user).order_by("-created")


def api_token_issue(*, user: User, actor: User | None) -> tuple[AuthToken, str]:
    """Issue a token that expires after REST_KNOX TOKEN_TTL; refuse past the per-user limit."""
    if not _may_manage(actor, user):
        raise PermissionDeniedError("Only the user or a data steward can issue that user's tokens.")
    with transaction.atomic():
        AuthToken.objects.filter(user=user, expiry__lte=timezone.now()).delete()
        live = AuthToken.objects.select_for_update().filter(user=user).count()
        limit = settings.SYNTHGATE_MAX_TOKENS_PER_USER
        if live >= limit:
            raise ConflictError(
                f"{user.username} already holds {live} unexpired tokens, the limit; revoke one first.",
                extra={"tokens": live, "limit": limit},
                code="too_many_tokens",
            )
        token, secret = AuthToken.objects.create(user=user, expiry=knox_settings.TOKEN_TTL)
        _record(actor=actor, action="token.issue", token=token)
    return token, secret


def api_token_rotate(*, actor: User | None, user: User, token_key: str) -> tuple[AuthToken, str]:
    """Replace one token by a new one with a fresh expiry; the old one stops working at once."""
    with transaction.atomic():
        old = _token_get(actor=actor, user=user, token_key=token_key)
        old.delete()
        _record(actor=actor, action="token.revoke", token=old, reason="rotated")
        return api_token_issue(user=user, actor=actor)


def api_token_revoke(*, actor: User | None, user: User, token_key: str | None) -> int:
    """Revoke one token by its prefix, or every token of the user when ``token_key`` is None."""
    with transaction.atomic():
        if token_key is None:
            if not _may_manage(actor, user):
                raise PermissionDeniedError("Only the user or a data steward can revoke that user's tokens.")
            tokens = list(AuthToken.objects.select_for_update().filter(user=user))
        else:
            tokens = [_token_get(actor=actor, user=user, token_key=token_key)]
        for token in tokens:
            token.delete()
            _record(actor=actor, action="token.revoke", token=token, reason="revoked")
    return len(tokens)


def _token_get(*, actor: User | None, user: User, token_key: str) -> AuthToken:
    if not _may_manage(actor, user):
        raise PermissionDeniedError("Only the token's holder or a data steward can change its tokens.")
    tokens = list(AuthToken.objects.select_for_update().filter(user=user, token_key=token_key))
    if len(tokens) != 1:
        # Two tokens sharing a 15-character prefix is a ~2^-60 event: refuse rather than guess.
        raise NotFoundError(f"{user.username} has no token {token_key!r}.", extra={"token": token_key})
    return tokens[0]


def _record(*, actor: User | None, action: str, token: AuthToken, reason: str = "") -> None:
    expiry: datetime | None = token.expiry
    audit_event_record(
        actor=actor,
        action=action,
        object_type="token",
        object_id=token.token_key,
        after={
            "user": token.user.username,
            "token": token.token_key,
            "expires_at": expiry.isoformat() if expiry else None,
            **({"reason": reason} if reason else {}),
        },
    )
