"""The database role split: migrations run as the owner role, the application as a role that may
only INSERT and SELECT the audit log and the ledger (docs/tamper-evidence.md).

The owner (who runs ``synthgate init``) grants the application role what it needs after every
migration; PostgreSQL then refuses an UPDATE, DELETE or TRUNCATE of the log or ledger from the
application's connection before any trigger runs, and only a table's owner may disable its triggers.
"""

from __future__ import annotations

from django.db import connection
from psycopg2 import sql

from core.errors import ValidationError
from governance.models import AuditEvent, BudgetEntry

# Rows the application appends and never changes.
APPEND_ONLY_TABLES = (AuditEvent._meta.db_table, BudgetEntry._meta.db_table)
# Read by the application, written only by migrations.
READ_ONLY_TABLES = ("django_migrations",)


def database_app_role_grant(*, role: str) -> list[str]:
    """Grant ``role`` read/write on the application's tables, but only INSERT and SELECT on the log
    and the ledger, and SELECT on the migration record. Returns the statements run (idempotent)."""
    if connection.vendor != "postgresql":
        raise ValidationError("The application role split exists on PostgreSQL only.")
    name = sql.Identifier(role)
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", [role])
        if cursor.fetchone() is None:
            raise ValidationError(f"No database role {role!r}: create it first (CREATE ROLE ... LOGIN).")
        cursor.execute("SELECT current_database(), current_user")
        database, owner = cursor.fetchone()
        if role == owner:
            raise ValidationError(f"{role!r} is the role running migrations; the application needs its own role.")
        statements = [
            sql.SQL("GRANT CONNECT ON DATABASE {} TO {}").format(sql.Identifier(database), name),
            sql.SQL("GRANT USAGE ON SCHEMA public TO {}").format(name),
            sql.SQL("GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO {}").format(name),
            sql.SQL("GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA public TO {}").format(name),
            *(
                sql.SQL("REVOKE UPDATE, DELETE, TRUNCATE, REFERENCES, TRIGGER ON {} FROM {}").format(
                    sql.Identifier(table), name
                )
                for table in APPEND_ONLY_TABLES
            ),
            *(
                sql.SQL("REVOKE INSERT, UPDATE, DELETE, TRUNCATE ON {} FROM {}").format(sql.Identifier(table), name)
                for table in READ_ONLY_TABLES
            ),
        ]
        for statement in statements:
            cursor.execute(statement)
    return [statement.as_string(connection.connection) for statement in statements]
