"""Grouped counts of Parquet files computed in DuckDB: larger than memory, one statement a stage.

:class:`DuckDBCounts` answers the :class:`~synth_engine.generators.counts.CountSource` questions
with SQL over ``read_parquet`` of a Parquet file, a directory of them (every ``*.parquet`` below
it) or a glob: the statements are :class:`~synth_engine.engines.sql.SqlCounts`'s (every table of
a stage in one ``GROUPING SETS`` statement, as for PostgreSQL), in DuckDB's dialect. DuckDB has no
``width_bucket`` over a list, so a column's cell on the public grid (NumPy's
``searchsorted(..., side="right")``) is a balanced tree of comparisons with the grid's ends (one
``CASE`` per end, ``log2`` of them evaluated per value). DuckDB runs embedded in the worker with a
``memory_limit`` and spills to a ``temp_directory`` beyond it, so the tables may be larger than
memory; only the schema's columns are read.

The fine 1-ways and the binned tables (the tree's scores and the measurements: 1,176 (label, a, b)
tables at 50 columns) are not ``GROUPING SETS``: DuckDB inserts every row into a hash table per
set, about 35 ns a row and set. Instead DuckDB computes each row's codes (the same SQL
expressions) and streams them, as Arrow batches of small integers, to
:class:`~synth_engine.generators.counts.TableCounter` in the same process, which adds up every
table with ``numpy.bincount`` (about 2 ns a row and table). DuckDB is embedded in the worker, so
the rows are still read where they live and only the counts leave the process.

For a source registered by reference (``synth_engine.sources``) the same connection answers the
version's fingerprint (:meth:`DuckDBCounts.checksum`), the job's split (:meth:`~DuckDBCounts.holdout`,
a keyed hash of each row), the audit's samples (:meth:`~DuckDBCounts.sample`) and the rows streamed
for the population-overlap digests (:meth:`~DuckDBCounts.row_chunks`).
"""

from __future__ import annotations

import contextlib
import glob
import hashlib
import os
import queue
import re
import tempfile
import threading
from collections.abc import Generator, Iterator, Sequence
from pathlib import Path
from typing import Any

import duckdb
import fsspec
import numpy as np
import pandas as pd
import pyarrow as pa

from core.schema import ColumnSpec
from synth_engine.engines.sql import Reading, SqlCounts, quote_identifier
from synth_engine.generators.base import SchemaMismatchError
from synth_engine.generators.counts import RowSample, TableCounter
from synth_engine.generators.domain import Codec

MEMORY_LIMIT = "1GB"
# The fine and binned stages stream each row's small-integer codes to the worker in Arrow batches
# of this many rows (about 50 MB at 50 one-byte codes), where NumPy adds up the tables.
BATCH_ROWS = 2**20
# DuckDB keeps a hash table for each grouping set of a statement while it scans, about 2 MiB
# each whatever the rows (1,176 sets ran out of a 1 GB limit on 200,000 rows; 300 fit): a
# statement counts at most (memory limit - SET_BASE_BYTES) / SET_BYTES sets, and a stage with
# more is counted by a few statements, each a scan.
SET_BYTES = 4 * 2**20
SET_BASE_BYTES = 64 * 2**20
UNITS = {"": 1, "B": 1, "BYTES": 1, "KB": 10**3, "MB": 10**6, "GB": 10**9, "TB": 10**12}
UNITS |= {"KIB": 2**10, "MIB": 2**20, "GIB": 2**30, "TIB": 2**40}
INTEGER_TYPES = {
    "TINYINT",
    "SMALLINT",
    "INTEGER",
    "BIGINT",
    "HUGEINT",
    "UTINYINT",
    "USMALLINT",
    "UINTEGER",
    "UBIGINT",
    "UHUGEINT",
}
FLOAT_TYPES = {"FLOAT", "DOUBLE", "DECIMAL"}
DATETIME_TYPES = {
    "TIMESTAMP",
    "TIMESTAMP_S",
    "TIMESTAMP_MS",
    "TIMESTAMP_NS",
    "TIMESTAMP WITH TIME ZONE",
    "DATE",
}
ACCEPTED = {
    "integer": INTEGER_TYPES | FLOAT_TYPES,
    "float": INTEGER_TYPES | FLOAT_TYPES,
    "datetime": DATETIME_TYPES,
    "boolean": {"BOOLEAN"},
}
GLOB_CHARACTERS = re.compile(r"[*?\[]")


def parquet_files(path: str | Path, filesystem: fsspec.AbstractFileSystem | None = None) -> list[str]:
    """The Parquet files at ``path``: the file itself, every ``*.parquet`` below a directory, or
    the files a glob (``**`` for any depth) matches; sorted. Refuses a path that names none.

    With a ``filesystem`` (object storage, e.g. ``s3fs``), ``path`` is its URL (``s3://bucket/key``)
    and the files are listed there, each named by its URL."""
    text = str(path)
    if filesystem is not None:
        return _remote_parquet_files(text, filesystem)
    if GLOB_CHARACTERS.search(text):
        files = [name for name in glob.glob(text, recursive=True) if os.path.isfile(name)]
    elif os.path.isdir(text):
        files = [str(name) for name in Path(text).rglob("*.parquet") if name.is_file()]
    else:
        files = [text] if os.path.isfile(text) else []
    if not files:
        raise SchemaMismatchError(f"no Parquet file at {text!r}")
    return sorted(files)


def _code_type(size: int) -> str:
    """The smallest DuckDB integer type that holds the codes ``0 .. size - 1`` (and -1)."""
    return "TINYINT" if size <= 127 else "SMALLINT" if size <= 32767 else "INTEGER"


def _remote_parquet_files(url: str, filesystem: fsspec.AbstractFileSystem) -> list[str]:
    """:func:`parquet_files` on an fsspec filesystem: the object, every ``*.parquet`` under a prefix, or a glob."""
    protocol, separator, key = url.partition("://")
    if not separator or not key:
        raise SchemaMismatchError(f"{url!r} is not a URL of the form protocol://bucket/key")
    if GLOB_CHARACTERS.search(key):
        try:
            found = filesystem.glob(key, detail=True)
        except ValueError as error:  # fsspec's own refusals, e.g. '**' not a whole path component
            raise SchemaMismatchError(f"the glob {url!r} is not valid: {error}") from error
        files = [name for name, info in found.items() if info.get("type") == "file"]
    elif filesystem.isdir(key):
        files = [name for name in filesystem.find(key) if name.endswith(".parquet")]
    else:
        files = [key] if filesystem.isfile(key) else []
    if not files:
        raise SchemaMismatchError(f"no Parquet file at {url!r}")
    return sorted(f"{protocol}://{name}" for name in files)


def _string(text: str) -> str:
    """A SQL string literal."""
    return "'" + text.replace("'", "''") + "'"


def _double(value: float) -> str:
    """A DOUBLE constant, exactly ``value`` (parsed from its shortest round-tripping text)."""
    return f"CAST({_string(repr(float(value)))} AS DOUBLE)"


class DuckDBCounts(SqlCounts):
    """The grouped counts of Parquet data (a file, a directory or a glob) for the columns of ``schema``.

    ``where`` (SQL built by this module, e.g. :meth:`holdout`) restricts the counted rows.
    ``files`` (the expansion of ``path``) is given by :meth:`restricted` only.
    Without a ``connection`` one is opened in memory with ``memory_limit`` and ``temp_directory``
    (where DuckDB spills what does not fit) and closed by :meth:`close`.

    ``filesystem`` (an fsspec filesystem, e.g. ``s3fs`` for ``s3://`` URLs) is where the files are
    when they are not local: ``path`` is then its URL, the files are listed there and DuckDB reads
    them through it (``register_filesystem``; DuckDB's own ``httpfs`` extension is not needed, and
    extensions are never installed or loaded on the fly).
    """

    engine = "duckdb"
    accepted = ACCEPTED
    float_types = FLOAT_TYPES

    def __init__(
        self,
        path: str | Path,
        schema: dict[str, Any],
        *,
        where: str | None = None,
        connection: duckdb.DuckDBPyConnection | None = None,
        memory_limit: str = MEMORY_LIMIT,
        temp_directory: str | Path | None = None,
        threads: int | None = None,
        files: list[str] | None = None,
        filesystem: fsspec.AbstractFileSystem | None = None,
    ) -> None:
        super().__init__(schema)
        self.schema = schema
        self.path = str(path)
        self.filesystem = filesystem
        self.files = files if files is not None else parquet_files(path, filesystem)
        self.label = f"the Parquet data at {self.path!r}"
        self.owned = connection is None
        if connection is None:
            config: dict[str, Any] = {
                "memory_limit": memory_limit,
                "temp_directory": str(temp_directory or Path(tempfile.gettempdir()) / "synthgate-duckdb"),
                "preserve_insertion_order": False,
                # never download an extension (no internet on a worker; s3:// goes through fsspec)
                "autoinstall_known_extensions": False,
                "autoload_known_extensions": False,
            }
            if threads is not None:
                config["threads"] = threads
            connection = duckdb.connect(":memory:", config=config)
            if filesystem is not None:
                connection.register_filesystem(filesystem)
        self.connection = connection
        self.max_sets = max(1, (self._memory_limit() - SET_BASE_BYTES) // SET_BYTES)
        listing = "[" + ", ".join(_string(name) for name in self.files) + "]"
        self.view = "parquet_" + hashlib.sha256(listing.encode("utf-8")).hexdigest()[:16]
        # union_by_name: files are matched by column name, a column a file lacks reads as missing
        self.connection.execute(
            f"CREATE OR REPLACE TEMPORARY VIEW {self.view} AS "
            f"SELECT * FROM read_parquet({listing}, union_by_name = true)"
        )
        self.where = where
        # Each column's value as the generators see it is computed once a row, below the codes
        # that compare it with the grid many times (DuckDB drops the ones a statement does not use).
        values = ", ".join(f"{self._raw_value(spec)} AS {self._value(spec)}" for spec in self.specs)
        restriction = f" WHERE {where}" if where else ""
        self.relation = f"(SELECT *, {values} FROM {self.view}{restriction}) AS source"
        self._types: dict[str, str] | None = None

    def restricted(self, where: str) -> DuckDBCounts:
        """The counts of the same files, on the same connection, over the rows ``where`` holds."""
        return DuckDBCounts(
            self.path,
            self.schema,
            where=where,
            connection=self.connection,
            files=self.files,
            filesystem=self.filesystem,
        )

    def close(self) -> None:
        if self.owned:
            self.connection.close()

    def _memory_limit(self) -> int:
        """The connection's memory limit in bytes (DuckDB prints it as "953.6 MiB")."""
        text = str(self.connection.execute("SELECT current_setting('memory_limit')").fetchall()[0][0])
        found = re.fullmatch(r"\s*([0-9.]+)\s*([A-Za-z]*)\s*", text)
        if found is None or found.group(2).upper() not in UNITS:
            raise ValueError(f"cannot read DuckDB's memory limit {text!r}")
        return int(float(found.group(1)) * UNITS[found.group(2).upper()])

    # ------------------------------------------------------------------ the dialect

    def _rows(self, sql: str, params: Sequence[Any] = (), *, grouped: bool = False) -> list[tuple[Any, ...]]:
        return list(self.connection.execute(sql, list(params)).fetchall())

    # ------------------------------------------------------------------ the fine and binned stages

    def fine_counts(self, codecs: list[Codec]) -> list[np.ndarray]:
        expressions = []
        for codec in codecs:
            params: list[Any] = []
            expressions.append((self.fine_code(codec, params), params))
        sizes = [codec.n_codes for codec in codecs]
        return self._streamed(expressions, sizes, [(k,) for k in range(len(codecs))], [c.name for c in codecs])

    def binned_counts(
        self,
        codecs: list[Codec],
        bins: list[np.ndarray],
        groups: list[tuple[int, ...]],
        sample: RowSample | None = None,
    ) -> list[np.ndarray]:
        used = sorted({column for group in groups for column in group})
        position = {column: k for k, column in enumerate(used)}
        expressions = []
        for column in used:
            lookup_params: list[Any] = []  # the lookup's parameter comes first in the expression, then the code's
            code_params: list[Any] = []
            code = self.fine_code(codecs[column], code_params)
            expressions.append((self._lookup(code, bins[column].tolist(), lookup_params), lookup_params + code_params))
        sizes = [int(bins[column].max()) + 1 for column in used]
        grouped = [tuple(position[column] for column in group) for group in groups]
        names = [codecs[column].name for column in used]
        return self._streamed(expressions, sizes, grouped, names, Reading(None if sample is None else (codecs, sample)))

    def _streamed(
        self,
        expressions: list[tuple[str, list[Any]]],
        sizes: list[int],
        groups: list[tuple[int, ...]],
        names: list[str],
        reading: Reading | None = None,
    ) -> list[np.ndarray]:
        """Every group's table of the codes ``expressions`` compute (each with its parameters),
        counted in this process from the codes DuckDB streams, one batch at a time (of the rows
        ``reading``'s sample keeps, if any)."""
        if not groups:
            return []
        columns = ", ".join(
            f"CAST({sql} AS {_code_type(size)}) AS c{k}"
            for k, ((sql, _), size) in enumerate(zip(expressions, sizes, strict=True))
        )
        params = [param for _, expression_params in expressions for param in expression_params]
        relation, kept = self._sampled(self.relation, reading or Reading())
        counter = TableCounter(sizes, groups)
        with contextlib.closing(self._batches(f"SELECT {columns} FROM {relation}", params + kept)) as batches:
            for batch in batches:
                codes = []
                for k, name in enumerate(names):
                    column = batch.column(k)
                    found = column.to_numpy() if column.null_count == 0 else None
                    if found is None or (len(found) and int(found.min()) < 0):
                        raise SchemaMismatchError(f"column {name!r} holds values its codec cannot encode")
                    codes.append(found)
                counter.add(codes)
        return counter.tables()

    def _batches(self, sql: str, params: list[Any]) -> Generator[pa.RecordBatch, None, None]:
        """The result of ``sql`` as Arrow batches of :data:`BATCH_ROWS` rows. A thread reads one
        batch ahead, so DuckDB computes the next batch's codes while the worker counts this one."""
        reader = self.connection.sql(sql, params=params).to_arrow_reader(batch_size=BATCH_ROWS)
        ready: queue.Queue[Any] = queue.Queue(maxsize=1)
        stop = threading.Event()
        done = object()

        def put(item: Any) -> bool:
            while not stop.is_set():
                try:
                    ready.put(item, timeout=0.1)
                    return True
                except queue.Full:
                    continue
            return False

        def produce() -> None:
            try:
                for batch in reader:
                    if not put(batch):
                        return
                put(done)
            except BaseException as error:  # handed to the reader of the batches, which raises it
                put(error)

        thread = threading.Thread(target=produce, name="synthgate-duckdb-codes", daemon=True)
        thread.start()
        try:
            while (item := ready.get()) is not done:
                if isinstance(item, BaseException):
                    raise item
                yield item
        finally:
            stop.set()
            thread.join()
            reader.close()

    def column_types(self) -> dict[str, str]:
        """Each column of the files and its DuckDB type (``DECIMAL(p,s)`` read as ``DECIMAL``)."""
        if self._types is None:
            rows = self._rows(f"DESCRIBE SELECT * FROM {self.view}")
            self._types = {str(row[0]): re.sub(r"\(.*\)$", "", str(row[1])) for row in rows}
        return self._types

    def _value(self, spec: ColumnSpec) -> str:
        """The value's column in :attr:`relation` (computed by :meth:`_raw_value`)."""
        return quote_identifier(f"synthgate_value_{[other.name for other in self.specs].index(spec.name)}")

    def _raw_value(self, spec: ColumnSpec) -> str:
        column = quote_identifier(spec.name)
        if spec.type == "datetime":
            # NumPy's whole seconds: nanoseconds as a double, over 1e9, floored (core.schema.numeric_values)
            return f"floor(CAST(epoch_ns({column}) AS DOUBLE) / CAST(1e9 AS DOUBLE))"
        if spec.is_numeric:
            return f"NULLIF(CAST({column} AS DOUBLE), CAST('NaN' AS DOUBLE))"
        if spec.type == "boolean":
            return column
        return f"NULLIF(CAST({column} AS VARCHAR), '')"

    def _search(self, expression: str, thresholds: list[float], params: list[Any]) -> str:
        """A balanced tree of comparisons: ``x < t[mid]`` leaves the thresholds below ``mid``,
        otherwise at least ``mid + 1`` of them are at most ``x``."""

        def tree(low: int, high: int) -> str:
            if low == high:
                return str(low)
            middle = (low + high) // 2
            return (
                f"CASE WHEN {expression} < {_double(thresholds[middle])} THEN {tree(low, middle)} "
                f"ELSE {tree(middle + 1, high)} END"
            )

        return tree(0, len(thresholds))

    def _position(self, value: str, values: list[str], params: list[Any]) -> str:
        params.append(values)
        return f"list_position(CAST(? AS VARCHAR[]), {value}) - 1"

    def _lookup(self, index: str, table: list[int], params: list[Any]) -> str:
        params.append(table)
        return f"(CAST(? AS INTEGER[]))[({index}) + 1]"

    def _outside(self, value: str, values: list[str], params: list[Any]) -> str:
        params.append(values)
        return f"NOT list_contains(CAST(? AS VARCHAR[]), {value})"

    def _number(self, value: float, params: list[Any]) -> str:
        return _double(value)

    def _rint(self, expression: str) -> str:
        return f"round_even(CAST({expression} AS DOUBLE), 0)"

    def _infinite(self, column: str) -> str:
        return f"isinf(CAST({column} AS DOUBLE))"

    # ------------------------------------------------------------------ a source by reference

    def row_text(self) -> str:
        """SQL for the text of a row's schema columns (the input of the checksum and the keyed hashes):
        a JSON list of the values as text, so a missing value and the text 'NULL' differ."""
        values = ", ".join(f"CAST({quote_identifier(spec.name)} AS VARCHAR)" for spec in self.specs)
        return f"CAST(to_json([{values}]) AS VARCHAR)"

    def checksum(self) -> tuple[int, str]:
        """The row count and an order-independent checksum of the schema's columns, computed in
        DuckDB: the sum of the first 60 bits of each row's MD5 (a change detector for the version's
        identity, not a security hash), as ``engines.postgres.table_checksum`` does."""
        found = self._rows(
            f"SELECT count(*), CAST(coalesce(sum(CAST('0x' || left(md5({self.row_text()}), 15) AS BIGINT)), 0) "
            f"AS VARCHAR) FROM {self.relation}"
        )[0]
        return int(found[0]), str(found[1])

    def holdout(self, seed: int, fraction: float) -> str:
        """SQL true for the rows of the holdout: a keyed hash of the row's text below ``fraction``
        (deterministic for a seed; identical rows fall on the same side)."""
        share = int(round(float(fraction) * 1_000_000))
        keyed = f"md5('{int(seed)}:' || {self.row_text()})"
        return f"((CAST('0x' || left({keyed}, 7) AS BIGINT) % 1000000) < {share})"

    def sample(self, where: str, *, seed: int, limit: int) -> pd.DataFrame:
        """At most ``limit`` rows matching ``where``, a random sample keyed by ``seed``, as a frame
        of the schema's columns (values as DuckDB returns them)."""
        columns = ", ".join(quote_identifier(spec.name) for spec in self.specs)
        order = f"md5('{int(seed)}:sample:' || {self.row_text()})"
        rows = self._rows(f"SELECT {columns} FROM {self.view} WHERE {where} ORDER BY {order} LIMIT {int(limit)}")
        return pd.DataFrame.from_records(rows, columns=[spec.name for spec in self.specs])

    def row_chunks(self, size: int) -> Iterator[list[tuple[Any, ...]]]:
        """The schema's columns, ``size`` rows at a time (DuckDB streams the result; the
        connection answers nothing else until the last chunk is read)."""
        columns = ", ".join(quote_identifier(spec.name) for spec in self.specs)
        result = self.connection.execute(f"SELECT {columns} FROM {self.relation}")
        while rows := result.fetchmany(size):
            yield rows
