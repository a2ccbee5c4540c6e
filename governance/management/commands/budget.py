"""`synthgate budget show NAME`: a dataset's ε/δ caps, spent, reserved, remaining, and its ledger."""

from __future__ import annotations

from typing import Any

from django.contrib.auth.models import User

from core.cli import SynthgateCommand
from core.cli_format import table
from governance.cli_format import budget_entry_data
from governance.selectors import budget_entry_list, dataset_get
from governance.services import budget_balance

ENTRY_COLUMNS = ("id", "created_at", "kind", "request", "job", "epsilon", "delta", "mechanism", "actor", "note")


class Command(SynthgateCommand):
    help = "Show a dataset's privacy budget and every ledger entry (exact decimals)."

    def add_arguments(self, parser: Any) -> None:
        actions = self.add_subcommands(parser)
        show = self.add_subcommand(actions, "show", "caps, spent, reserved and remaining ε and δ, and the ledger")
        show.add_argument("name", metavar="DATASET")

    def handle_show(self, actor: User, options: dict[str, Any]) -> None:
        dataset = dataset_get(user=actor, name=options["name"])
        balance = budget_balance(dataset=dataset)
        entries = [budget_entry_data(entry) for entry in budget_entry_list(user=actor, dataset=dataset)]
        amounts = {
            "epsilon": {
                "cap": balance.epsilon_cap,
                "spent": balance.epsilon_spent,
                "reserved": balance.epsilon_reserved,
                "remaining": balance.epsilon_remaining,
            },
            "delta": {
                "cap": balance.delta_cap,
                "spent": balance.delta_spent,
                "reserved": balance.delta_reserved,
                "remaining": balance.delta_remaining,
            },
        }
        data = {"dataset": dataset.name, **amounts, "entries": entries}
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
