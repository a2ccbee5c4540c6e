"""A purpose's policy: the JSON block of audit thresholds, validated against a schema.

Later checks read these keys; an unknown key or a value out of range is refused at
the edge so a typo cannot silently disable a check.
"""

from __future__ import annotations

import math
from typing import Any

import jsonschema

from core.errors import ValidationError

_UNIT = {"type": "number", "minimum": 0, "maximum": 1}
_COUNT = {"type": "integer", "minimum": 0}

AUDIT_THRESHOLDS_SCHEMA: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "fidelity_tvd_1way_max": _UNIT,
        "fidelity_tvd_2way_max": _UNIT,
        "fidelity_association_diff_max": _UNIT,
        "utility_auc_ratio_min": _UNIT,
        "utility_minority_recall_ratio_min": {"type": "number", "minimum": 0},
        "exact_copies_max": _COUNT,
        "unique_qi_copies_max": _COUNT,
        "k_anonymity_min": {"type": "integer", "minimum": 1},
        "l_diversity_min": {"type": "integer", "minimum": 1},
        "singling_out_risk_max": _UNIT,
        "linkability_risk_max": _UNIT,
        "inference_risk_max": _UNIT,
        "membership_auc_max": {"type": "number", "minimum": 0.5, "maximum": 1},
        "membership_tpr_at_1pct_fpr_max": _UNIT,
        "disparate_impact_min": _UNIT,
        "statistical_parity_diff_max": _UNIT,
        "equal_opportunity_diff_max": _UNIT,
        "drift_psi_max": {"type": "number", "minimum": 0},
        "drift_js_max": _UNIT,
        "drift_association_max": _UNIT,
    },
}

DEFAULT_AUDIT_THRESHOLDS: dict[str, Any] = {
    "fidelity_tvd_1way_max": 0.1,
    "fidelity_tvd_2way_max": 0.2,
    "utility_auc_ratio_min": 0.85,
    "unique_qi_copies_max": 0,
    "membership_auc_max": 0.6,
    "singling_out_risk_max": 0.1,
    "linkability_risk_max": 0.1,
    "inference_risk_max": 0.2,
    "drift_psi_max": 0.2,
}


def audit_thresholds_validate(thresholds: Any) -> dict[str, Any]:
    """Return the thresholds if they match the schema; otherwise name the offending key."""
    validator = jsonschema.Draft202012Validator(AUDIT_THRESHOLDS_SCHEMA)
    errors = sorted(validator.iter_errors(thresholds), key=lambda error: list(error.path))
    if errors:
        first = errors[0]
        where = ".".join(str(part) for part in first.path) or "audit_thresholds"
        raise ValidationError(f"audit_thresholds: {where}: {first.message}",
                              extra={"field": "audit_thresholds", "problems": [error.message for error in errors]})
    # NaN passes every minimum and maximum above (all comparisons are false) and would disable
    # its check silently; infinities cannot be stored in PostgreSQL's jsonb.
    for key, value in thresholds.items():
        if isinstance(value, float) and not math.isfinite(value):
            raise ValidationError(f"audit_thresholds: {key}: {value!r} is not a finite number",
                                  extra={"field": "audit_thresholds", "problems": [f"{key} is not finite"]})
    return dict(thresholds)
