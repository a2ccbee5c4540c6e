"""People and their roles. A role is a Django group named after ``Role``."""

from __future__ import annotations

import secrets

from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractUser, Group
from django.db import IntegrityError, transaction
from rest_framework.authtoken.models import Token

from core.errors import ConflictError, PermissionDeniedError, ValidationError
from governance.models import Role
from governance.permissions import user_has_role
from governance.services.audit_log import audit_event_record


def roles_ensure() -> list[Group]:
    """Create one group per role (idempotent)."""
    return [Group.objects.get_or_create(name=role.value)[0] for role in Role]


def user_create(
    *, username: str, roles: list[str], actor: AbstractUser | None, email: str = "", password: str | None = None
) -> tuple[AbstractUser, str]:
    """Create a user with roles and an API token; return the user and the token key.

    ``actor`` None is the operator bootstrapping the platform (`synthgate user create`);
    otherwise only a steward may create users and grant roles.
    """
    if actor is not None and not user_has_role(actor, Role.STEWARD):
        raise PermissionDeniedError("Only a data steward can create users and grant roles.")
    unknown = sorted(set(roles) - {role.value for role in Role})
    if unknown or not roles:
        raise ValidationError(
            f"Unknown or missing role: {', '.join(unknown) or '(none)'}; "
            f"choose from {', '.join(role.value for role in Role)}.",
            extra={"allowed_roles": [role.value for role in Role]},
        )
    if not username or len(username) > 150:
        raise ValidationError("A username of 1 to 150 characters is required.")
    user_model = get_user_model()
    try:
        with transaction.atomic():
            user = user_model.objects.create_user(
                username=username, email=email, password=password or secrets.token_urlsafe(24)
            )
            user.groups.set(Group.objects.filter(name__in=roles))
            token = Token.objects.create(user=user)
            audit_event_record(
                actor=actor, action="user.create", obj=user, after={"username": username, "roles": sorted(roles)}
            )
    except IntegrityError as error:
        raise ConflictError(f"A user named {username!r} already exists.") from error
    return user, token.key
