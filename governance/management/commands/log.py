"""`synthgate log verify|checkpoint|compact|list`: check the hash chain of the audit log, sign its
head, fold old checkpoint objects into a signed segment, or read its tail.

`log verify` exits 1 when the chain is broken, naming the first broken event and why.
"""

from __future__ import annotations

from typing import Any

from django.contrib.auth.models import User
from django.core.management.base import CommandParser

from core.cli import CliError, SynthgateCommand
from core.cli_format import fields
from core.times import time_text
from governance.cli_format import audit_event_data, audit_event_table
from governance.selectors import audit_event_list
from governance.services import audit_log_verify
from governance.services.audit_log import audit_log_checkpoint, audit_log_compact_checkpoints
from governance.services.checkpoints import Checkpoint

CHAIN_BROKEN_EXIT = 1


class Command(SynthgateCommand):
    help = "Verify the audit log's hash chain (exit 1 if broken) or list its latest events."
    examples = (
        "synthgate log verify",
        "synthgate log compact --keep 100",
        "synthgate log list --limit 20 --as dana",
    )

    def add_arguments(self, parser: CommandParser) -> None:
        actions = self.add_subcommands(parser)
        # Anyone may verify the chain (it reveals only event ids), so --as is optional here.
        self.add_subcommand(
            actions, "verify", "recompute every hash; exit 1 and name the first broken event", needs_user=False
        )
        self.add_subcommand(
            actions,
            "checkpoint",
            "sign the current head after review (an upgrade, a restore); exit 1 if the chain is broken",
            needs_user=False,
        )
        compact = self.add_subcommand(
            actions,
            "compact",
            "fold the older checkpoint objects of a bucket into one signed segment (fewer reads for verify)",
            needs_user=False,
        )
        compact.add_argument(
            "--keep", type=int, default=100, help="how many of the newest checkpoints stay single objects (default 100)"
        )
        listing = self.add_subcommand(actions, "list", "the latest events, oldest first")
        listing.add_argument("--limit", type=int, default=20, help="how many events (default 20)")

    def handle_verify(self, actor: User | None, options: dict[str, Any]) -> None:
        result = audit_log_verify()
        data = {
            "ok": result.ok,
            "events_checked": result.events_checked,
            "first_broken_id": result.first_broken_id,
            "reason": result.reason,
            "last_hash": result.last_hash,
            "checkpoint": result.checkpoint.described() if result.checkpoint else None,
            "problems": result.problems,
        }
        if result.ok:
            self.emit(
                data,
                fields(
                    [
                        ("audit log", "intact"),
                        ("events checked", result.events_checked),
                        ("last hash", result.last_hash),
                        ("checkpoint", _checkpoint_text(result.checkpoint)),
                    ]
                ),
            )
            return
        self.emit(
            data,
            fields(
                [
                    ("audit log", "BROKEN"),
                    ("first broken event", result.first_broken_id),
                    ("reason", result.reason),
                    ("events verified before it", result.events_checked),
                    ("all problems", "; ".join(result.problems) or result.reason),
                ]
            ),
        )
        raise CliError(
            f"The audit log's chain is broken at event {result.first_broken_id}: {result.reason}",
            code="chain_broken",
            extra={"first_broken_id": result.first_broken_id},
            returncode=CHAIN_BROKEN_EXIT,
        )

    def handle_checkpoint(self, actor: User | None, options: dict[str, Any]) -> None:
        checkpoint = audit_log_checkpoint()
        self.emit(checkpoint.described(), fields([("checkpoint", _checkpoint_text(checkpoint))]))

    def handle_compact(self, actor: User | None, options: dict[str, Any]) -> None:
        if options["keep"] < 1:
            raise CliError(f"--keep must be at least 1; got {options['keep']}.", extra={"option": "--keep"})
        result = audit_log_compact_checkpoints(keep=options["keep"], actor=actor)
        data = {
            "segment": result.segment,
            "first": result.first,
            "last": result.last,
            "checkpoints": result.checkpoints,
            "removed": result.removed,
            "not_removed": list(result.not_removed),
            "kept_single": result.kept,
        }
        folded = (
            f"events {result.first}–{result.last}: {result.checkpoints} checkpoints in {result.segment}"
            if result.segment
            else "nothing to fold"
        )
        rows = [("segment", folded), ("objects removed", result.removed), ("kept as single objects", result.kept)]
        if result.not_removed:
            rows.append(("not removed (object lock?)", len(result.not_removed)))
        self.emit(data, fields(rows))

    def handle_list(self, actor: User, options: dict[str, Any]) -> None:
        if options["limit"] < 1:
            raise CliError(f"--limit must be at least 1; got {options['limit']}.", extra={"option": "--limit"})
        newest = audit_event_list(user=actor).order_by("-id")[: options["limit"]]
        events = list(reversed(newest))
        self.emit([audit_event_data(event) for event in events], lambda: audit_event_table(events))


def _checkpoint_text(checkpoint: Checkpoint | None) -> str:
    if checkpoint is None:
        return "none yet"
    text = f"event {checkpoint.length} ({checkpoint.hash[:16]}…) at {time_text(checkpoint.at)}"
    stated = checkpoint.timestamped_at()
    return f"{text}; RFC 3161 timestamp {time_text(stated)}" if stated else text
