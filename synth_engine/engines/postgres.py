"""Grouped counts computed in PostgreSQL: the rows of a table stay in the database.

:class:`PostgresCounts` answers the :class:`~synth_engine.generators.counts.CountSource` questions
with SQL over one table or view: the statements are :class:`~synth_engine.engines.sql.SqlCounts`'s
(the tables of a stage as ``GROUPING SETS``), in PostgreSQL's dialect (``width_bucket`` over the
public grid is ``searchsorted(..., side="right")``; category lists are ``array_position``). Only
the counts cross to the worker, which adds the noise.

Each row's codes are computed once a stage: the binned stage (1,225 tables at 50 columns) writes
them into a temporary table of the session (``smallint``, analyzed, rolled back at the end) and
counts its tables over it by blocks of columns, each block's codes packed in one integer key
(:func:`cover_groups`, :class:`PackedPart`: 388 grouping sets of one column for 1,176 groups at
50 columns, the label left out of the keys and counted by an aggregate a value, each group's
table summed from its block's in the worker); where no temporary table
can be made (a standby, a read-only transaction of the caller's) and for the other stages, one
statement holds the codes in a ``MATERIALIZED`` common table expression and counts every part
over it. Given ``connect``, a large table is counted by two connections at once, each over half
of its pages, in one snapshot, the worker adding up their counts (both cores of the server). The
counting settings are local to a transaction (or a savepoint of the caller's), so nothing is left
in the caller's session. What is left (docs/engines.md, "Packed blocks") is PostgreSQL's hash
lookup of every row in every set's table, about 100–200 ns each. Above MST's ``selection_rows``
threshold the scored tables are counted on the rows a ``RowSample`` keeps (the hash of every
column's fine code computed once a row in a fenced subquery of each range, ``sample_condition``).
A fit's questions (:meth:`PostgresCounts.fitting`) are counted on connections held for the whole
fit, in one snapshot, and its fine stage stores every row's fine codes in a temporary table of
each, which the binned stages read instead of computing the codes from the table again: the table
is read once for its codes, not three times.

:meth:`PostgresCounts.check` validates the table against the schema in the database before
anything is spent, with the same refusals as ``validate_frame`` for a frame (missing columns,
types, missing values in a non-nullable column, ±inf, fractions in an integer column, values
outside declared categories). Columns of the table that the schema does not name are never read.

The connection is any DB-API connection whose cursors take ``%s`` parameters (psycopg2, or
Django's connection wrapper around it).
"""

from __future__ import annotations

import contextlib
import functools
import logging
import secrets
import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np
import pandas as pd

from core.schema import ColumnSpec
from synth_engine.engines.sql import (
    GROUPING_ARGUMENTS,
    LOCALITY_COLUMNS,
    MAX_GROUPING_SETS,
    GroupingPart,
    Reading,
    SqlCounts,
    StoredCodes,
    column_name,
    fine_histograms,
    quote_identifier,
)
from synth_engine.generators.base import SchemaMismatchError
from synth_engine.generators.counts import RowSample
from synth_engine.generators.domain import Codec, parse_schema

logger = logging.getLogger(__name__)

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
    """The grouped counts of one PostgreSQL table or view, for the columns of ``schema``.

    ``connect`` (optional) opens another connection to the same database, configured like
    ``connection``: given it, a plain table of at least :attr:`split_pages` pages is counted by
    :attr:`splits` connections at once, each over its own range of the table's pages (``ctid``),
    and the worker adds up their counts. Each such connection takes ``connection``'s
    ``statement_timeout`` and ``lock_timeout``, and is closed when the stage is counted; when one
    statement fails the others are cancelled.
    """

    engine = "postgresql"
    accepted = ACCEPTED
    float_types = FLOAT_TYPES
    # Keeps the subquery from being flattened, so each code is computed once per row rather
    # than once per grouping set that names it.
    fence = " OFFSET 0"
    # Every row is looked up in the hash table of every set of a part: beyond a few tens of
    # thousands of cells in all they fall out of the cache (1,176 sets of 807,000 cells took 129 s
    # of the server's CPU at 100,000 rows in one statement, 19 s by 20,000 cells a part).
    max_cells = 20_000
    #: connections counting one stage at once (each a range of the table's pages), given ``connect``
    splits = 2
    #: the fewest pages (8 kB each) of a table counted by several connections
    split_pages = 1024
    #: each counting statement runs in a transaction of its own (or a savepoint of the caller's)
    #: with these settings, local to it: a large ``hash_mem_multiplier`` because the planner cannot
    #: tell how few groups a code has and would sort the input once per set (this lets it hash
    #: every set in one pass; the tables really are small: at most the product of a group's bins
    #: each; PostgreSQL spills to disk if not), and no JIT (compiling the statements' hundreds of
    #: expressions took longer than running them)
    settings: ClassVar[dict[str, str]] = {"hash_mem_multiplier": "1000", "jit": "off"}
    #: whether the binned stage may write its codes into a temporary table (else, or where none
    #: can be made, a common table expression holds them)
    temporary = True
    #: whether the binned stage counts blocks of columns, each block's codes packed in one integer
    #: key (a grouping set of one column), the blocks covering the groups (:func:`cover_groups`)
    #: and each group's table summed from its block's in the worker; else a set a group, by columns
    packed = True
    #: the most cells (the product of its columns' bins) of a block: a block's table is one hash
    #: table of the statement, and each row is looked up in it (measured at 1,000,000 × 50, the
    #: server's CPU for the stage: 98.5 s at 4,096 cells, 86.4–89.9 s at 8,192–16,384, 99.5–111.1 s
    #: at 65,536–131,072; larger tables fall out of the processor's cache)
    max_block_cells = 16_384
    #: the most cells of the blocks one statement counts
    max_packed_cells = 40_000
    #: a column every packed group names (MST's label) with at most this many bins is counted by
    #: one aggregate a value (``count(*) FILTER (WHERE label = j)``) of each block's cells rather
    #: than in their keys: each hash table holds a cell of the other columns, so a block of as many
    #: entries covers more groups (388 blocks instead of 497 at 50 columns); 0: none
    lead_bins = 4

    def __init__(
        self,
        connection: Any,
        table: str,
        schema: dict[str, Any],
        *,
        where: str | None = None,
        connect: Callable[[], Any] | None = None,
    ) -> None:
        super().__init__(schema)
        self.connection = connection
        self.connect = connect
        self.table = table
        self.label = f"table {table!r}"
        self.base = quote_relation(table)
        self.where = where
        # ``where`` (SQL built by this module, e.g. :func:`holdout_predicate`) restricts the counted rows.
        self.relation = f"(SELECT * FROM {self.base} WHERE {where}) AS source" if where else self.base
        self._types: dict[str, str] | None = None
        self._pages: int | None = None
        self._code_type = "smallint"
        #: how each stage's codes were counted, in order ("temporary table", "common table expression",
        #: "stored fine codes": a fit's fine stage storing its codes, a connection each)
        self.paths: list[str] = []
        #: while a fit counts (:meth:`fitting`): its connections, each in one transaction, and the
        #: fine codes stored in them
        self._fit: FitConnections | None = None

    def _rows(self, sql: str, params: Sequence[Any] = (), *, grouped: bool = False) -> list[tuple[Any, ...]]:
        """Run one statement (``grouped``: a counting statement, with :attr:`settings`)."""
        if grouped:
            return counted_rows(self.connection, sql, params, self.settings)
        with self.connection.cursor() as cursor:
            cursor.execute(sql, list(params))
            return list(cursor.fetchall())

    # ------------------------------------------------------------------ a fit's connections

    @contextlib.contextmanager
    def fitting(self) -> Iterator[None]:
        """The counts of one fit, from its first question to its last: where temporary tables can
        be made (:attr:`temporary`), the counting connections (``connection`` and, over a large
        table given ``connect``, one more a range of pages: :attr:`splits`) each count in one
        transaction for the whole fit, reading one snapshot (exported by ``connection``'s), and
        the fine stage stores every row's fine codes in a temporary table of each (its range's),
        which the binned stages then read instead of computing the codes from the table again
        (:meth:`fine_counts`). On exit, whatever the fit did (ended, failed, was interrupted), each
        transaction is rolled back (its temporary tables go with it) and the connections opened
        here are closed; ``connection`` is left as it was. Where no such transaction can be opened
        (a standby, a role without ``TEMPORARY``, a read-only transaction of the caller's), each
        stage is counted as outside a fit (:meth:`_count_parts`). A fitting inside another is the
        outer one's."""
        if self._fit is not None or not self.temporary:
            yield
            return
        self._fit = self._fit_opened()
        try:
            yield
        finally:
            fit, self._fit = self._fit, None
            if fit is not None:
                fit.close()

    def _fit_opened(self) -> FitConnections | None:
        """The fit's connections, each in the transaction it counts in and able to make temporary
        tables, with their ranges of pages; ``None``, with nothing left open, where ``connection``
        cannot. A connection that cannot be opened, set the snapshot or make a temporary table
        leaves its range to ``connection``."""
        ranges = self._page_ranges()
        bounds = waiting_bounds(self.connection)
        begun = fit_begun(self.connection, self.settings, export=len(ranges) > 1 and self.connect is not None)
        if begun is None:
            return None
        inside, snapshot = begun
        fit = FitConnections([FitConnection(self.connection, [ranges[0]], inside=inside)], whole=len(ranges) == 1)
        try:
            for at, (low, high) in enumerate(ranges[1:], start=1):
                assert self.connect is not None
                try:
                    other = self.connect()
                except Exception as error:  # noqa: BLE001 - counted by ``connection`` instead
                    logger.warning(
                        "counting on fewer connections: another could not be opened (%s)", type(error).__name__
                    )
                    fit.connections[0].ranges += ranges[at:]
                    break
                joined = fit_joined(other, self.settings, snapshot, bounds)
                if joined:
                    fit.connections.append(FitConnection(other, [(low, high)], opened=True))
                else:
                    fit.connections[0].ranges.append((low, high))
        except BaseException:
            fit.close()
            raise
        if len(ranges) > 1:
            self.paths.append("one snapshot" if snapshot is not None else "separate snapshots")
        return fit

    def _fit_relations(self, fit: FitConnections, reading: Reading) -> list[list[str]]:
        """The FROM items each of the fit's connections counts: its table of stored fine codes
        (``reading.stored``), else its ranges of the relation (the whole relation when it is not
        split)."""
        if reading.stored is not None:
            return [[reading.stored.table] for _ in fit.connections]
        if fit.whole:
            return [[self.relation]]
        return [[self._range_relation(low, high) for low, high in counter.ranges] for counter in fit.connections]

    def fine_counts(self, codecs: list[Codec]) -> list[np.ndarray]:
        """Each column's fine codes counted; in a fit (:meth:`fitting`), every row's codes are
        first stored in a temporary table of each counting connection (its range's rows, ``smallint``
        where a column has fewer than 32,767 codes, else ``integer``; analyzed) and counted from
        it: the later binned stages of the fit read them there."""
        fit = self._fit
        if fit is None:
            return super().fine_counts(codecs)
        stored = self._fine_codes_stored(fit, codecs)
        selected: list[tuple[str, list[Any]]] = [(column, []) for column in stored.columns]
        rows = self._grouped(selected, [(k,) for k in range(len(codecs))], reading=Reading(stored=stored))
        return fine_histograms(codecs, rows)

    def _fine_codes_stored(self, fit: FitConnections, codecs: list[Codec]) -> StoredCodes:
        """Every row's fine codes, stored in a temporary table of each of the fit's connections
        (the same name in each session), filled from its ranges at once."""
        expressions: list[tuple[str, list[Any]]] = []
        for codec in codecs:
            params: list[Any] = []
            expressions.append((self.fine_code(codec, params), params))
        stored = StoredCodes(
            f"synthgate_fine_{secrets.token_hex(4)}", [f"f{k}" for k in range(len(codecs))], expressions
        )
        kinds = ["smallint" if codec.n_codes < 32767 else "integer" for codec in codecs]
        create = (
            f"CREATE TEMPORARY TABLE {stored.table} ("
            + ", ".join(f"{column} {kind}" for column, kind in zip(stored.columns, kinds, strict=True))
            + ")"
        )
        codes = ", ".join(f"CAST({sql} AS {kind})" for (sql, _), kind in zip(expressions, kinds, strict=True))
        params = [param for _, expression_params in expressions for param in expression_params]
        relations = self._fit_relations(fit, Reading())
        previous = fit.stored

        def store(k: int, connection: Any) -> None:
            with connection.cursor() as cursor:
                if previous is not None:
                    cursor.execute(f"DROP TABLE IF EXISTS {previous.table}")
                cursor.execute(create)
                for relation in relations[k]:
                    cursor.execute(f"INSERT INTO {stored.table} SELECT {codes} FROM {relation}", params)
                cursor.execute(f"ANALYZE {stored.table}")

        fit.stored = None
        run_at_once(
            [counter.connection for counter in fit.connections],
            [[functools.partial(store, k)] for k in range(len(fit.connections))],
        )
        fit.stored = stored
        self.paths += ["stored fine codes"] * len(fit.connections)
        return stored

    def _stored_for(self, codecs: list[Codec]) -> StoredCodes | None:
        """The fit's stored fine codes when they are those of ``codecs`` (the same SQL, the same
        parameters: the same codes), else ``None`` (computed from the table)."""
        stored = None if self._fit is None else self._fit.stored
        if stored is None or len(codecs) != len(stored.expressions):
            return None
        for codec, expression in zip(codecs, stored.expressions, strict=True):
            params: list[Any] = []
            if (self.fine_code(codec, params), params) != expression:
                return None
        return stored

    # ------------------------------------------------------------------ the binned stage

    def binned_counts(
        self,
        codecs: list[Codec],
        bins: list[np.ndarray],
        groups: list[tuple[int, ...]],
        sample: RowSample | None = None,
    ) -> list[np.ndarray]:
        """As :meth:`SqlCounts.binned_counts`; in a fit that stored the fine codes of ``codecs``,
        every code (and the sample's hash) is read from them."""
        # the type of the temporary table's codes: smallint unless a column has more bins than it holds
        self._code_type = "smallint" if max((int(b.max()) for b in bins), default=0) < 32767 else "integer"
        reading = Reading(None if sample is None else (codecs, sample), self._stored_for(codecs))
        return self._enclosed_tables(codecs, bins, groups, reading)

    def _binned_tables(
        self, codecs: list[Codec], bins: list[np.ndarray], groups: list[tuple[int, ...]], reading: Reading
    ) -> list[np.ndarray]:
        """Each group's table: with :attr:`packed`, the groups whose cells fit in a block are
        covered by blocks (:func:`cover_groups`), each block counted as one packed integer key a
        row and each group's table summed from its block's; the others (a group naming a column
        twice, or whose own cells exceed :attr:`max_block_cells`) by their columns."""
        sizes = [int(b.max()) + 1 for b in bins]
        distinct = [g for g, group in enumerate(groups) if self.packed and len(set(group)) == len(group)]
        lead = lead_column([groups[g] for g in distinct], sizes, self.lead_bins)
        keyed = {g: tuple(c for c in groups[g] if c != lead) for g in distinct}
        fits = [g for g in distinct if keyed[g] and cells_of(keyed[g], sizes) <= self.block_bound]
        rest = [g for g in range(len(groups)) if g not in set(fits)]
        tables: dict[int, np.ndarray] = {}
        if rest:
            counted = super()._binned_tables(codecs, bins, [groups[g] for g in rest], reading)
            tables.update(zip(rest, counted, strict=True))
        if fits:
            blocks, holder = cover_groups([keyed[g] for g in fits], sizes, self.block_bound)
            block_tables = self._block_tables(codecs, bins, sizes, blocks, reading, lead)
            head = () if lead is None else (lead,)
            for g, b in zip(fits, holder, strict=True):
                tables[g] = marginal(block_tables[b], head + blocks[b], groups[g])
        return [tables[g] for g in range(len(groups))]

    @property
    def block_bound(self) -> int:
        """The most cells of a block: :attr:`max_block_cells`, and a packed key is an ``integer``."""
        return min(int(self.max_block_cells), 2**31 - 1)

    def _block_tables(
        self,
        codecs: list[Codec],
        bins: list[np.ndarray],
        sizes: list[int],
        blocks: list[tuple[int, ...]],
        reading: Reading,
        lead: int | None = None,
    ) -> list[np.ndarray]:
        """Each block's table (shape: its columns' bins, after the ``lead`` column's when given:
        counted by one aggregate a value of it rather than in the key), counted in statements of
        at most :attr:`max_packed_cells` cells and :attr:`max_sets` blocks."""
        used = sorted({column for block in blocks for column in block} | ({lead} if lead is not None else set()))
        position = {column: k for k, column in enumerate(used)}
        selected = self.binned_codes(codecs, bins, used, reading.stored)
        cells = [cells_of(block, sizes) for block in blocks]
        # blocks of nearby columns together, so that a statement names fewer columns
        order = sorted(range(len(blocks)), key=lambda b: tuple(sorted(c // LOCALITY_COLUMNS for c in blocks[b])))
        parts: list[list[int]] = []
        for b in order:
            if (
                parts
                and len(parts[-1]) < self.max_sets
                and sum(cells[x] for x in parts[-1]) + cells[b] <= self.max_packed_cells
            ):
                parts[-1].append(b)
            else:
                parts.append([b])
        counted = self._count_parts(
            selected,
            [
                PackedPart(
                    [tuple(position[c] for c in blocks[b]) for b in part],
                    [tuple(sizes[c] for c in blocks[b]) for b in part],
                    lead=None if lead is None else (position[lead], sizes[lead]),
                    check_lead=p == 0,
                )
                for p, part in enumerate(parts)
            ],
            reading,
        )
        head = () if lead is None else (sizes[lead],)
        tables: list[np.ndarray] = [np.empty(0)] * len(blocks)
        for part, found in zip(parts, counted, strict=True):
            for b, flat in zip(part, found, strict=True):
                tables[b] = flat.reshape(head + tuple(sizes[c] for c in blocks[b]))
        return tables

    def _count_parts(
        self,
        selected: list[tuple[str, list[Any]]],
        parts: Sequence[GroupingPart | PackedPart],
        reading: Reading,
    ) -> list[Any]:
        """Every part of a stage, the codes of each row computed once.

        The binned stage (``integer_keys``: many parts) writes the codes into a temporary table of
        the session (``smallint`` columns, analyzed so that the planner knows how few values each
        holds and sizes each set's hash table to it), counts each part over it, and drops it (the
        transaction, or the savepoint of the caller's, is rolled back: it only read). Where no
        temporary table can be made (a standby, a role without ``TEMPORARY``, a read-only
        transaction of the caller's) and for the other stages, one statement counts all parts:
        the codes in a ``MATERIALIZED`` common table expression, then one ``GROUP BY GROUPING
        SETS`` a part over it (``UNION ALL``, each row tagged with its part). Over a large table
        and given ``connect``, each range of pages is counted on a connection of its own, at once,
        and the counts are added up. In a fit (:meth:`fitting`) the fit's connections count, each
        in a savepoint of its transaction, its ranges or (``reading.stored``) its stored fine
        codes, read as they are (a statement a part over the table: no copy of it)."""
        if len(parts) > 1 and not parts[0].integer_keys:  # keys of different types: a statement a part
            return [counted for part in parts for counted in self._count_parts(selected, [part], reading)]
        used = sorted({k for part in parts for k in part.used})
        params = [param for k in used for param in selected[k][1]]
        width = max(len(part.chunks) for part in parts)
        keys = max(len(part.used) for part in parts)
        fit = self._fit
        if fit is not None:
            relations = self._fit_relations(fit, reading)
        else:
            ranges = self._page_ranges()
            whole = len(ranges) <= 1
            relations = [[self.relation] if whole else [self._range_relation(low, high) for low, high in ranges]]
        if reading.sample is not None:  # each range's rows the sample keeps (the same parameters each)
            sampled = [[self._sampled(relation, reading) for relation in group] for group in relations]
            relations = [[relation for relation, _ in group] for group in sampled]
            params += sampled[0][0][1]

        temporary = parts[0].integer_keys and self.temporary

        def count(connection: Any, relation: str, inside: bool = False) -> list[tuple[Any, ...]]:
            # inside: in a transaction already open on the connection (one snapshot shared by the
            # counting connections), counted in a savepoint of it
            if temporary:
                table = f"synthgate_codes_{secrets.token_hex(4)}"
                create = (
                    f"CREATE TEMPORARY TABLE {table} ("
                    + ", ".join(f"{column_name(k)} {self._code_type}" for k in used)
                    + ")"
                )
                codes = ", ".join(f"CAST({selected[k][0]} AS {self._code_type})" for k in used)
                fill = f"INSERT INTO {table} SELECT {codes} FROM {relation}"
                statements = [part.select(table, tag=str(p), width=width, keys=keys) for p, part in enumerate(parts)]
                rows = table_counted_rows(
                    connection, table, create, fill, params, statements, self.settings, inside=inside
                )
                if rows is not None:
                    self.paths.append("temporary table")
                    return rows
            inner = ", ".join(f"{selected[k][0]} AS {column_name(k)}" for k in used)
            if reading.stored is not None and len(parts) == 1:  # stored codes: read in place, not copied
                sql = parts[0].select(f"(SELECT {inner} FROM {relation}) AS coded", tag="0", width=width, keys=keys)
                self.paths.append("stored table")
                return counted_rows(connection, sql, params, self.settings, inside=inside)
            branches = " UNION ALL ".join(
                part.select("coded", tag=str(p), width=width, keys=keys) for p, part in enumerate(parts)
            )
            sql = f"WITH coded AS MATERIALIZED (SELECT {inner} FROM {relation}) {branches}"
            self.paths.append("common table expression")
            return counted_rows(connection, sql, params, self.settings, inside=inside)

        add = not isinstance(parts[0], PackedPart)  # a packed part adds up its own rows
        if fit is not None:
            found = run_at_once(
                [counter.connection for counter in fit.connections],
                [
                    [functools.partial(count, relation=relation, inside=True) for relation in group]
                    for group in relations
                ],
            )
            results = [rows for done in found for rows in done]
            rows = summed(results) if add else [row for counted in results for row in counted or ()]
        elif len(relations[0]) == 1:
            rows = count(self.connection, relations[0][0])
        else:
            rows = self._counted_at_once(
                [functools.partial(count, relation=relation) for relation in relations[0]], write=temporary, add=add
            )
        by_part: list[list[tuple[Any, ...]]] = [[] for _ in parts]
        for row in rows:
            by_part[int(row[0])].append(row[1:])
        return [part.read(found, width=width) for part, found in zip(parts, by_part, strict=True)]

    def _page_ranges(self) -> list[tuple[int, int | None]]:
        """The ranges of pages counted by a connection each (one range: the whole relation)."""
        if self.connect is None or self.splits < 2:
            return [(0, None)]
        if self._pages is None:
            # a plain or materialized table's pages (a view, a partitioned or foreign table: 0)
            found = self._rows(
                "SELECT CASE WHEN c.relkind IN ('r', 'm') AND current_setting('server_version_num')::int >= 140000 "
                "THEN pg_relation_size(c.oid) / current_setting('block_size')::bigint ELSE 0 END "
                "FROM pg_class AS c WHERE c.oid = to_regclass(%s)",
                [self.base],
            )
            self._pages = int(found[0][0]) if found and found[0][0] is not None else 0
        if self._pages < max(self.split_pages, self.splits):
            return [(0, None)]
        cuts = [self._pages * k // self.splits for k in range(self.splits)]
        return [(low, high) for low, high in zip(cuts, [*cuts[1:], None], strict=True)]

    def _range_relation(self, low: int, high: int | None) -> str:
        """The relation restricted to the rows on pages ``low`` up to (not including) ``high``
        (the last range: every later page, so rows added since the pages were measured count)."""
        conditions = [f"ctid >= '({int(low)},0)'::tid"]
        if high is not None:
            conditions.append(f"ctid < '({int(high)},0)'::tid")
        if self.where:
            conditions.append(f"({self.where})")
        return f"(SELECT * FROM {self.base} WHERE {' AND '.join(conditions)}) AS source"

    def _counted_at_once(
        self, counts: list[Callable[..., list[tuple[Any, ...]]]], *, write: bool, add: bool = True
    ) -> list[tuple[Any, ...]]:
        """Run each count on a connection of its own (the first on ``connection``), at once, and
        add up the counts of rows with the same tag, masks and keys.

        All of them read one snapshot: ``connection`` opens a ``REPEATABLE READ`` transaction
        (read-write when ``write``: a temporary table is no write to the data) and exports its
        snapshot, which each other connection sets before any statement, so rows committed by
        another session meanwhile count in no range or in all. Where the snapshot cannot be
        exported (a caller's transaction on ``connection``, a server that refuses) each range is
        counted in its own snapshot (``paths``: "separate snapshots"); a connection that cannot
        set it leaves its range to ``connection``. Where another connection cannot be opened (the
        server's connection limit, say), the counts run one after another on ``connection``, in
        its snapshot."""
        assert self.connect is not None
        bounds = waiting_bounds(self.connection)
        others: list[Any] = []
        began = False  # a transaction of ours is open on ``connection``
        try:
            snapshot, began = export_snapshot(self.connection, write=write)
            try:
                for _ in counts[1:]:
                    other = self.connect()
                    others.append(other)
                    bounds_taken(other, bounds)  # autocommit: each count opens its transaction
            except Exception as error:  # noqa: BLE001 - counted on one connection instead
                logger.warning("counting on one connection: another could not be opened (%s)", type(error).__name__)
                for other in others:
                    with contextlib.suppress(Exception):
                        other.close()
                others = []
            # each connection's counts; in a shared snapshot, a connection that cannot set it
            # leaves its count to ``connection``
            connections = [self.connection, *others]
            assigned: list[list[int]] = [[0]] + [[k] for k in range(1, len(connections))]
            if not others:
                assigned = [list(range(len(counts)))]
            elif snapshot is not None:
                for k, other in enumerate(others, start=1):
                    if not import_snapshot(other, snapshot, write=write):
                        assigned[0] += assigned[k]
                        assigned[k] = []
            self.paths.append("one snapshot" if snapshot is not None else "separate snapshots")
            inside = snapshot is not None and began
            # connection 0 in a caller's transaction counts in savepoints of it; the others in the
            # transaction that holds the snapshot
            found = run_at_once(
                connections,
                [
                    [
                        functools.partial(counts[c], inside=inside if k == 0 else snapshot is not None)
                        for c in assigned[k]
                    ]
                    for k in range(len(connections))
                ],
            )
            results: list[list[tuple[Any, ...]] | None] = [None] * len(counts)
            for k, done in enumerate(found):
                for c, rows in zip(assigned[k], done, strict=True):
                    results[c] = rows
        finally:
            if began:
                with contextlib.suppress(Exception), self.connection.cursor() as cursor:
                    cursor.execute("ROLLBACK")
            for other in others:
                with contextlib.suppress(Exception):
                    other.close()
        return summed(results) if add else [row for rows in results for row in rows or ()]

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


def summed(results: list[list[tuple[Any, ...]] | None]) -> list[tuple[Any, ...]]:
    """Rows of several counts of the same statement over disjoint rows, their counts added up by
    the rest of the row (each list is let go once read)."""
    total: dict[tuple[Any, ...], int] = {}
    for k, rows in enumerate(results):
        for row in rows or ():
            key = tuple(row[:-1])
            total[key] = total.get(key, 0) + int(row[-1])
        results[k] = None
    return [(*key, count) for key, count in total.items()]


def table_counted_rows(
    connection: Any,
    table: str,
    create: str,
    fill: str,
    params: Sequence[Any],
    statements: list[str],
    settings: dict[str, str],
    *,
    inside: bool = False,
) -> list[tuple[Any, ...]] | None:
    """Create the temporary ``table`` (``create``), fill it (``fill``, with ``params``), analyze
    it and return the rows of every counting statement over it; ``None``, with nothing done, when
    the connection cannot create it (a standby, no ``TEMPORARY`` privilege, a read-only
    transaction of the caller's). All in a transaction of its own (on an autocommit connection:
    read-write, whatever the session's default, as a temporary table is no write to the data) or
    a savepoint of the caller's, rolled back at the end: the table and the settings go with it.
    ``inside``: a transaction is already open on the connection (an autocommit one's too): a
    savepoint of it."""
    autocommit = bool(getattr(connection, "autocommit", False)) and not inside
    begin = "BEGIN READ WRITE" if autocommit else "SAVEPOINT synthgate_counts"

    def undo(cursor: Any) -> None:
        with contextlib.suppress(Exception):
            cursor.execute("ROLLBACK" if autocommit else "ROLLBACK TO SAVEPOINT synthgate_counts")
            if not autocommit:
                cursor.execute("RELEASE SAVEPOINT synthgate_counts")

    with connection.cursor() as cursor:
        try:
            cursor.execute(begin)
            cursor.execute(create)
        except Exception:  # noqa: BLE001 - no temporary table here: the caller counts another way
            undo(cursor)
            return None
        try:
            for name, value in settings.items():
                cursor.execute("SELECT set_config(%s, %s, true)", [name, value])
            cursor.execute(fill, list(params))
            cursor.execute(f"ANALYZE {table}")
            rows: list[tuple[Any, ...]] = []
            for sql in statements:
                cursor.execute(sql)
                rows += cursor.fetchall()
        finally:
            undo(cursor)
        return rows


def counted_rows(
    connection: Any, sql: str, params: Sequence[Any], settings: dict[str, str], *, inside: bool = False
) -> list[tuple[Any, ...]]:
    """Run a counting statement with ``settings`` local to it: in a transaction of its own on an
    autocommit connection, else (or ``inside`` a transaction already open on it) in a savepoint
    of the open transaction that is rolled back after (it only read), so no setting outlives the
    statement either way."""
    autocommit = bool(getattr(connection, "autocommit", False)) and not inside
    with connection.cursor() as cursor:
        cursor.execute("BEGIN" if autocommit else "SAVEPOINT synthgate_counts")
        try:
            for name, value in settings.items():
                cursor.execute("SELECT set_config(%s, %s, true)", [name, value])
            cursor.execute(sql, list(params))
            rows = list(cursor.fetchall())
        except BaseException:
            with contextlib.suppress(Exception):
                cursor.execute("ROLLBACK" if autocommit else "ROLLBACK TO SAVEPOINT synthgate_counts")
                if not autocommit:
                    cursor.execute("RELEASE SAVEPOINT synthgate_counts")
            raise
        if autocommit:
            cursor.execute("COMMIT")
        else:
            cursor.execute("ROLLBACK TO SAVEPOINT synthgate_counts")
            cursor.execute("RELEASE SAVEPOINT synthgate_counts")
        return rows


REPEATABLE_READ = "BEGIN ISOLATION LEVEL REPEATABLE READ"
#: the savepoint of a caller's transaction that a fit counts in (rolled back to when it ends)
FIT_SAVEPOINT = "synthgate_fit"
#: the shortest bound (ms) on an idle transaction a fit's transactions keep: they wait, idle, while
#: the worker computes between stages (seconds at 10 M rows), and a server's shorter
#: ``idle_in_transaction_session_timeout`` would end them mid-fit; raised to this for them only
#: (a bound still, so a session the worker left behind ends; none, 0, is kept)
FIT_IDLE_MS = 600_000


@dataclass
class FitConnection:
    """One connection counting a fit, in its transaction for the whole fit, and the ranges of
    pages it counts (``(0, None)``: from the first page on)."""

    connection: Any
    ranges: list[tuple[int, int | None]]
    #: opened for the fit (closed when it ends), else the caller's
    opened: bool = False
    #: the fit's transaction is a savepoint of the caller's transaction on it
    inside: bool = False


@dataclass
class FitConnections:
    """The connections of one fit (the caller's first) and the fine codes stored in each."""

    connections: list[FitConnection]
    #: one connection counts the whole relation (not split into ranges of pages)
    whole: bool
    stored: StoredCodes | None = None
    closed: bool = field(default=False, repr=False)

    def close(self) -> None:
        """End the fit on every connection: its transaction rolled back (the temporary tables,
        the settings go with it), the connections opened for it closed (their sessions end), the
        caller's left as it was. Never raises."""
        if self.closed:
            return
        self.closed = True
        for counter in self.connections:
            ended = fit_ended(counter.connection, inside=counter.inside)
            if counter.opened:
                with contextlib.suppress(Exception):
                    counter.connection.close()
            elif not ended:  # a broken connection: its session (and its temporary tables) is gone or going
                logger.warning("the caller's connection could not end the fit's transaction")


def fit_begun(
    connection: Any, settings: dict[str, str], *, export: bool = False, snapshot: str | None = None
) -> tuple[bool, str | None] | None:
    """Open the transaction a fit counts in on ``connection``: on an autocommit connection a
    ``REPEATABLE READ``, read-write one (a temporary table is no write to the data) that sets
    ``snapshot`` when given, or (``export``) exports its own; else a savepoint of the caller's
    transaction. The counting ``settings`` are local to it, and so is a server's bound on idle
    transactions shorter than :data:`FIT_IDLE_MS`, raised to it. Returns whether it is a savepoint and
    the exported snapshot (``None``: none), or ``None`` with nothing left open where no temporary
    table can be made in it (a standby, a role without ``TEMPORARY``, a read-only transaction of
    the caller's) or the snapshot cannot be set."""
    inside = not getattr(connection, "autocommit", False)
    exported: str | None = None
    with connection.cursor() as cursor:
        try:
            if inside:
                cursor.execute(f"SAVEPOINT {FIT_SAVEPOINT}")
            else:
                cursor.execute(f"{REPEATABLE_READ} READ WRITE")
                if snapshot is not None:
                    cursor.execute("SET TRANSACTION SNAPSHOT %s", [snapshot])
                elif export:
                    try:
                        cursor.execute("SELECT pg_export_snapshot()")
                        exported = str(cursor.fetchone()[0])
                    except Exception:  # noqa: BLE001 - each connection in a snapshot of its own
                        cursor.execute("ROLLBACK")
                        cursor.execute(f"{REPEATABLE_READ} READ WRITE")
            probe = f"synthgate_probe_{secrets.token_hex(4)}"
            cursor.execute(f"CREATE TEMPORARY TABLE {probe} ()")
            cursor.execute(f"DROP TABLE {probe}")
            for name, value in settings.items():
                cursor.execute("SELECT set_config(%s, %s, true)", [name, value])
            cursor.execute(
                "SELECT set_config('idle_in_transaction_session_timeout', %s, true) FROM pg_settings "
                "WHERE name = 'idle_in_transaction_session_timeout' AND setting::bigint BETWEEN 1 AND %s",
                [str(FIT_IDLE_MS), FIT_IDLE_MS - 1],
            )
        except Exception:  # noqa: BLE001 - no fit's transaction here: counted stage by stage
            fit_ended(connection, inside=inside)
            return None
    return inside, exported


def waiting_bounds(connection: Any) -> tuple[str, str]:
    """``connection``'s ``statement_timeout`` and ``lock_timeout``: the bounds on waiting every
    connection counting for it takes (:func:`bounds_taken`)."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT current_setting('statement_timeout'), current_setting('lock_timeout')")
        statement_timeout, lock_timeout = cursor.fetchone()
    return str(statement_timeout), str(lock_timeout)


def bounds_taken(connection: Any, bounds: tuple[str, str]) -> None:
    """Make ``connection`` (opened to count for another) autocommit, so that the counting opens
    its own transactions, with the other's bounds on waiting (:func:`waiting_bounds`) for its session."""
    if not getattr(connection, "autocommit", True):
        connection.rollback()
        connection.autocommit = True
    statement_timeout, lock_timeout = bounds
    with connection.cursor() as cursor:
        cursor.execute("SELECT set_config('statement_timeout', %s, false)", [statement_timeout])
        cursor.execute("SELECT set_config('lock_timeout', %s, false)", [lock_timeout])


def fit_joined(connection: Any, settings: dict[str, str], snapshot: str | None, bounds: tuple[str, str]) -> bool:
    """Make ``connection`` (opened for the fit) count in it: autocommit, the caller's bounds on
    waiting (:func:`bounds_taken`), its fit's transaction begun in ``snapshot`` (``None``: a
    snapshot of its own); ``False``, the connection closed, where it cannot."""
    try:
        bounds_taken(connection, bounds)
        if fit_begun(connection, settings, snapshot=snapshot) is not None:
            return True
    except Exception as error:  # noqa: BLE001 - its range is counted by the caller's connection
        logger.warning("a counting connection could not join the fit (%s)", type(error).__name__)
    with contextlib.suppress(Exception):
        connection.close()
    return False


def fit_ended(connection: Any, *, inside: bool) -> bool:
    """Roll back a fit's transaction on ``connection`` (``inside``: to its savepoint of the
    caller's transaction, then released); whether it could."""
    try:
        with connection.cursor() as cursor:
            if inside:
                cursor.execute(f"ROLLBACK TO SAVEPOINT {FIT_SAVEPOINT}")
                cursor.execute(f"RELEASE SAVEPOINT {FIT_SAVEPOINT}")
            else:
                cursor.execute("ROLLBACK")
        return True
    except Exception:  # noqa: BLE001 - the caller closes the connection
        return False


def run_at_once(connections: list[Any], work: list[list[Callable[[Any], Any]]]) -> list[list[Any]]:
    """Run each of ``work[k]``'s calls on ``connections[k]`` (in order), the connections at once:
    the first here, each other on a thread of its own. When a call fails (or is interrupted) the
    statements running on the other connections are cancelled, no further call starts, and the
    first error is raised once every thread has stopped. Each call's result, by connection."""
    results: list[list[Any]] = [[None] * len(calls) for calls in work]
    errors: list[BaseException] = []

    def run(k: int) -> None:
        for i, call in enumerate(work[k]):
            if errors:  # another failed before this one started
                return
            try:
                results[k][i] = call(connections[k])
            except BaseException as error:  # noqa: BLE001 - re-raised below, after the others stop
                errors.append(error)
                for j, other in enumerate(connections):
                    if j != k:
                        cancel(other)
                return

    threads = [threading.Thread(target=run, args=(k,), daemon=True) for k in range(1, len(connections)) if work[k]]
    for thread in threads:
        thread.start()
    try:
        run(0)
    finally:
        for thread in threads:
            thread.join()
    if errors:
        raise errors[0]
    return results


def export_snapshot(connection: Any, *, write: bool) -> tuple[str | None, bool]:
    # A caller's transaction is not exported from: pg_export_snapshot refuses in a subtransaction
    # (a savepoint, Django's nested atomic blocks), and its error would abort the caller's
    # transaction; a READ COMMITTED one (the default) reads a new snapshot a statement anyway.
    """The snapshot of a ``REPEATABLE READ`` transaction on ``connection``, exported for other
    connections to set (``pg_export_snapshot``), and whether that transaction was opened here
    (the caller rolls it back once they have set it and counted). The connection is an autocommit
    one; the transaction is opened here, read-write when ``write`` and the server allows it.
    ``(None, False)``, with nothing left open, where there is none to share: a caller's
    transaction on the connection, or a server that refuses to export."""
    if not getattr(connection, "autocommit", False):
        return None, False
    with connection.cursor() as cursor:
        for begin in [f"{REPEATABLE_READ} READ WRITE"] * write + [REPEATABLE_READ]:
            try:
                cursor.execute(begin)
                cursor.execute("SELECT pg_export_snapshot()")
                return str(cursor.fetchone()[0]), True
            except Exception:  # noqa: BLE001 - read-only, or each range in a snapshot of its own
                with contextlib.suppress(Exception):
                    cursor.execute("ROLLBACK")
    return None, False


def import_snapshot(connection: Any, snapshot: str, *, write: bool) -> bool:
    """Open a ``REPEATABLE READ`` transaction on ``connection`` (an autocommit one) that reads
    ``snapshot`` (``SET TRANSACTION SNAPSHOT``, before any statement), read-write when ``write``
    and allowed; ``False``, with nothing left open, where it cannot."""
    with connection.cursor() as cursor:
        for begin in [f"{REPEATABLE_READ} READ WRITE"] * write + [REPEATABLE_READ]:
            try:
                cursor.execute(begin)
                cursor.execute("SET TRANSACTION SNAPSHOT %s", [snapshot])
                return True
            except Exception:  # noqa: BLE001 - its range is counted by the exporting connection
                with contextlib.suppress(Exception):
                    cursor.execute("ROLLBACK")
    return False


def cancel(connection: Any) -> None:
    """Ask the server to cancel the connection's running statement (a psycopg2 connection, or a
    wrapper around one); nothing if there is none."""
    target = connection if hasattr(connection, "cancel") else getattr(connection, "connection", None)
    with contextlib.suppress(Exception):
        if target is not None:
            target.cancel()


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


def cells_of(columns: Sequence[int], sizes: list[int]) -> int:
    """The cells of a table of ``columns`` (the product of their bins; a Python integer, exact)."""
    total = 1
    for column in columns:
        total *= sizes[column]
    return total


def cover_groups(
    groups: list[tuple[int, ...]], sizes: list[int], bound: int
) -> tuple[list[tuple[int, ...]], list[int]]:
    """Blocks of columns that cover ``groups`` (each group's columns all lie in one block), each
    of at most ``bound`` cells, and for each group the block holding it.

    Greedy: a group not yet covered starts a block, which takes, one at a time, the column that
    completes the most uncovered groups (the one with fewer bins on a tie) while the block's cells
    stay within ``bound``. MST's 1,176 (label, a, b) groups of ``bench_scale.py``'s 50 columns
    and 16,384 cells: 497 blocks, most (label, a, b) or (label, a, b, c). Each group must have distinct columns and at
    most ``bound`` cells itself."""
    keys = [frozenset(group) for group in groups]
    holding: dict[int, list[int]] = {}
    for g, key in enumerate(keys):
        for column in key:
            holding.setdefault(column, []).append(g)
    # for each group and one of its columns, the group's other columns
    rest = [{column: key - {column} for column in key} for key in keys]
    holder = [-1] * len(groups)
    blocks: list[tuple[int, ...]] = []
    for g, group in enumerate(groups):
        if holder[g] >= 0:
            continue
        block, members, cells = list(group), set(group), cells_of(group, sizes)
        while True:
            best: tuple[int, int, int] | None = None  # (gain, -bins, column)
            for column, held in holding.items():
                if column in members or cells * sizes[column] > bound:
                    continue
                gain = sum(1 for h in held if holder[h] < 0 and rest[h][column] <= members)
                if gain and (best is None or (gain, -sizes[column]) > best[:2]):
                    best = (gain, -sizes[column], column)
            if best is None:
                break
            block.append(best[2])
            members.add(best[2])
            cells *= sizes[best[2]]
        b = len(blocks)
        blocks.append(tuple(block))
        for column in block:
            for h in holding[column]:
                if holder[h] < 0 and keys[h] <= members:
                    holder[h] = b
    return blocks, holder


def lead_column(groups: list[tuple[int, ...]], sizes: list[int], most: int) -> int | None:
    """The column every one of ``groups`` names with the fewest bins, if it has at most ``most``
    (at least 2) and some group names another column; else ``None``."""
    if not groups or most < 2 or all(len(group) < 2 for group in groups):
        return None
    common = set(groups[0]).intersection(*groups[1:])
    fitting = [c for c in common if 2 <= sizes[c] <= most]
    return min(fitting, key=lambda c: (sizes[c], c)) if fitting else None


def marginal(table: np.ndarray, block: tuple[int, ...], group: tuple[int, ...]) -> np.ndarray:
    """The table of ``group`` (its columns in its order) summed from a table of ``block``."""
    summed_ = table.sum(axis=tuple(i for i, c in enumerate(block) if c not in group))
    remaining = [c for c in block if c in group]
    return np.ascontiguousarray(np.transpose(summed_, [remaining.index(c) for c in group]), dtype=np.int64)


class PackedPart:
    """Blocks of coded columns counted in one statement, each block's codes packed in one integer
    key (``((c1 * s2 + c2) * s3 + c3) ...``, its bins' sizes ``s``: the block's cell, in C order),
    so that each grouping set is one integer column. The statement returns one row a block: its
    ``GROUPING()`` masks (31 keys each), its keys and their counts as two texts (a block's table
    holds up to tens of thousands of cells: one row each would be a Python tuple each in the
    worker), with the missing cells left out."""

    integer_keys = True

    def __init__(
        self,
        blocks: list[tuple[int, ...]],
        sizes: list[tuple[int, ...]],
        *,
        lead: tuple[int, int] | None = None,
        check_lead: bool = False,
    ) -> None:
        #: ``lead`` (coded column, bins): counted by an aggregate a value, its table's first axis;
        #: ``check_lead``: one more set, the lead column alone, so that a value its bins cannot
        #: code (a NULL code, in no key) is refused as in a key
        self.lead = lead
        self.lead_set = lead is not None and check_lead
        self.blocks = [*blocks, (lead[0],)] if lead is not None and check_lead else list(blocks)
        self.sizes = [*sizes, (lead[1],)] if lead is not None and check_lead else list(sizes)
        self.cells = [int(np.prod(size, dtype=np.int64)) for size in self.sizes]
        #: the coded columns the blocks name
        self.used = sorted({k for block in self.blocks for k in block} | ({lead[0]} if lead is not None else set()))
        self.chunks = [
            list(range(start, min(start + GROUPING_ARGUMENTS, len(self.blocks))))
            for start in range(0, len(self.blocks), GROUPING_ARGUMENTS)
        ]
        blocks = self.blocks
        # block b's masks: in each chunk, every key's bit but b's is set (bit len - 1 - j: the j-th)
        self.index = {
            tuple(sum(1 << (len(chunk) - 1 - j) for j, x in enumerate(chunk) if x != b) for chunk in self.chunks): b
            for b in range(len(blocks))
        }

    def key(self, b: int) -> str:
        """SQL for block ``b``'s packed key (NULL where a code is: a value its bins cannot code)."""
        block, size = self.blocks[b], self.sizes[b]
        sql = column_name(block[0])
        for k, s in zip(block[1:], size[1:], strict=True):
            sql = f"({sql}) * {int(s)} + {column_name(k)}"
        return sql

    def select(self, coded: str, *, tag: str = "", width: int | None = None, keys: int | None = None) -> str:
        """The statement over ``coded`` (a FROM item holding the coded columns); ``tag`` (SQL) is
        selected first and ``width`` pads the masks with zeros (``keys`` is not used)."""
        width = width or len(self.chunks)
        names = [f"k{b}" for b in range(len(self.blocks))]
        packed = ", ".join(f"{self.key(b)} AS {name}" for b, name in enumerate(names))
        flags = ["GROUPING(" + ", ".join(names[b] for b in chunk) + ")" for chunk in self.chunks]
        flags += ["0"] * (width - len(flags))
        masks = [f"m{i}" for i in range(width)]
        counts, lead = ["count(*) AS n0"], ""
        if self.lead is not None:  # the lead's value j > 0 counted apart (tested once a row); 0 is the rest
            values = range(1, self.lead[1])
            lead = "".join(f", {column_name(self.lead[0])} = {j} AS l{j}" for j in values)
            counts += [f"count(*) FILTER (WHERE l{j}) AS n{j}" for j in values]
        inner = (
            f"SELECT {', '.join(f'{flag} AS {mask}' for flag, mask in zip(flags, masks, strict=True))}, "
            f"COALESCE({', '.join(names)}) AS key, {', '.join(counts)} "
            f"FROM (SELECT {packed}{lead} FROM {coded} OFFSET 0) AS packed "
            f"GROUP BY GROUPING SETS ({', '.join(f'({name})' for name in names)})"
        )
        head = f"{tag}, " if tag else ""
        texts = ", ".join(f"string_agg(n{j}::text, ' ')" for j in range(len(counts)))
        return (
            f"SELECT {head}{', '.join(masks)}, string_agg(COALESCE(key, -1)::text, ' '), {texts} "
            f"FROM ({inner}) AS counted GROUP BY {', '.join(masks)}"
        )

    def read(self, rows: Sequence[Sequence[Any]], *, width: int | None = None) -> list[np.ndarray]:
        """Each block's table, flat (C order), from the statement's rows (without any tag; the
        rows of several connections counting disjoint rows are added up)."""
        width = width or len(self.chunks)
        values = 1 if self.lead is None else self.lead[1]
        tables = [np.zeros((values, cells), dtype=np.int64) for cells in self.cells]
        for row in rows:
            b = self.index[tuple(int(mask) for mask in row[: len(self.chunks)])]
            keys = np.array(str(row[width]).split(), dtype=np.int64)
            counts = [np.array(str(text).split(), dtype=np.int64) for text in row[width + 1 : width + 1 + values]]
            if any(len(keys) != len(c) for c in counts) or (
                len(keys) and (keys.min() < 0 or keys.max() >= self.cells[b])
            ):
                raise SchemaMismatchError("a column holds values its bins cannot code")
            counts[0] = counts[0] - sum(counts[1:], np.zeros_like(counts[0]))  # the lead's value 0: the rest
            for j, c in enumerate(counts):
                np.add.at(tables[b][j], keys, c)
        found = [table.reshape(-1) if self.lead is not None else table[0] for table in tables]
        return found[:-1] if self.lead_set else found
