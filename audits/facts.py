"""Gather the facts a datasheet states, from the records (request, approvals, ledger, job,
versions, audit run), in the shape ``audits.datasheets.render`` documents."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from django.conf import settings
from django.utils import timezone

from audits.models import AuditRun, CheckResult
from core.schema import ColumnSpec, parse_schema
from governance.ingest import load_canonical
from governance.models import BudgetEntry, DatasetVersion
from governance.selectors import budget_balance
from governance.services.checkpoints import checkpoints_read
from synth_engine.generators.domain import OTHER_VALUE
from synth_engine.selectors import assurance_latest

DIRECTIONS = {"higher_is_better": "higher is better", "lower_is_better": "lower is better"}
THREAT_MODEL = (
    "The adversary holds the released synthetic table and arbitrary auxiliary knowledge, including full "
    "records of some people in the source, and tries to single out, link or infer attributes of people in "
    "the source, or to tell whether a given person's record was used in training. The (ε, δ) guarantee is "
    "for neighbouring tables that differ by adding or removing one person's row, so the number of rows is "
    "not public either: the generators never use the exact count, only a differentially private estimate "
    "charged to the ledger (its 'rows' stage)."
)


def datasheet_facts(run: AuditRun) -> dict[str, Any]:
    version, request = run.version, run.request
    lineage = version.lineage or {}
    checks = list(run.checks.all())
    facts: dict[str, Any] = {
        "title": f"Datasheet — {version.dataset.name} {_label(version)}",
        "generated_at": timezone.now(),
        "platform": {"name": "Synthgate", "version": "0.1.0"},
        "request": _request(request),
        "approvals": _approvals(request),
        "budget": _budget(version, request),
        "generator": _generator(lineage, request),
        "seed_policy": _seed_policy(lineage, run),
        "library_versions": lineage.get("library_versions", {}),
        "source": _version(run.train_version if version.kind == "external" else version.parent or run.train_version),
        "synthetic": {**_version(version), "format": "CSV (UTF-8)"},
        "preprocessing": _preprocessing(version, run),
        **_dictionary_facts(version),
        "privacy": _privacy(lineage),
        "assurance": _assurance(lineage),
        "dp_ceiling": _dp_ceiling(checks),
        "distance_diagnostics": DISTANCE_DIAGNOSTICS,
        "threat_model": THREAT_MODEL,
        "checks": [_check(check) for check in checks],
        "positive_control": _control(run),
        "rebalancing": _rebalancing(lineage.get("rebalance")),
        "charts": _charts(checks),
        "uses": _uses(request),
        "distribution": _distribution(request),
        "maintenance": {
            "contact": settings.SYNTHGATE_ORGANISATION + " data stewards",
            "retention": "Kept while any release of it is active; the audit log is permanent.",
            "errata": "Scheduled drift audits re-check active releases against new source versions.",
        },
        "audit_log_checkpoint": _audit_log_checkpoint(),
        "signature": {
            "signer": "platform signing key",
            "reason": f"audit #{run.pk}",
            "location": settings.SYNTHGATE_ORGANISATION,
        },
        "audit": {
            "id": run.pk,
            "status": run.status,
            "seed": run.seed,
            "kind": run.kind,
            "failed_checks": run.failed_checks,
            "timings": run.timings,
        },
    }
    return facts


def _audit_log_checkpoint() -> dict[str, Any] | None:
    """The latest signed checkpoint of the audit log's head (docs/tamper-evidence.md), carried in the PDF."""
    latest = max(checkpoints_read().checkpoints, key=lambda checkpoint: checkpoint.length, default=None)
    return latest.to_dict() if latest else None


def _label(version: DatasetVersion) -> str:
    return f"v{version.number} ({version.kind})"


def _request(request: Any) -> dict[str, Any]:
    if request is None:
        return {
            "id": "—",
            "purpose": "external audit (no request)",
            "justification": "",
            "requester": "—",
            "recipient": "—",
            "submitted_at": None,
        }
    return {
        "id": request.pk,
        "purpose": f"{request.purpose.name}: {request.purpose.description}",
        "justification": request.justification,
        "requester": request.requester.username,
        "recipient": f"{request.recipient or '—'} ({request.recipient_kind})",
        "submitted_at": request.submitted_at,
    }


def _approvals(request: Any) -> list[dict[str, Any]]:
    if request is None:
        return []
    rows = [
        {
            "approver": a.approver.username,
            "role": "approver",
            "decision": a.decision,
            "decided_at": a.created_at,
            "comment": a.reason,
        }
        for a in request.approvals.select_related("approver")
    ]
    rows += [
        {
            "approver": r.approver.username,
            "role": "approver (risk acceptance)",
            "decision": "accept risk",
            "decided_at": r.created_at,
            "comment": r.reason,
        }
        for r in request.risk_acceptances.all()
    ]
    return rows


def _budget(version: DatasetVersion, request: Any) -> dict[str, Any]:
    balance = budget_balance(dataset=version.dataset)
    entries = BudgetEntry.objects.filter(dataset=version.dataset)
    if request is not None:
        entries = entries.filter(request=request)
    return {
        "total_epsilon": balance.epsilon_cap,
        "total_delta": balance.delta_cap,
        "remaining_epsilon": balance.epsilon_remaining,
        "remaining_delta": balance.delta_remaining,
        "entries": [
            {
                "at": e.created_at,
                "kind": e.kind,
                "epsilon": e.epsilon,
                "delta": e.delta,
                "note": f"request #{e.request_id}: {e.note}",
            }
            for e in entries.order_by("id")
        ],
    }


def _generator(lineage: dict[str, Any], request: Any) -> dict[str, Any]:
    job = lineage.get("job")
    return {
        "name": lineage.get("generator", "external"),
        "version": lineage.get("library_versions", {}).get("numpy", "—") and "synthgate 0.1.0",
        "job_id": job,
        "started_at": None,
        "finished_at": None,
        "parameters": lineage.get("parameters") or (request.generator_params if request else {}),
    }


def _seed_policy(lineage: dict[str, Any], run: AuditRun) -> dict[str, Any]:
    mode = lineage.get("seed_policy", "cryptographic")
    if mode == "reproducible":
        note = "A fixed seed was requested for reproducibility: the same inputs give the same output."
    else:
        note = (
            "Noise came from pseudo-random generators seeded from the operating system's secure random "
            "source; the seed was not recorded."
        )
    return {"mode": mode, "seed": lineage.get("seed"), "note": f"{note} Audit seed: {run.seed}."}


def _version(version: DatasetVersion) -> dict[str, Any]:
    return {
        "dataset": version.dataset.name,
        "version": _label(version),
        "hash": version.content_hash,
        "n_rows": version.n_rows,
        "n_columns": version.n_columns,
    }


def _dictionary_facts(version: DatasetVersion) -> dict[str, Any]:
    """The data dictionary and the values the DP domain may have introduced, read from the release
    itself (synthetic rows), never from the source: the schema says what is public."""
    if version.kind != "synthetic":
        return {"dictionary": [], "introduced_values": []}
    frame = load_canonical(Path(settings.DATA_DIR) / version.storage_key, version.schema)
    specs = parse_schema(version.schema)
    return {
        "dictionary": [_dictionary_row(spec, frame[spec.name]) for spec in specs],
        "introduced_values": [row for spec in specs if (row := _introduced(spec, frame[spec.name]))],
    }


def _dictionary_row(spec: ColumnSpec, series: Any) -> dict[str, Any]:
    missing = int(series.isna().sum())
    return {
        "column": spec.name,
        "type": spec.type,
        "role": spec.role,
        "domain": "private (estimated with DP)" if spec.needs_private_domain else "public (declared)",
        "missing_share": f"{100 * missing / len(series):.1f} %" if len(series) else "—",
    }


def _introduced(spec: ColumnSpec, series: Any) -> dict[str, Any] | None:
    """``other`` stands for categories below the DP threshold; a missing value may come from the
    DP domain's missing code even where the source has none (unless declared never missing)."""
    other = int((series == OTHER_VALUE).sum()) if spec.type == "categorical" and spec.categories is None else 0
    missing = int(series.isna().sum()) if spec.nullable is not False else 0
    if not other and not missing:
        return None
    return {"column": spec.name, "other_rows": other, "missing_rows": missing}


def _preprocessing(version: DatasetVersion, run: AuditRun) -> list[str]:
    source = version.parent or run.train_version
    steps = [
        f"Identifier columns dropped before storage: {', '.join(source.dropped_columns) or 'none'}.",
        "Stored as canonical CSV (UTF-8, schema column order); the version id is its SHA-256.",
        f"Split into training rows ({run.train_version.n_rows:,}) and a stratified holdout "
        f"({run.holdout_version.n_rows:,}) kept for audits only; the generator never saw the holdout.",
    ]
    if version.kind == "synthetic":
        steps.append(
            "Category lists and numeric bounds not declared public in the schema were estimated with "
            "differential privacy, and their cost is part of the spent ε; rare categories became 'other'."
        )
    return steps


def _privacy(lineage: dict[str, Any]) -> dict[str, Any]:
    accountant = lineage.get("accountant") or {}
    epsilon = lineage.get("epsilon_spent")
    if lineage.get("generator") == "external":
        return {
            "epsilon": math.inf,
            "delta": None,
            "mechanism": "unknown (made outside Synthgate)",
            "accountant": "none: no privacy guarantee is known",
        }
    return {
        "epsilon": math.inf if epsilon is None else epsilon,
        "delta": lineage.get("delta_spent"),
        "mechanism": lineage.get("generator", "—"),
        "accountant": accountant.get("accountant", "—"),
    }


DISTANCE_DIAGNOSTICS = (
    "Distance to closest record (DCR) and the nearest-neighbour distance ratio (NNDR) are reported as "
    "diagnostics, never as a privacy verdict: a large distance does not show that a record is protected "
    "(a model can leak a rare person's attributes without reproducing their row, and distances shrink "
    "for everyone in dense regions), and a small one does not show a leak (common rows recur by chance). "
    "They bound no adversary. The privacy verdict rests on the differential-privacy guarantee, on "
    "membership and re-identification attacks measured against a held-out control, and on the ceiling "
    "that guarantee puts on every membership attack."
)


def _assurance(lineage: dict[str, Any]) -> dict[str, Any] | None:
    """The latest ``synthgate assure`` result for the generator version that made this release."""
    name = lineage.get("generator")
    if not name or lineage.get("non_private") or name == "external":
        return None
    version = lineage.get("generator_version")
    run = assurance_latest(generator=name, generator_version=version) if version else None
    if run is None:
        return {
            "run_id": None,
            "generator": name,
            "generator_version": version or "not recorded",
            "statement": "No privacy-assurance run exists for this generator version: its ε is accounted, "
            "not empirically tested.",
        }
    return {
        "run_id": run.pk,
        "generator": name,
        "generator_version": run.generator_version,
        "status": run.status,
        "epsilon": run.epsilon,
        "delta": run.delta,
        "epsilon_lower_bound": run.epsilon_lower_bound,
        "mu_ratio": run.mu_ratio,
        "runs": run.runs,
        "n_rows": run.n_rows,
        "run_at": run.created_at,
        "statement": (
            f"Assurance run #{run.pk} ({run.created_at:%Y-%m-%d}): a distinguishing game with {run.runs} fits per "
            f"world on {run.n_rows} public rows and three worst-case canaries found ε ≥ "
            f"{run.epsilon_lower_bound:.3f} against a claimed ε = {run.epsilon:g}: "
            + ("the claim was not refuted." if run.passed else "THE CLAIM WAS CONTRADICTED.")
            + " The game can refute a claim, never certify one."
        ),
    }


def _dp_ceiling(checks: list[CheckResult]) -> dict[str, Any] | None:
    """Each membership attack's TPR at 1 % and 0.1 % FPR beside the ceiling e^ε·FPR + δ."""
    check = next((c for c in checks if c.name == "membership_dp_ceiling"), None)
    if check is None or not check.details.get("attacks"):
        return None
    rows = [
        {
            "attack": attack,
            "fpr_level": row["fpr_level"],
            "fpr_display": f"{row['fpr_level'] * 100:g} %",
            "tpr": row["tpr"],
            "tpr_low": row["tpr_low"],
            "ceiling": row["ceiling"],
            "contradicted": row["margin"] > 0,
        }
        for attack, levels in check.details["attacks"].items()
        for row in levels.values()
    ]
    return {"verdict": check.details.get("verdict", ""), "passed": check.passed, "rows": rows}


def _check(check: CheckResult) -> dict[str, Any]:
    verdict = "n/a" if check.passed is None else "pass" if check.passed else "fail" if check.gating else "warn"
    note = check.skipped_reason or ("blocking" if check.blocking else "")
    return {
        "name": check.name,
        "category": check.category,
        "value": check.value,
        "threshold": check.threshold,
        "direction": DIRECTIONS.get(check.direction, check.direction),
        "baseline": check.baseline,
        "verdict": verdict,
        "note": note,
    }


def _control(run: AuditRun) -> dict[str, Any]:
    controls = run.controls or []
    caught = bool(controls) and all(control["caught"] for control in controls)
    outcome = (
        "; ".join(
            f"{c['family']}: {c['n_planted']} verbatim training rows planted ({c['share']:.0%}) — "
            + ("caught by " + ", ".join(c["caught_by"]) if c["caught"] else "NOT caught")
            for c in controls
        )
        or "no positive control ran"
    )
    return {
        "passed": caught,
        "description": "The re-identification and membership checks were run again on a copy "
        "of the synthetic set with verbatim training rows planted in it; they must flag it.",
        "outcome": outcome,
    }


def _rebalancing(record: dict[str, Any] | None) -> dict[str, Any] | None:
    if not record:
        return None
    labels = sorted(set(record["real_shares"]) | set(record["released_shares"]))
    return {
        "column": record["column"],
        "reason": record["notice"],
        "shares": [
            {
                "label": label,
                "real": record["real_shares"].get(label, 0.0),
                "released": record["released_shares"].get(label, 0.0),
            }
            for label in labels
        ],
    }


def _charts(checks: list[CheckResult]) -> dict[str, str]:
    """The datasheet's four charts, drawn from the checks' stored chart data."""
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


def _uses(request: Any) -> dict[str, list[str]]:
    intended = [request.purpose.description] if request else ["Evaluation of externally produced synthetic data."]
    return {
        "intended": intended,
        "prohibited": [
            "Re-identifying, contacting or making decisions about any individual.",
            "Linking with other data to recover records of the source.",
            "Use beyond the approved purpose or by recipients other than the named one.",
        ],
    }


def _distribution(request: Any) -> dict[str, Any]:
    if request is None:
        return {"recipient": "—", "channel": "not released", "terms": "—", "expires_at": None}
    return {
        "recipient": f"{request.recipient or '—'} ({request.recipient_kind})",
        "channel": "Synthgate release download (every download is logged)",
        "terms": f"Purpose {request.purpose.name}; release valid {request.purpose.release_days} days.",
        "expires_at": None,
    }
