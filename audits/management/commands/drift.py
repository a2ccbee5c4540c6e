"""`synthgate drift run|schedule`: re-audit active releases for drift now, or set a dataset's interval."""

from __future__ import annotations

from typing import Any

from django.contrib.auth.models import User
from django.core.management.base import CommandParser

from audits.services import drift_audit_run, drift_schedule_set
from core.cli import SynthgateCommand
from core.cli_format import table


class Command(SynthgateCommand):
    help = (
        "Re-audit active releases against their dataset's newest source version (or a new snapshot of a table "
        "registered by reference), or set the drift schedule."
    )
    examples = (
        "synthgate drift run --dataset adult --as steward",
        "synthgate drift schedule adult --every-hours 24 --as steward",
    )

    def add_arguments(self, parser: CommandParser) -> None:
        actions = self.add_subcommands(parser)
        run = self.add_subcommand(
            actions,
            "run",
            "re-audit every active release now and print each verdict "
            "(stale releases are marked and their steward and requester emailed)",
        )
        run.add_argument("--dataset", metavar="NAME", help="only this dataset's releases")
        schedule = self.add_subcommand(actions, "schedule", "how often the scheduled drift audit re-checks a dataset")
        schedule.add_argument("dataset", metavar="DATASET", help="the dataset's name")
        schedule.add_argument(
            "--every-hours",
            dest="interval_hours",
            type=int,
            required=True,
            metavar="HOURS",
            help="re-audit the dataset's active releases this often",
        )
        schedule.add_argument("--disable", action="store_true", help="stop scheduled drift audits of this dataset")

    def handle_run(self, actor: User, options: dict[str, Any]) -> None:
        outcomes = drift_audit_run(actor=actor, dataset_name=options["dataset"])
        rows = [
            {
                "release": outcome.release.pk,
                "request": outcome.release.request_id,
                "dataset": outcome.release.request.dataset.name,
                "verdict": outcome.verdict,
                "drift_run": outcome.run.pk if outcome.run else None,
                "reasons": outcome.reasons,
                # A referenced table's new snapshot: engine, table, row count, checksum, time, sample size.
                "snapshot": (outcome.run.snapshot or None) if outcome.run else None,
            }
            for outcome in outcomes
        ]
        self.emit(
            rows,
            lambda: (
                table(
                    ("release", "request", "dataset", "verdict", "drift_run", "reasons"),
                    [
                        [row[name] for name in ("release", "request", "dataset", "verdict", "drift_run", "reasons")]
                        for row in rows
                    ],
                )
                if rows
                else "No active releases."
            ),
        )

    def handle_schedule(self, actor: User, options: dict[str, Any]) -> None:
        schedule = drift_schedule_set(
            actor=actor,
            dataset_name=options["dataset"],
            interval_hours=options["interval_hours"],
            enabled=not options["disable"],
        )
        data = {"dataset": options["dataset"], "interval_hours": schedule.interval_hours, "enabled": schedule.enabled}
        self.emit(
            data,
            f"Drift audits of {options['dataset']}: "
            + (f"every {schedule.interval_hours} h" if schedule.enabled else "disabled"),
        )
