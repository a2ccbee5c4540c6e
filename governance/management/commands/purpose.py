"""`synthgate purpose list|show`: the purposes a request can name, and their policy."""

from __future__ import annotations

from typing import Any

from django.contrib.auth.models import User
from django.core.management.base import CommandParser

from core.cli import SynthgateCommand
from core.cli_format import fields, table
from governance.cli_format import purpose_data
from governance.selectors import purpose_get, purpose_list


class Command(SynthgateCommand):
    help = "List purposes and show one purpose's policy."
    examples = (
        "synthgate purpose list",
        "synthgate purpose show external-research",
    )

    def add_arguments(self, parser: CommandParser) -> None:
        actions = self.add_subcommands(parser)
        self.add_subcommand(actions, "list", "list purposes")
        show = self.add_subcommand(actions, "show", "one purpose's policy and audit thresholds")
        show.add_argument("name", metavar="NAME", help="the purpose's name (see `synthgate purpose list`)")

    def handle_list(self, actor: User, options: dict[str, Any]) -> None:
        data = [purpose_data(purpose) for purpose in purpose_list(user=actor)]
        self.emit(
            data,
            lambda: table(
                ("name", "max_epsilon", "approvals", "recipients", "non-private", "description"),
                [
                    (
                        row["name"],
                        row["max_epsilon"],
                        row["approvals_required"],
                        row["allowed_recipients"],
                        row["allow_non_private"],
                        row["description"],
                    )
                    for row in data
                ],
            ),
        )

    def handle_show(self, actor: User, options: dict[str, Any]) -> None:
        data = purpose_data(purpose_get(user=actor, name=options["name"]))
        self.emit(
            data,
            lambda: "\n".join(
                [
                    fields(
                        [
                            ("purpose", data["name"]),
                            ("description", data["description"]),
                            ("max epsilon per release", data["max_epsilon"]),
                            ("approvals required", data["approvals_required"]),
                            ("allowed recipients", data["allowed_recipients"]),
                            ("non-private generators", "allowed" if data["allow_non_private"] else "refused"),
                            ("holdout fraction", data["holdout_fraction"]),
                            ("release days", data["release_days"]),
                        ]
                    ),
                    "",
                    "Audit thresholds",
                    table(("threshold", "value"), sorted(data["audit_thresholds"].items())),
                ]
            ),
        )
