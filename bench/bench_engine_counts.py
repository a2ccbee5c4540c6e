"""MST fitted from counts computed in PostgreSQL, or by DuckDB over a Parquet file, versus the
in-memory path, on large tables.

Usage::

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/sg_bench .venv/bin/python bench/bench_engine_counts.py
    .venv/bin/python bench/bench_engine_counts.py --rows 100000 1000000 --memory-up-to 1000000
    .venv/bin/python bench/bench_engine_counts.py --rows 1000000 --paths duckdb memory   # no PostgreSQL

The table: MST is fitted on the bundled Adult sample (48,842 rows, ε = 10, seed 0) and sampled to
the wanted size, twice; the 15 Adult columns of the first sample and five columns of the second
(renamed ``*_2``) make 20 columns with Adult's real marginals. It is copied into PostgreSQL
(``COPY``, in chunks of 500,000 rows) as ``bench_engine_<rows>`` when the ``postgresql`` path is
asked for and, up to ``--memory-up-to`` rows, written as a Parquet file for the ``duckdb`` path
(``DuckDBCounts``, memory limit 1 GB, the machine's cores) and the ``memory`` path (the whole frame).

Each fit runs in a fresh process so its peak RSS (``VmHWM``: interpreter, NumPy, pandas and, for
the in-memory path, the frame; for DuckDB, DuckDB's memory too, as it runs in the process) is its
own; PostgreSQL's own memory is not in it. ε = 1,
δ = 1e-5, the Adult schema (numeric bounds and the label's classes declared; the other category
lists estimated with DP, in the database). ``counts_s`` is the time spent in the source's counting passes
(domain, fine 1-ways, binned tables); ``fit_peak_rss_mb`` is the
peak RSS once the fit is done, ``peak_rss_mb`` after sampling 1,000,000 rows from the fitted model
(``sample_rows_per_s``). The machine is shared: compare CPU-bound figures
with the load average printed beside them.
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

import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from synth_engine.engines.duckdb import DuckDBCounts  # noqa: E402
from synth_engine.engines.postgres import PostgresCounts, quote_identifier  # noqa: E402
from synth_engine.generators import MSTGenerator  # noqa: E402

SCHEMA = json.loads((ROOT / "sample_data" / "adult.schema.json").read_text())
SECOND = ["workclass", "occupation", "hours-per-week", "capital-gain", "education"]
CHUNK = 500_000


def bench_schema() -> dict[str, Any]:
    columns = [dict(column) for column in SCHEMA["columns"]]
    by_name = {column["name"]: column for column in columns}
    extra = [{**by_name[name], "name": f"{name}_2", "role": "other"} for name in SECOND]
    return {"columns": columns + extra}


def generator_for_table(epsilon: float = 10.0) -> MSTGenerator:
    """MST fitted on the bundled Adult sample (seed 0, δ = 1e-6)."""
    adult = pd.read_csv(ROOT / "sample_data" / "adult.csv.gz", dtype=str, keep_default_na=False)
    for column in SCHEMA["columns"]:
        if column["type"] == "integer":
            adult[column["name"]] = pd.to_numeric(adult[column["name"]])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return MSTGenerator().fit(adult, SCHEMA, epsilon, 1e-6, random_state=0)


def make_table(connection: Any, rows: int, parquet: Path | None) -> str:
    """Create ``bench_engine_<rows>`` (once; not without a ``connection``) and, when asked, its Parquet copy."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = f"bench_engine_{rows}"
    if connection is None:
        generator = generator_for_table()
        assert parquet is not None
        writer = None
        for start in range(0, rows, CHUNK):
            size = min(CHUNK, rows - start)
            first, second = generator.sample(size), generator.sample(size)
            arrow = pa.Table.from_pandas(
                pd.concat([first, second[SECOND].add_suffix("_2")], axis=1), preserve_index=False
            )
            writer = writer or pq.ParquetWriter(parquet, arrow.schema)
            writer.write_table(arrow)
        if writer is not None:
            writer.close()
        return table
    schema = bench_schema()
    with connection.cursor() as cursor:
        cursor.execute("SELECT to_regclass(%s)", [table])
        exists = cursor.fetchone()[0] is not None
    if exists and (parquet is None or parquet.exists()):
        return table
    generator = generator_for_table()
    types = {"integer": "bigint"}
    columns = ", ".join(f"{quote_identifier(c['name'])} {types.get(c['type'], 'text')}" for c in schema["columns"])
    writer = None
    with connection.cursor() as cursor:
        cursor.execute(f"DROP TABLE IF EXISTS {table}")
        cursor.execute(f"CREATE UNLOGGED TABLE {table} ({columns})")
        for start in range(0, rows, CHUNK):
            size = min(CHUNK, rows - start)
            first, second = generator.sample(size), generator.sample(size)
            chunk = pd.concat([first, second[SECOND].add_suffix("_2")], axis=1)
            buffer = io.StringIO()
            chunk.to_csv(buffer, index=False, header=False)
            buffer.seek(0)
            cursor.copy_expert(f"COPY {table} FROM STDIN WITH (FORMAT csv)", buffer)
            if parquet is not None:
                arrow = pa.Table.from_pandas(chunk, preserve_index=False)
                writer = writer or pq.ParquetWriter(parquet, arrow.schema)
                writer.write_table(arrow)
        cursor.execute(f"ANALYZE {table}")
    connection.commit()
    if writer is not None:
        writer.close()
    return table


class Timed:
    """A count source that adds up the time spent in each question it forwards."""

    def __init__(self, source: Any) -> None:
        self.source, self.engine, self.seconds = source, source.engine, 0.0

    def __getattr__(self, name: str) -> Any:
        method = getattr(self.source, name)

        def timed(*args: Any, **kwargs: Any) -> Any:
            started = time.perf_counter()
            try:
                return method(*args, **kwargs)
            finally:
                self.seconds += time.perf_counter() - started

        return timed


def peak_rss_mb() -> float:
    """This process's peak RSS since its exec (``VmHWM``; ``ru_maxrss`` would include the parent's
    memory at fork, the table it just generated)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def child(path: str, rows: int, table: str, parquet: str) -> dict[str, Any]:
    """One fit in this (fresh) process; returns its figures."""
    import psycopg2
    import pyarrow.parquet as pq

    schema = bench_schema()
    started = time.perf_counter()
    cpu = time.process_time()
    if path == "duckdb":
        source = Timed(DuckDBCounts(parquet, schema))
        checked = time.perf_counter()
        source.check()
        check_s = time.perf_counter() - checked
        model = MSTGenerator().fit_counts(source, schema, 1.0, 1e-5, random_state=1)
        counts_s = source.seconds - check_s
    elif path == "postgresql":
        connection = psycopg2.connect(os.environ["DATABASE_URL"])
        source = Timed(PostgresCounts(connection, table, schema))
        checked = time.perf_counter()
        source.check()
        check_s = time.perf_counter() - checked
        model = MSTGenerator().fit_counts(source, schema, 1.0, 1e-5, random_state=1)
        counts_s = source.seconds - check_s
    else:
        frame = pq.read_table(parquet).to_pandas()
        loaded = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            model = MSTGenerator().fit(frame, schema, 1.0, 1e-5, random_state=1)
        check_s, counts_s = float("nan"), float("nan")
        started = loaded  # the fit, as the job times it once the frame is in memory
    fit_s = time.perf_counter() - started
    fit_cpu = time.process_time() - cpu
    fit_rss = peak_rss_mb()
    sampled = time.perf_counter()
    model.sample(1_000_000)
    sample_s = time.perf_counter() - sampled
    return {
        "path": path,
        "rows": rows,
        "columns": len(schema["columns"]),
        "check_s": round(check_s, 2),
        "counts_s": round(counts_s, 2),
        "fit_s": round(fit_s, 2),
        "fit_cpu_s": round(fit_cpu, 2),
        "fit_peak_rss_mb": round(fit_rss),
        "peak_rss_mb": round(peak_rss_mb()),
        "sample_rows_per_s": round(1_000_000 / sample_s),
        "engine": model.count_engine_,
        "load": round(os.getloadavg()[0], 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, nargs="+", default=[100_000, 1_000_000])
    parser.add_argument("--memory-up-to", type=int, default=1_000_000, help="largest table fitted in memory too")
    parser.add_argument("--paths", nargs="+", default=["postgresql", "duckdb", "memory"])
    parser.add_argument("--child", nargs=4, help=argparse.SUPPRESS)
    arguments = parser.parse_args()
    if arguments.child:
        path, rows, table, parquet = arguments.child
        print(json.dumps(child(path, int(rows), table, parquet)))
        return
    import psycopg2

    connection = psycopg2.connect(os.environ["DATABASE_URL"]) if "postgresql" in arguments.paths else None
    directory = Path(tempfile.mkdtemp(prefix="bench-engine-"))
    header = ["path", "rows", "columns", "check_s", "counts_s", "fit_s", "fit_cpu_s", "fit_peak_rss_mb", "peak_rss_mb"]
    header += ["sample_rows_per_s", "load"]
    print(" | ".join(header))
    for rows in arguments.rows:
        parquet = directory / f"bench_{rows}.parquet" if rows <= arguments.memory_up_to else None
        made = time.perf_counter()
        table = make_table(connection, rows, parquet)
        print(f"(table {table}: {time.perf_counter() - made:.0f} s to make)", file=sys.stderr)
        paths = ["postgresql"] + (["duckdb", "memory"] if parquet is not None else [])
        paths = [path for path in paths if path in arguments.paths]
        for path in paths:
            command = [sys.executable, __file__, "--child", path, str(rows), table, str(parquet)]
            output = subprocess.run(command, check=True, capture_output=True, text=True).stdout
            figures = json.loads(output.strip().splitlines()[-1])
            print(" | ".join(str(figures[key]) for key in header), flush=True)
        if parquet is not None:
            parquet.unlink()


if __name__ == "__main__":
    main()
