"""Grouped counts computed in PostgreSQL: the rows of a table stay in the database.

:class:`PostgresCounts` answers the :class:`~synth_engine.generators.counts.CountSource` questions
with SQL over one table or view. Every column's fine code (and, once the bins are chosen, its bin)
is computed by a SQL expression that mirrors the codec's NumPy encoding exactly (``width_bucket``
over the public grid is ``searchsorted(..., side="right")``; category lists are ``array_position``),
and all the tables one stage needs are counted in one statement with ``GROUPING SETS``: one pass
for the domain stage, one for the fine 1-ways, one for every binned table of the tree selection
and the measurements. Only the counts cross to the worker, which adds the noise.

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

import numpy as np
import pandas as pd

from core.schema import ColumnSpec
from synth_engine.engines.refusals import Refusal, refuse_structure, value_refusals
from synth_engine.generators.base import GeneratorError, SchemaMismatchError
from synth_engine.generators.domain import (
    CategoricalCodec,
    Codec,
    NumericCodec,
    magnitude_thresholds,
    parse_schema,
)

NUMERIC_TYPES = {"smallint", "integer", "bigint", "real", "double precision", "numeric"}
FLOAT_TYPES = {"real", "double precision", "numeric"}
DATETIME_TYPES = {"timestamp without time zone", "timestamp with time zone", "date"}
MAX_GROUPING_SETS = 4000
ACCEPTED = {
    "integer": NUMERIC_TYPES,
    "float": NUMERIC_TYPES,
    "datetime": DATETIME_TYPES,
    "boolean": {"boolean"},
}


def quote_identifier(name: str) -> str:
    """A SQL identifier, double-quoted (``"`` doubled), so any column name is read literally."""
    if "\x00" in name:
        raise SchemaMismatchError(f"column name {name!r} holds a NUL character")
    return '"' + name.replace('"', '""') + '"'


def quote_relation(table: str) -> str:
    """``schema.table`` or ``table``, each part quoted."""
    parts = table.split(".")
    if len(parts) > 2 or not all(parts):
        raise SchemaMismatchError(f"table {table!r} must be 'table' or 'schema.table'")
    return ".".join(quote_identifier(part) for part in parts)


class PostgresCounts:
    """The grouped counts of one PostgreSQL table or view, for the columns of ``schema``."""

    engine = "postgresql"

    def __init__(self, connection: Any, table: str, schema: dict[str, Any], *, where: str | None = None) -> None:
        self.connection = connection
        self.table = table
        self.base = quote_relation(table)
        # ``where`` (SQL built by this module, e.g. :func:`holdout_predicate`) restricts the counted rows.
        self.relation = f"(SELECT * FROM {self.base} WHERE {where}) AS source" if where else self.base
        self.specs = parse_schema(schema)
        self._types: dict[str, str] | None = None
        self._domain: dict[str, Any] | None = None

    # ------------------------------------------------------------------ queries

    def _rows(self, sql: str, params: Sequence[Any] = (), *, hashed: bool = False) -> list[tuple[Any, ...]]:
        with self.connection.cursor() as cursor:
            if hashed:
                cursor.execute("SET hash_mem_multiplier = 1000")
            try:
                cursor.execute(sql, list(params))
                rows = list(cursor.fetchall())
            except Exception:
                if hashed:  # in a failed transaction the reset fails too; the rollback undoes the SET
                    with contextlib.suppress(Exception):
                        cursor.execute("RESET hash_mem_multiplier")
                raise
            if hashed:
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
        """SQL for the column's value as the generators see it; NULL where it is missing."""
        column = quote_identifier(spec.name)
        if spec.type == "datetime":
            return f"floor(extract(epoch FROM {column}))::float8"
        if spec.is_numeric:
            return f"NULLIF({column}::float8, 'NaN'::float8)"
        if spec.type == "boolean":
            return column
        return f"NULLIF({column}::text, '')"

    # ------------------------------------------------------------------ validation

    def check(self) -> list[str]:
        """Refuse a table that does not match the schema (before any spend); return warnings (none under DP)."""
        refuse_structure(self.specs)
        types = self.column_types()
        absent = [spec.name for spec in self.specs if spec.name not in types]
        if absent:
            raise SchemaMismatchError(f"table {self.table!r} has no column {', '.join(map(repr, absent))}")
        for spec in self.specs:
            accepted = ACCEPTED.get(spec.type)
            if accepted is not None and types[spec.name] not in accepted:
                raise SchemaMismatchError(
                    f"column {spec.name!r} is declared {spec.type} but is {types[spec.name]} in table {self.table!r}"
                )
        refusals: list[Refusal] = []
        for spec in self.specs:
            refusals += value_refusals(spec, fractional=types[spec.name] in FLOAT_TYPES)
        params: list[Any] = []
        probes = ["count(*)"] + [f"count(*) FILTER (WHERE {self._refused(refusal, params)})" for refusal in refusals]
        found = self._rows(f"SELECT {', '.join(probes)} FROM {self.relation}", params)[0]
        if int(found[0]) == 0:
            raise GeneratorError(f"table {self.table!r} has no rows")
        for refusal, count in zip(refusals, found[1:], strict=True):
            if int(count):
                raise SchemaMismatchError(refusal.message)
        return []

    def _refused(self, refusal: Refusal, params: list[Any]) -> str:
        """SQL true on the rows that ``refusal`` refuses."""
        spec, value = refusal.spec, self._value(refusal.spec)
        if refusal.kind == "missing":
            return f"{value} IS NULL"
        if refusal.kind == "infinite":
            return f"{quote_identifier(spec.name)}::float8 IN ('Infinity'::float8, '-Infinity'::float8)"
        if refusal.kind == "fraction":
            return f"{value} <> trunc({value})"
        if refusal.kind == "off_grid":  # not np.allclose(v, on_grid(v), rtol=1e-9, atol=0)
            step = f"{float(spec.step or 1.0)!r}::float8"
            grid = f"(round({value} / {step}) * {step})"
            return f"abs({value} - {grid}) > 1e-9 * abs({grid})"
        params.append([str(category) for category in spec.categories or ()])
        return f"{value} IS NOT NULL AND NOT {value} = ANY(%s::text[])"

    # ------------------------------------------------------------------ CountSource

    def row_count(self) -> int:
        return int(self._rows(f"SELECT count(*) FROM {self.relation}")[0][0])

    def _domain_counts(self) -> dict[str, Any]:
        """One pass for the domain stage: value counts of undeclared categorical columns and
        magnitude histograms of numeric columns without both bounds."""
        if self._domain is not None:
            return self._domain
        selected, params, wanted = [], [], []
        for spec in self.specs:
            if spec.type == "categorical" and spec.categories is None:
                selected.append(self._value(spec))
            elif spec.is_numeric and (spec.minimum is None or spec.maximum is None):
                integer = spec.type in ("integer", "datetime")
                value = self._value(spec)
                side = len(magnitude_thresholds(integer=integer))
                selected.append(f"{side} + sign({value})::int * width_bucket(abs({value}), %s::float8[])")
                params.append(magnitude_thresholds(integer=integer).tolist())
            else:
                continue
            wanted.append(spec)
        self._domain = {}
        if not wanted:
            return self._domain
        rows = self._grouped(selected, params, [(k,) for k in range(len(wanted))])
        for k, spec in enumerate(wanted):
            keys = [(row[k], row[-1]) for row in rows[k] if row[k] is not None]
            self._domain[spec.name] = keys
        return self._domain

    def category_counts(self, spec: ColumnSpec) -> tuple[list[Any], np.ndarray]:
        found = self._domain_counts()[spec.name]
        return [key for key, _ in found], np.array([count for _, count in found], dtype=np.int64)

    def magnitude_counts(self, spec: ColumnSpec, *, integer: bool) -> np.ndarray:
        length = 2 * len(magnitude_thresholds(integer=integer)) + 1
        histogram = np.zeros(length, dtype=np.int64)
        for index, count in self._domain_counts()[spec.name]:
            histogram[int(index)] += int(count)
        return histogram

    def fine_code(self, codec: Codec, params: list[Any]) -> str:
        """SQL for the column's fine code (the codec's ``encode``); -1 for a value it cannot code."""
        spec = next(spec for spec in self.specs if spec.name == codec.name)
        value = self._value(spec)
        missing = codec.missing_code if codec.missing_code is not None else -1
        if isinstance(codec, NumericCodec):
            clipped = f"LEAST(GREATEST({value}, %s::float8), %s::float8)"
            low, high = float(codec.low[0]), float(codec.high[-1])
            sql = f"CASE WHEN {value} IS NULL THEN {missing} "
            # A value on a single-value cell's point goes to that cell even where the next cell
            # starts at the same value: the codec names those points.
            for point, code in codec.point_cells():
                sql += f"WHEN {clipped} = %s::float8 THEN {code} "
                params.extend([low, high, point])
            sql += f"ELSE width_bucket({clipped}, %s::float8[]) - 1 END"
            params.extend([low, high, codec.low.tolist()])
            return sql
        assert isinstance(codec, CategoricalCodec)
        other = codec.other_code if codec.other_code is not None else -1
        if spec.type == "boolean":
            index = {bool(v): k for k, v in enumerate(codec.values)}
            true, false = index.get(True, other), index.get(False, other)
            return f"CASE WHEN {value} IS NULL THEN {missing} WHEN {value} THEN {true} ELSE {false} END"
        params.append([str(category) for category in codec.values])
        position = f"array_position(%s::text[], {value}) - 1"
        return f"CASE WHEN {value} IS NULL THEN {missing} ELSE COALESCE({position}, {other}) END"

    def fine_counts(self, codecs: list[Codec]) -> list[np.ndarray]:
        params: list[Any] = []
        selected = [self.fine_code(codec, params) for codec in codecs]
        rows = self._grouped(selected, params, [(k,) for k in range(len(codecs))])
        counts = []
        for k, codec in enumerate(codecs):
            histogram = np.zeros(codec.n_codes, dtype=np.int64)
            for row in rows[k]:
                if row[k] < 0:
                    raise SchemaMismatchError(f"column {codec.name!r} holds values its codec cannot encode")
                histogram[row[k]] += row[-1]
            counts.append(histogram)
        return counts

    def binned_counts(
        self, codecs: list[Codec], bins: list[np.ndarray], groups: list[tuple[int, ...]]
    ) -> list[np.ndarray]:
        used = sorted({column for group in groups for column in group})
        position = {column: k for k, column in enumerate(used)}
        params: list[Any] = []
        selected = []
        for column in used:
            code_params: list[Any] = []
            code = self.fine_code(codecs[column], code_params)
            selected.append(f"(%s::int[])[({code}) + 1]")
            params += [bins[column].tolist(), *code_params]
        sizes = [int(b.max()) + 1 for b in bins]
        rows = self._grouped(selected, params, [tuple(position[c] for c in group) for group in groups])
        tables = []
        for g, group in enumerate(groups):
            table = np.zeros(tuple(sizes[column] for column in group), dtype=np.int64)
            for row in rows[g]:
                table[tuple(row[position[column]] for column in group)] += row[-1]
            tables.append(table)
        return tables

    def _grouped(
        self, selected: list[str], params: list[Any], sets: list[tuple[int, ...]]
    ) -> list[list[tuple[Any, ...]]]:
        """Count the rows of every grouping set, in one statement per :data:`MAX_GROUPING_SETS`
        sets (PostgreSQL takes at most 4,096 in one); rows per set (keys..., count).

        ``OFFSET 0`` keeps the subquery from being flattened, so each code is computed once per
        row rather than once per grouping set that names it. The planner cannot tell how few
        groups a code has and would sort the input once per set; a large ``hash_mem_multiplier``
        for the statement lets it hash every set in one pass (the tables really are small: at
        most the product of a group's bins each; PostgreSQL spills to disk if not).
        """
        if len(sets) > MAX_GROUPING_SETS:
            head = self._grouped(selected, params, sets[:MAX_GROUPING_SETS])
            return head + self._grouped(selected, params, sets[MAX_GROUPING_SETS:])
        names = [f"c{k}" for k in range(len(selected))]
        inner = ", ".join(f"{expression} AS {name}" for expression, name in zip(selected, names, strict=True))
        flags = ", ".join(f"GROUPING({name})" for name in names)
        grouping = ", ".join("(" + ", ".join(names[k] for k in group) + ")" for group in sets)
        sql = (
            f"SELECT {', '.join(names)}, {flags}, count(*) "
            f"FROM (SELECT {inner} FROM {self.relation} OFFSET 0) AS coded GROUP BY GROUPING SETS ({grouping})"
        )
        index = {frozenset(group): g for g, group in enumerate(sets)}
        by_set: list[list[tuple[Any, ...]]] = [[] for _ in sets]
        width = len(names)
        for row in self._rows(sql, params, hashed=True):
            members = frozenset(k for k in range(width) if row[width + k] == 0)
            by_set[index[members]].append((*row[:width], int(row[-1])))
        return by_set


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
