"""Workers anywhere, with credentials that matter: the artefact bucket is on a moto server that
authenticates every request against its IAM (tests/s3.py, ``s3_iam``). A host whose access key is
unknown, whose secret is wrong, or whose key may read but not write is refused before it reads a
table or spends budget, with the cause named and no key shown anywhere; the key IAM gave the
worker stores and reads versions end to end."""

from __future__ import annotations

import json
import logging

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from rest_framework.test import APIClient

from audits.facts import datasheet_facts
from governance.models import AuditEvent, BudgetEntry, Dataset, DatasetVersion, EntryKind, RequestState
from governance.services import budget_reservation
from governance.storage import StorageAccessError, version_storage
from synth_engine.models import GenerationJob, JobStatus
from synth_engine.services import generation_job_run, generation_job_start
from tests.jobs.conftest import approved_request_create

pytestmark = pytest.mark.django_db(transaction=True)

UNKNOWN_KEY = ("AKIASYNTHGATEUNKNOWN", "unknown-secret-never-shown-0123456789")
CAUSES = {
    "an unknown access key": ("InvalidAccessKeyId", "the store does not know its access key id"),
    "a wrong secret": ("SignatureDoesNotMatch", "its secret access key does not match its access key id"),
}


def _keys(s3_iam, which: str) -> tuple[str, str]:
    return UNKNOWN_KEY if which == "an unknown access key" else (s3_iam.worker[0], "wrong-secret-never-shown-98765")


def _leaks(texts: list[str], *keys: tuple[str, str]) -> list[str]:
    secrets = [part for pair in keys for part in pair]
    return [line for text in texts for line in text.splitlines() if any(secret in line for secret in secrets)]


def _logged(caplog) -> str:
    """What this code base and Django logged, tracebacks included (moto's server, in this process,
    logs the requests it receives, signed headers and all: not ours to judge)."""
    ours = ("governance", "synth_engine", "audits", "dashboard", "core", "config", "django", "celery")
    formatter = logging.Formatter()
    records = [record for record in caplog.records if record.name.split(".")[0] in ours]
    return "\n".join(formatter.format(record) for record in records)


def _prefix() -> str:
    return version_storage().root.split("/", 1)[1] + "/"


@pytest.mark.parametrize("which", list(CAUSES))
def test_an_upload_by_a_host_with_wrong_credentials_is_refused_naming_the_cause_and_nothing_is_stored(
    cast, adult_csv, adult_schema, s3_iam, s3_iam_host, caplog, which
):
    caplog.set_level(logging.DEBUG)
    keys = _keys(s3_iam, which)
    s3_iam_host(keys)
    client = APIClient()
    client.force_authenticate(cast.steward)
    upload = SimpleUploadedFile("adult.csv", adult_csv.read_bytes(), content_type="text/csv")
    fields = {"name": "adult", "epsilon_cap": "10", "delta_cap": "1e-4", "schema": json.dumps(adult_schema)}

    answer = client.post("/api/datasets/", {"file": upload, **fields}, format="multipart")

    code, cause = CAUSES[which]
    body = answer.json()
    assert answer.status_code == 503 and body["code"] == "storage_refused", body
    assert cause in body["message"] and f"({code}, when it tried to write" in body["message"]
    assert "Nothing was read, written or spent" in body["message"]
    assert not Dataset.objects.exists() and not DatasetVersion.objects.exists()
    assert not BudgetEntry.objects.exists()  # no DP row estimate charged
    assert not AuditEvent.objects.filter(action__startswith="dataset").exists()
    assert s3_iam.keys_under(_prefix()) == []  # nothing half-written, not even the test object
    # The dashboard's form says the same beside the file, and keeps no staged copy it cannot store.
    client.force_login(cast.steward)
    page = client.post(
        "/datasets/new/",
        {
            **fields,
            "schema_json": fields["schema"],
            "sensitivity": "confidential",
            "file": SimpleUploadedFile("adult.csv", adult_csv.read_bytes()),
        },
    )
    assert page.status_code == 503 and cause in page.context["form"].errors["file"][0]
    assert page.context["form"].staged is None and s3_iam.keys_under(_prefix()) == []
    assert not _leaks([json.dumps(body), page.content.decode(), _logged(caplog)], keys, s3_iam.worker)


@pytest.mark.parametrize("which", list(CAUSES))
def test_a_job_started_by_a_host_with_wrong_credentials_is_refused_before_it_reads_or_spends(
    cast, adult_schema, s3_iam, s3_iam_host, caplog, which
):
    request = approved_request_create(cast, adult_schema)  # registered and approved with the worker's key
    stored = s3_iam.keys_under(_prefix())
    reserved = budget_reservation(request=request)
    caplog.set_level(logging.DEBUG)
    keys = _keys(s3_iam, which)
    s3_iam_host(keys)
    client = APIClient()
    client.force_authenticate(cast.requester)

    answer = client.post(f"/api/requests/{request.pk}/generate/")

    body = answer.json()
    assert answer.status_code == 503 and body["code"] == "storage_refused", body
    assert CAUSES[which][1] in body["message"]
    request.refresh_from_db()
    assert request.state == RequestState.APPROVED and not GenerationJob.objects.exists()
    assert budget_reservation(request=request) == reserved == (request.epsilon, request.delta)
    assert not BudgetEntry.objects.filter(request=request, kind=EntryKind.SPEND).exists()
    assert s3_iam.keys_under(_prefix()) == stored
    assert not _leaks([json.dumps(body), _logged(caplog)], keys, s3_iam.worker)


def test_a_worker_that_may_read_but_not_write_gives_the_request_back_unspent_and_the_worker_key_runs_it(
    cast, adult_schema, s3_iam, s3_iam_host, caplog, monkeypatch
):
    """Without the check, this worker would read the table, spend, train and only then fail to store
    the versions: the spend would stand for nothing. With it, nothing is read or spent, the request
    is ``approved`` again with its reservation, and a worker with the right key runs it to the end."""
    from synth_engine import services

    enqueue = services._enqueue
    caplog.set_level(logging.DEBUG)
    request = approved_request_create(cast, adult_schema)
    monkeypatch.setattr(services, "_enqueue", lambda job, actor: None)  # queued: a worker takes it below
    job = generation_job_start(actor=cast.requester, request_id=request.pk)
    stored = s3_iam.keys_under(_prefix())
    s3_iam_host(s3_iam.read_only)  # the worker host's own credentials

    refused = generation_job_run(job_id=job.pk)

    assert refused.status == JobStatus.FAILED and refused.data_touched_at is None
    assert "not allowed to write objects" in refused.error and "(AccessDenied, when it tried to write" in refused.error
    assert "back to 'approved' with its reservation kept" in refused.error
    request.refresh_from_db()
    assert request.state == RequestState.APPROVED
    assert budget_reservation(request=request) == (request.epsilon, request.delta)
    assert set(BudgetEntry.objects.filter(request=request).values_list("kind", flat=True)) == {EntryKind.RESERVE}
    assert DatasetVersion.objects.filter(dataset=request.dataset).count() == 1  # the source alone
    assert s3_iam.keys_under(_prefix()) == stored
    assert AuditEvent.objects.filter(action="request.requeue", after__job=job.pk).exists()
    with pytest.raises(StorageAccessError, match="not allowed to write"):
        generation_job_start(actor=cast.requester, request_id=request.pk)  # this host cannot start it either

    s3_iam_host(s3_iam.worker)
    monkeypatch.setattr(services, "_enqueue", enqueue)
    again = generation_job_start(actor=cast.requester, request_id=request.pk)
    again.refresh_from_db()
    assert again.status == JobStatus.SUCCEEDED, again.error
    assert len(BudgetEntry.objects.filter(request=request, kind=EntryKind.SPEND)) == 1
    written = again.output_version
    reread = version_storage().read_version(written.storage_key, written.schema)
    assert len(reread) == written.n_rows == request.n_rows
    assert written.storage_key in [key.split("/", 1)[1] for key in s3_iam.keys_under(_prefix())]
    assert not [key for key in s3_iam.keys_under(_prefix()) if "/access-checks/" in key or ".part-" in key]
    run = request.audit_runs.get()
    shown = [refused.error, json.dumps(datasheet_facts(run), default=str), _logged(caplog)]
    assert not _leaks(shown, s3_iam.worker, s3_iam.read_only)
