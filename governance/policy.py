"""A purpose's policy: the JSON block of audit thresholds, validated against a schema.

The keys are the names of the audit's checks (``audits.metrics.base.CHECK_SPECS``) and each
value is that check's threshold, within the check's range. An unknown key, a value out of
range or a non-finite number is refused at the edge, so a typo cannot silently disable a check.
"""

from __future__ import annotations

import functools
import math
from typing import Any

import jsonschema

from core.errors import ValidationError

# Thresholds that count rows or people are whole numbers.
INTEGER_CHECKS = {"unique_row_reproduction", "k_anonymity", "l_diversity"}


def _threshold_schema(name: str, value_range: tuple[float, float]) -> dict[str, Any]:
    low, high = value_range
    schema: dict[str, Any] = {
        "type": "integer" if name in INTEGER_CHECKS else "number",
        # An attack AUC below 0.5 (worse than guessing) would fail every release.
        "minimum": 0.5 if name.endswith("_auc") else low,
    }
    if math.isfinite(high):
        schema["maximum"] = high
    return schema


# Built on first use: the audit metrics (SciPy, scikit-learn) stay out of every process's start-up.
@functools.cache
def audit_thresholds_schema() -> dict[str, Any]:
    from audits.metrics.base import CHECK_SPECS

    return {
        "type": "object",
        "additionalProperties": False,
        "properties": {name: _threshold_schema(name, spec.value_range) for name, spec in CHECK_SPECS.items()},
    }


def default_audit_thresholds() -> dict[str, Any]:
    """The calibrated defaults a new purpose stores explicitly, so its policy reads in full."""
    from audits.metrics.base import default_thresholds

    return {name: value for name, value in default_thresholds().items() if value is not None}


def audit_thresholds_validate(thresholds: Any) -> dict[str, Any]:
    """Return the thresholds if they match the schema; otherwise name the offending key."""
    validator = jsonschema.Draft202012Validator(audit_thresholds_schema())
    errors = sorted(validator.iter_errors(thresholds), key=lambda error: list(error.path))
    if errors:
        first = errors[0]
        where = ".".join(str(part) for part in first.path) or "audit_thresholds"
        raise ValidationError(
            f"audit_thresholds: {where}: {first.message}",
            extra={"field": "audit_thresholds", "problems": [error.message for error in errors]},
        )
    # NaN passes every minimum and maximum above (all comparisons are false) and would disable
    # its check silently; infinities cannot be stored in PostgreSQL's jsonb.
    for key, value in thresholds.items():
        if isinstance(value, float) and not math.isfinite(value):
            raise ValidationError(
                f"audit_thresholds: {key}: {value!r} is not a finite number",
                extra={"field": "audit_thresholds", "problems": [f"{key} is not finite"]},
            )
    return dict(thresholds)
