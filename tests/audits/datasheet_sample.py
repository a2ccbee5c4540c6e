"""A realistic, fully deterministic set of typed datasheet facts (UCI Adult-like), for tests and the benchmark.

Test fixture data: it lives with the tests, not in the product package. Facts from a real run come
from ``audits.facts.datasheet_facts`` (tested in ``tests/audits/test_datasheet_real_run.py``). The
sections that follow from stored records (generator, seed policy, privacy, rebalancing, positive
control) and the platform's fixed statements are built here by the same functions from records
written the way a job and an audit write them (``audits.datasheets.records``), so the sample
cannot disagree with a real run there; the rest (people, dates, checks) is invented.
"""

from __future__ import annotations

import datetime as dt
import math
from typing import Any

from audits.datasheets import charts
from audits.datasheets.facts import (
    ApprovalFacts,
    Audience,
    BudgetFacts,
    CheckFacts,
    DatasheetFacts,
    DistributionFacts,
    LedgerEntryFacts,
    RequestFacts,
    VersionFacts,
)
from audits.datasheets.records import (
    DIRECTIONS,
    DISTANCE_DIAGNOSTICS,
    THREAT_MODEL,
    generator_facts,
    maintenance_facts,
    platform_facts,
    positive_control_facts,
    privacy_facts,
    rebalancing_facts,
    seed_policy_facts,
    signature_facts,
    uses_facts,
)

ADULT_COLUMNS = [
    "age",
    "workclass",
    "fnlwgt",
    "education",
    "education-num",
    "marital-status",
    "occupation",
    "relationship",
    "race",
    "sex",
    "capital-gain",
    "capital-loss",
    "hours-per-week",
    "native-country",
    "income",
]
_CATEGORICAL = {
    "workclass": [
        "Private",
        "Self-emp-not-inc",
        "Local-gov",
        "State-gov",
        "Self-emp-inc",
        "Federal-gov",
        "Without-pay",
    ],
    "education": [
        "HS-grad",
        "Some-college",
        "Bachelors",
        "Masters",
        "Assoc-voc",
        "11th",
        "Assoc-acdm",
        "10th",
        "7th-8th",
        "Prof-school",
        "9th",
        "12th",
        "Doctorate",
        "5th-6th",
        "1st-4th",
        "Preschool",
    ],
    "marital-status": ["Married-civ-spouse", "Never-married", "Divorced", "Separated", "Widowed"],
    "race": ["White", "Black", "Asian-Pac-Islander", "Amer-Indian-Eskimo", "Other"],
    "sex": ["Male", "Female"],
    "income": ["<=50K", ">50K"],
}
_NUMERIC = {"age": (17, 90), "hours-per-week": (1, 99), "education-num": (1, 16)}
ORGANISATION = "Acme Health"
LIBRARY_VERSIONS = {
    "synthgate": "0.1.0",
    "numpy": "2.4.6",
    "pandas": "2.3.3",
    "mbi": "2.0.0",
    "opacus": "1.6.0",
    "torch": "2.13.0",
    "scikit-learn": "1.9.1",
}


def sample_lineage(*, epsilon: float | None = 3.0, rebalanced: bool = True) -> dict[str, Any]:
    """The synthetic version's lineage record, with the keys a job writes (``synth_engine.services``)."""
    lineage: dict[str, Any] = {
        "source_version": 3,
        "source_hash": "9f2c" * 16,
        "job": 881,
        "generator": "mst",
        "parameters": {
            "epsilon": epsilon,
            "delta": 1e-6,
            "max_cells": 10000,
            "degree": 2,
            "n_rows": 30000,
            "rebalance_column": "income" if rebalanced else None,
        },
        "seed_policy": "cryptographic",
        "seed": None,
        "epsilon_spent": epsilon,
        "delta_spent": 1e-6 if epsilon is not None else 0.0,
        "accountant": {"epsilon": epsilon, "delta": 1e-6, "accountant": "zCDP", "details": {"rho": 0.27}},
        "library_versions": LIBRARY_VERSIONS,
        "generator_version": "5d41" * 16,
        "train_version": 4,
        "holdout_version": 5,
        "request": 42,
        "non_private": epsilon is None,
    }
    if rebalanced:
        lineage["rebalance"] = {
            "column": "income",
            "notice": "equal class shares requested for classifier training",
            "real_shares": {"<=50K": 0.759, ">50K": 0.241},
            "released_shares": {"<=50K": 0.5, ">50K": 0.5},
        }
    return lineage


# The audit run's positive controls, with the keys an audit writes (``audits.metrics.suite``).
SAMPLE_CONTROLS = [
    {
        "family": "exact copies",
        "share": 0.05,
        "n_planted": 50,
        "caught": True,
        "caught_by": ["exact_match_share", "distance_to_closest_record"],
        "explanation": "",
        "checks": [],
    }
]


def sample_datasheet_facts(
    *,
    n_checks: int = 30,
    epsilon: float | None = 3.0,
    rebalanced: bool = True,
    with_charts: bool = True,
    audience: Audience = Audience.INTERNAL,
) -> DatasheetFacts:
    """Facts as a datasheet service would gather them; ``epsilon=None`` describes a non-private release."""
    when = dt.datetime(2026, 3, 2, 9, 30, tzinfo=dt.UTC)
    lineage = sample_lineage(epsilon=epsilon, rebalanced=rebalanced)
    generator = generator_facts(lineage, requested_parameters={})
    generator.started_at, generator.finished_at = when, when + dt.timedelta(minutes=4)
    return DatasheetFacts(
        title="Synthetic Adult income extract for fairness research",
        audience=audience,
        generated_at=when + dt.timedelta(hours=2),
        platform=platform_facts(),
        request=RequestFacts(
            id="REQ-2026-0042",
            purpose="Benchmark income classifiers for disparate impact",
            justification="The fairness team needs row-level data to reproduce bias metrics; real census "
            "rows may not leave the secure enclave.",
            requester="Dana Reyes (Fairness research)",
            recipient="Fairness research team, Lisbon",
            submitted_at=when - dt.timedelta(days=6),
        ),
        approvals=[
            ApprovalFacts(
                approver="Ola Nordmann",
                role="Data steward",
                decision="approved",
                decided_at=when - dt.timedelta(days=4),
                comment="Purpose matches registered purpose P-7.",
            ),
            ApprovalFacts(
                approver="Kim Lee",
                role="Privacy officer",
                decision="approved",
                decided_at=when - dt.timedelta(days=3),
                comment="ε ≤ 3 per release agreed.",
            ),
        ],
        budget=BudgetFacts(
            total_epsilon=10.0,
            total_delta=1e-5,
            remaining_epsilon=4.0,
            remaining_delta=8e-6,
            entries=[
                LedgerEntryFacts(
                    at=when - dt.timedelta(days=40),
                    kind="spend",
                    epsilon=3.0,
                    delta=1e-6,
                    note="REQ-2026-0017 release v1",
                ),
                LedgerEntryFacts(
                    at=when,
                    kind="spend",
                    epsilon=epsilon if epsilon is not None else math.inf,
                    delta=1e-6,
                    note="REQ-2026-0042 (this release)",
                ),
            ],
        ),
        generator=generator,
        seed_policy=seed_policy_facts(lineage),
        library_versions=lineage["library_versions"],
        source=VersionFacts(dataset="adult", version="v3 (source)", hash="9f2c" * 16, n_rows=32561, n_columns=15),
        synthetic=VersionFacts(
            dataset="adult",
            version="v7 (synthetic)",
            hash="4be1" * 16,
            n_rows=30000,
            n_columns=15,
            format="CSV (UTF-8)",
        ),
        preprocessing=[
            "Dropped direct identifiers declared in the schema (none in this source).",
            "Clipped numeric columns to the public bounds declared in the schema.",
            'Mapped categories rarer than the DP threshold to "other".',
        ],
        privacy=privacy_facts(lineage),
        threat_model=THREAT_MODEL,
        distance_diagnostics=DISTANCE_DIAGNOSTICS,
        checks=sample_checks(n_checks),
        positive_control=positive_control_facts(SAMPLE_CONTROLS),
        rebalancing=rebalancing_facts(lineage.get("rebalance")),
        uses=uses_facts(["Training and testing classifiers; measuring disparate impact."]),
        distribution=DistributionFacts(
            recipient="Fairness research team, Lisbon",
            channel="Synthgate download, TLS",
            terms="Internal research use under data-sharing agreement DSA-12",
            expires_at=dt.date(2027, 3, 2),
        ),
        maintenance=maintenance_facts(ORGANISATION),
        signature=signature_facts(reason="audit #12", organisation=ORGANISATION),
        charts=sample_charts() if with_charts else {},
    )


def sample_checks(n_checks: int) -> list[CheckFacts]:
    """``n_checks`` per-column checks, all passing except one marginal warning, plus a utility check."""
    kinds = [
        ("KS complement: {}", "fidelity", DIRECTIONS["higher_is_better"], 0.85, 0.12),
        ("TV complement: {}", "fidelity", DIRECTIONS["higher_is_better"], 0.85, 0.12),
        ("Exact-match share: {}", "privacy", DIRECTIONS["lower_is_better"], 0.01, 0.008),
        ("DCR 5th-percentile ratio: {}", "privacy", DIRECTIONS["higher_is_better"], 0.8, 0.3),
    ]
    checks = []
    for k in range(n_checks):
        name, category, direction, threshold, spread = kinds[k % len(kinds)]
        sign = 1 if direction == DIRECTIONS["higher_is_better"] else -1
        margin = -0.05 if k == 5 else 0.2 + 0.8 * (1 + math.cos(k)) / 2
        checks.append(
            CheckFacts(
                name=name.format(ADULT_COLUMNS[k % len(ADULT_COLUMNS)]),
                category=category,
                value=round(threshold + sign * spread * margin, 4),
                threshold=threshold,
                direction=direction,
                baseline=0.5 if category == "fidelity" else None,
                verdict="warn" if k == 5 else "pass",
            )
        )
    checks.append(
        CheckFacts(
            name="TSTR ROC AUC (income)",
            category="utility",
            value=0.861,
            threshold=0.8,
            direction=DIRECTIONS["higher_is_better"],
            baseline=0.905,
            verdict="pass",
            note="Baseline: train-real, test-real.",
        )
    )
    return checks


def sample_charts() -> dict[str, str]:
    columns = []
    for index, (name, categories) in enumerate(_CATEGORICAL.items()):
        real = [1000 / (k + 1) ** 1.3 for k in range(len(categories))]
        synthetic = [v * (1 + 0.15 * math.sin(k + index)) for k, v in enumerate(real)]
        columns.append(
            {"name": name, "kind": "categorical", "categories": categories, "real": real, "synthetic": synthetic}
        )
    for index, (name, (low, high)) in enumerate(_NUMERIC.items()):
        edges = [low + (high - low) * k / 12 for k in range(13)]
        real = [math.exp(-((k - 4 - index) ** 2) / 8) for k in range(12)]
        synthetic = [math.exp(-((k - 4.4 - index) ** 2) / 9) for k in range(12)]
        columns.append({"name": name, "kind": "numeric", "bin_edges": edges, "real": real, "synthetic": synthetic})
    n = len(ADULT_COLUMNS)
    matrix = [
        [0.0 if i == j else round(0.005 + 0.03 * abs(math.sin(i + j + i * j)), 3) for j in range(n)] for i in range(n)
    ]
    for i, j in ((0, 4), (3, 4), (6, 7)):  # a few pairs the generator preserved poorly
        matrix[i][j] = matrix[j][i] = 0.11 + 0.01 * i
    roc = [(k / 20, min(1.0, (k / 20) ** 0.9)) for k in range(21)]
    synthetic_distances = [-math.log(1 - (k + 0.5) / 2000) * 1.1 for k in range(2000)]
    holdout_distances = [-math.log(1 - (k + 0.5) / 2000) for k in range(2000)]
    return {
        "marginals": charts.marginals_chart(columns),
        "associations": charts.association_heatmap(ADULT_COLUMNS, matrix),
        "roc": charts.roc_chart(roc, auc=0.523, label="membership attack"),
        "distances": charts.distance_histogram(synthetic_distances, holdout_distances),
    }
