"""Reads only the dashboard needs. Permissions come from the app selectors these build on;
``select_related``/``prefetch_related`` are decided here so every page runs a bounded
number of queries however many rows it lists."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any, TypeVar

from django.contrib.auth.models import User
from django.db.models import Count, Q, QuerySet
from django.utils import timezone

from audits.models import AuditRun, AuditStatus, Datasheet, Download, Release, RiskAcceptance
from audits.recipient import reads_real_diagnostics
from audits.selectors import audit_run_list, release_exceptions, release_list
from governance.cli_format import public_domain
from governance.ledger import BudgetBalance
from governance.models import (
    Approval,
    AuditEvent,
    BudgetEntry,
    DataRequest,
    Dataset,
    DatasetVersion,
    RequestState,
    Role,
    VersionKind,
)
from governance.permissions import (
    SEE_ALL_REQUESTS,
    real_row_counts_visible,
    run_measurements_visible,
    user_has_role,
    version_rows_contradiction_visible,
    version_schema_visible,
)
from governance.selectors import budget_balances, dataset_list, request_list
from synth_engine.models import GenerationJob, JobStatus
from synth_engine.selectors import job_list

_Row = TypeVar("_Row")

ZERO = Decimal(0)
NEAR_CAP_SHARE = Decimal("0.2")
EXPIRY_WINDOW = timedelta(days=14)
ACTIVE_JOB_STATUSES = (JobStatus.QUEUED, JobStatus.RUNNING)
# Request states in which a job or its audit is still working.
IN_FLIGHT_STATES = (RequestState.GENERATING, RequestState.AUDITING)


# --------------------------------------------------------------------------------- budget


@dataclass
class DatasetRow:
    dataset: Dataset
    balance: BudgetBalance
    n_versions: int
    latest_source: DatasetVersion | None

    @property
    def near_cap(self) -> bool:
        return self.balance.epsilon_remaining < self.balance.epsilon_cap * NEAR_CAP_SHARE


def dataset_rows(*, user: User) -> list[DatasetRow]:
    """Every dataset the user may see, with its budget balance and newest source version."""
    datasets = list(dataset_list(user=user).annotate(n_versions=Count("versions")))
    balances = budget_balances(datasets=datasets)
    latest: dict[int, DatasetVersion] = {}
    sources = DatasetVersion.objects.filter(dataset__in=datasets, kind=VersionKind.SOURCE).order_by("number")
    for version in sources:
        latest[version.dataset_id] = version  # ordered by number: the last one wins
    return [DatasetRow(d, balances[d.pk], d.n_versions, latest.get(d.pk)) for d in datasets]


# ------------------------------------------------------------------------------- lineage


@dataclass
class LineageBranch:
    """One generation from a source version: train/holdout → synthetic → release."""

    synthetic: DatasetVersion
    train: DatasetVersion | None
    holdout: DatasetVersion | None
    request_id: int | None
    releases: list[Release] = field(default_factory=list)


@dataclass
class LineageRoot:
    source: DatasetVersion
    branches: list[LineageBranch] = field(default_factory=list)


def _by_pk(rows: dict[int, _Row], pk: object) -> _Row | None:
    """The row with primary key ``pk`` (a foreign key or a lineage JSON value: an int, or None)."""
    return rows.get(pk) if isinstance(pk, int) else None


def dataset_lineage(*, user: User, dataset: Dataset) -> list[LineageRoot]:
    """Source versions and what was made from each, limited to the requests the user may see."""
    versions = list(dataset.versions.select_related("created_by").order_by("number"))
    by_pk = {v.pk: v for v in versions}
    visible = set(request_list(user=user).filter(dataset=dataset).values_list("pk", flat=True))
    releases: dict[int, list[Release]] = defaultdict(list)
    for release in Release.objects.filter(version__dataset=dataset, request__in=visible).select_related("request"):
        releases[release.version_id].append(release)
    roots = {v.pk: LineageRoot(v) for v in versions if v.kind == VersionKind.SOURCE}
    for version in versions:
        if version.kind not in (VersionKind.SYNTHETIC, VersionKind.EXTERNAL):
            continue
        request_id = (version.lineage or {}).get("request")
        if request_id is not None and request_id not in visible:
            continue
        if request_id is None and not user_has_role(user, *SEE_ALL_REQUESTS):
            continue
        lineage = version.lineage or {}
        root = _by_pk(roots, version.parent_id) or _by_pk(roots, lineage.get("source_version"))
        if root is None:
            continue
        root.branches.append(
            LineageBranch(
                synthetic=version,
                train=_by_pk(by_pk, lineage.get("train_version")),
                holdout=_by_pk(by_pk, lineage.get("holdout_version")),
                request_id=request_id,
                releases=releases.get(version.pk, []),
            )
        )
    return list(roots.values())


def dataset_columns(*, user: User, version: DatasetVersion | None) -> list[dict[str, Any]]:
    """The newest source's columns as ``user`` may read them: a type proposed from the rows is shown
    to stewards only, marked ``proposed`` (``governance.permissions.version_schema_visible``)."""
    if version is None:
        return []
    return [
        {
            "name": c["name"],
            "type": c.get("type") or "undeclared",
            "proposed": bool(c.get("type_proposed")) and c.get("type") is not None,
            "role": c.get("role", "other"),
            "domain": public_domain(c),
            "declared": _declared_text(c),
        }
        for c in version_schema_visible(user, version).get("columns", [])
    ]


def dataset_rows_unchecked(*, user: User, versions: list[DatasetVersion]) -> list[tuple[DatasetVersion, str]]:
    """For a steward, each uploaded source version whose stored rows were not yet checked against its
    declarations (stored before registration checked them: docs/datasets.md, "Versions stored before
    the rows were checked"), with the reason they contradict them ("" when not yet checked, through
    ``governance.permissions.version_rows_contradiction_visible``). Anyone else: nothing."""
    if not user_has_role(user, Role.STEWARD):
        return []
    return [(v, version_rows_contradiction_visible(user, v)) for v in versions if v.rows_check_due]


def _declared_text(column: dict[str, Any]) -> str:
    parts = []
    if "min" in column or "max" in column:
        parts.append(f"{column.get('min', '…')} – {column.get('max', '…')}")
    if column.get("categories"):
        parts.append(", ".join(str(category) for category in column["categories"]))
    if "nullable" in column:
        parts.append("nullable" if column["nullable"] else "never missing")
    if column.get("resolution"):
        parts.append(f"whole {column['resolution']}s")
    if column.get("calendar"):
        parts.append(f"{column['calendar']} only")
    if column.get("step") is not None:
        parts.append(f"step {column['step']}")
    if column.get("domain_source"):
        parts.append(f"source: {column['domain_source']}")
    return "; ".join(parts)


# ------------------------------------------------------------------------------ requests


def request_page_list(
    *,
    user: User,
    state: str = "",
    dataset: str = "",
    mine: bool = False,
) -> QuerySet[DataRequest]:
    """The requests list: the user's visible requests, filtered, newest first."""
    queryset = request_list(user=user)
    if state:
        queryset = queryset.filter(state=state)
    if dataset:
        queryset = queryset.filter(dataset__name=dataset)
    if mine:
        queryset = queryset.filter(requester=user)
    return queryset.order_by("-created_at", "-id")


@dataclass
class RequestRelated:
    approvals: list[Approval]
    budget_entries: list[BudgetEntry]
    jobs: list[GenerationJob]
    audit_runs: list[AuditRun]
    risk_acceptances: list[RiskAcceptance]
    release: Release | None
    downloads: list[Download]

    @property
    def latest_job(self) -> GenerationJob | None:
        return self.jobs[0] if self.jobs else None

    @property
    def latest_audit(self) -> AuditRun | None:
        return self.audit_runs[0] if self.audit_runs else None


def request_related(*, request: DataRequest) -> RequestRelated:
    """Everything hanging off one request, each kind in one query."""
    release = (
        Release.objects.filter(request=request)
        .select_related("datasheet", "version", "released_by", "revoked_by")
        .first()
    )
    return RequestRelated(
        approvals=list(request.approvals.select_related("approver").order_by("created_at", "id")),
        budget_entries=list(request.budget_entries.select_related("actor", "job").order_by("created_at", "id")),
        jobs=list(
            GenerationJob.objects.filter(request=request)
            .select_related("output_version")
            .order_by("-created_at", "-id")
        ),
        audit_runs=list(
            AuditRun.objects.filter(request=request)
            .select_related("version", "datasheet")
            .order_by("-created_at", "-id")
        ),
        risk_acceptances=list(RiskAcceptance.objects.filter(request=request).select_related("approver")),
        release=release,
        downloads=list(release.downloads.select_related("user").order_by("-created_at", "-id")) if release else [],
    )


def request_timeline(*, request: DataRequest, related: RequestRelated, viewer: User) -> list[AuditEvent]:
    """Every audit-log event of the request and of its approvals, ledger rows, jobs, audits,
    datasheets, risk acceptances, release and downloads, in log order.

    Some events' details are statistics of the real rows: those about the real training and holdout
    versions carry their row counts, and a release's ``release.stale`` carries the drift re-audit's
    reasons, whose figures compare real rows (a PSI to four decimals, the worst column). Unless
    ``viewer`` reads real diagnostics (stewards, approvers, auditors), those events come with
    ``details_private`` set to why, and the page shows their action only."""
    objects: dict[str, list[Any]] = {
        "datarequest": [request.pk],
        "approval": [a.pk for a in related.approvals],
        "budgetentry": [e.pk for e in related.budget_entries],
        "generationjob": [j.pk for j in related.jobs],
        "datasetversion": _job_versions(related.jobs),
        "auditrun": [r.pk for r in related.audit_runs],
        "datasheet": [sheet.pk for sheet in map(audit_run_datasheet, related.audit_runs) if sheet],
        "riskacceptance": [a.pk for a in related.risk_acceptances],
        "release": [related.release.pk] if related.release else [],
        "download": [d.pk for d in related.downloads],
    }
    condition = Q()
    for object_type, ids in objects.items():
        if ids:
            condition |= Q(object_type=object_type, object_id__in=[str(i) for i in ids])
    events = list(AuditEvent.objects.filter(condition).select_related("actor").order_by("id"))
    real = {str(pk) for pk in _job_versions(related.jobs, real_only=True)}
    hide_counts, hide_figures = not real_row_counts_visible(viewer), not reads_real_diagnostics(viewer)
    for event in events:
        private = ""
        if hide_counts and event.object_type == "datasetversion" and event.object_id in real:
            private = "they state the number of real rows"
        elif hide_figures and event.action in REAL_FIGURE_ACTIONS:
            private = REAL_FIGURE_ACTIONS[event.action]
        event.details_private = private  # type: ignore[attr-defined]  # a display note the template reads; AuditEvent does not declare it
    return events


# Events of a request's objects whose details are figures computed from the real rows, and why.
REAL_FIGURE_ACTIONS = {"release.stale": "the drift figures compare real rows"}


def _job_versions(jobs: list[GenerationJob], *, real_only: bool = False) -> list[int]:
    """The train, holdout and synthetic versions the request's jobs wrote (``real_only``: not the
    synthetic ones)."""
    ids: list[int | None] = []
    for job in jobs:
        if job.output_version is not None:
            ids += [] if real_only else [job.output_version.pk]
            ids.append((job.output_version.lineage or {}).get("train_version"))
        ids.append(job.holdout_version_id)
    return [pk for pk in ids if pk]


def audit_run_datasheet(run: AuditRun) -> Datasheet | None:
    """The run's signed datasheet, or None while it is running or when it could not be signed."""
    try:
        return run.datasheet
    except Datasheet.DoesNotExist:
        return None


# ---------------------------------------------------------------------------------- home


@dataclass
class ReleaseWithExceptions:
    """A release that went out despite failed checks, with each accepted check and its reason."""

    release: Release
    exceptions: list[dict[str, Any]]


@dataclass
class HomeSummary:
    awaiting_approval: list[DataRequest]
    awaiting_risk_decision: list[DataRequest]
    awaiting_release: list[DataRequest]
    awaiting_generation: list[DataRequest]
    drafts: list[DataRequest]
    expiring_releases: list[Release]
    running_jobs: list[GenerationJob]
    problem_audits: list[AuditRun]
    stale_releases: list[Release]
    near_cap: list[DatasetRow]
    exception_releases: list[ReleaseWithExceptions] = field(default_factory=list)

    @property
    def has_actions(self) -> bool:
        return any(
            (
                self.awaiting_approval,
                self.awaiting_risk_decision,
                self.awaiting_release,
                self.awaiting_generation,
                self.drafts,
                self.expiring_releases,
            )
        )

    @property
    def has_alerts(self) -> bool:
        return any((self.problem_audits, self.stale_releases, self.near_cap, self.exception_releases))


def home_summary(*, user: User, limit: int = 10, now: datetime | None = None) -> HomeSummary:
    """What this person should act on or know about now."""
    now = now or timezone.now()
    requests = request_list(user=user)
    approver = user_has_role(user, Role.APPROVER)
    releaser = user_has_role(user, Role.STEWARD, Role.APPROVER)
    awaiting = (
        (
            requests.filter(state=RequestState.SUBMITTED)
            .exclude(requester=user)
            .exclude(approvals__approver=user)
            .order_by("submitted_at", "id")
        )
        if approver
        else requests.none()
    )
    live_releases = release_list(user=user).filter(revoked_at__isnull=True, request__state=RequestState.RELEASED)
    return HomeSummary(
        awaiting_approval=list(awaiting[:limit]),
        awaiting_risk_decision=list(requests.filter(state=RequestState.BLOCKED).exclude(requester=user)[:limit])
        if approver
        else [],
        awaiting_release=list(requests.filter(state=RequestState.READY)[:limit]) if releaser else [],
        awaiting_generation=list(requests.filter(state=RequestState.APPROVED, requester=user)[:limit]),
        drafts=list(requests.filter(state=RequestState.DRAFT, requester=user)[:limit]),
        expiring_releases=list(
            live_releases.filter(expires_at__gt=now, expires_at__lte=now + EXPIRY_WINDOW)
            .select_related("request__dataset")
            .order_by("expires_at")[:limit]
        ),
        running_jobs=list(job_list(user=user).filter(status__in=ACTIVE_JOB_STATUSES).order_by("created_at")[:limit]),
        problem_audits=list(
            audit_run_list(user=user)
            .filter(
                status__in=[AuditStatus.FAILED, AuditStatus.INCONCLUSIVE, AuditStatus.ERROR],
                request__state__in=[RequestState.BLOCKED, RequestState.FAILED, RequestState.AUDITING],
            )
            .order_by("-created_at")[:limit]
        ),
        stale_releases=list(
            live_releases.filter(stale_at__isnull=False)
            .select_related("request__dataset")
            .order_by("-stale_at")[:limit]
        ),
        near_cap=[row for row in dataset_rows(user=user) if row.near_cap],
        exception_releases=_exception_releases(user=user, releases=live_releases, limit=limit),
    )


def _exception_releases(*, user: User, releases: QuerySet[Release], limit: int) -> list[ReleaseWithExceptions]:
    """Live releases that went out despite failed checks, newest first, each with its exceptions."""
    rows = (
        releases.exclude(audit_run__status=AuditStatus.PASSED)
        .select_related("request__dataset", "audit_run")
        .prefetch_related("audit_run__checks", "audit_run__risk_acceptances__approver")
        .order_by("-created_at", "-id")[:limit]
    )
    return [ReleaseWithExceptions(release, release_exceptions(release=release, user=user)) for release in rows]


# ----------------------------------------------------------------------------- job state


def job_live_state(*, job: GenerationJob, viewer: User) -> dict[str, Any]:
    """A job's progress plus where its request and audit stand: what the progress poll returns (the
    phases' timings only for a ``viewer`` who may read them: ``run_measurements_visible``)."""
    state = DataRequest.objects.filter(pk=job.request_id).values_list("state", flat=True).first() or ""
    run = (
        AuditRun.objects.filter(version_id=job.output_version_id).order_by("-id").values("id", "status").first()
        if job.output_version_id
        else None
    )
    finished = job.is_terminal and state not in IN_FLIGHT_STATES
    return {
        "id": job.pk,
        "status": job.status,
        "phase": job.phase,
        "progress": job.progress,
        "error": job.error,
        "timings": job.timings if run_measurements_visible(viewer) else {},
        "request_state": state,
        "audit": run,
        "finished": finished,
    }
