"""`synthgate init`: bring the database up to date, create the roles and the default purposes.

Safe to run again: it only adds what is missing.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import CommandParser
from django.db import DEFAULT_DB_ALIAS, connections
from django.db.migrations.executor import MigrationExecutor

from core.cli import SynthgateCommand, add_common_options
from core.cli_format import fields, table
from governance.init_steps import init_steps
from governance.models import Purpose
from governance.services import purposes_ensure_defaults, roles_ensure
from governance.services.database_roles import database_app_role_grant


def app_role_grant() -> str | None:
    """Grant SYNTHGATE_DB_APP_ROLE its rights after migrating (INSERT/SELECT only on log and ledger)."""
    if not settings.SYNTHGATE_DB_APP_ROLE:
        return None
    database_app_role_grant(role=settings.SYNTHGATE_DB_APP_ROLE)
    return settings.SYNTHGATE_DB_APP_ROLE


class Command(SynthgateCommand):
    help = "Create or migrate the database, the roles and the default purposes (idempotent)."
    examples = ("synthgate init",)
    requires_database = False

    def add_arguments(self, parser: CommandParser) -> None:
        add_common_options(parser, needs_user=False)

    def handle(self, *args: Any, **options: Any) -> None:
        connection = connections[DEFAULT_DB_ALIAS]
        executor = MigrationExecutor(connection)
        pending = len(executor.migration_plan(executor.loader.graph.leaf_nodes()))
        call_command("migrate", interactive=False, verbosity=0)
        granted = app_role_grant()
        roles = [group.name for group in roles_ensure()]
        created = [purpose.name for purpose in purposes_ensure_defaults()]
        purposes = list(Purpose.objects.order_by("name").values_list("name", flat=True))
        reports = {name: step() for name, step in init_steps()}  # signing key, beat schedules (apps above)
        identity = reports["signing"]
        data = {
            "data_dir": str(settings.DATA_DIR),
            "database": connection.vendor,
            "migrations_applied": pending,
            "roles": roles,
            "purposes_created": created,
            "purposes": purposes,
            "signing": identity,
            "app_role": granted,
        }
        self.emit(
            data,
            lambda: "\n".join(
                [
                    fields(
                        [
                            ("data directory", data["data_dir"]),
                            ("database", data["database"]),
                            ("migrations applied", pending),
                            ("roles", roles),
                            ("datasheet signer", f"{identity['subject']} ({identity['source']})"),
                        ]
                    ),
                    "",
                    table(
                        ("purpose", "status"), [(name, "created" if name in created else "exists") for name in purposes]
                    ),
                ]
            ),
        )
