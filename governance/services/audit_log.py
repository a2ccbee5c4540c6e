"""The tamper-evident audit log: append one hash-chained event; verify the chain."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from django.contrib.auth.models import User
from django.db import models, transaction
from django.db.models import F
from django.utils import timezone

from core.context import current_channel
from governance.models import AuditChainHead, AuditEvent

GENESIS_HASH = "0" * 64


def to_jsonable(value: Any) -> Any:
    """Decimals as exact strings, datetimes as ISO text, model instances as their pk."""
    if isinstance(value, Decimal):
        # Normalised, so a value reads the same whether it came from input or from a NUMERIC column.
        return format(value.normalize(), "f")
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, models.Model):
        return value.pk
    if isinstance(value, dict):
        return {str(key): to_jsonable(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [to_jsonable(item) for item in value]
    return value


def event_hash(
    *,
    prev_hash: str,
    event_id: int,
    created_at: datetime,
    actor_name: str,
    channel: str,
    action: str,
    object_type: str,
    object_id: str,
    before: Any,
    after: Any,
) -> str:
    """sha256 over a canonical JSON of the event's content and the previous event's hash."""
    payload = json.dumps(
        {
            "prev": prev_hash,
            "id": event_id,
            "at": created_at.astimezone(UTC).isoformat(timespec="microseconds"),
            "actor": actor_name,
            "channel": channel,
            "action": action,
            "object": [object_type, str(object_id)],
            "before": before,
            "after": after,
        },
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=False,
    )
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()


def audit_event_record(
    *,
    actor: User | None,
    action: str,
    obj: models.Model | None = None,
    object_type: str = "",
    object_id: str = "",
    before: Any = None,
    after: Any = None,
) -> AuditEvent:
    """Append one event to the chain; appends are serialised so the chain never forks."""
    with transaction.atomic():
        # Updating the head row first takes its row lock (PostgreSQL) or the database's
        # write lock (SQLite) before the previous hash is read: two concurrent appends
        # can never both link to the same predecessor.
        head = _chain_head_locked()
        created_at = timezone.now()
        before, after = to_jsonable(before), to_jsonable(after)
        event = AuditEvent(
            id=head.length + 1,
            created_at=created_at,
            actor=actor if getattr(actor, "pk", None) else None,
            actor_name=getattr(actor, "username", "") or "system",
            channel=current_channel(),
            action=action,
            object_type=object_type or (obj._meta.model_name if obj is not None else ""),
            object_id=str(object_id or (obj.pk if obj is not None else "")),
            before=before,
            after=after,
            prev_hash=head.last_hash,
        )
        event.hash = _hash_of(event)
        event.save(force_insert=True)
        AuditChainHead.objects.filter(pk=head.pk).update(last_hash=event.hash)
        return event


def _chain_head_locked() -> AuditChainHead:
    updated = AuditChainHead.objects.filter(pk=1).update(length=F("length") + 1)
    if not updated:
        AuditChainHead.objects.get_or_create(pk=1, defaults={"last_hash": GENESIS_HASH, "length": 0})
        AuditChainHead.objects.filter(pk=1).update(length=F("length") + 1)
    head = AuditChainHead.objects.select_for_update().get(pk=1)
    head.length -= 1  # the value before this append: the new event's id is length + 1
    return head


def _hash_of(event: AuditEvent) -> str:
    return event_hash(
        prev_hash=event.prev_hash,
        event_id=event.id,
        created_at=event.created_at,
        actor_name=event.actor_name,
        channel=event.channel,
        action=event.action,
        object_type=event.object_type,
        object_id=event.object_id,
        before=event.before,
        after=event.after,
    )


@dataclass(frozen=True)
class ChainVerification:
    ok: bool
    events_checked: int
    first_broken_id: int | None = None
    reason: str = ""
    last_hash: str = GENESIS_HASH


def audit_log_verify(*, batch_size: int = 2000) -> ChainVerification:
    """Recompute every hash in order and name the first event that does not match."""
    expected_prev, expected_id, checked = GENESIS_HASH, 1, 0
    for event in AuditEvent.objects.order_by("id").iterator(chunk_size=batch_size):
        problem = _check_event(event, expected_prev, expected_id)
        if problem:
            # A gap names the missing event, as a cut at the end does, not the one after it.
            broken_id = expected_id if event.id != expected_id else event.id
            return ChainVerification(False, checked, broken_id, problem, expected_prev)
        expected_prev, expected_id, checked = event.hash, event.id + 1, checked + 1
    head = AuditChainHead.objects.filter(pk=1).first()
    if head is not None and (head.length != checked or head.last_hash != expected_prev):
        return ChainVerification(
            False,
            checked,
            expected_id,
            f"the chain ends at event {expected_id - 1} but the head records "
            f"{head.length} events: events were removed from the end",
            expected_prev,
        )
    return ChainVerification(True, checked, None, "", expected_prev)


def _check_event(event: AuditEvent, expected_prev: str, expected_id: int) -> str:
    if event.id != expected_id:
        return f"event {expected_id} is missing (next stored event is {event.id})"
    if event.prev_hash != expected_prev:
        return f"event {event.id} does not link to the hash of event {event.id - 1}"
    if _hash_of(event) != event.hash:
        return f"event {event.id} ({event.action}) was altered: its content does not match its hash"
    return ""
