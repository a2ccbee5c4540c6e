"""Grouped counts computed in PostgreSQL: the rows of a table stay in the database.

:class:`PostgresCounts` answers the :class:`~synth_engine.generators.counts.CountSource` questions
with SQL over one table or view: the statements are :class:`~synth_engine.engines.sql.SqlCounts`'s
(every table of a stage in one ``GROUPING SETS`` statement), in PostgreSQL's dialect
(``width_bucket`` over the public grid is ``searchsorted(..., side="right")``; category lists are
``array_position``). Only the counts cross to the worker, which adds the noise.

:meth:`PostgresCounts.check` validates the table against the schema in the database before
anything is spent, with the same refusals as ``validate_frame`` for a frame (missing columns,
types, missing values in a non-nullable column, ±inf, fractions in an integer column, values
outside declared categories). Columns of the table that the schema does not name are never read.

The connection is any DB-API connection whose cursors take ``%s`` parameters (psycopg2, or
Django's connection wrapper around it).
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from typing import Any

import pandas as pd

from core.schema import ColumnSpec
from synth_engine.engines.sql import MAX_GROUPING_SETS, SqlCounts, quote_identifier
from synth_engine.generators.base import SchemaMismatchError
from synth_engine.generators.domain import parse_schema

__all__ = ["MAX_GROUPING_SETS", "PostgresCounts", "quote_identifier", "quote_relation"]

NUMERIC_TYPES = {"smallint", "integer", "bigint", "real", "double precision", "numeric"}
FLOAT_TYPES = {"real", "double precision", "numeric"}
DATETIME_TYPES = {"timestamp without time zone", "timestamp with time zone", "date"}
ACCEPTED = {
    "integer": NUMERIC_TYPES,
    "float": NUMERIC_TYPES,
    "datetime": DATETIME_TYPES,
    "boolean": {"boolean"},
}


def quote_relation(table: str) -> str:
    """``schema.table`` or ``table``, each part quoted."""
    parts = table.split(".")
    if len(parts) > 2 or not all(parts):
        raise SchemaMismatchError(f"table {table!r} must be 'table' or 'schema.table'")
    return ".".join(quote_identifier(part) for part in parts)


class PostgresCounts(SqlCounts):
    """The grouped counts of one PostgreSQL table or view, for the columns of ``schema``."""

    engine = "postgresql"
    accepted = ACCEPTED
    float_types = FLOAT_TYPES
    # Keeps the subquery from being flattened, so each code is computed once per row rather
    # than once per grouping set that names it.
    fence = " OFFSET 0"
    # Every row is looked up in the hash table of every set of a statement: beyond a few tens of
    # thousands of cells in all they fall out of the cache (1,176 sets of 807,000 cells took 129 s
    # of the server's CPU at 100,000 rows in one statement, 19 s by 20,000 cells a statement).
    max_cells = 20_000

    def __init__(self, connection: Any, table: str, schema: dict[str, Any], *, where: str | None = None) -> None:
        super().__init__(schema)
        self.connection = connection
        self.table = table
        self.label = f"table {table!r}"
        self.base = quote_relation(table)
        # ``where`` (SQL built by this module, e.g. :func:`holdout_predicate`) restricts the counted rows.
        self.relation = f"(SELECT * FROM {self.base} WHERE {where}) AS source" if where else self.base
        self._types: dict[str, str] | None = None

    def _rows(self, sql: str, params: Sequence[Any] = (), *, grouped: bool = False) -> list[tuple[Any, ...]]:
        """Run one statement. A GROUPING SETS statement runs with a large ``hash_mem_multiplier``:
        the planner cannot tell how few groups a code has and would sort the input once per set;
        this lets it hash every set in one pass (the tables really are small: at most the product
        of a group's bins each; PostgreSQL spills to disk if not)."""
        with self.connection.cursor() as cursor:
            if grouped:
                cursor.execute("SET hash_mem_multiplier = 1000")
            try:
                cursor.execute(sql, list(params))
                rows = list(cursor.fetchall())
            except Exception:
                if grouped:  # in a failed transaction the reset fails too; the rollback undoes the SET
                    with contextlib.suppress(Exception):
                        cursor.execute("RESET hash_mem_multiplier")
                raise
            if grouped:
                cursor.execute("RESET hash_mem_multiplier")
            return rows

    def column_types(self) -> dict[str, str]:
        """Each column of the relation and its PostgreSQL type; refuses a relation that does not exist."""
        if self._types is None:
            found = self._rows("SELECT to_regclass(%s)::oid", [self.base])
            if not found or found[0][0] is None:
                raise SchemaMismatchError(f"table {self.table!r} does not exist or cannot be read")
            rows = self._rows(
                "SELECT attname, format_type(atttypid, NULL) FROM pg_attribute "
                "WHERE attrelid = %s AND attnum > 0 AND NOT attisdropped ORDER BY attnum",
                [found[0][0]],
            )
            self._types = {str(name): str(kind) for name, kind in rows}
        return self._types

    def _value(self, spec: ColumnSpec) -> str:
        column = quote_identifier(spec.name)
        if spec.type == "datetime":
            return f"floor(extract(epoch FROM {column}))::float8"
        if spec.is_numeric:
            return f"NULLIF({column}::float8, 'NaN'::float8)"
        if spec.type == "boolean":
            return column
        return f"NULLIF({column}::text, '')"

    def _search(self, expression: str, thresholds: list[float], params: list[Any]) -> str:
        params.append(thresholds)
        return f"width_bucket({expression}, %s::float8[])"

    def _position(self, value: str, values: list[str], params: list[Any]) -> str:
        params.append(values)
        return f"array_position(%s::text[], {value}) - 1"

    def _lookup(self, index: str, table: list[int], params: list[Any]) -> str:
        params.append(table)
        return f"(%s::int[])[({index}) + 1]"

    def _outside(self, value: str, values: list[str], params: list[Any]) -> str:
        params.append(values)
        return f"NOT {value} = ANY(%s::text[])"

    def _number(self, value: float, params: list[Any]) -> str:
        params.append(value)
        return "%s::float8"

    def _rint(self, expression: str) -> str:
        return f"round(({expression})::float8)"  # float8 round is rint: ties to even

    def _infinite(self, column: str) -> str:
        return f"{column}::float8 IN ('Infinity'::float8, '-Infinity'::float8)"


def row_text(specs: list[ColumnSpec]) -> str:
    """SQL for the text of a row's schema columns (the input of the checksum and the split hash)."""
    return "ROW(" + ", ".join(quote_identifier(spec.name) for spec in specs) + ")::text"


def table_checksum(connection: Any, table: str, schema: dict[str, Any]) -> tuple[int, str]:
    """The row count and an order-independent checksum of the schema's columns, computed in the
    database: the sum of the first 60 bits of each row's MD5 (a change detector for the version's
    identity, not a security hash). Only these two numbers leave the database."""
    specs = parse_schema(schema)
    sql = (
        f"SELECT count(*), coalesce(sum(('x' || left(md5({row_text(specs)}), 15))::bit(60)::bigint), 0)::text "
        f"FROM {quote_relation(table)}"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, [])
        count, checksum = cursor.fetchone()
    return int(count), str(checksum)


def holdout_predicate(schema: dict[str, Any], seed: int, fraction: float) -> str:
    """SQL true for the rows of the holdout: a keyed hash of the row's text below ``fraction``.

    Deterministic for a seed, computed in the database, and identical rows fall on the same side.
    """
    specs = parse_schema(schema)
    share = int(round(float(fraction) * 1_000_000))
    bucket = f"mod(('x' || left(md5('{int(seed)}:' || {row_text(specs)}), 7))::bit(28)::int, 1000000)"
    return f"({bucket} < {share})"


def sample_rows(
    connection: Any, table: str, schema: dict[str, Any], *, where: str, seed: int, limit: int
) -> pd.DataFrame:
    """At most ``limit`` rows matching ``where``, a random sample keyed by ``seed``, as a frame
    of the schema's columns (values as the driver returns them)."""
    specs = parse_schema(schema)
    columns = ", ".join(quote_identifier(spec.name) for spec in specs)
    order = f"md5('{int(seed)}:sample:' || {row_text(specs)})"
    sql = f"SELECT {columns} FROM {quote_relation(table)} WHERE {where} ORDER BY {order} LIMIT {int(limit)}"
    with connection.cursor() as cursor:
        cursor.execute(sql, [])
        rows = cursor.fetchall()
    return pd.DataFrame.from_records(rows, columns=[spec.name for spec in specs])
