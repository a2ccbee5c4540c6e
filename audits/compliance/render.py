"""Compliance reports as JSON, CSV (safe to open in a spreadsheet) or a signed PDF; each one is
stored, recorded with its SHA-256 and logged."""

from __future__ import annotations

import csv
import hashlib
import io
import json
from dataclasses import dataclass
from datetime import date
from typing import Any

from django.conf import settings
from django.contrib.auth.models import User
from django.db import transaction

from audits.compliance.build import compliance_report_build, compliance_scope
from audits.models import ComplianceReport, ReportFormat
from core.errors import ValidationError
from governance.services import audit_event_record
from governance.storage import StoredFile, removed_after_error, version_storage

CONTENT_TYPES: dict[str, str] = {
    ReportFormat.PDF: "application/pdf",
    ReportFormat.CSV: "text/csv; charset=utf-8",
    ReportFormat.JSON: "application/json",
}
# A spreadsheet reads a cell starting with one of these as a formula (OWASP "CSV injection").
FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")
TEMPLATE = "reports/compliance.html"


@dataclass(frozen=True)
class RenderedReport:
    content: bytes
    content_type: str
    filename: str
    sha256: str
    data: dict[str, Any]
    record: ComplianceReport


def compliance_report_render(
    *,
    actor: User,
    date_from: date,
    date_to: date,
    format: str,
    dataset: str | None = None,
    purpose: str | None = None,
) -> RenderedReport:
    """Build the report, render it in ``format`` (a PDF is signed), store and record it, and log it."""
    if format not in ReportFormat.values:
        raise ValidationError(
            f"Unknown report format {format!r}; choose one of {', '.join(ReportFormat.values)}.",
            extra={"field": "format"},
        )
    scope = compliance_scope(actor=actor, date_from=date_from, date_to=date_to, dataset=dataset, purpose=purpose)
    data = compliance_report_build(actor=actor, date_from=date_from, date_to=date_to, dataset=dataset, purpose=purpose)
    signer = ""
    if format == ReportFormat.PDF:
        content, signer = _pdf(data)
    else:
        content = report_csv(data) if format == ReportFormat.CSV else report_json(data)
    sha256 = hashlib.sha256(content).hexdigest()
    filename = f"compliance-{date_from.isoformat()}-{date_to.isoformat()}-{sha256[:12]}.{format}"
    storage, key = version_storage(), f"reports/{filename}"
    written = storage.write_new(key, content)  # the name holds the content's SHA-256
    try:
        with transaction.atomic():
            record = ComplianceReport.objects.create(
                date_from=date_from,
                date_to=date_to,
                dataset=scope.dataset,
                purpose=scope.purpose,
                format=format,
                sha256=sha256,
                storage_key=key,
                size_bytes=len(content),
                signer=signer,
                created_by=actor,
            )
            audit_event_record(
                actor=actor,
                action="report.compliance",
                obj=record,
                after={
                    "period": data["report"]["period"],
                    "filters": data["report"]["filters"],
                    "format": format,
                    "sha256": sha256,
                    "audit_log_ok": data["audit_log"]["ok"],
                },
            )
    except BaseException:
        if written:
            removed_after_error([StoredFile(storage, key)])  # a refusal is logged; this error is raised
        raise
    return RenderedReport(content, CONTENT_TYPES[format], filename, sha256, data, record)


def compliance_report_recorded(*, sha256: str) -> ComplianceReport | None:
    """The signed PDF compliance report recorded with this SHA-256, if any."""
    return ComplianceReport.objects.filter(sha256=sha256, format=ReportFormat.PDF).first()


def report_json(data: dict[str, Any]) -> bytes:
    return json.dumps(data, indent=2, ensure_ascii=False).encode("utf-8")


def csv_cell(value: Any) -> str:
    """A cell's text; one a spreadsheet would run as a formula is prefixed with a single quote."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    text = "; ".join(csv_cell(item) for item in value) if isinstance(value, list) else str(value)
    return "'" + text if text.startswith(FORMULA_PREFIXES) else text


def report_csv(data: dict[str, Any]) -> bytes:
    """Sections one after another: a title row, a header row, the rows, then an empty row."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    for title, headers, rows in _csv_sections(data):
        writer.writerow([csv_cell(title)])
        writer.writerow([csv_cell(header) for header in headers])
        writer.writerows([[csv_cell(value) for value in row] for row in rows])
        writer.writerow([])
    return buffer.getvalue().encode("utf-8")


def _csv_sections(data: dict[str, Any]) -> list[tuple[str, list[str], list[list[Any]]]]:
    report, chain = data["report"], data["audit_log"]
    about = [
        ["title", report["title"]],
        ["period_from", report["period"]["from"]],
        ["period_to", report["period"]["to"]],
        ["timezone", report["period"]["timezone"]],
        ["dataset_filter", report["filters"]["dataset"]],
        ["purpose_filter", report["filters"]["purpose"]],
        ["generated_at", report["generated_at"]],
        ["generated_by", report["generated_by"]],
        *[[f"audit_log_{key}", value] for key, value in chain.items()],
    ]
    budgets = data["budgets"]
    summary_keys = ["opening", "period", "closing"]
    summary_headers = [f"{part}_{key}" for part in summary_keys for key in budgets[0][part]] if budgets else []
    downloads = [
        {"release": release["id"], **download} for release in data["releases"] for download in release["downloads"]
    ]
    exceptions = [
        {"release": release["id"], **exception} for release in data["releases"] for exception in release["exceptions"]
    ]
    ledger = [
        {"dataset": budget["dataset"], **_without(entry, "running"), **entry["running"]}
        for budget in budgets
        for entry in budget["entries"]
    ]
    return [
        ("report", ["field", "value"], about),
        ("requests by state", ["state", "count"], [[s, n] for s, n in data["requests"]["by_state"].items()]),
        _table("requests", data["requests"]["items"]),
        _table("decisions", data["decisions"]),
        _table("risk acceptances", data["risk_acceptances"]),
        (
            "budget summary",
            ["dataset", "epsilon_cap", "delta_cap", *summary_headers],
            [
                [
                    b["dataset"],
                    b["epsilon_cap"],
                    b["delta_cap"],
                    *[v for part in summary_keys for v in b[part].values()],
                ]
                for b in budgets
            ],
        ),
        _table("budget ledger", ledger),
        _table(
            "releases",
            [_without(_without(release, "downloads"), "exceptions") for release in data["releases"]],
        ),
        _table("released despite failed checks", exceptions),
        _table("downloads", downloads),
        _table(
            "audits",
            [{**run, "failed_checks": [_failed(check) for check in run["failed_checks"]]} for run in data["audits"]],
        ),
        _table("drift audits", data["drift_audits"]),
    ]


def _table(title: str, rows: list[dict[str, Any]]) -> tuple[str, list[str], list[list[Any]]]:
    headers = list(rows[0]) if rows else []
    return title, headers, [[row.get(header) for header in headers] for row in rows]


def _without(row: dict[str, Any], key: str) -> dict[str, Any]:
    return {name: value for name, value in row.items() if name != key}


def _failed(check: dict[str, Any]) -> str:
    return f"{check['name']} ({check['value']} vs threshold {check['threshold']})"


def _pdf(data: dict[str, Any]) -> tuple[bytes, str]:
    from audits.compliance.charts import compliance_chart_images
    from audits.datasheets import html_to_pdf, render_template, sign_pdf
    from audits.keys import signing_identity

    period = data["report"]["period"]
    html = render_template(
        TEMPLATE,
        {
            **data,
            "ledger_rows": sum(len(b["entries"]) for b in data["budgets"]),
            "exception_releases": sum(1 for release in data["releases"] if release["despite_failed_checks"]),
            "charts": compliance_chart_images(data),
        },
    )
    signed = sign_pdf(
        html_to_pdf(html),
        signing_identity(),
        reason=f"Synthgate compliance report {period['from']} to {period['to']}",
        location=settings.SYNTHGATE_ORGANISATION,
    )
    return signed.pdf_bytes, signed.signer
