"""Fuzz the whole REST API from its own OpenAPI schema (schemathesis), as every role.

Usage::

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/synthgate .venv/bin/python bench/fuzz_api.py
    .venv/bin/python bench/fuzz_api.py --examples 200 --seed 7

Creates a throw-away test database, the cast of users (steward, requester, approver, auditor),
the 2,000-row adult fixture and one submitted request, then calls every operation
``--examples`` times per person with inputs generated from ``/api/schema/`` (see
``tests/api_fuzz.py``). Prints the number of cases, the status codes seen and every server error
or schema violation; exits 1 if there is any. The suite runs the same fuzzer with a few examples
(``tests/governance/test_api_fuzz.py``); this is the fuller run.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.test")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--examples", type=int, default=100, help="examples per operation and person")
    parser.add_argument("--seed", type=int, default=None, help="derandomise (same cases every run)")
    parser.add_argument("--people", nargs="+", default=["steward", "requester", "approver", "auditor"])
    arguments = parser.parse_args()

    import logging

    import django

    django.setup()
    logging.getLogger("django.request").setLevel(logging.CRITICAL)  # one line per 4xx otherwise
    from django.db import connection
    from django.test.utils import setup_test_environment

    setup_test_environment()
    old_name = connection.settings_dict["NAME"]
    connection.creation.create_test_db(verbosity=0, autoclobber=True)
    try:
        from knox.models import AuthToken

        from tests.api_fuzz import fuzz_api
        from tests.governance.factories import PurposeFactory, cast_create, dataset_register_adult, request_file

        cast = cast_create()
        PurposeFactory()
        dataset_register_adult(steward=cast.steward)
        request_file(requester=cast.requester)
        tokens = {person: AuthToken.objects.create(user=getattr(cast, person))[1] for person in arguments.people}
        started = time.perf_counter()
        result = fuzz_api(tokens, max_examples=arguments.examples, seed=arguments.seed, progress=print)
        seconds = time.perf_counter() - started
    finally:
        connection.creation.destroy_test_db(old_name, verbosity=0)
    statuses = ", ".join(f"{status}: {count}" for status, count in sorted(result.by_status.items()))
    print(f"\n{result.cases:,} cases in {seconds:.0f} s; status codes {statuses}")
    print(f"{len(result.failures)} server errors or schema violations")
    for failure in result.failures:
        print(" -", failure)
    return 1 if result.failures else 0


if __name__ == "__main__":
    sys.exit(main())
