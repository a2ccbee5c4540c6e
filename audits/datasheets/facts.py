"""The typed facts a datasheet states: what a service gathers and ``datasheet_context`` formats.

Pure (no Django). One builder, ``audits.facts.datasheet_facts``, fills these from the records;
the sections that follow from stored JSON records alone are built by ``audits.datasheets.records``,
which the tests' sample (``tests/audits/datasheet_sample.py``) uses too. Two audiences read them:

- ``Audience.INTERNAL``: the audit report for stewards, approvers and auditors, with the full
  real-data diagnostics (exact check values, charts of real against synthetic rows).
- ``Audience.RECIPIENT``: the release datasheet, and everything else a requester or recipient can
  read. It carries statistics of the synthetic rows, verdicts, and real-data figures only when they
  are coarsened so that one row cannot move them visibly (``docs/release.md``).

To add a section: add a field here (with a default, so every builder and test still works), fill
it in ``audits.facts``, write ``templates/datasheets/sections/<name>.html`` and list it in
``audits.datasheets.context.SECTIONS``; the numbering follows.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

Moment = dt.datetime | dt.date | str | None


class Audience(StrEnum):
    INTERNAL = "internal"
    RECIPIENT = "recipient"


@dataclass
class PlatformFacts:
    name: str = "Synthgate"
    version: str = ""


@dataclass
class RequestFacts:
    id: int | str
    purpose: str
    justification: str = ""
    requester: str = "—"
    recipient: str = "—"
    submitted_at: Moment = None


@dataclass
class ApprovalFacts:
    approver: str
    role: str
    decision: str
    decided_at: Moment
    comment: str = ""


@dataclass
class LedgerEntryFacts:
    at: Moment
    kind: str
    epsilon: Any
    delta: Any
    note: str = ""


@dataclass
class BudgetFacts:
    total_epsilon: Any
    total_delta: Any
    remaining_epsilon: Any
    remaining_delta: Any
    entries: list[LedgerEntryFacts] = field(default_factory=list)


@dataclass
class GeneratorFacts:
    name: str
    version: str = ""
    job_id: int | str | None = None
    started_at: Moment = None
    finished_at: Moment = None
    parameters: dict[str, Any] = field(default_factory=dict)


@dataclass
class SeedPolicyFacts:
    mode: str
    seed: int | None = None
    note: str | None = None


@dataclass
class VersionFacts:
    dataset: str
    version: str | int
    hash: str
    n_rows: int | str | None = None
    #: "sha256" (content hash), or "hmac-sha256" (a real version's keyed fingerprint, for recipients)
    hash_kind: str = "sha256"
    n_columns: int | None = None
    format: str = ""


@dataclass
class DictionaryRowFacts:
    """One column of the release: type, role, whether its domain was declared or estimated with DP."""

    column: str
    type: str
    role: str
    domain: str
    missing_share: str


@dataclass
class IntroducedValueFacts:
    """Rows of one column holding values the DP domain may have introduced (``other``, missing)."""

    column: str
    other_rows: int
    missing_rows: int


@dataclass
class PrivacyFacts:
    epsilon: float | None
    delta: float | None
    mechanism: str
    accountant: str


@dataclass
class AssuranceFacts:
    """The latest ``synthgate assure`` run of the generator version that made the synthetic rows."""

    run_id: int | None
    generator: str
    generator_version: str
    statement: str
    status: str = ""
    epsilon: float | None = None
    delta: float | None = None
    epsilon_lower_bound: float | None = None
    mu_ratio: float | None = None
    runs: int | None = None
    n_rows: int | None = None
    run_at: Moment = None


@dataclass
class DpCeilingRowFacts:
    attack: str
    fpr_level: float
    fpr_display: str
    tpr: float | None
    tpr_low: float | None
    ceiling: float | None
    contradicted: bool


@dataclass
class DpCeilingFacts:
    """Each membership attack's TPR beside the ceiling e^ε·FPR + δ that the DP claim allows."""

    verdict: str
    passed: bool | None
    rows: list[DpCeilingRowFacts] = field(default_factory=list)
    # True: each row's ceiling is the one judged (at the upper limit of the FPR the threshold reached on
    # the real non-members); False (recipients): the ceiling at the nominal FPR, a function of (ε, δ) alone
    judged_ceiling: bool = True


@dataclass
class CheckFacts:
    name: str
    category: str
    value: Any
    threshold: Any
    direction: str
    baseline: Any
    verdict: str
    note: str = ""


@dataclass
class PositiveControlFacts:
    passed: bool
    description: str
    outcome: str = ""


@dataclass
class ShareFacts:
    label: str
    real: float | None
    released: float
    real_display: str | None = None


@dataclass
class RebalancingFacts:
    column: str
    reason: str
    shares: list[ShareFacts] = field(default_factory=list)


@dataclass
class UsesFacts:
    intended: list[str] = field(default_factory=list)
    prohibited: list[str] = field(default_factory=list)


@dataclass
class DistributionFacts:
    recipient: str = "—"
    channel: str = "not released"
    terms: str = "—"
    expires_at: Moment = None


@dataclass
class MaintenanceFacts:
    contact: str = "—"
    retention: str = "—"
    errata: str = ""


@dataclass
class SignatureFacts:
    signer: str = ""
    reason: str = ""
    location: str = ""


@dataclass
class AcceptedCheckFacts:
    """One failed check an approver accepted, with the reason given for that check."""

    name: str
    reason: str


@dataclass
class RiskAcceptanceFacts:
    approver: str
    decided_at: Moment
    checks: list[AcceptedCheckFacts] = field(default_factory=list)


@dataclass
class ReleaseFacts:
    """Who let the synthetic version out, to whom, under which terms, until when."""

    id: int | str
    released_by: str
    released_at: Moment
    recipient: str
    purpose: str
    terms: str
    expires_at: Moment
    version_hash: str
    despite_failed_checks: bool = False


@dataclass
class AuditFacts:
    id: int | str
    status: str
    seed: int | None = None
    kind: str = ""
    failed_checks: list[str] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)


@dataclass
class DatasheetFacts:
    """Everything one datasheet states. ``audience`` decides which real-data figures it may hold."""

    title: str
    audience: Audience
    request: RequestFacts
    source: VersionFacts
    synthetic: VersionFacts
    generator: GeneratorFacts
    privacy: PrivacyFacts
    checks: list[CheckFacts]
    threat_model: str = ""
    assurance: AssuranceFacts | None = None
    dp_ceiling: DpCeilingFacts | None = None
    distance_diagnostics: str = ""
    generated_at: Moment = None
    platform: PlatformFacts = field(default_factory=PlatformFacts)
    approvals: list[ApprovalFacts] = field(default_factory=list)
    budget: BudgetFacts | None = None
    seed_policy: SeedPolicyFacts | None = None
    library_versions: dict[str, str] = field(default_factory=dict)
    preprocessing: list[str] = field(default_factory=list)
    dictionary: list[DictionaryRowFacts] = field(default_factory=list)
    introduced_values: list[IntroducedValueFacts] = field(default_factory=list)
    positive_control: PositiveControlFacts | None = None
    rebalancing: RebalancingFacts | None = None
    charts: dict[str, str] = field(default_factory=dict)
    uses: UsesFacts = field(default_factory=UsesFacts)
    distribution: DistributionFacts = field(default_factory=DistributionFacts)
    maintenance: MaintenanceFacts = field(default_factory=MaintenanceFacts)
    signature: SignatureFacts = field(default_factory=SignatureFacts)
    # The latest signed audit-log checkpoint (governance.services.checkpoints: length, hash, at, signer).
    audit_log_checkpoint: dict[str, Any] | None = None
    audit: AuditFacts | None = None
    release: ReleaseFacts | None = None
    risk_acceptances: list[RiskAcceptanceFacts] = field(default_factory=list)

    @property
    def is_release(self) -> bool:
        return self.release is not None
