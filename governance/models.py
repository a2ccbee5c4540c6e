"""People and decisions: datasets, versions, purposes, requests, approvals, the budget
ledger and the hash-chained audit log (releases live in ``audits.models``, above the audits).

Rules that span rows live in ``governance.services``; models keep fields, database
constraints and small properties over a row's own fields.
"""

from __future__ import annotations

from decimal import Decimal
from typing import TypedDict

from django.conf import settings
from django.db import models
from django.db.models import F, Q

from core.amounts import DELTA_PLACES, EPSILON_PLACES, amount_text
from core.models import TimestampedModel


class DecimalDigits(TypedDict):
    """The precision of a ``DecimalField``, typed so ``DecimalField(**digits)`` type-checks."""

    max_digits: int
    decimal_places: int


# Exact amounts: NUMERIC in PostgreSQL, Decimal in Python, never float.
EPSILON_DIGITS: DecimalDigits = {"max_digits": 24, "decimal_places": EPSILON_PLACES}
DELTA_DIGITS: DecimalDigits = {"max_digits": 24, "decimal_places": DELTA_PLACES}


class Role(models.TextChoices):
    STEWARD = "steward", "Data steward"
    REQUESTER = "requester", "Requester"
    APPROVER = "approver", "Approver"
    AUDITOR = "auditor", "Auditor (read-only)"


class ColumnRole(models.TextChoices):
    IDENTIFIER = "identifier"
    QUASI_IDENTIFIER = "quasi_identifier"
    SENSITIVE = "sensitive"
    PROTECTED = "protected"
    LABEL = "label"
    OTHER = "other"


class ColumnType(models.TextChoices):
    INTEGER = "integer"
    FLOAT = "float"
    CATEGORICAL = "categorical"
    BOOLEAN = "boolean"
    DATETIME = "datetime"


class Sensitivity(models.TextChoices):
    INTERNAL = "internal"
    CONFIDENTIAL = "confidential"
    RESTRICTED = "restricted"


class Dataset(TimestampedModel):
    name = models.SlugField(max_length=100, unique=True)
    description = models.TextField(blank=True)
    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="datasets")
    sensitivity = models.CharField(max_length=20, choices=Sensitivity.choices, default=Sensitivity.CONFIDENTIAL)
    epsilon_cap = models.DecimalField(**EPSILON_DIGITS)
    delta_cap = models.DecimalField(**DELTA_DIGITS)

    class Meta:
        ordering = ["name"]
        constraints = [
            models.CheckConstraint(condition=Q(epsilon_cap__gt=0), name="dataset_epsilon_cap_positive"),
            models.CheckConstraint(condition=Q(delta_cap__gte=0) & Q(delta_cap__lt=1), name="dataset_delta_cap_range"),
        ]

    def __str__(self) -> str:
        return self.name


class VersionKind(models.TextChoices):
    SOURCE = "source"
    SYNTHETIC = "synthetic"
    EXTERNAL = "external"
    TRAIN = "train"
    HOLDOUT = "holdout"


class DatasetVersion(models.Model):
    dataset = models.ForeignKey(Dataset, on_delete=models.PROTECT, related_name="versions")
    number = models.PositiveIntegerField()
    kind = models.CharField(max_length=20, choices=VersionKind.choices, default=VersionKind.SOURCE)
    content_hash = models.CharField(max_length=64, help_text="sha256 of the canonical stored bytes")
    storage_key = models.CharField(max_length=300, help_text="path under SYNTHGATE_DATA_DIR")
    n_rows = models.PositiveIntegerField()
    n_columns = models.PositiveIntegerField()
    size_bytes = models.PositiveBigIntegerField(default=0)
    schema = models.JSONField(help_text="schema snapshot: columns with type and role")
    schema_inferred = models.BooleanField(default=False)
    dropped_columns = models.JSONField(default=list, help_text="identifier columns dropped before storage")
    original_filename = models.CharField(max_length=255, blank=True)
    parent = models.ForeignKey("self", null=True, blank=True, on_delete=models.PROTECT, related_name="children")
    lineage = models.JSONField(default=dict, blank=True)
    source_reference = models.JSONField(
        default=dict,
        blank=True,
        help_text="a table read where it lives instead of stored bytes: engine, connection name (never "
        "its URL), table, and the row count and checksum taken at registration",
    )
    # What a requester may know of the row count (issue 11.2): a DP estimate, charged once to the
    # dataset's ledger (a ``BudgetEntry`` of kind ``estimate`` naming this version), set on first need.
    public_rows = models.PositiveIntegerField(
        null=True, blank=True, help_text="DP estimate of n_rows (ledger kind 'estimate'); null until first needed"
    )
    # Or the exact row count, when the steward declared it public at registration (a census table
    # whose count is published): then ``public_rows == n_rows`` and no estimate is charged.
    rows_declared = models.BooleanField(
        default=False, help_text="n_rows declared public by the steward at registration: public_rows is exact, free"
    )
    # Whether the stored rows were checked against the declarations about every row (nullable,
    # step, calendar, categories: ``_check_rows_hold``). Registration and ``dataset declare`` check
    # them; versions stored before that check are checked at filing or by ``synthgate dataset check``
    # (docs/datasets.md, "Versions stored before the rows were checked"). False until then.
    rows_checked = models.BooleanField(
        default=False, help_text="the stored rows were checked against the declarations and hold them"
    )
    rows_contradiction = models.TextField(
        blank=True, help_text="stewards only: why the stored rows contradict the declarations (the last check)"
    )
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.PROTECT, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["dataset", "number"]
        constraints = [
            models.UniqueConstraint(fields=["dataset", "number"], name="version_number_unique"),
            models.UniqueConstraint(fields=["dataset", "kind", "content_hash"], name="version_content_unique"),
        ]

    def __str__(self) -> str:
        return f"{self.dataset.name}@v{self.number}"

    @property
    def rows_check_due(self) -> bool:
        """An uploaded source version whose stored rows were never checked against its declarations
        (stored before registration checked them): filing, approval, the job, ``dataset declare`` and
        the steward's dataset page ask this (``dataset_rows_check`` filters the same in the database).
        A version by reference is checked in its engine."""
        return self.kind == VersionKind.SOURCE and not self.source_reference and not self.rows_checked


class SourceFingerprint(models.Model):
    """The keyed digests of a source version's distinct rows (``governance.fingerprint``).

    Kept apart from ``DatasetVersion`` so that reading versions never loads the digests.
    """

    version = models.OneToOneField(
        DatasetVersion, on_delete=models.PROTECT, primary_key=True, related_name="fingerprint"
    )
    key_id = models.CharField(max_length=16, help_text="which fingerprint key made the digests")
    n_distinct_rows = models.PositiveIntegerField()
    digests = models.BinaryField(help_text="sorted distinct 64-bit big-endian HMAC-SHA256 row digests")
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return f"fingerprint of {self.version}"


class OutputFormat(models.TextChoices):
    """The stored form of a job's synthetic table (``governance.output_formats``)."""

    CSV = "csv"
    PARQUET = "parquet"


class RecipientKind(models.TextChoices):
    INTERNAL = "internal"
    EXTERNAL = "external"


class Purpose(TimestampedModel):
    name = models.SlugField(max_length=100, unique=True)
    description = models.TextField(blank=True)
    max_epsilon = models.DecimalField(**EPSILON_DIGITS)
    approvals_required = models.PositiveSmallIntegerField(default=2)
    allowed_recipients = models.JSONField(default=list)
    allow_non_private = models.BooleanField(default=False)
    holdout_fraction = models.DecimalField(max_digits=4, decimal_places=3, default=Decimal("0.200"))
    audit_thresholds = models.JSONField(default=dict, blank=True)
    release_days = models.PositiveIntegerField(default=90)

    class Meta:
        ordering = ["name"]
        constraints = [
            models.CheckConstraint(condition=Q(max_epsilon__gt=0), name="purpose_max_epsilon_positive"),
            models.CheckConstraint(condition=Q(approvals_required__in=[1, 2]), name="purpose_approvals_1_or_2"),
            models.CheckConstraint(
                condition=Q(holdout_fraction__gte=Decimal("0.05")) & Q(holdout_fraction__lte=Decimal("0.5")),
                name="purpose_holdout_fraction_range",
            ),
        ]

    def __str__(self) -> str:
        return self.name


class RequestState(models.TextChoices):
    DRAFT = "draft"
    SUBMITTED = "submitted"
    APPROVED = "approved"
    GENERATING = "generating"
    AUDITING = "auditing"
    READY = "ready"
    RELEASED = "released"
    REJECTED = "rejected"
    WITHDRAWN = "withdrawn"
    FAILED = "failed"
    BLOCKED = "blocked"
    REVOKED = "revoked"
    EXPIRED = "expired"


class DataRequest(TimestampedModel):
    dataset = models.ForeignKey(Dataset, on_delete=models.PROTECT, related_name="requests")
    source_version = models.ForeignKey(DatasetVersion, on_delete=models.PROTECT, related_name="requests")
    purpose = models.ForeignKey(Purpose, on_delete=models.PROTECT, related_name="requests")
    requester = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="data_requests")
    state = models.CharField(max_length=20, choices=RequestState.choices, default=RequestState.DRAFT, db_index=True)
    epsilon = models.DecimalField(**EPSILON_DIGITS)
    delta = models.DecimalField(**DELTA_DIGITS)
    n_rows = models.PositiveIntegerField()
    generator = models.CharField(max_length=50, default="mst")
    generator_params = models.JSONField(default=dict, blank=True)
    rebalance = models.JSONField(null=True, blank=True, help_text='{"column": ..., "shares": {value: share}}')
    seed = models.BigIntegerField(null=True, blank=True, help_text="set only when reproducibility is requested")
    output_format = models.CharField(
        max_length=10,
        choices=OutputFormat.choices,
        default=OutputFormat.CSV,
        help_text="the stored form of the synthetic table: canonical CSV or Parquet",
    )
    recipient_kind = models.CharField(max_length=20, choices=RecipientKind.choices, default=RecipientKind.INTERNAL)
    recipient = models.CharField(max_length=200, blank=True)
    justification = models.TextField(blank=True)
    submitted_at = models.DateTimeField(null=True, blank=True)
    decided_at = models.DateTimeField(null=True, blank=True)
    decision_reason = models.TextField(blank=True)
    # The requester's idempotency key (the dashboard form's token, an API client's
    # Idempotency-Key): a second submission with the same key returns the first request.
    client_token = models.CharField(max_length=64, blank=True, default="")

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["requester", "client_token"],
                condition=~Q(client_token=""),
                name="request_one_per_client_token",
            ),
            models.CheckConstraint(condition=Q(epsilon__gt=0), name="request_epsilon_positive"),
            models.CheckConstraint(condition=Q(delta__gte=0) & Q(delta__lt=1), name="request_delta_range"),
            models.CheckConstraint(condition=Q(n_rows__gt=0), name="request_rows_positive"),
            models.CheckConstraint(
                condition=Q(output_format__in=["csv", "parquet"]), name="request_output_format_known"
            ),
        ]

    def __str__(self) -> str:
        return f"request #{self.pk} ({self.dataset_id}, {self.state})"


class Decision(models.TextChoices):
    APPROVE = "approve"
    REJECT = "reject"


class Approval(models.Model):
    request = models.ForeignKey(DataRequest, on_delete=models.PROTECT, related_name="approvals")
    approver = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="approvals")
    # Copied from the request so the database itself can refuse self-approval (four-eyes);
    # on PostgreSQL a trigger also checks it matches the request's requester.
    requester = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    decision = models.CharField(max_length=10, choices=Decision.choices)
    reason = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["created_at", "id"]
        constraints = [
            models.UniqueConstraint(fields=["request", "approver"], name="approval_one_per_approver"),
            models.CheckConstraint(condition=~Q(approver=F("requester")), name="approval_not_by_requester"),
        ]

    def __str__(self) -> str:
        return f"{self.decision} of request #{self.request_id} by user #{self.approver_id}"


class EntryKind(models.TextChoices):
    RESERVE = "reserve"
    SPEND = "spend"
    RELEASE = "release"
    # A spend with no request: a source version's DP row estimate (``DatasetVersion.public_rows``).
    ESTIMATE = "estimate"


class BudgetEntry(models.Model):
    """One append-only ledger row. Balance = sums; rows are never updated or deleted."""

    dataset = models.ForeignKey(Dataset, on_delete=models.PROTECT, related_name="budget_entries")
    request = models.ForeignKey(
        DataRequest, null=True, blank=True, on_delete=models.PROTECT, related_name="budget_entries"
    )
    version = models.ForeignKey(
        DatasetVersion,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="budget_entries",
        help_text="the source version whose row count an 'estimate' entry paid for",
    )
    job = models.ForeignKey(
        "synth_engine.GenerationJob", null=True, blank=True, on_delete=models.PROTECT, related_name="budget_entries"
    )
    kind = models.CharField(max_length=10, choices=EntryKind.choices)
    epsilon = models.DecimalField(**EPSILON_DIGITS)
    delta = models.DecimalField(**DELTA_DIGITS)
    mechanism = models.CharField(max_length=100, blank=True)
    accountant = models.JSONField(default=dict, blank=True)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    note = models.CharField(max_length=300, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["created_at", "id"]
        constraints = [
            models.CheckConstraint(condition=Q(epsilon__gte=0) & Q(delta__gte=0), name="budget_amounts_non_negative"),
            # One reservation per request, and at most one spend and one release per request:
            # this is what makes spending idempotent even if a task is delivered twice.
            models.UniqueConstraint(fields=["request", "kind"], name="budget_one_entry_per_kind"),
            # A request's entries name their request; a row estimate names its version instead,
            # and is paid for once per version.
            models.CheckConstraint(
                condition=(Q(kind="estimate") & Q(request__isnull=True) & Q(version__isnull=False))
                | (~Q(kind="estimate") & Q(request__isnull=False) & Q(version__isnull=True)),
                name="budget_entry_names_request_or_version",
            ),
            models.UniqueConstraint(
                fields=["version"], condition=Q(kind="estimate"), name="budget_one_estimate_per_version"
            ),
        ]

    def __str__(self) -> str:
        owner = f"version #{self.version_id}" if self.request_id is None else f"request #{self.request_id}"
        return f"{self.kind} ε={amount_text(self.epsilon)} δ={amount_text(self.delta)} ({owner})"


class AuditEvent(models.Model):
    """An append-only, hash-chained record of one state change or ledger entry."""

    created_at = models.DateTimeField()
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    actor_name = models.CharField(max_length=150)
    channel = models.CharField(max_length=30, help_text="api, web, cli (operator), worker, system")
    action = models.CharField(max_length=80, db_index=True)
    object_type = models.CharField(max_length=50)
    object_id = models.CharField(max_length=64)
    before = models.JSONField(null=True, blank=True)
    after = models.JSONField(null=True, blank=True)
    prev_hash = models.CharField(max_length=64)
    hash = models.CharField(max_length=64, unique=True)

    class Meta:
        ordering = ["id"]
        indexes = [models.Index(fields=["object_type", "object_id"])]

    def __str__(self) -> str:
        return f"event #{self.pk} {self.action} {self.object_type}:{self.object_id}"


class AuditChainHead(models.Model):
    """A single row that serialises appends to the audit log (locked per append)."""

    last_hash = models.CharField(max_length=64)
    length = models.BigIntegerField(default=0)

    def __str__(self) -> str:
        return f"audit chain head ({self.length} events)"
