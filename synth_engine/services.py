"""Generation jobs: approved request → job → DP training → synthetic dataset version.

The ledger rule (DESIGN.md, "The privacy budget"): the job's reservation becomes a spend
at its first data access, exactly once per request; a job that fails before that releases
the reservation; once the data was touched the spend stays. Tasks call
``generation_job_run`` and may deliver it twice: the job's state is checked first, so a
redelivered task never trains twice or charges twice.

Faults (docs/faults.md): a job writes a heartbeat while it works; the beat-scheduled reaper
ends a running job whose heartbeat stopped (its worker died). A job whose database connection
is lost is ended on a fresh connection, or sent back to the queue when it had not touched the
data. A job whose task cannot reach the broker ends at once and its request goes back to
``approved`` with the reservation kept.
"""

from __future__ import annotations

import json
import logging
import secrets
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

from django.conf import settings
from django.contrib.auth.models import User
from django.db import transaction
from django.db.models import Q
from django.utils import timezone
from django.utils.crypto import salted_hmac
from django_celery_beat.models import PeriodicTask
from kombu.exceptions import OperationalError as BrokerError

from core.amounts import amount_text
from core.errors import (
    ConflictError,
    InvalidTransitionError,
    NotFoundError,
    PermissionDeniedError,
    ServiceUnavailableError,
    failure_reason,
)
from core.liveness import (
    connection_lost,
    database_reconnect,
    heartbeat,
    heartbeat_is_stale,
    row_locked_by_live_work,
)
from core.schedules import periodic_task_ensure
from core.schema import parse_schema
from governance.ingest import StreamedTable
from governance.models import DataRequest, Dataset, DatasetVersion, RequestState, Role, VersionKind
from governance.permissions import request_visible_to, user_has_role
from governance.services import (
    access_request_lock,
    access_request_revalidate,
    audit_event_record,
    budget_release,
    budget_reservation,
    budget_spend,
    dataset_version_store,
    dataset_version_store_streamed,
    files_removed_on_error,
    ledger_amount,
    request_transition,
    rows_hold_check,
    version_row_estimate,
)
from governance.storage import Removable, StorageAccessError, version_storage
from synth_engine.assurance.version import generator_version
from synth_engine.generators.base import Generator, GeneratorError, PrivacySpent
from synth_engine.generators.domain import CategoricalCodec, target_shares
from synth_engine.generators.parameters import ParameterError
from synth_engine.hooks import job_succeeded_hooks
from synth_engine.models import GenerationJob, JobStatus, SeedPolicy
from synth_engine.privacy.rdp import NoiseCalibrationError
from synth_engine.runtime import PeakMemory, library_versions
from synth_engine.sources import reference_open
from synth_engine.streaming import ChunkDraws, sample_to_file, table_from_frame
from synth_engine.tasks import generation_job_execute

logger = logging.getLogger(__name__)

if TYPE_CHECKING:
    import pandas as pd

    from synth_engine.privacy.row_count import PaidRowEstimate


class JobCancelledError(Exception):
    """Raised between phases when a cancel was requested."""


class JobRetryLaterError(Exception):
    """The database went away before the job touched the data: the job is queued to run again."""


@dataclass(frozen=True)
class JobOutput:
    """What a finished training run hands to the writing phase."""

    source: DatasetVersion
    train: pd.DataFrame
    holdout: pd.DataFrame
    synthetic: StreamedTable  # written chunk by chunk while sampling, stored by the writing phase
    split_seed: int
    planned: PrivacySpent | None
    spent: PrivacySpent
    generator_version: str  # the code hash assurance runs are keyed by: the datasheet cites its result
    counts_record: dict[str, Any] | None = None  # which engine computed the counts, and where, for a reference


def generation_job_start(*, actor: User, request_id: int) -> GenerationJob:
    """Approved request → generating: create its job and queue it once the transaction commits.

    When the broker cannot be reached the job ends ``failed`` at once, the request goes back to
    ``approved`` with its reservation kept, and the caller gets a ServiceUnavailableError. When
    the artefact storage refuses this host (``VersionStorage.check_access``) nothing starts: the
    caller gets a StorageAccessError naming the cause, and the request stays ``approved``.
    """
    version_storage().check_access()  # before the locks: a network round trip
    with transaction.atomic():
        request = access_request_lock(request_id)
        if not request_visible_to(actor, request):
            raise NotFoundError(f"No request #{request_id}.")
        if request.requester_id != actor.pk and not user_has_role(actor, Role.STEWARD, Role.APPROVER):
            raise PermissionDeniedError("Only the requester, a steward or an approver can start generation.")
        _check_reservation(request)
        job = GenerationJob.objects.create(
            request=request,
            generator=request.generator,
            parameters=request.generator_params,
            seed=request.seed,
            seed_policy=SeedPolicy.REPRODUCIBLE if request.seed is not None else SeedPolicy.CRYPTOGRAPHIC,
            library_versions=library_versions(),
        )
        audit_event_record(
            actor=actor,
            action="job.create",
            obj=job,
            after={"request": request.pk, "generator": job.generator, "seed_policy": job.seed_policy},
        )
        request_transition(
            request=request, target=RequestState.GENERATING, actor=actor, action="generate", extra={"job": job.pk}
        )
        transaction.on_commit(lambda: _enqueue(job.pk, actor))
    return job


def _enqueue(job_id: int, actor: User) -> None:
    try:
        result = generation_job_execute.delay(job_id)
    except BrokerError as error:  # retried per CELERY_TASK_PUBLISH_RETRY_POLICY before it gets here
        _start_refused(job_id, actor, error)
    GenerationJob.objects.filter(pk=job_id, celery_task_id="").update(celery_task_id=result.id or "")


def _start_refused(job_id: int, actor: User, error: Exception) -> None:
    """The broker is down: end the job, give the request back its ``approved`` state, tell the caller."""
    message = (
        f"The task queue cannot be reached ({error}); nothing was read or spent. The request is back to "
        "'approved' with its reservation kept: start it again when the queue is back."
    )
    with transaction.atomic():
        job = _job_locked(job_id)
        _requeue_locked(job, message=message, actor=actor)
    raise ServiceUnavailableError(message, extra={"job": job_id, "request": job.request_id}) from error


def _requeue_locked(job: GenerationJob, *, message: str, actor: User | None) -> None:
    """End a locked job that read nothing and spent nothing; its request goes back to ``approved``
    with its reservation kept, to be started again once the cause is fixed."""
    request = DataRequest.objects.select_for_update().get(pk=job.request_id)
    job.status, job.error, job.finished_at = JobStatus.FAILED, message, timezone.now()
    job.save(update_fields=["status", "error", "finished_at", "updated_at"])
    audit_event_record(actor=actor, action="job.failed", obj=job, after={"error": message, "data_touched": False})
    request_transition(
        request=request, target=RequestState.APPROVED, actor=actor, action="requeue", extra={"job": job.pk}
    )


def _storage_refused(job_id: int, error: StorageAccessError) -> None:
    """The worker's artefact storage refused it before the job read anything: the request is given
    back (``approved``, reservation kept), as when the queue is down; a job that did read data
    (it cannot have: the check comes first) would end as any failure does."""
    logger.warning("Generation job %s: %s", job_id, error.message)
    message = (
        f"{error.message} The request is back to 'approved' with its reservation kept: start it again "
        "once the worker's storage credentials are fixed."
    )
    with transaction.atomic():
        job = _job_locked(job_id)
        if job.is_terminal:
            return
        if job.data_touched_at is not None or job.request.state != RequestState.GENERATING:
            _mark_failed_locked(job, status=JobStatus.FAILED, error=error.message)
        else:
            _requeue_locked(job, message=message, actor=None)


def _check_reservation(request: DataRequest) -> None:
    if request.state != RequestState.APPROVED:
        raise InvalidTransitionError(
            f"Cannot start generation for request #{request.pk}: it is {request.state!r}, not 'approved'.",
            extra={"state": request.state},
        )
    epsilon, delta = budget_reservation(request=request)
    if epsilon < request.epsilon or delta < request.delta:
        raise ConflictError(
            f"Request #{request.pk} has no full reservation (ε = {amount_text(epsilon)}, "
            f"δ = {amount_text(delta)}); the job will not start."
        )


def generation_job_cancel(*, actor: User, job_id: int) -> GenerationJob:
    """Cancel a queued job, or a running one whose worker is gone, at once; ask a live one to stop
    at its next phase boundary (the reaper ends it as cancelled if its worker dies first)."""
    with transaction.atomic():
        job = _job_locked(job_id)
        request = job.request
        if not request_visible_to(actor, request):
            raise NotFoundError(f"No job #{job_id}.")
        if request.requester_id != actor.pk and not user_has_role(actor, Role.STEWARD, Role.APPROVER):
            raise PermissionDeniedError("Only the requester, a steward or an approver can cancel a job.")
        if job.is_terminal:
            raise ConflictError(f"Job #{job.pk} has already ended ({job.status}).", extra={"status": job.status})
        job.cancel_requested = True
        job.save(update_fields=["cancel_requested", "updated_at"])
        audit_event_record(actor=actor, action="job.cancel_request", obj=job, after={"status": job.status})
        if job.status == JobStatus.QUEUED:
            _mark_failed_locked(job, status=JobStatus.CANCELLED, error="cancelled before it started", actor=actor)
        elif heartbeat_is_stale(job.heartbeat_at or job.started_at):
            error = f"cancelled; its worker was gone (no heartbeat since {_when(job.heartbeat_at or job.started_at)})"
            _mark_failed_locked(job, status=JobStatus.CANCELLED, error=error, actor=actor)
    job.refresh_from_db()
    return job


def _when(moment: datetime | None) -> str:
    return moment.isoformat(timespec="seconds") if moment else "it was claimed"


def _job_locked(job_id: int) -> GenerationJob:
    job = GenerationJob.objects.select_related("request").filter(pk=job_id).first()
    if job is None:
        raise NotFoundError(f"No job #{job_id}.")
    Dataset.objects.select_for_update().get(pk=job.request.dataset_id)
    return GenerationJob.objects.select_for_update().select_related("request", "request__dataset").get(pk=job_id)


def generation_job_run(*, job_id: int) -> GenerationJob:
    """Run a job to a terminal state. Safe to call again for the same job (task redelivery).

    Raises JobRetryLaterError when the database connection was lost before the job touched the
    data (the job is back in ``queued``; the task retries it with backoff).
    """
    try:
        return _run(job_id)
    except Exception as error:
        if not connection_lost(error):
            raise
        return _after_connection_lost(job_id, error)


def _run(job_id: int) -> GenerationJob:
    job = _claim(job_id)
    if job is None:
        return GenerationJob.objects.get(pk=job_id)
    timings: dict[str, float] = {}
    try:
        with heartbeat(GenerationJob, job.pk), PeakMemory() as memory:
            output = _execute(job, timings)
            try:
                _finish_succeeded(job.pk, output=output, timings=timings, peak_bytes=memory.peak_bytes)
            finally:
                output.synthetic.discard()  # moved into place when stored; removed if the job ends otherwise
    except JobCancelledError:
        _finish_failed(job.pk, status=JobStatus.CANCELLED, error="cancelled on request", timings=timings)
    except StorageAccessError as error:
        _storage_refused(job.pk, error)
    except Exception as error:  # every failure must end the job in a terminal state
        if connection_lost(error):
            raise  # this connection is dead: the job is ended on a fresh one
        logger.exception("Generation job %s failed", job.pk)
        message = failure_reason(error, stated=(GeneratorError, ParameterError, NoiseCalibrationError))
        _finish_failed(job.pk, status=JobStatus.FAILED, error=message, timings=timings)
    return GenerationJob.objects.get(pk=job_id)


def _after_connection_lost(job_id: int, error: Exception) -> GenerationJob:
    """On a fresh connection: queue the job again if it never touched the data, else end it."""
    logger.warning("Generation job %s lost its database connection: %s", job_id, error)
    if not database_reconnect():
        raise error  # still no database: the reaper ends the job once it is back
    with transaction.atomic():
        job = _job_locked(job_id)
        if job.is_terminal:
            return job
        if job.data_touched_at is not None:
            _mark_failed_locked(
                job,
                status=JobStatus.FAILED,
                error=(
                    f"The database connection was lost after the job had read the data ({error}); the spend "
                    "stands and the job is not retried. File a new request to generate again."
                ),
            )
            return job
        job.status, job.phase = JobStatus.QUEUED, "waiting to retry: the database connection was lost"
        job.save(update_fields=["status", "phase", "updated_at"])
        audit_event_record(
            actor=None, action="job.retry", obj=job, after={"attempt": job.attempts, "error": str(error)}
        )
    raise JobRetryLaterError(f"job #{job_id}: database connection lost before the data was touched") from error


def generation_job_give_up(*, job_id: int, reason: str) -> GenerationJob:
    """End a job whose retries are used up (it never touched the data, so its reservation is released)."""
    _finish_failed(job_id, status=JobStatus.FAILED, error=reason)
    return GenerationJob.objects.get(pk=job_id)


def generation_jobs_reap() -> list[GenerationJob]:
    """End every running job whose heartbeat stopped (its worker is gone) and every queued job that
    never reached the broker; the reservation is released only if the data was never touched."""
    cutoff = timezone.now() - timedelta(seconds=settings.SYNTHGATE_HEARTBEAT_TIMEOUT_SECONDS)
    silent = Q(heartbeat_at__lt=cutoff) | Q(heartbeat_at__isnull=True, started_at__lt=cutoff)
    stale = GenerationJob.objects.filter(
        (Q(status=JobStatus.RUNNING) & silent) | Q(status=JobStatus.QUEUED, celery_task_id="", created_at__lt=cutoff)
    )
    reaped = [_reap(pk, cutoff) for pk in stale.values_list("pk", flat=True)]
    _sampling_files_remove()
    return [job for job in reaped if job is not None]


SAMPLING_PREFIX = ".sampling-job"


def _sampling_directory() -> Path:
    """Where a worker writes a synthetic table while sampling it (moved to storage when stored)."""
    return Path(settings.DATA_DIR) / "sampling"


def _sampling_files_remove() -> None:
    """Remove the sampling files of jobs no longer running (a worker killed while sampling
    leaves its partial file behind; a job that ends any other way removes its own)."""
    directory = _sampling_directory()
    if not directory.is_dir():
        return
    files: dict[int, list[Path]] = {}
    for path in directory.glob(f"{SAMPLING_PREFIX}*"):
        number = path.name.removeprefix(SAMPLING_PREFIX).split("-", 1)[0]
        if number.isdigit():
            files.setdefault(int(number), []).append(path)
    running = set(GenerationJob.objects.filter(pk__in=files, status=JobStatus.RUNNING).values_list("pk", flat=True))
    for job_id, paths in files.items():
        if job_id not in running:
            for path in paths:
                path.unlink(missing_ok=True)


def generation_reaper_schedule_ensure() -> PeriodicTask:
    """Register the beat entry that ends jobs whose worker is gone (``synthgate init``)."""
    return periodic_task_ensure(
        name="synthgate: end generation jobs whose worker is gone",
        task="synth_engine.tasks.generation_jobs_reap_stale",
        every_seconds=settings.SYNTHGATE_REAPER_TICK_SECONDS,
        description="synth_engine.services.generation_jobs_reap: running jobs with no heartbeat end failed.",
    )


def _reap(job_id: int, cutoff: datetime) -> GenerationJob | None:
    if row_locked_by_live_work(GenerationJob, job_id):
        return None  # a live transaction (the job writing its outputs) holds the row
    with transaction.atomic():
        job = _job_locked(job_id)
        last_sign = job.heartbeat_at or job.started_at or job.created_at
        if job.is_terminal or last_sign >= cutoff:
            return None  # it ended or beat again since the query
        lost = "its worker was lost" if job.status == JobStatus.RUNNING else "its task never reached the queue"
        outcome = "the spend stands" if job.data_touched_at else "nothing was spent; the reservation is released"
        status = JobStatus.CANCELLED if job.cancel_requested else JobStatus.FAILED
        error = f"Ended by the reaper: {lost} (no sign of life since {_when(last_sign)}); {outcome}."
        _mark_failed_locked(job, status=status, error=error)
        return job


def _claim(job_id: int) -> GenerationJob | None:
    """Mark the job running, or decide that this delivery has nothing to do."""
    with transaction.atomic():
        job = _job_locked(job_id)
        if job.is_terminal:
            return None
        if job.status == JobStatus.RUNNING and job.data_touched_at is not None:
            # A previous delivery died after touching the data: training again would use
            # the data a second time under the same spend. End the job instead.
            _mark_failed_locked(
                job,
                status=JobStatus.FAILED,
                error=(
                    "The worker running this job was lost after it had read the data; the spend stands and "
                    "the job is not retried. File a new request to generate again."
                ),
            )
            return None
        job.status, job.attempts = JobStatus.RUNNING, job.attempts + 1
        job.started_at = job.started_at or timezone.now()
        job.phase, job.progress, job.heartbeat_at = "loading", 2, timezone.now()
        job.save(update_fields=["status", "attempts", "started_at", "phase", "progress", "heartbeat_at", "updated_at"])
        audit_event_record(actor=None, action="job.start", obj=job, after={"attempt": job.attempts})
        return job


@contextmanager
def _phase(job: GenerationJob, name: str, progress: int, timings: dict[str, float]) -> Iterator[None]:
    _phase_enter(job.pk, name, progress)
    started = time.perf_counter()
    yield
    timings[name] = round(time.perf_counter() - started, 3)


def _phase_enter(job_id: int, name: str, progress: int) -> None:
    """A phase boundary: stop here if a cancel was requested, else show the phase (and a heartbeat)."""
    if GenerationJob.objects.filter(pk=job_id, cancel_requested=True).exists():
        raise JobCancelledError()
    now = timezone.now()
    GenerationJob.objects.filter(pk=job_id).update(phase=name, progress=progress, heartbeat_at=now, updated_at=now)


def _execute(job: GenerationJob, timings: dict[str, float]) -> JobOutput:
    # The registry imports every generator, torch among them: loaded here, in the worker only.
    from synth_engine.generators import get_generator

    request = DataRequest.objects.select_related("dataset", "purpose", "source_version").get(pk=job.request_id)
    source = request.source_version
    generator = get_generator(job.generator, **job.parameters)
    with _phase(job, "loading", 5, timings):
        # This worker's artefact storage must take the versions the job writes after it has spent:
        # wrong or read-only credentials are refused now, before anything is read or spent.
        version_storage().check_access()
        # A version stored before registration checked its rows against its declarations is
        # checked now, before its rows are read for the fit: a contradiction fails the job saying
        # only that the declarations await the steward's review (the steward reads which one).
        rows_hold_check(source)
        # Bad data (one-class label, all-null or infinite columns, undeclared ID-like columns, a
        # referenced table that changed) is refused here, before the data is touched for
        # training and before any spend.
        loaded = (
            _load_referenced(job, request, generator) if source.source_reference else _load(job, request, generator)
        )
    try:
        with _phase(job, "planning", 10, timings):
            # The request is checked once more against today's public facts (declared classes,
            # parameter bounds) before anything is spent.
            # That includes filing's refusal of too small an ε, on the version's paid row estimate:
            # the fit decides on the same estimate (it spends nothing on n), so it cannot refuse.
            access_request_revalidate(request=request)
            _dry_run_sampling_plan(request.rebalance, source.schema)
            row_estimate = (
                version_row_estimate(version=source, holdout_fraction=request.purpose.holdout_fraction)
                if generator.takes_row_estimate
                else None
            )
            planned = _plan(generator, request, row_estimate)
            _touch_data(job, request, planned)
        seed = noise_seed(job, request) if job.seed is not None else secrets.randbits(63)
        with _phase(job, "training", 15, timings):
            generator.progress_callback = _training_progress(job.pk)
            loaded.fit(seed, row_estimate)
            spent = generator.privacy_spent()
            _check_within_plan(spent, planned)
    finally:
        loaded.close()
    with _phase(job, "sampling", 85, timings):
        synthetic = _sample_streamed(job, request, generator)
    return JobOutput(
        source=source,
        train=loaded.train,
        holdout=loaded.holdout,
        synthetic=synthetic,
        split_seed=loaded.split_seed,
        planned=planned,
        spent=spent,
        generator_version=generator_version(type(generator)),
        counts_record=loaded.counts_record,
    )


def noise_seed(job: GenerationJob, request: DataRequest) -> int:
    """The seed a reproducible job's split, fit and sampling draw from: the requester's seed keyed
    with this installation's secret (Django's ``SECRET_KEY``, salted for this use) over the
    release's inputs (the source version's content, the generator and its parameters, ε, δ, the
    size and the rebalancing; not the file format, which changes no value).

    The requester chose ``job.seed``: used as it is, it gave them every random bit of the release,
    and with the rows they know they could compute the release on D and on D without one person and
    see which it is (tests/jobs/test_secret_noise.py). Keyed, the same inputs still give the same
    release, nobody without the key can compute the noise, and two releases that differ in any
    input (another version, another ε) draw unrelated noise, so the ledger's composition holds."""
    inputs = json.dumps(
        {
            "seed": job.seed,
            "source": request.source_version.content_hash,
            "generator": job.generator,
            "parameters": job.parameters,
            "epsilon": str(request.epsilon),
            "delta": str(request.delta),
            "n_rows": request.n_rows,
            "rebalance": request.rebalance,
        },
        sort_keys=True,
        default=str,
    )
    digest = salted_hmac("synthgate.job-noise-seed", inputs, algorithm="sha256").digest()
    return int.from_bytes(digest[:8], "big") >> 1  # 63 bits, as a drawn seed


@dataclass
class Loaded:
    """The job's data once loaded and checked: the split, and how to fit the generator on it."""

    train: pd.DataFrame
    holdout: pd.DataFrame
    split_seed: int
    fit: Callable[[int, PaidRowEstimate | None], Any]  # (seed, the version's paid row estimate or None)
    close: Callable[[], None] = lambda: None
    counts_record: dict[str, Any] | None = None  # which engine computed the counts, and where, for a reference


def _load(job: GenerationJob, request: DataRequest, generator: Generator) -> Loaded:
    """A stored version: read whole, split in memory (stratified by the label)."""
    source = request.source_version
    frame = version_storage().read_version(source.storage_key, source.schema)
    seed = noise_seed(job, request) if job.seed is not None else None
    train, holdout, split_seed = _split(frame, source.schema, float(request.purpose.holdout_fraction), seed)
    job_warnings = generator.check(train, source.schema)
    if job_warnings:
        GenerationJob.objects.filter(pk=job.pk).update(warnings=job_warnings)
    epsilon, delta = float(request.epsilon), float(request.delta)
    estimating: Any = generator  # one with ``takes_row_estimate`` (its fit takes ``row_estimate=``)
    return Loaded(
        train,
        holdout,
        split_seed,
        fit=lambda seed, estimate: (
            generator.fit(train, source.schema, epsilon, delta, random_state=seed)
            if estimate is None
            else estimating.fit(train, source.schema, epsilon, delta, random_state=seed, row_estimate=estimate)
        ),
    )


def _load_referenced(job: GenerationJob, request: DataRequest, generator: Generator) -> Loaded:
    """Data that lives in an engine (a database, a Parquet lake): checked there (unchanged since
    registration), split there, fitted from counts computed there; only the audit's samples are
    read as rows."""
    source = request.source_version
    fit_counts = getattr(generator, "fit_counts", None)
    if fit_counts is None:
        raise GeneratorError(
            f"generator {job.generator!r} cannot fit from counts computed where the data lives; "
            f"{source} refers to data that stays where it lives: use mst"
        )
    split_seed = noise_seed(job, request) % 2**31 if job.seed is not None else secrets.randbits(31)
    read = reference_open(source, split_seed=split_seed, holdout_fraction=float(request.purpose.holdout_fraction))
    try:
        train = table_from_frame(read.train_sample, source.schema).frame
        holdout = table_from_frame(read.holdout_sample, source.schema).frame
        generator.check(train, source.schema)  # the schema's facts; the table itself was checked in SQL
    except BaseException:
        read.close()
        raise
    epsilon, delta = float(request.epsilon), float(request.delta)
    return Loaded(
        train,
        holdout,
        split_seed,
        fit=lambda seed, estimate: fit_counts(
            read.counts, source.schema, epsilon, delta, random_state=seed, row_estimate=estimate
        ),
        close=read.close,
        counts_record=read.record(),
    )


def _sample_streamed(job: GenerationJob, request: DataRequest, generator: Generator) -> StreamedTable:
    """Sample the synthetic table in chunks of ``SYNTHGATE_SAMPLE_CHUNK_ROWS``, each written to
    a file in the stored form the request chose (canonical CSV or Parquet; hashed as it is
    written) while the next ``SYNTHGATE_SAMPLE_DRAW_THREADS`` are drawn (one when the generator's
    draws must run in order); a cancel is honoured between chunks."""
    conditions = _conditions(request.rebalance)
    n_rows = int(request.n_rows)

    def after_chunk(done: int) -> None:
        _phase_enter(job.pk, "sampling", 85 + (10 * done) // n_rows)

    threads = int(settings.SYNTHGATE_SAMPLE_DRAW_THREADS) if generator.independent_draws else 1
    return sample_to_file(
        ChunkDraws(lambda rows: generator.seeded_output(rows, conditions), threads),
        n_rows,
        request.source_version.schema,
        _sampling_directory(),
        chunk_rows=int(settings.SYNTHGATE_SAMPLE_CHUNK_ROWS),
        file_format=request.output_format,
        prefix=f"{SAMPLING_PREFIX}{job.pk}-",
        count_columns=(request.rebalance["column"],) if request.rebalance else (),
        after_chunk=after_chunk,
    )


def _dry_run_sampling_plan(rebalance: dict[str, Any] | None, schema: dict[str, Any]) -> None:
    """Build the conditional-sampling target on the label's declared (public) domain before any
    spend, so a plan that cannot be sampled fails the job while the reservation can still be released."""
    if not rebalance:
        return
    spec = next((spec for spec in parse_schema(schema) if spec.name == rebalance["column"]), None)
    if spec is None or spec.categories is None:
        raise GeneratorError(f"rebalancing column {rebalance['column']!r} has no declared categories")
    codec = CategoricalCodec(spec.name, list(spec.categories), False, True, "object")
    target_shares(codec, dict(rebalance["shares"]))


def _training_progress(job_id: int) -> Callable[[float], None]:
    """Map a generator's training progress (0..1) onto the job's 15–85 % band."""

    def report(fraction: float) -> None:
        GenerationJob.objects.filter(pk=job_id).update(progress=15 + int(70 * min(max(fraction, 0.0), 1.0)))

    return report


def _split(
    frame: pd.DataFrame, schema: dict[str, Any], fraction: float, seed: int | None
) -> tuple[pd.DataFrame, pd.DataFrame, int]:
    """Train / stratified holdout. The holdout is kept for audits and never reaches the generator."""
    from sklearn.model_selection import train_test_split  # seconds to import: only when a job runs

    split_seed = seed if seed is not None else secrets.randbits(31)
    labels = [column["name"] for column in schema["columns"] if column["role"] == "label"]
    stratify = frame[labels[0]].astype(str) if labels and frame[labels[0]].nunique() > 1 else None
    try:
        train, holdout = train_test_split(
            frame, test_size=fraction, random_state=split_seed % (2**32), stratify=stratify
        )
    except ValueError:  # a class too small to stratify: fall back to a plain random split
        train, holdout = train_test_split(frame, test_size=fraction, random_state=split_seed % (2**32))
    return train.sort_index().reset_index(drop=True), holdout.sort_index().reset_index(drop=True), split_seed


def _plan(generator: Generator, request: DataRequest, row_estimate: PaidRowEstimate | None) -> PrivacySpent | None:
    if not generator.is_private:
        return None
    # No row count: n is not public under add/remove DP; generators decide on a DP estimate, the
    # version's paid one when they take it (then the plan records it, and refuses what fit would).
    if row_estimate is not None:
        estimating: Any = generator  # one with ``takes_row_estimate``: its plan takes ``row_estimate=``
        planned: PrivacySpent = estimating.plan_privacy(
            float(request.epsilon), float(request.delta), row_estimate=row_estimate
        )
        return planned
    return generator.plan_privacy(float(request.epsilon), float(request.delta))


def _touch_data(job: GenerationJob, request: DataRequest, planned: PrivacySpent | None) -> None:
    """The job's first data access: turn the reservation into a spend (once per request)."""
    with transaction.atomic():
        locked = _job_locked(job.pk)
        if planned is None:
            budget_release(request=request, actor=None, job=locked, note="non-private generator: no DP budget used")
        else:
            budget_spend(
                request=request,
                job=locked,
                actor=None,
                epsilon=min(ledger_amount(planned.epsilon, places=12), request.epsilon),
                delta=min(ledger_amount(planned.delta, places=20), request.delta),
                mechanism=f"{job.generator}",
                accountant=planned.to_dict(),
            )
        locked.data_touched_at = timezone.now()
        # What the ledger was charged, so the job page agrees with it even if the job fails later;
        # a successful run replaces it with the accountant's own figure (never above the charge).
        locked.privacy_spent = planned.to_dict() if planned is not None else {}
        locked.save(update_fields=["data_touched_at", "privacy_spent", "updated_at"])


def _check_within_plan(spent: PrivacySpent, planned: PrivacySpent | None) -> None:
    if planned is None:
        return
    if spent.epsilon > planned.epsilon * (1 + 1e-9) or spent.delta > planned.delta * (1 + 1e-9):
        raise RuntimeError(
            f"The generator spent ε={spent.epsilon}, δ={spent.delta}, more than its plan "
            f"ε={planned.epsilon}, δ={planned.delta}; its output is discarded."
        )


def _conditions(rebalance: dict[str, Any] | None) -> dict[str, Any] | None:
    if not rebalance:
        return None
    return {rebalance["column"]: dict(rebalance["shares"])}


def _finish_succeeded(job_id: int, *, output: JobOutput, timings: dict[str, float], peak_bytes: int) -> None:
    """The writing phase: store train, holdout and synthetic versions and end the job, in one transaction."""
    _phase_enter(job_id, "writing", 95)
    with files_removed_on_error() as written, transaction.atomic():
        job = _job_locked(job_id)
        request = DataRequest.objects.select_for_update().get(pk=job.request_id)
        started = time.perf_counter()
        versions = _store_outputs(job, request, output, written)
        timings["writing"] = round(time.perf_counter() - started, 3)
        job.status, job.phase, job.progress = JobStatus.SUCCEEDED, "done", 100
        job.finished_at = timezone.now()
        job.timings = {**timings, "total": round(sum(timings.values()), 3)}
        job.peak_memory_bytes = peak_bytes
        job.privacy_spent = output.spent.to_dict()
        job.train_version = versions["train"]
        job.output_version, job.holdout_version = versions["synthetic"], versions["holdout"]
        job.save()
        audit_event_record(
            actor=None,
            action="job.succeed",
            obj=job,
            after={
                "synthetic_version": versions["synthetic"].pk,
                "content_hash": versions["synthetic"].content_hash,
                "privacy_spent": job.privacy_spent,
            },
        )
        request_transition(
            request=request,
            target=RequestState.AUDITING,
            actor=None,
            action="generated",
            extra={"job": job.pk, "synthetic_version": versions["synthetic"].pk},
        )
        for hook in job_succeeded_hooks():
            transaction.on_commit(partial(hook, job_id))


def _store_outputs(
    job: GenerationJob, request: DataRequest, output: JobOutput, written: list[Removable]
) -> dict[str, DatasetVersion]:
    source = output.source
    schema = source.schema
    common = {
        "source_version": source.pk,
        "source_hash": source.content_hash,
        "job": job.pk,
        # no split seed: a reproducible job's is its keyed noise seed (``noise_seed``), which no
        # reader of the lineage may hold; the installation derives it again from the inputs
    }
    versions = {}
    for kind, key, frame in (
        (VersionKind.TRAIN, "train", output.train),
        (VersionKind.HOLDOUT, "holdout", output.holdout),
    ):
        table = table_from_frame(frame, schema)
        versions[key] = dataset_version_store(
            dataset=request.dataset,
            table=table,
            actor=None,
            kind=kind,
            written=written,
            parent=source,
            lineage={**common, "role": key},
        ).version
    lineage = {**common, **_synthetic_lineage(job, request, output, versions)}
    versions["synthetic"] = dataset_version_store_streamed(
        dataset=request.dataset,
        streamed=output.synthetic,
        kind=VersionKind.SYNTHETIC,
        written=written,
        parent=source,
        lineage=lineage,
    ).version
    return versions


def _synthetic_lineage(
    job: GenerationJob, request: DataRequest, output: JobOutput, versions: dict[str, DatasetVersion]
) -> dict[str, Any]:
    spent = output.spent
    lineage: dict[str, Any] = {
        "generator": job.generator,
        "parameters": job.parameters,
        "seed_policy": job.seed_policy,
        "seed": job.seed,
        "epsilon_spent": spent.epsilon if spent.is_private else None,
        "delta_spent": spent.delta,
        "accountant": spent.to_dict(),
        "library_versions": job.library_versions,
        "generator_version": output.generator_version,
        "train_version": versions["train"].pk,
        "holdout_version": versions["holdout"].pk,
        "request": request.pk,
        "non_private": not spent.is_private,
    }
    if output.counts_record is not None:
        lineage["counts"] = {
            **output.counts_record,
            "audit_sample_rows": {"train": len(output.train), "holdout": len(output.holdout)},
        }
    if request.rebalance:
        lineage["rebalance"] = _rebalance_record(request.rebalance, output.train, output.synthetic)
    return lineage


def _rebalance_record(rebalance: dict[str, Any], train: pd.DataFrame, synthetic: StreamedTable) -> dict[str, Any]:
    column = rebalance["column"]
    return {
        "notice": "Intentionally non-representative: class shares were changed on purpose.",
        "column": column,
        "target_shares": rebalance["shares"],
        "real_shares": train[column].astype(str).value_counts(normalize=True).round(4).to_dict(),
        "released_shares": synthetic.shares(column),
    }


def _finish_failed(
    job_id: int, *, status: str, error: str, timings: dict[str, float] | None = None, actor: User | None = None
) -> None:
    with transaction.atomic():
        job = _job_locked(job_id)
        if job.is_terminal:
            return
        if timings:
            job.timings = timings
        _mark_failed_locked(job, status=status, error=error, actor=actor)


def _mark_failed_locked(job: GenerationJob, *, status: str, error: str, actor: User | None = None) -> None:
    """End a locked job; release the reservation only if the data was never touched."""
    request = DataRequest.objects.select_for_update().get(pk=job.request_id)
    job.status, job.error, job.finished_at = status, error[:5000], timezone.now()
    job.save()
    audit_event_record(
        actor=actor,
        action=f"job.{status}",
        obj=job,
        after={"error": job.error, "data_touched": job.data_touched_at is not None},
    )
    if job.data_touched_at is None:
        budget_release(request=request, actor=actor, job=job, note=f"job {status} before touching the data")
    if request.state == RequestState.GENERATING:
        request.decision_reason = job.error
        request_transition(
            request=request,
            target=RequestState.FAILED,
            actor=actor,
            action="fail",
            extra={"job": job.pk, "error": job.error},
        )
