"""Benchmark the dashboard's column profiles: first computation and cached read, small and big.

Usage::

    nice -n 10 .venv/bin/python bench/bench_profiles.py                 # 2,000 and 1,000,000 rows
    nice -n 10 .venv/bin/python bench/bench_profiles.py --rows 2000000

Writes the 2,000-row adult fixture, and the same rows repeated to ``--rows``, to a throw-away
data directory (the test settings' temporary one), then times ``dashboard.profiles.version_profile``
twice per table: the first call reads the table (or, above ``SYNTHGATE_PROFILE_SAMPLE_ROWS``, one
pass keeping a sample) and stores the profile; the second reads the stored JSON. Prints seconds
and the peak resident memory of the process.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import resource
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.test")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=1_000_000)
    arguments = parser.parse_args()

    import django

    django.setup()
    from django.conf import settings

    from dashboard.profiles import version_profile
    from governance.models import DatasetVersion
    from governance.storage import version_storage

    schema = json.loads((ROOT / "sample_data" / "adult.schema.json").read_text())
    lines = (ROOT / "tests" / "fixtures" / "adult_2000.csv").read_text().splitlines()
    header, body = lines[0], lines[1:]
    print(f"sample limit: {settings.SYNTHGATE_PROFILE_SAMPLE_ROWS:,} rows")
    for n_rows in (len(body), arguments.rows):
        repeated = (body * (n_rows // len(body) + 1))[:n_rows]
        data = ("\n".join([header, *repeated]) + "\n").encode()
        digest = hashlib.sha256(data).hexdigest()
        key = f"bench/{digest}.csv"
        version_storage().write_new(key, data)
        version = DatasetVersion(storage_key=key, content_hash=digest, schema=schema, n_rows=n_rows, n_columns=15)
        started = time.perf_counter()
        profile = version_profile(version)
        first = time.perf_counter() - started
        started = time.perf_counter()
        version_profile(version)
        cached = time.perf_counter() - started
        assert profile is not None
        print(
            f"{n_rows:>10,} rows ({len(data) / 1e6:,.0f} MB): first {first:.2f} s "
            f"(profiled {profile['rows']:,} rows), cached {1000 * cached:.1f} ms"
        )
    print(f"peak RSS: {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:,.0f} MB")


if __name__ == "__main__":
    main()
