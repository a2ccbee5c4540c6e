"""Data-sharing requests and their state machine, with four-eyes approval.

Each transition is one transaction that locks the dataset row then the request row
(always in that order, so two transitions never deadlock), checks the state, writes the
change and an AuditEvent.
"""

from __future__ import annotations

import math
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.contrib.auth.models import User
from django.db import IntegrityError, transaction
from django.utils import timezone

from core.amounts import amount_text, parse_decimal
from core.errors import (
    BudgetExhaustedError,
    ConflictError,
    FourEyesError,
    InvalidTransitionError,
    NotFoundError,
    PermissionDeniedError,
    ValidationError,
    error_collected,
    errors_combined,
)
from core.limits import text_checked
from core.schema import parse_schema, proposed_type_columns, undeclared_domains
from governance.models import (
    Approval,
    DataRequest,
    Dataset,
    DatasetVersion,
    Decision,
    OutputFormat,
    Purpose,
    RecipientKind,
    RequestState,
    Role,
    VersionKind,
)
from governance.output_formats import output_format_checked
from governance.permissions import real_row_counts_visible, request_visible_to, user_has_role
from governance.planning import audit_planner
from governance.policy import default_audit_thresholds
from governance.services.audit_log import audit_event_record
from governance.services.budget import budget_release, budget_reserve, version_public_rows, version_row_estimate
from governance.services.datasets import version_rows_check
from governance.services.notifications import request_state_notify

S = RequestState
TRANSITIONS: dict[str, tuple[str, ...]] = {
    S.DRAFT: (S.SUBMITTED, S.WITHDRAWN),
    S.SUBMITTED: (S.APPROVED, S.REJECTED, S.WITHDRAWN),
    S.APPROVED: (S.GENERATING, S.WITHDRAWN),
    # Back to approved only when the job's task never reached the queue (nothing was read or spent).
    S.GENERATING: (S.AUDITING, S.FAILED, S.APPROVED),
    S.AUDITING: (S.READY, S.BLOCKED, S.FAILED),
    S.BLOCKED: (S.READY, S.WITHDRAWN),
    S.READY: (S.RELEASED, S.WITHDRAWN),
    S.RELEASED: (S.REVOKED, S.EXPIRED),
    S.REJECTED: (),
    S.WITHDRAWN: (),
    S.FAILED: (),
    S.REVOKED: (),
    S.EXPIRED: (),
}


# The model column holds 200 characters; refuse more before the database would.
RECIPIENT_MAX_CHARS = 200


def allowed_transitions(state: str) -> list[str]:
    return [str(target) for target in TRANSITIONS[state]]


def _invalid_transition(request: DataRequest, action: str) -> InvalidTransitionError:
    allowed = allowed_transitions(request.state)
    return InvalidTransitionError(
        f"Cannot {action} request #{request.pk}: it is {request.state!r}; "
        f"allowed from {request.state!r}: {', '.join(allowed) or 'nothing (final)'}.",
        extra={"state": request.state, "allowed_transitions": allowed},
    )


def request_transition(
    *, request: DataRequest, target: str, actor: User | None, action: str, extra: dict[str, Any] | None = None
) -> DataRequest:
    """Move a locked request to ``target`` if the state machine allows it, and log the change."""
    if target not in TRANSITIONS[request.state]:
        raise _invalid_transition(request, action)
    before = request.state
    request.state = target
    request.save(update_fields=["state", "updated_at", "submitted_at", "decided_at", "decision_reason"])
    audit_event_record(
        actor=actor,
        action=f"request.{action}",
        obj=request,
        before={"state": before},
        after={"state": target, **(extra or {})},
    )
    request_state_notify(request=request, target=target)
    return request


def access_request_lock(request_id: int) -> DataRequest:
    """Lock the dataset row, then the request row: the one lock order every service uses.

    Call inside a transaction. Only the request's own row is locked by the second query
    (``of=("self",)``): its dataset is already locked and its purpose must not be, or every
    approval under one purpose would queue behind the others.
    """
    dataset_id = DataRequest.objects.filter(pk=request_id).values_list("dataset_id", flat=True).first()
    if dataset_id is None:
        raise NotFoundError(f"No request #{request_id}.")
    Dataset.objects.select_for_update().get(pk=dataset_id)
    return DataRequest.objects.select_for_update(of=("self",)).select_related("dataset", "purpose").get(pk=request_id)


def filing_target(*, dataset_name: str, purpose_name: str) -> tuple[Dataset, Purpose, DatasetVersion]:
    """The dataset, purpose and newest source version a request names (filing, the outlook); a clear error if not."""
    dataset = Dataset.objects.filter(name=dataset_name).first()
    if dataset is None:
        raise NotFoundError(f"No dataset named {dataset_name!r}.", extra={"field": "dataset"})
    purpose = Purpose.objects.filter(name=purpose_name).first()
    if purpose is None:
        raise NotFoundError(f"No purpose named {purpose_name!r}.", extra={"field": "purpose"})
    source = dataset.versions.filter(kind=VersionKind.SOURCE).order_by("-number").first()
    if source is None:
        raise ConflictError(f"Dataset {dataset_name!r} has no source version yet.")
    return dataset, purpose, source


def access_request_create(
    *,
    actor: User,
    dataset_name: str,
    purpose_name: str,
    epsilon: Any,
    delta: Any,
    n_rows: Any,
    generator: str = "mst",
    generator_params: dict[str, Any] | None = None,
    rebalance: dict[str, Any] | None = None,
    recipient_kind: str = RecipientKind.INTERNAL,
    recipient: str = "",
    justification: str = "",
    seed: int | None = None,
    output_format: str = OutputFormat.CSV,
    submit: bool = True,
    client_token: str | None = None,
) -> DataRequest:
    """File a request against the dataset's newest source version; submit it unless a draft is asked.

    With a ``client_token`` the call is idempotent: the same requester sending the same token
    again (a double click, a retried POST) gets the request the first call created, and nothing
    new is written. A unique constraint decides between two concurrent calls.
    """
    if not user_has_role(actor, Role.REQUESTER):
        raise PermissionDeniedError("Only a requester can file data requests.")
    client_token = text_checked(client_token or "", field="client_token", max_chars=64).strip()
    existing = _request_for_token(actor, client_token)
    if existing is not None:
        return existing
    dataset, purpose, source, fields = _filing_checked(
        dataset_name=dataset_name,
        purpose_name=purpose_name,
        epsilon=epsilon,
        delta=delta,
        n_rows=n_rows,
        generator=generator,
        generator_params=generator_params or {},
        rebalance=rebalance,
        recipient_kind=recipient_kind,
        recipient=recipient,
        justification=justification,
        seed=seed,
        output_format=output_format,
    )
    recipient, justification = fields.pop("recipient"), fields.pop("justification")
    try:
        with transaction.atomic():
            request = DataRequest.objects.create(
                dataset=dataset,
                source_version=source,
                purpose=purpose,
                requester=actor,
                recipient=recipient,
                justification=justification,
                client_token=client_token,
                **fields,
            )
            audit_event_record(
                actor=actor,
                action="request.create",
                obj=request,
                after={"state": request.state, "dataset": dataset.name, "purpose": purpose.name, **fields},
            )
            if submit:
                access_request_submit(actor=actor, request_id=request.pk)
    except IntegrityError:
        # A concurrent call with the same token won the unique constraint: answer with its request.
        existing = _request_for_token(actor, client_token)
        if existing is None:
            raise
        return existing
    request.refresh_from_db()
    return request


def access_request_fields_check(
    *,
    dataset_name: str,
    purpose_name: str,
    epsilon: Any,
    delta: Any,
    n_rows: Any,
    generator: str = "mst",
    rebalance: dict[str, Any] | None = None,
    recipient_kind: str = RecipientKind.INTERNAL,
    recipient: str = "",
    justification: str = "",
    output_format: str = OutputFormat.CSV,
) -> None:
    """Check a request's fields as filing would, and name every mistake in one error; nothing is filed.

    The dashboard calls it when its form is incomplete, so the requester sees every mistake at
    once (as ``dataset_register_fields_check`` does for registration).
    """
    _filing_checked(
        dataset_name=dataset_name,
        purpose_name=purpose_name,
        epsilon=epsilon,
        delta=delta,
        n_rows=n_rows,
        generator=generator,
        generator_params={},
        rebalance=rebalance,
        recipient_kind=recipient_kind,
        recipient=recipient,
        justification=justification,
        seed=None,
        output_format=output_format,
    )


def _filing_checked(
    *, dataset_name: str, purpose_name: str, recipient: str, justification: str, **request_fields: Any
) -> tuple[Dataset, Purpose, DatasetVersion, dict[str, Any]]:
    """The request's target and every field checked; all mistakes in one error (a missing target stops first)."""
    dataset, purpose, source = filing_target(dataset_name=dataset_name, purpose_name=purpose_name)
    errors: list[ValidationError] = []
    checked_justification = error_collected(errors, lambda: text_checked(justification, field="justification"))
    checked_recipient = error_collected(
        errors, lambda: text_checked(recipient, field="recipient", max_chars=RECIPIENT_MAX_CHARS)
    )
    fields = _validated_fields(purpose=purpose, source=source, errors=errors, **request_fields)
    return dataset, purpose, source, {**fields, "recipient": checked_recipient, "justification": checked_justification}


def _request_for_token(actor: User, client_token: str) -> DataRequest | None:
    if not client_token:
        return None
    return DataRequest.objects.filter(requester=actor, client_token=client_token).first()


def _validated_fields(
    *,
    purpose: Purpose,
    source: DatasetVersion,
    epsilon: Any,
    delta: Any,
    n_rows: Any,
    generator: str,
    generator_params: dict[str, Any],
    rebalance: dict[str, Any] | None,
    recipient_kind: str,
    seed: int | None,
    output_format: str = OutputFormat.CSV,
    errors: list[ValidationError] | None = None,
    disclose_rows: bool = False,
) -> dict[str, Any]:
    """The request's fields checked against its purpose and source; every mistake in one error.

    ``errors`` already found by the caller (its own fields) are raised together with these.
    ``disclose_rows``: the reader may see the version's row estimate (stewards, approvers).
    """
    errors = [] if errors is None else errors
    epsilon_value = error_collected(errors, lambda: _epsilon_checked(epsilon, purpose))
    delta_value = error_collected(
        errors, lambda: parse_decimal(delta, field="delta", minimum=Decimal(0), maximum_exclusive=Decimal(1))
    )
    rows = error_collected(errors, lambda: parse_rows(n_rows))
    error_collected(errors, lambda: _check_recipient_kind(recipient_kind, purpose))
    error_collected(errors, lambda: _check_generator(generator, generator_params, purpose))
    validated_rebalance = error_collected(errors, lambda: _validated_rebalance(rebalance, source))
    checked_format = error_collected(errors, lambda: output_format_checked(output_format))
    # A check whose answer depends on a type read from the rows (the audit's power, the generator's
    # minimum ε) would tell it, and could spend: none runs until the types are declared.
    types_declared = error_collected(errors, lambda: types_declared_check(source))
    error_collected(errors, lambda: _check_declared_domains(source))
    if types_declared:
        error_collected(errors, lambda: rows_hold_check(source))
    if rows is not None and types_declared:
        error_collected(errors, lambda: _check_audit_power(purpose, source, rows))
    if epsilon_value is not None and delta_value is not None and types_declared:
        error_collected(
            errors,
            lambda: _check_generator_budget(
                generator, generator_params, purpose, source, epsilon_value, delta_value, disclose_rows
            ),
        )
    if errors:
        raise errors_combined(errors)
    return {
        "epsilon": epsilon_value,
        "delta": delta_value,
        "n_rows": rows,
        "generator": generator,
        "generator_params": generator_params,
        "rebalance": validated_rebalance,
        "recipient_kind": recipient_kind,
        "seed": seed,
        "output_format": checked_format,
    }


def _epsilon_checked(epsilon: Any, purpose: Purpose) -> Decimal:
    value = parse_decimal(epsilon, field="epsilon", minimum_exclusive=Decimal(0))
    if value > purpose.max_epsilon:
        raise ValidationError(
            f"ε = {amount_text(value)} is more than purpose “{purpose.name}” allows "
            f"(at most ε = {amount_text(purpose.max_epsilon)} per release).",
            extra={"field": "epsilon", "max_epsilon": amount_text(purpose.max_epsilon)},
        )
    return value


def _check_recipient_kind(recipient_kind: str, purpose: Purpose) -> None:
    if recipient_kind not in purpose.allowed_recipients:
        raise ValidationError(
            f"Purpose {purpose.name!r} allows recipients {purpose.allowed_recipients}, not {recipient_kind!r}.",
            extra={"field": "recipient_kind"},
        )


def parse_rows(n_rows: Any) -> int:
    """A synthetic row count within the platform's limit."""
    try:
        rows = int(str(n_rows))
    except ValueError as error:
        raise ValidationError(f"rows must be a whole number; got {n_rows!r}.", extra={"field": "n_rows"}) from error
    limit = settings.SYNTHGATE_MAX_ROWS
    if rows <= 0 or rows > limit:
        raise ValidationError(
            f"rows must be between 1 and {limit:,}; got {rows}.", extra={"field": "n_rows", "max_rows": limit}
        )
    return rows


def types_declared_check(source: DatasetVersion) -> bool:
    """Refuse a source whose schema still holds a type proposed from its rows (issues 11.1, 11.3):
    the generators would take their support from it, and one row changes it. Checked before
    anything that could spend; a steward declares the types."""
    reason = undeclared_types_reason(source)
    if reason:
        raise ValidationError(
            reason,
            extra={"field": "dataset", "undeclared_types": proposed_type_columns(source.schema)},
            code="undeclared_types",
        )
    return True


def undeclared_types_reason(version: DatasetVersion) -> str:
    """Why ``version`` cannot be requested while a type is proposed, with how a steward declares
    it (empty when every type is declared)."""
    columns = proposed_type_columns(version.schema)
    if not columns:
        return ""
    name = version.dataset.name
    listed = ", ".join(repr(column) for column in columns)
    if version.source_reference:  # by reference: proposed from the catalog; the schema is otherwise fixed
        return (
            f"Dataset {name!r} cannot be requested yet: the types of {listed} on {version} were proposed from "
            "its data's catalog and are not declared (a type is the steward's to declare, not the data's). A "
            f"steward declares them as proposed with `synthgate dataset declare {name} --accept-proposed-types`, "
            f'by POST /api/datasets/{name}/declare/ {{"accept_proposed_types": true}}, or on the dataset\'s '
            "dashboard page (“Declare the proposed types as shown”), or registers the data again with the types "
            "declared. Nothing was filed or spent."
        )
    return (
        f"Dataset {name!r} cannot be requested yet: the types of {listed} "
        f"on {version} were proposed from its rows and are not declared (a type read from the rows would let one "
        "row change what a release can hold). A steward declares them: as proposed with "
        f"`synthgate dataset declare {name} --accept-proposed-types`, one by one with "
        f"`synthgate dataset declare {name} --column COLUMN --type TYPE`, by POST /api/datasets/{name}/declare/ "
        '{"accept_proposed_types": true} (or {"columns": {COLUMN: {"type": TYPE}}}), or on the dashboard\'s '
        "schema step (the dataset's page, “Declare roles and public domains”, then “Declare the proposed types "
        "as shown”). Nothing was filed or spent."
    )


ROWS_UNDER_REVIEW = (
    "Dataset {name!r} cannot be requested yet: this version's declarations await its steward's review. "
    "Nothing was filed or spent."
)


def rows_hold_check(source: DatasetVersion) -> None:
    """Refuse an uploaded source version stored before registration checked its rows against its
    declarations, if they contradict them (``version_rows_check``, which records the steward's
    reason on the version and sets ``rows_checked`` when they hold). The refusal names no column,
    value or count: which declaration fails, and on how many rows, is the real rows' to tell, and
    one row flips it; the steward reads the reason (``rows_contradiction``). Versions by reference
    are checked in their engine."""
    if not source.rows_check_due:
        return
    if version_rows_check(source):
        raise ValidationError(
            ROWS_UNDER_REVIEW.format(name=source.dataset.name),
            extra={"field": "dataset"},
            code="declarations_under_review",
        )


def _check_declared_domains(source: DatasetVersion) -> None:
    """Refuse a source whose label or protected columns have undeclared domains: the release must
    never give them values they cannot have (``other``, or missing when not declared nullable), and
    an estimated domain could (issue 11.7). Nothing is spent; a steward declares the domain."""
    undeclared = undeclared_domains(parse_schema(source.schema))
    if undeclared:
        raise ValidationError(
            f"Dataset {source.dataset.name!r} cannot be requested yet: " + "; ".join(undeclared) + ".",
            extra={"field": "dataset", "undeclared_domains": undeclared},
        )


def _check_audit_power(purpose: Purpose, source: DatasetVersion, rows: int) -> None:
    """Refuse a size at which the audit's membership checks cannot catch their positive control:
    the audit could only end inconclusive, and an inconclusive release can never be made.

    Judged on the source version's DP row estimate, never on its exact count (issue 11.2): a
    refusal that one row more or less flips would release the count. The estimate is drawn at
    registration; a version registered before it existed pays for it here, once.
    """
    audit_planner().require_decidable(
        source_rows=version_public_rows(version=source, actor=None),
        holdout_fraction=float(purpose.holdout_fraction),
        thresholds={**default_audit_thresholds(), **(purpose.audit_thresholds or {})},
        n_rows=rows,
    )


def _check_generator(name: str, params: dict[str, Any], purpose: Purpose) -> None:
    from synth_engine.generators import GeneratorError, get_generator

    try:
        generator = get_generator(name, **params)
    except GeneratorError as error:
        raise ValidationError(str(error), extra={"field": "generator"}) from error
    except TypeError as error:
        raise ValidationError(
            f"Invalid parameter for generator {name!r}: {error}", extra={"field": "generator_params"}
        ) from error
    if not generator.is_private and not purpose.allow_non_private:
        raise ValidationError(
            f"Generator {name!r} is not differentially private (ε = ∞) and purpose "
            f"{purpose.name!r} does not allow non-private releases.",
            extra={"field": "generator"},
        )


def _check_generator_budget(
    name: str,
    params: dict[str, Any],
    purpose: Purpose,
    source: DatasetVersion,
    epsilon: Decimal,
    delta: Decimal,
    disclose_rows: bool,
) -> None:
    """Refuse an ε the generator would refuse for this version, before anything is spent (issue 11.2).

    The job hands the generator the version's paid DP row estimate (:func:`version_row_estimate`)
    and the generator decides on it before reading the data; this is the same decision on the
    same inputs (``budget_refusal``), so a request filed and approved here is never refused by
    its fit. A requester reads the minimum ε rounded up to 2 decimals and no row figure; with
    ``disclose_rows`` (stewards, approvers) the estimate is named too.
    """
    from synth_engine.generators import GeneratorError, get_generator

    try:
        generator = get_generator(name, **params)
    except (GeneratorError, TypeError):
        return  # _check_generator names the mistake
    try:  # the (ε, δ) the generator's mechanism can take at all (the Gaussian mechanism needs δ > 0)
        generator.plan_privacy(float(epsilon), float(delta))
    except GeneratorError as error:
        field = "delta" if "delta" in str(error) else "epsilon"
        raise ValidationError(
            f"Generator {name!r} cannot run at ε = {amount_text(epsilon)}, δ = {amount_text(delta)}: {error}. "
            "Nothing was spent or reserved.",
            extra={"field": field},
        ) from error
    if not generator.takes_row_estimate:
        return
    try:
        estimate = version_row_estimate(version=source, holdout_fraction=purpose.holdout_fraction)
    except BudgetExhaustedError:
        return  # the estimate cannot be paid for: _check_audit_power names it (with valid rows)
    try:
        refusal = generator.budget_refusal(source.schema, float(epsilon), float(delta), estimate)
    except GeneratorError:
        return  # an invalid target or parameter: the job's planning refuses it before any spend
    if refusal is None:
        return
    minimum = Decimal(math.ceil(refusal.minimum_epsilon * 100)) / 100
    size = (
        f"about {refusal.rows:.0f} training rows (the version's DP row estimate)"
        if disclose_rows
        else "its size (judged on a DP estimate, which requesters do not read)"
    )
    allowed = (
        f"use ε ≥ {amount_text(minimum)} at δ = {amount_text(delta)}"
        if minimum <= purpose.max_epsilon
        else f"purpose “{purpose.name}” allows at most ε = {amount_text(purpose.max_epsilon)}, below the "
        f"ε ≥ {amount_text(minimum)} it needs at δ = {amount_text(delta)}"
    )
    raise ValidationError(
        f"ε = {amount_text(epsilon)} is too small for generator {name!r} on dataset {source.dataset.name!r}: "
        f"for {len(source.schema.get('columns', []))} columns and {size}, its marginal noise would swamp "
        f"the counts and the generator would refuse to fit. {allowed[0].upper()}{allowed[1:]}, or declare "
        "fewer columns. Nothing was spent or reserved.",
        extra={"field": "epsilon", "minimum_epsilon": amount_text(minimum)},
    )


def _validated_rebalance(rebalance: dict[str, Any] | None, source: DatasetVersion) -> dict[str, Any] | None:
    """Rebalancing names classes of the label's declared (public) categories, with shares that sum right."""
    if not rebalance:
        return None
    column, shares = rebalance.get("column"), rebalance.get("shares")
    labels = [spec for spec in parse_schema(source.schema) if spec.role == "label"]
    if not labels or column != labels[0].name:
        raise ValidationError(
            f"Rebalancing needs the label column ({labels[0].name if labels else 'none declared'}); got {column!r}.",
            extra={"field": "rebalance"},
        )
    if not isinstance(shares, dict) or not shares:
        raise ValidationError('Rebalancing needs target shares, e.g. {"Yes": 0.5}.', extra={"field": "rebalance"})
    try:
        values = {str(key): float(value) for key, value in shares.items()}
    except (TypeError, ValueError) as error:
        raise ValidationError("Rebalancing shares must be numbers.", extra={"field": "rebalance"}) from error
    if any(not 0 < value < 1 for value in values.values()) or sum(values.values()) > 1 + 1e-9:
        raise ValidationError(
            "Each rebalancing share must lie in (0, 1) and together at most 1.", extra={"field": "rebalance"}
        )
    _check_declared_classes(column, values, labels[0].categories)
    return {"column": column, "shares": values}


def _check_declared_classes(column: str, shares: dict[str, float], declared: tuple[Any, ...] | None) -> None:
    how = (
        f"A steward declares them as public: synthgate dataset declare DATASET --column {column} "
        "--categories A,B,... (or the dataset page's schema form in the dashboard)."
    )
    if declared is None:
        raise ValidationError(
            f"Rebalancing names classes of {column!r}, whose categories are not declared (public). {how}",
            extra={"field": "rebalance", "declared_categories": None},
        )
    names = [str(category) for category in declared]
    unknown = [name for name in shares if name not in names]
    if unknown:
        raise ValidationError(
            f"{', '.join(map(repr, unknown))} is not a declared category of {column!r} "
            f"(declared: {', '.join(names)}). {how}",
            extra={"field": "rebalance", "declared_categories": names},
        )
    total = sum(shares.values())
    if len(shares) == len(names) and abs(total - 1) > 1e-9:
        raise ValidationError(
            f"Shares for every class of {column!r} must sum to 1; they sum to {total:g}.",
            extra={"field": "rebalance"},
        )
    if len(shares) < len(names) and total > 1 - 1e-9:
        raise ValidationError(
            f"Shares of the named classes sum to {total:g}, leaving nothing for "
            f"{', '.join(name for name in names if name not in shares)}; keep their sum below 1.",
            extra={"field": "rebalance"},
        )


def access_request_revalidate(*, request: DataRequest, disclose_rows: bool = False) -> None:
    """Check a filed request again against today's public facts (before an approval reserves budget)."""
    try:
        _validated_fields(
            purpose=request.purpose,
            source=request.source_version,
            epsilon=request.epsilon,
            delta=request.delta,
            n_rows=request.n_rows,
            generator=request.generator,
            generator_params=request.generator_params,
            rebalance=request.rebalance,
            recipient_kind=request.recipient_kind,
            seed=request.seed,
            output_format=request.output_format,
            disclose_rows=disclose_rows,
        )
    except ValidationError as error:
        raise ValidationError(
            f"Request #{request.pk} can no longer run as filed: {error.message} "
            "Reject it, or the requester withdraws it and files a corrected one.",
            extra={**error.extra, "request": request.pk},
            code="request_invalid",
        ) from error


def access_request_submit(*, actor: User, request_id: int) -> DataRequest:
    """Draft → submitted; only the requester may submit."""
    with transaction.atomic():
        request = access_request_lock(request_id)
        _require_owner(actor, request, "submit")
        request.submitted_at = timezone.now()
        return request_transition(request=request, target=S.SUBMITTED, actor=actor, action="submit")


def access_request_withdraw(*, actor: User, request_id: int, reason: str = "") -> DataRequest:
    """The requester withdraws; an outstanding reservation is released in the same transaction."""
    reason = text_checked(reason, field="reason")
    with transaction.atomic():
        request = access_request_lock(request_id)
        _require_owner(actor, request, "withdraw")
        request.decision_reason = reason
        request_transition(
            request=request, target=S.WITHDRAWN, actor=actor, action="withdraw", extra={"reason": reason}
        )
        budget_release(request=request, actor=actor, note="request withdrawn")
        return request


def access_request_approve(*, actor: User, request_id: int, reason: str = "") -> DataRequest:
    """Record one approval; the last one the purpose requires reserves the budget (four-eyes)."""
    reason = text_checked(reason, field="reason")
    with transaction.atomic():
        request = access_request_lock(request_id)
        _require_decider(actor, request, "approve")
        access_request_revalidate(request=request, disclose_rows=real_row_counts_visible(actor))
        _approval_create(actor=actor, request=request, decision=Decision.APPROVE, reason=reason)
        approvers = request.approvals.filter(decision=Decision.APPROVE).values("approver").distinct().count()
        if approvers < request.purpose.approvals_required:
            return request
        budget_reserve(request=request, actor=actor)
        request.decided_at = timezone.now()
        return request_transition(
            request=request,
            target=S.APPROVED,
            actor=actor,
            action="approve",
            extra={"approvers": approvers, "reserved_epsilon": request.epsilon, "reserved_delta": request.delta},
        )


def access_request_reject(*, actor: User, request_id: int, reason: str) -> DataRequest:
    """One approver's rejection, with a reason, ends the request."""
    if not reason or not reason.strip():
        raise ValidationError("A reason is required to reject a request.", extra={"field": "reason"})
    reason = text_checked(reason, field="reason")
    with transaction.atomic():
        request = access_request_lock(request_id)
        _require_decider(actor, request, "reject")
        _approval_create(actor=actor, request=request, decision=Decision.REJECT, reason=reason)
        request.decided_at = timezone.now()
        request.decision_reason = reason
        return request_transition(
            request=request, target=S.REJECTED, actor=actor, action="reject", extra={"reason": reason}
        )


def _approval_create(*, actor: User, request: DataRequest, decision: str, reason: str) -> Approval:
    try:
        with transaction.atomic():
            approval = Approval.objects.create(
                request=request, approver=actor, requester_id=request.requester_id, decision=decision, reason=reason
            )
    except IntegrityError as error:
        raise ConflictError(
            f"{actor.username} has already decided on request #{request.pk}; "
            "a second approval must come from a different approver."
        ) from error
    audit_event_record(
        actor=actor,
        action=f"approval.{decision}",
        obj=approval,
        after={"request": request.pk, "decision": decision, "reason": reason},
    )
    return approval


def _require_owner(actor: User, request: DataRequest, action: str) -> None:
    _require_visible(actor, request)
    if request.requester_id != actor.pk:
        raise PermissionDeniedError(f"Only the requester can {action} request #{request.pk}.")


def _require_decider(actor: User, request: DataRequest, action: str) -> None:
    _require_visible(actor, request)
    if request.requester_id == actor.pk:
        raise FourEyesError(f"You filed request #{request.pk}; a requester can never {action} their own request.")
    if not user_has_role(actor, Role.APPROVER):
        raise PermissionDeniedError(f"Only an approver can {action} requests.")
    if request.state != S.SUBMITTED:
        raise _invalid_transition(request, action)


def _require_visible(actor: User, request: DataRequest) -> None:

    if not request_visible_to(actor, request):
        raise NotFoundError(f"No request #{request.pk}.")
