"""Generation jobs: one approved request becomes one job that trains and samples."""

from __future__ import annotations

from django.conf import settings
from django.db import models

from core.models import TimestampedModel


class JobStatus(models.TextChoices):
    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"


TERMINAL_JOB_STATUSES = (JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.CANCELLED)


class SeedPolicy(models.TextChoices):
    CRYPTOGRAPHIC = "cryptographic", "Cryptographically seeded (production)"
    REPRODUCIBLE = "reproducible", "Fixed seed requested for reproducibility"


class GenerationJob(TimestampedModel):
    request = models.ForeignKey("governance.DataRequest", on_delete=models.PROTECT, related_name="jobs")
    generator = models.CharField(max_length=50)
    parameters = models.JSONField(default=dict, blank=True)
    seed = models.BigIntegerField(null=True, blank=True)
    seed_policy = models.CharField(max_length=20, choices=SeedPolicy.choices, default=SeedPolicy.CRYPTOGRAPHIC)
    status = models.CharField(max_length=20, choices=JobStatus.choices, default=JobStatus.QUEUED, db_index=True)
    phase = models.CharField(max_length=50, default="queued")
    progress = models.PositiveSmallIntegerField(default=0)
    cancel_requested = models.BooleanField(default=False)
    attempts = models.PositiveIntegerField(default=0)
    celery_task_id = models.CharField(max_length=100, blank=True)
    data_touched_at = models.DateTimeField(null=True, blank=True)
    started_at = models.DateTimeField(null=True, blank=True)
    # Written every few seconds by the worker running the job; the reaper ends a running job
    # whose heartbeat is older than SYNTHGATE_HEARTBEAT_TIMEOUT_SECONDS (its worker is gone).
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    timings = models.JSONField(default=dict, blank=True)
    peak_memory_bytes = models.PositiveBigIntegerField(null=True, blank=True)
    library_versions = models.JSONField(default=dict, blank=True)
    privacy_spent = models.JSONField(default=dict, blank=True)
    warnings = models.JSONField(default=list, blank=True)
    error = models.TextField(blank=True)
    output_version = models.ForeignKey(
        "governance.DatasetVersion", null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    holdout_version = models.ForeignKey(
        "governance.DatasetVersion", null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    train_version = models.ForeignKey(
        "governance.DatasetVersion", null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.CheckConstraint(condition=models.Q(progress__lte=100), name="job_progress_max_100"),
        ]

    def __str__(self) -> str:
        return f"job #{self.pk} ({self.generator}, {self.status})"

    @property
    def is_terminal(self) -> bool:
        return self.status in TERMINAL_JOB_STATUSES


class AssuranceStatus(models.TextChoices):
    PASSED = "passed", "Not refuted (no attack found ε above the claim)"
    FAILED = "failed", "Failed (the DP claim is contradicted)"


class AssuranceRun(TimestampedModel):
    """One ``synthgate assure`` run: the distinguishing game against one generator version.

    Runs are computed on the bundled public sample, never on a customer's data, so every
    figure here is public. The latest run per (generator, generator_version) is what the
    dashboard shows and datasheets cite.
    """

    generator = models.CharField(max_length=50, db_index=True)
    generator_version = models.CharField(max_length=64, help_text="hash of the generator's code (see services)")
    parameters = models.JSONField(default=dict, blank=True)
    epsilon = models.FloatField()
    delta = models.FloatField()
    runs = models.PositiveIntegerField(help_text="fits per world and canary")
    n_rows = models.PositiveIntegerField()
    status = models.CharField(max_length=20, choices=AssuranceStatus.choices)
    epsilon_lower_bound = models.FloatField()
    mu_ratio = models.FloatField()
    seconds = models.FloatField()
    report = models.JSONField(default=dict, help_text="the full report: canaries, attacks, bounds, sampling check")
    run_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["generator", "generator_version", "-created_at"])]

    def __str__(self) -> str:
        return f"assurance #{self.pk} ({self.generator} {self.generator_version[:8]}, {self.status})"

    @property
    def passed(self) -> bool:
        return self.status == AssuranceStatus.PASSED
