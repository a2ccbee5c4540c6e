"""Dataset versions that live where they are: registration, the job's reads and the drift re-audit's
snapshots (docs/engines.md).

A version by reference names an *engine* and a location in it: a PostgreSQL table or view under
a connection *name* configured in ``SYNTHGATE_SOURCE_DATABASES`` (the URL and its credentials
stay in the settings and never reach the database rows, the log, the API or the datasheet), or
Parquet files under a directory of ``SYNTHGATE_SOURCE_PARQUET_ROOTS``, read by DuckDB or by Apache
Spark, or Parquet objects under a prefix of ``SYNTHGATE_SOURCE_S3_ROOTS``, read by DuckDB through
``s3fs`` (the keys stay in the settings too).
Registration checks the data against the schema in the engine and takes its row count and
checksum there; a job checks both again before it spends anything, so data that changed since
registration is refused, and fits MST from counts computed in the engine.

:data:`ENGINES` is the one place that maps an engine's name to the class that reads it
(:class:`SourceData`: its count source, checksum, row digests, split and audit samples); the
registration, the API, the CLI and the job go through it and know no engine by name.
"""

from __future__ import annotations

import logging
import os
import posixpath
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any, ClassVar

import numpy as np
import pandas as pd
import psycopg2
from botocore.exceptions import BotoCoreError, ClientError
from django.conf import settings
from django.contrib.auth.models import User
from django.utils import timezone

from core.errors import PermissionDeniedError, ValidationError, error_collected, errors_combined
from core.limits import text_checked
from core.schema import SchemaError, parse_schema
from core.times import time_iso
from governance.fingerprint import row_digests
from governance.ingest import build_table, canonical_frame
from governance.models import DatasetVersion, Role
from governance.permissions import user_has_role
from governance.services import RegistrationResult, dataset_reference_register, dataset_register_fields_check
from governance.services.datasets import declared_rows_check, fingerprint_key
from synth_engine.engines.duckdb import GLOB_CHARACTERS, DuckDBCounts, parquet_files
from synth_engine.engines.postgres import (
    PostgresCounts,
    holdout_predicate,
    quote_identifier,
    quote_relation,
    sample_rows,
    table_checksum,
)
from synth_engine.engines.spark import SessionMemory, SparkCounts, spark_session
from synth_engine.engines.spark import holdout_predicate as spark_holdout_predicate
from synth_engine.generators.base import GeneratorError, SchemaMismatchError
from synth_engine.streaming import table_from_frame

logger = logging.getLogger(__name__)
FINGERPRINT_CHUNK = 50_000


class SourceData:
    """Data of one registered location, open in its engine: everything registration and a job read.

    A subclass names its engine (``engine``), the fields a registration gives for its location
    (``fields``), checks them (:meth:`locate`, before anything is opened) and answers the reads.
    Only counts, a row count and a checksum, keyed row digests (hashed in the worker, never
    stored) and the audit's samples leave the engine.
    """

    engine: ClassVar[str]
    #: the registration fields that locate the data (stored in the reference with the engine)
    fields: ClassVar[tuple[str, ...]]
    #: other sets of fields that locate data in this engine (e.g. Spark: a path, or a catalog table)
    other_fields: ClassVar[tuple[tuple[str, ...], ...]] = ()

    @classmethod
    def field_sets(cls) -> tuple[tuple[str, ...], ...]:
        """Every set of registration fields that locates data in this engine, ``fields`` first."""
        return (cls.fields, *cls.other_fields)

    def __init__(self, location: dict[str, str], schema: dict[str, Any]) -> None:
        self.location = location
        self.schema = schema

    @classmethod
    def locate(cls, given: dict[str, str]) -> dict[str, str]:
        """The location to record from a registration's fields, checked (``ValidationError`` if not)."""
        raise NotImplementedError

    def describe(self) -> str:
        """Where the data is, for messages and the datasheet (no credentials)."""
        raise NotImplementedError

    def counts(self, where: str | None = None) -> Any:
        """The engine's count source (``check()`` and the CountSource questions), over the rows ``where`` holds."""
        raise NotImplementedError

    def checksum(self) -> tuple[int, str]:
        """Row count and an order-independent checksum of the schema's columns, computed in the engine."""
        raise NotImplementedError

    def row_chunks(self) -> Iterator[list[tuple[Any, ...]]]:
        """The schema's columns, a chunk of rows at a time (for the fingerprint; never stored)."""
        raise NotImplementedError

    def holdout(self, seed: int, fraction: float) -> str:
        """The engine's predicate for the holdout rows: a keyed hash of each row below ``fraction``."""
        raise NotImplementedError

    def sample(self, where: str, *, seed: int, limit: int) -> pd.DataFrame:
        """At most ``limit`` rows matching ``where``, a random sample keyed by ``seed``."""
        raise NotImplementedError

    def bound_waits(self, seconds: int) -> None:
        """Make each later statement, and each wait for a lock, fail after ``seconds`` instead of
        waiting on (a drift re-audit's snapshot must not hang the sweep). Engines that do not wait
        on a server need nothing."""

    def close(self) -> None:
        """Release the engine's connection."""


class PostgresSource(SourceData):
    """A table or view of a source database named in ``SYNTHGATE_SOURCE_DATABASES``."""

    engine = "postgresql"
    fields = ("connection", "table")

    def __init__(self, location: dict[str, str], schema: dict[str, Any]) -> None:
        super().__init__(location, schema)
        self.table = location["table"]
        self.connection = source_connection(location["connection"])

    @classmethod
    def locate(cls, given: dict[str, str]) -> dict[str, str]:
        table = given["table"].strip()
        try:
            quote_relation(table)
        except SchemaMismatchError as error:
            raise ValidationError(f"{error}.", extra={"field": "table"}) from error
        if given["connection"] not in settings.SYNTHGATE_SOURCE_DATABASES:
            known = ", ".join(source_database_names()) or "none"
            raise ValidationError(
                f"No source database named {given['connection']!r} (configured: {known}; set "
                "SYNTHGATE_SOURCE_DATABASES).",
                extra={"field": "connection"},
            )
        return {"connection": given["connection"], "table": table}

    def describe(self) -> str:
        return f"table {self.table!r} in source database {self.location['connection']!r}"

    def counts(self, where: str | None = None) -> PostgresCounts:
        name = self.location["connection"]
        # a large table is counted by more than one connection at once, each opened like this one
        return PostgresCounts(
            self.connection, self.table, self.schema, where=where, connect=lambda: source_connection(name)
        )

    def checksum(self) -> tuple[int, str]:
        return table_checksum(self.connection, self.table, self.schema)

    def row_chunks(self) -> Iterator[list[tuple[Any, ...]]]:
        columns = ", ".join(quote_identifier(spec.name) for spec in parse_schema(self.schema))
        with self.connection.cursor(name="synthgate_fingerprint", withhold=True) as cursor:
            cursor.itersize = FINGERPRINT_CHUNK
            cursor.execute(f"SELECT {columns} FROM {quote_relation(self.table)}")
            while rows := cursor.fetchmany(FINGERPRINT_CHUNK):
                yield rows

    def holdout(self, seed: int, fraction: float) -> str:
        return holdout_predicate(self.schema, seed, fraction)

    def sample(self, where: str, *, seed: int, limit: int) -> pd.DataFrame:
        return sample_rows(self.connection, self.table, self.schema, where=where, seed=seed, limit=limit)

    def bound_waits(self, seconds: int) -> None:
        with self.connection.cursor() as cursor:
            cursor.execute("SET statement_timeout = %s", [f"{int(seconds)}s"])
            cursor.execute("SET lock_timeout = %s", [f"{int(seconds)}s"])

    def close(self) -> None:
        self.connection.close()


class ParquetLakeSource(SourceData):
    """Parquet files (a file, a directory of them or a glob) under ``SYNTHGATE_SOURCE_PARQUET_ROOTS``
    (or, for DuckDB, under a prefix of ``SYNTHGATE_SOURCE_S3_ROOTS``): what the engines that read them
    (DuckDB, Spark) share. A subclass opens ``self.data``."""

    fields = ("path",)
    data: Any

    @classmethod
    def locate(cls, given: dict[str, str]) -> dict[str, str]:
        return {"path": parquet_path_located(given["path"])}

    def describe(self) -> str:
        return f"the Parquet data at {self.location['path']!r}"

    def counts(self, where: str | None = None) -> Any:
        return self.data if where is None else self.data.restricted(where)

    def checksum(self) -> tuple[int, str]:
        return self.data.checksum()

    def row_chunks(self) -> Iterator[list[tuple[Any, ...]]]:
        return self.data.row_chunks(FINGERPRINT_CHUNK)


class DuckDBSource(ParquetLakeSource):
    """Parquet files (a file, a directory of them or a glob) under ``SYNTHGATE_SOURCE_PARQUET_ROOTS``,
    or objects under a prefix of ``SYNTHGATE_SOURCE_S3_ROOTS`` (``s3://bucket/prefix``, read through
    ``s3fs`` with the ``SYNTHGATE_SOURCE_S3_*`` settings), read by DuckDB embedded in the worker
    (``SYNTHGATE_DUCKDB_MEMORY_LIMIT``, spilling beyond it)."""

    engine = "duckdb"

    def __init__(self, location: dict[str, str], schema: dict[str, Any]) -> None:
        super().__init__(location, schema)
        path = location["path"]
        filesystem = source_s3_filesystem() if is_s3_url(path) else None
        files = parquet_files_inside_roots(path, filesystem)
        temp = settings.SYNTHGATE_DUCKDB_TEMP_DIRECTORY or str(settings.DATA_DIR / "duckdb")
        self.data = DuckDBCounts(
            path,
            schema,
            memory_limit=settings.SYNTHGATE_DUCKDB_MEMORY_LIMIT,
            temp_directory=temp,
            files=files,
            filesystem=filesystem,
        )

    def holdout(self, seed: int, fraction: float) -> str:
        return self.data.holdout(seed, fraction)

    def sample(self, where: str, *, seed: int, limit: int) -> pd.DataFrame:
        return self.data.sample(where, seed=seed, limit=limit)

    def close(self) -> None:
        self.data.close()


def parquet_path_located(path: str) -> str:
    """A Parquet source's path checked: absolute, and inside ``SYNTHGATE_SOURCE_PARQUET_ROOTS`` (the part
    before any glob, symbolic links resolved), or an ``s3://`` URL under a prefix of
    ``SYNTHGATE_SOURCE_S3_ROOTS``; normalised."""
    path = path.strip()
    if is_s3_url(path):
        return _s3_path_located(path)
    roots = settings.SYNTHGATE_SOURCE_PARQUET_ROOTS
    if not os.path.isabs(path):
        raise ValidationError(
            f"Parquet path {path!r} must be absolute (a file, a directory or a glob) or an s3://bucket/prefix URL.",
            extra={"field": "path"},
        )
    path = os.path.normpath(path)
    match = GLOB_CHARACTERS.search(path)
    fixed = os.path.dirname(path[: match.start()] + "x") if match else path  # the part no glob can move
    if not _under_parquet_root(fixed):
        raise ValidationError(
            f"Parquet path {path!r} is outside the directories Parquet sources may be read from "
            f"({', '.join(roots) or 'none are configured'}; set SYNTHGATE_SOURCE_PARQUET_ROOTS).",
            extra={"field": "path"},
            code="path_not_allowed",
        )
    return path


#: a catalog table: ``database.table`` or ``catalog.database.table``, plain identifiers
SPARK_TABLE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*){1,2}")


def spark_table_located(table: str) -> str:
    """A Spark catalog table's name checked: ``database.table`` (or ``catalog.database.table``) of plain
    identifiers, its database (everything before the table) one of ``SYNTHGATE_SOURCE_SPARK_DATABASES``."""
    table = table.strip()
    if not SPARK_TABLE.fullmatch(table):
        raise ValidationError(
            f"Spark table {table!r} must be named database.table (or catalog.database.table): letters, digits and '_'.",
            extra={"field": "table"},
        )
    database = table.rsplit(".", 1)[0].lower()
    allowed = settings.SYNTHGATE_SOURCE_SPARK_DATABASES
    if database not in {name.lower() for name in allowed}:
        raise ValidationError(
            f"Spark table {table!r} is outside the Spark databases sources may be read from "
            f"({', '.join(allowed) or 'none are configured'}; set SYNTHGATE_SOURCE_SPARK_DATABASES).",
            extra={"field": "table"},
            code="path_not_allowed",
        )
    return table


def is_s3_url(path: str) -> bool:
    """Whether a Parquet source's path names objects on S3 (``s3://bucket/key``)."""
    return path.strip().lower().startswith("s3://")


def s3_url_normalised(url: str) -> str:
    """``s3://bucket/key`` with empty segments dropped; ``ValueError`` for a URL without a bucket
    or with a ``.`` or ``..`` segment (an object store has no parent folders to resolve)."""
    rest = url.strip()[len("s3://") :]
    segments = [segment for segment in rest.split("/") if segment]
    if not segments:
        raise ValueError("it names no bucket")
    if any(segment in {".", ".."} for segment in segments):
        raise ValueError("'.' and '..' are not allowed in it")
    return "s3://" + "/".join(segments)


def _s3_path_located(path: str) -> str:
    """An ``s3://`` Parquet path checked against ``SYNTHGATE_SOURCE_S3_ROOTS`` (the part before any glob)."""
    try:
        url = s3_url_normalised(path)
    except ValueError as error:
        raise ValidationError(
            f"Parquet URL {path!r} is not of the form s3://bucket/prefix ({error}).", extra={"field": "path"}
        ) from error
    match = GLOB_CHARACTERS.search(url)
    fixed = posixpath.dirname(url[: match.start()] + "x") if match else url  # the part no glob can move
    if not _under_s3_root(fixed):
        roots = settings.SYNTHGATE_SOURCE_S3_ROOTS
        raise ValidationError(
            f"Parquet URL {url!r} is outside the S3 prefixes Parquet sources may be read from "
            f"({', '.join(roots) or 'none are configured'}; set SYNTHGATE_SOURCE_S3_ROOTS).",
            extra={"field": "path"},
            code="path_not_allowed",
        )
    return url


def _under_s3_root(url: str) -> bool:
    """Whether an ``s3://`` URL is one of the allowed prefixes or below one (whole path segments)."""
    return any(url == root or url.startswith(root + "/") for root in settings.SYNTHGATE_SOURCE_S3_ROOTS)


def source_s3_filesystem() -> Any:
    """An ``s3fs`` filesystem for Parquet sources on S3: ``SYNTHGATE_SOURCE_S3_ENDPOINT_URL``,
    ``_ACCESS_KEY_ID``, ``_SECRET_ACCESS_KEY`` and ``_REGION`` when set (otherwise the standard AWS
    chain: ``AWS_*`` variables, an instance role). The keys stay here: never logged, stored or shown.
    Listings are not cached (the lake changes; a drift re-audit must see it as it is now)."""
    import s3fs

    client: dict[str, Any] = {}
    if settings.SYNTHGATE_SOURCE_S3_REGION:
        client["region_name"] = settings.SYNTHGATE_SOURCE_S3_REGION
    return s3fs.S3FileSystem(
        key=settings.SYNTHGATE_SOURCE_S3_ACCESS_KEY_ID or None,
        secret=settings.SYNTHGATE_SOURCE_S3_SECRET_ACCESS_KEY or None,
        endpoint_url=settings.SYNTHGATE_SOURCE_S3_ENDPOINT_URL or None,
        client_kwargs=client,
        config_kwargs={"connect_timeout": 10, "read_timeout": 60, "retries": {"max_attempts": 3}},
        use_listings_cache=False,
        skip_instance_cache=True,
    )


def parquet_files_inside_roots(path: str, filesystem: Any = None) -> list[str]:
    """The Parquet files ``path`` expands to, each resolving inside ``SYNTHGATE_SOURCE_PARQUET_ROOTS``
    (a symbolic link out of a root is refused), or, on S3 (``filesystem``), each under a prefix of
    ``SYNTHGATE_SOURCE_S3_ROOTS``."""
    if filesystem is None:
        files = parquet_files(path)
        outside = [name for name in files if not _under_parquet_root(name)]
        if outside:
            raise GeneratorError(f"{outside[0]!r} resolves outside SYNTHGATE_SOURCE_PARQUET_ROOTS")
        return files
    try:
        files = parquet_files(path, filesystem)
    except FileNotFoundError as error:  # the bucket does not exist
        raise SchemaMismatchError(f"no Parquet file at {path!r}") from error
    except (OSError, BotoCoreError, ClientError) as error:  # access denied, no endpoint: the reason, no keys
        logger.warning("cannot list the Parquet source %s: %s", path, _without_s3_keys(str(error)))
        raise GeneratorError(
            f"cannot list {path!r} on S3 ({type(error).__name__}: {_without_s3_keys(_first_line(error))})"
        ) from error
    outside = [name for name in files if not _under_s3_root(name)]
    if outside:
        raise GeneratorError(f"{outside[0]!r} is outside SYNTHGATE_SOURCE_S3_ROOTS")
    return files


def _without_s3_keys(text: str) -> str:
    """``text`` with the configured S3 keys blotted out (a message must never carry them)."""
    for secret in (settings.SYNTHGATE_SOURCE_S3_SECRET_ACCESS_KEY, settings.SYNTHGATE_SOURCE_S3_ACCESS_KEY_ID):
        if secret:
            text = text.replace(secret, "***")
    return text


def _first_line(error: BaseException) -> str:
    lines = str(error).strip().splitlines()
    return lines[0] if lines else type(error).__name__


def _under_parquet_root(path: str) -> bool:
    """Whether ``path``, symbolic links resolved, is one of the Parquet roots or inside one."""
    real = os.path.realpath(path)
    return any(os.path.commonpath([real, root]) == root for root in settings.SYNTHGATE_SOURCE_PARQUET_ROOTS)


def session_memory() -> SessionMemory:
    """The worker's Spark session's memory bounds from the settings (``SYNTHGATE_SPARK_DRIVER_MEMORY``,
    ``…_JAVA_OPTIONS``, ``…_ARROW_BATCH_ROWS``, ``…_MALLOC_ARENA_MAX``)."""
    return SessionMemory(
        driver_memory=settings.SYNTHGATE_SPARK_DRIVER_MEMORY,
        java_options=settings.SYNTHGATE_SPARK_JAVA_OPTIONS,
        arrow_batch_rows=settings.SYNTHGATE_SPARK_ARROW_BATCH_ROWS,
        malloc_arena_max=settings.SYNTHGATE_SPARK_MALLOC_ARENA_MAX,
    )


class SparkSource(ParquetLakeSource):
    """Parquet files (a file, a directory of them or a glob) under ``SYNTHGATE_SOURCE_PARQUET_ROOTS``,
    or a table of the session's catalog in a database of ``SYNTHGATE_SOURCE_SPARK_DATABASES``,
    counted by Apache Spark: the worker's session on ``SYNTHGATE_SPARK_MASTER`` (local, inside the
    worker, or a cluster whose executors see the same path). The files are expanded as for DuckDB
    and handed to Spark by name, so both engines read the same files."""

    engine = "spark"
    other_fields = (("table",),)

    @classmethod
    def locate(cls, given: dict[str, str]) -> dict[str, str]:
        if "table" in given:
            return {"table": spark_table_located(given["table"])}
        if is_s3_url(given["path"]):
            raise ValidationError(
                f"Engine 'spark' reads Parquet paths under SYNTHGATE_SOURCE_PARQUET_ROOTS only; register "
                f"{given['path'].strip()!r} on S3 with engine 'duckdb' (Spark would need the hadoop-aws "
                "connector on the cluster, which this platform does not configure).",
                extra={"field": "path"},
                code="path_not_allowed",
            )
        return super().locate(given)

    def __init__(self, location: dict[str, str], schema: dict[str, Any]) -> None:
        super().__init__(location, schema)
        if "table" in location:
            spark_table_located(location["table"])  # still allowed on this worker
            where: dict[str, Any] = {"table": location["table"]}
        else:
            where = {"parquet": [f"file://{name}" for name in parquet_files_inside_roots(location["path"])]}
        session = spark_session(
            settings.SYNTHGATE_SPARK_MASTER,
            start_timeout=settings.SYNTHGATE_SPARK_START_TIMEOUT,
            memory=session_memory(),
        )
        self.data = SparkCounts(session, schema, query_timeout=settings.SYNTHGATE_SPARK_QUERY_TIMEOUT or None, **where)

    def describe(self) -> str:
        if "table" in self.location:
            return f"the Spark table {self.location['table']!r}"
        return super().describe()

    def holdout(self, seed: int, fraction: float) -> str:
        return spark_holdout_predicate(self.schema, seed, fraction)

    def sample(self, where: str, *, seed: int, limit: int) -> pd.DataFrame:
        return self.data.sample_rows(where=where, seed=seed, limit=limit)

    def bound_waits(self, seconds: int) -> None:
        """Each later query is cancelled after ``seconds`` (or the configured bound, if shorter)."""
        current = self.data.query_timeout
        self.data.query_timeout = min(current, seconds) if current else seconds

    # close(): the session stays open for the worker's next job (a start costs seconds)


#: The engines a version may live in, by the name recorded in its ``source_reference``.
ENGINES: dict[str, type[SourceData]] = {source.engine: source for source in (PostgresSource, DuckDBSource, SparkSource)}


def source_engine(name: str | None) -> type[SourceData]:
    """The reader of an engine by name (``GeneratorError`` for one this worker does not know)."""
    if name not in ENGINES:
        raise GeneratorError(f"no engine named {name!r} on this worker (known: {', '.join(sorted(ENGINES))})")
    return ENGINES[name]


def source_open(reference: dict[str, Any], schema: dict[str, Any]) -> SourceData:
    """Open the data a version's ``source_reference`` names."""
    engine = source_engine(reference.get("engine"))
    fields = next((fields for fields in engine.field_sets() if all(field in reference for field in fields)), None)
    if fields is None:
        raise GeneratorError(f"the reference names no location the engine {engine.engine!r} reads")
    return engine({field: reference[field] for field in fields}, schema)


def source_database_names() -> list[str]:
    """The configured source connections, by name only."""
    return sorted(settings.SYNTHGATE_SOURCE_DATABASES)


def source_connection(name: str) -> Any:
    """A read-only, autocommit psycopg2 connection to the named source database."""
    urls = settings.SYNTHGATE_SOURCE_DATABASES
    if name not in urls:
        known = ", ".join(source_database_names()) or "none"
        raise ValidationError(
            f"No source database named {name!r} (configured: {known}; set SYNTHGATE_SOURCE_DATABASES).",
            extra={"field": "connection"},
        )
    try:
        connection = psycopg2.connect(urls[name], connect_timeout=10)
    except psycopg2.Error as error:
        logger.warning("cannot connect to source database %r: %s", name, error)
        raise ValidationError(
            f"Cannot connect to source database {name!r} ({type(error).__name__}; the details are in the "
            "server's log).",
            extra={"field": "connection"},
        ) from error
    connection.set_session(readonly=True, autocommit=True)
    return connection


def _engine_for(engine: str | None, given: dict[str, str]) -> tuple[type[SourceData], tuple[str, ...]]:
    """The engine a registration names, or the one its fields imply (``path``: duckdb; else
    postgresql), and the set of its fields the registration gives."""
    if not engine:
        engine = "duckdb" if given.get("path") and not given.get("connection") else "postgresql"
    if engine not in ENGINES:
        raise ValidationError(
            f"No engine named {engine!r} (known: {', '.join(sorted(ENGINES))}).", extra={"field": "engine"}
        )
    chosen = ENGINES[engine]
    present = {field for field, value in given.items() if value}
    sets = chosen.field_sets()
    for fields in sets:
        if set(fields) == present:
            return chosen, fields
    closest = next((fields for fields in sets if set(fields) & present), sets[0])
    missing = [field for field in closest if field not in present]
    extra = [field for field in given if field in present and field not in closest]
    wanted = " or ".join(", ".join(fields) for fields in sets)
    problem = f"needs {wanted}" + (f", not {', '.join(extra)}" if extra else "")
    raise ValidationError(f"A source on engine {engine!r} {problem}.", extra={"field": (missing or extra)[0]})


def source_register(
    *,
    actor: User,
    name: str,
    schema: Any,
    epsilon_cap: Any,
    delta_cap: Any,
    engine: str | None = None,
    connection: str = "",
    table: str = "",
    path: str = "",
    description: str = "",
    sensitivity: str = "confidential",
    cap_override_reason: str = "",
    overlap_override_reason: str = "",
    declared_rows: Any = None,
) -> RegistrationResult:
    """Register data that stays where it lives as a source version of dataset ``name``.

    ``engine`` (``ENGINES``; implied by the fields when omitted) says where: ``connection`` and
    ``table`` for PostgreSQL, ``path`` for Parquet files read by DuckDB (implied) or Spark. The schema is required
    and must name only columns to model (no value is read into it). A column's type is the steward's
    to declare: a column given without a ``type``, or marked ``"type_proposed": true`` (as
    :func:`source_schema_propose` writes it), keeps the type the engine's catalog gives it only as a
    proposal, stored ``type_proposed``: the version cannot be requested until a steward declares it
    (``dataset declare NAME --accept-proposed-types``), exactly as an upload's types read from its rows.
    The data is checked against the schema in the engine before anything is recorded, its row count and
    checksum are computed there, and its rows stream once through the worker to be fingerprinted
    (:func:`source_row_digests`), never stored. ``declared_rows``: the table's exact row count,
    declared public (``dataset_reference_register``): its form is checked with the other fields,
    before the data is read, and the count against the engine's count before anything is written.
    """
    if not user_has_role(actor, Role.STEWARD):
        raise PermissionDeniedError("Only a data steward can register datasets.")
    # Every independent mistake is named at once (the dashboard puts each beside its field): the
    # registration's own fields, where the data is, the schema; the data is read only when the
    # last two are right.
    errors: list[ValidationError] = []
    error_collected(
        errors,
        lambda: dataset_register_fields_check(
            name=name,
            epsilon_cap=epsilon_cap,
            delta_cap=delta_cap,
            description=description,
            sensitivity=sensitivity,
            declared_rows=declared_rows,
        ),
    )
    found = error_collected(errors, lambda: _source_located(engine, connection=connection, table=table, path=path))
    untyped = _untyped_columns(schema)
    # A column without a type is typed from the catalog, as a proposal, once where the data is is known.
    checked = error_collected(errors, lambda: _schema_checked(schema)) if not untyped else schema
    if found is None or checked is None:
        raise errors_combined(errors)
    reader, location = found
    if untyped:
        typed = error_collected(errors, lambda: _schema_typed_from_catalog(reader, location, schema, untyped))
        checked = error_collected(errors, lambda: _schema_checked(typed)) if typed is not None else None
        if checked is None:
            raise errors_combined(errors)
    schema = checked
    try:
        data = reader(location, schema)
    except (SchemaMismatchError, GeneratorError) as error:
        errors.append(ValidationError(f"{error}.", extra={"field": list(location)[-1]}, code="invalid_source"))
        raise errors_combined(errors) from error
    try:
        try:
            data.counts().check()
        except (SchemaMismatchError, GeneratorError) as error:
            where = data.describe()
            errors.append(
                ValidationError(
                    f"{where[0].upper()}{where[1:]} does not match the schema: {error}.",
                    extra={"field": list(location)[-1]},
                    code="invalid_source",
                )
            )
            raise errors_combined(errors) from error
        if errors:
            raise errors_combined(errors)
        n_rows, checksum = data.checksum()
        declared_rows_check(declared_rows, n_rows)  # before the rows stream past to be fingerprinted
        digests = source_row_digests(data.row_chunks(), schema)
    finally:
        data.close()
    reference = {"engine": reader.engine, **location, "n_rows": n_rows, "checksum": checksum}
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
        declared_rows=declared_rows,
    )


def _source_located(
    engine: str | None, *, connection: str, table: str, path: str
) -> tuple[type[SourceData], dict[str, str]]:
    """The engine a registration names (or its fields imply) and the checked location in it."""
    given = {
        field: text_checked(value, field=field)
        for field, value in (("connection", connection), ("table", table), ("path", path))
        if value
    }
    reader, fields = _engine_for(engine, given)
    return reader, reader.locate({field: given[field] for field in fields})


def _schema_checked(schema: Any) -> dict[str, Any]:
    """The schema checked, each column written out in full (a role defaults to ``other``), as an
    upload's stored schema is. A type the steward gives is declared; one marked
    ``"type_proposed": true`` stays a proposal (the catalog's type, as :func:`source_schema_propose`
    and :func:`_schema_typed_from_catalog` write it: a catalog's type never becomes a declared type
    without the steward's declaration); ``"type_proposed": false`` is dropped."""
    if not isinstance(schema, dict):
        raise ValidationError(
            "A source by reference needs a schema (a JSON object with columns).", extra={"field": "schema"}
        )
    try:
        specs = parse_schema(schema, strict=True)
    except SchemaError as error:
        raise ValidationError(str(error), extra={"field": "schema"}) from error
    columns = [
        spec.entry if spec.entry.get("type_proposed") else {k: v for k, v in spec.entry.items() if k != "type_proposed"}
        for spec in specs
    ]
    return {**schema, "columns": columns}


def _untyped_columns(schema: Any) -> list[str]:
    """The named columns of a given schema that have no ``type`` (to be proposed from the catalog)."""
    if not isinstance(schema, dict) or not isinstance(schema.get("columns"), list):
        return []
    return [
        column["name"]
        for column in schema["columns"]
        if isinstance(column, dict) and isinstance(column.get("name"), str) and column.get("type") is None
    ]


def _schema_typed_from_catalog(
    reader: type[SourceData], location: dict[str, str], schema: dict[str, Any], untyped: list[str]
) -> dict[str, Any]:
    """``schema`` with each of the ``untyped`` columns given the type the engine's catalog maps its
    column to, marked ``"type_proposed": true`` (only the catalog is read: no value)."""
    types = _catalog_types(reader, location)
    absent = [name for name in untyped if name not in types]
    if absent:
        raise ValidationError(
            f"The schema names columns the data lacks: {', '.join(map(repr, absent))} (its columns: "
            f"{', '.join(types)}).",
            extra={"field": list(location)[-1]},
            code="invalid_source",
        )
    columns = [
        {**column, "type": types[column["name"]], "type_proposed": True}
        if isinstance(column, dict) and column.get("name") in untyped
        else column
        for column in schema["columns"]
    ]
    return {**schema, "columns": columns}


#: a one-column schema to open data whose columns are not known yet (only the catalog is read)
_PROBE_SCHEMA = {"columns": [{"name": "synthgate_probe", "type": "categorical"}]}


def source_schema_propose(
    *, actor: User, engine: str | None = None, connection: str = "", table: str = "", path: str = ""
) -> dict[str, Any]:
    """A schema proposed from the engine's catalog: each column's name and the type its engine type
    maps to, marked ``"type_proposed": true`` (no value is read: no bounds, categories or missing
    values, which stay private until a steward declares them from public knowledge). The steward
    reviews it before registering; a type left marked is stored as a proposal and declared later
    (or declared in the box by removing the mark)."""
    if not user_has_role(actor, Role.STEWARD):
        raise PermissionDeniedError("Only a data steward can register datasets.")
    reader, location = _source_located(engine, connection=connection, table=table, path=path)
    types = _catalog_types(reader, location)
    return {"columns": [{"name": name, "type": kind, "type_proposed": True} for name, kind in types.items()]}


def _catalog_types(reader: type[SourceData], location: dict[str, str]) -> dict[str, str]:
    """Each column of the data, in the catalog's order, with the schema type its engine type maps to."""
    try:
        data = reader(location, _PROBE_SCHEMA)
    except (SchemaMismatchError, GeneratorError) as error:
        raise ValidationError(f"{error}.", extra={"field": list(location)[-1]}, code="invalid_source") from error
    try:
        counts = data.counts()
        types = counts.column_types()
    except (SchemaMismatchError, GeneratorError) as error:
        raise ValidationError(f"{error}.", extra={"field": list(location)[-1]}, code="invalid_source") from error
    finally:
        data.close()
    return {name: _declared_type(counts, kind) for name, kind in types.items()}


def _declared_type(counts: Any, kind: str) -> str:
    """The schema type an engine's column type is read as (text and anything else: categorical)."""
    if kind in counts.float_types:
        return "float"
    for declared in ("integer", "datetime", "boolean"):
        if kind in counts.accepted.get(declared, set()):
            return declared
    return "categorical"


def source_row_digests(chunks: Iterable[list[tuple[Any, ...]]], schema: dict[str, Any]) -> np.ndarray:
    """The data's keyed row digests, as for an upload (one budget per population).

    Each chunk of the schema's columns is typed as an upload's cells would be, hashed, and
    dropped: nothing is written; 8 bytes a distinct row are kept.
    """
    specs = parse_schema(schema)
    header = [spec.name for spec in specs]
    # every entry with its role (an upload's schema is completed so when it is validated)
    stored = {**schema, "columns": [spec.entry for spec in specs], "missing_values": [""]}
    parts = [np.empty(0, dtype=np.uint64)]
    for rows in chunks:
        cells = [[_cell(value) for value in row] for row in rows]
        frame = build_table(header, cells, stored, schema_inferred=False).frame
        parts.append(row_digests(frame, fingerprint_key()))
    return np.unique(np.concatenate(parts))


def _cell(value: Any) -> str:
    """A value as an upload's cell: missing (None, NaN) is empty."""
    if value is None or (isinstance(value, float) and value != value):
        return ""
    return str(value)


@dataclass
class ReferenceRead:
    """What a job reads from referenced data: counts over the training rows, audit samples."""

    counts: Any
    train_sample: pd.DataFrame
    holdout_sample: pd.DataFrame
    data: SourceData

    def close(self) -> None:
        self.data.close()

    def record(self) -> dict[str, Any]:
        """The lineage's ``counts``: the engine, where the data is (no credentials)."""
        return {"engine": self.data.engine, **self.data.location, "where": self.data.describe()}


def reference_open(source: DatasetVersion, *, split_seed: int, holdout_fraction: float) -> ReferenceRead:
    """Check the referenced data (schema, row count, checksum) and prepare the job's reads.

    The split is a keyed hash of each row's text computed in the engine; the holdout never
    enters the counts. Data that changed since registration is refused here, before any spend.
    """
    reference = source.source_reference
    data = source_open(reference, source.schema)
    try:
        # changed or not first: the check of the rows against the schema passed at registration, so
        # it can fail only on a changed table, and its reason (what a new row breaks) is the
        # requester's to read; "changed" says no more than that
        n_rows, checksum = data.checksum()
        if n_rows != reference["n_rows"] or checksum != reference["checksum"]:
            raise GeneratorError(
                f"{data.describe()} changed since {source} was registered (its rows differ); register it again "
                "as a new version and file the request on that version"
            )
        data.counts().check()
        holdout = data.holdout(split_seed, holdout_fraction)
        limit = int(settings.SYNTHGATE_REFERENCE_AUDIT_ROWS)
        train = data.sample(f"NOT {holdout}", seed=split_seed, limit=limit)
        held = data.sample(holdout, seed=split_seed, limit=limit)
        counts = data.counts(where=f"NOT {holdout}")
    except BaseException:
        data.close()
        raise
    return ReferenceRead(counts=counts, train_sample=train, holdout_sample=held, data=data)


@dataclass(frozen=True)
class ReferenceAuditSample:
    """What an audit read of a referenced version: a random sample drawn where the data lives."""

    frame: pd.DataFrame
    engine: str
    where: str


def reference_audit_sample(version: DatasetVersion, *, seed: int, limit: int) -> ReferenceAuditSample:
    """A uniform random sample of at most ``limit`` rows of the data ``version`` refers to, drawn in
    its engine (ordered by a hash keyed by ``seed``, so the worker holds ``limit`` rows, never the
    table), typed as an upload's cells and read back as a stored version is: what an external or
    on-demand audit reads of a training (or holdout) version registered by reference.

    The data must still be the registered rows (row count and checksum, computed there), or the
    audit would judge other data: a change raises :class:`GeneratorError` with the reason. Each
    statement and lock wait is bounded by ``SYNTHGATE_REFERENCE_SNAPSHOT_TIMEOUT_SECONDS``.
    """
    reference = version.source_reference
    data = source_open(reference, version.schema)
    try:
        data.bound_waits(int(settings.SYNTHGATE_REFERENCE_SNAPSHOT_TIMEOUT_SECONDS))
        n_rows, checksum = data.checksum()  # changed or not first, as a job asks (reference_open)
        if (n_rows, checksum) != (reference.get("n_rows"), reference.get("checksum")):
            raise GeneratorError(
                f"{data.describe()} changed since {version} was registered (its rows differ): the audit would "
                "not judge the registered rows; register it again as a new version and audit against that"
            )
        data.counts().check()
        sample = data.sample("TRUE", seed=seed, limit=limit)
    finally:
        data.close()
    stored = table_from_frame(sample, version.schema).canonical_bytes.decode("utf-8")
    return ReferenceAuditSample(canonical_frame(stored, version.schema), data.engine, data.describe())


@dataclass
class ReferenceSnapshot:
    """The data a referenced version names, as it is now: its identity and an audit sample.

    ``where`` says where the data is (:meth:`SourceData.describe`, no credentials); ``n_rows``
    and ``checksum`` are computed where the data lives (as at registration); ``sample`` is at most
    ``limit`` rows drawn there at random (keyed by ``seed``), typed as an upload's cells, or
    ``None`` when the data is unchanged since registration (nothing to compare).
    ``unchanged`` is ``sample is None``.
    """

    engine: str
    where: str
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
            "where": self.where,
            "n_rows": self.n_rows,
            "checksum": self.checksum,
            "taken_at": time_iso(self.taken_at),
            "seed": self.seed,
            "sample_rows": 0 if self.sample is None else len(self.sample),
            "unchanged": self.unchanged,
        }


class SnapshotError(Exception):
    """The referenced data cannot be read as its version's schema says (the reason, in words)."""


def reference_snapshot(
    version: DatasetVersion, *, seed: int, limit: int, always_sample: bool = False
) -> ReferenceSnapshot:
    """A new snapshot of the data ``version`` refers to, for a drift re-audit, on any engine.

    The data is checked against the version's schema in its engine, its row count and checksum
    taken there, and, when they differ from the version's (or ``always_sample``), a random sample of
    at most ``limit`` rows drawn there. Statements wait at most
    ``SYNTHGATE_REFERENCE_SNAPSHOT_TIMEOUT_SECONDS`` (:meth:`SourceData.bound_waits`: a table locked
    by its loader fails the snapshot instead of hanging the sweep). Every failure to read the data
    as its schema says is a :class:`SnapshotError` with the reason.
    """
    reference = version.source_reference
    try:
        data = source_open(reference, version.schema)
    except (ValidationError, GeneratorError, KeyError) as error:
        raise SnapshotError(f"the source of {version} cannot be opened: {_reason(error)}") from error
    where = data.describe()
    taken_at = timezone.now()
    try:
        data.bound_waits(int(settings.SYNTHGATE_REFERENCE_SNAPSHOT_TIMEOUT_SECONDS))
        data.counts().check()
        n_rows, checksum = data.checksum()
        sample = None
        if always_sample or (n_rows, checksum) != (reference.get("n_rows"), reference.get("checksum")):
            sample = table_from_frame(data.sample("TRUE", seed=seed, limit=limit), version.schema).frame
    except (SchemaMismatchError, GeneratorError, ValidationError, SchemaError) as error:
        raise SnapshotError(f"{where} no longer matches the schema of {version}: {_reason(error)}") from error
    except Exception as error:  # the engine's own errors (psycopg2, DuckDB): a timeout, a dropped relation
        logger.warning("snapshot of %s failed: %s", where, error)
        raise SnapshotError(f"{where} could not be read ({type(error).__name__}: {_reason(error)})") from error
    finally:
        data.close()
    return ReferenceSnapshot(data.engine, where, n_rows, checksum, taken_at, seed, sample)


def _reason(error: Exception) -> str:
    message = getattr(error, "message", None) or str(error)
    lines = message.strip().splitlines()
    return lines[0] if lines else type(error).__name__
