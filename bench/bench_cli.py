"""What a `synthgate` call costs a person at the terminal: wall and CPU seconds per command.

Usage::

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/synthgate .venv/bin/python bench/bench_cli.py
    .venv/bin/python bench/bench_cli.py --tree /work/main --repeat 7   # another checkout (before/after)

Each command runs ``--repeat`` times in a fresh interpreter (the `synthgate` entry point,
``config.cli.main``) against the database in ``DATABASE_URL`` with the local settings; the table
prints the median wall time and the median CPU time (user + system) of the child, and which heavy
libraries the call imported. ``audit show`` reads a stored run (give one with ``--run``; without it
an id that does not exist is asked for, which costs the same start-up, imports and lookup). On a
loaded machine compare CPU seconds, and compare two trees in the same run of this script.
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
HEAVY = ("pandas", "scipy.stats", "sklearn", "torch", "weasyprint", "pyhanko", "confusable_homoglyphs.confusables")
PROGRAM = (
    "import sys, atexit\n"
    "atexit.register(lambda: sys.stderr.write('\\nIMPORTED ' + ','.join(m for m in {heavy!r} if m in sys.modules)))\n"
    "from config.cli import main\n"
    "main()\n"
)


def run_once(tree: Path, args: list[str]) -> tuple[float, float, str]:
    env = {**os.environ, "PYTHONPATH": str(tree), "DJANGO_SETTINGS_MODULE": "config.settings.local"}
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-c", PROGRAM.format(heavy=HEAVY), *args], cwd=tree, env=env, capture_output=True, text=True
    )
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    imported = done.stderr.rsplit("IMPORTED ", 1)[-1].strip() if "IMPORTED " in done.stderr else "?"
    return wall, cpu, imported or "-"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tree", type=Path, action="append", help="checkout(s) to time (default: this one)")
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--run", type=int, default=999_999_999, help="a stored audit run id for `audit show`")
    parser.add_argument("--as", dest="actor", default="steward", help="the acting user")
    arguments = parser.parse_args()
    commands = {
        "--version": ["--version"],
        "audit show": ["audit", "show", str(arguments.run), "--as", arguments.actor],
        "audit show --json": ["audit", "show", str(arguments.run), "--as", arguments.actor, "--json"],
        "request list": ["request", "list", "--as", arguments.actor],
    }
    print(f"{'tree':<24} {'command':<18} {'wall s':>7} {'cpu s':>7}  heavy imports")
    for tree in arguments.tree or [ROOT]:
        for name, args in commands.items():
            runs = [run_once(tree, args) for _ in range(arguments.repeat)]
            wall = statistics.median(run[0] for run in runs)
            cpu = statistics.median(run[1] for run in runs)
            print(f"{str(tree)[-24:]:<24} {name:<18} {wall:7.2f} {cpu:7.2f}  {runs[-1][2]}")


if __name__ == "__main__":
    main()
