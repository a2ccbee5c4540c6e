"""Who may see what: role reads every service, selector and page asks.

Reads only; granting roles is a service (`user_create`). A role is a Django group named after
``Role``. Services, selectors and views import these at module top: this module imports no
service, so no import circle needs hiding inside a function.
"""

from __future__ import annotations

from typing import Any

from django.contrib.auth.models import User
from django.utils.crypto import salted_hmac

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


def run_measurements_visible(user: User | None) -> bool:
    """Whether ``user`` may read how long a generation job or an audit took (per phase or step) and
    how much memory a job used.

    Loading, splitting, fitting and auditing scale with the number of real rows (and the audit's
    steps with the real holdout and the groups in it), so these measurements are functions of the
    real data that are neither computed from the synthetic rows nor differentially private: like the
    row counts, only stewards, approvers and auditors read them (docs/access-and-limits.md): the same
    rule as ``real_row_counts_visible``.
    """
    return user is not None and real_row_counts_visible(user)


# Lineage keys of a synthetic version that are statistics of the real rows: the exact class shares
# of the training rows beside a rebalanced release, and the sizes of the training and holdout
# samples a job on a referenced table fetched (below the audit's sample size, the exact split).
REAL_LINEAGE_KEYS = {"rebalance": ("real_shares",), "counts": ("audit_sample_rows",)}


FINGERPRINT_PREFIX = "hmac-sha256:"


def keyed_fingerprint(content_hash: str) -> str:
    """A real version's identity as anyone but its stewards, approvers and auditors reads it.

    The sha256 of the real rows is a deterministic function of them: whoever knows every row but
    one, and the canonical format, can hash each guess of the last and find it. The fingerprint is
    an HMAC of that hash under this installation's secret key (Django's ``SECRET_KEY``, salted for
    this use): the installation can confirm that a fingerprint names a stored version; without the
    key it tells nothing about the rows. Equal versions still have equal fingerprints.
    """
    return (
        FINGERPRINT_PREFIX + salted_hmac("synthgate.version-fingerprint", content_hash, algorithm="sha256").hexdigest()
    )


def version_hash_visible(user: User | None, version: DatasetVersion) -> str:
    """``version``'s content hash as ``user`` may read it: the sha256 of a synthetic version (public)
    and, for stewards, approvers and auditors, of any version; otherwise a real version's
    :func:`keyed_fingerprint`."""
    if user is not None and version_rows_visible(user, version):
        return version.content_hash
    if version.kind == VersionKind.SYNTHETIC:
        return version.content_hash
    return keyed_fingerprint(version.content_hash)


def lineage_visible(user: User | None, version: DatasetVersion) -> dict:
    """``version.lineage`` as ``user`` may read it: whole for stewards, approvers and auditors; for
    anyone else without the statistics of the real rows it records (:data:`REAL_LINEAGE_KEYS`), and
    the source's content hash as its :func:`keyed_fingerprint`."""
    lineage = dict(version.lineage or {})
    if user is not None and real_row_counts_visible(user):
        return lineage
    for key, private in REAL_LINEAGE_KEYS.items():
        if isinstance(lineage.get(key), dict):
            lineage[key] = {name: value for name, value in lineage[key].items() if name not in private}
    if isinstance(lineage.get("source_hash"), str):
        lineage["source_hash"] = keyed_fingerprint(lineage["source_hash"])
    return lineage


def version_rows_visible(user: User, version: DatasetVersion) -> bool:
    """Whether ``user`` may read ``version``'s row count and size (see :func:`real_row_counts_visible`)."""
    return version.kind == VersionKind.SYNTHETIC or real_row_counts_visible(user)


def version_rows_contradiction_visible(user: User | None, version: DatasetVersion) -> str:
    """Why ``version``'s stored rows contradict its declarations (the column and the declaration,
    ``governance.services.datasets.version_rows_check``), for stewards only, who correct them; anyone
    else reads "" (a requester's filing says only that the declarations await review: issue 11.3)."""
    if user is not None and user_has_role(user, Role.STEWARD):
        return version.rows_contradiction
    return ""


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
