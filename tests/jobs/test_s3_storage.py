"""Workers anywhere: with SYNTHGATE_STORAGE_URL=s3://bucket/prefix (s3fs against moto's S3
server on this machine), every artefact a second host needs goes through the bucket. A job, its
audit and signed report run on "host A"; the release, its signed datasheet, the downloads and the
verifications run on "host B", whose data directory is empty; neither host's data directory holds
a version, a staged upload, a PDF or a report afterwards. Both hosts hold the same signing key,
configured from outside the data directory and outside the bucket (a mounted secret). The audit
log's signed checkpoints are objects in the bucket, so `log verify` on either host sees them all."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from audits import datasheets
from audits.services import release_create, release_download, risk_accept
from audits.services.datasheets import datasheet_verify
from audits.services.releases import audit_report_problems
from dashboard.uploads import upload_discard, upload_stage, upload_staged
from governance.models import AuditEvent, RequestState
from governance.services import audit_log_verify
from synth_engine.models import JobStatus
from synth_engine.services import generation_job_start
from tests.jobs.conftest import approved_request_create, reasons_for

pytestmark = pytest.mark.django_db(transaction=True)


def _files(directory: Path) -> list[str]:
    if not directory.exists():
        return []
    return sorted(str(path.relative_to(directory)) for path in directory.rglob("*") if path.is_file())


def test_a_job_audit_and_release_on_two_hosts_share_everything_through_the_bucket(
    cast, adult_schema, settings, tmp_path, s3_storage
):
    storage = s3_storage
    assert not storage.local and storage.url.startswith("s3://")
    key_path, cert_path = datasheets.ensure_platform_key(tmp_path / "secret", organisation="Synthgate")
    settings.SYNTHGATE_SIGNING_KEY_PATH, settings.SYNTHGATE_SIGNING_CERT_PATH = str(key_path), str(cert_path)
    host_a, host_b = tmp_path / "host-a", tmp_path / "host-b"

    settings.DATA_DIR = host_a
    request = approved_request_create(cast, adult_schema)
    settings.SYNTHGATE_SAMPLE_CHUNK_ROWS = 150
    job = generation_job_start(actor=cast.requester, request_id=request.pk)
    job.refresh_from_db()
    assert job.status == JobStatus.SUCCEEDED, job.error
    run = request.audit_runs.get()

    settings.DATA_DIR = host_b  # another host: nothing of host A's disk
    for version in [request.source_version, job.train_version, job.holdout_version, job.output_version]:
        data = storage.read_bytes(version.storage_key)
        assert hashlib.sha256(data).hexdigest() == version.content_hash and len(data) == version.size_bytes
    assert storage.exists(run.datasheet.storage_key)
    assert audit_report_problems(run) == []  # host B verifies the report host A signed
    request.refresh_from_db()
    if request.state == RequestState.BLOCKED:  # the small audit may fail: an approver accepts the risk
        risk_accept(actor=cast.second_approver, request_id=request.pk, reasons=reasons_for(run, "enough here"))
    release = release_create(actor=cast.approver, request_id=request.pk)
    with release_download(actor=cast.requester, release_id=release.pk, kind="data").open("rb") as stream:
        assert stream.read() == storage.read_bytes(job.output_version.storage_key)
    with release_download(actor=cast.requester, release_id=release.pk, kind="datasheet").open("rb") as stream:
        pdf = stream.read()
    assert datasheet_verify(pdf_bytes=pdf, release_id=release.pk)["ok"]

    upload = SimpleUploadedFile("table.csv", b"a,b\n1,2\n")
    staged = upload_stage(user_id=cast.steward.pk, upload=upload)
    settings.DATA_DIR = host_a  # the next submit of the form lands on host A
    again = upload_staged(user_id=cast.steward.pk, token=staged.token)
    assert again is not None and again.read_bytes() == b"a,b\n1,2\n" and again.size == 8
    with again.local() as path:
        assert path.read_bytes() == b"a,b\n1,2\n"
    upload_discard(user_id=cast.steward.pk, token=staged.token)
    assert upload_staged(user_id=cast.steward.pk, token=staged.token) is None

    stored = [name.split("/", 2)[2] for name in storage.fs.find(storage.root)]
    assert any(name.startswith("datasheets/") and "/release-" in name for name in stored)
    # The audit log's signed checkpoints are objects in the bucket too, one an event, from both hosts.
    verified = audit_log_verify(grace_seconds=0)
    assert verified.ok, verified.problems
    assert verified.checkpoint is not None and verified.checkpoint.length == AuditEvent.objects.count()
    assert len([name for name in stored if name.startswith("audit-log/checkpoints/")]) >= AuditEvent.objects.count()
    assert not [name for name in stored if ".part-" in name]
    for host in (host_a, host_b):
        assert _files(host) == [], f"{host.name} keeps files another host would need"
