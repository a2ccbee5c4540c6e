"""Gather the facts a datasheet states, from the records (request, approvals, ledger, job,
versions, audit run, release), as the typed ``audits.datasheets.facts.DatasheetFacts``.

One builder for both documents: ``datasheet_facts(run)`` is the internal audit report (exact
real-data diagnostics, for stewards, approvers and auditors); ``datasheet_facts(run, release=...)``
is the release datasheet a recipient reads, which keeps only recipient-safe figures
(``audits.recipient``).
"""

from __future__ import annotations

import math
from typing import Any

from django.conf import settings
from django.utils import timezone

from audits.datasheets.facts import (
    AcceptedCheckFacts,
    ApprovalFacts,
    AssuranceFacts,
    Audience,
    AuditFacts,
    BudgetFacts,
    CheckFacts,
    DatasheetFacts,
    DictionaryRowFacts,
    DistributionFacts,
    DpCeilingFacts,
    DpCeilingRowFacts,
    IntroducedValueFacts,
    LedgerEntryFacts,
    PositiveControlFacts,
    ReleaseFacts,
    RequestFacts,
    RiskAcceptanceFacts,
    UsesFacts,
    VersionFacts,
)
from audits.datasheets.records import (
    DIRECTIONS,
    DISTANCE_DIAGNOSTICS,
    THREAT_MODEL,
    generator_facts,
    maintenance_facts,
    platform_facts,
    positive_control_facts,
    privacy_facts,
    rebalancing_facts,
    seed_policy_facts,
    signature_facts,
    uses_facts,
)
from audits.models import AuditRun, CheckResult, Release
from audits.recipient import recipient_control, recipient_threshold, recipient_value
from core.schema import ColumnSpec, parse_schema
from governance.models import BudgetEntry, DataRequest, DatasetVersion, Purpose, VersionKind
from governance.output_formats import DESCRIPTIONS, key_format
from governance.permissions import FINGERPRINT_PREFIX, keyed_fingerprint
from governance.selectors import budget_balance
from governance.services.checkpoints import checkpoint_latest
from governance.storage import version_storage
from synth_engine.generators.domain import OTHER_VALUE
from synth_engine.selectors import assurance_latest


def datasheet_facts(run: AuditRun, *, release: Release | None = None) -> DatasheetFacts:
    """The internal audit report's facts, or, given ``release``, the recipient-safe release datasheet's."""
    version, request = run.version, run.request
    lineage = version.lineage or {}
    checks = list(run.checks.all())
    audience = Audience.RECIPIENT if release is not None else Audience.INTERNAL
    internal = audience == Audience.INTERNAL
    kind = "Release datasheet" if release is not None else "Audit report"
    return DatasheetFacts(
        title=f"{kind} — {version.dataset.name} {_label(version)}",
        audience=audience,
        generated_at=timezone.now(),
        platform=platform_facts(),
        request=_request(request),
        approvals=_approvals(request),
        budget=_budget(version, request),
        generator=generator_facts(lineage, requested_parameters=request.generator_params if request else {}),
        seed_policy=seed_policy_facts(lineage),
        library_versions=lineage.get("library_versions", {}),
        source=_version(_source_of(run), disclose_rows=internal),
        synthetic=_version(version, disclose_rows=True, format=DESCRIPTIONS[key_format(version.storage_key)]),
        preprocessing=_preprocessing(version, run, disclose_rows=internal),
        **_dictionary_facts(version),
        privacy=privacy_facts(lineage),
        assurance=_assurance(lineage),
        dp_ceiling=_dp_ceiling(checks, exact=internal),
        distance_diagnostics=DISTANCE_DIAGNOSTICS,
        threat_model=THREAT_MODEL,
        checks=[_check(check, exact=internal) for check in checks],
        positive_control=_control(run, exact=internal),
        rebalancing=rebalancing_facts(lineage.get("rebalance"), real_shown=internal),
        charts=_charts(checks) if internal else {},
        uses=_uses(request),
        distribution=_distribution(request, release),
        maintenance=maintenance_facts(settings.SYNTHGATE_ORGANISATION),
        audit_log_checkpoint=_audit_log_checkpoint(),
        signature=signature_facts(
            reason=f"release #{release.pk}" if release is not None else f"audit #{run.pk}",
            organisation=settings.SYNTHGATE_ORGANISATION,
        ),
        audit=AuditFacts(
            id=run.pk,
            status=run.status,
            seed=run.seed if internal else None,
            kind=run.kind,
            failed_checks=list(run.failed_checks),
            timings=run.timings if internal else {},
        ),
        release=_release(release, run) if release is not None else None,
        risk_acceptances=_risk_acceptances(run),
    )


def _source_of(run: AuditRun) -> DatasetVersion:
    version = run.version
    return run.train_version if version.kind == "external" else version.parent or run.train_version


def _audit_log_checkpoint() -> dict[str, Any] | None:
    """The latest signed checkpoint of the audit log's head (docs/tamper-evidence.md), carried in the PDF."""
    latest = checkpoint_latest()
    return latest.described() if latest else None


def _label(version: DatasetVersion) -> str:
    return f"v{version.number} ({version.kind})"


def _request(request: DataRequest | None) -> RequestFacts:
    if request is None:
        return RequestFacts(id="—", purpose="external audit (no request)")
    return RequestFacts(
        id=request.pk,
        purpose=_purpose_text(request.purpose),
        justification=request.justification,
        requester=request.requester.username,
        recipient=_recipient(request),
        submitted_at=request.submitted_at,
    )


def _purpose_text(purpose: Purpose) -> str:
    """The purpose's name, and its description when it has one (no dangling colon)."""
    return f"{purpose.name}: {purpose.description}" if purpose.description.strip() else purpose.name


def _recipient(request: DataRequest) -> str:
    return f"{request.recipient or '—'} ({request.recipient_kind})"


def _approvals(request: DataRequest | None) -> list[ApprovalFacts]:
    if request is None:
        return []
    return [
        ApprovalFacts(
            approver=a.approver.username,
            role="approver",
            decision=a.decision,
            decided_at=a.created_at,
            comment=a.reason,
        )
        for a in request.approvals.select_related("approver").order_by("created_at", "id")
    ]


def _risk_acceptances(run: AuditRun) -> list[RiskAcceptanceFacts]:
    return [
        RiskAcceptanceFacts(
            approver=acceptance.approver.username,
            decided_at=acceptance.created_at,
            checks=[
                AcceptedCheckFacts(name=name, reason=(acceptance.reasons or {}).get(name) or acceptance.reason)
                for name in acceptance.failed_checks
            ],
        )
        for acceptance in run.risk_acceptances.select_related("approver").order_by("created_at", "id")
    ]


def _release(release: Release, run: AuditRun) -> ReleaseFacts:
    request = release.request
    return ReleaseFacts(
        id=release.pk,
        released_by=release.released_by.username,
        released_at=release.created_at,
        recipient=_recipient(request),
        purpose=_purpose_text(request.purpose),
        terms=_terms(request),
        expires_at=release.expires_at,
        version_hash=release.version.content_hash,
        despite_failed_checks=run.status != "passed",
    )


def _terms(request: DataRequest) -> str:
    return (
        f"Use only for purpose {request.purpose.name}, by the named recipient; access for "
        f"{request.purpose.release_days} days; every download is logged per person."
    )


def _budget(version: DatasetVersion, request: DataRequest | None) -> BudgetFacts:
    balance = budget_balance(dataset=version.dataset)
    entries = BudgetEntry.objects.filter(dataset=version.dataset)
    if request is not None:
        entries = entries.filter(request=request)
    return BudgetFacts(
        total_epsilon=balance.epsilon_cap,
        total_delta=balance.delta_cap,
        remaining_epsilon=balance.epsilon_remaining,
        remaining_delta=balance.delta_remaining,
        entries=[
            LedgerEntryFacts(
                at=e.created_at,
                kind=e.kind,
                epsilon=e.epsilon,
                delta=e.delta,
                note=f"request #{e.request_id}: {e.note}" if e.request_id is not None else e.note,
            )
            for e in entries.order_by("id")
        ],
    )


def _version(version: DatasetVersion, *, disclose_rows: bool, format: str = "") -> VersionFacts:
    """A version's facts; for recipients (``disclose_rows`` false) a real version is named by its
    keyed fingerprint, not the sha256 of its rows (``governance.permissions.keyed_fingerprint``)."""
    keyed = not disclose_rows and version.kind != VersionKind.SYNTHETIC
    return VersionFacts(
        dataset=version.dataset.name,
        version=_label(version),
        hash=keyed_fingerprint(version.content_hash).removeprefix(FINGERPRINT_PREFIX)
        if keyed
        else version.content_hash,
        hash_kind=FINGERPRINT_PREFIX.rstrip(":") if keyed else "sha256",
        n_rows=version.n_rows if disclose_rows else None,
        n_columns=version.n_columns,
        format=format,
    )


def _dictionary_facts(version: DatasetVersion) -> dict[str, Any]:
    """The data dictionary and the values the DP domain may have introduced, read from the release
    itself (synthetic rows), never from the source: the schema says what is public."""
    if version.kind != "synthetic":
        return {"dictionary": [], "introduced_values": []}
    specs = parse_schema(version.schema)
    # Counted as the stored file streams by (a release may have millions of rows): missing cells are
    # empty in the stored form, and ``other`` is its own text.
    texts = {spec.name: ("", OTHER_VALUE) if _may_hold_other(spec) else ("",) for spec in specs}
    n_rows, counts = version_storage().cell_counts(version.storage_key, texts)
    return {
        "dictionary": [_dictionary_row(spec, counts[spec.name][""], n_rows) for spec in specs],
        "introduced_values": [row for spec in specs if (row := _introduced(spec, counts[spec.name]))],
    }


def _dictionary_row(spec: ColumnSpec, missing: int, n_rows: int) -> DictionaryRowFacts:
    return DictionaryRowFacts(
        column=spec.name,
        type=spec.type,
        role=spec.role,
        domain="private (estimated with DP)" if spec.needs_private_domain else "public (declared)",
        missing_share=f"{100 * missing / n_rows:.1f} %" if n_rows else "—",
    )


def _may_hold_other(spec: ColumnSpec) -> bool:
    return spec.type == "categorical" and spec.categories is None


def _introduced(spec: ColumnSpec, counts: dict[str, int]) -> IntroducedValueFacts | None:
    """``other`` stands for categories below the DP threshold; a missing value may come from the
    DP domain's missing code even where the source has none (unless declared never missing)."""
    other = counts.get(OTHER_VALUE, 0) if _may_hold_other(spec) else 0
    missing = counts[""] if spec.nullable is not False else 0
    if not other and not missing:
        return None
    return IntroducedValueFacts(column=spec.name, other_rows=other, missing_rows=missing)


def _preprocessing(version: DatasetVersion, run: AuditRun, *, disclose_rows: bool) -> list[str]:
    steps = _preprocessing_steps(version, run, disclose_rows=disclose_rows)
    audited = (run.audit_sample_rows or {}).get("synthetic")
    if audited and disclose_rows:  # internal report only, as the other samples' sizes
        steps.append(
            f"The {version.kind} table was audited on a uniform random sample of {audited:,} of its rows "
            "(SYNTHGATE_AUDIT_SYNTHETIC_ROWS), read from the stored file; the planted positive controls were "
            "planted in the same sample."
        )
    return steps


def _preprocessing_steps(version: DatasetVersion, run: AuditRun, *, disclose_rows: bool) -> list[str]:
    source = version.parent or run.train_version
    split = (
        f"Split into training rows ({run.train_version.n_rows:,}) and a stratified holdout "
        f"({run.holdout_version.n_rows:,}) kept for audits only; the generator never saw the holdout."
        if disclose_rows
        else "Split into training rows and a stratified holdout kept for audits only; the generator never saw "
        "the holdout."
    )
    counts = (version.lineage or {}).get("counts")
    if counts:
        return _preprocessing_in_engine(counts, disclose_rows=disclose_rows)
    sampled = run.audit_sample_rows or {}
    if sampled.get("fetched"):
        return _preprocessing_fetched(version, sampled, disclose_rows=disclose_rows)
    if "train" in sampled and disclose_rows:  # internal report only: that it sampled tells the row count's size
        split += (
            f" The audit ran on random samples of {sampled['train']:,} training rows and {sampled['holdout']:,} "
            "holdout rows (SYNTHGATE_REFERENCE_AUDIT_ROWS); its planted positive controls were run on the same "
            "samples."
        )
    steps = [
        f"Identifier columns dropped before storage: {', '.join(source.dropped_columns) or 'none'}.",
        "Stored as canonical CSV (UTF-8, schema column order); the version id is its SHA-256.",
        split,
    ]
    if version.kind == "synthetic":
        steps.append(
            "Category lists and numeric bounds not declared public in the schema were estimated with "
            "differential privacy, and their cost is part of the spent ε; rare categories became 'other'."
        )
    return steps


def _preprocessing_fetched(version: DatasetVersion, sampled: dict[str, Any], *, disclose_rows: bool) -> list[str]:
    """The steps of an audit whose training rows (or holdout) are registered by reference: what it
    read was a random sample drawn where the data lives (``AuditRun.audit_sample_rows["fetched"]``)."""
    fetched: dict[str, dict[str, str]] = sampled["fetched"]
    names = {"train": "training rows", "holdout": "holdout rows"}
    steps = [
        f"The {names[role]} were read where they live: {read['where']}; only the schema's columns were read, and "
        "the rows were not copied to the platform."
        for role, read in fetched.items()
    ]
    for role in ("train", "holdout"):
        size = f" ({sampled[role]:,} rows)" if disclose_rows else ""
        if role in fetched:
            steps.append(
                f"The audit ran on a uniform random sample of the {names[role]}{size}, drawn by the engine where "
                f"the data lives ({fetched[role]['engine']}; SYNTHGATE_REFERENCE_AUDIT_ROWS at most)."
            )
        else:
            steps.append(
                f"The {names[role]} were uploaded and stored as canonical CSV; the audit read them{size}, a random "
                "sample above SYNTHGATE_REFERENCE_AUDIT_ROWS rows."
            )
    steps.append("The audit's planted positive controls were run on the same samples.")
    if version.kind == "synthetic":
        steps.append(
            "Category lists and numeric bounds not declared public in the schema were estimated with "
            "differential privacy, and their cost is part of the spent ε; rare categories became 'other'."
        )
    return steps


def _preprocessing_in_engine(counts: dict[str, Any], *, disclose_rows: bool) -> list[str]:
    """The steps of a job on a table read where it lives (the lineage's ``counts``)."""
    samples = counts.get("audit_sample_rows") or {}
    sizes = (
        f" ({samples.get('train', 0):,} training rows and {samples.get('holdout', 0):,} holdout rows)"
        if disclose_rows
        else ""
    )
    engine = counts.get("engine")
    where = counts.get("where") or f"table {counts.get('table')!r} in source database {counts.get('connection')!r}"
    return [
        f"Read where it lives: {where}; only the schema's columns were read, and the rows were not copied to "
        "the platform.",
        f"Split where the data lives ({engine}) by a keyed hash of each row into training rows and a holdout "
        "kept for audits only (not stratified); the generator never saw the holdout.",
        f"Every count the generator used was computed by the engine where the data lives ({engine}) over all "
        "training rows; the noise was added by the worker.",
        f"The audit ran on random samples of the training rows and of the holdout{sizes}, fetched from where the "
        "data lives; its planted positive controls were run on the same samples.",
        "Category lists and numeric bounds not declared public in the schema were estimated with differential "
        f"privacy from counts computed by {engine}, and their cost is part of the spent ε.",
    ]


def _assurance(lineage: dict[str, Any]) -> AssuranceFacts | None:
    """The latest ``synthgate assure`` result for the generator version that made this release."""
    name = lineage.get("generator")
    if not name or lineage.get("non_private") or name == "external":
        return None
    version = lineage.get("generator_version")
    run = assurance_latest(generator=name, generator_version=version) if version else None
    if run is None:
        return AssuranceFacts(
            run_id=None,
            generator=name,
            generator_version=version or "not recorded",
            statement="No privacy-assurance run exists for this generator version: its ε is accounted, "
            "not empirically tested.",
        )
    return AssuranceFacts(
        run_id=run.pk,
        generator=name,
        generator_version=run.generator_version,
        status=run.status,
        epsilon=run.epsilon,
        delta=run.delta,
        epsilon_lower_bound=run.epsilon_lower_bound,
        mu_ratio=run.mu_ratio,
        runs=run.runs,
        n_rows=run.n_rows,
        run_at=run.created_at,
        statement=(
            f"Assurance run #{run.pk} ({run.created_at:%Y-%m-%d}): a distinguishing game with {run.runs} fits per "
            f"world on {run.n_rows} public rows and three worst-case canaries found ε ≥ "
            f"{run.epsilon_lower_bound:.3f} against a claimed ε = {run.epsilon:g}: "
            + ("the claim was not refuted." if run.passed else "THE CLAIM WAS CONTRADICTED.")
            + " The game can refute a claim, never certify one."
        ),
    )


def _dp_ceiling(checks: list[CheckResult], *, exact: bool) -> DpCeilingFacts | None:
    """Each membership attack's TPR at 1 % and 0.1 % FPR beside the ceiling e^ε·FPR + δ; for recipients
    the verdict beside the ceiling at the nominal FPR only. The TPRs score the real members and
    non-members; the judged ceiling is taken at the Clopper–Pearson upper limit of the FPR the
    threshold reached, a function of the number of real non-members scored (one holdout row more moves
    it), so it stays in the internal report too."""
    check = next((c for c in checks if c.name == "membership_dp_ceiling"), None)
    if check is None or not check.details.get("attacks"):
        return None

    def shown(value: float) -> float | None:
        return value if exact else None

    rows = [
        DpCeilingRowFacts(
            attack=attack,
            fpr_level=row["fpr_level"],
            fpr_display=f"{row['fpr_level'] * 100:g} %",
            tpr=shown(row["tpr"]),
            tpr_low=shown(row["tpr_low"]),
            ceiling=row["ceiling"] if exact else _nominal_ceiling(check.details, row["fpr_level"]),
            contradicted=row["margin"] > 0,
        )
        for attack, levels in check.details["attacks"].items()
        for row in levels.values()
    ]
    return DpCeilingFacts(
        verdict=check.details.get("verdict", ""), passed=check.passed, rows=rows, judged_ceiling=exact
    )


def _nominal_ceiling(details: dict[str, Any], level: float) -> float:
    """e^ε·FPR + δ at the nominal FPR ``level``: a function of the claimed (ε, δ) alone."""
    return min(1.0, math.exp(float(details["epsilon"])) * level + float(details["delta"]))


def _check(check: CheckResult, *, exact: bool) -> CheckFacts:
    verdict = "n/a" if check.passed is None else "pass" if check.passed else "fail" if check.gating else "warn"
    note = check.skipped_reason or ("blocking" if check.blocking else "")
    return CheckFacts(
        name=check.name,
        category=check.category,
        value=check.value if exact else recipient_value(check, check.value),
        threshold=check.threshold if exact else recipient_threshold(check),
        direction=DIRECTIONS.get(check.direction, check.direction),
        baseline=check.baseline if exact else recipient_value(check, check.baseline),
        verdict=verdict,
        note=note if exact or not check.skipped_reason else "skipped",
    )


def _control(run: AuditRun, *, exact: bool) -> PositiveControlFacts:
    controls = run.controls or []
    return positive_control_facts(controls if exact else [recipient_control(control) for control in controls])


def _charts(checks: list[CheckResult]) -> dict[str, str]:
    """The audit report's four charts, drawn from the checks' stored chart data."""
    from audits.datasheets import check_chart_svg

    by_name = {check.name: check.chart for check in checks if check.chart}
    sources = {
        "marginals": ("tvd_1way",),
        "associations": ("association_difference",),
        "roc": ("membership_domias_auc", "membership_distance_auc"),
        "distances": ("distance_to_closest_record",),
    }
    charts: dict[str, str] = {}
    for key, names in sources.items():
        svg = next((svg for name in names if (svg := check_chart_svg(name, by_name.get(name) or {}))), None)
        if svg:
            charts[key] = svg
    return charts


def _uses(request: DataRequest | None) -> UsesFacts:
    intended = [request.purpose.description] if request else ["Evaluation of externally produced synthetic data."]
    return uses_facts(intended)


def _distribution(request: DataRequest | None, release: Release | None) -> DistributionFacts:
    if request is None:
        return DistributionFacts()
    if release is None:
        return DistributionFacts(
            recipient=_recipient(request),
            channel="not released: this internal audit report is not distributed",
            terms=_terms(request),
        )
    return DistributionFacts(
        recipient=_recipient(request),
        channel="Synthgate release download (every download is logged per person)",
        terms=_terms(request),
        expires_at=release.expires_at,
    )
