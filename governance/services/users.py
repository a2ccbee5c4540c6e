"""People and their roles. A role is a Django group named after ``Role``."""

from __future__ import annotations

import functools
import secrets
from typing import Any

from django.contrib.auth import get_user_model, password_validation
from django.contrib.auth.models import Group, User
from django.contrib.auth.validators import UnicodeUsernameValidator
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import IntegrityError, transaction

from core.errors import ConflictError, FourEyesError, NotFoundError, PermissionDeniedError, ValidationError
from governance.models import Role
from governance.permissions import user_has_role
from governance.services.audit_log import audit_event_record
from governance.services.tokens import api_token_issue
from governance.usernames import username_normalise

USERNAME_MAX_CHARS = 150


def roles_ensure() -> list[Group]:
    """Create one group per role (idempotent)."""
    return [Group.objects.get_or_create(name=role.value)[0] for role in Role]


def user_create(
    *, username: str, roles: list[str], actor: User | None, email: str = "", password: str | None = None
) -> tuple[User, str]:
    """Create a user with roles and an API token; return the user and the token key.

    ``actor`` None is the operator bootstrapping the platform (`synthgate user create`);
    otherwise only a steward may create users and grant roles.
    """
    if actor is not None and not user_has_role(actor, Role.STEWARD):
        raise PermissionDeniedError("Only a data steward can create users and grant roles.")
    _roles_checked(roles)
    username = username_checked(username)
    user_model = get_user_model()
    if password is not None:
        password_checked(password, user=user_model(username=username, email=email))
    try:
        with transaction.atomic():
            user = user_model.objects.create_user(
                username=username, email=email, password=password or secrets.token_urlsafe(24)
            )
            user.groups.set(Group.objects.filter(name__in=roles))
            audit_event_record(
                actor=actor, action="user.create", obj=user, after={"username": username, "roles": sorted(roles)}
            )
            _, key = api_token_issue(user=user, actor=actor)
    except IntegrityError as error:
        raise ConflictError(f"A user named {username!r} already exists.") from error
    return user, key


def user_roles_set(*, actor: User, username: str, roles: list[str]) -> User:
    """Replace a user's roles. Only a steward may, and never their own: a second steward does it
    (four eyes on who may approve, release or audit). Logged with the roles before and after."""
    if not user_has_role(actor, Role.STEWARD):
        raise PermissionDeniedError("Only a data steward can grant or remove roles.")
    _roles_checked(roles)
    with transaction.atomic():
        user = get_user_model().objects.select_for_update().filter(username=username).first()
        if user is None:
            raise NotFoundError(f"No user named {username!r}.", extra={"field": "username"})
        if user.pk == actor.pk:
            raise FourEyesError("Nobody changes their own roles: ask another steward.", extra={"field": "roles"})
        before = sorted(user.groups.values_list("name", flat=True))
        user.groups.set(Group.objects.filter(name__in=roles))
        audit_event_record(
            actor=actor,
            action="user.roles",
            obj=user,
            before={"roles": before},
            after={"username": user.username, "roles": sorted(roles)},
        )
    return user


def _roles_checked(roles: list[str]) -> None:
    unknown = sorted(set(roles) - {role.value for role in Role})
    if unknown or not roles:
        raise ValidationError(
            f"Unknown or missing role: {', '.join(unknown) or '(none)'}; "
            f"choose from {', '.join(role.value for role in Role)}.",
            extra={"allowed_roles": [role.value for role in Role], "field": "roles"},
        )


def username_skeleton(name: str) -> str:
    """Case-folded, with every character that imitates an ASCII one replaced by it (UTS #39 in spirit)."""
    return "".join(_ascii_lookalike(character) for character in username_normalise(name).casefold())


@functools.cache
def _confusables() -> Any:
    """Unicode's confusables table, loaded when a username is first checked (a 0.1–0.3 s import
    that every command and page would otherwise pay at start-up)."""
    from confusable_homoglyphs import confusables

    return confusables


def _ascii_lookalike(character: str) -> str:
    if character.isascii():
        return character
    for found in _confusables().is_confusable(character, greedy=True, preferred_aliases=[]) or []:
        for glyph in found["homoglyphs"]:
            if glyph["c"].isascii():
                return glyph["c"].lower()
    return character


def username_checked(raw: str) -> str:
    """Normalise a new username and refuse it when malformed, taken in any case, or a look-alike."""
    username = username_normalise(raw)
    if not username or len(username) > USERNAME_MAX_CHARS:
        raise ValidationError(f"A username of 1 to {USERNAME_MAX_CHARS} characters is required.")
    try:
        UnicodeUsernameValidator()(username)
    except DjangoValidationError as error:
        raise ValidationError(" ".join(error.messages), extra={"field": "username"}) from error
    if _confusables().is_confusable(username, preferred_aliases=["latin", "common"]):
        raise ValidationError(
            f"The username {username!r} mixes in characters that imitate Latin letters; use plain letters.",
            extra={"field": "username"},
            code="confusable_username",
        )
    skeleton = username_skeleton(username)
    for existing in get_user_model().objects.values_list("username", flat=True).iterator():
        if existing.casefold() == username.casefold():
            raise ConflictError(f"A user named {existing!r} already exists.")
        if username_skeleton(existing) == skeleton:
            raise ConflictError(
                f"The username {username!r} is taken or looks like the existing user {existing!r}.",
                extra={"field": "username", "existing": existing},
            )
    return username


def password_checked(password: str, *, user: User | None = None) -> str:
    """Apply Django's password validators (AUTH_PASSWORD_VALIDATORS); every path that sets one calls this."""
    try:
        password_validation.validate_password(password, user=user)
    except DjangoValidationError as error:
        raise ValidationError(
            "The password is too weak: " + " ".join(error.messages),
            extra={"field": "password", "problems": error.messages},
            code="weak_password",
        ) from error
    return password
