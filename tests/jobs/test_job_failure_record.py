"""A failed job tells the truth about its spend: the job record, the job page, the request page
and the ledger agree, and `job run` exits non-zero with one line (no traceback unless asked)."""

from __future__ import annotations

import io

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from governance.models import BudgetEntry, DataRequest, EntryKind
from synth_engine.generators.base import GeneratorError
from synth_engine.models import GenerationJob, JobStatus
from synth_engine.services import _dry_run_sampling_plan, generation_job_start

pytestmark = pytest.mark.django_db(transaction=True)


REASON = "an internal error (RuntimeError) stopped it; the details are in the worker's log"


@pytest.fixture
def sampling_breaks(monkeypatch):
    """The job's draws fail on their drawing thread, after the spend (the job draws its output
    through ``seeded_output``; the audit's own fits still sample)."""

    def broken_output(self, n_rows, conditions=None):
        def draw():
            raise RuntimeError("sampling failed\nsecond line of detail")

        return draw

    monkeypatch.setattr("synth_engine.generators.mst.MSTGenerator.seeded_output", broken_output)


def test_a_job_failing_after_the_spend_records_the_ledgers_charge(cast, approved_request, sampling_breaks):
    job = generation_job_start(actor=cast.requester, request_id=approved_request.pk)
    job.refresh_from_db()

    spend = BudgetEntry.objects.get(request=approved_request, kind=EntryKind.SPEND)
    assert job.status == JobStatus.FAILED
    assert job.error == REASON  # a library's text may quote the rows: the class only
    assert "sampling failed" not in job.error
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
    assert message == f"Job #{job.pk} failed after spending ε=1, δ=0.000001: {REASON}"
    assert "Traceback" not in capsys.readouterr().err + stderr.getvalue()


def test_the_job_page_and_the_request_page_show_the_spend(cast, approved_request, sampling_breaks, client):
    job = generation_job_start(actor=cast.requester, request_id=approved_request.pk)
    client.force_login(cast.requester)

    job_page = client.get(f"/jobs/{job.pk}/").content.decode()
    request_page = client.get(f"/requests/{approved_request.pk}/").content.decode()

    assert "ε spent</dt><dd>1" in job_page
    assert REASON.replace("'", "&#x27;") in request_page and "sampling failed" not in request_page
    assert "ε 1, δ 0.000001 · spent at the job" in request_page


def test_a_failed_job_tells_the_requester_and_the_datasets_steward_why(
    cast, approved_request, sampling_breaks, mailoutbox
):
    mailoutbox.clear()
    generation_job_start(actor=cast.requester, request_id=approved_request.pk)

    failed = sorted((m for m in mailoutbox if m.subject.endswith(" failed")), key=lambda m: m.to)
    assert [m.to for m in failed] == [["requester@example.org"], ["steward@example.org"]]
    requester, steward = failed
    assert f"Your request #{approved_request.pk} (adult, purpose research) failed" in requester.body
    assert f"Request #{approved_request.pk} (adult, purpose research) by requester failed" in steward.body
    for message in failed:
        assert f"Reason: {REASON}" in message.body and "sampling failed" not in message.body
        assert f"/requests/{approved_request.pk}/" in message.body


def test_a_sampling_plan_that_cannot_run_fails_the_job_before_any_spend(cast, approved_request):
    DataRequest.objects.filter(pk=approved_request.pk).update(
        rebalance={"column": "income", "shares": {"maybe": 0.5}}
    )  # a request filed before classes had to be declared

    job = generation_job_start(actor=cast.requester, request_id=approved_request.pk)
    job.refresh_from_db()

    assert job.status == JobStatus.FAILED and job.data_touched_at is None
    assert "'maybe' is not a declared category of 'income'" in job.error
    assert not BudgetEntry.objects.filter(request=approved_request, kind=EntryKind.SPEND).exists()
    assert BudgetEntry.objects.filter(request=approved_request, kind=EntryKind.RELEASE).exists()


def test_the_dry_run_builds_the_target_on_the_declared_domain(adult_schema):
    _dry_run_sampling_plan({"column": "income", "shares": {">50K": 0.5}}, adult_schema)
    with pytest.raises(GeneratorError, match="has no released value 'maybe'"):
        _dry_run_sampling_plan({"column": "income", "shares": {"maybe": 0.5}}, adult_schema)
    with pytest.raises(GeneratorError, match="sum to at most 1"):
        _dry_run_sampling_plan({"column": "income", "shares": {">50K": 0.7, "<=50K": 0.7}}, adult_schema)


def test_a_librarys_error_text_quoting_a_row_never_reaches_the_requester(
    cast, approved_request, monkeypatch, client, mailoutbox
):
    """pandas and NumPy quote the offending value in their errors; a failed job records the class
    only, so the requester's API answer, job page and e-mail never hold a value of the real rows."""

    def quoting_fit(*args, **kwargs):
        raise ValueError("could not convert string to float: 'Jane Roe, 1961-04-02'")

    monkeypatch.setattr("synth_engine.generators.mst.MSTGenerator.fit", quoting_fit)
    job = generation_job_start(actor=cast.requester, request_id=approved_request.pk)
    job.refresh_from_db()
    client.force_login(cast.requester)

    answer = client.get(f"/api/jobs/{job.pk}/").json()
    page = client.get(f"/jobs/{job.pk}/").content.decode()
    mails = " ".join(message.body for message in mailoutbox)
    assert job.status == JobStatus.FAILED and answer["error"] == job.error
    assert job.error == "an internal error (ValueError) stopped it; the details are in the worker's log"
    for text in (job.error, str(answer), page, mails):
        assert "Jane Roe" not in text


def test_a_generators_own_refusal_is_recorded_as_written():
    from core.errors import ValidationError, failure_reason

    assert failure_reason(GeneratorError("epsilon=0.1 is too small\nmore"), stated=(GeneratorError,)) == (
        "epsilon=0.1 is too small"
    )
    assert failure_reason(ValidationError("bad input"), stated=()) == "bad input"
    assert failure_reason(KeyError("secret value"), stated=(GeneratorError,)).startswith("an internal error (KeyError)")
