"""Benchmark the dashboard's five main pages with 1,000 requests in the database.

Usage::

    .venv/bin/python bench/bench_dashboard.py                    # SQLite, 1,000 requests, 5 repeats
    DATABASE_URL=postgres://postgres@127.0.0.1:5432/synthgate .venv/bin/python bench/bench_dashboard.py
    .venv/bin/python bench/bench_dashboard.py --requests 5000 --repeats 10

Creates a throw-away test database (``test_<name>``, dropped at the end), registers the 2,000-row
adult fixture through the service, then bulk-inserts ``--requests`` requests spread over every
state with their approvals, ledger rows, jobs, audit runs, datasheets and releases. One request
is filed and approved through the services so its page has a real timeline. Each page is loaded
with the Django test client (after one warm-up) as an approver, who sees every request, and as
a requester, who sees their own; the script prints the median milliseconds and the number of
SQL queries per page. The query count must not grow with the number of requests.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.test")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=1000)
    parser.add_argument("--repeats", type=int, default=5)
    arguments = parser.parse_args()

    import django

    django.setup()
    from django.db import connection

    # No setup_test_environment(): its template instrumentation (copying every context for
    # response.context) would be timed too; these are page loads, not assertions.
    old_name = connection.settings_dict["NAME"]
    connection.creation.create_test_db(verbosity=0, autoclobber=True)
    try:
        started = time.perf_counter()
        people, request_id = populate(arguments.requests)
        print(
            f"database: {connection.vendor}, {arguments.requests:,} requests + 1 through the services, "
            f"filled in {time.perf_counter() - started:.1f} s"
        )
        measure(people, request_id, arguments.repeats)
    finally:
        connection.creation.destroy_test_db(old_name, verbosity=0)


def populate(n_requests: int):
    from datetime import timedelta
    from decimal import Decimal

    from django.utils import timezone

    from audits.models import AuditKind, AuditRun, AuditStatus, Datasheet, Release
    from governance import services
    from governance.models import Approval, BudgetEntry, DataRequest, RequestState
    from synth_engine.models import GenerationJob, JobStatus

    services.roles_ensure()
    services.purposes_ensure_defaults()
    people = {
        name: services.user_create(username=name, roles=roles, actor=None, password=f"{name}-synthgate")[0]
        for name, roles in (
            ("steward", ["steward"]),
            ("bob", ["approver"]),
            ("carol", ["approver"]),
            ("dana", ["auditor"]),
        )
    }
    requesters = [services.user_create(username=f"requester{i}", roles=["requester"], actor=None)[0] for i in range(10)]
    people["alice"] = requesters[0]
    csv = ROOT / "tests" / "fixtures" / "adult_2000.csv"
    version = services.dataset_register(
        actor=people["steward"], name="adult", path=csv, filename=csv.name, epsilon_cap="1000", delta_cap="0.1"
    ).version
    purpose = services.purpose_create(
        actor=None, name="bench", max_epsilon="5", approvals_required=2, allowed_recipients=["internal"]
    )
    states = list(RequestState.values)
    now = timezone.now()
    requests = DataRequest.objects.bulk_create(
        [
            DataRequest(
                dataset=version.dataset,
                source_version=version,
                purpose=purpose,
                requester=requesters[i % len(requesters)],
                state=states[i % len(states)],
                epsilon=Decimal("0.01"),
                delta=Decimal("1e-9"),
                n_rows=1000 + i,
                submitted_at=now,
                justification=f"bench request {i}",
            )
            for i in range(n_requests)
        ]
    )
    requests = list(DataRequest.objects.filter(pk__in=[r.pk for r in requests]))
    decided = [r for r in requests if r.state not in (RequestState.DRAFT, RequestState.SUBMITTED)]
    Approval.objects.bulk_create(
        [
            Approval(request=r, approver=approver, requester_id=r.requester_id, decision="approve")
            for r in decided
            for approver in (people["bob"], people["carol"])
        ]
    )
    BudgetEntry.objects.bulk_create(
        [
            BudgetEntry(
                dataset=version.dataset, request=r, kind="reserve", epsilon=r.epsilon, delta=r.delta, note="bench"
            )
            for r in decided
        ]
    )
    GenerationJob.objects.bulk_create(
        [
            GenerationJob(request=r, generator="mst", status=JobStatus.RUNNING, phase="training", progress=40)
            for r in requests
            if r.state == RequestState.GENERATING
        ]
    )
    audited = [
        r
        for r in requests
        if r.state
        in (RequestState.READY, RequestState.BLOCKED, RequestState.RELEASED, RequestState.REVOKED, RequestState.EXPIRED)
    ]
    runs = AuditRun.objects.bulk_create(
        [
            AuditRun(
                version=version,
                train_version=version,
                holdout_version=version,
                request=r,
                kind=AuditKind.GENERATION,
                seed=1,
                finished_at=now,
                failed_checks=[] if i % 3 else ["tvd_1way"],
                status=AuditStatus.PASSED if i % 3 else AuditStatus.FAILED,
            )
            for i, r in enumerate(audited)
        ]
    )
    sheets = Datasheet.objects.bulk_create(
        [
            Datasheet(
                run=run,
                version=version,
                storage_key="bench.pdf",
                sha256=f"{run.pk:064x}",
                size_bytes=1,
                signer="bench",
                signed_at=now,
            )
            for run in runs
        ]
    )
    by_request = {run.request_id: (run, sheet) for run, sheet in zip(runs, sheets, strict=True)}
    Release.objects.bulk_create(
        [
            Release(
                request=r,
                version=version,
                audit_run=by_request[r.pk][0],
                datasheet=by_request[r.pk][1],
                released_by=people["bob"],
                expires_at=now + timedelta(days=5 + i % 60),
            )
            for i, r in enumerate(audited)
            if r.state in (RequestState.RELEASED, RequestState.REVOKED)
        ]
    )
    real = services.access_request_create(
        actor=people["alice"],
        dataset_name="adult",
        purpose_name="bench",
        epsilon="0.5",
        delta="1e-9",
        n_rows=500,
        recipient_kind="internal",
    )
    services.access_request_approve(actor=people["bob"], request_id=real.pk, reason="bench")
    services.access_request_approve(actor=people["carol"], request_id=real.pk)
    return people, real.pk


def measure(people, request_id: int, repeats: int) -> None:
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    pages = [
        ("home", "/"),
        ("datasets", "/datasets/"),
        ("requests", "/requests/"),
        ("request page", f"/requests/{request_id}/"),
        ("audits", "/audits/"),
    ]
    print(f"\n{'page':<14}{'as':<8}{'median ms':>10}{'min ms':>9}{'queries':>9}{'KB':>7}")
    for who in ("bob", "alice"):
        client = Client()
        client.force_login(people[who])
        for label, url in pages:
            client.get(url)  # warm-up: templates compiled, caches filled
            timings = []
            for _ in range(repeats):
                with CaptureQueriesContext(connection) as queries:
                    started = time.perf_counter()
                    response = client.get(url)
                    timings.append((time.perf_counter() - started) * 1000)
                assert response.status_code == 200, (url, response.status_code)
            print(
                f"{label:<14}{who:<8}{statistics.median(timings):>10.1f}{min(timings):>9.1f}"
                f"{len(queries):>9}{len(response.content) / 1024:>7.0f}"
            )


if __name__ == "__main__":
    main()
