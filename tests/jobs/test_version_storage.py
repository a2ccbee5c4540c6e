"""Dataset versions through the storage interface (governance/storage.py): with
SYNTHGATE_STORAGE_URL set to another fsspec filesystem (fsspec's in-process memory filesystem
here), the upload, the job's train, holdout and synthetic versions, the audit and the release's
download all go through it, and nothing of them is written under the data directory."""

from __future__ import annotations

import hashlib
import secrets
from pathlib import Path

import pytest

from audits.services import release_create, release_download, risk_accept
from governance.models import AuditEvent, RequestState
from governance.storage import version_storage
from synth_engine.models import JobStatus
from synth_engine.services import generation_job_start
from tests.jobs.conftest import approved_request_create, reasons_for

pytestmark = pytest.mark.django_db(transaction=True)


def test_a_job_reads_and_writes_every_version_through_the_configured_storage(cast, adult_schema, settings, tmp_path):
    settings.DATA_DIR = tmp_path  # a fresh data directory: other tests' content-addressed files are not in it
    settings.SYNTHGATE_STORAGE_URL = f"memory://synthgate-{secrets.token_hex(4)}"
    storage = version_storage()
    assert not storage.local and storage.url == settings.SYNTHGATE_STORAGE_URL
    try:
        request = approved_request_create(cast, adult_schema)
        settings.SYNTHGATE_SAMPLE_CHUNK_ROWS = 150
        job = generation_job_start(actor=cast.requester, request_id=request.pk)
        job.refresh_from_db()

        assert job.status == JobStatus.SUCCEEDED, job.error
        versions = [request.source_version, job.train_version, job.holdout_version, job.output_version]
        for version in versions:
            data = storage.read_bytes(version.storage_key)
            assert hashlib.sha256(data).hexdigest() == version.content_hash and len(data) == version.size_bytes
            assert not (Path(settings.DATA_DIR) / version.storage_key).exists()
        assert len(storage.read_version(job.output_version.storage_key, job.output_version.schema)) == 400
        run = request.audit_runs.get()
        assert run.version_id == job.output_version_id and run.checks.exists()  # the audit read them there
        assert not [name for name in storage.fs.find(storage.root) if ".part-" in name]

        request.refresh_from_db()
        if request.state == RequestState.BLOCKED:  # the small audit may fail: an approver accepts the risk
            risk_accept(actor=cast.second_approver, request_id=request.pk, reasons=reasons_for(run, "enough here"))
        release = release_create(actor=cast.approver, request_id=request.pk)
        served = release_download(actor=cast.requester, release_id=release.pk, kind="data")
        with served.open("rb") as stream:
            assert stream.read() == storage.read_bytes(job.output_version.storage_key)
        logged = AuditEvent.objects.filter(action="release.download").latest("pk")
        assert logged.after["sha256"] == job.output_version.content_hash
    finally:
        storage.fs.rm(storage.root, recursive=True)


def test_a_key_is_written_once_and_never_half(tmp_path):
    from governance.storage import VersionStorage

    storage = VersionStorage(str(tmp_path))
    assert storage.local
    assert storage.write_new("datasets/a/x.csv", b"a,b\n1,2\n") is True
    assert storage.write_new("datasets/a/x.csv", b"other") is False  # content-addressed: never rewritten
    assert storage.read_bytes("datasets/a/x.csv") == b"a,b\n1,2\n"
    finished = tmp_path / "finished.csv"
    finished.write_bytes(b"c\n3\n")
    assert storage.put_new(finished, "datasets/a/y.csv") is True and not finished.exists()
    assert sorted(p.name for p in (tmp_path / "datasets" / "a").iterdir()) == ["x.csv", "y.csv"]
    storage.remove("datasets/a/x.csv")
    assert not storage.exists("datasets/a/x.csv")
