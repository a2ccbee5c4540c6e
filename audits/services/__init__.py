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

Names load on first use (``core.lazy``): the datasheet and release modules bring pandas,
WeasyPrint and pyHanko, which a read-only command such as ``audit show`` never needs.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from core.lazy import lazy_exports

if TYPE_CHECKING:
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
        checkpoint_compaction_schedule_ensure,
        version_frame,
    )

_HOMES = {
    "audit_external": "audits.services.runs",
    "audit_reaper_schedule_ensure": "audits.services.runs",
    "checkpoint_compaction_schedule_ensure": "audits.services.runs",
    "audit_report_problems": "audits.services.releases",
    "audit_run_execute": "audits.services.runs",
    "audit_run_for_job": "audits.services.runs",
    "audit_run_on_demand": "audits.services.runs",
    "audit_runs_reap": "audits.services.runs",
    "audit_thresholds_for": "audits.services.runs",
    "datasheet_issue": "audits.services.datasheets",
    "datasheet_verify": "audits.services.datasheets",
    "drift_audit_release": "audits.services.drift_audits",
    "drift_audit_run": "audits.services.drift_audits",
    "drift_audits_due": "audits.services.drift_audits",
    "drift_beat_schedule_ensure": "audits.services.drift_audits",
    "drift_schedule_set": "audits.services.drift_audits",
    "DriftOutcome": "audits.services.drift_audits",
    "release_check_active": "audits.services.releases",
    "release_conditions": "audits.services.releases",
    "release_create": "audits.services.releases",
    "release_datasheet_issue": "audits.services.releases",
    "release_download": "audits.services.releases",
    "release_mark_stale": "audits.services.drift_audits",
    "release_revoke": "audits.services.releases",
    "releases_active": "audits.services.drift_audits",
    "risk_accept": "audits.services.risk",
    "signed_pdf_record": "audits.services.datasheets",
    "version_frame": "audits.services.runs",
}

__all__ = [
    "DriftOutcome",
    "audit_external",
    "audit_reaper_schedule_ensure",
    "checkpoint_compaction_schedule_ensure",
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

__getattr__ = lazy_exports(__name__, _HOMES)
