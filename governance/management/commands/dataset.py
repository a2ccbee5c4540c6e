"""`synthgate dataset register|list|show`: source tables, their budget caps and versions."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from django.contrib.auth.models import User
from django.core.management.base import CommandParser

from core.cli import CliError, SynthgateCommand
from core.cli_format import fields, table
from core.limits import json_loads_checked
from core.schema import COLUMN_ROLES, COLUMN_TYPES, DATETIME_CALENDARS, DATETIME_RESOLUTIONS, proposed_type_columns
from governance.cli_format import dataset_data, schema_table, version_data
from governance.models import DatasetVersion, Sensitivity
from governance.permissions import version_hash_visible, version_rows_visible, version_schema_visible
from governance.selectors import dataset_get, dataset_latest_source, dataset_list, dataset_version_list
from governance.services import (
    RegistrationResult,
    dataset_register,
    dataset_rows_check,
    dataset_schema_declare_columns,
    dataset_schema_types_repropose,
)

VERSION_COLUMNS = ("version", "kind", "rows", "cols", "content_hash", "dropped identifiers", "created_at")


class Command(SynthgateCommand):
    help = "Register source datasets (with ε/δ caps) and inspect them."
    examples = (
        "synthgate dataset register sample_data/adult.csv.gz --name adult "
        "--schema sample_data/adult.schema.json --epsilon-cap 10 --delta-cap 2e-5 --as steward",
        "synthgate dataset list",
        "synthgate dataset show adult",
        "synthgate dataset check --as steward",
    )

    def add_arguments(self, parser: CommandParser) -> None:
        actions = self.add_subcommands(parser)
        register = self.add_subcommand(
            actions,
            "register",
            "register a CSV/Parquet file (optionally compressed) "
            "as a new dataset, or as a new version of an existing one",
        )
        register.add_argument("path", metavar="PATH", help="CSV (, ; tab |), compressed CSV or Parquet")
        register.add_argument("--name", required=True, help="the dataset's name: letters, digits, - and _")
        register.add_argument(
            "--schema",
            metavar="FILE",
            help="JSON schema with column types and roles; inferred (every role 'other') when omitted",
        )
        add_registration_arguments(register)
        register.add_argument(
            "--declare",
            metavar="FILE",
            help="JSON object of column → roles and public domain to declare on the given or inferred schema, e.g. "
            '{"income": {"role": "label", "categories": ["<=50K", ">50K"]}, "age": {"min": 15, "max": 100}} '
            "(keys: type, role, categories, min, max, nullable, resolution, calendar, step, domain_source); logged",
        )
        declare = self.add_subcommand(
            actions,
            "declare",
            "declare a column's role or public domain (codebook categories, bounds, nullable) on the newest "
            "source version; logged",
        )
        declare.add_argument("name", metavar="NAME")
        declare.add_argument(
            "--column",
            help="the column to declare (required unless --accept-proposed-types or --repropose-types alone)",
        )
        declare.add_argument(
            "--accept-proposed-types",
            action="store_true",
            help="declare every type proposed from the rows as proposed (logged per column); "
            "a version with a proposed type cannot be requested",
        )
        declare.add_argument(
            "--repropose-types",
            action="store_true",
            help="mark declared types as proposed again (every column's, or --column's), logged per column: for a "
            "version registered before type proposals existed, whose types read from the rows count as declared; "
            "the dataset cannot be requested until they are declared again",
        )
        declare.add_argument(
            "--type", choices=list(COLUMN_TYPES), help="the column's type (declares a type proposed from the rows)"
        )
        declare.add_argument("--role", choices=[role for role in COLUMN_ROLES if role != "identifier"])
        declare.add_argument("--categories", metavar="A,B,...", help="the codebook's categories, comma-separated")
        declare.add_argument("--min", metavar="X", help="public lower bound (a number; ISO 8601 for datetimes)")
        declare.add_argument("--max", metavar="X", help="public upper bound")
        declare.add_argument("--nullable", choices=["yes", "no"], help="whether the column may be missing")
        declare.add_argument(
            "--resolution",
            choices=list(DATETIME_RESOLUTIONS),
            help="a datetime column's released resolution (whole days, hours, minutes or seconds, UTC)",
        )
        declare.add_argument(
            "--calendar",
            choices=list(DATETIME_CALENDARS),
            help="a day-resolution datetime column's days: weekdays (Monday to Friday, such as trading days) only",
        )
        declare.add_argument(
            "--step",
            type=float,
            metavar="X",
            help="a float column's grid: it holds only whole multiples of X (answers coded 17.5, 22, ...) "
            "and is released on that grid",
        )
        declare.add_argument("--source", metavar="TEXT", help="where the public domain comes from (a codebook)")
        declare.add_argument(
            "--clear",
            action="append",
            default=[],
            choices=["categories", "min", "max", "nullable", "resolution", "calendar", "step", "domain_source"],
            help="remove a declaration (the domain then becomes private and is paid for)",
        )
        check = self.add_subcommand(
            actions,
            "check",
            "check the stored rows of source versions stored before registration checked them against their "
            "declarations (the upgrade step); prints each contradiction, which only stewards read",
        )
        check.add_argument("name", metavar="NAME", nargs="?", help="one dataset (default: every dataset)")
        self.add_subcommand(actions, "list", "list datasets")
        show = self.add_subcommand(actions, "show", "caps, versions and the schema of one dataset")
        show.add_argument("name", metavar="NAME", help="the dataset's name (see `synthgate dataset list`)")

    def _repropose(self, actor: User, options: dict[str, Any]) -> None:
        name = options["name"]
        result = dataset_schema_types_repropose(
            actor=actor, name=name, columns=[options["column"]] if options["column"] else None
        )
        proposed = proposed_type_columns(result.version.schema)
        columns = [entry for entry in result.version.schema["columns"] if entry["name"] in proposed]
        data = {"version": version_data(result.version, viewer=actor), "columns": columns}
        self.emit(
            data,
            lambda: "\n".join(
                [
                    f"Types proposed again on {result.version} (not declared; it cannot be requested until they are):",
                    schema_table({"columns": columns}),
                    "Declare them as shown with",
                    f"  synthgate dataset declare {name} --accept-proposed-types",
                    f"or one by one with: synthgate dataset declare {name} --column COLUMN --type "
                    "integer|float|categorical|boolean|datetime",
                ]
            ),
        )

    def handle_register(self, actor: User, options: dict[str, Any]) -> None:
        path = Path(options["path"])
        if not path.is_file():
            raise CliError(f"No such file: {path}.", code="not_found", extra={"path": str(path)})
        result = dataset_register(
            actor=actor,
            name=options["name"],
            path=path,
            filename=path.name,
            epsilon_cap=options["epsilon_cap"],
            delta_cap=options["delta_cap"],
            schema=_read_json_object(options["schema"], what="schema"),
            description=options["description"],
            sensitivity=options["sensitivity"],
            cap_override_reason=options["override_caps"],
            overlap_override_reason=options["override_overlap"],
            declarations=_read_json_object(options["declare"], what="declarations"),
            declared_rows=options["declared_rows"],
        )
        version = result.version
        data = {
            **version_data(version, viewer=actor),
            "created": result.created,
            "warnings": result.warnings,
            "suggested_declarations": result.suggestions,
        }
        self.emit(data, lambda: _registration_text(result))

    def handle_declare(self, actor: User, options: dict[str, Any]) -> None:
        changes: dict[str, Any] = dict.fromkeys(options["clear"])
        if options["type"]:
            changes["type"] = options["type"]
        if options["role"]:
            changes["role"] = options["role"]
        if options["categories"] is not None:
            changes["categories"] = [item.strip() for item in options["categories"].split(",") if item.strip()]
        for key in ("min", "max"):
            if options[key] is not None:
                changes[key] = _bound(options[key])
        if options["nullable"]:
            changes["nullable"] = options["nullable"] == "yes"
        if options["resolution"]:
            changes["resolution"] = options["resolution"]
        if options["calendar"]:
            changes["calendar"] = options["calendar"]
        if options["step"] is not None:
            changes["step"] = options["step"]
        if options["source"]:
            changes["domain_source"] = options["source"]
        accept = options["accept_proposed_types"]
        if options["repropose_types"]:
            if changes or accept:
                raise CliError(
                    "--repropose-types goes alone (with --column to name one column): declare afterwards.",
                    code="invalid",
                )
            self._repropose(actor, options)
            return
        if not changes and not accept:
            raise CliError(
                "Nothing to declare: give --accept-proposed-types, or --column with --type, --role, --categories, "
                "--min, --max, --nullable, --resolution, --calendar, --step, --source or --clear."
            )
        if changes and not options["column"]:
            raise CliError("Name the column to declare with --column.", code="invalid")
        named = [options["column"]] if changes else []
        if accept:
            latest = dataset_latest_source(dataset=dataset_get(user=actor, name=options["name"]))
            named += [name for name in (proposed_type_columns(latest.schema) if latest else []) if name not in named]
        result = dataset_schema_declare_columns(
            actor=actor,
            name=options["name"],
            declarations={options["column"]: changes} if changes else {},
            accept_proposed_types=accept,
        )
        columns = [entry for entry in result.version.schema["columns"] if entry["name"] in named]
        data = {
            "version": version_data(result.version, viewer=actor),
            "columns": columns,
            "warnings": result.warnings,
            **({"column": columns[0]} if changes else {}),
        }
        self.emit(
            data,
            lambda: "\n".join(
                [f"Declared on {result.version}:", schema_table({"columns": columns})]
                + [f"warning: {warning}" for warning in result.warnings]
            ),
        )

    def handle_check(self, actor: User, options: dict[str, Any]) -> None:
        checked = dataset_rows_check(actor=actor, name=options["name"])
        data = [{"version": str(version), "holds": not reason, "reason": reason} for version, reason in checked]
        self.emit(
            data,
            lambda: "\n".join(
                [
                    f"{row['version']}: " + (f"CONTRADICTED: {row['reason']}" if row["reason"] else "holds")
                    for row in data
                ]
                or ["Every uploaded source version's rows were already checked."]
            ),
        )

    def handle_list(self, actor: User, options: dict[str, Any]) -> None:
        data = []
        for dataset in dataset_list(user=actor):
            latest = dataset_latest_source(dataset=dataset)
            data.append(
                {
                    **dataset_data(dataset),
                    "versions": dataset_version_list(dataset=dataset).count(),
                    "latest_source_version": latest.number if latest else None,
                }
            )
        self.emit(
            data,
            lambda: table(
                ("name", "owner", "sensitivity", "epsilon_cap", "delta_cap", "versions", "latest source"),
                [
                    (
                        row["name"],
                        row["owner"],
                        row["sensitivity"],
                        row["epsilon_cap"],
                        row["delta_cap"],
                        row["versions"],
                        row["latest_source_version"],
                    )
                    for row in data
                ],
            ),
        )

    def handle_show(self, actor: User, options: dict[str, Any]) -> None:
        dataset = dataset_get(user=actor, name=options["name"])
        versions = list(dataset_version_list(dataset=dataset))
        latest = dataset_latest_source(dataset=dataset)
        data = {
            **dataset_data(dataset),
            "versions": [version_data(version, viewer=actor) for version in versions],
            "schema": version_schema_visible(actor, latest) if latest else None,
        }
        self.emit(
            data,
            lambda: "\n".join(
                [
                    fields(
                        [
                            ("dataset", dataset.name),
                            ("description", dataset.description),
                            ("owner", dataset.owner),
                            ("sensitivity", dataset.sensitivity),
                            ("epsilon cap", dataset.epsilon_cap),
                            ("delta cap", dataset.delta_cap),
                        ]
                    ),
                    "",
                    "Versions",
                    table(VERSION_COLUMNS, [_version_row(version, actor) for version in versions]),
                    "",
                    f"Schema (source version {latest.number})" if latest else "Schema",
                    schema_table(version_schema_visible(actor, latest)) if latest else "(no source version)",
                ]
            ),
        )


def add_registration_arguments(register: Any) -> None:
    """The caps, description, sensitivity, declared public row count and override options every way of
    registering takes (an upload, a table by reference)."""
    register.add_argument(
        "--epsilon-cap", required=True, metavar="E", help="total ε every release of this dataset may spend, e.g. 10"
    )
    register.add_argument("--delta-cap", required=True, metavar="D", help="total δ, below 1, e.g. 2e-5")
    register.add_argument("--description", default="", help="what the table holds, for people choosing it")
    register.add_argument(
        "--sensitivity",
        choices=Sensitivity.values,
        default=Sensitivity.CONFIDENTIAL,
        help="how sensitive the source is (default: confidential)",
    )
    register.add_argument(
        "--override-caps",
        metavar="REASON",
        default="",
        help="accept caps Synthgate finds implausible (ε above the plausible maximum, δ ≥ 1/rows); logged",
    )
    register.add_argument(
        "--declared-rows",
        metavar="N",
        help="the table's exact row count, declared public (a published census count): refused unless it "
        "is the count; then no DP estimate of the size is charged",
    )
    register.add_argument(
        "--override-overlap",
        metavar="REASON",
        default="",
        help="register although some rows match another dataset's (partial overlap only); logged",
    )


def _bound(text: str) -> Any:
    try:
        number = float(text)
    except ValueError:
        return text  # a datetime bound; the schema parser checks it
    return int(number) if number.is_integer() and "." not in text and "e" not in text.lower() else number


def _read_json_object(name: str | None, *, what: str) -> dict[str, Any] | None:
    if name is None:
        return None
    try:
        data = json_loads_checked(Path(name).read_text(encoding="utf-8"), what=f"The {what} file {name}")
    except OSError as error:
        raise CliError(f"Cannot read the {what} file {name}: {error.strerror}.", extra={"path": name}) from error
    except ValueError as error:
        raise CliError(
            f"The {what} file {name} is not valid JSON: {error}.", code=f"invalid_{what}", extra={"path": name}
        ) from error
    if not isinstance(data, dict):
        raise CliError(f"The {what} file {name} must hold a JSON object.", code=f"invalid_{what}", extra={"path": name})
    return data


def _proposed_types_text(name: str, schema: dict[str, Any]) -> list[str]:
    """What to do about types proposed from the rows: the version cannot be requested until they are declared."""
    columns = proposed_type_columns(schema)
    if not columns:
        return []
    return [
        "",
        f"The types marked (proposed) were read from the rows ({', '.join(columns)}) and are NOT declared: one row "
        "can change them, so the dataset cannot be requested, and requesters do not see them, until you declare "
        "them. Declare them as shown with",
        f"  synthgate dataset declare {name} --accept-proposed-types",
        f"or one by one with: synthgate dataset declare {name} --column COLUMN --type "
        "integer|float|categorical|boolean|datetime",
    ]


def _suggestions_text(name: str, suggestions: dict[str, dict[str, Any]]) -> list[str]:
    """The declarations the rows suggest, as the commands that declare them (nothing is applied)."""
    if not suggestions:
        return []
    lines = [
        "",
        "Suggested from the rows, NOT applied (the stored schema does not have them): declare one only if "
        "it is public knowledge, with",
    ]
    for column, keys in suggestions.items():
        options = " ".join(f"--{key} {value}" for key, value in keys.items())
        lines.append(f"  synthgate dataset declare {name} --column {column} {options}")
    lines.append(
        f"(or POST /api/datasets/{name}/declare/ with {json.dumps({'columns': suggestions}, separators=(',', ':'))})"
    )
    return lines


def _version_row(version: DatasetVersion, viewer: User) -> tuple[object, ...]:
    return (
        f"v{version.number}",
        version.kind,
        version.n_rows if version_rows_visible(viewer, version) else "(private)",
        version.n_columns,
        version_hash_visible(viewer, version),
        version.dropped_columns,
        version.created_at,
    )


def _registration_text(result: RegistrationResult) -> str:
    version = result.version
    verb = "Stored" if result.created else "Already stored (identical content)"
    lines = [
        f"{verb}: {version.dataset.name} version {version.number} ({version.kind})",
        fields(
            [
                ("rows", version.n_rows),
                ("columns", version.n_columns),
                ("sha256", version.content_hash),
                ("dropped identifiers", version.dropped_columns),
                ("epsilon cap", version.dataset.epsilon_cap),
                ("delta cap", version.dataset.delta_cap),
            ]
        ),
    ]
    name = version.dataset.name
    lines += [
        "",
        (
            "No schema was given; this schema was inferred (every role is 'other'):"
            if version.schema_inferred
            else "The stored schema:"
        ),
        schema_table(version.schema),
        *_proposed_types_text(name, version.schema),
        "",
        "Nothing is public that is not declared: a 'private' domain is estimated with differential privacy and "
        "paid for. Declare roles and public domains (from a codebook, never from the rows) with",
        f"  synthgate dataset declare {name} --column COLUMN [--role label|protected|quasi_identifier|sensitive] "
        "[--categories A,B,...] [--min X --max Y] [--nullable yes|no] [--source CODEBOOK]",
        "(each declaration is logged), or give them at registration with --declare FILE; "
        "identifiers are declared with --schema or --declare before storage.",
    ]
    lines += _suggestions_text(name, result.suggestions)
    lines += [f"warning: {warning}" for warning in result.warnings]
    return "\n".join(lines)
