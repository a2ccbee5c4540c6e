"""The `synthgate` console script: one entry point over the project's management commands.

`synthgate dataset list --json` is `python manage.py dataset list --json`.
"""

from __future__ import annotations

import ast
import importlib.metadata
import importlib.util
import os
import sys
from pathlib import Path

from django.core.management import BaseCommand, ManagementUtility

from config.completion import completion_main

USAGE_EXIT = 2

# The apps whose management commands make up the `synthgate` CLI.
PROJECT_APPS = ("core", "governance", "synth_engine", "audits")


def project_commands() -> dict[str, str]:
    """The management commands the project's own apps define, with their help, read from disk.

    Nothing is imported, so `synthgate --help` works before settings or the database are ready.
    """
    commands: dict[str, str] = {}
    for app in PROJECT_APPS:
        spec = importlib.util.find_spec(app)
        for location in (spec.submodule_search_locations or []) if spec else []:
            folder = Path(location) / "management" / "commands"
            for path in sorted(folder.glob("[!_]*.py")):
                commands[path.stem] = _command_help(path)
    return dict(sorted(commands.items()))


def _command_help(path: Path) -> str:
    """The ``help`` string of the module's ``Command`` class, if it is a plain literal."""
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ClassDef) and node.name == "Command":
            for statement in node.body:
                if (
                    isinstance(statement, ast.Assign)
                    and any(getattr(target, "id", "") == "help" for target in statement.targets)
                    and isinstance(statement.value, ast.Constant)
                ):
                    return str(statement.value.value)
    return ""


def synthgate_version() -> str:
    """The installed package's version (pyproject.toml), not Django's."""
    try:
        return importlib.metadata.version("synthgate")
    except importlib.metadata.PackageNotFoundError:
        return "unknown (not installed: run scripts/setup.sh)"


def usage() -> str:
    commands = project_commands()
    width = max((len(name) for name in commands), default=0)
    lines = "\n".join(f"  {name.ljust(width)}  {text}".rstrip() for name, text in commands.items())
    return (
        "usage: synthgate COMMAND [ACTION] [ARGS...]\n\ncommands:\n"
        + lines
        + "\n\nother:\n  --version   print Synthgate's version\n"
        "  completion  print a shell completion script: `synthgate completion bash|zsh`\n"
        '\nThe acting user is --as USER, else $SYNTHGATE_USER, else user = "NAME" in '
        "~/.config/synthgate/config.toml.\n"
        "`synthgate COMMAND --help` describes a command, its actions and examples; any Django management "
        "command also works, e.g. `synthgate migrate`."
    )


def main() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.local")

    args = sys.argv[1:]
    if not args or args[0] in {"-h", "--help"} or args == ["help"]:
        print(usage())
        return
    if args[0] in {"--version", "version"}:
        print(f"synthgate {synthgate_version()}")
        return
    if args[0] == "completion":
        sys.exit(completion_main(args[1:], commands=list(project_commands())))
    SynthgateUtility(["synthgate", *args]).execute()


class SynthgateUtility(ManagementUtility):
    """Django's dispatcher, except that an unknown command is a user mistake: exit status 2."""

    def fetch_command(self, subcommand: str) -> BaseCommand:
        try:
            return super().fetch_command(subcommand)
        except SystemExit as stop:
            raise SystemExit(USAGE_EXIT if stop.code == 1 else stop.code) from None
