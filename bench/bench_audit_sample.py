"""Peak memory and time of the audit's sample of a large uploaded version: the whole stored table
read and sampled (the path before) against the sample's rows read from the file as a stream
(``VersionStorage.read_version_rows``, what ``audits.services.runs._stored_sample`` does now).

Usage::

    nice -n 10 .venv/bin/python bench/bench_audit_sample.py --rows 1000000 --sample 20000

The stored version is the bundled Adult sample (48,842 rows × 15 columns) in its stored form
(canonical CSV) repeated to ``--rows`` rows. Each mode runs in a fresh process and prints its wall
time, CPU seconds, peak RSS (``VmHWM``) and a digest of the sampled frame (equal between the modes:
the same rows and dtypes).
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

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.local")


def peak_rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmHWM in /proc/self/status")


def schema() -> dict:
    return json.loads((ROOT / "sample_data" / "adult.schema.json").read_text())


def build(directory: Path, rows: int) -> None:
    import gzip

    import django

    django.setup()
    from governance.ingest import canonical_bytes, read_table
    from governance.services import ingest_limits

    adult = directory / "adult.csv"
    adult.write_bytes(gzip.decompress((ROOT / "sample_data" / "adult.csv.gz").read_bytes()))
    table = read_table(adult, filename="adult.csv", limits=ingest_limits(), schema=schema())
    header, body = canonical_bytes(table.frame, table.schema).split(b"\n", 1)
    lines = body.splitlines(keepends=True)
    with open(directory / "version.csv", "wb") as out:
        out.write(header + b"\n")
        written = 0
        while written < rows:
            part = lines[: rows - written]
            out.writelines(part)
            written += len(part)
    (directory / "schema.json").write_text(json.dumps(table.schema))


def child(mode: str, directory: Path, rows: int, sample: int, seed: int) -> dict:
    import django

    django.setup()
    import numpy as np

    from governance.storage import VersionStorage

    storage = VersionStorage(str(directory))
    stored = json.loads((directory / "schema.json").read_text())
    start, cpu = time.perf_counter(), time.process_time()
    if mode == "whole":
        frame = storage.read_version("version.csv", stored)
        frame = frame.sample(n=sample, random_state=seed).sort_index().reset_index(drop=True)
    else:
        positions = np.sort(np.random.RandomState(seed).choice(rows, size=sample, replace=False))
        frame = storage.read_version_rows("version.csv", stored, positions.tolist())
        assert frame is not None
    digest = hashlib.sha256(frame.to_csv(index=False).encode() + str(list(map(str, frame.dtypes))).encode()).hexdigest()
    return {
        "mode": mode,
        "wall_s": round(time.perf_counter() - start, 1),
        "cpu_s": round(time.process_time() - cpu, 1),
        "peak_rss_mb": round(peak_rss_mb()),
        "sample_rows": len(frame),
        "digest": digest[:16],
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--sample", type=int, default=20_000)
    parser.add_argument("--seed", type=int, default=12345)
    parser.add_argument("--child", choices=["whole", "stream"])
    parser.add_argument("--directory")
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(args.child, Path(args.directory), args.rows, args.sample, args.seed)))
        return
    with tempfile.TemporaryDirectory(prefix="bench-audit-sample-") as folder:
        directory = Path(folder)
        build(directory, args.rows)
        size = (directory / "version.csv").stat().st_size
        print(f"stored version: {args.rows:,} rows × 15 columns, {size / 1e6:.1f} MB; sample {args.sample:,}")
        for mode in ("stream", "whole"):
            command = [sys.executable, __file__, "--child", mode, "--directory", folder]
            command += ["--rows", str(args.rows), "--sample", str(args.sample), "--seed", str(args.seed)]
            result = subprocess.run(command, capture_output=True, text=True, check=True)
            print(result.stdout.strip())
        print("load average:", " ".join(f"{value:.1f}" for value in os.getloadavg()))


if __name__ == "__main__":
    main()
