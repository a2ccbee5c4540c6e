"""What the audit will make of a request, asked before the request is filed.

Filing refuses a size at which the audit could only end inconclusive, and the request form,
API and CLI show the predicted audit. The answers come from the audits app, which governance
must not import (the arrows point from audits to governance): audits registers an
:class:`AuditPlanner` in its ``AppConfig.ready``, and governance asks it through
:func:`audit_planner`.
"""

from __future__ import annotations

from typing import Any, Protocol


class AuditPlanner(Protocol):
    def require_decidable(
        self, *, source_rows: int, holdout_fraction: float, thresholds: dict[str, Any], n_rows: int
    ) -> None:
        """Raise ``ValidationError`` (field ``n_rows``) when the audit cannot decide at this size."""

    def outlook(
        self,
        *,
        schema: dict[str, Any],
        source_rows: int,
        holdout_fraction: float,
        thresholds: dict[str, Any],
        epsilon: float,
        delta: float,
        n_rows: int,
        generator: str,
        generator_params: dict[str, Any],
        disclose_rows: bool,
    ) -> dict[str, Any]:
        """The predicted audit of a clean release as plain JSON values; ``disclose_rows=False``
        leaves out every figure that gives back the (private) number of real rows."""


_planner: AuditPlanner | None = None


def audit_planner_register(planner: AuditPlanner) -> None:
    global _planner
    _planner = planner


def audit_planner() -> AuditPlanner:
    if _planner is None:
        raise RuntimeError("no audit planner is registered (is the audits app installed?)")
    return _planner
