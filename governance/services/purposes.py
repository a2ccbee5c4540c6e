"""Purposes and their policy (max ε per release, approvers, recipients, audit thresholds)."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from django.contrib.auth.models import User
from django.core.exceptions import ValidationError as DjangoValidationError
from django.core.validators import validate_slug
from django.db import IntegrityError, transaction

from core.amounts import parse_decimal
from core.errors import ConflictError, PermissionDeniedError, ValidationError, error_collected, errors_combined
from core.limits import text_checked
from governance.models import Purpose, RecipientKind, Role
from governance.permissions import user_has_role
from governance.policy import audit_thresholds_validate, default_audit_thresholds
from governance.services.audit_log import audit_event_record

DEFAULT_PURPOSES: list[dict[str, Any]] = [
    {
        "name": "internal-analytics",
        "description": "Internal analysis and model development.",
        "max_epsilon": "3",
        "approvals_required": 1,
        "allowed_recipients": ["internal"],
    },
    {
        "name": "external-research",
        "description": "Sharing with an external research partner.",
        "max_epsilon": "1",
        "approvals_required": 2,
        "allowed_recipients": ["internal", "external"],
    },
    {
        "name": "software-testing",
        "description": "Test data for software development; non-private generators allowed, internal only.",
        "max_epsilon": "10",
        "approvals_required": 1,
        "allowed_recipients": ["internal"],
        "allow_non_private": True,
    },
]


def purpose_create(
    *,
    actor: User | None,
    name: str,
    max_epsilon: Any,
    approvals_required: int = 2,
    allowed_recipients: list[str] | None = None,
    audit_thresholds: dict[str, Any] | None = None,
    description: str = "",
    allow_non_private: bool = False,
    holdout_fraction: Any = "0.2",
    release_days: int = 90,
) -> Purpose:
    """Create a purpose whose policy is validated in full before anything is stored."""
    if actor is not None and not user_has_role(actor, Role.STEWARD):
        raise PermissionDeniedError("Only a data steward can define purposes.")
    fields = purpose_fields_check(
        name=name,
        max_epsilon=max_epsilon,
        approvals_required=approvals_required,
        allowed_recipients=allowed_recipients,
        audit_thresholds=audit_thresholds,
        description=description,
        holdout_fraction=holdout_fraction,
        release_days=release_days,
    )
    fields["allow_non_private"] = bool(allow_non_private)
    try:
        with transaction.atomic():
            purpose = Purpose.objects.create(name=name, **fields)
            audit_event_record(actor=actor, action="purpose.create", obj=purpose, after={"name": name, **fields})
    except IntegrityError as error:
        raise ConflictError(f"A purpose named {name!r} already exists.") from error
    return purpose


def purpose_fields_check(
    *,
    name: str,
    max_epsilon: Any,
    approvals_required: Any = 2,
    allowed_recipients: list[str] | None = None,
    audit_thresholds: dict[str, Any] | None = None,
    description: str = "",
    holdout_fraction: Any = "0.2",
    release_days: Any = 90,
) -> dict[str, Any]:
    """A purpose's fields checked, every mistake named in one error (``core.errors.errors_combined``),
    so a form can show them all at once; the cleaned fields (all but the name) when there is none."""
    errors: list[ValidationError] = []
    error_collected(errors, lambda: _check_name(name))
    fields = {
        "max_epsilon": error_collected(
            errors, lambda: parse_decimal(max_epsilon, field="max_epsilon", minimum_exclusive=Decimal(0))
        ),
        "approvals_required": error_collected(errors, lambda: _approvals(approvals_required)),
        "allowed_recipients": error_collected(
            errors, lambda: _recipients([RecipientKind.INTERNAL] if allowed_recipients is None else allowed_recipients)
        ),
        "audit_thresholds": error_collected(
            errors,
            lambda: audit_thresholds_validate(
                default_audit_thresholds() if audit_thresholds is None else audit_thresholds
            ),
        ),
        "holdout_fraction": error_collected(errors, lambda: _holdout(holdout_fraction)),
        "release_days": error_collected(errors, lambda: _release_days(release_days)),
        "description": error_collected(errors, lambda: text_checked(description, field="description")),
    }
    if errors:
        raise errors_combined(errors)
    return fields


def purposes_ensure_defaults() -> list[Purpose]:
    """Create the default purposes that do not exist yet (idempotent; used by `init`)."""
    created = []
    for spec in DEFAULT_PURPOSES:
        if not Purpose.objects.filter(name=spec["name"]).exists():
            created.append(purpose_create(actor=None, **spec))
    return created


def _check_name(name: str) -> None:
    try:
        validate_slug(name)
    except DjangoValidationError as error:
        raise ValidationError(
            f"Purpose name {name!r} must use letters, digits, '-' and '_' only.", extra={"field": "name"}
        ) from error


def _release_days(value: Any) -> int:
    try:
        days = int(str(value))
    except ValueError as error:
        raise ValidationError(
            f"release_days must be a whole number; got {value!r}.", extra={"field": "release_days"}
        ) from error
    if days < 1:
        raise ValidationError(f"release_days must be at least 1; got {days}.", extra={"field": "release_days"})
    return days


def _approvals(value: Any) -> int:
    if value not in (1, 2, "1", "2"):
        raise ValidationError(
            f"approvals_required must be 1 or 2; got {value!r}.", extra={"field": "approvals_required"}
        )
    return int(value)


def _recipients(values: list[str]) -> list[str]:
    unknown = [value for value in values if value not in RecipientKind.values]
    if unknown or not values:
        raise ValidationError(
            f"allowed_recipients must be a non-empty subset of {RecipientKind.values}; got {values!r}.",
            extra={"field": "allowed_recipients"},
        )
    return sorted(set(values))


def _holdout(value: Any) -> Decimal:
    fraction = parse_decimal(value, field="holdout_fraction")
    if not Decimal("0.05") <= fraction <= Decimal("0.5"):
        raise ValidationError(
            f"holdout_fraction must be between 0.05 and 0.5; got {value}.", extra={"field": "holdout_fraction"}
        )
    return fraction
