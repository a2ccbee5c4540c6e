"""Audit runs: after a job, on demand and of external data; their end, their reaper.

An audit compares a synthetic (or external) version with the real rows it was made from and
a real holdout it never saw; thresholds come from the request's purpose. Every run includes
positive controls (audits.metrics.suite): a run whose controls are not caught is
inconclusive and cannot pass a release.
"""

from __future__ import annotations

import logging
import secrets
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
from django.conf import settings
from django.contrib.auth.models import User
from django.db import models, transaction
from django.utils import timezone
from django_celery_beat.models import PeriodicTask

from audits.models import (
    AuditKind,
    AuditRun,
    AuditStatus,
    CheckResult,
)
from audits.services.datasheets import datasheet_issue
from core.errors import ConflictError, NotFoundError, PermissionDeniedError, failure_reason
from core.liveness import connection_lost, database_reconnect, heartbeat, row_locked_by_live_work
from core.schedules import periodic_task_ensure
from governance.ingest import read_table
from governance.models import (
    DataRequest,
    Dataset,
    DatasetVersion,
    RequestState,
    Role,
    VersionKind,
)
from governance.permissions import request_visible_to, user_has_role
from governance.services import (
    audit_event_record,
    dataset_version_store,
    files_removed_on_error,
    ingest_limits,
    request_transition,
)
from governance.storage import version_storage
from synth_engine.generators.base import GeneratorError
from synth_engine.models import GenerationJob
from synth_engine.services import noise_seed

if TYPE_CHECKING:  # audits.metrics loads the numeric stack: imported where an audit runs
    from audits.metrics import AuditResult
    from audits.metrics.prediction import NoisePrediction

logger = logging.getLogger(__name__)
VERDICT_STATUS = {"pass": AuditStatus.PASSED, "fail": AuditStatus.FAILED, "inconclusive": AuditStatus.INCONCLUSIVE}


def version_frame(version: DatasetVersion) -> pd.DataFrame:
    """A stored version's rows, whole (a version registered by reference is read only as counts and
    samples drawn where it lives: ``_audit_samples``)."""
    if version.source_reference:
        raise ValueError(
            f"{version} stays where it lives ({version.source_reference.get('engine') or 'postgresql'}); "
            "it is read only as counts and audit samples"
        )
    return version_storage().read_version(version.storage_key, version.schema)


def version_rows(version: DatasetVersion, *, seed: int, limit: int) -> pd.DataFrame:
    """A stored version's rows, whole up to ``limit`` rows; above it a uniform random sample of
    ``limit`` (``seed``), streamed from the stored file so the table is never held whole."""
    if version.n_rows <= limit:
        return version_frame(version)
    return _stored_sample(version, seed=seed, limit=limit)


def audit_thresholds_for(request: DataRequest | None) -> dict[str, Any]:
    from audits.metrics.base import default_thresholds

    thresholds = default_thresholds()
    if request is not None:
        thresholds.update(request.purpose.audit_thresholds or {})
    return thresholds


def audit_run_for_job(*, job_id: int) -> AuditRun:
    """The audit that follows a generation job; moves the request to ready or blocked."""
    job = GenerationJob.objects.select_related("request", "output_version", "holdout_version", "train_version").get(
        pk=job_id
    )
    existing = AuditRun.objects.filter(version=job.output_version, kind=AuditKind.GENERATION).first()
    if existing is not None and existing.status != AuditStatus.RUNNING:
        return existing  # a redelivered task: the audit already ran
    if job.output_version is None or job.train_version is None or job.holdout_version is None:
        raise ConflictError(f"Job #{job.pk} has no synthetic version, training rows and holdout to audit.")
    # a reproducible job's audit draws from its keyed seed too: the requester chose job.seed
    seed = noise_seed(job, job.request) % 2**31 if job.seed is not None else None  # as a drawn one (randbits(31))
    return audit_run_execute(
        version=job.output_version,
        train_version=job.train_version,
        holdout_version=job.holdout_version,
        request=job.request,
        kind=AuditKind.GENERATION,
        actor=None,
        seed=seed,
    )


def audit_run_on_demand(*, actor: User, version_id: int, seed: int | None = None) -> AuditRun:
    """Audit any synthetic or external version again (e.g. with a new seed or new thresholds)."""

    version = DatasetVersion.objects.select_related("dataset").filter(pk=version_id).first()
    if version is None or version.kind not in (VersionKind.SYNTHETIC, VersionKind.EXTERNAL):
        raise NotFoundError(f"No synthetic or external version #{version_id}.")
    request = DataRequest.objects.filter(pk=version.lineage.get("request")).first()
    # The same visibility as audit_run_list: a request-less (external) version only for staff roles.
    visible = (
        request_visible_to(actor, request)
        if request is not None
        else user_has_role(actor, Role.STEWARD, Role.APPROVER, Role.AUDITOR)
    )
    if not visible:
        raise NotFoundError(f"No synthetic or external version #{version_id}.")
    # Auditors read and report; they change nothing (no new audit runs either). Requesters may not
    # run audits: an audit reads the real rows, and re-runs with chosen seeds could be differenced.
    if not user_has_role(actor, Role.STEWARD, Role.APPROVER):
        raise PermissionDeniedError(
            "Only stewards and approvers can run audits: an audit reads the real rows "
            "(auditors have read-only access; requesters read the results of the automatic audit)."
        )
    train = DatasetVersion.objects.get(pk=version.lineage["train_version"])
    holdout = DatasetVersion.objects.get(pk=version.lineage["holdout_version"])
    return audit_run_execute(
        version=version,
        train_version=train,
        holdout_version=holdout,
        request=request,
        kind=AuditKind.ON_DEMAND,
        actor=actor,
        seed=seed,
    )


def audit_external(
    *, actor: User, dataset_name: str, synthetic_path: Path, holdout_path: Path, seed: int | None = None
) -> AuditRun:
    """Audit synthetic data made elsewhere; the dataset's newest source version is its training data."""
    if not user_has_role(actor, Role.STEWARD):
        raise PermissionDeniedError(
            "Only a data steward can audit external synthetic data (it registers a version); auditors are read-only."
        )
    dataset = Dataset.objects.filter(name=dataset_name).first()
    if dataset is None:
        raise NotFoundError(f"No dataset named {dataset_name!r}.")
    source = dataset.versions.filter(kind=VersionKind.SOURCE).order_by("-number").first()
    if source is None:
        raise ConflictError(f"Dataset {dataset_name!r} has no source version to audit against.")
    schema = {**source.schema, "missing_values": source.schema.get("missing_values", [""])}
    tables = {
        kind: read_table(path, filename=path.name, limits=ingest_limits(), schema=schema)
        for kind, path in ((VersionKind.EXTERNAL, synthetic_path), (VersionKind.HOLDOUT, holdout_path))
    }
    with files_removed_on_error() as written, transaction.atomic():
        Dataset.objects.select_for_update().get(pk=dataset.pk)
        lineage = {"source_version": source.pk, "source_hash": source.content_hash, "train_version": source.pk}
        holdout = dataset_version_store(
            dataset=dataset,
            table=tables[VersionKind.HOLDOUT],
            actor=actor,
            kind=VersionKind.HOLDOUT,
            written=written,
            filename=holdout_path.name,
            parent=source,
            lineage={**lineage, "role": "external holdout"},
        ).version
        external = dataset_version_store(
            dataset=dataset,
            table=tables[VersionKind.EXTERNAL],
            actor=actor,
            kind=VersionKind.EXTERNAL,
            written=written,
            filename=synthetic_path.name,
            parent=source,
            lineage={**lineage, "holdout_version": holdout.pk, "generator": "external"},
        ).version
    return audit_run_execute(
        version=external,
        train_version=source,
        holdout_version=holdout,
        request=None,
        kind=AuditKind.EXTERNAL,
        actor=actor,
        seed=seed,
    )


def _noise_prediction(request: DataRequest | None, train_version: DatasetVersion) -> NoisePrediction | None:
    """The generator's predicted noise for this request (public inputs only): per fidelity
    check, which with the holdout's sampling floor sets the fidelity limits, and per cell of
    each (label, protected) table, which with the group sizes and rates sets the bias limits;
    ``None`` when it cannot be predicted."""
    from audits.outlook import PredictionUnavailableError, fidelity_noise_for

    if request is None:
        return None
    try:
        prediction = fidelity_noise_for(
            schema=train_version.schema,
            n_train=train_version.n_rows,
            n_rows=request.n_rows,
            epsilon=float(request.epsilon),
            delta=float(request.delta),
            generator=request.generator,
            generator_params=request.generator_params or {},
        )
    except PredictionUnavailableError as error:
        logger.info("Audit of request %s: %s", request.pk, error)
        return None
    return prediction


def audit_run_execute(
    *,
    version: DatasetVersion,
    train_version: DatasetVersion,
    holdout_version: DatasetVersion,
    request: DataRequest | None,
    kind: str,
    actor: User | None,
    seed: int | None,
) -> AuditRun:
    """Run the whole suite, store every check, sign a datasheet, and move the request on."""
    seed = seed if seed is not None else secrets.randbits(31)
    thresholds = audit_thresholds_for(request)
    run = AuditRun.objects.create(
        version=version,
        train_version=train_version,
        holdout_version=holdout_version,
        request=request,
        kind=kind,
        seed=seed,
        thresholds=thresholds,
        requested_by=actor,
        heartbeat_at=timezone.now(),
    )
    audit_event_record(actor=actor, action="audit.start", obj=run, after={"version": version.pk, "kind": kind})
    with heartbeat(AuditRun, run.pk):
        return _audit_run_finish(run, request, actor)


def _audit_run_finish(run: AuditRun, request: DataRequest | None, actor: User | None) -> AuditRun:
    from audits.metrics import run_audit

    version, train_version, holdout_version = run.version, run.train_version, run.holdout_version
    thresholds, seed = run.thresholds, run.seed
    try:
        train, holdout = _audit_samples(run, train_version, holdout_version)
        prediction = _noise_prediction(request, train_version)
        result = run_audit(
            train,
            holdout,
            _audited_synthetic(run, version, train, holdout),
            version.schema,
            thresholds=thresholds,
            random_state=seed,
            n_targets=settings.SYNTHGATE_AUDIT_TARGETS,
            n_jobs=settings.SYNTHGATE_AUDIT_THREADS or None,
            fidelity_noise=prediction.noise if prediction is not None else None,
            bias_noise=prediction.cell_noise if prediction is not None else None,
            privacy_claim=_privacy_claim(version),
        )
        _audit_record(run, result, actor)
        datasheet_issue(run=run)
    except Exception as error:  # an audit that cannot finish must still end, and block the request
        logger.exception("Audit run %s failed", run.pk)
        if connection_lost(error) and not database_reconnect():
            raise  # no database to record it in: the reaper ends the run once it is back
        return _audit_error(run, request, actor, failure_reason(error, stated=_stated_errors()))
    if request is not None:
        with transaction.atomic():
            _request_after_audit(request.pk, run, actor)
    return run


def _audit_samples(
    run: AuditRun, train_version: DatasetVersion, holdout_version: DatasetVersion
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The training rows and holdout the audit reads. Above ``SYNTHGATE_REFERENCE_AUDIT_ROWS`` rows,
    a uniform random sample (the run's seed) of each, read from the stored version as a stream
    (``_stored_sample``: the table is never held whole); a version registered by reference (an
    external or on-demand audit against a PostgreSQL table or a Parquet lake) is always read as such
    a sample, drawn where it lives (``reference_audit_sample``). The sizes, and where a sample was
    fetched from, are recorded on the run and stated in the internal report only (a recipient learns
    nothing about the row count from them)."""
    from synth_engine.sources import reference_audit_sample

    limit = int(settings.SYNTHGATE_REFERENCE_AUDIT_ROWS)
    frames: dict[str, pd.DataFrame] = {}
    fetched: dict[str, dict[str, str]] = {}
    sampled = False
    for role, version in (("train", train_version), ("holdout", holdout_version)):
        if version.source_reference:
            sample = reference_audit_sample(version, seed=run.seed, limit=limit)
            frames[role], fetched[role] = sample.frame, {"engine": sample.engine, "where": sample.where}
        else:
            frames[role] = version_rows(version, seed=run.seed, limit=limit)
            sampled = sampled or version.n_rows > limit
    if not fetched and not sampled:
        return frames["train"], frames["holdout"]
    run.audit_sample_rows = {
        "train": len(frames["train"]),
        "holdout": len(frames["holdout"]),
        **({"fetched": fetched} if fetched else {}),
    }
    run.save(update_fields=["audit_sample_rows", "updated_at"])
    return frames["train"], frames["holdout"]


def _audited_synthetic(
    run: AuditRun, version: DatasetVersion, train: pd.DataFrame, holdout: pd.DataFrame
) -> pd.DataFrame:
    """The synthetic (or external) table the audit judges: whole up to
    ``SYNTHGATE_AUDIT_SYNTHETIC_ROWS`` rows, above it a uniform random sample of that many (the run's
    seed), streamed from the stored file, its size recorded beside the training and holdout sizes.
    The checks' sampling floors are taken at the audited size, and the planted controls are planted
    in the same sample."""
    limit = int(settings.SYNTHGATE_AUDIT_SYNTHETIC_ROWS)
    frame = version_rows(version, seed=run.seed, limit=limit)
    if version.n_rows <= limit:
        return frame
    run.audit_sample_rows = {**run.audit_sample_rows, "synthetic": len(frame)}
    run.save(update_fields=["audit_sample_rows", "updated_at"])
    return frame


def _stored_sample(version: DatasetVersion, *, seed: int, limit: int) -> pd.DataFrame:
    """A uniform random sample of ``limit`` of a stored version's rows: the positions pandas'
    ``frame.sample(n=limit, random_state=seed)`` would pick (so the same run gives the same sample as
    reading the table whole did), read from the stored file as a stream (``read_version_rows``);
    memory holds the positions (8 bytes a row while they are drawn) and the sample."""
    positions = np.sort(np.random.RandomState(seed % (2**32)).choice(version.n_rows, size=limit, replace=False))
    frame = version_storage().read_version_rows(version.storage_key, version.schema, positions.tolist())
    if frame is None:  # the file holds fewer rows than recorded: sample what it holds, as before
        whole = version_frame(version)
        frame = whole.sample(n=min(limit, len(whole)), random_state=seed % (2**32)).sort_index()
    return frame.reset_index(drop=True)


def _privacy_claim(version: DatasetVersion) -> tuple[float, float] | None:
    """The (ε, δ) the generator reported for ``version``; ``None`` for non-private or external data."""
    lineage = version.lineage or {}
    epsilon, delta = lineage.get("epsilon_spent"), lineage.get("delta_spent")
    if epsilon is None or delta is None or lineage.get("non_private"):
        return None
    return float(epsilon), float(delta)


def _audit_record(run: AuditRun, result: AuditResult, actor: User | None) -> None:
    with transaction.atomic():
        CheckResult.objects.bulk_create([_check_row(run, check.to_dict()) for check in result.checks])
        run.status = VERDICT_STATUS[result.verdict]
        run.blocked, run.failed_checks = result.blocked, result.failed_checks
        run.controls = [control.to_dict() for control in result.controls]
        run.timings, run.finished_at = result.timings, timezone.now()
        run.save()
        audit_event_record(
            actor=actor,
            action=f"audit.{run.status}",
            obj=run,
            after={
                "version": run.version_id,
                "failed_checks": run.failed_checks,
                "blocked": run.blocked,
                "controls_caught": all(control["caught"] for control in run.controls),
            },
        )


def _check_row(run: AuditRun, data: dict[str, Any]) -> CheckResult:
    return CheckResult(
        run=run,
        name=data["name"],
        category=data["category"],
        value=data["value"],
        threshold=data["threshold"],
        direction=data["direction"],
        passed=data["passed"],
        blocking=data["blocking"],
        gating=data["gating"],
        baseline=data["baseline"],
        ci_low=data["ci_low"],
        ci_high=data["ci_high"],
        skipped_reason=data["skipped_reason"] or "",
        seconds=data["seconds"],
        details=data["details"],
        chart=data["chart"],
    )


def _request_after_audit(request_id: int, run: AuditRun, actor: User | None) -> None:
    request = DataRequest.objects.select_for_update().get(pk=request_id)
    if request.state == RequestState.BLOCKED and run.status == AuditStatus.PASSED and _blocked_by_error(request, run):
        # The block came from an audit that could not finish (error, worker lost), not from a
        # failed check: a re-run that passes lets the request on.
        request_transition(
            request=request, target=RequestState.READY, actor=actor, action="audited", extra={"audit_run": run.pk}
        )
        return
    if request.state != RequestState.AUDITING:
        return  # an on-demand re-audit does not move a request that has moved on
    target = RequestState.READY if run.status == AuditStatus.PASSED else RequestState.BLOCKED
    request_transition(
        request=request,
        target=target,
        actor=actor,
        action="audited",
        extra={"audit_run": run.pk, "status": run.status, "failed_checks": run.failed_checks},
    )


def _blocked_by_error(request: DataRequest, run: AuditRun) -> bool:
    earlier = request.audit_runs.exclude(pk=run.pk).exclude(status=AuditStatus.RUNNING).order_by("-id")
    statuses = list(earlier.values_list("status", flat=True))
    return bool(statuses) and all(status == AuditStatus.ERROR for status in statuses)


def audit_runs_reap() -> list[AuditRun]:
    """End every running audit whose heartbeat stopped (its worker is gone) as ``error``, blocking
    its request until a re-run (``audit run VERSION``) passes."""
    cutoff = timezone.now() - timedelta(seconds=settings.SYNTHGATE_HEARTBEAT_TIMEOUT_SECONDS)
    stale = AuditRun.objects.filter(status=AuditStatus.RUNNING).filter(
        models.Q(heartbeat_at__lt=cutoff) | models.Q(heartbeat_at__isnull=True, created_at__lt=cutoff)
    )
    reaped = []
    for run_id in stale.values_list("pk", flat=True):
        if row_locked_by_live_work(AuditRun, run_id):
            continue
        with transaction.atomic():
            run = AuditRun.objects.select_for_update().get(pk=run_id)
            if run.status != AuditStatus.RUNNING or (run.heartbeat_at or run.created_at) >= cutoff:
                continue
            since = (run.heartbeat_at or run.created_at).isoformat(timespec="seconds")
            error = f"Ended by the reaper: the worker running this audit was lost (no heartbeat since {since})."
            reaped.append(_audit_error(run, run.request, None, error))
    return reaped


def audit_reaper_schedule_ensure() -> PeriodicTask:
    """Register the beat entry that ends audit runs whose worker is gone (``synthgate init``)."""
    return periodic_task_ensure(
        name="synthgate: end audit runs whose worker is gone",
        task="audits.tasks.audit_runs_reap_stale",
        every_seconds=settings.SYNTHGATE_REAPER_TICK_SECONDS,
        description="audits.services.audit_runs_reap: running audits with no heartbeat end as error.",
    )


def checkpoint_compaction_schedule_ensure() -> PeriodicTask:
    """Register the daily beat entry that folds old checkpoint objects into a signed segment
    (``synthgate init``; the task does nothing where checkpoints are a file)."""
    return periodic_task_ensure(
        name="synthgate: fold old audit-log checkpoint objects into a signed segment",
        task="audits.tasks.audit_log_checkpoints_compact",
        every_seconds=24 * 3600,
        description="governance.services.audit_log.audit_log_compact_checkpoints (synthgate log compact).",
    )


def _stated_errors() -> tuple[type[Exception], ...]:
    """The errors whose text is written for an audit's readers; any other is recorded by its class only
    (imported here: audits.metrics loads the numeric stack, and this runs only where an audit ran)."""
    from audits.datasheets.context import DatasheetContextError
    from audits.datasheets.signing import SigningIdentityError
    from audits.metrics.base import AuditInputError

    return (GeneratorError, AuditInputError, DatasheetContextError, SigningIdentityError)


def _audit_error(run: AuditRun, request: DataRequest | None, actor: User | None, error: str) -> AuditRun:
    with transaction.atomic():
        run.status, run.error, run.finished_at = AuditStatus.ERROR, error[:5000], timezone.now()
        run.save()
        audit_event_record(actor=actor, action="audit.error", obj=run, after={"error": run.error})
        if request is not None:
            _request_after_audit(request.pk, run, actor)
    return run
