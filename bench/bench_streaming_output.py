"""Peak memory of writing a job's synthetic table: whole (the path before streaming) against
chunk by chunk (``synth_engine.streaming.sample_to_file``, the job's path).

Usage::

    .venv/bin/python bench/bench_streaming_output.py
    .venv/bin/python bench/bench_streaming_output.py --rows 2000000 --chunk 100000
    .venv/bin/python bench/bench_streaming_output.py --format parquet --modes chunked

MST is fitted once on the bundled Adult sample (48,842 rows × 15 columns, ε = 1, δ = 1e-6,
seed 0) and saved. Each mode then runs in a fresh process that loads the model and writes
``--rows`` synthetic rows in the stored form (typed and checked as an upload's cells, canonical
CSV or, with ``--format parquet``, Parquet; SHA-256 of the bytes):

- ``whole``: ``sample(rows)``, then the whole table's cells, typed frame and canonical bytes
  in memory, written at once (what a job did before streaming);
- ``chunked``: ``sample_to_file`` with ``--chunk`` rows a chunk, each written and hashed while
  the next ``SYNTHGATE_SAMPLE_DRAW_THREADS`` (2 unless set) are drawn, as a job's (Parquet: one
  row group a chunk). ``whole`` writes CSV only.

Printed per mode: peak RSS of the process after loading the model and at the end (``VmHWM``),
the time and rows/s of sampling and writing, the file size and its hash (equal between the
two modes only when one chunk holds every row: each chunk is a fresh draw from the model).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench_engine_counts import SCHEMA, generator_for_table  # noqa: E402  (this script's folder)

from synth_engine.generators import MSTGenerator  # noqa: E402
from synth_engine.streaming import ChunkDraws, sample_to_file, table_from_frame  # noqa: E402


def peak_rss_mb() -> float:
    """This process's peak RSS since its exec (``VmHWM``)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmHWM in /proc/self/status")


def fit(directory: Path) -> None:
    generator_for_table(epsilon=1.0).save(directory)


def child(mode: str, model: str, rows: int, chunk: int, out: str, file_format: str = "csv") -> dict[str, Any]:
    generator = MSTGenerator.load(Path(model))
    loaded_mb = peak_rss_mb()
    started = time.perf_counter()
    if mode == "whole":
        table = table_from_frame(generator.sample(rows), SCHEMA)
        target = Path(out) / "whole.csv"
        target.write_bytes(table.canonical_bytes)
        digest, size = table.content_hash, len(table.canonical_bytes)
    else:
        threads = int(os.environ.get("SYNTHGATE_SAMPLE_DRAW_THREADS", "2"))  # the job's default
        draws = ChunkDraws(generator.seeded_output, threads)
        streamed = sample_to_file(draws, rows, SCHEMA, Path(out), chunk_rows=chunk, file_format=file_format)
        with streamed.path.open("rb") as stream:  # read back in blocks: the check must not hold the file
            assert hashlib.file_digest(stream, "sha256").hexdigest() == streamed.content_hash
        digest, size = streamed.content_hash, streamed.size_bytes
        streamed.discard()
    seconds = time.perf_counter() - started
    return {
        "mode": mode,
        "format": file_format if mode == "chunked" else "csv",
        "rows": rows,
        "chunk_rows": chunk if mode == "chunked" else rows,
        "peak_rss_after_load_mb": round(loaded_mb, 1),
        "peak_rss_mb": round(peak_rss_mb(), 1),
        "seconds": round(seconds, 2),
        "rows_per_s": round(rows / seconds),
        "size_mb": round(size / 2**20, 1),
        "sha256": digest[:12],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=2_000_000)
    parser.add_argument("--chunk", type=int, default=100_000)
    parser.add_argument("--modes", nargs="+", default=["whole", "chunked"], choices=["whole", "chunked"])
    parser.add_argument("--format", default="csv", choices=["csv", "parquet"], help="the chunked mode's stored form")
    parser.add_argument("--child", nargs=3, metavar=("MODE", "MODEL", "OUT"), help=argparse.SUPPRESS)
    arguments = parser.parse_args()
    if arguments.child:
        mode, model, out = arguments.child
        print(json.dumps(child(mode, model, arguments.rows, arguments.chunk, out, arguments.format)))
        return
    with tempfile.TemporaryDirectory() as work:
        model = Path(work) / "model"
        fit(model)
        print(f"load average {os.getloadavg()[0]:.1f}", flush=True)
        for mode in arguments.modes:
            command = [sys.executable, __file__, "--rows", str(arguments.rows), "--chunk", str(arguments.chunk)]
            command += ["--format", arguments.format]
            result = subprocess.run(
                [*command, "--child", mode, str(model), work], capture_output=True, text=True, check=True
            )
            print(result.stdout.strip().splitlines()[-1], flush=True)


if __name__ == "__main__":
    main()
