"""What a request can expect from its audit, shown before it is filed (nothing is written)."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from django.contrib.auth.models import User

from core.amounts import parse_decimal
from core.errors import PermissionDeniedError
from governance.models import Purpose, Role
from governance.permissions import real_row_counts_visible, user_has_role
from governance.planning import audit_planner
from governance.policy import default_audit_thresholds
from governance.services.budget import version_public_rows
from governance.services.requests import filing_target, parse_rows, types_declared_check


def access_request_outlook(
    *,
    actor: User,
    dataset_name: str,
    purpose_name: str,
    epsilon: Any,
    delta: Any,
    n_rows: Any,
    generator: str = "mst",
    generator_params: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Predicted audit of a clean release for these request fields, from public inputs only.

    The number of real rows is private: a requester's outlook is computed from the source
    version's DP row estimate (:func:`version_public_rows`, paid for once per version), and
    states no training or holdout size (``disclose_rows``). Stewards, approvers and auditors get
    it from the exact count.
    """
    if not user_has_role(actor, Role.REQUESTER, Role.STEWARD, Role.APPROVER, Role.AUDITOR):
        raise PermissionDeniedError("Your role cannot file or review requests.")
    dataset, purpose, source = filing_target(dataset_name=dataset_name, purpose_name=purpose_name)
    types_declared_check(source)  # an outlook from a type read from the rows would tell it
    disclose = real_row_counts_visible(actor)
    outlook = audit_planner().outlook(
        schema=source.schema,
        # a requester's outlook is a post-processing of the version's DP row estimate, never of n
        source_rows=source.n_rows if disclose else version_public_rows(version=source, actor=actor),
        holdout_fraction=float(purpose.holdout_fraction),
        thresholds=purpose_thresholds(purpose),
        epsilon=float(parse_decimal(epsilon, field="epsilon", minimum_exclusive=Decimal(0))),
        delta=float(parse_decimal(delta, field="delta", minimum=Decimal(0), maximum_exclusive=Decimal(1))),
        n_rows=parse_rows(n_rows),
        generator=generator,
        generator_params=generator_params or {},
        disclose_rows=disclose,
    )
    return {"dataset": dataset.name, "purpose": purpose.name, "generator": generator, **outlook}


def purpose_thresholds(purpose: Purpose) -> dict[str, Any]:
    """The purpose's audit thresholds over the defaults."""
    return {**default_audit_thresholds(), **(purpose.audit_thresholds or {})}
