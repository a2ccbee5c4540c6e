"""Datetime bounds (ISO 8601 text), a datetime's resolution and weekday calendar, and a float's
grid step are declared the same way everywhere (issue 11.6): through the service, the API, the
CLI and the dashboard's schema step, each refusing what the schema parser refuses with the reason
and changing nothing."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
from rest_framework.test import APIClient

from governance.models import AuditEvent, DatasetVersion
from governance.services import dataset_register
from tests.governance.test_cli import synthgate

pytestmark = pytest.mark.django_db

DECLARED = {
    "day": {"min": "2024-01-01", "max": "2024-12-31", "resolution": "day", "calendar": "weekdays"},
    "answer": {"step": 0.5},
}


@pytest.fixture
def table(tmp_path) -> Path:
    lines = ["day,answer"] + [
        f"{day:%Y-%m-%d},{[17.5, 22.0, 27.0][number % 3]}"
        for number, day in enumerate(pd.bdate_range("2024-01-02", periods=12))
    ]
    path = tmp_path / "trades.csv"
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.fixture
def registered(cast, data_dir, table) -> DatasetVersion:
    result = dataset_register(
        actor=cast.steward, name="trades", path=table, filename=table.name, epsilon_cap="5", delta_cap="0"
    )
    day = result.version.schema["columns"][0]
    assert day == {"name": "day", "type": "datetime", "role": "other", "type_proposed": True}  # ISO dates: dates
    assert result.suggestions == {"day": {"resolution": "day"}, "answer": {"step": 0.5}}  # not stored
    return result.version


def declared_columns() -> dict[str, dict]:
    return {column["name"]: column for column in DatasetVersion.objects.get().schema["columns"]}


def assert_declared() -> None:
    stored = declared_columns()
    for name, keys in DECLARED.items():
        assert {key: stored[name].get(key) for key in keys} == keys, name


def test_the_api_declares_iso_bounds_a_calendar_and_a_step(cast, registered):
    client = APIClient()
    client.force_authenticate(cast.steward)
    response = client.post("/api/datasets/trades/declare/", {"columns": DECLARED}, format="json")
    assert response.status_code == 200, response.content
    assert_declared()
    for body, reason in (
        ({"columns": {"answer": {"calendar": "weekdays"}}}, "calendar is only allowed on datetime columns"),
        ({"columns": {"day": {"min": "the first of May"}}}, "min must be an ISO 8601 date or time"),
        ({"columns": {"day": {"calendar": "fortnights"}}}, "not a valid choice"),
        ({"columns": {"answer": {"step": -1}}}, "step must be a positive number"),
    ):
        refused = client.post("/api/datasets/trades/declare/", body, format="json")
        assert refused.status_code == 400 and reason in json.dumps(refused.json()), body
    assert AuditEvent.objects.filter(action="dataset_version.declare").count() == 2


def test_the_cli_declares_iso_bounds_a_calendar_and_a_step(cast, registered):
    day = synthgate(
        "dataset", "declare", "trades", "--column", "day", "--min", "2024-01-01", "--max", "2024-12-31",
        "--resolution", "day", "--calendar", "weekdays", "--as", "steward",
    )  # fmt: skip
    assert day.code == 0, day.message
    assert "days, weekdays" in day.stdout
    answer = synthgate("dataset", "declare", "trades", "--column", "answer", "--step", "0.5", "--as", "steward")
    assert answer.code == 0, answer.message
    assert "step 0.5" in answer.stdout
    assert_declared()
    refused = synthgate(
        "dataset", "declare", "trades", "--column", "answer", "--calendar", "weekdays", "--as", "steward"
    )
    assert refused.code == 2 and "calendar is only allowed on datetime columns" in refused.message


def test_the_dashboard_schema_step_declares_iso_bounds_a_calendar_and_a_step(cast, registered, client):
    client.force_login(cast.steward)
    page = client.get("/datasets/trades/schema/").content.decode()
    assert 'name="c0-calendar"' in page and 'name="c1-step"' in page
    assert 'name="c0-step"' not in page and 'name="c1-calendar"' not in page  # each where its type has it
    post = {"c0-column": "day", "c1-column": "answer"}
    bad = client.post("/datasets/trades/schema/", {**post, "c0-minimum": "the first of May"})
    assert bad.status_code == 400 and "ISO 8601" in bad.content.decode()
    good = client.post(
        "/datasets/trades/schema/",
        {
            **post,
            "c0-minimum": "2024-01-01",
            "c0-maximum": "2024-12-31",
            "c0-resolution": "day",
            "c0-calendar": "weekdays",
            "c1-step": "0.5",
        },
    )
    assert good.status_code == 302, good.content.decode()[:2000]
    assert_declared()
    detail = client.get("/datasets/trades/").content.decode()
    assert "whole days; weekdays only" in detail and "step 0.5" in detail
    cleared = client.post("/datasets/trades/schema/", {**post, "c0-calendar": "-"})
    assert cleared.status_code == 302 and "calendar" not in declared_columns()["day"]
