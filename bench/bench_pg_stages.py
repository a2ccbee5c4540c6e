"""A PostgreSQL MST fit of ``bench_scale.py``'s table, timed by stage.

Usage::

    PGOPTIONS="-c max_parallel_workers_per_gather=0" DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres \\
        flock /tmp/synthgate-bench.lock .venv/bin/python bench/bench_pg_stages.py --rows 10000000 \\
        [--params '{"selection_rows": 0}']

The table is ``bench_scale.py``'s (made by it, kept in ``synthgate_bench_scale``). Each
``PostgresCounts`` stage (``rows``, ``domain``, ``fine``, each ``binned`` pass: with the selection's
sample, the scored tables on the sample, then the measured ones) prints its wall time, the CPU of
the counting backends (from ``/proc``: the server runs on this machine; parallel workers off, so it
is all of the server's CPU) and the connections' summed wall time storing every row's fine codes
(``store``: the fine stage of a fit that keeps them), filling each binned pass's temporary table
(``fill``), analyzing and counting. Then the fit's wall time, the worker's CPU and peak RSS, the
backends' CPU, the tree's edges and the load. The fit's connection is opened as the job's
(``synth_engine.sources.source_connection``: read-only, autocommit), so its counting connections
share one snapshot.
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


def timed_cursor_class() -> type:
    """A psycopg2 cursor class noting each statement's kind and wall time in ``TIMED``."""
    import psycopg2.extensions

    class Timed(psycopg2.extensions.cursor):
        def execute(self, sql: Any, params: Any = None) -> Any:
            started = time.perf_counter()
            try:
                return super().execute(sql, params)
            finally:
                text = str(sql)
                kind = "other"
                if text.startswith("INSERT INTO synthgate_fine_"):
                    kind = "store"
                elif text.startswith("INSERT"):
                    kind = "fill"
                elif text.startswith("ANALYZE"):
                    kind = "analyze"
                elif "GROUPING" in text:
                    kind = "count"
                TIMED.append((kind, time.perf_counter() - started))

    return Timed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=float, default=1e6)
    parser.add_argument("--params", default="{}", help="MSTGenerator parameters, as JSON")
    arguments = parser.parse_args()
    import psycopg2

    from synth_engine.engines.postgres import PostgresCounts
    from synth_engine.generators import MSTGenerator

    rows = int(arguments.rows)
    counted = bench_scale.counted_connection()
    timed = timed_cursor_class()
    live: dict[int, int] = {}  # the other counting connections open now, and their backends

    class Live(counted):  # type: ignore[misc, valid-type]
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            with self.cursor() as cursor:
                cursor.execute("SELECT pg_backend_pid()")
                live[id(self)] = int(cursor.fetchone()[0])

        def close(self) -> None:
            live.pop(id(self), None)
            super().close()

    # as synth_engine.sources.source_connection opens the job's connection: read-only, autocommit
    database = psycopg2.connect(bench_scale.scratch_url(), cursor_factory=timed)
    database.set_session(readonly=True, autocommit=True)
    with database.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        backend = int(cursor.fetchone()[0])

    def server_cpu() -> float:
        others = sum(bench_scale.process_cpu_s(pid) for pid in list(live.values()))
        return bench_scale.process_cpu_s(backend) + others + bench_scale.DATABASE_CPU.get("others", 0.0)

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
        connect=lambda: psycopg2.connect(bench_scale.scratch_url(), connection_factory=Live, cursor_factory=timed),
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
