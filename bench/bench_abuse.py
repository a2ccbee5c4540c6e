"""Replay issue 12's abuse measurements against the API and print how each is answered.

Usage::

    .venv/bin/python bench/bench_abuse.py                         # SQLite
    DATABASE_URL=postgres://postgres@127.0.0.1:5432/synthgate .venv/bin/python bench/bench_abuse.py

Creates a throw-away test database (dropped at the end) and, through the Django test client,
sends: 80 wrong passwords to ``POST /api/auth/token/`` and 80 to the dashboard login (how many
are answered before the first 429, and the lockout), a 0.9 MB CSV with 100,000 columns, a CSV
with a NUL byte, a 1 MB rejection reason, JSON nested 100,000 deep, a 2 MB JSON body, a
compliance report for 0001-01-01..9999-12-31, and a 50 MB anonymous ``datasheet verify``
upload. For each it prints the status, the error code and the milliseconds to answer. Before
the limits the first, fourth and sixth held a worker or answered 500.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.test")


def main() -> None:
    import django

    django.setup()
    from django.db import connection

    old_name = connection.settings_dict["NAME"]
    connection.creation.create_test_db(verbosity=0, autoclobber=True)
    try:
        run()
    finally:
        connection.creation.destroy_test_db(old_name, verbosity=0)


def timed(label: str, send) -> None:
    started = time.perf_counter()
    response = send()
    elapsed = (time.perf_counter() - started) * 1000
    code = response.json().get("code", "") if response["Content-Type"].startswith("application/json") else ""
    print(f"{label:<52} {response.status_code}  {code:<20} {elapsed:8.0f} ms")


def run() -> None:
    from django.core.files.uploadedfile import SimpleUploadedFile
    from django.test import Client
    from rest_framework.test import APIClient

    from tests.governance.factories import PurposeFactory, cast_create, dataset_register_adult, request_file

    cast = cast_create()
    dataset_register_adult(steward=cast.steward)
    PurposeFactory()
    submitted = request_file(requester=cast.requester)
    steward, approver, auditor = APIClient(), APIClient(), APIClient()
    steward.force_authenticate(cast.steward)
    approver.force_authenticate(cast.approver)
    auditor.force_authenticate(cast.auditor)
    APIClient().get("/api/")  # import the URLconf before timing

    throttle("API token", lambda i: APIClient(REMOTE_ADDR="10.1.0.1").post(
        "/api/auth/token/", {"username": "steward", "password": f"wrong{i}"}, format="json"))  # fmt: skip
    dashboard = Client(REMOTE_ADDR="10.1.0.2")
    throttle("dashboard", lambda i: dashboard.post(
        "/accounts/login/", {"username": "requester", "password": f"wrong{i}"}))  # fmt: skip

    from governance.models import AuditEvent

    print(
        f"auth.lockout audit events for those 160 attempts: {AuditEvent.objects.filter(action='auth.lockout').count()}"
    )
    columns = 100_000
    wide = (",".join(f"c{i}" for i in range(columns)) + "\n" + ",".join("1" * columns) + "\n").encode()
    print(f"{'request':<52} status code {'':>17} time")
    timed(f"CSV with {columns:,} columns ({len(wide) / 1e6:.1f} MB)", lambda: steward.post(
        "/api/datasets/", upload(SimpleUploadedFile, wide), format="multipart"))  # fmt: skip
    timed("CSV with a NUL byte in a cell", lambda: steward.post(
        "/api/datasets/", upload(SimpleUploadedFile, b"a,b\n1,x\x00y\n"), format="multipart"))  # fmt: skip
    timed("rejection reason of 1,000,000 characters", lambda: approver.post(
        f"/api/requests/{submitted.pk}/reject/", {"reason": "x" * 1_000_000}, format="json"))  # fmt: skip
    timed("JSON nested 100,000 deep", lambda: steward.post(
        "/api/purposes/", "[" * 100_000 + "]" * 100_000, content_type="application/json"))  # fmt: skip
    timed("JSON body of 2 MB", lambda: steward.post(
        "/api/purposes/", '{"name": "' + "n" * 2_000_000 + '"}', content_type="application/json"))  # fmt: skip
    timed("compliance report 0001-01-01..9999-12-31", lambda: auditor.get(
        "/api/reports/compliance/", {"from": "0001-01-01", "to": "9999-12-31"}))  # fmt: skip
    big = SimpleUploadedFile("big.pdf", b"%PDF" + b"0" * (50 * 1024 * 1024), content_type="application/pdf")
    timed("anonymous datasheet verify of 50 MB", lambda: APIClient().post(
        "/api/datasheets/verify/", {"file": big}, format="multipart"))  # fmt: skip


def upload(file_class, content: bytes) -> dict:
    return {"file": file_class("t.csv", content, content_type="text/csv"), "name": "t", "epsilon_cap": "1",
            "delta_cap": "0"}  # fmt: skip


def throttle(label: str, attempt) -> None:
    statuses = [attempt(i).status_code for i in range(80)]
    first = statuses.index(429) + 1 if 429 in statuses else None
    answered = sum(1 for status in statuses if status != 429)
    print(f"{label} login: 80 wrong passwords -> {answered} answered, first 429 at attempt {first}, "
          f"{statuses.count(429)} refused with 429")  # fmt: skip


if __name__ == "__main__":
    main()
