"""A failed job tells the truth about its spend: the job record, the job page, the request page
and the ledger agree, and `job run` exits non-zero with one line (no traceback unless asked)."""

from __future__ import annotations

import io

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from governance.models import BudgetEntry, EntryKind
from synth_engine.models import GenerationJob, JobStatus
from synth_engine.services import generation_job_start

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def sampling_breaks(monkeypatch):
    def broken_sample(*args, **kwargs):
        raise RuntimeError("sampling failed\nsecond line of detail")

    monkeypatch.setattr("synth_engine.generators.mst.MSTGenerator.sample", broken_sample)


def test_a_job_failing_after_the_spend_records_the_ledgers_charge(cast, approved_request, sampling_breaks):
    job = generation_job_start(actor=cast.requester, request_id=approved_request.pk)
    job.refresh_from_db()

    spend = BudgetEntry.objects.get(request=approved_request, kind=EntryKind.SPEND)
    assert job.status == JobStatus.FAILED
    assert job.error == "RuntimeError: sampling failed"
    assert job.privacy_spent["epsilon"] == float(spend.epsilon)
    assert job.privacy_spent["delta"] == pytest.approx(float(spend.delta))


def test_job_run_exits_1_with_one_line_and_no_traceback(cast, approved_request, sampling_breaks, capsys):
    stdout, stderr = io.StringIO(), io.StringIO()
    with pytest.raises(CommandError) as caught:
        call_command(
            "job", "run", str(approved_request.pk), "--as", "requester", "--no-watch", stdout=stdout, stderr=stderr
        )

    job = GenerationJob.objects.get()
    message = str(caught.value)
    assert caught.value.returncode == 1
    assert message == f"Job #{job.pk} failed after spending ε=1, δ=0.000001: RuntimeError: sampling failed"
    assert "Traceback" not in capsys.readouterr().err + stderr.getvalue()


def test_the_job_page_and_the_request_page_show_the_spend(cast, approved_request, sampling_breaks, client):
    job = generation_job_start(actor=cast.requester, request_id=approved_request.pk)
    client.force_login(cast.requester)

    job_page = client.get(f"/jobs/{job.pk}/").content.decode()
    request_page = client.get(f"/requests/{approved_request.pk}/").content.decode()

    assert "ε spent</dt><dd>1" in job_page
    assert "sampling failed" in request_page
    assert "ε 1, δ 0.000001 · spent at the job" in request_page
