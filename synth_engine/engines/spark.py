"""Grouped counts computed by Apache Spark: the rows of a Parquet lake or a catalog table stay there.

:class:`SparkCounts` answers the :class:`~synth_engine.generators.counts.CountSource` questions over
a Spark DataFrame (Parquet files or a directory, any URI the cluster reads, or a catalog table).
Every column's value is a Spark column expression that mirrors how the codec reads it (built from
the codec's own bounds, step and category lists; a category's or a boolean's code is computed
there too), so the rows are read and their values computed in the JVM next to the data. Each stage
is one pass: the executors finish each Arrow batch's codes with NumPy (a numeric codec's own
``cells`` over its cell ends, ``magnitude_index``'s bucket, ``bins[fine code]``), turn them into
partial tables (``numpy.bincount`` of the codes of every group, value counts of undeclared
categories) and one Spark aggregation adds the partial tables of all partitions; only the summed
counts reach the worker, which adds the noise.

Why not ``GROUP BY GROUPING SETS``: Spark evaluates grouping sets by copying every row once per
set (``Expand``), so the third stage's 171 (label, a, b) sets of 19 attributes copy each row 171
times; on this machine that was about 20 times slower than the batch tables (docs/engines.md).

:meth:`SparkCounts.check` validates the data against the schema in one aggregation before anything
is spent, with the refusals of ``validate_frame`` (:mod:`synth_engine.engines.refusals`).
:func:`spark_session` is the one place a session is made: the master from the caller's setting
(``SYNTHGATE_SPARK_MASTER``), no UI, quiet logs, UTC, reused by later jobs of the same worker, and
a start that does not answer within a timeout is abandoned with :class:`SparkUnavailableError`.
"""

from __future__ import annotations

import atexit
import contextlib
import copy
import logging
import os
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa

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

logger = logging.getLogger(__name__)

DEFAULT_MASTER = "local[2]"
START_TIMEOUT = 120.0
# The memory of a session's process tree (the JVM and, in local mode, its Python workers; the
# worker's own interpreter apart), measured at 10 M rows x 50 columns in docs/engines.md: a heap of
# 512 MB (Spark's floor is 450 MB), the serial collector (G1's own structures and its lazy shrinking
# cost more on 2 cores), Arrow batches of 32,768 rows (a batch lives in the JVM's direct memory and
# in each Python worker, with its 50 code arrays) and two glibc malloc arenas (one a thread by default:
# the JVM's 60-odd threads left hundreds of MB fragmented).
DRIVER_MEMORY = "512m"
JAVA_OPTIONS = "-XX:+UseSerialGC"
ARROW_BATCH_ROWS = 32_768
MALLOC_ARENA_MAX = 2
HUGE_METHOD_BYTES = 8_000  # HotSpot's DontCompileHugeMethods limit
NUMERIC_TYPES = {"tinyint", "smallint", "int", "bigint", "float", "double"}
FLOAT_TYPES = {"float", "double"}
DATETIME_TYPES = {"timestamp", "timestamp_ntz", "date"}
ACCEPTED = {"integer": NUMERIC_TYPES, "float": NUMERIC_TYPES, "datetime": DATETIME_TYPES, "boolean": {"boolean"}}
# Spark's own log in a worker: errors only, on stderr (its default prints INFO and WARN lines).
LOG4J = """rootLogger.level = error
rootLogger.appenderRef.stderr.ref = console
appender.console.type = Console
appender.console.name = console
appender.console.target = SYSTEM_ERR
appender.console.layout.type = PatternLayout
appender.console.layout.pattern = %d{yy/MM/dd HH:mm:ss} %p %c{1}: %m%n
"""


class SparkUnavailableError(GeneratorError):
    """No Spark session could be started (no Java, a master that does not answer, a bad URL)."""


class SparkQueryTimeoutError(SparkUnavailableError):
    """A query of a started session did not finish within its bound (its executors lost, a cluster
    too busy): its jobs were cancelled."""


class _Watchdog:
    """Cancels a job group once ``seconds`` pass without a :meth:`kick` (it starts kicked), except
    while :meth:`paused` (the caller's own work between rows); no bound when ``seconds`` is falsy.

    Spark's jobs wait for executors for ever: a cluster that loses them mid-count would leave the
    worker waiting until the job's heartbeat reaper. ``SparkContext.cancelJobGroup`` from this
    thread ends the waiting jobs, and the caller's collect raises."""

    def __init__(self, context: Any, group: str, seconds: float | None) -> None:
        self.context, self.group, self.seconds = context, group, float(seconds or 0)
        self.last = time.monotonic()
        self.expired = threading.Event()
        self._stopped = threading.Event()
        self._paused = False
        if self.seconds > 0:
            threading.Thread(target=self._watch, name="spark-query-watchdog", daemon=True).start()

    def kick(self) -> None:
        self.last = time.monotonic()

    @contextlib.contextmanager
    def paused(self) -> Iterator[None]:
        self._paused = True
        try:
            yield
        finally:
            self._paused = False
            self.kick()

    def stop(self) -> None:
        self._stopped.set()

    def _watch(self) -> None:
        while True:
            left = self.last + self.seconds - time.monotonic()
            if left <= 0 and not self._paused:
                break
            if self._stopped.wait(left if left > 0 else self.seconds):
                return
        self.expired.set()
        # A job of the group submitted after a cancel would run: cancel again until the caller is out.
        while True:
            with contextlib.suppress(Exception):
                self.context.cancelJobGroup(self.group)
            if self._stopped.wait(0.2):
                return


# --------------------------------------------------------------------------- the session


@dataclass(frozen=True)
class SessionMemory:
    """What bounds the memory of the worker's session, set when its JVM is launched (the first session
    of a process: pyspark keeps that JVM for the process's later sessions).

    ``driver_memory`` is the JVM's heap (``spark.driver.memory``; in local mode the executors run in
    it); ``java_options`` more options of that JVM (``spark.driver.extraJavaOptions``, after the log's
    own); ``arrow_batch_rows`` the rows of an Arrow batch handed to the Python workers
    (``spark.sql.execution.arrow.maxRecordsPerBatch``); ``malloc_arena_max`` glibc's
    ``MALLOC_ARENA_MAX`` for the JVM and the executors' processes (``spark.executorEnv``), 0 leaving
    glibc's default (eight a core). Settings: ``SYNTHGATE_SPARK_DRIVER_MEMORY``,
    ``SYNTHGATE_SPARK_JAVA_OPTIONS``, ``SYNTHGATE_SPARK_ARROW_BATCH_ROWS``,
    ``SYNTHGATE_SPARK_MALLOC_ARENA_MAX``."""

    driver_memory: str = DRIVER_MEMORY
    java_options: str = JAVA_OPTIONS
    arrow_batch_rows: int = ARROW_BATCH_ROWS
    malloc_arena_max: int = MALLOC_ARENA_MAX


_session: Any = None
_session_master: tuple[str, SessionMemory] | None = None
_session_lock = threading.Lock()
_abandoned: list[threading.Thread] = []  # starts given up on, still stopping their session


def spark_session(
    master: str = DEFAULT_MASTER, *, start_timeout: float = START_TIMEOUT, memory: SessionMemory | None = None
) -> Any:
    """The worker's Spark session on ``master`` (``local[N]`` or a cluster URL such as
    ``spark://host:7077``), started on first use and reused by later calls with the same master and
    ``memory`` (:class:`SessionMemory`, its defaults when ``None``).

    The start (the JVM, the connection to the master and one trivial job, which proves that
    executors were granted) must finish within ``start_timeout`` seconds; otherwise it is given up
    (its jobs cancelled and its session stopped in the background) and
    :class:`SparkUnavailableError` says why. A start that fails says why too.
    """
    global _session, _session_master
    memory = memory or SessionMemory()
    with _session_lock:
        if _session is not None and _session_master == (master, memory) and _alive(_session):
            return _session
        spark_session_stop_locked()
        for earlier in list(_abandoned):  # one SparkContext a process: the last one must be gone
            earlier.join(start_timeout)
            if earlier.is_alive():
                raise SparkUnavailableError(
                    f"a Spark session given up on earlier is still stopping; try again later (master {master!r})"
                )
            _abandoned.remove(earlier)
        outcome: dict[str, Any] = {}
        given_up = threading.Event()

        def start() -> None:
            session = None
            try:
                with _launch_environment(memory):
                    session = _builder(master, memory).getOrCreate()
                session.sparkContext.setLogLevel("ERROR")
                if not given_up.is_set():
                    session.range(1).count()
                    outcome["session"] = session
            except BaseException as error:  # handed to the caller's thread below
                outcome["error"] = error
            if session is not None and (given_up.is_set() or "error" in outcome):
                with contextlib.suppress(Exception):
                    session.stop()

        thread = threading.Thread(target=start, name="spark-session-start", daemon=True)
        thread.start()
        thread.join(start_timeout)
        if "session" in outcome and not thread.is_alive():
            _session, _session_master = outcome["session"], (master, memory)
            return _session
        if thread.is_alive():
            given_up.set()
            _cancel_jobs()
            _abandoned.append(thread)
            raise SparkUnavailableError(
                f"Spark did not start on master {master!r} within {start_timeout:g} s (no executors were "
                "granted, or the master does not answer): check SYNTHGATE_SPARK_MASTER and the cluster"
            )
        error = outcome.get("error")
        first = (str(error).strip().splitlines() or [type(error).__name__])[0]
        raise SparkUnavailableError(f"Spark could not start on master {master!r}: {first[:300]}") from error


def _cancel_jobs() -> None:
    """Cancel the jobs of the process's SparkContext, if one exists (a start that hangs on its first job)."""
    from pyspark import SparkContext

    context = SparkContext._active_spark_context
    if context is not None:
        with contextlib.suppress(Exception):
            context.cancelAllJobs()


_environment_lock = threading.Lock()


@contextlib.contextmanager
def _launch_environment(memory: SessionMemory) -> Iterator[None]:
    """``MALLOC_ARENA_MAX`` in this process's environment while pyspark launches the JVM (it copies
    the environment then), restored afterwards so nothing else this worker starts inherits it."""
    if not memory.malloc_arena_max:
        yield
        return
    with _environment_lock:
        before = os.environ.get("MALLOC_ARENA_MAX")
        os.environ["MALLOC_ARENA_MAX"] = str(int(memory.malloc_arena_max))
        try:
            yield
        finally:
            if before is None:
                os.environ.pop("MALLOC_ARENA_MAX", None)
            else:
                os.environ["MALLOC_ARENA_MAX"] = before


def _builder(master: str, memory: SessionMemory | None = None) -> Any:
    from pyspark.sql import SparkSession  # the JVM's client: loaded by the jobs that use Spark only

    memory = memory or SessionMemory()

    if master.startswith("local"):  # local executors run this interpreter (NumPy, pyarrow); a cluster's own
        os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    config = Path(tempfile.gettempdir()) / "synthgate-spark-log4j2.properties"
    if not config.exists() or config.read_text() != LOG4J:
        config.write_text(LOG4J)
    quiet = f"-Dlog4j2.configurationFile={config.as_uri()}"
    builder = (
        SparkSession.builder.master(master)
        .appName("synthgate-counts")
        .config("spark.ui.enabled", "false")
        .config("spark.ui.showConsoleProgress", "false")
        .config("spark.driver.memory", memory.driver_memory)
        .config("spark.driver.extraJavaOptions", f"{quiet} {memory.java_options}".strip())
        .config("spark.sql.session.timeZone", "UTC")
        .config("spark.sql.shuffle.partitions", "8")
        # a whole-stage method over HotSpot's 8,000 bytes is never JIT-compiled: the 50 codes of a pass
        # ran interpreted, 4-5 times slower; above this Spark splits the stage into compiled pieces
        .config("spark.sql.codegen.hugeMethodLimit", str(HUGE_METHOD_BYTES))
        .config("spark.sql.execution.arrow.pyspark.enabled", "true")
        .config("spark.sql.execution.arrow.maxRecordsPerBatch", str(int(memory.arrow_batch_rows)))
    )
    if memory.malloc_arena_max:  # the executors' processes: local mode's Python workers, a cluster's executors
        builder = builder.config("spark.executorEnv.MALLOC_ARENA_MAX", str(int(memory.malloc_arena_max)))
    return builder


def _alive(session: Any) -> bool:
    try:
        return not session.sparkContext._jsc.sc().isStopped()
    except Exception:
        return False


def spark_session_stop() -> None:
    """Stop the worker's session (also at interpreter exit); the next :func:`spark_session` starts one."""
    with _session_lock:
        spark_session_stop_locked()


def spark_session_stop_locked() -> None:
    global _session, _session_master
    if _session is not None:
        with contextlib.suppress(Exception):
            _session.stop()
    _session, _session_master = None, None


atexit.register(spark_session_stop)


# --------------------------------------------------------------------------- column expressions


def _functions() -> Any:
    from pyspark.sql import functions

    return functions


def value_column(spec: ColumnSpec) -> Any:
    """The column's value as the generators see it (``core.schema.numeric_values``, ``missing_mask``);
    null where it is missing. A datetime is whole seconds since the epoch in UTC, computed as pandas
    does (nanoseconds as a float64, divided, floored); a categorical value is read as text."""
    F = _functions()
    column = F.col(_quoted(spec.name))
    if spec.type == "datetime":
        nanos = (F.unix_micros(column.cast("timestamp")) * 1000).cast("double")
        return F.floor(nanos / 1e9).cast("double")
    if spec.is_numeric:
        number = column.cast("double")
        return F.when(F.isnan(number), F.lit(None)).otherwise(number)
    if spec.type == "boolean":
        return column
    text = column.cast("string")
    return F.when(text == "", F.lit(None)).otherwise(text)


def _quoted(name: str) -> str:
    """A column name for ``F.col``, read literally (dots and backticks included)."""
    return "`" + name.replace("`", "``") + "`"


@dataclass
class Code:
    """One code column of a counting pass: ``value``, a Spark column, finished into the code by
    NumPy on the executors (``finish`` in :func:`_table_counter`).

    ``kind`` says how: ``"code"``, the value is the integer code itself (a category's position, a
    boolean's); ``"cells"``, the value is a numeric codec's value clipped into its bounds (null where
    missing) and the code is the codec's :meth:`~synth_engine.generators.domain.NumericCodec.cells`
    over ``low`` and ``high`` (``missing`` where null); ``"magnitude"``, the code is
    :func:`~synth_engine.generators.domain.magnitude_index` over ``thresholds`` (``2 * len + 1``
    where null). ``bins``, when given, then maps the code (``bins[code]``). A code the codec cannot
    give is -1 (counted as such and refused)."""

    value: Any
    kind: str = "code"
    low: np.ndarray | None = None
    high: np.ndarray | None = None
    thresholds: np.ndarray | None = None
    missing: int = -1
    bins: np.ndarray | None = None

    def plan(self) -> dict[str, Any]:
        """What an executor needs to finish the code: plain NumPy arrays and integers."""
        return {
            "kind": self.kind,
            "low": self.low,
            "high": self.high,
            "thresholds": self.thresholds,
            "missing": int(self.missing),
            "bins": None if self.bins is None else np.asarray(self.bins, dtype=np.int64),
        }


def coded_columns(rows: Any, codes: list[Code], texts: list[Any] | None = None) -> Any:
    """``rows`` as one column ``c{k}`` per code (a double for a searched code, the narrowest
    integer type for the others), then the ``texts`` columns as they are (``t{j}``).

    The searches (a numeric codec's cells, a magnitude bucket) are left to NumPy on the executors:
    as Spark expressions (Spark ML's ``Bucketizer`` and its lookups) they took about 0.7 µs a row
    and column in the JVM, most of a counting pass (docs/engines.md)."""
    columns = []
    for k, code in enumerate(codes):
        if code.kind == "code":
            columns.append(code.value.cast("int").alias(f"c{k}"))
        else:
            columns.append(code.value.cast("double").alias(f"c{k}"))
    return rows.select(*columns, *[text.alias(f"t{j}") for j, text in enumerate(texts or [])])


def magnitude_code(spec: ColumnSpec, *, integer: bool) -> Code:
    """``domain.magnitude_index`` of the column's value; a missing value gets the code after the last
    bucket (``2 * len(thresholds) + 1``, a cell the counts drop)."""
    thresholds = np.asarray(magnitude_thresholds(integer=integer), dtype=np.float64)
    return Code(value_column(spec), "magnitude", thresholds=thresholds, missing=2 * len(thresholds) + 1)


def fine_code(spec: ColumnSpec, codec: Codec) -> Code:
    """The codec's ``encode``: the value in Spark, the code in NumPy; -1 for a value it cannot code."""
    F = _functions()
    value = value_column(spec)
    missing = codec.missing_code if codec.missing_code is not None else -1
    if isinstance(codec, NumericCodec):
        if codec.step is not None:  # domain.on_grid: np.round(v / step), then np.round(k * step, 12)
            value = F.rint(F.rint(value / F.lit(codec.step)) * F.lit(codec.step) * F.lit(1e12)) / F.lit(1e12)
        low, high = F.lit(float(codec.low[0])), F.lit(float(codec.high[-1]))
        clipped = F.when(value.isNull(), F.lit(None)).otherwise(F.least(F.greatest(value, low), high))
        low_ends = np.asarray(codec.low, dtype=np.float64)
        return Code(clipped, "cells", low=low_ends, high=np.asarray(codec.high, dtype=np.float64), missing=missing)
    assert isinstance(codec, CategoricalCodec)
    other = F.lit(codec.other_code if codec.other_code is not None else -1)
    if spec.type == "boolean":
        flags = {bool(v): k for k, v in enumerate(codec.values)}
        true, false = F.lit(flags.get(True, -1)), F.lit(flags.get(False, -1))
        return Code(F.when(value.isNull(), F.lit(missing)).when(value, true).otherwise(false))
    index: dict[str, int] = {}
    for position, known in enumerate(codec.values):  # the first code of a value, as pd.Categorical
        index.setdefault(str(known), position)
    # a map lookup: about 4 times faster than array_position over the list (Spark scans the array)
    listed = F.create_map(*[part for key, position in index.items() for part in (F.lit(key), F.lit(position))])
    found = F.try_element_at(listed, value) if index else F.lit(None)
    return Code(F.when(value.isNull(), F.lit(missing)).otherwise(F.coalesce(found, other)))


def binned(code: Code, bins: np.ndarray) -> Code:
    """``bins[fine code]`` (-1 stays -1), looked up by NumPy on the executors."""
    return replace(code, bins=np.asarray(bins, dtype=np.int64))


def _text(value: str) -> str:
    """A Spark SQL string literal."""
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def row_hash(specs: list[ColumnSpec], *key: Any) -> str:
    """Spark SQL for a 64-bit hash of a row's schema columns, keyed by ``key`` (``xxhash64``; not a
    security hash: the split's seed is recorded in the lineage)."""
    arguments = [_text(str(k)) for k in key] + [_quoted(spec.name) for spec in specs]
    return f"xxhash64({', '.join(arguments)})"


def holdout_predicate(schema: dict[str, Any], seed: int, fraction: float) -> str:
    """Spark SQL true for the rows of the holdout: a keyed hash of the row below ``fraction``
    (``DataFrame.where`` takes it, and ``NOT (…)`` of it). Deterministic for a seed, computed where
    the data lives; identical rows fall on the same side."""
    share = int(round(float(fraction) * 1_000_000))
    return f"(pmod({row_hash(parse_schema(schema), 'split', int(seed))}, 1000000) < {share})"


# --------------------------------------------------------------------------- partial tables


def _table_counter(
    plans: list[dict[str, Any]],
    shapes: list[tuple[int, ...]],
    groups: list[tuple[int, ...]],
    categorical: list[int],
    sample: dict[str, Any] | None = None,
) -> Callable[[Iterator[pa.RecordBatch]], Iterator[pa.RecordBatch]]:
    """The function each partition runs (self-contained: pickled by value, so an executor needs
    NumPy and pyarrow, not this package). Input batches hold one column per code (finished by
    ``finish`` from its ``plans`` entry), then the ``categorical`` columns as text; it yields
    rows ``(table, cell, key, n)``: per group of code columns, the nonzero cells of the table of
    their code tuples, then per text column its value counts; a negative code (a value the codec
    cannot code) is counted under ``table = -1``.

    A batch is counted 65,536 rows at a time so the arrays stay in the processor's cache, and
    groups sharing their first columns (the ``(label, a)`` of every ``(label, a, b)``) share their
    index, as ``generators.counts.TableCounter`` does.

    ``sample`` (``keep``, ``prime``, ``weights``, ``bins``): the code columns are the fine codes of
    every column of the schema, in order; only the rows whose ``generators.counts.row_hash`` of
    them is below ``keep`` are counted, each named column's codes mapped by its ``bins`` (the same
    integer arithmetic as ``row_hash``, repeated here: the function needs NumPy only)."""

    def numbers(values: Any, dtype: Any) -> tuple[np.ndarray, np.ndarray | None]:
        """An Arrow column of fixed-width numbers as a NumPy view of its data buffer, and its null
        mask (``None``: no nulls). Read from the buffers: pyarrow's ``to_numpy`` imports pandas,
        about 45 MB more in every Python worker."""
        import numpy

        start, length = values.offset, len(values)
        if length == 0:
            return numpy.zeros(0, dtype=dtype), None
        validity, data = values.buffers()[:2]
        found = numpy.frombuffer(data, dtype=dtype, count=start + length)[start:]
        if validity is None or values.null_count == 0:
            return found, None
        bits = numpy.frombuffer(validity, dtype=numpy.uint8)
        valid = numpy.unpackbits(bits, count=start + length, bitorder="little")[start:]
        return found, valid == 0

    def finish(values: Any, plan: dict[str, Any]) -> np.ndarray:
        """One batch's codes of one :class:`Code` (``values``: its Arrow column, an int32 code or a
        double value), as int64; -1 where the codec cannot code the value. Self-contained (NumPy
        only), like the counter."""
        import numpy

        kind = plan["kind"]
        if kind == "code":
            found, _ = numbers(values, numpy.int32)  # never null: see fine_code
            codes = found.astype(numpy.int64)
        else:
            number, missing = numbers(values, numpy.float64)
            if missing is not None:  # a null slot's data is undefined
                number = numpy.where(missing, 0.0, number)
            if kind == "cells":  # NumericCodec.cells over the clipped value (the codec's own NumPy)
                low, high = plan["low"], plan["high"]
                if missing is not None:
                    number = numpy.where(missing, low[0], number)
                codes = numpy.searchsorted(low, number, side="right") - 1
                previous = numpy.maximum(codes - 1, 0)
                on_point = (codes > 0) & (low[previous] == number) & (high[previous] == low[previous])
                codes = numpy.where(on_point, previous, codes).astype(numpy.int64)
            else:  # magnitude_index
                thresholds = plan["thresholds"]
                step = numpy.searchsorted(thresholds, numpy.abs(number), side="right")
                codes = (len(thresholds) + numpy.sign(number) * step).astype(numpy.int64)
            if missing is not None:
                codes[missing] = plan["missing"]
        bins = plan["bins"]
        if bins is not None:
            codes = numpy.where(codes < 0, -1, bins[numpy.maximum(codes, 0)])
        return codes

    sizes: dict[int, int] = {}
    for group, shape in zip(groups, shapes, strict=True):
        sizes.update(zip(group, shape, strict=True))
    order = sorted(range(len(groups)), key=lambda g: (groups[g][:-1], g))
    used = sorted(sizes)
    finished = list(range(len(plans))) if sample is not None else used  # the hash reads every column

    def count(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        import numpy
        import pyarrow
        import pyarrow.compute

        slice_rows = 65_536
        tables = [numpy.zeros(int(numpy.prod(shape)), dtype=numpy.int64) for shape in shapes]
        values: list[dict[str, int]] = [{} for _ in categorical]
        invalid = 0
        for batch in batches:
            codes: dict[int, Any] = {}
            for column in finished:
                found = finish(batch.column(column), plans[column])
                bad = found < 0
                if bad.any():
                    invalid += int(bad.sum())
                    found = numpy.maximum(found, 0)
                codes[column] = found
            rows = batch.num_rows
            if sample is not None:  # generators.counts.row_hash, then the kept rows' bins
                prime = sample["prime"]
                hashed = numpy.zeros(rows, dtype=numpy.int64)
                for column, weight in zip(finished, sample["weights"], strict=True):
                    hashed += ((codes[column] + 1) * weight) % prime
                hashed %= prime
                kept = (hashed * hashed) % prime < sample["keep"]
                codes = {column: sample["bins"][column][codes[column][kept]] for column in used}
                rows = int(kept.sum())
            for start in range(0, rows, slice_rows):
                part = {column: codes[column][start : start + slice_rows] for column in used}
                head: tuple[int, ...] | None = None
                base = numpy.zeros(0, dtype=numpy.int64)
                for g in order:
                    group = groups[g]
                    if len(group) == 1:
                        index = part[group[0]]
                    else:
                        if group[:-1] != head:
                            head = group[:-1]
                            base = part[head[0]].astype(numpy.int64)
                            for column in head[1:]:
                                base = base * sizes[column] + part[column]
                        index = base * sizes[group[-1]]
                        index += part[group[-1]]
                    tables[g] += numpy.bincount(index, minlength=tables[g].size)
            for k, column in enumerate(categorical):
                counted = pyarrow.compute.value_counts(batch.column(column).drop_null())
                for key, n in zip(
                    counted.field("values").to_pylist(), counted.field("counts").to_pylist(), strict=True
                ):
                    values[k][key] = values[k].get(key, 0) + int(n)
        ids: list[np.ndarray] = []
        cells: list[np.ndarray] = []
        ns: list[np.ndarray] = []
        for g, table in enumerate(tables):
            (nonzero,) = numpy.nonzero(table)
            ids.append(numpy.full(len(nonzero), g, dtype=numpy.int32))
            cells.append(nonzero.astype(numpy.int64))
            ns.append(table[nonzero])
        texts: list[str] = []
        for k, counted_values in enumerate(values):
            ids.append(numpy.full(len(counted_values), len(tables) + k, dtype=numpy.int32))
            texts += list(counted_values)
            ns.append(numpy.fromiter(counted_values.values(), dtype=numpy.int64, count=len(counted_values)))
        if invalid:
            ids.append(numpy.array([-1], dtype=numpy.int32))
            ns.append(numpy.array([invalid], dtype=numpy.int64))
        found_ids = numpy.concatenate(ids) if ids else numpy.zeros(0, dtype=numpy.int32)
        found_ns = numpy.concatenate(ns) if ns else numpy.zeros(0, dtype=numpy.int64)
        found_cells = numpy.zeros(len(found_ids), dtype=numpy.int64)
        table_cells = numpy.concatenate(cells) if cells else found_cells[:0]
        found_cells[: len(table_cells)] = table_cells
        # built from buffers, not pyarrow.array (which imports pandas, see numbers)
        encoded = [text.encode() for text in texts]
        offsets = numpy.zeros(len(encoded) + 1, dtype=numpy.int32)
        offsets[1:] = numpy.cumsum([len(text) for text in encoded])
        keys = pyarrow.Array.from_buffers(
            pyarrow.string(), len(encoded), [None, pyarrow.py_buffer(offsets), pyarrow.py_buffer(b"".join(encoded))]
        )
        before = len(table_cells)
        after = len(found_ids) - before - len(encoded)
        keys = pyarrow.concat_arrays(
            [pyarrow.nulls(before, pyarrow.string()), keys, pyarrow.nulls(after, pyarrow.string())]
        )

        def fixed(array: np.ndarray, kind: Any) -> Any:
            return pyarrow.Array.from_buffers(
                kind, len(array), [None, pyarrow.py_buffer(numpy.ascontiguousarray(array))]
            )

        yield pyarrow.RecordBatch.from_arrays(
            [
                fixed(found_ids, pyarrow.int32()),
                fixed(found_cells, pyarrow.int64()),
                keys,
                fixed(found_ns, pyarrow.int64()),
            ],
            names=["tbl", "cell", "key", "n"],
        )

    return count


# --------------------------------------------------------------------------- the source


class SparkCounts:
    """The grouped counts of a Parquet lake or a catalog table read by Spark, for the columns of ``schema``.

    ``SparkCounts(spark, schema, parquet="/lake/visits")`` (a file, a directory, a list of them, or
    any URI the cluster reads: ``hdfs://``, ``s3a://``) or ``SparkCounts(spark, schema, table="db.visits")``;
    ``where`` (Spark SQL or a column, e.g. ``f"NOT {holdout_predicate(...)}"``) restricts the counted rows.

    ``query_timeout`` (seconds; ``None`` or 0: no bound) bounds each query once the session has
    started: a query (or, for :meth:`row_chunks`, the wait for its next row) that takes longer has its
    jobs cancelled and raises :class:`SparkQueryTimeoutError` with the reason.
    """

    engine = "spark"
    accepted = ACCEPTED
    float_types = FLOAT_TYPES

    def __init__(
        self,
        spark: Any,
        schema: dict[str, Any],
        *,
        parquet: str | Path | list[str] | None = None,
        table: str | None = None,
        where: Any = None,
        query_timeout: float | None = None,
    ) -> None:
        if (parquet is None) == (table is None):
            raise ValueError("name exactly one of parquet= and table=")
        self.spark = spark
        self.query_timeout = query_timeout
        self.specs = parse_schema(schema)
        paths = [str(item) for item in parquet] if isinstance(parquet, list) else [str(parquet)]
        self.location = (
            (paths[0] if len(paths) == 1 else f"{paths[0]} and {len(paths) - 1} more") if parquet else str(table)
        )
        self.where = where
        try:
            with self._bounded("reading the files' schema" if parquet is not None else "reading the table"):
                frame = spark.read.parquet(*paths) if parquet is not None else spark.read.table(str(table))
                self.types = {field.name: field.dataType.simpleString() for field in frame.schema.fields}
        except SparkQueryTimeoutError:
            raise
        except Exception as error:  # AnalysisException: the path or the table is not there
            what = "Parquet data" if parquet is not None else "table"
            raise SchemaMismatchError(f"no {what} at {self.location!r} that Spark can read") from error
        self.data = frame
        self._domain: dict[str, Any] | None = None

    # ------------------------------------------------------------------ reads

    def rows(self) -> Any:
        """The counted rows (``where`` applied), every column as stored."""
        return self.data if self.where is None else self.data.where(self.where)

    def _collect(self, frame: Any, what: str) -> Any:
        """``frame.toArrow()``, named in the Spark UI, one job group cancelled after ``query_timeout``."""
        with self._bounded(what):
            return frame.toArrow()

    @contextlib.contextmanager
    def _bounded(self, what: str) -> Iterator[_Watchdog]:
        """Run the block's Spark jobs as one job group, cancelled when ``query_timeout`` seconds pass
        without a kick of the watchdog it yields (for a stream: a row arrived); the block's error is
        then :class:`SparkQueryTimeoutError`, naming what was cut short and why."""
        context = self.spark.sparkContext
        group = f"synthgate-{uuid.uuid4().hex[:12]}"
        context.setJobGroup(group, f"synthgate: {what} over {self.location}", interruptOnCancel=True)
        watchdog = _Watchdog(context, group, self.query_timeout)
        try:
            yield watchdog
        except Exception as error:
            if watchdog.expired.is_set():
                raise SparkQueryTimeoutError(
                    f"Spark did not finish {what} over {self.location} within {watchdog.seconds:g} s (its "
                    "executors were lost, or the cluster is too busy); the query was cancelled: check the cluster "
                    "or raise SYNTHGATE_SPARK_QUERY_TIMEOUT"
                ) from error
            raise
        finally:
            watchdog.stop()

    def _tables(
        self,
        codes: list[Code],
        groups: list[tuple[int, ...]],
        shapes: list[tuple[int, ...]],
        texts: list[Any],
        sample: dict[str, Any] | None = None,
    ) -> tuple[list[np.ndarray], list[dict[str, int]]]:
        """One pass: the table of code tuples of every group, and the value counts of the ``texts``
        columns (``sample``: of the rows it keeps, see :func:`_table_counter`)."""
        F = _functions()
        coded = coded_columns(self.rows(), codes, texts)
        categorical = list(range(len(codes), len(codes) + len(texts)))
        partial = coded.mapInArrow(
            _table_counter([code.plan() for code in codes], shapes, groups, categorical, sample),
            "tbl int, cell bigint, key string, n bigint",
        )
        summed = self._collect(partial.groupBy("tbl", "cell", "key").agg(F.sum("n").alias("n")), "a counting pass")
        tables = [np.zeros(int(np.prod(shape)), dtype=np.int64) for shape in shapes]
        values: list[dict[str, int]] = [{} for _ in texts]
        found = zip(*(summed.column(name).to_pylist() for name in ("tbl", "cell", "key", "n")), strict=True)
        for table_id, cell, key, n in found:
            if table_id < 0:
                raise SchemaMismatchError(
                    f"{self.location!r} holds {n} values their codecs cannot encode: run check() before fitting"
                )
            if table_id < len(tables):
                tables[table_id][cell] += n
            else:
                values[table_id - len(tables)][key] = int(n)
        return [table.reshape(shape) for table, shape in zip(tables, shapes, strict=True)], values

    # ------------------------------------------------------------------ validation

    def check(self) -> list[str]:
        """Refuse data that does not match the schema (before any spend), with every refusal found
        in one aggregation named in the error; return warnings (none under DP). Columns the schema
        does not name are never read."""
        F = _functions()
        refuse_structure(self.specs)
        absent = [spec.name for spec in self.specs if spec.name not in self.types]
        if absent:
            raise SchemaMismatchError(f"{self.location!r} has no column {', '.join(map(repr, absent))}")
        for spec in self.specs:
            kind = self.types[spec.name]
            accepted = ACCEPTED.get(spec.type)
            numeric = spec.type in ("integer", "float") and kind.startswith("decimal")
            if accepted is not None and kind not in accepted and not numeric:
                raise SchemaMismatchError(
                    f"column {spec.name!r} is declared {spec.type} but is {kind} in {self.location!r}"
                )
        refusals: list[Refusal] = []
        for spec in self.specs:
            refusals += value_refusals(spec, fractional=self.types[spec.name] in FLOAT_TYPES)
        probes = [F.count(F.lit(1))] + [F.count(F.when(self._refused(refusal), F.lit(1))) for refusal in refusals]
        found = self._collect(
            self.rows().agg(*[probe.alias(f"p{k}") for k, probe in enumerate(probes)]), "the check against the schema"
        )
        counts = [int(found.column(k)[0].as_py()) for k in range(len(probes))]
        if counts[0] == 0:
            raise GeneratorError(f"{self.location!r} has no rows")
        failed = [refusal for refusal, count in zip(refusals, counts[1:], strict=True) if count]
        if failed:
            raise SchemaMismatchError("; ".join(refusal.message for refusal in failed))
        return []

    def _refused(self, refusal: Refusal) -> Any:
        """A Spark predicate true on the rows that ``refusal`` refuses."""
        F = _functions()
        spec, value = refusal.spec, value_column(refusal.spec)
        if refusal.kind == "missing":
            return value.isNull()
        if refusal.kind == "infinite":
            raw = F.col(_quoted(spec.name)).cast("double")
            return raw.isin(float("inf"), float("-inf"))
        if refusal.kind == "fraction":
            return value != F.rint(value)
        if refusal.kind == "off_grid":  # not np.allclose(v, on_grid(v), rtol=1e-9, atol=0)
            step = F.lit(spec.step)
            grid = F.rint(F.rint(value / step) * step * F.lit(1e12)) / F.lit(1e12)
            return F.abs(value - grid) > F.lit(1e-9) * F.abs(grid)
        if refusal.kind == "weekend":  # days since 1970-01-01, a Thursday: 5 and 6 are weekends
            return F.pmod(F.floor(value / F.lit(86400.0)) + F.lit(3), F.lit(7)) >= F.lit(5)
        assert refusal.kind == "category"
        categories = [str(category) for category in spec.categories or ()]
        return value.isNotNull() & ~value.isin(*categories)

    # ------------------------------------------------------------------ CountSource

    def fitting(self) -> contextlib.AbstractContextManager[None]:
        """The counts of one fit: nothing is kept between its stages (each is a query of its own)."""
        return contextlib.nullcontext()

    def row_count(self) -> int:
        F = _functions()
        found = self._collect(self.rows().agg(F.count(F.lit(1)).alias("n")), "the row count")
        return int(found.column(0)[0].as_py())

    def _domain_counts(self) -> dict[str, Any]:
        """One pass for the domain stage: value counts of undeclared categorical columns and
        magnitude histograms of numeric columns without both bounds."""
        if self._domain is not None:
            return self._domain
        wanted = [spec for spec in self.specs if spec.needs_private_domain]
        numeric = [spec for spec in wanted if spec.is_numeric]
        text = [spec for spec in wanted if not spec.is_numeric]
        integer = {spec.name: spec.type != "float" for spec in numeric}
        codes = [magnitude_code(spec, integer=integer[spec.name]) for spec in numeric]
        shapes: list[tuple[int, ...]] = [
            (2 * len(magnitude_thresholds(integer=integer[spec.name])) + 2,) for spec in numeric
        ]
        self._domain = {}
        if wanted:
            tables, values = self._tables(
                codes, [(k,) for k in range(len(numeric))], shapes, [value_column(spec) for spec in text]
            )
            for spec, table in zip(numeric, tables, strict=True):
                self._domain[spec.name] = (integer[spec.name], table[:-1])  # the last cell: missing values
            for spec, found in zip(text, values, strict=True):
                self._domain[spec.name] = found
        return self._domain

    def category_counts(self, spec: ColumnSpec) -> tuple[list[Any], np.ndarray]:
        found = self._domain_counts()[spec.name]
        return list(found), np.array(list(found.values()), dtype=np.int64)

    def magnitude_counts(self, spec: ColumnSpec, *, integer: bool) -> np.ndarray:
        cached = self._domain_counts().get(spec.name)
        if cached is not None and cached[0] == integer:
            histogram: np.ndarray = cached[1]
            return histogram
        length = 2 * len(magnitude_thresholds(integer=integer)) + 1  # a bucketing the domain stage did not ask for
        (table,), _ = self._tables([magnitude_code(spec, integer=integer)], [(0,)], [(length + 1,)], [])
        return table[:-1]

    def fine_counts(self, codecs: list[Codec]) -> list[np.ndarray]:
        codes = [fine_code(self._spec(codec), codec) for codec in codecs]
        tables, _ = self._tables(codes, [(k,) for k in range(len(codecs))], [(c.n_codes,) for c in codecs], [])
        return tables

    def binned_counts(
        self,
        codecs: list[Codec],
        bins: list[np.ndarray],
        groups: list[tuple[int, ...]],
        sample: RowSample | None = None,
    ) -> list[np.ndarray]:
        sizes = [int(b.max()) + 1 for b in bins]
        shapes = [tuple(sizes[column] for column in group) for group in groups]
        if sample is not None:  # every column's fine code (the hash reads them all), binned by the executors
            plan = {
                "keep": int(sample.keep),
                "prime": HASH_PRIME,
                "weights": hash_weights(len(codecs)),
                "bins": [np.asarray(b, dtype=np.int64) for b in bins],
            }
            fine = [fine_code(self._spec(codec), codec) for codec in codecs]
            tables, _ = self._tables(fine, groups, shapes, [], sample=plan)
            return tables
        used = sorted({column for group in groups for column in group})
        position = {column: k for k, column in enumerate(used)}
        codes = [binned(fine_code(self._spec(codecs[column]), codecs[column]), bins[column]) for column in used]
        tables, _ = self._tables(codes, [tuple(position[c] for c in group) for group in groups], shapes, [])
        return tables

    def _spec(self, codec: Codec) -> ColumnSpec:
        return next(spec for spec in self.specs if spec.name == codec.name)

    # ------------------------------------------------------------------ identity, split, samples

    def checksum(self) -> tuple[int, str]:
        """The row count and an order-independent checksum of the schema's columns, computed by
        Spark: the sum of each row's 64-bit hash (a change detector for the version's identity, not
        a security hash). Only these two numbers leave the cluster."""
        F = _functions()
        hashed = F.expr(row_hash(self.specs, "checksum")).cast("decimal(20,0)")
        found = self._collect(
            self.rows().agg(
                F.count(F.lit(1)).alias("n"), F.coalesce(F.sum(hashed), F.lit(0)).cast("string").alias("s")
            ),
            "the checksum",
        )
        return int(found.column(0)[0].as_py()), str(found.column(1)[0].as_py())

    def restricted(self, where: Any) -> SparkCounts:
        """The counts of the rows ``where`` holds, on the same DataFrame (no new read of the files)."""
        restricted = copy.copy(self)
        restricted.where, restricted._domain = where, None
        return restricted

    def column_types(self) -> dict[str, str]:
        """Each column and its Spark type (``simpleString``)."""
        return dict(self.types)

    def sample_rows(self, *, where: Any, seed: int, limit: int) -> pd.DataFrame:
        """At most ``limit`` rows matching ``where`` (Spark SQL or a column), a random sample keyed by
        ``seed``, as a frame of the schema's columns (values as Spark returns them)."""
        names = [spec.name for spec in self.specs]
        chosen = (
            self.data.where(where)
            .orderBy(_functions().expr(row_hash(self.specs, "sample", int(seed))))
            .limit(int(limit))
            .select(*[_functions().col(_quoted(name)) for name in names])
        )
        frame: pd.DataFrame = self._collect(chosen, "the audit's sample").to_pandas()
        return frame

    def row_chunks(self, chunk_rows: int) -> Iterator[list[tuple[Any, ...]]]:
        """The schema's columns of every row, ``chunk_rows`` Python tuples at a time (one partition
        in the worker at a time), for the keyed row digests of the population-overlap check."""
        F = _functions()
        # a timestamp as its text in the session's time zone (UTC), not Python's local time
        chosen = self.data.select(
            *[
                F.col(_quoted(spec.name)).cast("string") if spec.type == "datetime" else F.col(_quoted(spec.name))
                for spec in self.specs
            ]
        )
        chunk: list[tuple[Any, ...]] = []
        # bounded by the wait for each row; the worker's own time with a chunk is not Spark's
        with self._bounded("streaming the rows for the fingerprint") as watchdog:
            for row in chosen.toLocalIterator(prefetchPartitions=False):
                watchdog.kick()
                chunk.append(tuple(row))
                if len(chunk) >= chunk_rows:
                    with watchdog.paused():
                        yield chunk
                    chunk = []
        if chunk:
            yield chunk
