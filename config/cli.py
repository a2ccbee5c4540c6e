"""The `synthgate` console script: one entry point over the project's management commands.

`synthgate dataset list --json` is `python manage.py dataset list --json`.
"""

import os
import sys

COMMANDS = ("init", "user", "dataset", "purpose", "request", "budget", "log", "job", "audit", "datasheet",
            "release", "report", "drift", "demo")


def main() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.local")
    from django.core.management import execute_from_command_line

    args = sys.argv[1:]
    if not args or args[0] in {"-h", "--help", "help"}:
        print("usage: synthgate COMMAND [ARGS...]\n\ncommands: " + ", ".join(COMMANDS)
              + "\n\n(any Django management command also works, e.g. `synthgate migrate`)")
        return
    execute_from_command_line(["synthgate", *args])
