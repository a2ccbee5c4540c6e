"""Scheduled drift re-audits of active releases.

A release is re-audited when its dataset has a source version newer than the one it was made
from: the newest source against that source (has the population moved?), and the release against
the newest source, compared with the release against its own source (does the release still
represent the data?). A release is marked stale when the source drifted beyond the purpose's drift
thresholds, or when a drift check of the release fails against the newest source though it passed
against its own source. A stale release stays downloadable; its steward is told why (the run's
reasons and figures) and its requester that it is (no figure: they compare real rows).

A release whose source is a table registered by reference (docs/engines.md) is compared with a new
snapshot of that table, taken where it lives (``synth_engine.sources.reference_snapshot``): row
count and checksum; when they differ from the registered ones, a random sample of the table now is
compared as a newer source would be, with the training rows the release's job fetched standing for
the source. The snapshot is recorded on the run (one run per table content). A table that no longer
matches its schema, or cannot be read, gives a failed run with the reason; the release is not marked
stale, its steward is told, and the next re-audit tries again.
"""

from __future__ import annotations

import logging
import secrets
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import pandas as pd
from django.conf import settings
from django.contrib.auth.models import User
from django.core.mail import send_mail
from django.db import IntegrityError, transaction
from django.db.models import QuerySet
from django.utils import timezone
from django_celery_beat.models import IntervalSchedule, PeriodicTask

from audits.models import DriftRun, DriftSchedule, DriftTrigger, Release
from audits.services.runs import audit_thresholds_for, version_rows
from core.errors import NotFoundError, PermissionDeniedError, ValidationError
from governance.models import Dataset, DatasetVersion, Role
from governance.permissions import user_has_role
from governance.selectors import dataset_latest_source
from governance.services import audit_event_record
from synth_engine.sources import ReferenceSnapshot, SnapshotError, reference_snapshot

logger = logging.getLogger(__name__)
DRIFT_CHECKS = ("drift_psi", "drift_js", "drift_association")
BEAT_TASK_NAME = "synthgate: scheduled drift audits"
BEAT_TASK = "audits.tasks.drift_audits_scheduled"


@dataclass
class DriftOutcome:
    """One release's verdict: ``stale``, ``current``, ``failed`` (could not be made), ``no_new_source``
    or ``already_stale``."""

    release: Release
    verdict: str
    run: DriftRun | None = None
    reasons: list[str] = field(default_factory=list)


def releases_active(*, dataset: Dataset | None = None, now: datetime | None = None) -> QuerySet[Release]:
    """Releases neither revoked nor expired, oldest first."""
    queryset = Release.objects.filter(revoked_at__isnull=True, expires_at__gt=now or timezone.now())
    if dataset is not None:
        queryset = queryset.filter(request__dataset=dataset)
    return queryset.select_related(
        "request__dataset__owner", "request__requester", "request__purpose", "request__source_version", "version"
    ).order_by("created_at", "id")


def drift_audit_run(
    *, actor: User | None, dataset_name: str | None = None, trigger: str = DriftTrigger.ON_DEMAND
) -> list[DriftOutcome]:
    """Re-audit every active release (of one dataset, if named) against its dataset's newest source."""
    if actor is not None and not user_has_role(actor, Role.STEWARD):
        raise PermissionDeniedError("Only a data steward can run drift audits; auditors are read-only.")
    dataset = None
    if dataset_name:
        dataset = Dataset.objects.filter(name=dataset_name).first()
        if dataset is None:
            raise NotFoundError(f"No dataset named {dataset_name!r}.")
    reads = DriftReads()
    return [
        drift_audit_release(release=release, actor=actor, trigger=trigger, reads=reads)
        for release in releases_active(dataset=dataset)
    ]


def drift_audits_due(*, now: datetime | None = None) -> list[DriftOutcome]:
    """The scheduled sweep: re-audit each dataset whose drift interval has passed (claimed once)."""
    now = now or timezone.now()
    outcomes: list[DriftOutcome] = []
    dataset_ids = releases_active(now=now).values_list("request__dataset", flat=True).distinct()
    for dataset in Dataset.objects.filter(pk__in=list(dataset_ids)).order_by("name"):
        if _claim(dataset, now):
            outcomes += drift_audit_run(actor=None, dataset_name=dataset.name, trigger=DriftTrigger.SCHEDULE)
    return outcomes


def _claim(dataset: Dataset, now: datetime) -> bool:
    """Take this dataset's turn; a concurrent beat tick or worker sees the row already moved on."""
    schedule, _ = DriftSchedule.objects.get_or_create(
        dataset=dataset, defaults={"interval_hours": settings.SYNTHGATE_DRIFT_INTERVAL_HOURS}
    )
    if not schedule.enabled:
        return False
    if schedule.last_run_at is not None and schedule.last_run_at + timedelta(hours=schedule.interval_hours) > now:
        return False
    # Compare-and-set on the value just read: of two concurrent sweeps, only one moves it.
    claimed = DriftSchedule.objects.filter(pk=schedule.pk)
    if schedule.last_run_at is None:
        claimed = claimed.filter(last_run_at__isnull=True)
    else:
        claimed = claimed.filter(last_run_at=schedule.last_run_at)
    return claimed.update(last_run_at=now) == 1


@dataclass
class DriftReads:
    """The tables one sweep compares, each read once: a stored table whole up to the audit's sample
    size (``SYNTHGATE_REFERENCE_AUDIT_ROWS`` for real rows, ``SYNTHGATE_AUDIT_SYNTHETIC_ROWS`` for a
    release), above it a uniform random sample of that size streamed from its file (``seed``), so a
    re-audit of a large table never holds it whole. ``sampled``: the versions read as samples."""

    seed: int = field(default_factory=lambda: secrets.randbits(31))
    frames: dict[int, pd.DataFrame] = field(default_factory=dict)
    sampled: set[int] = field(default_factory=set)

    def stored(self, version: DatasetVersion, limit: int) -> pd.DataFrame:
        if version.pk not in self.frames:
            self.frames[version.pk] = version_rows(version, seed=self.seed, limit=limit)
            if version.n_rows > limit:
                self.sampled.add(version.pk)
        return self.frames[version.pk]


def drift_audit_release(
    *, release: Release, actor: User | None, trigger: str, reads: DriftReads | None = None
) -> DriftOutcome:
    """Compare one release with its dataset's newest source, or with a new snapshot of the table
    its source refers to; store the run and mark the release stale if it drifted."""
    if release.stale_at is not None:
        return DriftOutcome(release, "already_stale", release.drift_runs.filter(stale=True).first())
    reference = release.request.source_version
    current = dataset_latest_source(dataset=release.request.dataset)
    reads = DriftReads() if reads is None else reads
    if current is not None and current.number > reference.number:
        existing = DriftRun.objects.filter(release=release, current_version=current).first()
        if existing is not None:  # already judged against this source: a repeat changes nothing
            return _outcome(release, existing)
        try:
            current_frame = _frame(current, release, reads)
        except SnapshotError as error:
            return _record(release, actor, trigger, _failed(error), reference=reference)
        figures = drift_figures(
            release=release, reference=_frame(reference, release, reads), current=current_frame, reads=reads
        )
        figures["compared_rows"] |= _which(reads, reference=reference, current=current, release=release)
        return _record(release, actor, trigger, figures, reference=reference, current=current)
    if not reference.source_reference:
        return DriftOutcome(release, "no_new_source")
    # A source registered by reference: the data lives on where it was; compare with it as it is now.
    try:
        snapshot = _snapshot(reference)
    except SnapshotError as error:
        return _record(release, actor, trigger, _failed(error), reference=reference)
    key = f"{snapshot.n_rows}:{snapshot.checksum}"
    existing = DriftRun.objects.filter(release=release, snapshot_key=key).first()
    if existing is not None:  # this table content was judged already: a repeat changes nothing
        return _outcome(release, existing)
    if snapshot.sample is None:  # the rows the release was made from, as the checksum says: no drift
        figures = {"thresholds": _thresholds(release), "stale": False, "reasons": []}
    else:
        figures = drift_figures(
            release=release, reference=_frame(reference, release, reads), current=snapshot.sample, reads=reads
        )
        figures["compared_rows"] |= _which(reads, reference=reference, current=None, release=release)
    figures |= {"snapshot": snapshot.described(), "snapshot_key": key}
    return _record(release, actor, trigger, figures, reference=reference)


def _snapshot(version: DatasetVersion, *, always_sample: bool = False) -> ReferenceSnapshot:
    limit = int(settings.SYNTHGATE_REFERENCE_AUDIT_ROWS)
    return reference_snapshot(version, seed=secrets.randbits(31), limit=limit, always_sample=always_sample)


def _frame(version: DatasetVersion, release: Release, reads: DriftReads) -> pd.DataFrame:
    """A version's rows for the comparison: a stored version whole or as a streamed sample
    (:class:`DriftReads`); the source a referenced release was made from as the training rows its
    job fetched for the audit; a newer referenced version as a sample of its table now
    (SnapshotError when that table cannot be read)."""
    limit = int(settings.SYNTHGATE_REFERENCE_AUDIT_ROWS)
    if not version.source_reference:
        return reads.stored(version, limit)
    if version.pk == release.request.source_version_id:
        return reads.stored(release.audit_run.train_version, limit)
    if version.pk not in reads.frames:
        sample = _snapshot(version, always_sample=True).sample
        assert sample is not None  # always_sample
        reads.frames[version.pk] = sample
    return reads.frames[version.pk]


def _which(
    reads: DriftReads, *, reference: DatasetVersion, current: DatasetVersion | None, release: Release
) -> dict[str, Any]:
    """Which of the compared tables were read as samples, and the sweep's sampling seed."""
    stored = {"reference": reference, "current": current, "synthetic": release.version}
    if reference.source_reference:
        stored["reference"] = release.audit_run.train_version
    sampled = [role for role, version in stored.items() if version is not None and version.pk in reads.sampled]
    return {"sampled": sampled, "seed": reads.seed} if sampled else {"sampled": []}


def _failed(error: SnapshotError) -> dict[str, Any]:
    return {"failed": True, "stale": False, "reasons": [f"the re-audit could not read the source: {error}"]}


def _thresholds(release: Release) -> dict[str, Any]:
    return {name: value for name, value in audit_thresholds_for(release.request).items() if name in DRIFT_CHECKS}


def _outcome(release: Release, run: DriftRun) -> DriftOutcome:
    verdict = "failed" if run.failed else "stale" if run.stale else "current"
    return DriftOutcome(release, verdict, run, list(run.reasons))


def _record(
    release: Release,
    actor: User | None,
    trigger: str,
    figures: dict[str, Any],
    *,
    reference: DatasetVersion,
    current: DatasetVersion | None = None,
) -> DriftOutcome:
    """Store one run and its event (and the stale mark); a concurrent sweep's identical run wins."""
    figures = {"thresholds": _thresholds(release), **figures}
    try:
        with transaction.atomic():
            run = DriftRun.objects.create(
                release=release,
                reference_version=reference,
                current_version=current,
                trigger=trigger,
                requested_by=actor,
                **figures,
            )
            audit_event_record(
                actor=actor,
                action="drift.audit",
                obj=run,
                after={
                    "release": release.pk,
                    "reference_version": reference.pk,
                    "current_version": current.pk if current is not None else None,
                    "snapshot": run.snapshot or None,
                    "compared_rows": run.compared_rows or None,
                    "failed": run.failed,
                    "stale": run.stale,
                    "reasons": run.reasons,
                    "trigger": trigger,
                },
            )
            if run.stale:
                release_mark_stale(release=release, run=run, actor=actor)
            elif run.failed:
                transaction.on_commit(lambda: _failed_notice_send(release, run))
    except IntegrityError:  # a concurrent sweep judged the same source or table content first
        if current is not None:
            return _outcome(release, DriftRun.objects.get(release=release, current_version=current))
        return _outcome(release, DriftRun.objects.get(release=release, snapshot_key=figures["snapshot_key"]))
    return _outcome(release, run)


def drift_figures(
    *, release: Release, reference: pd.DataFrame, current: pd.DataFrame, reads: DriftReads | None = None
) -> dict[str, Any]:
    """The three drift comparisons, per-column figures, the verdict with its reasons, and the rows
    each comparison read (``compared_rows``)."""
    from audits.metrics import drift_checks

    thresholds = _thresholds(release)
    synthetic = release.version
    synthetic_frame = (DriftReads() if reads is None else reads).stored(
        synthetic, int(settings.SYNTHGATE_AUDIT_SYNTHETIC_ROWS)
    )
    compared = {"reference": len(reference), "current": len(current), "synthetic": len(synthetic_frame)}

    def compare(a: pd.DataFrame, b: pd.DataFrame, schema: dict[str, Any]) -> list[dict[str, Any]]:
        return [check.to_dict() for check in drift_checks(a, b, schema, thresholds=thresholds)]

    try:
        source = compare(reference, current, release.request.source_version.schema)
        released = compare(current, synthetic_frame, synthetic.schema)
        baseline = compare(reference, synthetic_frame, synthetic.schema)
    except ValueError as error:  # the newest source no longer has the release's columns
        reason = f"the newest source version cannot be compared with the release: {error}"
        return {"thresholds": thresholds, "stale": True, "reasons": [reason], "compared_rows": compared}
    reasons = [f"source drift: {_failure(check)}" for check in source if check["passed"] is False]
    passed_before = {check["name"] for check in baseline if check["passed"] is not False}
    reasons += [
        f"release drift against the newest source: {_failure(check)}"
        for check in released
        if check["passed"] is False and check["name"] in passed_before
    ]
    per_column = {"source": _per_column(source), "release": _per_column(released)}
    return {
        "thresholds": thresholds,
        "source_checks": source,
        "release_checks": released,
        "baseline_checks": baseline,
        "per_column": per_column,
        "compared_rows": compared,
        "stale": bool(reasons),
        "reasons": reasons,
    }


def _failure(check: dict[str, Any]) -> str:
    worst = check["details"].get("worst_column")
    column = f" (worst column {worst})" if worst else ""
    return f"{check['name']} {check['value']:.4f} > {check['threshold']}{column}"


def _per_column(checks: list[dict[str, Any]]) -> dict[str, Any]:
    psi = next((check for check in checks if check["name"] == "drift_psi"), None)
    return psi["details"].get("per_column", {}) if psi else {}


def release_mark_stale(*, release: Release, run: DriftRun, actor: User | None) -> bool:
    """Mark a release stale once (conditional update), log it, and email its steward and requester."""
    now = timezone.now()
    if not Release.objects.filter(pk=release.pk, stale_at__isnull=True).update(stale_at=now, updated_at=now):
        return False
    release.stale_at = now
    audit_event_record(
        actor=actor,
        action="release.stale",
        obj=release,
        before={"stale_at": None},
        after={"stale_at": now, "drift_run": run.pk, "reasons": run.reasons},
    )
    transaction.on_commit(lambda: _stale_notice_send(release, run))
    return True


def _failed_notice_send(release: Release, run: DriftRun) -> None:
    """Tell the dataset's steward that a re-audit could not be made (the next one tries again)."""
    owner = release.request.dataset.owner
    if not owner.email:
        return
    subject = f"Synthgate: the drift re-audit of release #{release.pk} of {release.request.dataset.name} failed"
    body = "\n".join(
        [
            f"Drift run #{run.pk} could not re-audit release #{release.pk} (request #{release.request_id}):",
            "",
            *[f"- {reason}" for reason in run.reasons],
            "",
            "The release is not marked stale; the next scheduled re-audit tries again.",
        ]
    )
    try:
        send_mail(subject, body, settings.DEFAULT_FROM_EMAIL, [owner.email])
    except OSError:
        logger.exception("Could not email the failed drift notice for release %s", release.pk)


def _stale_notice_send(release: Release, run: DriftRun) -> None:
    """Tell the dataset's steward why the release is stale (the run's reasons, with their figures),
    and its requester that it is, without them: drift figures compare real rows, which a requester
    never reads (the reasons stay on the run, for stewards and auditors)."""
    request = release.request
    subject = f"Synthgate: release #{release.pk} of {request.dataset.name} is stale"
    against = (
        f"source version {run.current_version.number}"
        if run.current_version is not None
        else f"the source table as it was at {run.snapshot.get('taken_at', '')[:16]} UTC"
    )
    found = (
        f"A drift audit found release #{release.pk} (request #{request.pk}, dataset {request.dataset.name}, "
        f"made from source version {run.reference_version.number}) stale against {against}"
    )
    closing = [
        "",
        "The release stays downloadable until it expires or is revoked; consider a new request on the newest source.",
        f"Drift run #{run.pk}.",
        "",
        f"Open it in the dashboard at /releases/{release.pk}/ or with `synthgate release show {release.pk}`.",
    ]
    steward, requester = request.dataset.owner.email, request.requester.email
    messages = []
    if steward:
        messages.append(([steward], [f"{found}:", "", *[f"- {reason}" for reason in run.reasons], *closing]))
    if requester and requester != steward:
        told = f"{found}: the data it was made from has moved beyond the purpose's drift thresholds."
        messages.append(([requester], [told, "The figures are shown to the dataset's steward.", *closing]))
    for recipients, lines in messages:
        try:
            send_mail(subject, "\n".join(lines), settings.DEFAULT_FROM_EMAIL, recipients)
        except OSError:  # the stale mark and its audit event stand; a lost email must not undo them
            logger.exception("Could not email the stale notice for release %s", release.pk)


def drift_schedule_set(*, actor: User, dataset_name: str, interval_hours: int, enabled: bool = True) -> DriftSchedule:
    """Set how often a dataset's active releases are re-audited for drift (stewards only)."""
    if not user_has_role(actor, Role.STEWARD):
        raise PermissionDeniedError("Only a data steward can change a drift schedule.")
    if interval_hours < 1:
        raise ValidationError("The drift interval must be at least 1 hour.", extra={"field": "interval_hours"})
    dataset = Dataset.objects.filter(name=dataset_name).first()
    if dataset is None:
        raise NotFoundError(f"No dataset named {dataset_name!r}.")
    with transaction.atomic():
        schedule, _ = DriftSchedule.objects.select_for_update().get_or_create(dataset=dataset)
        before = {"interval_hours": schedule.interval_hours, "enabled": schedule.enabled}
        schedule.interval_hours, schedule.enabled = interval_hours, enabled
        schedule.save(update_fields=["interval_hours", "enabled", "updated_at"])
        audit_event_record(
            actor=actor,
            action="drift.schedule",
            obj=schedule,
            before=before,
            after={"dataset": dataset.name, "interval_hours": interval_hours, "enabled": enabled},
        )
    return schedule


def drift_beat_schedule_ensure() -> PeriodicTask:
    """Create or update the django-celery-beat entry that runs the drift sweep (``synthgate init``)."""
    interval, _ = IntervalSchedule.objects.get_or_create(
        every=settings.SYNTHGATE_DRIFT_TICK_MINUTES, period=IntervalSchedule.MINUTES
    )
    task, _ = PeriodicTask.objects.update_or_create(
        name=BEAT_TASK_NAME,
        defaults={
            "task": BEAT_TASK,
            "interval": interval,
            "enabled": True,
            "description": "Re-audit active releases whose dataset's drift interval "
            "has passed (audits.services.drift_audits.drift_audits_due).",
        },
    )
    return task
