"""`synthgate job run` ends with the request's state and the next step; a failed job exits 1."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from django.conf import settings
from django.core.management import call_command
from django.core.management.base import CommandError

from governance.models import RequestState

# Committed transactions: the job is queued when the request's transaction commits.
pytestmark = pytest.mark.django_db(transaction=True)


def job_run(request_id: int, user: str) -> tuple[int, str, str]:
    stdout, stderr = io.StringIO(), io.StringIO()
    try:
        # --no-watch: the job runs in this thread (eagerly), so the test needs no waiting.
        call_command("job", "run", str(request_id), "--no-watch", "--as", user, stdout=stdout, stderr=stderr)
    except CommandError as error:
        return error.returncode, stdout.getvalue(), str(error)
    return 0, stdout.getvalue(), ""


def test_a_finished_job_names_the_requests_state_and_the_next_step(approved_request, cast):
    code, out, _ = job_run(approved_request.pk, cast.requester.username)

    approved_request.refresh_from_db()
    assert code == 0
    assert approved_request.state in {RequestState.READY, RequestState.BLOCKED}
    assert f"Request #{approved_request.pk} is {approved_request.state}. Next: " in out
    if approved_request.state == RequestState.READY:
        assert f"`synthgate release {approved_request.pk}`" in out


@pytest.fixture
def own_data_dir(settings, tmp_path):
    """A data directory of this test's own: the stored source below is spoiled on purpose."""
    settings.DATA_DIR = tmp_path


def test_a_job_that_fails_exits_1_and_says_so(own_data_dir, approved_request, cast):
    stored = Path(settings.DATA_DIR) / approved_request.source_version.storage_key
    stored.write_bytes(b"not,the,table\n1,2,3\n")  # the job's first read of the data fails

    code, out, message = job_run(approved_request.pk, cast.requester.username)

    approved_request.refresh_from_db()
    assert approved_request.state == RequestState.FAILED
    assert code == 1
    assert message.startswith(f"Job #{approved_request.jobs.get().pk} failed ")
    assert f"Request #{approved_request.pk} is failed. Next: read the error" in out
