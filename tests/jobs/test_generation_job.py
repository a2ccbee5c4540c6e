"""Generation jobs through the service: lineage, exactly one spend, failure before and after
the data was touched, redelivery, cancellation."""

from __future__ import annotations

import hashlib
from decimal import Decimal
from pathlib import Path

import pandas as pd
import pytest
from django.conf import settings
from django.utils import timezone

from audits.facts import datasheet_facts
from audits.models import Release
from core.errors import InvalidTransitionError, NotFoundError, ValidationError
from governance.models import AuditEvent, BudgetEntry, DatasetVersion, EntryKind, RequestState, VersionKind
from governance.services import audit_log_verify, budget_balance
from governance.services.budget import row_estimate_epsilon
from synth_engine.models import GenerationJob, JobStatus
from synth_engine.services import (
    generation_job_cancel,
    generation_job_run,
    generation_job_start,
    generation_jobs_reap,
)
from tests.jobs.conftest import approved_request_create

pytestmark = pytest.mark.django_db(transaction=True)


def _entries(request, kind):
    return list(BudgetEntry.objects.filter(request=request, kind=kind))


def test_a_job_filed_at_the_minimum_epsilon_filing_names_fits_on_the_paid_estimate(cast, adult_schema):
    """Filing refuses ε = 0.05 and names the minimum; a request at that minimum is fitted without a
    refusal, on the version's estimate (no rows stage), and the records say which estimate."""
    with pytest.raises(ValidationError) as caught:
        approved_request_create(cast, adult_schema, epsilon="0.05")
    assert not BudgetEntry.objects.exclude(kind=EntryKind.ESTIMATE).exists()
    request = approved_request_create(cast, adult_schema, epsilon=caught.value.extra["minimum_epsilon"])

    job = generation_job_start(actor=cast.requester, request_id=request.pk)
    job.refresh_from_db()

    assert job.status == JobStatus.SUCCEEDED, job.error
    details = job.privacy_spent["details"]
    assert "rows" not in details["stages"] and job.privacy_spent["epsilon"] <= float(request.epsilon)
    assert details["row_estimate"]["stage"] is None and details["row_estimate"]["epsilon"] == 0.02
    assert "ledger entry" in details["row_estimate"]["source"]
    [spend] = _entries(request, EntryKind.SPEND)
    assert spend.accountant["details"]["row_estimate"] == details["row_estimate"]
    assert BudgetEntry.objects.filter(kind=EntryKind.ESTIMATE).count() == 1


def test_job_writes_synthetic_version_with_lineage_and_one_exact_spend(cast, approved_request):
    job = generation_job_start(actor=cast.requester, request_id=approved_request.pk)
    job.refresh_from_db()

    assert job.status == JobStatus.SUCCEEDED, job.error
    assert job.progress == 100 and job.phase == "done"
    synthetic = job.output_version
    assert synthetic.kind == VersionKind.SYNTHETIC and synthetic.n_rows == 400
    assert synthetic.parent_id == approved_request.source_version_id
    lineage = synthetic.lineage
    assert lineage["source_hash"] == approved_request.source_version.content_hash
    assert lineage["generator"] == "mst" and lineage["seed"] == 7 and lineage["seed_policy"] == "reproducible"
    assert {"numpy", "torch", "opacus", "mbi"} <= set(lineage["library_versions"])
    frame = pd.read_csv(Path(settings.DATA_DIR) / synthetic.storage_key)
    assert list(frame.columns) == [c["name"] for c in approved_request.source_version.schema["columns"]]

    spends = _entries(approved_request, EntryKind.SPEND)
    assert len(spends) == 1
    assert Decimal(0) < spends[0].epsilon <= approved_request.epsilon
    # The ledger records the accountant's planned ε (rounded up), and what fit spent never exceeds it.
    planned = Decimal(repr(spends[0].accountant["epsilon"])).quantize(Decimal("1e-12"), "ROUND_CEILING")
    assert spends[0].epsilon == min(planned, approved_request.epsilon)
    assert Decimal(repr(lineage["epsilon_spent"])) <= spends[0].epsilon
    releases = _entries(approved_request, EntryKind.RELEASE)
    assert sum(e.epsilon for e in spends + releases) == approved_request.epsilon
    balance = budget_balance(dataset=approved_request.dataset)
    # the source version's DP row estimate was spent at registration
    assert balance.epsilon_reserved == 0 and balance.epsilon_spent == spends[0].epsilon + row_estimate_epsilon()

    approved_request.refresh_from_db()
    # The audit follows the job at once (in-process here) and decides ready or blocked.
    run = approved_request.audit_runs.get()
    assert run.version_id == synthetic.pk and run.datasheet.sha256
    assert approved_request.state == (RequestState.READY if run.passed else RequestState.BLOCKED)
    train, holdout = job.request.dataset.versions.get(kind="train"), job.holdout_version
    assert train.n_rows + holdout.n_rows == approved_request.source_version.n_rows
    assert holdout.n_rows == 400  # the purpose's default holdout fraction, 20 % of 2,000
    assert audit_log_verify().ok


def test_redelivered_task_after_success_neither_trains_nor_charges_again(cast, approved_request):
    job = generation_job_start(actor=cast.requester, request_id=approved_request.pk)
    versions_before = DatasetVersion.objects.count()

    again = generation_job_run(job_id=job.pk)

    assert again.status == JobStatus.SUCCEEDED and again.attempts == 1
    assert DatasetVersion.objects.count() == versions_before
    assert len(_entries(approved_request, EntryKind.SPEND)) == 1


def test_worker_lost_after_touching_data_ends_failed_and_keeps_the_single_spend(cast, approved_request, monkeypatch):
    from synth_engine import services

    def die_during_training(*args, **kwargs):
        raise SystemExit("simulated worker loss")

    monkeypatch.setattr(services, "_enqueue", lambda job, task: None)
    job = generation_job_start(actor=cast.requester, request_id=approved_request.pk)
    monkeypatch.setattr("synth_engine.generators.mst.MSTGenerator.fit", die_during_training)
    with pytest.raises(SystemExit):
        generation_job_run(job_id=job.pk)
    job.refresh_from_db()
    assert job.status == JobStatus.RUNNING and job.data_touched_at is not None

    redelivered = generation_job_run(job_id=job.pk)

    assert redelivered.status == JobStatus.FAILED and "lost" in redelivered.error
    spends, releases = _entries(approved_request, EntryKind.SPEND), _entries(approved_request, EntryKind.RELEASE)
    assert len(spends) == 1
    # Only the part of the reservation the plan did not use was ever released.
    assert sum(e.epsilon for e in spends + releases) == approved_request.epsilon
    approved_request.refresh_from_db()
    assert approved_request.state == RequestState.FAILED


def test_worker_lost_before_touching_data_runs_again_to_success(cast, approved_request, monkeypatch):
    from synth_engine import services

    monkeypatch.setattr(services, "_enqueue", lambda job, task: None)
    job = generation_job_start(actor=cast.requester, request_id=approved_request.pk)
    GenerationJob.objects.filter(pk=job.pk).update(status=JobStatus.RUNNING, attempts=1)

    finished = generation_job_run(job_id=job.pk)

    assert finished.status == JobStatus.SUCCEEDED and finished.attempts == 2
    assert len(_entries(approved_request, EntryKind.SPEND)) == 1


def test_failure_after_touching_data_keeps_the_spend(cast, approved_request, monkeypatch):
    def broken_fit(*args, **kwargs):
        raise RuntimeError("numerical failure")

    monkeypatch.setattr("synth_engine.generators.mst.MSTGenerator.fit", broken_fit)
    job = generation_job_start(actor=cast.requester, request_id=approved_request.pk)
    job.refresh_from_db()

    assert job.status == JobStatus.FAILED and "(RuntimeError)" in job.error and "numerical failure" not in job.error
    spends = _entries(approved_request, EntryKind.SPEND)
    assert len(spends) == 1
    assert budget_balance(dataset=approved_request.dataset).epsilon_spent == spends[0].epsilon + row_estimate_epsilon()


def test_bad_data_fails_before_any_spend_and_releases_the_reservation(cast, adult_schema, monkeypatch):
    from synth_engine.generators import GeneratorError

    def refuse(self, frame, schema):
        raise GeneratorError("the label column 'income' has a single class")

    monkeypatch.setattr("synth_engine.generators.mst.MSTGenerator.check", refuse)
    request = approved_request_create(cast, adult_schema)
    job = generation_job_start(actor=cast.requester, request_id=request.pk)
    job.refresh_from_db()

    assert job.status == JobStatus.FAILED and "single class" in job.error and job.data_touched_at is None
    assert not _entries(request, EntryKind.SPEND)
    assert [e.epsilon for e in _entries(request, EntryKind.RELEASE)] == [request.epsilon]
    assert (
        budget_balance(dataset=request.dataset).epsilon_remaining
        == request.dataset.epsilon_cap - row_estimate_epsilon()
    )


def test_job_refuses_to_start_unless_request_is_approved(cast, adult_schema):
    from tests.governance.factories import PurposeFactory, dataset_register_adult, request_file

    PurposeFactory(name="research")
    dataset_register_adult(steward=cast.steward, schema=adult_schema)
    request = request_file(requester=cast.requester)

    with pytest.raises(InvalidTransitionError, match="not 'approved'"):
        generation_job_start(actor=cast.requester, request_id=request.pk)
    assert not GenerationJob.objects.exists()


def test_other_requester_cannot_see_or_start_the_job(cast, approved_request):
    with pytest.raises(NotFoundError):
        generation_job_start(actor=cast.other_requester, request_id=approved_request.pk)
    assert not GenerationJob.objects.exists()


def test_cancelling_a_queued_job_releases_the_reservation(cast, approved_request, monkeypatch):
    from synth_engine import services

    monkeypatch.setattr(services, "_enqueue", lambda job, task: None)
    job = generation_job_start(actor=cast.requester, request_id=approved_request.pk)

    cancelled = generation_job_cancel(actor=cast.requester, job_id=job.pk)

    assert cancelled.status == JobStatus.CANCELLED
    assert not _entries(approved_request, EntryKind.SPEND)
    assert len(_entries(approved_request, EntryKind.RELEASE)) == 1
    assert generation_job_run(job_id=job.pk).status == JobStatus.CANCELLED  # a late delivery does nothing
    assert AuditEvent.objects.filter(action="job.cancelled").count() == 1


def test_rebalanced_release_records_real_and_released_shares(cast, adult_schema):
    request = approved_request_create(
        cast, adult_schema, epsilon="3", rows=1000, rebalance={"column": "income", "shares": {">50K": 0.5}}
    )
    job = generation_job_start(actor=cast.requester, request_id=request.pk)
    job.refresh_from_db()

    assert job.status == JobStatus.SUCCEEDED, job.error
    record = job.output_version.lineage["rebalance"]
    assert "non-representative" in record["notice"]
    assert record["real_shares"][">50K"] < 0.3
    assert abs(record["released_shares"][">50K"] - 0.5) < 0.05


def test_synthetic_rows_are_stored_in_chunks_with_the_hash_of_the_stored_bytes(cast, approved_request, settings):
    settings.SYNTHGATE_SAMPLE_CHUNK_ROWS = 150  # 400 rows: three chunks
    job = generation_job_start(actor=cast.requester, request_id=approved_request.pk)
    job.refresh_from_db()

    assert job.status == JobStatus.SUCCEEDED, job.error
    synthetic = job.output_version
    data = (Path(settings.DATA_DIR) / synthetic.storage_key).read_bytes()
    assert hashlib.sha256(data).hexdigest() == synthetic.content_hash and len(data) == synthetic.size_bytes
    assert synthetic.n_rows == 400 == len(pd.read_csv(Path(settings.DATA_DIR) / synthetic.storage_key))
    assert not list((Path(settings.DATA_DIR) / "sampling").iterdir())  # no partial file left behind


def test_a_large_split_is_audited_on_stated_samples_named_only_in_the_internal_report(cast, approved_request, settings):
    settings.SYNTHGATE_REFERENCE_AUDIT_ROWS = 300  # 1,600 training and 400 holdout rows: both sampled
    job = generation_job_start(actor=cast.requester, request_id=approved_request.pk)
    job.refresh_from_db()

    assert job.status == JobStatus.SUCCEEDED, job.error
    run = approved_request.audit_runs.get()
    assert run.audit_sample_rows == {"train": 300, "holdout": 300}
    assert all(control["caught"] for control in run.controls)  # the controls' power on the samples
    internal = " ".join(datasheet_facts(run).preprocessing)
    assert "300 training rows and 300 holdout rows" in internal
    release = Release(  # unsaved: the recipient's facts only
        audit_run=run,
        request=approved_request,
        version=run.version,
        released_by=cast.requester,
        expires_at=run.created_at,
    )
    assert "sample" not in " ".join(datasheet_facts(run, release=release).preprocessing)


def test_the_reaper_removes_the_sampling_file_of_a_job_no_longer_running(cast, approved_request):
    job = generation_job_start(actor=cast.requester, request_id=approved_request.pk)
    directory = Path(settings.DATA_DIR) / "sampling"
    left = directory / f".sampling-job{job.pk}-killed.csv"  # as a worker killed while sampling leaves it
    left.write_text("age,workclass\n")
    GenerationJob.objects.filter(pk=job.pk).update(status=JobStatus.RUNNING, heartbeat_at=timezone.now())
    generation_jobs_reap()
    assert left.exists()  # its job still runs (fresh heartbeat): the file may still be written
    GenerationJob.objects.filter(pk=job.pk).update(status=JobStatus.FAILED)
    generation_jobs_reap()
    assert not left.exists()
