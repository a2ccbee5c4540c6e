"""Shared fixtures: the cast of users, a registered dataset, purposes, requests."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

FIXTURES = Path(__file__).parent / "fixtures"
SAMPLE_DATA = Path(__file__).resolve().parent.parent / "sample_data"


@pytest.fixture
def adult_csv() -> Path:
    """2,000 rows of UCI Adult (sampled with random_state=0), all 15 columns."""
    return FIXTURES / "adult_2000.csv"


@pytest.fixture
def adult_schema() -> dict:
    return json.loads((SAMPLE_DATA / "adult.schema.json").read_text())


@pytest.fixture(autouse=True)
def _allow_log_purge_between_transactional_tests(request):
    """The append-only triggers refuse TRUNCATE; let the test runner's own flush through.

    Only a superuser session with ``synthgate.maintenance = 'on'`` passes the triggers, and
    this runs after the test body, just before pytest-django empties the tables.
    """
    yield
    if "transactional_db" not in request.fixturenames and not _is_transaction_testcase(request):
        return
    from django.db import connection

    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SET synthgate.maintenance = 'on'")


def _is_transaction_testcase(request) -> bool:
    from django.test import TestCase, TransactionTestCase

    cls = getattr(request, "cls", None)
    return cls is not None and issubclass(cls, TransactionTestCase) and not issubclass(cls, TestCase)


@pytest.fixture
def cast(db):
    """The fixed cast: steward, requester, other requester, two approvers, auditor."""
    from tests.governance.factories import cast_create

    return cast_create()
