"""`synthgate budget show NAME`: a dataset's ε/δ caps, spent, reserved, remaining, and its ledger."""

from __future__ import annotations

from typing import Any

from django.contrib.auth.models import User
from django.core.management.base import CommandParser

from core.cli import CliError, SynthgateCommand
from core.cli_format import table
from governance.cli_format import budget_entry_data
from governance.selectors import budget_balance, budget_entry_list, dataset_get
from governance.services.audit_log import ledger_verify

LEDGER_TAMPERED_EXIT = 1

ENTRY_COLUMNS = (
    "id",
    "created_at",
    "kind",
    "request",
    "version",
    "job",
    "epsilon",
    "delta",
    "mechanism",
    "actor",
    "note",
)


class Command(SynthgateCommand):
    help = "Show a dataset's privacy budget and every ledger entry (exact decimals)."
    examples = (
        "synthgate budget show adult",
        "synthgate budget show adult --json",
    )

    def add_arguments(self, parser: CommandParser) -> None:
        actions = self.add_subcommands(parser)
        show = self.add_subcommand(actions, "show", "caps, spent, reserved and remaining ε and δ, and the ledger")
        show.add_argument("name", metavar="DATASET", help="the dataset's name (see `synthgate dataset list`)")

    def handle_show(self, actor: User, options: dict[str, Any]) -> None:
        dataset = dataset_get(user=actor, name=options["name"])
        balance = budget_balance(dataset=dataset)
        entries = [budget_entry_data(entry) for entry in budget_entry_list(user=actor, dataset=dataset)]
        amounts = {measure: balance.amounts(measure) for measure in ("epsilon", "delta")}
        problems = ledger_verify(dataset_name=dataset.name)
        data = {"dataset": dataset.name, **amounts, "entries": entries, "ledger_verified": not problems}
        self.emit(
            data,
            lambda: "\n".join(
                [
                    f"Privacy budget of {dataset.name}",
                    table(
                        ("", "cap", "spent", "reserved", "remaining"),
                        [(name, *values.values()) for name, values in amounts.items()],
                    ),
                    "",
                    "Ledger",
                    table(ENTRY_COLUMNS, [[entry[column] for column in ENTRY_COLUMNS] for entry in entries]),
                ]
            ),
        )
        if problems:
            # Every ledger row is bound to the audit event that recorded it: a balance computed
            # from rows written outside the application is not to be trusted.
            raise CliError(
                f"The ledger of {dataset.name} does not match the audit log: " + "; ".join(problems),
                code="ledger_tampered",
                extra={"problems": problems},
                returncode=LEDGER_TAMPERED_EXIT,
            )
