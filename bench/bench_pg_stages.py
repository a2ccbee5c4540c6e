"""A PostgreSQL MST fit of ``bench_scale.py``'s table, timed by stage.

Usage::

    PGOPTIONS="-c max_parallel_workers_per_gather=0" DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres \\
        flock /tmp/synthgate-bench.lock .venv/bin/python bench/bench_pg_stages.py --rows 10000000 \\
        [--params '{"selection_rows": 0}']

The table is ``bench_scale.py``'s (made by it, kept in ``synthgate_bench_scale``). Each
``PostgresCounts`` stage (``rows``, ``domain``, ``fine``, each ``binned`` pass: with the selection's
sample, the scored tables on the sample, then the measured ones) prints its wall time, the CPU of
both backends (from ``/proc``: the server runs on this machine; parallel workers off, so it is all
of the server's CPU) and, for the binned passes, the connections' summed wall time filling the
temporary table (``fill``), analyzing it and counting over it. Then the fit's wall time, the
worker's CPU and peak RSS, the backends' CPU, the tree's edges and the load.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import warnings
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

import bench_scale  # noqa: E402

TIMED: list[tuple[str, float]] = []


def timed_cursor(cursor: Any) -> Any:
    """``cursor``, noting each statement's kind and wall time in ``TIMED``."""

    class Timed:
        def __enter__(self) -> Timed:
            cursor.__enter__()
            return self

        def __exit__(self, *exc: Any) -> Any:
            return cursor.__exit__(*exc)

        def __getattr__(self, name: str) -> Any:
            return getattr(cursor, name)

        def execute(self, sql: str, params: Any = None) -> Any:
            started = time.perf_counter()
            found = cursor.execute(sql, params) if params is not None else cursor.execute(sql)
            kind = "other"
            if sql.startswith("INSERT"):
                kind = "fill"
            elif sql.startswith("ANALYZE"):
                kind = "analyze"
            elif sql.startswith("SELECT") and "GROUPING" in sql:
                kind = "count"
            TIMED.append((kind, time.perf_counter() - started))
            return found

    return Timed()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=float, default=1e6)
    parser.add_argument("--params", default="{}", help="MSTGenerator parameters, as JSON")
    arguments = parser.parse_args()
    import psycopg2

    from synth_engine.engines import postgres
    from synth_engine.engines.postgres import PostgresCounts
    from synth_engine.generators import MSTGenerator

    rows = int(arguments.rows)
    counted = bench_scale.counted_connection()
    database = psycopg2.connect(bench_scale.scratch_url())
    with database.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        backend = int(cursor.fetchone()[0])

    def server_cpu() -> float:
        return bench_scale.process_cpu_s(backend) + bench_scale.DATABASE_CPU.get("others", 0.0)

    original = postgres.table_counted_rows

    def table_counted_rows(connection: Any, *args: Any, **kwargs: Any) -> Any:
        class Connection:
            def __getattr__(self, name: str) -> Any:
                return getattr(connection, name)

            def cursor(self) -> Any:
                return timed_cursor(connection.cursor())

        return original(Connection(), *args, **kwargs)

    postgres.table_counted_rows = table_counted_rows

    class Staged(PostgresCounts):
        def _stage(self, name: str, count: Any, *args: Any, **kwargs: Any) -> Any:
            started, cpu, first = time.perf_counter(), server_cpu(), len(TIMED)
            found = count(*args, **kwargs)
            parts: dict[str, float] = {}
            for kind, seconds in TIMED[first:]:
                parts[kind] = round(parts.get(kind, 0.0) + seconds, 1)
            wall, used = time.perf_counter() - started, server_cpu() - cpu
            print(json.dumps({"stage": name, "wall_s": round(wall, 1), "db_cpu_s": round(used, 1), **parts}))
            return found

        def row_count(self) -> int:
            return int(self._stage("rows", super().row_count))

        def _domain_counts(self) -> dict[str, Any]:
            if self._domain is not None:
                return self._domain
            return dict(self._stage("domain", super()._domain_counts))

        def fine_counts(self, codecs: Any) -> Any:
            return self._stage("fine", super().fine_counts, codecs)

        def binned_counts(self, codecs: Any, bins: Any, groups: Any, sample: Any = None) -> Any:
            name = f"binned ({len(groups)} groups{', sampled' if sample is not None else ''})"
            return self._stage(name, super().binned_counts, codecs, bins, groups, sample)

    source = Staged(
        database,
        f"bench_scale_{rows}",
        bench_scale.bench_schema(),
        connect=lambda: psycopg2.connect(bench_scale.scratch_url(), connection_factory=counted),
    )
    started, cpu = time.perf_counter(), time.process_time()
    source.check()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = MSTGenerator(**json.loads(arguments.params)).fit_counts(
            source, bench_scale.bench_schema(), bench_scale.EPSILON, bench_scale.DELTA, random_state=1
        )
    figures = {
        "rows": rows,
        "fit_s": round(time.perf_counter() - started, 1),
        "worker_cpu_s": round(time.process_time() - cpu, 1),
        "db_cpu_s": round(server_cpu(), 1),
        "worker_rss_mb": round(bench_scale.peak_rss_mb()),
        "edges": [list(edge) for edge in model.edges_],
        "load": round(os.getloadavg()[0], 1),
    }
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
