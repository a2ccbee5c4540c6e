"""Every write and business rule of the audits app. Import from here.

- ``runs``: audit runs (after a job, on demand, of external data), their end and their reaper;
- ``datasheets``: the internal audit report, the one way a signed PDF is stored and recorded,
  and verification of any file this platform signed;
- ``risk``: a second approver's per-check risk acceptance;
- ``releases``: the release gate (it runs the cryptographic verifier), release, the release
  datasheet, downloads and revocation;
- ``drift_audits``: scheduled and on-demand drift re-audits of live releases (the drift
  *checks* themselves are pure, in ``audits/metrics/drift.py``).

Compliance reports live in ``audits/compliance/`` (gather, render, record).
"""

from audits.services.datasheets import datasheet_issue, datasheet_verify, signed_pdf_record
from audits.services.drift_audits import (
    DriftOutcome,
    drift_audit_release,
    drift_audit_run,
    drift_audits_due,
    drift_beat_schedule_ensure,
    drift_schedule_set,
    release_mark_stale,
    releases_active,
)
from audits.services.releases import (
    audit_report_problems,
    release_check_active,
    release_conditions,
    release_create,
    release_datasheet_issue,
    release_download,
    release_revoke,
)
from audits.services.risk import risk_accept
from audits.services.runs import (
    audit_external,
    audit_reaper_schedule_ensure,
    audit_run_execute,
    audit_run_for_job,
    audit_run_on_demand,
    audit_runs_reap,
    audit_thresholds_for,
    version_frame,
)

__all__ = [
    "DriftOutcome",
    "audit_external",
    "audit_reaper_schedule_ensure",
    "audit_report_problems",
    "audit_run_execute",
    "audit_run_for_job",
    "audit_run_on_demand",
    "audit_runs_reap",
    "audit_thresholds_for",
    "datasheet_issue",
    "datasheet_verify",
    "drift_audit_release",
    "drift_audit_run",
    "drift_audits_due",
    "drift_beat_schedule_ensure",
    "drift_schedule_set",
    "release_check_active",
    "release_conditions",
    "release_create",
    "release_datasheet_issue",
    "release_download",
    "release_mark_stale",
    "release_revoke",
    "releases_active",
    "risk_accept",
    "signed_pdf_record",
    "version_frame",
]
