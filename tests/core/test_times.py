"""One time format and one id style: ISO 8601 UTC for machines (API, CLI --json, exports), one
plain form for people (dashboard, CLI tables), checked on real answers of each."""

from __future__ import annotations

import io
import json
import re
from datetime import UTC, date, datetime, timedelta, timezone

import pytest
from django.core.management import call_command
from rest_framework.test import APIClient

from core.times import time_iso, time_text
from tests.governance.factories import PurposeFactory, dataset_register_adult, request_file

ISO = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")
HUMAN = re.compile(r"\b\d{4}-\d\d-\d\d \d\d:\d\d(?::\d\d)?(?: UTC)?")


def test_a_moment_is_written_one_way_for_machines_and_one_way_for_people():
    moment = datetime(2026, 12, 5, 8, 25, 4, 123456, tzinfo=timezone(timedelta(hours=1)))

    assert time_iso(moment) == "2026-12-05T07:25:04Z"
    assert time_text(moment) == "2026-12-05 07:25 UTC"
    assert time_text("2026-12-05T07:25:04.123456+00:00") == "2026-12-05 07:25 UTC"
    assert time_iso(date(2026, 12, 5)) == time_text(date(2026, 12, 5)) == "2026-12-05"
    assert time_iso(None) is None and time_text(None) == ""


def _moments(data, key=""):
    """Every string under a key ending in ``_at`` (or named ``at``), anywhere in a JSON document."""
    if isinstance(data, dict):
        for name, value in data.items():
            yield from _moments(value, name)
    elif isinstance(data, list):
        for item in data:
            yield from _moments(item, key)
    elif isinstance(data, str) and (key.endswith("_at") or key == "expiry"):
        yield key, data


@pytest.fixture
def world(cast, adult_schema):
    PurposeFactory()
    dataset_register_adult(steward=cast.steward, schema=adult_schema)
    return request_file(requester=cast.requester)


def test_the_api_and_the_cli_json_write_every_moment_in_iso_8601_utc(cast, world):
    client = APIClient()
    client.force_authenticate(cast.steward)
    documents = [
        client.get(path).json()
        for path in (
            "/api/datasets/",
            "/api/datasets/adult/versions/",
            f"/api/requests/{world.pk}/",
            "/api/requests/",
            "/api/audit-events/",
        )
    ]
    stdout = io.StringIO()
    call_command("request", "list", "--json", "--as", "steward", stdout=stdout)
    documents.append(json.loads(stdout.getvalue()))

    moments = [moment for document in documents for moment in _moments(document)]
    assert len(moments) >= 6
    assert [(key, text) for key, text in moments if not ISO.match(text)] == []


def test_cli_tables_and_dashboard_pages_write_moments_one_plain_way_and_versions_as_id_and_number(cast, world, client):
    stdout = io.StringIO()
    call_command("request", "list", "--as", "steward", stdout=stdout)
    call_command("dataset", "show", "adult", "--as", "steward", stdout=stdout)
    client.force_login(cast.steward)
    pages = [
        client.get(path).content.decode() for path in (f"/requests/{world.pk}/", "/datasets/adult/", "/audit-log/")
    ]
    today = datetime.now(UTC).date().isoformat()

    for text in (stdout.getvalue(), *pages):
        written = HUMAN.findall(text)
        assert written, text[:400]
        assert all(moment.endswith(" UTC") and moment.count(":") == 1 for moment in written), written
        assert not re.search(r"\d\d:\d\d:\d\d\.\d+", text)  # no microseconds for people
    assert f"{today} " in stdout.getvalue()
    assert re.search(r"^v1 ", stdout.getvalue(), re.MULTILINE)  # a version number is written vN
