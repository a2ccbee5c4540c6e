"""What the audit log's signed checkpoints cost as objects in the artefact storage (workers on
several hosts) against lines of one file: the time to write N checkpoints (``checkpoint_sign``, one
ECDSA P-256 signature and one write each) and to read and verify them all (``checkpoints_read``,
what `log verify` does before comparing them with the chain), and the latest
(``checkpoint_latest``, what each datasheet reads); for the object stores, then the same after
``checkpoints_compact`` (`synthgate log compact`) folded all but the newest 100 into one signed
segment, and the compaction's own time.

Usage::

    nice -n 10 .venv/bin/python bench/bench_checkpoints.py --count 2000

Stores: ``file`` (SYNTHGATE_CHECKPOINT_PATH), ``directory`` (SYNTHGATE_STORAGE_URL a local
directory: a shared mount) and ``s3`` (moto's S3 server on this machine, through s3fs; a real
bucket adds the network's round trip to each request). No database is touched: the checkpoints
sign made-up heads.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.local")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--count", type=int, default=2000)
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="bench-checkpoints-"))
    os.environ["SYNTHGATE_DATA_DIR"] = str(folder / "data")

    import django

    django.setup()
    import boto3
    import s3fs
    from django.conf import settings
    from moto.server import ThreadedMotoServer

    from audits import datasheets
    from governance.services.checkpoints import checkpoint_sign, checkpoints_compact
    from governance.storage import _storage_for

    key, cert = datasheets.ensure_platform_key(folder / "secret", organisation="Bench")
    settings.SYNTHGATE_SIGNING_KEY_PATH, settings.SYNTHGATE_SIGNING_CERT_PATH = str(key), str(cert)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    for name, value in {
        "AWS_ENDPOINT_URL": endpoint,
        "AWS_ACCESS_KEY_ID": "bench",
        "AWS_SECRET_ACCESS_KEY": "bench",
        "AWS_DEFAULT_REGION": "us-east-1",
    }.items():
        os.environ[name] = value
    boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1").create_bucket(Bucket="bench")
    stores = {
        "file": ("", str(folder / "checkpoints.jsonl")),
        "directory": (str(folder / "shared"), ""),
        "s3": ("s3://bench/artefacts", ""),
    }
    print(f"{args.count:,} checkpoints; load average {' '.join(f'{v:.1f}' for v in os.getloadavg())}")
    for name, (url, path) in stores.items():
        settings.SYNTHGATE_STORAGE_URL, settings.SYNTHGATE_CHECKPOINT_PATH = url, path
        s3fs.S3FileSystem.clear_instance_cache()
        _storage_for.cache_clear()
        start, cpu = time.perf_counter(), time.process_time()
        for length in range(1, args.count + 1):
            checkpoint_sign(length=length, hash=hashlib.sha256(str(length).encode()).hexdigest())
        written, written_cpu = time.perf_counter() - start, time.process_time() - cpu
        print(
            f"{name:9s}  write {written / args.count * 1000:6.2f} ms each "
            f"({written_cpu / args.count * 1000:.2f} ms CPU)" + _read_all(args.count)
        )
        if name == "file":
            continue
        start, cpu = time.perf_counter(), time.process_time()
        compaction = checkpoints_compact(keep=100)
        compacted, compacted_cpu = time.perf_counter() - start, time.process_time() - cpu
        assert compaction.removed == args.count - 100, compaction
        print(f"{name:9s}  compact {compacted:6.2f} s ({compacted_cpu:.2f} s CPU), then" + _read_all(args.count))
    server.stop()


def _read_all(count: int) -> str:
    """Read and verify every checkpoint, then the latest (what `log verify` and a datasheet do)."""
    from governance.services.checkpoints import checkpoint_latest, checkpoints_read

    start, cpu = time.perf_counter(), time.process_time()
    read = checkpoints_read()
    verified, verified_cpu = time.perf_counter() - start, time.process_time() - cpu
    assert len(read.checkpoints) == count and not read.problems, read.problems[:3]
    start = time.perf_counter()
    latest = checkpoint_latest()
    assert latest is not None and latest.length == count
    latest_s = time.perf_counter() - start
    return f"  read+verify all {verified:6.2f} s ({verified_cpu:.2f} s CPU)  latest {latest_s * 1000:7.1f} ms"


if __name__ == "__main__":
    main()
