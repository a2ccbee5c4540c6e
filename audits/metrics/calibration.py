"""Leak scenarios for calibrating the privacy thresholds (used by the calibration test and
bench/bench_calibration.py).

From one clean synthetic table: ``clean``; ``copies_1pct`` and ``copies_5pct`` (that share of
synthetic rows replaced by verbatim training rows); ``unique_row`` (one synthetic row replaced by
a training row that is unique on its quasi-identifiers and absent from the holdout). The
targets: 5 % blocked in every seed, 1 % flagged in at least 17 of 20, the unique row blocked,
clean flagged in at most 1 of 20.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from audits.metrics.context import AuditData, SyntheticRows, replace_rows
from audits.metrics.encoding import TableSchema, row_keys
from audits.metrics.suite import AuditResult, audit_rows

SCENARIOS = ("clean", "copies_1pct", "copies_5pct", "unique_row")


def qi_unique_rows(data: AuditData) -> np.ndarray:
    """Positions of training rows unique on the quasi-identifiers and absent from the holdout."""
    keys = row_keys(data.train, data.schema.with_role("quasi_identifier"))
    _, inverse, counts = np.unique(keys, return_inverse=True, return_counts=True)
    absent = ~np.isin(data.train_keys, data.holdout_keys)
    return np.flatnonzero((counts[inverse] == 1) & absent)


def scenario_rows(data: AuditData, clean: SyntheticRows, random_state: int) -> dict[str, SyntheticRows]:
    """The four calibration scenarios built from one clean synthetic table (random positions
    replaced by training rows drawn without replacement)."""
    rng = np.random.default_rng(random_state)
    n = len(clean.frame)
    tables = {"clean": clean}
    for name, share in (("copies_1pct", 0.01), ("copies_5pct", 0.05)):
        count = max(1, round(share * n))
        sources = rng.choice(len(data.train), count, replace=False)
        tables[name] = replace_rows(data, clean, np.sort(rng.choice(n, count, replace=False)), sources)
    unique = rng.choice(qi_unique_rows(data), 1)
    tables["unique_row"] = replace_rows(data, clean, rng.choice(n, 1), unique)
    return tables


@dataclass
class ScenarioOutcome:
    dataset: str
    seed: int
    scenario: str
    verdict: str
    blocked: bool
    privacy_flagged: bool
    failed_checks: list[str]
    controls_caught: bool | None
    statistics: dict[str, tuple[float | None, float | None, float | None]]


def run_scenarios(
    dataset: str,
    train: pd.DataFrame,
    holdout: pd.DataFrame,
    synthetic: pd.DataFrame,
    schema: dict[str, Any],
    seed: int,
    **audit_options: Any,
) -> list[ScenarioOutcome]:
    """Privacy audit of every scenario (positive controls only on the clean table, where they
    decide between pass and inconclusive; on the leaky tables a failing check decides)."""
    outcomes = []
    data = AuditData.prepare(train, holdout, TableSchema.from_dict(schema))
    clean = data.synthetic(synthetic)
    for name, rows in scenario_rows(data, clean, seed).items():
        result: AuditResult = audit_rows(
            data, rows, None, seed, privacy_only=True, with_controls=name == "clean", **audit_options
        )
        caught = all(c.caught for c in result.controls) if result.controls else None
        statistics = {c.name: (c.value, c.ci_low, c.ci_high) for c in result.checks}
        for control in result.controls:
            statistics |= {f"control:{c.name}": (c.value, c.ci_low, c.ci_high) for c in control.checks}
        outcomes.append(
            ScenarioOutcome(
                dataset,
                seed,
                name,
                result.verdict,
                result.blocked,
                result.privacy_flagged,
                result.failed_checks,
                caught,
                statistics,
            )
        )
    return outcomes


def count_outcomes(outcomes: list[ScenarioOutcome]) -> dict[tuple[str, str], dict[str, int]]:
    """Per (dataset, scenario): runs, blocked, privacy-flagged, inconclusive."""
    counts: dict[tuple[str, str], dict[str, int]] = {}
    for o in outcomes:
        entry = counts.setdefault((o.dataset, o.scenario), {"runs": 0, "blocked": 0, "flagged": 0, "inconclusive": 0})
        entry["runs"] += 1
        entry["blocked"] += o.blocked
        entry["flagged"] += o.privacy_flagged
        entry["inconclusive"] += o.verdict == "inconclusive"
    return counts
