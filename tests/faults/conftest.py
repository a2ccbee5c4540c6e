"""Fixtures for fault and tamper tests: a scratch PostgreSQL cluster with the owner/app role split,
a fresh database per test, and Django (and its workers) connected as the application role."""

from __future__ import annotations

import itertools
import time

import pytest

from tests.faults.cluster import APP, OWNER, django_connected_to, scratch_cluster

TEMPLATE = "synthgate_template"
_numbers = itertools.count(1)


@pytest.fixture(scope="module")
def cluster(django_db_blocker):
    """A cluster migrated once, as the owner role, into a template database."""
    from django.core.management import call_command
    from django.db import connection

    if connection.vendor != "postgresql":
        pytest.skip("fault tests run the application on a scratch PostgreSQL cluster (the suite is on SQLite)")

    from governance.services.database_roles import database_app_role_grant

    started = time.monotonic()
    with scratch_cluster() as cluster, django_db_blocker.unblock():
        cluster.superuser_sql(f"CREATE DATABASE {TEMPLATE} OWNER {OWNER}")
        cluster.superuser_sql(f"ALTER SCHEMA public OWNER TO {OWNER}", database=TEMPLATE)
        with django_connected_to(cluster, database=TEMPLATE, user=OWNER):
            call_command("migrate", verbosity=0)
            database_app_role_grant(role=APP)
        print(f"scratch cluster on port {cluster.port} ready in {time.monotonic() - started:.1f} s")
        yield cluster


@pytest.fixture
def app_database(cluster, django_db_blocker, settings):
    """A fresh database copied from the template; Django connects to it as the application role."""
    from django.core.cache import cache

    name = f"synthgate_t{next(_numbers)}"
    cluster.superuser_sql(f"CREATE DATABASE {name} TEMPLATE {TEMPLATE} OWNER {OWNER}")
    with django_db_blocker.unblock(), django_connected_to(cluster, database=name, user=APP):
        cache.clear()
        yield name
