"""Who may see what: role reads every service, selector and page asks.

Reads only; granting roles is a service (`user_create`). A role is a Django group named after
``Role``. Services, selectors and views import these at module top: this module imports no
service, so no import circle needs hiding inside a function.
"""

from __future__ import annotations

from typing import Any

from django.contrib.auth.models import User

from core.schema import schema_public
from governance.models import DataRequest, DatasetVersion, Role, VersionKind

# Roles that see every request; a user who only holds `requester` sees their own.
SEE_ALL_REQUESTS = (Role.STEWARD, Role.APPROVER, Role.AUDITOR)


def user_roles(user: User | None) -> set[str]:
    """The role names a user holds (cached on the instance for the request); none for no user."""
    if user is None or not getattr(user, "is_authenticated", False):
        return set()
    cached = getattr(user, "_synthgate_roles", None)
    if cached is None:
        cached = set(user.groups.values_list("name", flat=True)) & {role.value for role in Role}
        user._synthgate_roles = cached  # type: ignore[attr-defined]  # a per-instance cache User does not declare
    return cached


def user_has_role(user: User, *roles: str) -> bool:
    return bool(user_roles(user) & set(roles))


def real_row_counts_visible(user: User) -> bool:
    """Whether ``user`` may read the exact row count (and byte size) of real data versions.

    The number of real rows is private (issue 11.2: the generators use it only through a DP
    estimate), so what a requester or recipient can read never states it: only stewards,
    approvers and auditors see the row counts of source, training, holdout and external versions.
    A synthetic version's row count is the requested size, which is public.
    """
    return user_has_role(user, *SEE_ALL_REQUESTS)


def version_rows_visible(user: User, version: DatasetVersion) -> bool:
    """Whether ``user`` may read ``version``'s row count and size (see :func:`real_row_counts_visible`)."""
    return version.kind == VersionKind.SYNTHETIC or real_row_counts_visible(user)


def version_schema_visible(user: User | None, version: DatasetVersion) -> dict[str, Any]:
    """``version``'s schema as ``user`` may read it: a steward reads the types proposed from the rows
    (to declare them); anyone else reads a proposed type as ``null`` (``core.schema.schema_public``)."""
    if user is not None and user_has_role(user, Role.STEWARD):
        return version.schema
    return schema_public(version.schema)


def request_visible_to(user: User, request: DataRequest) -> bool:
    """Stewards, approvers and auditors see every request; a requester sees their own."""
    if user_has_role(user, *SEE_ALL_REQUESTS):
        return True
    return user_has_role(user, Role.REQUESTER) and request.requester_id == user.pk
