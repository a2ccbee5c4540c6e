"""The datasheet facts that follow from stored JSON records alone (a synthetic version's lineage,
an audit run's positive controls), and the platform's fixed statements.

Pure (no Django): ``audits.facts.datasheet_facts`` (the one builder, over the records) and the
tests' sample facts (``tests/audits/datasheet_sample.py``, over records written the way a job and an
audit write them) both build these sections here, so the two cannot disagree.
"""

from __future__ import annotations

import math
from typing import Any

from audits.datasheets.facts import (
    GeneratorFacts,
    MaintenanceFacts,
    PlatformFacts,
    PositiveControlFacts,
    PrivacyFacts,
    RebalancingFacts,
    SeedPolicyFacts,
    ShareFacts,
    SignatureFacts,
    UsesFacts,
)

PLATFORM_VERSION = "0.1.0"
MISSING_LABEL = "(missing)"
DIRECTIONS = {"higher_is_better": "higher is better", "lower_is_better": "lower is better"}
SIGNER = "platform signing key"
THREAT_MODEL = (
    "The adversary holds the released synthetic table and arbitrary auxiliary knowledge, including full "
    "records of some people in the source, and tries to single out, link or infer attributes of people in "
    "the source, or to tell whether a given person's record was used in training. The (ε, δ) guarantee is "
    "for neighbouring tables that differ by adding or removing one person's row, so the number of rows is "
    "not public either: the generators never use the exact count, only a differentially private estimate "
    "charged to the ledger (its 'rows' stage), and what a requester read before filing (the predicted "
    "audit, a refusal of too small a size) was computed from the source version's own DP row estimate, "
    "drawn once at registration and charged to the same ledger."
)
DISTANCE_DIAGNOSTICS = (
    "Distance to closest record (DCR) and the nearest-neighbour distance ratio (NNDR) are reported as "
    "diagnostics, never as a privacy verdict: a large distance does not show that a record is protected "
    "(a model can leak a rare person's attributes without reproducing their row, and distances shrink "
    "for everyone in dense regions), and a small one does not show a leak (common rows recur by chance). "
    "They bound no adversary. The privacy verdict rests on the differential-privacy guarantee, on "
    "membership and re-identification attacks measured against a held-out control, and on the ceiling "
    "that guarantee puts on every membership attack."
)
POSITIVE_CONTROL = (
    "The re-identification and membership checks were run again on a copy "
    "of the synthetic set with verbatim training rows planted in it; they must flag it."
)
PROHIBITED_USES = [
    "Re-identifying, contacting or making decisions about any individual.",
    "Linking with other data to recover records of the source.",
    "Use beyond the approved purpose or by recipients other than the named one.",
]


def platform_facts() -> PlatformFacts:
    return PlatformFacts(name="Synthgate", version=PLATFORM_VERSION)


def generator_facts(lineage: dict[str, Any], *, requested_parameters: dict[str, Any]) -> GeneratorFacts:
    """The generator that made the rows; ``requested_parameters`` when the lineage records none."""
    name = lineage.get("generator", "external")
    return GeneratorFacts(
        name=name,
        # The generator's own version (recorded in the lineage), never the platform's.
        version="" if name == "external" else str(lineage.get("generator_version") or ""),
        job_id=lineage.get("job"),
        parameters=lineage.get("parameters") or requested_parameters,
    )


def seed_policy_facts(lineage: dict[str, Any]) -> SeedPolicyFacts:
    mode = lineage.get("seed_policy", "cryptographic")
    if mode == "reproducible":
        note = (
            "A fixed seed was requested for reproducibility: the same inputs give the same output. The seed is "
            "keyed with the platform's secret before any noise is drawn, so whoever chose it cannot compute the noise."
        )
    else:
        note = (
            "Noise came from pseudo-random generators seeded from the operating system's secure random "
            "source; the seed was not recorded."
        )
    return SeedPolicyFacts(mode=mode, seed=lineage.get("seed"), note=note)


def privacy_facts(lineage: dict[str, Any]) -> PrivacyFacts:
    accountant = lineage.get("accountant") or {}
    epsilon = lineage.get("epsilon_spent")
    if lineage.get("generator") == "external":
        return PrivacyFacts(
            epsilon=math.inf,
            delta=None,
            mechanism="unknown (made outside Synthgate)",
            accountant="none: no privacy guarantee is known",
        )
    return PrivacyFacts(
        epsilon=math.inf if epsilon is None else epsilon,
        delta=lineage.get("delta_spent"),
        mechanism=lineage.get("generator", "—"),
        accountant=accountant.get("accountant", "—"),
    )


def rebalancing_facts(record: dict[str, Any] | None, *, real_shown: bool = True) -> RebalancingFacts | None:
    """The lineage's ``rebalance`` record: the training rows' exact class shares beside the
    release's, or (``real_shown`` false, for a recipient) the release's only: the source's shares
    are statistics of the real rows."""
    if not record:
        return None
    shown = set(record["real_shares"]) if real_shown else set(record.get("target_shares") or {})
    labels = sorted(shown | set(record["released_shares"]))
    return RebalancingFacts(
        column=record["column"],
        reason=record["notice"],
        shares=[
            ShareFacts(
                label=MISSING_LABEL if label in ("", "nan", "None") else label,
                real=record["real_shares"].get(label, 0.0) if real_shown else None,
                real_display=None if real_shown else "not disclosed",
                released=record["released_shares"].get(label, 0.0),
            )
            for label in labels
        ],
    )


def uses_facts(intended: list[str]) -> UsesFacts:
    return UsesFacts(intended=intended, prohibited=list(PROHIBITED_USES))


def maintenance_facts(organisation: str) -> MaintenanceFacts:
    return MaintenanceFacts(
        contact=organisation + " data stewards",
        retention="Kept while any release of it is active; the audit log is permanent.",
        errata="Scheduled drift audits re-check active releases against new source versions.",
    )


def signature_facts(*, reason: str, organisation: str) -> SignatureFacts:
    return SignatureFacts(signer=SIGNER, reason=reason, location=organisation)


def positive_control_facts(controls: list[dict[str, Any]]) -> PositiveControlFacts:
    """An audit run's ``controls`` record (for a recipient, as ``audits.recipient.recipient_control``
    cuts it: no copies counted, no explanation's figures): every planted family must have been caught."""
    caught = bool(controls) and all(control["caught"] for control in controls)
    outcome = (
        "; ".join(
            (
                f"{c['family']}: {c['n_planted']} verbatim training rows planted ({c['share']:.0%}) — "
                if c.get("n_planted") is not None
                else f"{c['family']}: verbatim training rows planted as {c['share']:.0%} of the set — "
            )
            + ("caught by " + ", ".join(c["caught_by"]) if c["caught"] else "NOT caught. " + c.get("explanation", ""))
            for c in controls
        )
        or "no positive control ran"
    )
    return PositiveControlFacts(passed=caught, description=POSITIVE_CONTROL, outcome=outcome)
