"""`synthgate source register|connections`: dataset versions that stay where they live (a database, a lake)."""

from __future__ import annotations

from typing import Any

from django.contrib.auth.models import User
from django.core.management.base import CommandParser

from core.cli import SynthgateCommand
from core.cli_format import fields
from core.schema import proposed_type_columns
from governance.cli_format import version_data
from governance.management.commands.dataset import _read_json_object, add_registration_arguments
from synth_engine.sources import ENGINES, source_database_names, source_engine, source_register


class Command(SynthgateCommand):
    help = "Register a PostgreSQL table or Parquet files as a source version; only counts leave the engine."
    examples = (
        "synthgate source connections",
        "synthgate source register --name clinic --connection warehouse --table public.admissions "
        "--schema admissions.schema.json --epsilon-cap 10 --delta-cap 1e-7 --as steward",
        "synthgate source register --name claims --path '/lake/claims/*.parquet' "
        "--schema claims.schema.json --epsilon-cap 10 --delta-cap 1e-7 --as steward",
    )

    def add_arguments(self, parser: CommandParser) -> None:
        actions = self.add_subcommands(parser)
        register = self.add_subcommand(
            actions,
            "register",
            "register a table of a configured source database, or Parquet files, as a new dataset or a new "
            "version of one",
        )
        register.add_argument("--name", required=True, help="the dataset's name: letters, digits, - and _")
        register.add_argument(
            "--engine",
            choices=sorted(ENGINES),
            help="where the data lives (default: duckdb with --path, postgresql with --connection)",
        )
        register.add_argument(
            "--connection", default="", help="postgresql: a source database named in SYNTHGATE_SOURCE_DATABASES"
        )
        register.add_argument(
            "--table",
            default="",
            help="postgresql: table or view, 'table' or 'schema.table'; spark: a catalog table 'database.table' "
            "in a database of SYNTHGATE_SOURCE_SPARK_DATABASES",
        )
        register.add_argument(
            "--path",
            default="",
            help="duckdb or spark: a Parquet file, a directory of them or a glob, under SYNTHGATE_SOURCE_PARQUET_ROOTS "
            "(duckdb also: an s3://bucket/prefix URL under SYNTHGATE_SOURCE_S3_ROOTS)",
        )
        register.add_argument(
            "--schema",
            required=True,
            metavar="FILE",
            help="JSON schema of the columns to model (required); a column given without a type takes its "
            "catalog's type as a proposal, to declare before the dataset can be requested",
        )
        add_registration_arguments(register)
        self.add_subcommand(actions, "connections", "list the configured source databases (names only)")

    def handle_register(self, actor: User, options: dict[str, Any]) -> None:
        result = source_register(
            actor=actor,
            name=options["name"],
            engine=options["engine"],
            connection=options["connection"],
            table=options["table"],
            path=options["path"],
            schema=_read_json_object(options["schema"], what="schema"),
            epsilon_cap=options["epsilon_cap"],
            delta_cap=options["delta_cap"],
            description=options["description"],
            sensitivity=options["sensitivity"],
            cap_override_reason=options["override_caps"],
            overlap_override_reason=options["override_overlap"],
            declared_rows=options["declared_rows"],
        )
        version = result.version
        reference = version.source_reference
        location = {key: reference[key] for key in ("engine", *source_engine(reference["engine"]).fields)}
        data = {**version_data(version, viewer=actor), "created": result.created, "reference": location}
        verb = "Registered" if result.created else "Already registered (same data, content and schema)"

        def text() -> str:
            head = f"{verb}: {version.dataset.name} version {version.number} (source, stays where it lives)\n"
            proposed = proposed_type_columns(version.schema)
            note = (
                f"\n\nThe types of {', '.join(proposed)} were read from the data's catalog and are NOT declared: "
                "the dataset cannot be requested, and requesters do not see them, until you declare them as shown "
                f"with\n  synthgate dataset declare {version.dataset.name} --accept-proposed-types\n"
                "or register the data again with the types declared in the schema."
                if proposed
                else ""
            )
            rows = f"{version.n_rows} (declared public)" if version.rows_declared else version.n_rows
            return (
                head
                + fields(
                    [
                        *location.items(),
                        ("rows", rows),
                        ("columns", version.n_columns),
                        ("epsilon cap", version.dataset.epsilon_cap),
                        ("delta cap", version.dataset.delta_cap),
                    ]
                )
                + note
            )

        self.emit(data, text)

    def handle_connections(self, actor: User, options: dict[str, Any]) -> None:
        names = source_database_names()
        self.emit({"connections": names}, lambda: "\n".join(names) or "No source databases are configured.")
