"""Scheduled drift audits: a release made through the real path goes stale only when a new source
version drifts; the beat-scheduled task does the same through a real worker against Redis."""

from __future__ import annotations

import io
import os
import re
import subprocess
import sys
import time
from html import unescape
from pathlib import Path

import pandas as pd
import pytest
from django.conf import settings
from django.core import mail
from django.core.management import call_command
from django.test import Client

from audits.models import DriftRun, DriftSchedule, Release
from audits.services import drift_audit_run, drift_beat_schedule_ensure, drift_schedule_set, release_create, risk_accept
from audits.services.drift_audits import BEAT_TASK
from core.errors import PermissionDeniedError
from governance.models import AuditEvent, RequestState
from governance.services import dataset_register
from synth_engine.services import generation_job_start
from tests.conftest import FIXTURES
from tests.jobs.conftest import approved_request_create, reasons_for

pytestmark = pytest.mark.django_db(transaction=True)


def _released(cast, schema) -> Release:
    """One request through approval, generation, audit (risk accepted if it failed) and release."""
    request = approved_request_create(cast, schema, rows=1600)
    generation_job_start(actor=cast.requester, request_id=request.pk)
    request.refresh_from_db()
    if request.state == RequestState.BLOCKED:
        run = request.audit_runs.order_by("-id").first()
        risk_accept(
            actor=cast.second_approver,
            request_id=request.pk,
            reasons=reasons_for(run, "drift test: fidelity is enough"),
        )
    return release_create(actor=cast.approver, request_id=request.pk)


def _new_source(cast, schema, tmp_path: Path, *, drifted: bool) -> None:
    frame = pd.read_csv(FIXTURES / "adult_2000.csv", dtype=str, keep_default_na=False)
    if drifted:
        # Fifteen years older (the schema caps age at 90) and a far richer population.
        frame["age"] = (frame["age"].astype(int) + 15).clip(upper=90).astype(str)
        frame.loc[frame.index % 5 < 3, "income"] = ">50K"
    else:
        frame.loc[:4, "hours-per-week"] = "41"
    path = tmp_path / ("drifted.csv" if drifted else "refreshed.csv")
    frame.to_csv(path, index=False)
    dataset_register(
        actor=cast.steward,
        name="adult",
        path=path,
        filename=path.name,
        epsilon_cap="10",
        delta_cap="1e-4",
        schema=schema,
    )


def test_a_release_goes_stale_only_when_a_new_source_version_drifts(cast, adult_schema, tmp_path):
    release = _released(cast, adult_schema)
    mail.outbox.clear()  # the workflow's own notices (request filed, approved, released); drift sends its own
    assert [o.verdict for o in drift_audit_run(actor=cast.steward)] == ["no_new_source"]

    _new_source(cast, adult_schema, tmp_path, drifted=False)
    (outcome,) = drift_audit_run(actor=cast.steward, dataset_name="adult")
    assert outcome.verdict == "current", outcome.reasons
    release.refresh_from_db()
    assert release.stale_at is None and mail.outbox == []
    run = DriftRun.objects.get(release=release)
    assert not run.stale and run.source_checks[0]["value"] < 0.01
    assert {"age", "income"} <= set(run.per_column["release"])

    _new_source(cast, adult_schema, tmp_path, drifted=True)
    (outcome,) = drift_audit_run(actor=cast.steward)
    assert outcome.verdict == "stale"
    assert any("source drift: drift_psi" in reason for reason in outcome.reasons)
    release.refresh_from_db()
    assert release.stale_at is not None
    assert outcome.run.per_column["source"]["age"]["psi"] > 0.2
    event = AuditEvent.objects.get(action="release.stale")
    assert (event.object_id, event.actor_name, event.after["drift_run"]) == (str(release.pk), "steward", outcome.run.pk)
    # The steward reads why (the run's reasons and figures); the requester reads that it is stale,
    # with no figure (they compare real rows), and where to look.
    steward, requester = mail.outbox
    assert (steward.to, requester.to) == (["steward@example.org"], ["requester@example.org"])
    assert f"release #{release.pk}" in steward.subject and "drift_psi" in steward.body
    assert steward.subject == requester.subject and f"/releases/{release.pk}/" in requester.body
    assert "drift_psi" not in requester.body and not any(reason in requester.body for reason in outcome.reasons)
    assert not re.search(r"\d\.\d", requester.body), requester.body
    # The request's page shows the release.stale event: its reasons (the drift figures) to the
    # steward and auditor, and only that the event happened to the requester.
    for reader, reads in ((cast.steward, True), (cast.auditor, True), (cast.requester, False)):
        page = Client()
        page.force_login(reader)
        html = unescape(page.get(f"/requests/{release.request_id}/").content.decode())
        assert "release.stale" in html
        assert all((reason in html) is reads for reason in outcome.reasons), reader.username
        assert ("drift_psi" in html) is reads and ("the drift figures compare real rows" in html) is not reads

    # Running again changes nothing: no second run, event or email.
    out = io.StringIO()
    call_command("drift", "run", "--dataset", "adult", "--as", "steward", stdout=out)
    assert "already_stale" in out.getvalue()
    assert DriftRun.objects.filter(release=release).count() == 2 and len(mail.outbox) == 2
    assert AuditEvent.objects.filter(action="release.stale").count() == 1
    for reader in (cast.requester, cast.auditor):  # auditors are read-only
        with pytest.raises(PermissionDeniedError):
            drift_audit_run(actor=reader)


def test_the_beat_schedule_runs_the_drift_audit_through_a_real_worker(cast, adult_schema, tmp_path):
    from config.celery import app
    from tests.jobs.worker import broker_url, celery_worker, database_url

    broker_url()  # skip early without Redis, before the generation job
    release = _released(cast, adult_schema)
    _new_source(cast, adult_schema, tmp_path, drifted=True)
    task = drift_beat_schedule_ensure()
    assert (task.task, task.enabled, task.interval.every) == (BEAT_TASK, True, settings.SYNTHGATE_DRIFT_TICK_MINUTES)
    assert drift_beat_schedule_ensure().pk == task.pk  # idempotent, as `synthgate init` needs
    drift_schedule_set(actor=cast.steward, dataset_name="adult", interval_hours=24)
    # Tick every second for the test; the beat process reads the schedule from the database.
    task.interval.every, task.interval.period = 1, "seconds"
    task.interval.save()

    with celery_worker():
        queue = app.conf.task_default_queue
        beat = _beat_start(queue, database_url(), broker_url())
        try:
            _wait(lambda: Release.objects.get(pk=release.pk).stale_at is not None, beat)
        finally:
            beat.terminate()
            beat.wait(timeout=20)

    assert AuditEvent.objects.filter(action="release.stale", object_id=str(release.pk), channel="worker").exists()
    run = DriftRun.objects.get(release=release)
    assert run.stale and run.trigger == "schedule"
    assert DriftSchedule.objects.get(dataset__name="adult").last_run_at is not None
    # The worker's email backend (console, local settings) printed the notice to its log.
    logs = "".join(path.read_text() for path in Path(settings.DATA_DIR).glob(f"worker-{queue}.log"))
    assert f"Subject: Synthgate: release #{release.pk} of adult is stale" in logs


def _beat_start(queue: str, database_url: str, broker: str) -> subprocess.Popen:
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.settings.local",
        "DATABASE_URL": database_url,
        "CELERY_BROKER_URL": broker,
        "CELERY_TASK_DEFAULT_QUEUE": queue,
        "SYNTHGATE_DATA_DIR": str(settings.DATA_DIR),
        "PYTHONUNBUFFERED": "1",
    }
    log = open(Path(settings.DATA_DIR) / f"beat-{queue}.log", "w")  # noqa: SIM115 (the process owns it)
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "config",
            "beat",
            "--loglevel",
            "INFO",
            "--schedule",
            str(Path(settings.DATA_DIR) / f"beat-{queue}.db"),
            "--max-interval",
            "1",
        ],
        cwd=Path(__file__).resolve().parents[2],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )


def _wait(condition, beat: subprocess.Popen, timeout_seconds: float = 120) -> None:
    deadline = time.monotonic() + timeout_seconds
    while time.monotonic() < deadline:
        if condition():
            return
        if beat.poll() is not None:
            raise AssertionError(f"celery beat exited early with status {beat.returncode}")
        time.sleep(0.5)
    raise AssertionError("the scheduled drift audit never marked the release stale")


def test_a_re_audit_of_tables_above_the_sample_sizes_reads_streamed_samples(cast, adult_schema, tmp_path, settings):
    """Above the audit's sample sizes a drift re-audit compares uniform random samples streamed from
    the stored files, never a whole table, and records which; the verdicts stay those of the whole
    tables (a refreshed source is current, a drifted one stale)."""
    release = _released(cast, adult_schema)
    settings.SYNTHGATE_REFERENCE_AUDIT_ROWS, settings.SYNTHGATE_AUDIT_SYNTHETIC_ROWS = 600, 700

    def whole(*args, **kwargs):
        raise AssertionError("a drift re-audit read a table whole")

    from governance.storage import VersionStorage

    original = VersionStorage.read_version
    VersionStorage.read_version = whole
    try:
        _new_source(cast, adult_schema, tmp_path, drifted=False)
        (current,) = drift_audit_run(actor=cast.steward)
        _new_source(cast, adult_schema, tmp_path, drifted=True)
        (stale,) = drift_audit_run(actor=cast.steward)
    finally:
        VersionStorage.read_version = original

    assert current.verdict == "current", current.reasons
    assert stale.verdict == "stale" and any("source drift: drift_psi" in reason for reason in stale.reasons)
    for outcome in (current, stale):
        rows = outcome.run.compared_rows
        assert outcome.release.pk == release.pk
        assert (rows["reference"], rows["current"], rows["synthetic"]) == (600, 600, 700)
        assert rows["sampled"] == ["reference", "current", "synthetic"] and isinstance(rows["seed"], int)
    event = AuditEvent.objects.filter(action="drift.audit").order_by("-id").first()
    assert event.after["compared_rows"] == stale.run.compared_rows
