"""What the SQL engines share: the counts MST reads, asked as ``GROUPING SETS`` statements.

:class:`SqlCounts` answers the :class:`~synth_engine.generators.counts.CountSource` questions and
the pre-spend :meth:`~SqlCounts.check` for any SQL engine; a subclass
(:class:`~synth_engine.engines.postgres.PostgresCounts`,
:class:`~synth_engine.engines.duckdb.DuckDBCounts`) supplies the dialect: how a statement runs,
the relation's column types, a column's value as the generators see it, and a handful of
expressions (a sorted search, a list position, a list lookup, a list membership, a float
literal). Each column's fine code (and, once the bins are chosen, its bin) is one SQL expression
that mirrors the codec's NumPy encoding exactly, and the tables one stage needs are counted as
``GROUPING SETS``: the domain stage, the fine 1-ways, and every binned table of the tree
selection and the measurements (the last in parts of a bounded number of cells,
:class:`GroupingPart`). How the parts run is the engine's (:meth:`SqlCounts._count_parts`): by
default a statement a part, each computing the codes its sets name once per row; PostgreSQL
computes the codes once for the whole stage and can count ranges of the table on several
connections at once.
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from core.schema import ColumnSpec
from synth_engine.engines.refusals import Refusal, refuse_structure, value_refusals
from synth_engine.generators.base import GeneratorError, SchemaMismatchError
from synth_engine.generators.counts import HASH_PRIME, RowSample, hash_weights
from synth_engine.generators.domain import (
    CategoricalCodec,
    Codec,
    NumericCodec,
    magnitude_thresholds,
    parse_schema,
)

GROUPING_ARGUMENTS = 31  # PostgreSQL's most arguments to GROUPING()
MAX_GROUPING_SETS = 4000
LOCALITY_COLUMNS = 8  # the binned stage's statements group sets by blocks of this many columns


def quote_identifier(name: str) -> str:
    """A SQL identifier, double-quoted (``"`` doubled), so any column name is read literally."""
    if "\x00" in name:
        raise SchemaMismatchError(f"column name {name!r} holds a NUL character")
    return '"' + name.replace('"', '""') + '"'


class SqlCounts:
    """The grouped counts of one relation of a SQL engine, for the columns of ``schema``."""

    engine: ClassVar[str]
    #: the engine's type names a declared type accepts (absent: read as text)
    accepted: ClassVar[dict[str, set[str]]]
    #: the numeric types that can hold ±inf or fractions
    float_types: ClassVar[set[str]]
    #: appended to the coded subquery (PostgreSQL: ``OFFSET 0``, so each code is computed once a row)
    fence: ClassVar[str] = ""
    #: the most grouping sets one statement counts (more are counted by further statements)
    max_sets: int = MAX_GROUPING_SETS
    #: the most cells (the product of a set's bins, summed over the sets) one statement of the
    #: binned stage counts; ``None``: no bound
    max_cells: ClassVar[int | None] = None

    #: the relation counted (a table, or a subquery restricted by ``where``), as a FROM item
    relation: str
    #: the data as messages name it ("table 'x'")
    label: str

    def __init__(self, schema: dict[str, Any]) -> None:
        self.specs = parse_schema(schema)
        self._domain: dict[str, Any] | None = None

    # ------------------------------------------------------------------ the dialect

    def _rows(self, sql: str, params: Sequence[Any] = (), *, grouped: bool = False) -> list[tuple[Any, ...]]:
        """Run one statement and return its rows (``grouped``: a GROUPING SETS statement)."""
        raise NotImplementedError

    def column_types(self) -> dict[str, str]:
        """Each column of the relation and its type; refuses a relation that cannot be read."""
        raise NotImplementedError

    def _value(self, spec: ColumnSpec) -> str:
        """SQL for the column's value as the generators see it (float seconds for a datetime);
        NULL where it is missing."""
        raise NotImplementedError

    def _search(self, expression: str, thresholds: list[float], params: list[Any]) -> str:
        """SQL for how many of the ascending ``thresholds`` are at most ``expression``
        (NumPy's ``searchsorted(..., side="right")``)."""
        raise NotImplementedError

    def _position(self, value: str, values: list[str], params: list[Any]) -> str:
        """SQL for the 0-based position of ``value`` in ``values``; NULL when absent."""
        raise NotImplementedError

    def _lookup(self, index: str, table: list[int], params: list[Any]) -> str:
        """SQL for ``table[index]`` (0-based)."""
        raise NotImplementedError

    def _outside(self, value: str, values: list[str], params: list[Any]) -> str:
        """SQL true where ``value`` is not one of ``values``."""
        raise NotImplementedError

    def _number(self, value: float, params: list[Any]) -> str:
        """SQL for a double-precision constant, exactly ``value``."""
        raise NotImplementedError

    def _rint(self, expression: str) -> str:
        """SQL for a double rounded to the nearest whole number, ties to even (NumPy's ``rint``)."""
        raise NotImplementedError

    def _infinite(self, column: str) -> str:
        """SQL true where a numeric column holds ±inf."""
        raise NotImplementedError

    # ------------------------------------------------------------------ validation

    def check(self) -> list[str]:
        """Refuse data that does not match the schema (before any spend); return warnings (none under DP).

        The refusals ``validate_frame`` makes for a frame (named in :mod:`synth_engine.engines.refusals`):
        a schema column missing, a type mismatch, missing values where there is no missing code, ±inf,
        fractions in an integer column, a float off its declared step, values outside declared
        categories, weekend days in a column declared on the weekdays calendar, no rows.
        """
        refuse_structure(self.specs)
        types = self.column_types()
        absent = [spec.name for spec in self.specs if spec.name not in types]
        if absent:
            raise SchemaMismatchError(f"{self.label} has no column {', '.join(map(repr, absent))}")
        for spec in self.specs:
            accepted = self.accepted.get(spec.type)
            if accepted is not None and types[spec.name] not in accepted:
                raise SchemaMismatchError(
                    f"column {spec.name!r} is declared {spec.type} but is {types[spec.name]} in {self.label}"
                )
        refusals: list[Refusal] = []
        for spec in self.specs:
            refusals += value_refusals(spec, fractional=types[spec.name] in self.float_types)
        params: list[Any] = []
        probes = ["count(*)"] + [f"count(*) FILTER (WHERE {self._refused(refusal, params)})" for refusal in refusals]
        found = self._rows(f"SELECT {', '.join(probes)} FROM {self.relation}", params)[0]
        if int(found[0]) == 0:
            raise GeneratorError(f"{self.label} has no rows")
        for refusal, count in zip(refusals, found[1:], strict=True):
            if int(count):
                raise SchemaMismatchError(refusal.message)
        return []

    def _refused(self, refusal: Refusal, params: list[Any]) -> str:
        """SQL true on the rows that ``refusal`` refuses (its parameters appended to ``params``)."""
        spec, value = refusal.spec, self._value(refusal.spec)
        if refusal.kind == "missing":
            return f"{value} IS NULL"
        if refusal.kind == "infinite":
            return self._infinite(quote_identifier(spec.name))
        if refusal.kind == "fraction":
            return f"{value} <> trunc({value})"
        if refusal.kind == "off_grid":  # not np.allclose(v, on_grid(v), rtol=1e-9, atol=0)
            step = float(spec.step or 1.0)

            def grid() -> str:  # parameters in the order of their placeholders
                return f"(round({value} / {self._number(step, params)}) * {self._number(step, params)})"

            return f"abs({value} - {grid()}) > 1e-9 * abs({grid()})"
        if refusal.kind == "weekend":  # days since 1970-01-01, a Thursday: 5 and 6 are weekends
            return f"mod(mod(floor({value} / 86400)::BIGINT + 3, 7) + 7, 7) >= 5"  # "%" is a placeholder
        outside = self._outside(value, [str(category) for category in spec.categories or ()], params)
        return f"{value} IS NOT NULL AND {outside}"

    # ------------------------------------------------------------------ CountSource

    def fitting(self) -> contextlib.AbstractContextManager[None]:
        """The counts of one fit (:meth:`CountSource.fitting`): nothing is kept between its stages here."""
        return contextlib.nullcontext()

    def row_count(self) -> int:
        return int(self._rows(f"SELECT count(*) FROM {self.relation}")[0][0])

    def _domain_counts(self) -> dict[str, Any]:
        """One pass for the domain stage: value counts of undeclared categorical columns and
        magnitude histograms of numeric columns without both bounds."""
        if self._domain is not None:
            return self._domain
        selected: list[tuple[str, list[Any]]] = []
        wanted = []
        for spec in self.specs:
            params: list[Any] = []
            if spec.type == "categorical" and spec.categories is None:
                selected.append((self._value(spec), params))
            elif spec.is_numeric and (spec.minimum is None or spec.maximum is None):
                thresholds = magnitude_thresholds(integer=spec.type in ("integer", "datetime"))
                value = self._value(spec)
                step = self._search(f"abs({value})", thresholds.tolist(), params)
                selected.append((f"{len(thresholds)} + CAST(sign({value}) AS INTEGER) * ({step})", params))
            else:
                continue
            wanted.append(spec)
        self._domain = {}
        if not wanted:
            return self._domain
        rows = self._grouped(selected, [(k,) for k in range(len(wanted))])
        for k, spec in enumerate(wanted):
            self._domain[spec.name] = [(row[0], row[-1]) for row in rows[k] if row[0] is not None]
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
            if codec.step is not None:  # domain.on_grid: rint(v / step), then rint(k * step * 1e12) / 1e12
                # literals, not parameters: the expression is repeated below, and parameters are
                # positional (a float's repr reads back as the same double in SQL)
                step, scale = f"CAST({float(codec.step)!r} AS DOUBLE PRECISION)", "CAST(1e12 AS DOUBLE PRECISION)"
                multiple = self._rint(f"{value} / {step}")
                value = f"({self._rint(f'{multiple} * {step} * {scale}')} / {scale})"
            low, high = float(codec.low[0]), float(codec.high[-1])

            def clipped() -> str:
                return f"LEAST(GREATEST({value}, {self._number(low, params)}), {self._number(high, params)})"

            sql = f"CASE WHEN {value} IS NULL THEN {missing} "
            # A value on a single-value cell's point goes to that cell even where the next cell
            # starts at the same value: the codec names those points.
            for point, code in codec.point_cells():
                sql += f"WHEN {clipped()} = {self._number(point, params)} THEN {code} "
            # searchsorted of the clipped value without clipping: above the grid every cell start
            # is at most the value either way; below it the clipped value is the first start, so
            # the count is at least the number of cells starting there.
            first = int(np.searchsorted(codec.low, low, side="right"))
            sql += f"ELSE GREATEST({self._search(value, codec.low.tolist(), params)}, {first}) - 1 END"
            return sql
        assert isinstance(codec, CategoricalCodec)
        other = codec.other_code if codec.other_code is not None else -1
        if spec.type == "boolean":
            index = {bool(v): k for k, v in enumerate(codec.values)}
            true, false = index.get(True, other), index.get(False, other)
            return f"CASE WHEN {value} IS NULL THEN {missing} WHEN {value} THEN {true} ELSE {false} END"
        position = self._position(value, [str(category) for category in codec.values], params)
        return f"CASE WHEN {value} IS NULL THEN {missing} ELSE COALESCE({position}, {other}) END"

    def fine_counts(self, codecs: list[Codec]) -> list[np.ndarray]:
        selected: list[tuple[str, list[Any]]] = []
        for codec in codecs:
            params: list[Any] = []
            selected.append((self.fine_code(codec, params), params))
        return fine_histograms(codecs, self._grouped(selected, [(k,) for k in range(len(codecs))]))

    def stored_code(self, codecs: list[Codec], column: int, params: list[Any], stored: StoredCodes | None) -> str:
        """SQL for column ``column``'s fine code: its column in the ``stored`` codes (read from
        their table), else computed (:meth:`fine_code`, its parameters appended to ``params``)."""
        return stored.columns[column] if stored is not None else self.fine_code(codecs[column], params)

    def sample_condition(
        self, codecs: list[Codec], sample: RowSample, params: list[Any], stored: StoredCodes | None = None
    ) -> tuple[str, str]:
        """The SQL of :func:`~synth_engine.generators.counts.row_hash` before its square (a column
        of the relation, computed once a row) and the condition on it that keeps ``sample``'s rows:
        ``(hash, condition over "synthgate_row_hash")``; every column's fine code (read from
        ``stored`` when given) appends its parameters to ``params``. 64-bit integer arithmetic, as
        NumPy's."""
        terms = [
            f"mod(CAST(({self.stored_code(codecs, column, params, stored)}) + 1 AS BIGINT) * {weight}, {HASH_PRIME})"
            for column, weight in enumerate(hash_weights(len(codecs)))
        ]
        hashed = f"mod({' + '.join(terms)}, {HASH_PRIME})"
        return hashed, f"mod(synthgate_row_hash * synthgate_row_hash, {HASH_PRIME}) < {int(sample.keep)}"

    def _sampled(self, relation: str, reading: Reading) -> tuple[str, list[Any]]:
        """``relation`` (a FROM item), restricted to the rows of ``reading``'s sample (if any),
        and the parameters it adds (after the select list's: it is the FROM item)."""
        if reading.sample is None:
            return relation, []
        params: list[Any] = []
        hashed, condition = self.sample_condition(*reading.sample, params, reading.stored)
        inner = f"SELECT *, {hashed} AS synthgate_row_hash FROM {relation} OFFSET 0"  # the hash once a row
        return f"(SELECT * FROM ({inner}) AS hashed WHERE {condition}) AS sampled", params

    def binned_counts(
        self,
        codecs: list[Codec],
        bins: list[np.ndarray],
        groups: list[tuple[int, ...]],
        sample: RowSample | None = None,
    ) -> list[np.ndarray]:
        """Each group's table; a group whose columns all lie in a larger group (MST's (label, a)
        in its (label, a, b)) is that group's table summed over the other columns, not counted:
        the same integers, one grouping set fewer for every row to be looked up in. Given
        ``sample``, the rows whose hash of the fine codes of all ``codecs`` it keeps."""
        return self._enclosed_tables(codecs, bins, groups, Reading(None if sample is None else (codecs, sample)))

    def _enclosed_tables(
        self, codecs: list[Codec], bins: list[np.ndarray], groups: list[tuple[int, ...]], reading: Reading
    ) -> list[np.ndarray]:
        within = enclosing_groups(groups)
        counted = [g for g in range(len(groups)) if g not in within]
        found = self._binned_tables(codecs, bins, [groups[g] for g in counted], reading)
        tables = dict(zip(counted, found, strict=True))
        answered = []
        for g, group in enumerate(groups):
            if g in tables:
                answered.append(tables[g])
                continue
            larger = groups[within[g]]
            summed = tables[within[g]].sum(axis=tuple(i for i, c in enumerate(larger) if c not in group))
            remaining = [c for c in larger if c in group]
            answered.append(np.ascontiguousarray(np.transpose(summed, [remaining.index(c) for c in group])))
        return answered

    def _binned_tables(
        self, codecs: list[Codec], bins: list[np.ndarray], groups: list[tuple[int, ...]], reading: Reading
    ) -> list[np.ndarray]:
        """Each group's table, counted over the rows ``reading`` names."""
        if not groups:
            return []
        used = sorted({column for group in groups for column in group})
        position = {column: k for k, column in enumerate(used)}
        selected = self.binned_codes(codecs, bins, used, reading.stored)
        sizes = [int(b.max()) + 1 for b in bins]
        cells = [int(np.prod([sizes[column] for column in group])) for group in groups]
        rows = self._grouped(
            selected,
            [tuple(position[c] for c in group) for group in groups],
            integer_keys=True,
            cells=cells,
            reading=reading,
        )
        tables = []
        for g, group in enumerate(groups):
            table = np.zeros(tuple(sizes[column] for column in group), dtype=np.int64)
            for row in rows[g]:
                table[row[:-1]] += row[-1]
            tables.append(table)
        return tables

    def binned_codes(
        self, codecs: list[Codec], bins: list[np.ndarray], columns: list[int], stored: StoredCodes | None = None
    ) -> list[tuple[str, list[Any]]]:
        """Each of ``columns``' bin as an SQL expression with its parameters (the bins' lookup over
        the fine code, read from ``stored`` when given): what the binned stage selects."""
        selected: list[tuple[str, list[Any]]] = []
        for column in columns:
            # the lookup's parameters come first in the statement, then the code's
            lookup_params: list[Any] = []
            code_params: list[Any] = []
            code = self.stored_code(codecs, column, code_params, stored)
            selected.append((self._lookup(code, bins[column].tolist(), lookup_params), [*lookup_params, *code_params]))
        return selected

    def _grouped(
        self,
        selected: list[tuple[str, list[Any]]],
        sets: list[tuple[int, ...]],
        *,
        integer_keys: bool = False,
        cells: list[int] | None = None,
        reading: Reading | None = None,
    ) -> list[list[tuple[Any, ...]]]:
        """Count the rows of every grouping set, in parts of at most :attr:`max_sets` sets
        (PostgreSQL takes at most 4,096 in one; DuckDB holds a hash table a set in memory) and,
        given each set's ``cells`` (the binned stage), at most :attr:`max_cells` cells a part
        (PostgreSQL looks up every row in every set's hash table: beyond a few tens of thousands
        of cells in all they fall out of the processor's cache and each lookup costs a memory
        access); rows per set: (the set's keys in the set's order..., count). How the parts are
        run is the engine's (:meth:`_count_parts`: by default one statement a part), over the rows
        ``reading`` names (by default every row of the relation, each code computed).

        The codes are computed once per row, and ``GROUPING()`` bitmasks (31 columns each,
        PostgreSQL's limit) tell the sets apart in the result. With ``integer_keys`` (the binned
        stage: thousands of sets of small integer codes) a result row is the masks, the set's
        codes joined in one text and the count, not one column per code: at 50 columns the
        padded rows held 2.4 GB in the worker at 10⁵ rows.
        """
        order = list(range(len(sets)))
        if cells is not None and self.max_cells is not None:
            # sets of nearby columns together (by blocks of LOCALITY_COLUMNS), so that each part
            # names fewer columns
            order.sort(key=lambda g: tuple(sorted(k // LOCALITY_COLUMNS for k in sets[g])))
        parts: list[list[int]] = []
        start = 0
        while start < len(order):
            end = min(len(order), start + self.max_sets)
            if cells is not None and self.max_cells is not None:
                total = cells[order[start]]
                cut = start + 1
                while cut < end and total + cells[order[cut]] <= self.max_cells:
                    total += cells[order[cut]]
                    cut += 1
                end = cut
            parts.append(order[start:end])
            start = end
        counted = self._count_parts(
            selected,
            [GroupingPart([sets[g] for g in part], integer_keys=integer_keys) for part in parts],
            reading or Reading(),
        )
        by_set: list[list[tuple[Any, ...]]] = [[] for _ in sets]
        for part, rows in zip(parts, counted, strict=True):
            for g, answered in zip(part, rows, strict=True):
                by_set[g] = answered
        return by_set

    def _count_parts(
        self, selected: list[tuple[str, list[Any]]], parts: list[GroupingPart], reading: Reading
    ) -> list[list[list[tuple[Any, ...]]]]:
        """Each part's rows per set: one statement a part, each computing only the codes its sets
        name (in a subquery, once per row), over the rows of ``reading``'s sample (if any)."""
        counted = []
        relation, kept = self._sampled(self.relation, reading)
        for part in parts:
            used = part.used
            inner = ", ".join(f"{selected[k][0]} AS {column_name(k)}" for k in used)
            params = [param for k in used for param in selected[k][1]] + kept
            coded = f"(SELECT {inner} FROM {relation}{self.fence}) AS coded"
            counted.append(part.read(self._rows(part.select(coded), params, grouped=True)))
        return counted


def fine_histograms(codecs: list[Codec], rows: list[list[tuple[Any, ...]]]) -> list[np.ndarray]:
    """Each column's histogram of fine codes from its grouping set's rows (code, count); refuses a
    value its codec cannot encode (code -1)."""
    counts = []
    for k, codec in enumerate(codecs):
        histogram = np.zeros(codec.n_codes, dtype=np.int64)
        for row in rows[k]:
            if row[0] < 0:
                raise SchemaMismatchError(f"column {codec.name!r} holds values its codec cannot encode")
            histogram[row[0]] += row[-1]
        counts.append(histogram)
    return counts


@dataclass(frozen=True)
class StoredCodes:
    """Every row's fine codes stored for the rest of a fit (by
    :class:`~synth_engine.engines.postgres.PostgresCounts`): the table holding them, in each
    counting session, and the column of each codec (in the order of the fit's codecs)."""

    table: str
    columns: list[str]
    #: each column's fine code as computed from the relation (SQL, parameters)
    expressions: list[tuple[str, list[Any]]]


@dataclass(frozen=True)
class Reading:
    """The rows a binned stage counts, and how it reads their fine codes: ``sample`` (with
    every column's codec) keeps the rows whose hash it keeps (``None``: every row); ``stored``: the
    codes are read from the table of the fit's stored fine codes rather than computed from the
    relation's values."""

    sample: tuple[list[Codec], RowSample] | None = None
    stored: StoredCodes | None = None


def enclosing_groups(groups: list[tuple[int, ...]]) -> dict[int, int]:
    """For each group (of distinct columns) whose columns all lie in a larger group, a counted
    group holding them (one that lies in no larger group itself)."""
    holding: dict[int, list[int]] = {}
    for h, group in enumerate(groups):
        for column in set(group):
            holding.setdefault(column, []).append(h)

    def larger(g: int) -> int | None:
        group = groups[g]
        if not group or len(set(group)) != len(group):
            return None
        for h in holding[group[0]]:
            other = groups[h]
            if len(other) > len(group) and len(set(other)) == len(other) and set(group) <= set(other):
                return h
        return None

    within: dict[int, int] = {}
    for g in range(len(groups)):
        found = larger(g)
        while found is not None:  # up to a group no larger one holds: that one is counted
            within[g] = found
            found = larger(found)
    return within


def column_name(k: int) -> str:
    """The name of the ``k``-th coded column in a statement."""
    return f"c{k}"


class GroupingPart:
    """Some of a stage's grouping sets (of coded columns, by index), counted in one ``GROUP BY
    GROUPING SETS``: its SQL over a relation of the coded columns, and how to read its rows."""

    def __init__(self, sets: list[tuple[int, ...]], *, integer_keys: bool) -> None:
        self.sets = sets
        self.integer_keys = integer_keys
        #: the coded columns the sets name
        self.used = sorted({k for group in sets for k in group})
        self.chunks = [
            self.used[start : start + GROUPING_ARGUMENTS] for start in range(0, len(self.used), GROUPING_ARGUMENTS)
        ]
        # sets naming the same columns (in any order) are counted once and answered to each of them
        self.distinct: dict[tuple[int, ...], list[int]] = {}
        for g, group in enumerate(sets):
            self.distinct.setdefault(tuple(sorted(group)), []).append(g)
        # a set's masks: bit (len(chunk) - 1 - i) of its chunk's GROUPING() is 0 for the chunk's
        # i-th column when the set groups by it
        self.index: dict[tuple[int, ...], tuple[int, ...]] = {}
        for columns in self.distinct:
            masks = tuple(
                sum(1 << (len(chunk) - 1 - i) for i, k in enumerate(chunk) if k not in columns) for chunk in self.chunks
            )
            self.index[masks] = columns

    def select(self, coded: str, *, tag: str = "", width: int | None = None, keys: int | None = None) -> str:
        """The statement over ``coded`` (a FROM item holding the columns :func:`column_name` names).
        ``tag`` (SQL) is selected first; ``width`` pads the masks with zeros and ``keys`` the
        key columns with NULLs (so that parts of different shapes can be one ``UNION ALL``)."""
        names = [column_name(k) for k in self.used]
        flags = ["GROUPING(" + ", ".join(column_name(k) for k in chunk) + ")" for chunk in self.chunks]
        flags += ["0"] * ((width or len(flags)) - len(flags))
        if self.integer_keys:
            key_columns = ["concat_ws(',', " + ", ".join(names) + ")"]
        else:
            key_columns = names + ["NULL"] * ((keys or len(names)) - len(names))
        grouping = ", ".join("(" + ", ".join(column_name(k) for k in columns) + ")" for columns in self.distinct)
        head = f"{tag}, " if tag else ""
        return (
            f"SELECT {head}{', '.join(flags)}, {', '.join(key_columns)}, count(*) "
            f"FROM {coded} GROUP BY GROUPING SETS ({grouping})"
        )

    def read(self, rows: Sequence[Sequence[Any]], *, width: int | None = None) -> list[list[tuple[Any, ...]]]:
        """The rows of each set (keys in the set's order..., count) from the statement's rows
        (without any tag; ``width``: the masks' padded width)."""
        chunks = len(self.chunks)
        width = width or chunks
        by_columns: dict[tuple[int, ...], list[tuple[Any, ...]]] = {columns: [] for columns in self.distinct}
        for row in rows:
            columns = self.index[tuple(int(mask) for mask in row[:chunks])]
            if self.integer_keys:
                ascending: list[Any] = [int(code) for code in str(row[width]).split(",") if code != ""]
                if len(ascending) != len(columns):  # a NULL code: concat_ws leaves it out
                    raise SchemaMismatchError("a column holds values its bins cannot code")
            else:
                ascending = [
                    value
                    for k, value in zip(self.used, row[width : width + len(self.used)], strict=True)
                    if k in columns
                ]
            by_columns[columns].append((*ascending, int(row[-1])))
        # each set's keys in its own order (a result row holds them by ascending column)
        by_set: list[list[tuple[Any, ...]]] = [[] for _ in self.sets]
        for columns, answered in self.distinct.items():
            for g in answered:
                place = [columns.index(k) for k in self.sets[g]]
                by_set[g] = [(*(row[i] for i in place), row[-1]) for row in by_columns[columns]]
        return by_set
