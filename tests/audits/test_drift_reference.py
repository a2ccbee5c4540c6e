"""Drift re-audits of a release whose source is a table registered by reference: each re-audit takes
a new snapshot where the table lives (row count, checksum, a random sample) and compares the release
with it, on the machine's PostgreSQL (the warehouse of tests/jobs/test_reference_source.py) and on
Parquet files read by DuckDB (the lake of tests/jobs/test_reference_parquet.py)."""

from __future__ import annotations

import time

import psycopg2
import pytest
from django.core import mail
from django.db import connection  # noqa: F401 (the skip condition reads it)
from django.test import Client
from django.utils import timezone

from audits.compliance import compliance_report_build
from audits.models import DriftRun
from governance.models import AuditEvent
from tests.audits.test_drift import _released
from tests.database import as_owner
from tests.jobs import test_reference_parquet as parquet_tests
from tests.jobs import test_reference_source as source_tests
from tests.jobs.test_reference_source import TABLE, register

warehouse = source_tests.warehouse  # the fixture: the adult table in a source database named "warehouse"
lake = parquet_tests.lake  # the fixture: the adult table as three Parquet files under an allowed root

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif("connection.vendor != 'postgresql'", reason="a referenced table needs PostgreSQL"),
]


@pytest.fixture
def released(cast, warehouse, adult_schema):
    registered = register(cast, adult_schema).version
    release = _released(cast, adult_schema)
    assert release.request.source_version_id == registered.pk
    mail.outbox.clear()
    return release, registered


def test_an_unchanged_table_gives_no_drift_and_a_changed_one_makes_the_release_stale(
    cast, warehouse, released, settings
):
    from audits.services import drift_audit_run

    release, registered = released
    (outcome,) = drift_audit_run(actor=cast.steward, dataset_name="adult")
    assert outcome.verdict == "current" and outcome.reasons == []
    snapshot = outcome.run.snapshot
    assert snapshot["checksum"] == registered.source_reference["checksum"] and snapshot["n_rows"] == 2000
    assert snapshot["unchanged"] and snapshot["sample_rows"] == 0 and snapshot["taken_at"]
    assert outcome.run.current_version is None and not outcome.run.failed
    # The same table content again: the run already made stands, nothing new is recorded.
    (again,) = drift_audit_run(actor=cast.steward)
    assert (again.verdict, again.run.pk) == ("current", outcome.run.pk)

    # The warehouse's loader changes rows after the release: fifteen years older, a richer population.
    with warehouse.cursor() as cursor:
        cursor.execute(f"UPDATE {TABLE} SET age = least(age + 15, 90)")
        cursor.execute(f"UPDATE {TABLE} SET income = '>50K' WHERE (age % 5) < 3")
    settings.SYNTHGATE_REFERENCE_AUDIT_ROWS = 1500  # the snapshot's sample is drawn in the database
    (drifted,) = drift_audit_run(actor=cast.steward)
    assert drifted.verdict == "stale", drifted.reasons
    assert any("source drift: drift_psi" in reason for reason in drifted.reasons)
    run = drifted.run
    assert run.snapshot["checksum"] != snapshot["checksum"] and run.snapshot["sample_rows"] == 1500
    assert not run.snapshot["unchanged"] and run.per_column["source"]["age"]["psi"] > 0.2
    release.refresh_from_db()
    assert release.stale_at is not None and [m.to for m in mail.outbox] == [
        ["steward@example.org"],
        ["requester@example.org"],
    ]
    event = AuditEvent.objects.get(action="drift.audit", object_id=str(run.pk))
    assert event.after["snapshot"]["checksum"] == run.snapshot["checksum"] and event.after["stale"] is True

    # Auditors see the snapshot: its checksum, time and sample size, on the compliance page.
    today = timezone.now().date()
    report = compliance_report_build(actor=cast.auditor, date_from=today, date_to=today)
    (row,) = [d for d in report["drift_audits"] if d["id"] == run.pk]
    assert (row["snapshot_checksum"], row["snapshot_sample_rows"]) == (run.snapshot["checksum"], 1500)
    client = Client()
    client.force_login(cast.auditor)
    page = client.get("/compliance/").content.decode()
    assert f"checksum {run.snapshot['checksum']}, sample of 1500 rows" in page


def test_a_table_whose_schema_no_longer_validates_fails_the_re_audit_with_its_reason(
    cast, warehouse, released, settings
):
    from audits.services import drift_audit_run

    release, _ = released
    # The loader holds the table (a reload in progress): the snapshot waits one second, then fails.
    settings.SYNTHGATE_REFERENCE_SNAPSHOT_TIMEOUT_SECONDS = 1
    with as_owner():
        loader = psycopg2.connect(source_tests.database_url())
    try:
        with loader.cursor() as cursor:
            cursor.execute(f"LOCK TABLE {TABLE} IN ACCESS EXCLUSIVE MODE")
        started = time.monotonic()
        (locked,) = drift_audit_run(actor=cast.steward, dataset_name="adult")
        assert time.monotonic() - started < 30
    finally:
        loader.rollback()
        loader.close()
    assert locked.verdict == "failed" and "could not be read" in locked.reasons[0]
    assert "canceling statement due to" in locked.reasons[0] and "timeout" in locked.reasons[0]
    mail.outbox.clear()

    with warehouse.cursor() as cursor:  # the loader turned a numeric column into text
        cursor.execute(f"ALTER TABLE {TABLE} ALTER COLUMN age TYPE text USING age::text")
    (outcome,) = drift_audit_run(actor=cast.steward, dataset_name="adult")
    assert outcome.verdict == "failed"
    (reason,) = outcome.reasons
    assert "no longer matches the schema" in reason and "'age'" in reason
    release.refresh_from_db()
    assert release.stale_at is None and outcome.run.failed and not outcome.run.stale
    (notice,) = mail.outbox
    assert notice.to == ["steward@example.org"] and "no longer matches the schema" in notice.body

    with warehouse.cursor() as cursor:  # gone altogether: failed again, with that reason; a later run retries
        cursor.execute(f"DROP TABLE {TABLE}")
    (outcome,) = drift_audit_run(actor=cast.steward)
    assert outcome.verdict == "failed" and "does not exist" in outcome.reasons[0]
    assert DriftRun.objects.filter(release=release, failed=True).count() == 3


def test_parquet_files_changed_after_the_release_are_snapshot_in_duckdb_and_found_drifted(
    cast, lake, adult_schema, settings
):
    import pandas as pd

    from audits.services import drift_audit_run

    parquet_tests.register(cast, adult_schema, lake)
    release = _released(cast, adult_schema)
    (unchanged,) = drift_audit_run(actor=cast.steward)
    assert unchanged.verdict == "current" and unchanged.run.snapshot["engine"] == "duckdb"
    assert unchanged.run.snapshot["unchanged"]
    for part in sorted((lake / "adult").glob("*.parquet")):  # the lake's loader rewrites every file, drifted
        frame = pd.read_parquet(part)
        frame["age"] = (frame["age"] + 15).clip(upper=90)
        frame.loc[frame.index % 5 < 3, "income"] = ">50K"
        frame.to_parquet(part, index=False)
    settings.SYNTHGATE_REFERENCE_AUDIT_ROWS = 1500
    (drifted,) = drift_audit_run(actor=cast.steward)
    assert drifted.verdict == "stale", drifted.reasons
    assert drifted.run.snapshot["sample_rows"] == 1500 and drifted.run.per_column["source"]["age"]["psi"] > 0.2
    release.refresh_from_db()
    assert release.stale_at is not None
