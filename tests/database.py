"""The suite's database role split on PostgreSQL, as in production (docs/tamper-evidence.md).

The role named in ``DATABASE_URL`` is the **owner**: it creates the test database and runs the
migrations. Then the application role (``SYNTHGATE_TEST_DB_APP_ROLE``, default
``synthgate_test_app``; created when missing, never a superuser) is granted the application's
rights by ``governance.services.database_roles`` — only INSERT and SELECT on the audit log and
the ledger — and Django's ``default`` connection switches to it. Every test, every thread it
starts and every Celery worker or beat it starts (they are handed the connection's own settings)
then runs the application's code as the application role.

What only an owner may do runs on an owner connection, explicitly, through :func:`as_owner`:
the flush that empties the tables after a transactional test (tests/conftest.py), the session's
final DROP DATABASE, and tests that play an insider holding the owner role. An owner connection
sees only committed rows, so such a test is marked ``django_db(transaction=True)``.

On SQLite (``DATABASE_URL`` unset) there are no roles: the functions here do nothing.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager

from django.db import DEFAULT_DB_ALIAS, connections

APP_ROLE = os.environ.get("SYNTHGATE_TEST_DB_APP_ROLE") or "synthgate_test_app"

# The owner's and the application role's credentials, once the split is in place.
_credentials: dict[str, dict[str, str]] = {}


def role_split_active() -> bool:
    return bool(_credentials)


def app_role_connect(alias: str = DEFAULT_DB_ALIAS) -> None:
    """After the owner migrated the test database: ensure the application role exists (LOGIN, not a
    superuser), grant it the application's rights, and reconnect ``alias`` as that role."""
    from django.db import ProgrammingError
    from psycopg2 import errors, sql

    from governance.services.database_roles import database_app_role_grant

    connection = connections[alias]
    if connection.vendor != "postgresql":
        return
    settings_dict = connection.settings_dict
    password = os.environ.get("SYNTHGATE_TEST_DB_APP_PASSWORD", settings_dict["PASSWORD"] or "")
    role = sql.Identifier(APP_ROLE)
    with connection.cursor() as cursor:
        cursor.execute("SELECT rolsuper FROM pg_roles WHERE rolname = %s", [APP_ROLE])
        found = cursor.fetchone()
        if found is None:
            try:
                cursor.execute(sql.SQL("CREATE ROLE {} LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE").format(role))
            except ProgrammingError as error:
                if not isinstance(error.__cause__, errors.DuplicateObject):
                    raise  # else another test run on this cluster created it just now
        elif found[0]:
            raise RuntimeError(f"The test application role {APP_ROLE!r} is a superuser; it must not be.")
        if password:
            cursor.execute(sql.SQL("ALTER ROLE {} PASSWORD %s").format(role), [password])
    database_app_role_grant(role=APP_ROLE)
    _credentials["owner"] = {"USER": settings_dict["USER"], "PASSWORD": settings_dict["PASSWORD"]}
    _credentials["app"] = {"USER": APP_ROLE, "PASSWORD": password}
    _connect_as(alias, "app")


def owner_reconnect(alias: str = DEFAULT_DB_ALIAS) -> None:
    """Give ``alias`` back to the owner for good (the session's teardown drops the database)."""
    if role_split_active():
        _connect_as(alias, "owner")
        _credentials.clear()


@contextmanager
def as_owner(alias: str = DEFAULT_DB_ALIAS) -> Iterator[None]:
    """Django's ``alias`` connection as the owner role for the block, then the application role again.

    For what the application may not do: emptying tables, disabling the append-only triggers, an
    insider's edits. The owner's session sees only committed rows, so the test must not be inside
    the test-case transaction (mark it ``django_db(transaction=True)``).
    """
    if not role_split_active():
        yield
        return
    if connections[alias].in_atomic_block:
        raise RuntimeError(
            "An owner connection cannot see this test's uncommitted rows: mark the test "
            "django_db(transaction=True) to act as the owner."
        )
    _connect_as(alias, "owner")
    try:
        yield
    finally:
        _connect_as(alias, "app")


@contextmanager
def owner_without_append_only_triggers(table: str = "governance_auditevent") -> Iterator[None]:
    """An insider holding the owner role edits ``table`` with its append-only triggers off, in one
    transaction (so no other session ever sees them off). A no-op wrapper on SQLite."""
    from django.db import connection, transaction

    if connection.vendor != "postgresql":
        yield
        return
    with as_owner(), transaction.atomic():
        with connection.cursor() as cursor:
            # Django's foreign keys are deferred; PostgreSQL will not alter a table with checks pending.
            cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
            cursor.execute(f"ALTER TABLE {table} DISABLE TRIGGER USER")
        yield
        with connection.cursor() as cursor:
            cursor.execute(f"ALTER TABLE {table} ENABLE TRIGGER USER")


def _connect_as(alias: str, who: str) -> None:
    connection = connections[alias]
    connection.close()
    # The same dict as settings.DATABASES[alias]: new threads' connections and the workers the tests
    # start (tests/jobs/worker.py reads it) follow.
    connection.settings_dict.update(_credentials[who])
