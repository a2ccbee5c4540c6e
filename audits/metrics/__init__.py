"""Synthgate's audit checks (pure numeric code: no Django).

``run_audit(train, holdout, synthetic, schema, thresholds, random_state)`` runs every check and
the positive controls and returns an :class:`AuditResult`; each check is a :class:`CheckResult`
whose direction, range and default threshold are listed in :data:`CHECK_SPECS`.
``drift_checks(a, b, schema)`` compares two versions of a table.
"""

from audits.metrics.base import (
    CHECK_SPECS,
    HIGHER_IS_BETTER,
    LOWER_IS_BETTER,
    AttackRates,
    AuditInputError,
    CheckResult,
    CheckSpec,
    default_thresholds,
    wilson_interval,
)
from audits.metrics.drift import drift_checks
from audits.metrics.encoding import TableSchema
from audits.metrics.suite import (
    DEFAULT_CONTROL_SHARE,
    FAIL,
    INCONCLUSIVE,
    PASS,
    AuditResult,
    ControlResult,
    run_audit,
)

__all__ = [
    "CHECK_SPECS",
    "DEFAULT_CONTROL_SHARE",
    "FAIL",
    "HIGHER_IS_BETTER",
    "INCONCLUSIVE",
    "LOWER_IS_BETTER",
    "PASS",
    "AttackRates",
    "AuditInputError",
    "AuditResult",
    "CheckResult",
    "CheckSpec",
    "ControlResult",
    "TableSchema",
    "default_thresholds",
    "drift_checks",
    "run_audit",
    "wilson_interval",
]
