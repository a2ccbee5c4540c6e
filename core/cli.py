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
import importlib.metadata
import json
import sys
import tomllib
from argparse import SUPPRESS, Action, ArgumentParser, RawDescriptionHelpFormatter, _SubParsersAction
from collections.abc import Callable
from pathlib import Path
from typing import Any, NoReturn

from django.conf import settings
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


# Arguments that recur across commands get one description, here, when a command gives none.
COMMON_HELP = {
    "request_id": "the request's id (see `synthgate request list`)",
    "job_id": "the job's id (see `synthgate job list`)",
    "release_id": "the release's id (see `synthgate release list`)",
    "run_id": "the audit run's id (see `synthgate audit list`)",
    "version_id": "the dataset version's id (see `synthgate dataset show NAME`)",
    "reason": "why, in words the audit log and the requester will read",
    "dataset": "the dataset's name (see `synthgate dataset list`)",
    "purpose": "the purpose's name (see `synthgate purpose list`)",
}


class SynthgateParser(CommandParser):
    """Bad arguments raise a ``CliError`` (exit 2) both from the console and from call_command."""

    def add_argument(self, *args: Any, **kwargs: Any) -> Action:
        action = super().add_argument(*args, **kwargs)
        if action.help is None:
            action.help = COMMON_HELP.get(action.dest)
        return action

    def error(self, message: str) -> NoReturn:
        raise CliError(f"{self.prog}: {message}", code="usage", extra={"usage": self.format_usage().strip()})


class SynthgateCommand(BaseCommand):
    """Base for every Synthgate command: error reporting, ``--as`` resolution, JSON or table output."""

    # Commands that only read or write rows need no system checks; `init` runs migrate, which checks.
    requires_system_checks: list[str] = []
    # False for `init`, which creates the tables the others need.
    requires_database = True

    def get_version(self) -> str:
        """``synthgate COMMAND --version`` prints Synthgate's version, not Django's."""
        try:
            return importlib.metadata.version("synthgate")
        except importlib.metadata.PackageNotFoundError:
            return "unknown"

    # Shown under a command's help: a few real invocations (set by each command).
    examples: tuple[str, ...] = ()

    def create_parser(self, prog_name: str, subcommand: str, **kwargs: Any) -> CommandParser:
        kwargs.setdefault("formatter_class", RawDescriptionHelpFormatter)
        parser = super().create_parser(prog_name, subcommand, **kwargs)
        # Django builds a CommandParser; ours differs only in how it reports errors.
        parser.__class__ = SynthgateParser
        hide_django_options(parser)
        if self.examples:
            parser.epilog = "examples:\n" + "\n".join(f"  {example}" for example in self.examples)
        return parser

    # argparse exposes its sub-command holder only under a private name: it is the concrete type.
    def add_subcommands(self, parser: ArgumentParser) -> _SubParsersAction[SynthgateParser]:
        return parser.add_subparsers(dest="action", required=True, parser_class=SynthgateParser, title="actions")

    def add_subcommand(
        self, subparsers: _SubParsersAction[SynthgateParser], name: str, help_text: str, *, needs_user: bool = True
    ) -> ArgumentParser:
        parser = subparsers.add_parser(name, help=help_text, description=help_text)
        examples = [example for example in self.examples if f" {name} " in f" {example} "]
        if examples:
            parser.formatter_class = RawDescriptionHelpFormatter
            parser.epilog = "examples:\n" + "\n".join(f"  {example}" for example in examples)
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

    def execute(self, *args: Any, **options: Any) -> str | None:
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
        """The person the command acts as: ``--as``, else ``SYNTHGATE_USER``, else the config file.

        Commands that work without one (``user create`` bootstrapping the platform) take only
        an explicit ``--as``.
        """
        username, source = options.get("as_user"), "given with --as"
        if username is None and options.get("needs_user", True):
            username, source = default_user()
        if username is None:
            if options.get("needs_user", True):
                raise CliError(
                    "This command acts as a person: give --as USER, set SYNTHGATE_USER=USER, or write "
                    f'user = "USER" in {cli_config_path() or "a config file named by SYNTHGATE_CONFIG"}.',
                    code="no_user",
                )
            return None
        return user_acting(username, source=source)

    def emit(self, data: Any, text: Callable[[], str] | str) -> None:
        """Print ``data`` as JSON with --json, otherwise the human-readable ``text``."""
        if self.json_output:
            self.stdout.write(to_json(data), style_func=lambda value: value)
        else:
            self.stdout.write(text() if callable(text) else text)


DJANGO_OPTIONS = {
    "--settings",
    "--pythonpath",
    "--traceback",
    "--verbosity",
    "--no-color",
    "--force-color",
    "--skip-checks",
    "--version",
}


def hide_django_options(parser: ArgumentParser) -> None:
    """Keep Django's own options working but out of the help: they are not Synthgate's interface."""
    for action in parser._actions:
        if DJANGO_OPTIONS & set(action.option_strings):
            action.help = SUPPRESS


def add_common_options(parser: ArgumentParser, *, needs_user: bool = True) -> None:
    parser.add_argument("--json", action="store_true", help="print machine-readable JSON (decimals as strings)")
    parser.add_argument(
        "--as",
        dest="as_user",
        metavar="USER",
        default=None,
        help="act as this user, recorded in the audit log with channel 'cli'"
        + (
            " (default: $SYNTHGATE_USER, else user = ... in the config file)"
            if needs_user
            else "; without it the operator acts (bootstrapping)"
        ),
    )
    parser.set_defaults(needs_user=needs_user)


def cli_config_path() -> Path | None:
    """The CLI's small config file (``SYNTHGATE_CONFIG``, default ``~/.config/synthgate/config.toml``)."""
    configured = settings.SYNTHGATE_CLI_CONFIG
    return Path(configured).expanduser() if configured else None


def default_user() -> tuple[str | None, str]:
    """The acting user when ``--as`` is absent, and where it came from (for error messages)."""
    if settings.SYNTHGATE_USER:
        return settings.SYNTHGATE_USER, "from SYNTHGATE_USER"
    path = cli_config_path()
    if path is None or not path.is_file():
        return None, ""
    try:
        config = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as error:
        raise CliError(f"Cannot read the config file {path}: {error}.", code="bad_config") from error
    user = config.get("user")
    if user is not None and not isinstance(user, str):
        raise CliError(f'user in {path} must be a string, e.g. user = "alice".', code="bad_config")
    return user, f"from {path}"


def user_acting(username: str, *, source: str = "given with --as") -> User:
    """The active user named by ``--as`` (or the default); exit 2 if there is none."""
    user = get_user_model().objects.filter(username=username).first()
    if user is None:
        raise CliError(f"No user named {username!r} ({source}).", code="unknown_user", extra={"username": username})
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
