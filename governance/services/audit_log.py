"""The tamper-evident audit log: append one hash-chained event; verify the chain."""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from django.contrib.auth.models import User
from django.db import models, transaction
from django.db.models import F
from django.utils import timezone

from core.amounts import amount_text
from core.context import current_channel
from core.errors import ConflictError
from governance.models import AuditChainHead, AuditEvent, BudgetEntry
from governance.services.checkpoints import (
    Checkpoint,
    Compaction,
    CompactionRefused,
    checkpoint_sign,
    checkpoint_sign_after_commit,
    checkpoints_compact,
    checkpoints_read,
)

GENESIS_HASH = "0" * 64


def to_jsonable(value: Any) -> Any:
    """Decimals as exact strings, datetimes as ISO text, model instances as their pk."""
    if isinstance(value, Decimal):
        # Normalised, so a value reads the same whether it came from input or from a NUMERIC column.
        return amount_text(value)
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
            object_type=object_type or ((obj._meta.model_name or "") if obj is not None else ""),
            object_id=str(object_id or (obj.pk if obj is not None else "")),
            before=before,
            after=after,
            prev_hash=head.last_hash,
        )
        event.hash = _hash_of(event)
        event.save(force_insert=True)
        AuditChainHead.objects.filter(pk=head.pk).update(last_hash=event.hash)
        length, digest = event.id, event.hash
        transaction.on_commit(lambda: checkpoint_sign_after_commit(length=length, hash=digest))
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
    checkpoint: Checkpoint | None = None
    problems: list[str] = field(default_factory=list)


# Events newer than this may still be waiting for their checkpoint (written just after commit).
UNANCHORED_GRACE_SECONDS = 60


def audit_log_verify(*, batch_size: int = 2000, grace_seconds: float = UNANCHORED_GRACE_SECONDS) -> ChainVerification:
    """Recompute every hash in order, compare the chain with its signed checkpoints and the ledger
    with its events, and name the first event that does not match."""
    chain = _chain_verify(batch_size)
    if not chain.ok:
        return chain
    problems: list[tuple[int | None, str]] = []
    checkpoint, anchored = _against_checkpoints(chain, grace_seconds, problems)
    problems += [(None, problem) for problem in ledger_verify()]
    if not problems:
        return ChainVerification(True, chain.events_checked, None, "", chain.last_hash, checkpoint)
    ids = [event_id for event_id, _ in problems if event_id is not None]
    first = min(ids) if ids else None
    reason = next(text for event_id, text in problems if event_id == first) if ids else problems[0][1]
    return ChainVerification(
        False, anchored, first, reason, chain.last_hash, checkpoint, [text for _, text in problems]
    )


def audit_log_checkpoint() -> Checkpoint:
    """Sign the current head (after an upgrade or a reviewed restore); refused if the chain is broken."""
    chain = _chain_verify(2000)
    if not chain.ok:
        raise ConflictError(f"The chain is broken at event {chain.first_broken_id}: {chain.reason}")
    checkpoint = checkpoint_sign(length=chain.events_checked, hash=chain.last_hash)
    if checkpoint is None:
        raise ConflictError("No signing key is registered to sign checkpoints.")
    return checkpoint


def audit_log_compact_checkpoints(*, keep: int = 100, actor: User | None = None) -> Compaction:
    """Fold the older checkpoint objects into one signed segment (``checkpoints_compact``) and record
    it in the log: which events the segment holds, under which key, and what was removed. Refused
    (nothing written or removed) when checkpoints are a file, or an object to fold does not verify."""
    try:
        result = checkpoints_compact(keep=keep)
    except (ValueError, CompactionRefused) as error:
        raise ConflictError(str(error)) from error
    if result.segment is not None:
        audit_event_record(
            actor=actor,
            action="audit_log.checkpoints_compacted",
            object_type="checkpoint_segment",
            object_id=f"{result.first}-{result.last}",
            after={
                "segment": result.segment,
                "first": result.first,
                "last": result.last,
                "checkpoints": result.checkpoints,
                "removed": result.removed,
                "not_removed": len(result.not_removed),
                "kept_single": result.kept,
            },
        )
    return result


def _chain_verify(batch_size: int) -> ChainVerification:
    """The chain on its own: every hash recomputed, every link checked, the head agreeing."""
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


def _against_checkpoints(
    chain: ChainVerification, grace_seconds: float, problems: list[tuple[int | None, str]]
) -> tuple[Checkpoint | None, int]:
    """Compare the chain with the signed checkpoints; return the latest one and how many events it anchors."""
    read = checkpoints_read()
    problems += [(None, problem) for problem in read.problems]
    length = chain.events_checked
    hashes = dict(AuditEvent.objects.filter(id__in={c.length for c in read.checkpoints}).values_list("id", "hash"))
    beyond = max((c for c in read.checkpoints if c.length > length), key=lambda c: c.length, default=None)
    if beyond is not None:
        problems.append(
            (
                length + 1,
                f"cut tail: a signed checkpoint of {beyond.at} records {beyond.length} events, "
                f"but the log ends at event {length}",
            )
        )
    for checkpoint in read.checkpoints:
        if checkpoint.length <= length and hashes.get(checkpoint.length) != checkpoint.hash:
            problems.append(
                (
                    checkpoint.length,
                    f"event {checkpoint.length} disagrees with its signed checkpoint of {checkpoint.at}: "
                    "the chain was rewritten",
                )
            )
    latest = max(read.checkpoints, key=lambda c: c.length, default=None)
    anchored = min(latest.length, length) if latest else 0
    if length > anchored:
        problems += _unanchored_tail(anchored, length, grace_seconds)
    return latest, anchored


def _unanchored_tail(anchored: int, length: int, grace_seconds: float) -> list[tuple[int | None, str]]:
    """Events after the latest checkpoint: fine while fresh (their checkpoint is being written)."""
    now = timezone.now()
    old = AuditEvent.objects.filter(id__gt=anchored).filter(
        models.Q(created_at__lt=now - timedelta(seconds=grace_seconds))
        | models.Q(created_at__gt=now + timedelta(seconds=grace_seconds))
    )
    first = old.order_by("id").values_list("id", flat=True).first()
    if first is None:
        return []
    if grace_seconds > 0:
        time.sleep(0.5)  # a checkpoint may have been written since they were read
        latest = max((c.length for c in checkpoints_read(from_length=anchored + 1).checkpoints), default=0)
        if latest >= length:
            return []
    return [
        (
            first,
            f"events {first}–{length} are not covered by any signed checkpoint: they were written outside "
            "the application (or it stopped before signing them; after review, `synthgate log checkpoint`)",
        )
    ]


def ledger_verify(*, dataset_name: str | None = None) -> list[str]:
    """Every ledger row against the audit event that recorded it (same content), and every
    ``budget.*`` event against its row: a forged, altered or deleted row is named."""
    entries = BudgetEntry.objects.select_related("dataset").order_by("id")
    events = AuditEvent.objects.filter(object_type="budgetentry", action__startswith="budget.")
    if dataset_name is not None:
        entries = entries.filter(dataset__name=dataset_name)
        events = events.filter(after__dataset=dataset_name)
    recorded = {event.object_id: event for event in events}
    problems = []
    for entry in entries:
        event = recorded.pop(str(entry.pk), None)
        described = f"ledger entry #{entry.pk} ({entry.kind} ε={to_jsonable(entry.epsilon)} on " + (
            f"request #{entry.request_id})" if entry.request_id is not None else f"version #{entry.version_id})"
        )
        if event is None:
            problems.append(f"{described} has no audit event: it was written outside the application")
        elif _entry_content(entry) != _event_content(event):
            problems.append(f"{described} differs from audit event {event.id} that recorded it: it was altered")
    problems += [
        f"audit event {event.id} records ledger entry #{object_id}, which is missing from the ledger: it was deleted"
        for object_id, event in recorded.items()
    ]
    return problems


def _entry_content(entry: BudgetEntry) -> dict[str, Any]:
    return {
        "action": f"budget.{entry.kind}",
        "dataset": entry.dataset.name,
        "request": entry.request_id,
        "job": entry.job_id,
        "epsilon": to_jsonable(entry.epsilon),
        "delta": to_jsonable(entry.delta),
        "mechanism": entry.mechanism,
    }


def _event_content(event: AuditEvent) -> dict[str, Any]:
    after = event.after or {}
    return {
        "action": event.action,
        **{key: after.get(key) for key in ("dataset", "request", "job", "epsilon", "delta", "mechanism")},
    }


def _check_event(event: AuditEvent, expected_prev: str, expected_id: int) -> str:
    if event.id != expected_id:
        return f"event {expected_id} is missing (next stored event is {event.id})"
    if event.prev_hash != expected_prev:
        return f"event {event.id} does not link to the hash of event {event.id - 1}"
    if _hash_of(event) != event.hash:
        return f"event {event.id} ({event.action}) was altered: its content does not match its hash"
    return ""
