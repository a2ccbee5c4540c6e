"""A datetime's resolution and calendar and a float's grid step read from the rows are suggestions
for the steward, never stored until declared (issue 11.1: nothing about the data flows through
structure). The distinguishing pair: a weekday-only table on a 0.5 grid, and the same table plus
one Saturday row with an off-grid answer; registered without declarations, both store the same
schema, so the generators (which read only the stored schema) give both the same support."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
from rest_framework.test import APIClient

from governance.models import Dataset, DatasetVersion
from governance.services import dataset_register, dataset_schema_declare_columns, dataset_schema_suggestions
from tests.governance.test_cli import synthgate

pytestmark = pytest.mark.django_db

WEEKDAYS = pd.bdate_range("2024-01-02", periods=40)  # >= CALENDAR_MIN_VALUES dates, no weekend
SUGGESTED = {"day": {"resolution": "day", "calendar": "weekdays"}, "answer": {"step": 0.5}}


def trades(tmp_path: Path, name: str, *, extra_row: str | None = None) -> Path:
    lines = ["day,answer"] + [f"{day:%Y-%m-%d},{[17.5, 22.0, 27.0][n % 3]}" for n, day in enumerate(WEEKDAYS)]
    if extra_row is not None:
        lines.append(extra_row)
    path = tmp_path / name
    path.write_text("\n".join(lines) + "\n")
    return path


def register(cast, path: Path, name: str = "trades"):
    return dataset_register(
        actor=cast.steward, name=name, path=path, filename=path.name, epsilon_cap="5", delta_cap="0"
    )


def test_one_weekend_row_and_one_off_grid_value_change_nothing_stored(cast, data_dir, tmp_path):
    plain = register(cast, trades(tmp_path, "d.csv"))
    neighbour = register(cast, trades(tmp_path, "d1.csv", extra_row="2024-03-02,17.537"))  # a Saturday
    assert (plain.version.number, neighbour.version.number) == (1, 2)
    assert (
        plain.version.schema
        == neighbour.version.schema
        == {
            "columns": [
                {"name": "day", "type": "datetime", "role": "other", "type_proposed": True},
                {"name": "answer", "type": "float", "role": "other", "type_proposed": True},
            ],
            "missing_values": plain.version.schema["missing_values"],
        }
    )
    # ... while the steward is told what each table's rows suggest
    assert plain.suggestions == SUGGESTED
    assert neighbour.suggestions == {"day": {"resolution": "day"}}


def test_declaring_the_suggestions_applies_them(cast, data_dir, tmp_path):
    result = register(cast, trades(tmp_path, "d.csv"))
    assert dataset_schema_suggestions(actor=cast.steward, version=result.version) == SUGGESTED
    dataset_schema_declare_columns(actor=cast.steward, name="trades", declarations=result.suggestions)
    columns = {column["name"]: column for column in DatasetVersion.objects.get().schema["columns"]}
    assert columns["day"]["calendar"] == "weekdays" and columns["day"]["resolution"] == "day"
    assert columns["answer"]["step"] == 0.5
    assert dataset_schema_suggestions(actor=cast.steward, version=DatasetVersion.objects.get()) == {}
    with pytest.raises(Exception, match="Only a data steward"):
        dataset_schema_suggestions(actor=cast.requester, version=DatasetVersion.objects.get())


def test_the_cli_lists_the_commands_that_declare_them_and_they_work(cast, data_dir, tmp_path):
    path = trades(tmp_path, "d.csv")
    run = synthgate("dataset", "register", path, "--name", "trades", "--epsilon-cap", "5", "--delta-cap", "0",
                    "--as", "steward")  # fmt: skip
    assert run.code == 0, run.message
    assert "Suggested from the rows, NOT applied" in run.stdout
    suggested = run.stdout.split("Suggested from the rows")[1].splitlines()
    commands = [line.strip() for line in suggested if line.strip().startswith("synthgate dataset declare")]
    assert commands == [
        "synthgate dataset declare trades --column day --resolution day --calendar weekdays",
        "synthgate dataset declare trades --column answer --step 0.5",
    ]
    for command in commands:
        declared = synthgate(*command.split()[1:], "--as", "steward")
        assert declared.code == 0, declared.message
    columns = {column["name"]: column for column in DatasetVersion.objects.get().schema["columns"]}
    assert (columns["day"].get("calendar"), columns["answer"].get("step")) == ("weekdays", 0.5)


def test_the_api_offers_them_to_the_registering_steward_and_never_to_a_requester(cast, data_dir, tmp_path):
    steward = APIClient()
    steward.force_authenticate(cast.steward)
    with trades(tmp_path, "d.csv").open("rb") as upload:
        response = steward.post(
            "/api/datasets/",
            {"file": upload, "name": "trades", "epsilon_cap": "5", "delta_cap": "0"},
            format="multipart",
        )
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["suggested_declarations"] == SUGGESTED
    assert "calendar" not in json.dumps(body["version"]) and "step" not in json.dumps(body["version"])
    requester = APIClient()
    requester.force_authenticate(cast.requester)
    detail = requester.get("/api/datasets/trades/")
    assert detail.status_code == 200 and "calendar" not in detail.content.decode()
    declared = steward.post("/api/datasets/trades/declare/", {"columns": body["suggested_declarations"]}, format="json")
    assert declared.status_code == 200, declared.content
    assert "weekdays" in json.dumps(Dataset.objects.get().versions.get().schema)


def test_the_schema_step_prefills_and_marks_them_and_submitting_declares(cast, data_dir, tmp_path, client):
    register(cast, trades(tmp_path, "d.csv"))
    client.force_login(cast.requester)
    assert client.get("/datasets/trades/schema/").status_code == 403
    assert "proposed from the rows" not in client.get("/datasets/trades/").content.decode()
    client.force_login(cast.steward)
    page = client.get("/datasets/trades/schema/").content.decode()
    assert "Proposed from the rows — submit to declare" in page
    assert "proposed from the rows — submit to declare: whole days; weekdays only" in page
    assert "proposed from the rows — submit to declare: step 0.5" in page
    assert '<option value="weekdays" selected>' in page and 'name="c1-step" value="0.5"' in page
    posted = client.post(
        "/datasets/trades/schema/",
        {
            "c0-column": "day",
            "c0-resolution": "day",
            "c0-calendar": "weekdays",
            "c1-column": "answer",
            "c1-step": "0.5",
        },
    )
    assert posted.status_code == 302, posted.content.decode()[:2000]
    columns = {column["name"]: column for column in DatasetVersion.objects.get().schema["columns"]}
    assert (columns["day"].get("calendar"), columns["answer"].get("step")) == ("weekdays", 0.5)
    assert "Proposed from the rows" not in client.get("/datasets/trades/schema/").content.decode()
