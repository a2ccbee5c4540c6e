"""MST at scale: N rows × 50 columns (mixed types) at ε = 1, counted in PostgreSQL, in DuckDB over
Parquet, in Spark (``local[2]``, ``synth_engine.engines.spark``) and, up to
``--memory-up-to`` rows, in memory; then sampled through the job's streaming path.

Usage::

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres \\
        nice -n 10 .venv/bin/python bench/bench_scale.py --rows 100000 1000000
    nice -n 10 .venv/bin/python bench/bench_scale.py --rows 10000000 --paths duckdb

The table (``make_chunk``): 50 columns driven by one latent normal so that they are correlated
(MST has a tree worth finding): a two-class label, 17 categorical columns (every other one with
declared categories, the rest estimated with DP), 14 integer and 12 float columns with declared
bounds (floats 2 % missing), 4 booleans and 2 datetimes with declared bounds. It is generated in
chunks of 500,000 rows (seeded by chunk), written as one Parquet file (row groups of 500,000) and,
for the ``postgresql`` path, copied (``COPY``) into an UNLOGGED table of the scratch database
``synthgate_bench_scale`` on the server of ``DATABASE_URL`` (created when missing, the table
kept between runs of the same size).

Each path runs in a fresh process (``--child``), so its peak RSS (``VmHWM``: the interpreter,
NumPy, pandas, DuckDB when embedded, the frame for the in-memory path) is its own; PostgreSQL's
and Spark's JVM memory are outside it (``jvm_rss_mb``: the JVM's and its Python workers' RSS once
the fit is done; ``jvm_peak_mb``: their summed RSS's peak during the fit, sampled every 0.2 s; its
CPU is not in ``fit_cpu_s`` but in ``jvm_cpu_s``: the JVM's and its Python workers' CPU from the
session's start to the fitted model). ``tree_peak_mb`` is the peak of the whole tree's summed RSS
during the fit (the worker, and Spark's JVM and Python workers when there are), sampled alike.
Printed:
``fit_s`` (wall, from opening the source to the fitted model; for the in-memory path from the
frame in memory), ``fit_cpu_s`` (this process's CPU), ``db_cpu_s`` (for ``postgresql``, the
server processes' CPU during the fit, read from ``/proc`` when the server runs on this machine:
the fit's connection's and those of the connections the engine opens to count a large table at
once; PostgreSQL's parallel workers are other processes, not in it: run with
``PGOPTIONS="-c max_parallel_workers_per_gather=0"`` to count all of the server's CPU),
``fit_rss_mb`` (peak RSS once fitted),
``draw_rows_per_s`` and ``draw_cpu_rows_per_s`` (the job's draws alone, ``model.seeded_output``
(text as ``Categorical``) through ``drawn_chunks``, ``SYNTHGATE_SAMPLE_DRAW_THREADS`` chunks (2
unless set) drawn at once, ``--sample-rows`` rows in chunks of 100,000, by wall and by CPU time),
``write_rows_per_s`` and ``write_cpu_rows_per_s`` (the job's path, ``sample_to_file``: drawn,
typed, checked and written as canonical CSV, the next chunks drawn on the drawing threads
meanwhile, each chunk's rows formatted in two runs at once), ``parquet_rows_per_s`` and
``parquet_cpu_rows_per_s`` (the same path writing a request's Parquet output: one row group a
chunk), ``csv_draw_ms`` / ``parquet_draw_ms`` (the drawing threads' CPU a chunk of 100,000 rows in
that path) and ``csv_rest_ms`` / ``parquet_rest_ms`` (the rest of the process's CPU a chunk: typing,
encoding, hashing, writing; on an idle 2-core machine their sum over two bounds the chunk's wall
time from below), ``peak_rss_mb`` at the end,
and the load average. The machine is shared: compare figures with the load beside them.
``BENCH_DUCKDB_MEMORY`` (default ``1GB``, the engine's) and ``BENCH_DUCKDB_THREADS`` set DuckDB's
limits. A path that fails prints its last error line instead of figures.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

CHUNK = 500_000
SAMPLE_CHUNK = 100_000
# chunks drawn at once, as a job's (the setting of the same name, 2 unless set)
DRAW_THREADS = int(os.environ.get("SYNTHGATE_SAMPLE_DRAW_THREADS", "2"))
DATABASE = "synthgate_bench_scale"
EPSILON, DELTA = 1.0, 1e-5


def bench_schema() -> dict[str, Any]:
    columns: list[dict[str, Any]] = [
        {"name": "label", "type": "categorical", "role": "label", "categories": ["no", "yes"]}
    ]
    for i in range(17):
        column: dict[str, Any] = {"name": f"cat{i:02d}", "type": "categorical", "role": "other"}
        if i % 2 == 0:
            column["categories"] = [f"v{j}" for j in range(3 + i)]
        columns.append(column)
    for i in range(14):
        columns.append({"name": f"int{i:02d}", "type": "integer", "role": "other", "min": 0, "max": 10 ** (1 + i % 5)})
    for i in range(12):
        columns.append({"name": f"flt{i:02d}", "type": "float", "role": "other", "min": -100.0, "max": 100.0})
    for i in range(4):
        columns.append({"name": f"bool{i}", "type": "boolean", "role": "other"})
    for i in range(2):
        columns.append(
            {
                "name": f"date{i}",
                "type": "datetime",
                "role": "other",
                "min": "2000-01-01T00:00:00",
                "max": "2025-12-31T00:00:00",
            }
        )
    return {"missing_values": [""], "columns": columns}


def make_chunk(rows: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    latent = rng.standard_normal(rows)
    out: dict[str, Any] = {}
    for column in bench_schema()["columns"]:
        value = latent * 0.7 + rng.standard_normal(rows) * 0.7
        kind = column["type"]
        if kind == "categorical":
            categories = column.get("categories") or [f"w{j}" for j in range(6)]
            index = np.clip(((value + 2.5) / 5 * len(categories)).astype(int), 0, len(categories) - 1)
            out[column["name"]] = np.asarray(categories, dtype=object)[index]
        elif kind == "integer":
            out[column["name"]] = np.clip(((value + 3) / 6 * column["max"]).round(), 0, column["max"]).astype(np.int64)
        elif kind == "float":
            floats = np.clip(value * 30, -100, 100)
            floats[rng.random(rows) < 0.02] = np.nan
            out[column["name"]] = floats
        elif kind == "boolean":
            out[column["name"]] = value > 0
        else:
            seconds = ((np.clip(value, -3, 3) + 3) / 6 * 25 * 365 * 86400).astype(np.int64)
            out[column["name"]] = np.datetime64("2000-01-01T00:00:00", "ns") + seconds.astype("timedelta64[s]")
    return pd.DataFrame(out)


def scratch_url() -> str:
    parts = urlsplit(os.environ.get("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/postgres"))
    return urlunsplit(parts._replace(path=f"/{DATABASE}"))


def make_data(rows: int, directory: Path, postgres: bool) -> tuple[Path, str]:
    """The Parquet file (always) and the PostgreSQL table (when asked), made once per size."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    parquet = directory / f"bench_scale_{rows}.parquet"
    table = f"bench_scale_{rows}"
    need_parquet = not parquet.exists()
    need_table = postgres and not _table_exists(table)
    if not (need_parquet or need_table):
        return parquet, table
    writer = None
    connection = _scratch_connection() if need_table else None
    if connection is not None:
        from synth_engine.engines.postgres import quote_identifier

        types = {"integer": "bigint", "float": "double precision", "boolean": "boolean", "datetime": "timestamp"}
        columns = ", ".join(
            f"{quote_identifier(c['name'])} {types.get(c['type'], 'text')}" for c in bench_schema()["columns"]
        )
        with connection.cursor() as cursor:
            cursor.execute(f"DROP TABLE IF EXISTS {table}")
            cursor.execute(f"CREATE UNLOGGED TABLE {table} ({columns})")
    for start in range(0, rows, CHUNK):
        chunk = make_chunk(min(CHUNK, rows - start), seed=start // CHUNK)
        if need_parquet:
            arrow = pa.Table.from_pandas(chunk, preserve_index=False)
            writer = writer or pq.ParquetWriter(parquet, arrow.schema, coerce_timestamps="us")  # Spark reads µs
            writer.write_table(arrow)
        if connection is not None:
            buffer = io.StringIO()
            chunk.to_csv(buffer, index=False, header=False)
            buffer.seek(0)
            with connection.cursor() as cursor:
                cursor.copy_expert(f"COPY {table} FROM STDIN WITH (FORMAT csv)", buffer)
    if writer is not None:
        writer.close()
    if connection is not None:
        with connection.cursor() as cursor:
            cursor.execute(f"ANALYZE {table}")
        connection.commit()
        connection.close()
    return parquet, table


def _scratch_connection() -> Any:
    import psycopg2

    administration = psycopg2.connect(os.environ.get("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/postgres"))
    administration.autocommit = True
    with administration.cursor() as cursor:
        cursor.execute("SELECT 1 FROM pg_database WHERE datname = %s", [DATABASE])
        if cursor.fetchone() is None:
            cursor.execute(f"CREATE DATABASE {DATABASE}")
    administration.close()
    return psycopg2.connect(scratch_url())


def _table_exists(table: str) -> bool:
    connection = _scratch_connection()
    with connection.cursor() as cursor:
        cursor.execute("SELECT to_regclass(%s)", [table])
        exists = cursor.fetchone()[0] is not None
    connection.close()
    return exists


def peak_rss_mb() -> float:
    """This process's peak RSS since its exec (``VmHWM``)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def children_rss_mb() -> float:
    import psutil

    return sum(child.memory_info().rss for child in psutil.Process().children(recursive=True)) / 2**20


class TreePeak:
    """The peak RSS of this process and its children (Spark's JVM and its Python workers), summed,
    sampled every ``seconds`` in a thread until :meth:`stop` (a child's pages shared with another
    are counted in each, as RSS counts them)."""

    def __init__(self, seconds: float = 0.2) -> None:
        import threading

        import psutil

        self.process = psutil.Process()
        self.tree_mb = self.children_mb = 0.0
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._sample, args=(seconds,), daemon=True)
        self._thread.start()

    def _sample(self, seconds: float) -> None:
        import psutil

        while True:
            own = self.process.memory_info().rss
            children = 0
            for child in self.process.children(recursive=True):
                try:
                    children += child.memory_info().rss
                except psutil.Error:  # a Python worker that ended meanwhile
                    continue
            self.tree_mb = max(self.tree_mb, (own + children) / 2**20)
            self.children_mb = max(self.children_mb, children / 2**20)
            if self._stopped.wait(seconds):
                return

    def stop(self) -> None:
        self._stopped.set()
        self._thread.join()


def children_cpu_s() -> float:
    """The CPU time of this process's children (Spark's JVM and its Python workers), ended ones included."""
    import psutil

    return sum(sum(child.cpu_times()[:4]) for child in psutil.Process().children(recursive=True))


def process_cpu_s(pid: int) -> float:
    """The CPU time (user + system) of a process of this machine, from ``/proc``."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


DATABASE_CPU: dict[str, float] = {}


def counted_connection() -> type:
    """A psycopg2 connection class whose server process's CPU is added to ``DATABASE_CPU["others"]``
    when it is closed (the connections the engine opens to count a stage at once)."""
    import psycopg2.extensions

    class Counted(psycopg2.extensions.connection):
        def close(self) -> None:
            if not self.closed:
                with self.cursor() as cursor:
                    cursor.execute("SELECT pg_backend_pid()")
                    pid = int(cursor.fetchone()[0])
                if Path(f"/proc/{pid}/stat").exists():
                    DATABASE_CPU["others"] = DATABASE_CPU.get("others", 0.0) + process_cpu_s(pid)
            super().close()

    return Counted


def fit(path: str, parquet: str, table: str) -> tuple[Any, float, float]:
    """The fitted model, its wall time and this process's CPU time (the PostgreSQL server
    process's CPU during the fit goes in ``DATABASE_CPU``, when the server runs on this machine)."""
    from synth_engine.generators import MSTGenerator

    schema = bench_schema()
    started, cpu = time.perf_counter(), time.process_time()
    if path == "postgresql":
        import psycopg2

        from synth_engine.engines.postgres import PostgresCounts

        Counted = counted_connection()
        database = psycopg2.connect(scratch_url())
        # as synth_engine.sources.source_connection opens the job's: read-only, autocommit (the
        # counting connections then share one snapshot)
        database.set_session(readonly=True, autocommit=True)
        with database.cursor() as cursor:
            cursor.execute("SELECT pg_backend_pid()")
            backend = int(cursor.fetchone()[0])
        source: Any = PostgresCounts(
            database, table, schema, connect=lambda: psycopg2.connect(scratch_url(), connection_factory=Counted)
        )
    elif path == "duckdb":
        from synth_engine.engines.duckdb import DuckDBCounts

        limit, threads = os.environ.get("BENCH_DUCKDB_MEMORY", "1GB"), os.environ.get("BENCH_DUCKDB_THREADS")
        source = DuckDBCounts(parquet, schema, memory_limit=limit, threads=int(threads) if threads else None)
    elif path == "spark":
        from synth_engine.engines.spark import SparkCounts, spark_session

        # local[2] and the session's memory bounds: the engine's defaults; a start under a high load may be slow
        source = SparkCounts(spark_session(start_timeout=600), schema, parquet=parquet)
    else:
        import pyarrow.parquet as pq

        frame = pq.read_table(parquet).to_pandas()
        started, cpu = time.perf_counter(), time.process_time()  # the fit, once the frame is in memory
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            model = MSTGenerator().fit(frame, schema, EPSILON, DELTA, random_state=1)
        return model, time.perf_counter() - started, time.process_time() - cpu
    if hasattr(source, "check"):
        source.check()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = MSTGenerator().fit_counts(source, schema, EPSILON, DELTA, random_state=1)
    if path == "postgresql" and Path(f"/proc/{backend}/stat").exists():
        # the backend started with the fit, and those of the other connections counting at once
        DATABASE_CPU["db_cpu_s"] = process_cpu_s(backend) + DATABASE_CPU.get("others", 0.0)
    return model, time.perf_counter() - started, time.process_time() - cpu


def child(path: str, rows: int, parquet: str, table: str, sample_rows: int) -> dict[str, Any]:
    from synth_engine.streaming import ChunkDraws, drawn_chunks, sample_to_file

    tree = TreePeak()
    model, fit_s, fit_cpu = fit(path, parquet, table)
    tree.stop()
    fit_rss = peak_rss_mb()
    jvm_cpu = children_cpu_s()  # the JVM started with the fit: all of its CPU so far
    jvm_rss = children_rss_mb()  # Spark's JVM (a child process): its RSS now, not its peak
    drawing: list[float] = []  # the drawing threads' CPU of each draw in the job's path

    def prepare(rows: int) -> Any:
        draw = model.seeded_output(rows)  # the job's draws

        def timed() -> Any:
            started = time.thread_time()
            frame = draw()
            drawing.append(time.thread_time() - started)
            return frame

        return timed

    sizes = [min(SAMPLE_CHUNK, sample_rows - start) for start in range(0, sample_rows, SAMPLE_CHUNK)]
    sample = ChunkDraws(prepare, DRAW_THREADS)
    drawn, cpu = time.perf_counter(), time.process_time()
    for _ in drawn_chunks(sample, sizes):  # the job's draws: DRAW_THREADS chunks at once
        pass
    draw_s, draw_cpu = time.perf_counter() - drawn, time.process_time() - cpu
    drawing[:] = []

    chunks = -(-sample_rows // SAMPLE_CHUNK)
    with tempfile.TemporaryDirectory(prefix="bench-scale-") as scratch:
        written, cpu = time.perf_counter(), time.process_time()
        streamed = sample_to_file(sample, sample_rows, bench_schema(), Path(scratch), chunk_rows=SAMPLE_CHUNK)
        write_s, write_cpu = time.perf_counter() - written, time.process_time() - cpu
        csv_draw_cpu, drawing[:] = sum(drawing), []
        size = streamed.size_bytes
        streamed.discard()
        written, cpu = time.perf_counter(), time.process_time()
        streamed = sample_to_file(
            sample,
            sample_rows,
            bench_schema(),
            Path(scratch),
            chunk_rows=SAMPLE_CHUNK,
            file_format="parquet",
        )
        parquet_s, parquet_cpu = time.perf_counter() - written, time.process_time() - cpu
        parquet_draw_cpu = sum(drawing)
        parquet_size = streamed.size_bytes
        streamed.discard()
    return {
        "path": path,
        "rows": rows,
        "columns": len(bench_schema()["columns"]),
        "engine": model.count_engine_,
        "fit_s": round(fit_s, 1),
        "fit_cpu_s": round(fit_cpu, 1),
        "db_cpu_s": round(DATABASE_CPU["db_cpu_s"], 1) if "db_cpu_s" in DATABASE_CPU else "",
        "fit_rss_mb": round(fit_rss),
        "jvm_rss_mb": round(jvm_rss) if jvm_rss else "",
        "jvm_cpu_s": round(jvm_cpu, 1) if jvm_rss else "",
        "jvm_peak_mb": round(tree.children_mb) if jvm_rss else "",
        "tree_peak_mb": round(tree.tree_mb),
        "draw_rows_per_s": round(sample_rows / draw_s),
        "draw_cpu_rows_per_s": round(sample_rows / draw_cpu),
        "write_rows_per_s": round(sample_rows / write_s),
        "write_cpu_rows_per_s": round(sample_rows / write_cpu),
        "csv_mb": round(size / 1e6),
        "csv_draw_ms": round(1000 * csv_draw_cpu / chunks),
        "csv_rest_ms": round(1000 * (write_cpu - csv_draw_cpu) / chunks),
        "parquet_rows_per_s": round(sample_rows / parquet_s),
        "parquet_cpu_rows_per_s": round(sample_rows / parquet_cpu),
        "parquet_mb": round(parquet_size / 1e6),
        "parquet_draw_ms": round(1000 * parquet_draw_cpu / chunks),
        "parquet_rest_ms": round(1000 * (parquet_cpu - parquet_draw_cpu) / chunks),
        "peak_rss_mb": round(peak_rss_mb()),
        "load": round(os.getloadavg()[0], 1),
    }


def engine_available(path: str) -> bool:
    if path != "spark":
        return True
    import importlib.util

    return importlib.util.find_spec("synth_engine.engines.spark") is not None


HEADER = [
    "path",
    "rows",
    "columns",
    "engine",
    "fit_s",
    "fit_cpu_s",
    "db_cpu_s",
    "fit_rss_mb",
    "jvm_rss_mb",
    "jvm_cpu_s",
    "jvm_peak_mb",
    "tree_peak_mb",
]
HEADER += ["draw_rows_per_s", "draw_cpu_rows_per_s", "write_rows_per_s", "write_cpu_rows_per_s", "csv_mb"]
HEADER += ["csv_draw_ms", "csv_rest_ms", "parquet_rows_per_s", "parquet_cpu_rows_per_s", "parquet_mb"]
HEADER += ["parquet_draw_ms", "parquet_rest_ms", "peak_rss_mb", "load"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, nargs="+", default=[100_000, 1_000_000], help="N (e.g. 1e5 1e6 1e7)")
    parser.add_argument("--paths", nargs="+", default=["postgresql", "duckdb", "spark", "memory"])
    parser.add_argument("--memory-up-to", type=int, default=1_000_000, help="largest N fitted in memory too")
    parser.add_argument("--sample-rows", type=int, default=1_000_000)
    parser.add_argument("--directory", default=str(Path(tempfile.gettempdir()) / "bench-scale"))
    parser.add_argument("--keep", action="store_true", help="keep the Parquet files for the next run")
    parser.add_argument("--child", nargs=5, help=argparse.SUPPRESS)
    arguments = parser.parse_args()
    if arguments.child:
        path, rows, parquet, table, sample_rows = arguments.child
        print(json.dumps(child(path, int(float(rows)), parquet, table, int(sample_rows))))
        return
    directory = Path(arguments.directory)
    directory.mkdir(parents=True, exist_ok=True)
    print(" | ".join(HEADER), flush=True)
    for rows in [int(float(value)) for value in arguments.rows]:
        paths = [p for p in arguments.paths if p != "memory" or rows <= arguments.memory_up_to]
        paths = [p for p in paths if engine_available(p) or print(f"({p}: engine not built yet)", file=sys.stderr)]
        made = time.perf_counter()
        parquet, table = make_data(rows, directory, postgres="postgresql" in paths)
        print(f"(N = {rows:,}: data made in {time.perf_counter() - made:.0f} s)", file=sys.stderr, flush=True)
        for path in paths:
            command = [sys.executable, __file__, "--child", path, str(rows), str(parquet), table]
            result = subprocess.run([*command, str(arguments.sample_rows)], capture_output=True, text=True)
            if result.returncode != 0:
                print(f"({path} at N = {rows:,} failed: {result.stderr.strip().splitlines()[-1:]})", flush=True)
                continue
            figures = json.loads(result.stdout.strip().splitlines()[-1])
            print(" | ".join(str(figures[key]) for key in HEADER), flush=True)
        if not arguments.keep:
            parquet.unlink(missing_ok=True)


if __name__ == "__main__":
    main()
