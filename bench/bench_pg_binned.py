"""PostgreSQL's binned stage alone: the (label, a, b) tables of ``bench_scale.py``'s 50-column table.

Usage::

    nice -n 10 .venv/bin/python bench/bench_pg_binned.py --rows 100000 1000000 --ways packed columns

The table is ``bench_scale.py``'s (``make_chunk``, an UNLOGGED table of the scratch database
``synthgate_bench_scale`` on the server of ``DATABASE_URL``, made when missing). The codecs, bins
and groups are those MST asks for when fitted in memory on the first 100,000 rows at ε = 1
(1,225 groups: 1,176 (label, a, b) and 49 (label, a), the latter summed from the former). Each
way (``packed``: blocks of packed codes, :attr:`PostgresCounts.packed`, the label counted by
aggregates; ``label-keys``: the same with the label in the blocks' keys, ``lead_bins`` 0, as before;
``columns``: a grouping set a group, by columns) counts them with ``PostgresCounts.binned_counts`` on two
connections (``splits``), parallel workers off so that all of the server's CPU is in the two
backends. Printed: ``db_cpu_s`` (both backends' CPU, from ``/proc``: the server runs on this
machine), ``worker_cpu_s`` (this process), ``wall_s``, the load average, and whether every table
equals the first way's (and, at 100,000 rows, the in-memory counts). ``--block-cells`` and
``--statement-cells`` set the packed way's bounds (``max_block_cells``, ``max_packed_cells``).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

import bench_scale  # noqa: E402

OPTIONS = "-c max_parallel_workers_per_gather=0"
BOUNDS: dict[str, int] = {}


def asked() -> tuple[Any, Any, list[tuple[int, ...]], Any]:
    """The codecs, bins and groups MST's binned stage asks for, and the frame they came from."""
    from synth_engine.generators import MSTGenerator
    from synth_engine.generators.counts import FrameCounts

    class Recording(FrameCounts):
        def binned_counts(self, codecs, bins, groups):  # type: ignore[no-untyped-def]
            self.asked = (codecs, bins, groups)
            return super().binned_counts(codecs, bins, groups)

    frame = bench_scale.make_chunk(100_000, seed=0)
    source = Recording(frame)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        MSTGenerator().fit_counts(
            source, bench_scale.bench_schema(), bench_scale.EPSILON, bench_scale.DELTA, random_state=1
        )
    codecs, bins, groups = source.asked
    return codecs, bins, groups, source


def count(
    way: str, table: str, codecs: Any, bins: Any, groups: list[tuple[int, ...]]
) -> tuple[list[np.ndarray], dict[str, Any]]:
    import psycopg2

    from synth_engine.engines.postgres import PostgresCounts

    bench_scale.DATABASE_CPU.clear()
    Counted = bench_scale.counted_connection()
    url = bench_scale.scratch_url()
    main = psycopg2.connect(url, options=OPTIONS)
    main.autocommit = True
    with main.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        backend = int(cursor.fetchone()[0])
    source = PostgresCounts(
        main,
        table,
        bench_scale.bench_schema(),
        connect=lambda: psycopg2.connect(url, options=OPTIONS, connection_factory=Counted),
    )
    source.packed = way in ("packed", "label-keys")
    if way == "label-keys":  # the label in the blocks' keys, as before it was counted by aggregates
        source.lead_bins = 0
    source.max_block_cells = BOUNDS.get("block", source.max_block_cells)
    source.max_packed_cells = BOUNDS.get("statement", source.max_packed_cells)
    before, started, cpu = bench_scale.process_cpu_s(backend), time.perf_counter(), time.process_time()
    tables = source.binned_counts(codecs, bins, groups)
    wall, worker = time.perf_counter() - started, time.process_time() - cpu
    server = bench_scale.process_cpu_s(backend) - before + bench_scale.DATABASE_CPU.get("others", 0.0)
    main.close()
    return tables, {
        "wall_s": round(wall, 1),
        "db_cpu_s": round(server, 1),
        "worker_cpu_s": round(worker, 1),
        "paths": ",".join(sorted(set(source.paths))),
        "load": round(os.getloadavg()[0], 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, nargs="+", default=[100_000])
    parser.add_argument("--ways", nargs="+", default=["packed", "columns"], choices=["packed", "label-keys", "columns"])
    parser.add_argument("--directory", default="/tmp/bench-scale")
    parser.add_argument("--block-cells", type=int, help="PostgresCounts.max_block_cells (default: the engine's)")
    parser.add_argument("--statement-cells", type=int, help="PostgresCounts.max_packed_cells (default: the engine's)")
    arguments = parser.parse_args()
    if arguments.block_cells:
        BOUNDS["block"] = arguments.block_cells
    if arguments.statement_cells:
        BOUNDS["statement"] = arguments.statement_cells
    codecs, bins, groups, memory = asked()
    print(f"({len(groups)} groups; bins {[int(b.max()) + 1 for b in bins]})", flush=True)
    for rows in arguments.rows:
        Path(arguments.directory).mkdir(parents=True, exist_ok=True)
        _, table = bench_scale.make_data(rows, Path(arguments.directory), postgres=True)
        first = None
        expected = memory.binned_counts(codecs, bins, groups) if rows == 100_000 else None
        for way in arguments.ways:
            tables, figures = count(way, table, codecs, bins, groups)
            same = first is None or all(np.array_equal(a, b) for a, b in zip(tables, first, strict=True))
            if expected is not None:
                same = same and all(np.array_equal(a, b) for a, b in zip(tables, expected, strict=True))
            first = first or tables
            print(
                f"rows {rows:,} | {way} | " + " | ".join(f"{k} {v}" for k, v in figures.items()) + f" | same {same}",
                flush=True,
            )


if __name__ == "__main__":
    main()
