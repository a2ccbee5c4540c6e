"""`synthgate user create|list|roles`: people, their roles, and the API token printed once."""

from __future__ import annotations

from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.models import User
from django.core.management.base import CommandParser
from knox.models import AuthToken

from core.cli import SynthgateCommand
from core.cli_format import fields, table
from core.errors import PermissionDeniedError
from governance.cli_format import user_data
from governance.models import Role
from governance.permissions import user_roles
from governance.services import user_create, user_roles_set


class Command(SynthgateCommand):
    help = "Create users with roles (prints their API token), list users and change their roles."
    examples = (
        "synthgate user create alice --role requester",
        "synthgate user create bob --role approver --as steward",
        "synthgate user list --as steward",
        "synthgate user roles erin --role requester --role approver --as steward",
    )

    def add_arguments(self, parser: CommandParser) -> None:
        actions = self.add_subcommands(parser)
        create = self.add_subcommand(
            actions, "create", "create a user with one or more roles; prints the API token", needs_user=False
        )
        create.add_argument("username", metavar="NAME", help="the login name, 1 to 150 characters")
        create.add_argument(
            "--role", dest="roles", action="append", required=True, choices=Role.values, help="repeat for several roles"
        )
        create.add_argument("--email", default="", help="where notifications go")
        create.add_argument(
            "--password",
            default=None,
            help="for the dashboard login (Django's password validators apply); a random one is set when omitted",
        )
        self.add_subcommand(actions, "list", "list users and their roles")
        roles = self.add_subcommand(actions, "roles", "replace a user's roles (a steward; never your own)")
        roles.add_argument("username", metavar="NAME", help="the user whose roles change")
        roles.add_argument(
            "--role", dest="roles", action="append", required=True, choices=Role.values, help="repeat for several roles"
        )

    def handle_create(self, actor: User | None, options: dict[str, Any]) -> None:
        user, token = user_create(
            username=options["username"],
            roles=options["roles"],
            actor=actor,
            email=options["email"],
            password=options["password"],
        )
        expires = AuthToken.objects.get(user=user).expiry
        data = {**user_data(user), "token": token, "token_expires_at": expires}
        self.emit(
            data,
            lambda: fields(
                [
                    ("user", user.username),
                    ("roles", data["roles"]),
                    ("email", user.email),
                    ("API token", token),
                    ("token expires", expires),
                ]
            ),
        )

    def handle_roles(self, actor: User, options: dict[str, Any]) -> None:
        user = user_roles_set(actor=actor, username=options["username"], roles=options["roles"])
        data = user_data(user)
        self.emit(data, f"{user.username} now holds: {', '.join(data['roles'])} (logged as user.roles).")

    def handle_list(self, actor: User | None, options: dict[str, Any]) -> None:
        if not user_roles(actor):
            raise PermissionDeniedError("Your account has no Synthgate role; ask a steward to assign one.")
        # No selector lists users yet; this read belongs in governance.selectors as `user_list`.
        users = get_user_model().objects.prefetch_related("groups").order_by("username")
        data = [user_data(user) for user in users]
        self.emit(
            data,
            lambda: table(
                ("username", "roles", "email", "active", "date_joined"),
                [(row["username"], row["roles"], row["email"], row["active"], row["date_joined"]) for row in data],
            ),
        )
