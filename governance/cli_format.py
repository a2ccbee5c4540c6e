"""How the CLI shows governance records: the dicts that both the tables and ``--json`` start from."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from django.contrib.auth.models import User

from core.cli_format import cell, table
from governance.models import Approval, AuditEvent, BudgetEntry, DataRequest, Dataset, DatasetVersion, Purpose
from governance.permissions import (
    version_hash_visible,
    version_rows_contradiction_visible,
    version_rows_visible,
    version_schema_visible,
)

# --- records -----------------------------------------------------------------------------


def user_data(user: User) -> dict[str, Any]:
    roles = sorted(group.name for group in user.groups.all())
    return {
        "username": user.username,
        "email": user.email,
        "roles": roles,
        "active": user.is_active,
        "date_joined": user.date_joined,
    }


def dataset_data(dataset: Dataset) -> dict[str, Any]:
    return {
        "name": dataset.name,
        "description": dataset.description,
        "owner": dataset.owner.username,
        "sensitivity": dataset.sensitivity,
        "epsilon_cap": dataset.epsilon_cap,
        "delta_cap": dataset.delta_cap,
        "created_at": dataset.created_at,
    }


def version_data(version: DatasetVersion, *, viewer: User) -> dict[str, Any]:
    """A version for the CLI; a real version's row count and size are null unless ``viewer`` may
    read them (:func:`governance.permissions.version_rows_visible`)."""
    visible = version_rows_visible(viewer, version)
    return {
        "dataset": version.dataset.name,
        "number": version.number,
        "kind": version.kind,
        "content_hash": version_hash_visible(viewer, version),
        "n_rows": version.n_rows if visible else None,
        "n_columns": version.n_columns,
        "size_bytes": version.size_bytes if visible else None,
        "dropped_columns": version.dropped_columns,
        "schema_inferred": version.schema_inferred,
        "rows_checked": version.rows_checked,
        "rows_contradiction": version_rows_contradiction_visible(viewer, version),
        "original_filename": version.original_filename,
        "parent": version.parent.number if version.parent is not None else None,
        "created_by": version.created_by.username if version.created_by is not None else None,
        "created_at": version.created_at,
        "schema": version_schema_visible(viewer, version),
    }


def schema_table(schema: dict[str, Any]) -> str:
    rows = [
        (
            column["name"],
            _type_text(column),
            column["role"],
            column.get("min"),
            column.get("max"),
            len(column["categories"]) if column.get("categories") else None,
            {True: "yes", False: "no"}.get(column.get("nullable"), "private"),
            _grid(column),
            public_domain(column),
        )
        for column in schema["columns"]
    ]
    return table(("column", "type", "role", "min", "max", "categories", "nullable", "grid", "domain"), rows)


def _type_text(column: dict[str, Any]) -> str:
    """The column's type; a proposed one (read from the rows, not declared) says so, and one hidden
    from the reader (``core.schema.schema_public``) reads ``undeclared``."""
    if column.get("type") is None:
        return "undeclared"
    return f"{column['type']} (proposed)" if column.get("type_proposed") else str(column["type"])


def _grid(column: dict[str, Any]) -> str | None:
    """A datetime's declared resolution and calendar, or a float's step (what its values are released on)."""
    parts = [f"{column['resolution']}s" if column.get("resolution") else None, column.get("calendar")]
    if column.get("step") is not None:
        parts.append(f"step {column['step']}")
    return ", ".join(part for part in parts if part) or None


def public_domain(column: dict[str, Any]) -> str:
    """``public`` when the column's whole domain is declared, else ``private`` (estimated with DP, paid for)."""
    if column.get("type") is None:  # a proposed type hidden from the reader: judged on declared keys only
        declared = column.get("categories") or ("min" in column and "max" in column)
        return "public" if declared else "private (DP, paid)"
    if column["type"] == "boolean":
        return "public"
    if column["type"] == "categorical":
        return "public" if column.get("categories") else "private (DP, paid)"
    return "public" if "min" in column and "max" in column else "private (DP, paid)"


def purpose_data(purpose: Purpose) -> dict[str, Any]:
    return {
        "name": purpose.name,
        "description": purpose.description,
        "max_epsilon": purpose.max_epsilon,
        "approvals_required": purpose.approvals_required,
        "allowed_recipients": purpose.allowed_recipients,
        "allow_non_private": purpose.allow_non_private,
        "holdout_fraction": purpose.holdout_fraction,
        "release_days": purpose.release_days,
        "audit_thresholds": purpose.audit_thresholds,
    }


def request_data(request: DataRequest) -> dict[str, Any]:
    return {
        "id": request.pk,
        "state": request.state,
        "dataset": request.dataset.name,
        "source_version": request.source_version.number,
        "purpose": request.purpose.name,
        "requester": request.requester.username,
        "epsilon": request.epsilon,
        "delta": request.delta,
        "n_rows": request.n_rows,
        "generator": request.generator,
        "generator_params": request.generator_params,
        "rebalance": request.rebalance,
        "seed": request.seed,
        "recipient_kind": request.recipient_kind,
        "recipient": request.recipient,
        "justification": request.justification,
        "created_at": request.created_at,
        "submitted_at": request.submitted_at,
        "decided_at": request.decided_at,
        "decision_reason": request.decision_reason,
    }


REQUEST_COLUMNS = (
    "id",
    "state",
    "dataset",
    "purpose",
    "requester",
    "epsilon",
    "delta",
    "n_rows",
    "generator",
    "created_at",
)


def approval_data(approval: Approval) -> dict[str, Any]:
    return {
        "approver": approval.approver.username,
        "decision": approval.decision,
        "reason": approval.reason,
        "created_at": approval.created_at,
    }


def budget_entry_data(entry: BudgetEntry) -> dict[str, Any]:
    return {
        "id": entry.pk,
        "created_at": entry.created_at,
        "kind": entry.kind,
        "request": entry.request_id,
        "version": entry.version.number if entry.version is not None else None,
        "job": entry.job_id,
        "epsilon": entry.epsilon,
        "delta": entry.delta,
        "mechanism": entry.mechanism,
        "actor": entry.actor.username if entry.actor is not None else None,
        "note": entry.note,
    }


def audit_event_data(event: AuditEvent) -> dict[str, Any]:
    return {
        "id": event.pk,
        "created_at": event.created_at,
        "actor": event.actor_name,
        "channel": event.channel,
        "action": event.action,
        "object_type": event.object_type,
        "object_id": event.object_id,
        "before": event.before,
        "after": event.after,
        "hash": event.hash,
    }


def audit_event_table(events: Iterable[AuditEvent]) -> str:
    return table(
        ("id", "created_at", "actor", "channel", "action", "object", "after"),
        [
            (
                event.pk,
                event.created_at,
                event.actor_name,
                event.channel,
                event.action,
                f"{event.object_type}:{event.object_id}",
                _short(event.after),
            )
            for event in events
        ],
    )


def _short(value: object, limit: int = 60) -> str:
    text = cell(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"
