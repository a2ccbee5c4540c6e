"""Gather the facts of a compliance report for a period, as plain JSON-ready values.

Amounts are exact Decimal strings, times ISO 8601 in UTC. The period is a pair of dates, both
inclusive, read as whole UTC days.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.contrib.auth.models import User
from django.db.models import Q, QuerySet
from django.utils import timezone

from audits.models import AuditRun, CheckResult, DriftRun, Release, RiskAcceptance
from audits.selectors import release_exceptions, released_despite_failed_checks
from core.amounts import amount_text
from core.errors import NotFoundError, PermissionDeniedError, ValidationError
from core.times import time_iso
from governance.ledger import BudgetBalance
from governance.models import (
    Approval,
    BudgetEntry,
    DataRequest,
    Dataset,
    Purpose,
    RequestState,
    Role,
)
from governance.permissions import user_has_role
from governance.services import audit_log_verify

ZERO = Decimal(0)
READERS = (Role.STEWARD, Role.AUDITOR)


@dataclass(frozen=True)
class ReportScope:
    """The period as a half-open UTC interval, and the optional filters."""

    date_from: date
    date_to: date
    dataset: Dataset | None
    purpose: Purpose | None

    @property
    def start(self) -> datetime:
        return datetime.combine(self.date_from, time.min, tzinfo=UTC)

    @property
    def end(self) -> datetime:
        return datetime.combine(self.date_to + timedelta(days=1), time.min, tzinfo=UTC)

    def requests(self) -> QuerySet[DataRequest]:
        queryset = DataRequest.objects.all()
        if self.dataset is not None:
            queryset = queryset.filter(dataset=self.dataset)
        if self.purpose is not None:
            queryset = queryset.filter(purpose=self.purpose)
        return queryset

    def during(self, field: str) -> Q:
        return Q(**{f"{field}__gte": self.start, f"{field}__lt": self.end})


# Before the platform (and Unix time) nothing can have happened; the upper bound keeps
# "the day after the period" a representable date.
EARLIEST_REPORT_DATE = date(1970, 1, 1)
LATEST_REPORT_DATE = date(9000, 12, 31)


def _check_period_bounds(date_from: date, date_to: date) -> None:
    for field, day in (("from", date_from), ("to", date_to)):
        if not EARLIEST_REPORT_DATE <= day <= LATEST_REPORT_DATE:
            raise ValidationError(
                f"The period's {field!r} date {day} is outside {EARLIEST_REPORT_DATE} to {LATEST_REPORT_DATE}.",
                extra={"field": field},
            )
    days = (date_to - date_from).days + 1
    limit = settings.SYNTHGATE_MAX_REPORT_DAYS
    if days > limit:
        raise ValidationError(
            f"The period covers {days:,} days; a report may cover at most {limit:,} (SYNTHGATE_MAX_REPORT_DAYS).",
            extra={"field": "to", "days": days, "limit_days": limit},
        )


def compliance_scope(
    *, actor: User, date_from: date, date_to: date, dataset: str | None = None, purpose: str | None = None
) -> ReportScope:
    """Check the reader's role, the period and the filters; stewards and auditors only."""
    if not user_has_role(actor, *READERS):
        raise PermissionDeniedError("Only stewards and auditors can produce compliance reports.")
    if date_to < date_from:
        raise ValidationError(f"The period ends ({date_to}) before it starts ({date_from}).", extra={"field": "to"})
    _check_period_bounds(date_from, date_to)
    dataset_row = purpose_row = None
    if dataset:
        dataset_row = Dataset.objects.filter(name=dataset).first()
        if dataset_row is None:
            raise NotFoundError(f"No dataset named {dataset!r}.", extra={"field": "dataset"})
    if purpose:
        purpose_row = Purpose.objects.filter(name=purpose).first()
        if purpose_row is None:
            raise NotFoundError(f"No purpose named {purpose!r}.", extra={"field": "purpose"})
    return ReportScope(date_from, date_to, dataset_row, purpose_row)


def compliance_report_build(
    *, actor: User, date_from: date, date_to: date, dataset: str | None = None, purpose: str | None = None
) -> dict[str, Any]:
    """Every fact of the compliance report for the period (dates inclusive, UTC) and filters."""
    scope = compliance_scope(actor=actor, date_from=date_from, date_to=date_to, dataset=dataset, purpose=purpose)
    chain = audit_log_verify()
    return {
        "report": {
            "title": "Synthgate compliance report",
            "period": {"from": date_from.isoformat(), "to": date_to.isoformat(), "timezone": "UTC"},
            "filters": {"dataset": dataset or None, "purpose": purpose or None},
            "generated_at": _at(timezone.now()),
            "generated_by": actor.username,
        },
        "requests": _requests(scope),
        "decisions": _decisions(scope),
        "risk_acceptances": _risk_acceptances(scope),
        "budgets": [_budget(scope, row) for row in _datasets(scope)],
        "releases": _releases(scope),
        "audits": _audits(scope),
        "drift_audits": _drift_audits(scope),
        "audit_log": {
            "ok": chain.ok,
            "events_checked": chain.events_checked,
            "first_broken_id": chain.first_broken_id,
            "reason": chain.reason,
            "last_hash": chain.last_hash,
            # The latest signed checkpoint of the chain head, kept outside the database
            # (docs/tamper-evidence.md): the report, signed in turn, carries it.
            "checkpoint": chain.checkpoint.described() if chain.checkpoint else None,
        },
    }


def _at(value: datetime | None) -> str | None:
    return time_iso(value)


def _requests(scope: ReportScope) -> dict[str, Any]:
    rows = (
        scope.requests()
        .filter(scope.during("created_at"))
        .select_related("dataset", "purpose", "requester")
        .order_by("created_at", "id")
    )
    by_state = dict.fromkeys(RequestState.values, 0)
    items = []
    for request in rows:
        by_state[request.state] += 1
        items.append(
            {
                "id": request.pk,
                "dataset": request.dataset.name,
                "purpose": request.purpose.name,
                "requester": request.requester.username,
                "state": request.state,
                "epsilon": amount_text(request.epsilon),
                "delta": amount_text(request.delta),
                "n_rows": request.n_rows,
                "recipient": request.recipient,
                "recipient_kind": request.recipient_kind,
                "justification": request.justification,
                "created_at": _at(request.created_at),
                "submitted_at": _at(request.submitted_at),
                "decided_at": _at(request.decided_at),
                "decision_reason": request.decision_reason,
            }
        )
    return {"total": len(items), "by_state": by_state, "items": items}


def _decisions(scope: ReportScope) -> list[dict[str, Any]]:
    rows = (
        Approval.objects.filter(request__in=scope.requests())
        .filter(scope.during("created_at"))
        .select_related("approver", "request__dataset")
        .order_by("created_at", "id")
    )
    return [
        {
            "request": a.request_id,
            "dataset": a.request.dataset.name,
            "approver": a.approver.username,
            "decision": a.decision,
            "at": _at(a.created_at),
            "reason": a.reason,
        }
        for a in rows
    ]


def _risk_acceptances(scope: ReportScope) -> list[dict[str, Any]]:
    """One row per accepted failed check, with the reason given for that check."""
    rows = (
        RiskAcceptance.objects.filter(request__in=scope.requests())
        .filter(scope.during("created_at"))
        .select_related("approver", "request__dataset")
        .order_by("created_at", "id")
    )
    return [
        {
            "request": r.request_id,
            "dataset": r.request.dataset.name,
            "audit_run": r.run_id,
            "approver": r.approver.username,
            "at": _at(r.created_at),
            "check": name,
            "reason": (r.reasons or {}).get(name) or r.reason,
            "failed_checks": list(r.failed_checks),
        }
        for r in rows
        for name in r.failed_checks
    ]


def _exceptions(release: Release) -> list[dict[str, Any]]:
    """The failed checks a release went out with, each with its value, who accepted it, when and why."""
    return [{**row, "accepted_at": _at(row["accepted_at"])} for row in release_exceptions(release=release, user=None)]


def _datasets(scope: ReportScope) -> QuerySet[Dataset]:
    if scope.dataset is not None:
        return Dataset.objects.filter(pk=scope.dataset.pk)
    if scope.purpose is not None:
        return Dataset.objects.filter(requests__purpose=scope.purpose).distinct().order_by("name")
    return Dataset.objects.order_by("name")


def _budget(scope: ReportScope, dataset: Dataset) -> dict[str, Any]:
    """The dataset's ledger in the period, each entry with the dataset's running balance after it.

    Running figures always cover the whole dataset (the budget is the dataset's); with a purpose
    filter only that purpose's entries are listed and summed under ``period``.
    """
    balance = BudgetBalance.opening(dataset)
    opening = balance.figures()
    entries, period = [], dict.fromkeys(("reserve", "spend", "release"), (ZERO, ZERO))
    ledger = (
        BudgetEntry.objects.filter(dataset=dataset, created_at__lt=scope.end)
        .select_related("request__purpose", "version")
        .order_by("created_at", "id")
    )
    for entry in ledger:
        balance = balance.plus(entry.kind, entry.epsilon, entry.delta)
        if entry.created_at < scope.start:
            opening = balance.figures()
            continue
        purpose = entry.request.purpose if entry.request is not None else None  # a row estimate has none
        if scope.purpose is not None and (purpose is None or purpose.pk != scope.purpose.pk):
            continue
        kind = "spend" if entry.kind == "estimate" else entry.kind  # a row estimate is spent outright
        epsilon, delta = period[kind]
        period[kind] = (epsilon + entry.epsilon, delta + entry.delta)
        entries.append(
            {
                "id": entry.pk,
                "at": _at(entry.created_at),
                "kind": entry.kind,
                "request": entry.request_id,
                "purpose": purpose.name if purpose is not None else None,
                "version": entry.version.number if entry.version is not None else None,
                "job": entry.job_id,
                "epsilon": amount_text(entry.epsilon),
                "delta": amount_text(entry.delta),
                "mechanism": entry.mechanism,
                "note": entry.note,
                "running": balance.figures(),
            }
        )
    return {
        "dataset": dataset.name,
        "epsilon_cap": amount_text(dataset.epsilon_cap),
        "delta_cap": amount_text(dataset.delta_cap),
        "opening": opening,
        "period": {
            f"{measure}_{word}": amount_text(period[kind][index])
            for kind, word in (("reserve", "reserved"), ("spend", "spent"), ("release", "released"))
            for index, measure in enumerate(("epsilon", "delta"))
        },
        "closing": balance.figures(),
        "entries": entries,
    }


def _releases(scope: ReportScope) -> list[dict[str, Any]]:
    """Releases live at any time in the period, with the downloads made in it."""
    rows = (
        Release.objects.filter(request__in=scope.requests(), created_at__lt=scope.end, expires_at__gte=scope.start)
        .exclude(revoked_at__lt=scope.start)
        .select_related("request__dataset", "request__requester", "version", "released_by", "revoked_by", "audit_run")
        .prefetch_related("downloads__user", "audit_run__risk_acceptances__approver", "audit_run__checks")
        .order_by("created_at", "id")
    )
    items = []
    for release in rows:
        downloads = [
            {"at": _at(d.created_at), "user": d.user.username, "kind": d.kind, "channel": d.channel}
            for d in release.downloads.all()
            if scope.start <= d.created_at < scope.end
        ]
        request = release.request
        items.append(
            {
                "id": release.pk,
                "request": request.pk,
                "dataset": request.dataset.name,
                "version": release.version.number,
                "version_hash": release.version.content_hash,
                "requester": request.requester.username,
                "recipient": request.recipient,
                "recipient_kind": request.recipient_kind,
                "released_by": release.released_by.username,
                "released_at": _at(release.created_at),
                "expires_at": _at(release.expires_at),
                "revoked_at": _at(release.revoked_at),
                "revoked_by": getattr(release.revoked_by, "username", None),
                "revoke_reason": release.revoke_reason,
                "stale_at": _at(release.stale_at),
                "despite_failed_checks": released_despite_failed_checks(release),
                "exceptions": _exceptions(release),
                "download_count": len(downloads),
                "downloads_by_person": dict(Counter(d["user"] for d in downloads)),
                "downloads": downloads,
            }
        )
    return items


def _audits(scope: ReportScope) -> list[dict[str, Any]]:
    condition = Q(request__in=scope.requests())
    if scope.purpose is None:
        external = Q(request__isnull=True)
        condition |= external & Q(version__dataset=scope.dataset) if scope.dataset is not None else external
    rows = (
        AuditRun.objects.filter(condition)
        .filter(scope.during("created_at"))
        .select_related("version__dataset")
        .order_by("created_at", "id")
    )
    failed = CheckResult.objects.filter(run__in=rows, passed=False, gating=True).order_by("run", "id")
    failed_by_run: dict[int, list[dict[str, Any]]] = {}
    for check in failed:
        failed_by_run.setdefault(check.run_id, []).append(
            {
                "name": check.name,
                "category": check.category,
                "value": _rounded(check.value),
                "threshold": check.threshold,
                "direction": check.direction,
                "blocking": check.blocking,
            }
        )
    return [
        {
            "id": run.pk,
            "request": run.request_id,
            "dataset": run.version.dataset.name,
            "version": run.version.number,
            "kind": run.kind,
            "status": run.status,
            "started_at": _at(run.created_at),
            "finished_at": _at(run.finished_at),
            "error": run.error,
            "failed_checks": failed_by_run.get(run.pk, []),
        }
        for run in rows
    ]


def _rounded(value: float | None) -> float | None:
    return None if value is None else round(value, 6)


def _drift_audits(scope: ReportScope) -> list[dict[str, Any]]:
    rows = (
        DriftRun.objects.filter(release__request__in=scope.requests())
        .filter(scope.during("created_at"))
        .select_related("release__request__dataset", "reference_version", "current_version")
        .order_by("created_at", "id")
    )
    return [
        {
            "id": run.pk,
            "release": run.release_id,
            "dataset": run.release.request.dataset.name,
            "reference_version": run.reference_version.number,
            "current_version": run.current_version.number if run.current_version is not None else None,
            "trigger": run.trigger,
            "stale": run.stale,
            "failed": run.failed,
            "reasons": list(run.reasons),
            "at": _at(run.created_at),
            # A referenced table re-read where it lives (docs/engines.md): what was read, and when.
            "snapshot_checksum": run.snapshot.get("checksum"),
            "snapshot_at": run.snapshot.get("taken_at"),
            "snapshot_sample_rows": run.snapshot.get("sample_rows"),
            # rows each comparison read; which tables were read as samples (docs/engines.md)
            "compared_rows": dict(run.compared_rows),
        }
        for run in rows
    ]
