"""Audit runs and their check results, signed datasheets, risk acceptances, and the releases they gate.

``Release`` and ``Download`` keep the tables governance's migrations created
(``governance_release``, ``governance_download``): the models moved here by a state-only migration.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models

from core.models import TimestampedModel


class AuditKind(models.TextChoices):
    GENERATION = "generation", "After a generation job"
    ON_DEMAND = "on_demand", "On demand"
    EXTERNAL = "external", "External synthetic data"


class AuditStatus(models.TextChoices):
    RUNNING = "running"
    PASSED = "passed"
    FAILED = "failed"
    INCONCLUSIVE = "inconclusive"
    ERROR = "error"


class AuditRun(TimestampedModel):
    """One audit of a synthetic (or external) version against its training rows and holdout."""

    version = models.ForeignKey("governance.DatasetVersion", on_delete=models.PROTECT, related_name="audit_runs")
    train_version = models.ForeignKey("governance.DatasetVersion", on_delete=models.PROTECT, related_name="+")
    holdout_version = models.ForeignKey("governance.DatasetVersion", on_delete=models.PROTECT, related_name="+")
    request = models.ForeignKey(
        "governance.DataRequest", null=True, blank=True, on_delete=models.PROTECT, related_name="audit_runs"
    )
    kind = models.CharField(max_length=20, choices=AuditKind.choices)
    status = models.CharField(max_length=20, choices=AuditStatus.choices, default=AuditStatus.RUNNING, db_index=True)
    seed = models.BigIntegerField()
    thresholds = models.JSONField(default=dict)
    blocked = models.BooleanField(default=False)
    failed_checks = models.JSONField(default=list)
    controls = models.JSONField(default=list, help_text="positive-control outcomes")
    timings = models.JSONField(default=dict)
    audit_sample_rows = models.JSONField(
        default=dict, blank=True, help_text="training and holdout rows the audit sampled; empty when it read all"
    )
    error = models.TextField(blank=True)
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    heartbeat_at = models.DateTimeField(null=True, blank=True, help_text="written while the run works")
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"audit #{self.pk} of {self.version} ({self.status})"

    @property
    def passed(self) -> bool:
        return self.status == AuditStatus.PASSED


class CheckResult(models.Model):
    run = models.ForeignKey(AuditRun, on_delete=models.PROTECT, related_name="checks")
    name = models.CharField(max_length=80)
    category = models.CharField(max_length=40)
    value = models.FloatField(null=True, blank=True)
    threshold = models.FloatField(null=True, blank=True)
    direction = models.CharField(max_length=30)
    passed = models.BooleanField(null=True)
    blocking = models.BooleanField(default=False)
    gating = models.BooleanField(default=True)
    baseline = models.FloatField(null=True, blank=True)
    ci_low = models.FloatField(null=True, blank=True)
    ci_high = models.FloatField(null=True, blank=True)
    skipped_reason = models.TextField(blank=True)
    seconds = models.FloatField(default=0)
    details = models.JSONField(default=dict, blank=True)
    chart = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["run", "id"]
        constraints = [models.UniqueConstraint(fields=["run", "name"], name="check_unique_per_run")]

    def __str__(self) -> str:
        return f"{self.name}: {self.verdict}"

    @property
    def verdict(self) -> str:
        if self.passed is None:
            return "skipped" if self.skipped_reason else "info"
        return "pass" if self.passed else ("BLOCK" if self.blocking else "fail")


class Datasheet(TimestampedModel):
    """The signed PDF for one audit run; its SHA-256 is recorded at signing."""

    run = models.OneToOneField(AuditRun, on_delete=models.PROTECT, related_name="datasheet")
    version = models.ForeignKey("governance.DatasetVersion", on_delete=models.PROTECT, related_name="datasheets")
    storage_key = models.CharField(max_length=300)
    sha256 = models.CharField(max_length=64, unique=True)
    size_bytes = models.PositiveBigIntegerField()
    signer = models.CharField(max_length=300)
    signed_at = models.DateTimeField()

    def __str__(self) -> str:
        return f"datasheet {self.sha256[:12]}… of audit #{self.run_id}"


class Release(TimestampedModel):
    """A synthetic version let out of the gate: downloadable until it expires or is revoked."""

    request = models.OneToOneField("governance.DataRequest", on_delete=models.PROTECT, related_name="release")
    version = models.ForeignKey("governance.DatasetVersion", on_delete=models.PROTECT, related_name="releases")
    audit_run = models.ForeignKey(AuditRun, on_delete=models.PROTECT, related_name="releases")
    datasheet = models.ForeignKey(Datasheet, on_delete=models.PROTECT, related_name="releases")
    released_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    expires_at = models.DateTimeField()
    revoked_at = models.DateTimeField(null=True, blank=True)
    revoked_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    revoke_reason = models.TextField(blank=True)
    stale_at = models.DateTimeField(null=True, blank=True, help_text="set when a drift audit finds it stale")

    class Meta:
        db_table = "governance_release"  # created by governance's migrations before the model moved here
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"release #{self.pk} of request #{self.request_id}"


class DownloadKind(models.TextChoices):
    DATA = "data"
    DATASHEET = "datasheet"


class Download(models.Model):
    """Every download of a release's file or datasheet."""

    release = models.ForeignKey(Release, on_delete=models.PROTECT, related_name="downloads")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    kind = models.CharField(max_length=20, choices=DownloadKind.choices)
    channel = models.CharField(max_length=30)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        db_table = "governance_download"  # created by governance's migrations before the model moved here
        ordering = ["created_at", "id"]

    def __str__(self) -> str:
        return f"{self.kind} download of release #{self.release_id}"


class ReleaseDatasheet(TimestampedModel):
    """The signed release datasheet: what the recipient of one release reads, naming that release.

    The audit's own ``Datasheet`` is the internal audit report (exact real-data diagnostics) and
    stays with stewards, approvers and auditors; this one holds only recipient-safe figures plus
    the approvals, risk acceptances, releaser, recipient, terms and expiry.
    """

    release = models.OneToOneField(Release, on_delete=models.PROTECT, related_name="release_datasheet")
    storage_key = models.CharField(max_length=300)
    sha256 = models.CharField(max_length=64, unique=True)
    size_bytes = models.PositiveBigIntegerField()
    signer = models.CharField(max_length=300)
    signed_at = models.DateTimeField()

    def __str__(self) -> str:
        return f"release datasheet {self.sha256[:12]}… of release #{self.release_id}"


class RiskAcceptance(models.Model):
    """A second approver's reasoned acceptance of a failed audit, naming every failed check."""

    run = models.ForeignKey(AuditRun, on_delete=models.PROTECT, related_name="risk_acceptances")
    request = models.ForeignKey("governance.DataRequest", on_delete=models.PROTECT, related_name="risk_acceptances")
    approver = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    reason = models.TextField()
    failed_checks = models.JSONField(default=list)
    reasons = models.JSONField(default=dict, blank=True, help_text="{failed check: the reason for accepting it}")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["run", "approver"], name="risk_acceptance_once")]

    def __str__(self) -> str:
        return f"risk acceptance of audit #{self.run_id} by user #{self.approver_id}"


# --- Compliance reports and scheduled drift audits ---------------------------------------------


class ReportFormat(models.TextChoices):
    PDF = "pdf", "Signed PDF"
    CSV = "csv", "CSV"
    JSON = "json", "JSON"


class ComplianceReport(models.Model):
    """One generated compliance report; a signed PDF's SHA-256 lets `datasheet verify` accept it."""

    date_from = models.DateField()
    date_to = models.DateField()
    dataset = models.ForeignKey(
        "governance.Dataset", null=True, blank=True, on_delete=models.PROTECT, related_name="compliance_reports"
    )
    purpose = models.ForeignKey(
        "governance.Purpose", null=True, blank=True, on_delete=models.PROTECT, related_name="compliance_reports"
    )
    format = models.CharField(max_length=10, choices=ReportFormat.choices)
    sha256 = models.CharField(max_length=64, db_index=True)
    storage_key = models.CharField(max_length=300)
    size_bytes = models.PositiveBigIntegerField()
    signer = models.CharField(max_length=300, blank=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(date_to__gte=models.F("date_from")), name="compliance_report_period_ordered"
            )
        ]

    def __str__(self) -> str:
        return f"compliance report #{self.pk} ({self.date_from}..{self.date_to}, {self.format})"


class DriftSchedule(models.Model):
    """How often the scheduled drift audit re-checks a dataset's active releases."""

    dataset = models.OneToOneField("governance.Dataset", on_delete=models.PROTECT, related_name="drift_schedule")
    interval_hours = models.PositiveIntegerField(default=24)
    enabled = models.BooleanField(default=True)
    last_run_at = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [models.CheckConstraint(condition=models.Q(interval_hours__gt=0), name="drift_interval_positive")]

    def __str__(self) -> str:
        return f"drift audits of dataset #{self.dataset_id} every {self.interval_hours} h"


class DriftTrigger(models.TextChoices):
    SCHEDULE = "schedule"
    ON_DEMAND = "on_demand"


class DriftRun(models.Model):
    """One drift re-audit of a release against its dataset's newest source version, or (a source
    registered by reference) against a new snapshot of the table it refers to.

    ``source_checks``: the newest source against the source the release was made from;
    ``release_checks``: the release against the newest source; ``baseline_checks``: the release
    against its own source (what it looked like when released). Each is a list of check dicts
    whose ``details`` hold the per-column figures. ``snapshot``: what was read where the data
    lives (engine, table, row count, checksum, time, sample size; ``synth_engine.sources``),
    for stewards and auditors only. ``compared_rows``: how many rows of each table the comparison
    read (a table above the audit's sample sizes is read as a uniform random sample, streamed from
    its stored file), for stewards and auditors only. ``failed``: the re-audit could not be made (``reasons`` say
    why); it does not mark the release stale and the next re-audit tries again.
    """

    release = models.ForeignKey(Release, on_delete=models.PROTECT, related_name="drift_runs")
    reference_version = models.ForeignKey("governance.DatasetVersion", on_delete=models.PROTECT, related_name="+")
    current_version = models.ForeignKey(
        "governance.DatasetVersion",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
        help_text="the newer source version compared; empty when a snapshot of the referenced table was",
    )
    snapshot = models.JSONField(default=dict, blank=True)
    snapshot_key = models.CharField(
        max_length=100, blank=True, default="", help_text="row count and checksum: one run per table content"
    )
    failed = models.BooleanField(default=False)
    trigger = models.CharField(max_length=20, choices=DriftTrigger.choices)
    thresholds = models.JSONField(default=dict)
    source_checks = models.JSONField(default=list)
    release_checks = models.JSONField(default=list)
    baseline_checks = models.JSONField(default=list)
    per_column = models.JSONField(default=dict, help_text="{source|release: {column: {psi, test, p_value, ...}}}")
    compared_rows = models.JSONField(
        default=dict,
        blank=True,
        help_text="{reference|current|synthetic: rows compared, sampled: [which were samples], seed}",
    )
    stale = models.BooleanField()
    reasons = models.JSONField(default=list)
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(fields=["release", "current_version"], name="drift_run_once_per_source"),
            models.UniqueConstraint(
                fields=["release", "snapshot_key"],
                condition=~models.Q(snapshot_key=""),
                name="drift_run_once_per_snapshot",
            ),
        ]

    def __str__(self) -> str:
        verdict = "failed" if self.failed else "stale" if self.stale else "current"
        return f"drift run #{self.pk} of release #{self.release_id} ({verdict})"
