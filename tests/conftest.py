"""Shared fixtures: the cast of users, a registered dataset, purposes, requests."""

from __future__ import annotations

import contextlib
import json
from pathlib import Path

import pytest

FIXTURES = Path(__file__).parent / "fixtures"
SAMPLE_DATA = Path(__file__).resolve().parent.parent / "sample_data"
pytest_plugins = ["tests.s3"]  # s3_endpoint, s3_storage: artefacts in a bucket on moto's S3 server


@pytest.fixture
def adult_csv() -> Path:
    """2,000 rows of UCI Adult (sampled with random_state=0), all 15 columns."""
    return FIXTURES / "adult_2000.csv"


@pytest.fixture
def adult_schema() -> dict:
    return json.loads((SAMPLE_DATA / "adult.schema.json").read_text())


@pytest.fixture(scope="session")
def django_db_setup(django_db_setup, django_db_blocker):
    """On PostgreSQL the owner (DATABASE_URL's role) has created and migrated the test database;
    the tests and the workers they start then connect as the application role (tests/database.py)."""
    from tests.database import app_role_connect, owner_reconnect

    with django_db_blocker.unblock():
        app_role_connect()
    yield
    with django_db_blocker.unblock():
        owner_reconnect()  # before pytest-django's teardown drops the database


@pytest.fixture(autouse=True, scope="session")
def _flush_as_the_owner_between_transactional_tests():
    """Empty the tables after a transactional test on an owner connection, triggers passed knowingly.

    The application role may not TRUNCATE the log or the ledger, and the append-only triggers
    refuse it to everyone but a superuser session with ``synthgate.maintenance = 'on'``. So the
    flush that ends every transactional test (the ``transactional_db`` fixture,
    ``django_db(transaction=True)`` and ``TransactionTestCase`` all end in
    ``TransactionTestCase._fixture_teardown``) runs as the owner — the suite's owner is a
    superuser — with the flag on for that flush only; then the connection is the application
    role's again, with the triggers armed. The production grants are not touched.
    """
    from django.db import connections
    from django.test import TransactionTestCase

    from tests.database import as_owner

    original = TransactionTestCase._fixture_teardown

    def _fixture_teardown(self):
        postgres = [
            alias for alias in self._databases_names(include_mirrors=False) if connections[alias].vendor == "postgresql"
        ]
        with contextlib.ExitStack() as owners:
            for alias in postgres:
                owners.enter_context(as_owner(alias))
                with connections[alias].cursor() as cursor:
                    cursor.execute("SET synthgate.maintenance = 'on'")  # this session only; closed after
            original(self)

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
