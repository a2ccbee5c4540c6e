"""Dataset versions that live in a database: registration, the job's reads and the drift re-audit's
snapshots (docs/engines.md).

A steward registers a PostgreSQL table or view under a connection *name* configured in
``SYNTHGATE_SOURCE_DATABASES``; the URL and its credentials stay in the settings and never reach
the database rows, the log, the API or the datasheet. Registration checks the table against the
schema in the database and takes its row count and checksum there; a job checks both again
before it spends anything, so a table that changed since registration is refused, and fits MST
from counts computed in the database (:class:`synth_engine.engines.postgres.PostgresCounts`).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import numpy as np
import pandas as pd
import psycopg2
from django.conf import settings
from django.contrib.auth.models import User
from django.utils import timezone

from core.errors import PermissionDeniedError, ValidationError
from core.limits import text_checked
from core.schema import SchemaError, parse_schema
from core.times import time_iso
from governance.fingerprint import row_digests
from governance.ingest import build_table
from governance.models import DatasetVersion, Role
from governance.permissions import user_has_role
from governance.services import RegistrationResult, dataset_reference_register
from governance.services.datasets import fingerprint_key
from synth_engine.engines.postgres import (
    PostgresCounts,
    holdout_predicate,
    quote_identifier,
    quote_relation,
    sample_rows,
    table_checksum,
)
from synth_engine.generators.base import GeneratorError, SchemaMismatchError
from synth_engine.streaming import table_from_frame

logger = logging.getLogger(__name__)
ENGINE = "postgresql"
FINGERPRINT_CHUNK = 50_000


def source_database_names() -> list[str]:
    """The configured source connections, by name only."""
    return sorted(settings.SYNTHGATE_SOURCE_DATABASES)


def source_connection(name: str, *, statement_timeout_ms: int = 0) -> Any:
    """A read-only, autocommit psycopg2 connection to the named source database.

    ``statement_timeout_ms`` (0: none) bounds each statement and each wait for a lock.
    """
    urls = settings.SYNTHGATE_SOURCE_DATABASES
    if name not in urls:
        known = ", ".join(source_database_names()) or "none"
        raise ValidationError(
            f"No source database named {name!r} (configured: {known}; set SYNTHGATE_SOURCE_DATABASES).",
            extra={"field": "connection"},
        )
    try:
        timeouts = f"-c statement_timeout={int(statement_timeout_ms)} -c lock_timeout={int(statement_timeout_ms)}"
        connection = psycopg2.connect(urls[name], connect_timeout=10, options=timeouts)
    except psycopg2.Error as error:
        logger.warning("cannot connect to source database %r: %s", name, error)
        raise ValidationError(
            f"Cannot connect to source database {name!r} ({type(error).__name__}; the details are in the "
            "server's log).",
            extra={"field": "connection"},
        ) from error
    connection.set_session(readonly=True, autocommit=True)
    return connection


def source_register(
    *,
    actor: User,
    name: str,
    connection: str,
    table: str,
    schema: Any,
    epsilon_cap: Any,
    delta_cap: Any,
    description: str = "",
    sensitivity: str = "confidential",
    cap_override_reason: str = "",
    overlap_override_reason: str = "",
) -> RegistrationResult:
    """Register a PostgreSQL table or view as a source version of dataset ``name``.

    The schema is required (nothing is inferred from a table that stays where it is) and must name
    only columns to model; the table is checked against it in the database before anything is
    recorded, its row count and checksum are computed there, and its rows stream once through
    the worker to be fingerprinted (:func:`table_row_digests`), never stored.
    """
    if not user_has_role(actor, Role.STEWARD):
        raise PermissionDeniedError("Only a data steward can register datasets.")
    table = text_checked(table, field="table").strip()
    if not isinstance(schema, dict):
        raise ValidationError(
            "A referenced table needs a schema (a JSON object with columns).", extra={"field": "schema"}
        )
    try:
        parse_schema(schema, strict=True)
    except SchemaError as error:
        raise ValidationError(str(error), extra={"field": "schema"}) from error
    database = source_connection(connection)
    try:
        try:
            PostgresCounts(database, table, schema).check()
        except (SchemaMismatchError, GeneratorError) as error:
            raise ValidationError(
                f"Table {table!r} in source database {connection!r} does not match the schema: {error}.",
                extra={"field": "table"},
                code="invalid_source",
            ) from error
        n_rows, checksum = table_checksum(database, table, schema)
        digests = table_row_digests(database, table, schema)
    finally:
        database.close()
    reference = {"engine": ENGINE, "connection": connection, "table": table, "n_rows": n_rows, "checksum": checksum}
    return dataset_reference_register(
        actor=actor,
        name=name,
        reference=reference,
        n_rows=n_rows,
        schema=schema,
        epsilon_cap=epsilon_cap,
        delta_cap=delta_cap,
        description=description,
        sensitivity=sensitivity,
        cap_override_reason=cap_override_reason,
        digests=digests,
        overlap_override_reason=overlap_override_reason,
    )


def table_row_digests(connection: Any, table: str, schema: dict[str, Any]) -> np.ndarray:
    """The table's keyed row digests, as for an upload (one budget per population).

    The schema's columns stream through the worker in chunks of :data:`FINGERPRINT_CHUNK` rows
    (a server-side cursor), are typed as an upload's cells would be, hashed, and dropped: nothing
    is written; 8 bytes a distinct row are kept.
    """
    specs = parse_schema(schema)
    header = [spec.name for spec in specs]
    stored = {**schema, "missing_values": [""]}
    columns = ", ".join(quote_identifier(name) for name in header)
    parts = [np.empty(0, dtype=np.uint64)]
    with connection.cursor(name="synthgate_fingerprint", withhold=True) as cursor:
        cursor.itersize = FINGERPRINT_CHUNK
        cursor.execute(f"SELECT {columns} FROM {quote_relation(table)}")
        while rows := cursor.fetchmany(FINGERPRINT_CHUNK):
            cells = [["" if value is None else str(value) for value in row] for row in rows]
            frame = build_table(header, cells, stored, schema_inferred=False).frame
            parts.append(row_digests(frame, fingerprint_key()))
    return np.unique(np.concatenate(parts))


@dataclass
class ReferenceRead:
    """What a job reads from a referenced table: counts over the training rows, audit samples."""

    counts: PostgresCounts
    train_sample: pd.DataFrame
    holdout_sample: pd.DataFrame
    connection: Any

    def close(self) -> None:
        self.connection.close()


def reference_open(source: DatasetVersion, *, split_seed: int, holdout_fraction: float) -> ReferenceRead:
    """Check the referenced table (schema, row count, checksum) and prepare the job's reads.

    The split is a keyed hash of each row's text computed in the database; the holdout never
    enters the counts. A table that changed since registration is refused here, before any spend.
    """
    reference = source.source_reference
    if reference.get("engine") != ENGINE:
        raise GeneratorError(f"{source} refers to an engine this worker cannot read: {reference.get('engine')!r}")
    schema, table = source.schema, reference["table"]
    connection = source_connection(reference["connection"])
    try:
        PostgresCounts(connection, table, schema).check()
        n_rows, checksum = table_checksum(connection, table, schema)
        if n_rows != reference["n_rows"] or checksum != reference["checksum"]:
            raise GeneratorError(
                f"table {table!r} changed since {source} was registered (its rows differ); register it again "
                "as a new version and file the request on that version"
            )
        holdout = holdout_predicate(schema, split_seed, holdout_fraction)
        limit = int(settings.SYNTHGATE_REFERENCE_AUDIT_ROWS)
        train = sample_rows(connection, table, schema, where=f"NOT {holdout}", seed=split_seed, limit=limit)
        held = sample_rows(connection, table, schema, where=holdout, seed=split_seed, limit=limit)
    except BaseException:
        connection.close()
        raise
    counts = PostgresCounts(connection, table, schema, where=f"NOT {holdout}")
    return ReferenceRead(counts=counts, train_sample=train, holdout_sample=held, connection=connection)


@dataclass
class ReferenceSnapshot:
    """The table a referenced version names, as it is now: its identity and an audit sample.

    ``n_rows`` and ``checksum`` are computed where the data lives (as at registration);
    ``sample`` is at most ``limit`` rows drawn there at random (keyed by ``seed``), typed as an
    upload's cells, or ``None`` when the table is unchanged since registration (nothing to compare).
    ``unchanged`` is ``sample is None``.
    """

    engine: str
    table: str
    n_rows: int
    checksum: str
    taken_at: datetime
    seed: int
    sample: pd.DataFrame | None

    @property
    def unchanged(self) -> bool:
        return self.sample is None

    def described(self) -> dict[str, Any]:
        """What a drift run records: what was read and when, never a row."""
        return {
            "engine": self.engine,
            "table": self.table,
            "n_rows": self.n_rows,
            "checksum": self.checksum,
            "taken_at": time_iso(self.taken_at),
            "seed": self.seed,
            "sample_rows": 0 if self.sample is None else len(self.sample),
            "unchanged": self.unchanged,
        }


class SnapshotError(Exception):
    """The referenced table cannot be read as its version's schema says (the reason, in words)."""


def reference_snapshot(
    version: DatasetVersion, *, seed: int, limit: int, always_sample: bool = False
) -> ReferenceSnapshot:
    """A new snapshot of the table ``version`` refers to, for a drift re-audit.

    The table is checked against the version's schema, its row count and checksum taken, and, when
    they differ from the version's (or ``always_sample``), a random sample of at most ``limit`` rows
    drawn, all where the data lives. Statements wait at most ``SYNTHGATE_REFERENCE_SNAPSHOT_TIMEOUT_SECONDS`` (a table
    locked by its loader fails the snapshot instead of hanging the sweep). Every failure to read
    the table as its schema says is a :class:`SnapshotError` with the reason.
    """
    reference = version.source_reference
    engine, table, schema = reference.get("engine"), reference.get("table", ""), version.schema
    if engine != ENGINE:
        raise SnapshotError(f"{version} refers to an engine this worker cannot read: {engine!r}")
    timeout_ms = int(settings.SYNTHGATE_REFERENCE_SNAPSHOT_TIMEOUT_SECONDS) * 1000
    try:
        connection = source_connection(reference["connection"], statement_timeout_ms=timeout_ms)
    except ValidationError as error:
        raise SnapshotError(error.message) from error
    taken_at = timezone.now()
    try:
        PostgresCounts(connection, table, schema).check()
        n_rows, checksum = table_checksum(connection, table, schema)
        sample = None
        if always_sample or (n_rows, checksum) != (reference.get("n_rows"), reference.get("checksum")):
            rows = sample_rows(connection, table, schema, where="TRUE", seed=seed, limit=limit)
            sample = table_from_frame(rows, schema).frame
    except (SchemaMismatchError, GeneratorError, ValidationError, SchemaError) as error:
        raise SnapshotError(
            f"table {table!r} in source database {reference['connection']!r} no longer matches the schema of "
            f"{version}: {error}"
        ) from error
    except psycopg2.Error as error:
        logger.warning("snapshot of %r in source database %r failed: %s", table, reference["connection"], error)
        raise SnapshotError(
            f"table {table!r} in source database {reference['connection']!r} could not be read "
            f"({type(error).__name__}: {str(error).strip().splitlines()[0] if str(error).strip() else 'no detail'})"
        ) from error
    finally:
        connection.close()
    return ReferenceSnapshot(ENGINE, table, n_rows, checksum, taken_at, seed, sample)
