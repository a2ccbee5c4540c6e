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


@pytest.fixture(autouse=True, scope="session")
def _allow_log_purge_between_transactional_tests():
    """The append-only triggers refuse TRUNCATE; let the test runner's own flush through.

    Only a superuser session with ``synthgate.maintenance = 'on'`` passes the triggers. The
    flag is switched on around the flush that ends every transactional test (the
    ``transactional_db`` fixture, ``django_db(transaction=True)`` and ``TransactionTestCase``
    all end in ``TransactionTestCase._fixture_teardown``) and off again straight after, so
    the next test sees the triggers armed.
    """
    from django.db import connections
    from django.test import TransactionTestCase

    original = TransactionTestCase._fixture_teardown

    def _fixture_teardown(self):
        postgres = [
            connections[alias]
            for alias in self._databases_names(include_mirrors=False)
            if connections[alias].vendor == "postgresql"
        ]
        for connection in postgres:
            with connection.cursor() as cursor:
                cursor.execute("SET synthgate.maintenance = 'on'")
        try:
            original(self)
        finally:
            for connection in postgres:
                with connection.cursor() as cursor:
                    cursor.execute("RESET synthgate.maintenance")

    TransactionTestCase._fixture_teardown = _fixture_teardown
    yield
    TransactionTestCase._fixture_teardown = original


@pytest.fixture(autouse=True)
def _checkpoints_follow_the_database():
    """The test database is emptied or rolled back after every test; its signed checkpoints go too."""
    yield
    from governance.services.checkpoints import checkpoints_discard

    checkpoints_discard()


@pytest.fixture
def cast(db):
    """The fixed cast: steward, requester, other requester, two approvers, auditor."""
    from tests.governance.factories import cast_create

    return cast_create()
