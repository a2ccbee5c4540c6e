"""The shared base of Synthgate's management commands (the `synthgate` CLI).

One command per noun (`dataset`, `request`, ...) with argparse subcommands. Every
subcommand takes ``--json``, and every one that touches data takes ``--as USER``: the CLI
acts on the local database as that user, and the audit log records the channel ``cli``
(operator access). User mistakes (any ``ApplicationError``, bad arguments, an unknown
user) exit with status 2 and a message on stderr, or ``{code, message, extra}`` JSON on
stderr with ``--json``; never a traceback.
"""

from __future__ import annotations

import contextlib
import json
import sys
from argparse import ArgumentParser
from collections.abc import Callable
from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.models import User
from django.core.exceptions import ImproperlyConfigured
from django.core.management.base import (
    BaseCommand,
    CommandError,
    CommandParser,
    OutputWrapper,
    handle_default_options,
)
from django.db import DEFAULT_DB_ALIAS, connections
from django.db.migrations.executor import MigrationExecutor

from core.cli_format import to_json
from core.context import channel
from core.errors import ApplicationError

USAGE_EXIT = 2


class CliError(CommandError):
    """A user mistake: exit status 2 (unless given), with the error's stable code and extra data."""

    def __init__(
        self, message: str, *, code: str = "invalid", extra: dict[str, Any] | None = None, returncode: int = USAGE_EXIT
    ) -> None:
        super().__init__(message, returncode=returncode)
        self.message = message
        self.code = code
        self.extra = extra or {}
        self.reported = False


class SynthgateParser(CommandParser):
    """Bad arguments raise a ``CliError`` (exit 2) both from the console and from call_command."""

    def error(self, message: str) -> None:  # type: ignore[override]
        raise CliError(f"{self.prog}: {message}", code="usage", extra={"usage": self.format_usage().strip()})


class SynthgateCommand(BaseCommand):
    """Base for every Synthgate command: error reporting, ``--as`` resolution, JSON or table output."""

    # Commands that only read or write rows need no system checks; `init` runs migrate, which checks.
    requires_system_checks: list[str] = []
    # False for `init`, which creates the tables the others need.
    requires_database = True

    def create_parser(self, prog_name: str, subcommand: str, **kwargs: Any) -> CommandParser:
        parser = super().create_parser(prog_name, subcommand, **kwargs)
        # Django builds a CommandParser; ours differs only in how it reports errors.
        parser.__class__ = SynthgateParser
        return parser

    def add_subcommands(self, parser: ArgumentParser) -> Any:
        return parser.add_subparsers(dest="action", required=True, parser_class=SynthgateParser)

    def add_subcommand(self, subparsers: Any, name: str, help_text: str, *, needs_user: bool = True) -> ArgumentParser:
        parser = subparsers.add_parser(name, help=help_text, description=help_text)
        # Name the actions in usage and in the "required" error, not just the word "action".
        subparsers.metavar = "{" + ",".join(subparsers.choices) + "}"
        add_common_options(parser, needs_user=needs_user)
        return parser

    def handle(self, *args: Any, **options: Any) -> None:
        """Dispatch ``ACTION`` to ``handle_<action>(actor, options)``."""
        handler: Callable[[User | None, dict[str, Any]], None] = getattr(
            self, "handle_" + options["action"].replace("-", "_")
        )
        handler(self.actor(options), options)

    # --- running and reporting ----------------------------------------------------------

    def execute(self, *args: Any, **options: Any) -> Any:
        self.json_output = bool(options.get("json"))
        # Django switches to the given streams inside execute(); errors found before that must use them too.
        if options.get("stdout"):
            self.stdout = OutputWrapper(options["stdout"])
        if options.get("stderr"):
            self.stderr = OutputWrapper(options["stderr"])
        with channel("cli"):
            try:
                if self.requires_database:
                    check_database_ready()
                return super().execute(*args, **options)
            except ApplicationError as error:
                raise self.report_once(CliError(error.message, code=error.code, extra=error.extra)) from error
            except CliError as error:
                self.report_once(error)
                raise

    def run_from_argv(self, argv: list[str]) -> None:
        """Like Django's, but every error is reported once, the same way, with its exit status."""
        self._called_from_command_line = True
        self.json_output = "--json" in argv
        try:
            parser = self.create_parser(argv[0], argv[1])
            options = parser.parse_args(argv[2:])
            cmd_options = vars(options)
            args = cmd_options.pop("args", ())
            handle_default_options(options)
            self.execute(*args, **cmd_options)
        except CommandError as error:
            if "--traceback" in argv:
                raise
            if not getattr(error, "reported", False):
                self.report(error)
            sys.exit(error.returncode)
        finally:
            with contextlib.suppress(ImproperlyConfigured):
                connections.close_all()

    def report_once(self, error: CliError) -> CliError:
        if not error.reported:
            self.report(error)
            error.reported = True
        return error

    def report(self, error: CommandError) -> None:
        code, message = getattr(error, "code", "error"), getattr(error, "message", str(error))
        extra = getattr(error, "extra", {})
        if getattr(self, "json_output", False):
            self.stderr.write(
                json.dumps({"code": code, "message": message, "extra": extra}, default=str, ensure_ascii=False),
                style_func=lambda text: text,
            )
            return
        if code == "usage" and extra.get("usage"):
            self.stderr.write(extra["usage"], style_func=lambda text: text)
        self.stderr.write(f"error: {message}")
        details = {key: value for key, value in extra.items() if key not in {"usage", "field"}}
        if details:
            self.stderr.write(
                "details: " + json.dumps(details, default=str, ensure_ascii=False), style_func=lambda text: text
            )

    # --- helpers for subclasses ---------------------------------------------------------

    def actor(self, options: dict[str, Any]) -> User | None:
        username = options.get("as_user")
        return None if username is None else user_acting(username)

    def emit(self, data: Any, text: Callable[[], str] | str) -> None:
        """Print ``data`` as JSON with --json, otherwise the human-readable ``text``."""
        if self.json_output:
            self.stdout.write(to_json(data), style_func=lambda value: value)
        else:
            self.stdout.write(text() if callable(text) else text)


def add_common_options(parser: ArgumentParser, *, needs_user: bool = True) -> None:
    parser.add_argument("--json", action="store_true", help="print machine-readable JSON (decimals as strings)")
    parser.add_argument(
        "--as",
        dest="as_user",
        metavar="USER",
        required=needs_user,
        default=None,
        help="act as this user (recorded in the audit log with channel 'cli')"
        + ("" if needs_user else "; optional here"),
    )


def user_acting(username: str) -> User:
    """The active user named by ``--as``; exit 2 if there is none."""
    user = get_user_model().objects.filter(username=username).first()
    if user is None:
        raise CliError(
            f"No user named {username!r} (given with --as).", code="unknown_user", extra={"username": username}
        )
    if not user.is_active:
        raise CliError(
            f"User {username!r} is deactivated and cannot act.", code="inactive_user", extra={"username": username}
        )
    return user


def check_database_ready() -> None:
    """Refuse to run against a database that `synthgate init` has not brought up to date."""
    connection = connections[DEFAULT_DB_ALIAS]
    executor = MigrationExecutor(connection)
    pending = executor.migration_plan(executor.loader.graph.leaf_nodes())
    if pending:
        raise CliError(
            f"The database has {len(pending)} unapplied migrations; run `synthgate init` first.",
            code="not_initialised",
            extra={"pending_migrations": len(pending)},
        )


def parse_key_values(items: list[str] | None, *, option: str) -> dict[str, Any]:
    """``key=value`` pairs; a value that reads as JSON (10, 0.5, true) becomes that value."""
    result: dict[str, Any] = {}
    for item in items or []:
        key, separator, value = item.partition("=")
        if not separator or not key.strip():
            raise CliError(f"{option} takes key=value; got {item!r}.", extra={"option": option})
        try:
            result[key.strip()] = json.loads(value)
        except ValueError:
            result[key.strip()] = value
    return result
