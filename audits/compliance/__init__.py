"""Compliance reports: requests, decisions, risk acceptances, the budget ledger with running
balances, releases and downloads, audits and drift audits, and the audit-log verification, for a
period. ``compliance_report_build`` gathers the facts; ``compliance_report_render`` writes them as
JSON, CSV or a signed PDF, records the file's SHA-256 and logs the generation."""

from audits.compliance.build import compliance_report_build, compliance_scope
from audits.compliance.render import (
    RenderedReport,
    compliance_report_recorded,
    compliance_report_render,
    csv_cell,
    report_csv,
    report_json,
)

__all__ = [
    "RenderedReport",
    "compliance_report_build",
    "compliance_report_recorded",
    "compliance_report_render",
    "compliance_scope",
    "csv_cell",
    "report_csv",
    "report_json",
]
