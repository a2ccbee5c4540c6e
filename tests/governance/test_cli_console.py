"""The real `synthgate` console script against a fresh embedded install (SQLite in a
temporary SYNTHGATE_DATA_DIR): the whole path from `init` to the budget, and how
mistakes look to a person at a terminal (exit 2, a message, no traceback).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.management import get_commands

from config.cli import PROJECT_APPS, project_commands

ROOT = Path(__file__).resolve().parents[2]
SYNTHGATE = Path(sys.executable).parent / "synthgate"
SAMPLE_DATA = ROOT / "sample_data"


class Console:
    """Runs the console script with its own data directory and database, not the test database."""

    def __init__(self, data_dir: Path) -> None:
        self.env = {
            key: value
            for key, value in os.environ.items()
            if key not in {"DATABASE_URL", "DJANGO_SETTINGS_MODULE", "CELERY_BROKER_URL"}
        }
        self.env["SYNTHGATE_DATA_DIR"] = str(data_dir)

    def run(self, *args: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [str(SYNTHGATE), *args], cwd=ROOT, env=self.env, capture_output=True, text=True, timeout=300, check=False
        )

    def json(self, *args: str):
        result = self.run(*args, "--json")
        assert result.returncode == 0, result.stderr
        return json.loads(result.stdout)


@pytest.fixture(scope="module")
def console(tmp_path_factory) -> Console:
    if not SYNTHGATE.exists():
        pytest.skip(f"the console script is not installed at {SYNTHGATE}")
    console = Console(tmp_path_factory.mktemp("synthgate-data"))
    assert console.run("init").returncode == 0
    for name, role in [("steward", "steward"), ("requester", "requester"), ("ann", "approver"), ("bo", "approver")]:
        assert console.run("user", "create", name, "--role", role).returncode == 0
    return console


def test_the_governed_path_from_init_to_the_budget(console):
    version = console.json(
        "dataset",
        "register",
        str(SAMPLE_DATA / "adult.csv.gz"),
        "--name",
        "adult",
        "--schema",
        str(SAMPLE_DATA / "adult.schema.json"),
        "--epsilon-cap",
        "3",
        "--delta-cap",
        "1e-5",
        "--as",
        "steward",
    )
    request = console.json(
        "request",
        "create",
        "--dataset",
        "adult",
        "--purpose",
        "external-research",
        "--epsilon",
        "0.8",
        "--delta",
        "1e-6",
        "--rows",
        "1000",
        "--recipient-kind",
        "external",
        "--recipient",
        "University partner",
        "--as",
        "requester",
    )
    first = console.json("request", "approve", str(request["id"]), "--as", "ann")
    second = console.json("request", "approve", str(request["id"]), "--as", "bo")
    budget = console.json("budget", "show", "adult", "--as", "steward")
    verified = console.json("log", "verify", "--as", "steward")

    assert (version["n_rows"], version["n_columns"], version["number"]) == (48842, 15, 1)
    assert (request["state"], first["state"], second["state"]) == ("submitted", "submitted", "approved")
    # registration spent ε 0.02 on the source version's DP row estimate (issue 11.2)
    assert budget["epsilon"] == {"cap": "3", "spent": "0.02", "reserved": "0.8", "remaining": "2.18"}
    assert budget["delta"] == {"cap": "0.00001", "spent": "0", "reserved": "0.000001", "remaining": "0.000009"}
    assert [(entry["kind"], entry["epsilon"], entry["actor"]) for entry in budget["entries"]] == [
        ("estimate", "0.02", "steward"),
        ("reserve", "0.8", "bo"),
    ]
    assert verified["ok"] is True
    events = console.json("log", "list", "--limit", "1000", "--as", "steward")
    assert {event["channel"] for event in events} == {"cli"}
    assert events[-1]["action"] == "request.approve" and events[-1]["actor"] == "bo"


def test_a_user_mistake_exits_2_with_a_message_and_no_traceback(console):
    unknown_user = console.run("dataset", "list", "--as", "mallory")
    bad_argument = console.run("request", "approve", "first", "--as", "ann")
    as_json = console.run("purpose", "show", "marketing", "--as", "requester", "--json")

    assert unknown_user.returncode == 2
    assert unknown_user.stderr.strip().splitlines() == [
        "error: No user named 'mallory' (given with --as).",
        'details: {"username": "mallory"}',
    ]
    assert bad_argument.returncode == 2 and "invalid int value: 'first'" in bad_argument.stderr
    assert bad_argument.stderr.startswith("usage: synthgate request approve")
    assert as_json.returncode == 2 and as_json.stdout == ""
    assert json.loads(as_json.stderr) == {"code": "not_found", "message": "No purpose named 'marketing'.", "extra": {}}
    for result in (unknown_user, bad_argument, as_json):
        assert "Traceback" not in result.stderr


def test_help_lists_the_project_commands(console):
    result = console.run("--help")

    assert result.returncode == 0
    for name, help_text in project_commands().items():
        assert f"  {name}" in result.stdout and help_text in result.stdout


def test_the_listed_commands_are_exactly_the_project_apps_management_commands():
    installed = {name for name, app in get_commands().items() if app in PROJECT_APPS}

    assert set(project_commands()) == installed
    assert {"init", "user", "dataset", "purpose", "request", "budget", "log"} <= installed
