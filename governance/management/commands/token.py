"""`synthgate token list|create|rotate|revoke`: API tokens, each with an expiry, stored hashed."""

from __future__ import annotations

from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.models import User
from django.core.management.base import CommandParser
from knox.models import AuthToken

from core.cli import CliError, SynthgateCommand
from core.cli_format import fields, table
from governance.services import api_token_issue, api_token_list, api_token_revoke, api_token_rotate


class Command(SynthgateCommand):
    help = "List, create, rotate and revoke API tokens (yours, or any user's as a steward)."

    def add_arguments(self, parser: CommandParser) -> None:
        actions = self.add_subcommands(parser)
        for name, text in (
            ("list", "a user's unexpired tokens: prefix, created, expires"),
            ("create", "issue a new token; prints the secret once"),
            ("rotate", "replace a token by a new one with a fresh expiry; prints the new secret once"),
            ("revoke", "revoke a token at once (or every token with --all)"),
        ):
            action = self.add_subcommand(actions, name, text)
            action.add_argument("--user", metavar="NAME", help="whose tokens (default: the acting user)")
            if name in ("rotate", "revoke"):
                action.add_argument("token_key", metavar="PREFIX", nargs="?" if name == "revoke" else None)
            if name == "revoke":
                action.add_argument("--all", action="store_true", help="revoke every token of the user")

    def _holder(self, actor: User | None, options: dict[str, Any]) -> User:
        name = options.get("user")
        if not name:
            assert actor is not None  # --as is required for every token action
            return actor
        user = get_user_model().objects.filter(username__iexact=name).first()
        if user is None:
            raise CliError(f"No user named {name!r}.", code="not_found", extra={"username": name})
        return user

    def handle_list(self, actor: User | None, options: dict[str, Any]) -> None:
        holder = self._holder(actor, options)
        tokens = list(api_token_list(actor=actor, user=holder))
        data = [{"token_key": t.token_key, "created_at": t.created, "expires_at": t.expiry} for t in tokens]
        self.emit(
            data,
            lambda: table(
                ("token", "created", "expires"),
                [(row["token_key"], row["created_at"], row["expires_at"]) for row in data],
            ),
        )

    def handle_create(self, actor: User | None, options: dict[str, Any]) -> None:
        holder = self._holder(actor, options)
        self._print_issued(holder, *api_token_issue(user=holder, actor=actor))

    def handle_rotate(self, actor: User | None, options: dict[str, Any]) -> None:
        holder = self._holder(actor, options)
        self._print_issued(holder, *api_token_rotate(actor=actor, user=holder, token_key=options["token_key"]))

    def handle_revoke(self, actor: User | None, options: dict[str, Any]) -> None:
        if bool(options["token_key"]) == bool(options["all"]):
            raise CliError("Name one token PREFIX to revoke, or give --all.", code="usage")
        holder = self._holder(actor, options)
        count = api_token_revoke(actor=actor, user=holder, token_key=None if options["all"] else options["token_key"])
        self.emit({"user": holder.username, "revoked": count}, f"Revoked {count} token(s) of {holder.username}.")

    def _print_issued(self, holder: User, token: AuthToken, secret: str) -> None:
        data = {"user": holder.username, "token": secret, "token_key": token.token_key, "expires_at": token.expiry}
        self.emit(
            data,
            lambda: fields([("user", holder.username), ("API token", secret), ("expires", token.expiry)]),
        )
