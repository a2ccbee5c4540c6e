"""The audit: every check on one release, plus positive controls that prove the privacy checks
could have caught a leak.

A positive control is the synthetic table with ``control_share`` of its rows replaced by verbatim
training rows. The re-identification and the membership checks run again on it; a family of
checks that does not fail on its control has shown no power on this data, so the run is
``inconclusive`` and cannot pass. The default share is 5 %: in the calibration
(bench/bench_calibration.py, 20 seeds each of adult and caravan, full splits and 2,000-row slices)
both families caught it in every clean run, the membership attacks on their own (TPR at 1 % FPR
about 0.06 against 0.01), whereas at 1 % the expected TPR (about 0.02 against 0.01) cannot be
told from chance with 1,000 non-members, so a 1 % control would make good releases
inconclusive by bad luck rather than by a powerless audit. (A 1 % leak is still flagged, by the
exact-copy checks.)

Verdict: ``fail`` if any gating check fails (``blocked`` if one of them is blocking), else
``inconclusive`` if a control was missed, else ``pass``. Results are deterministic given
``random_state``.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

import numpy as np
import pandas as pd
from threadpoolctl import threadpool_limits

from audits.metrics.attacks import Targets, attack_checks
from audits.metrics.base import MEMBERSHIP, REIDENTIFICATION, CheckResult, to_plain
from audits.metrics.bias import bias_checks
from audits.metrics.context import AuditData, SyntheticRows, plant_copies
from audits.metrics.encoding import TableSchema, neighbour_jobs
from audits.metrics.explain import explain_missed_control
from audits.metrics.fidelity import fidelity_checks
from audits.metrics.membership import Candidates, membership_checks
from audits.metrics.power import scored_members
from audits.metrics.reidentification import (
    dcr_check,
    exact_copies_check,
    k_anonymity_checks,
    unique_row_reproduction_check,
)
from audits.metrics.utility import fit_models, utility_checks

_Out = TypeVar("_Out")

PASS, FAIL, INCONCLUSIVE = "pass", "fail", "inconclusive"
DEFAULT_CONTROL_SHARE = 0.05


@dataclass
class ControlResult:
    """A positive control: which family, how many rows were planted, and whether it was caught."""

    family: str
    share: float
    n_planted: int
    caught: bool
    caught_by: list[str]
    checks: list[CheckResult]
    explanation: str = ""  # when not caught: why, in plain words, and what to change

    def to_dict(self) -> dict[str, Any]:
        return {
            "family": self.family,
            "share": self.share,
            "n_planted": self.n_planted,
            "caught": self.caught,
            "caught_by": self.caught_by,
            "explanation": self.explanation,
            "checks": [c.to_dict() for c in self.checks],
        }


@dataclass
class AuditResult:
    """Overall verdict, per-check results, positive controls and seconds per step."""

    verdict: str
    blocked: bool
    checks: list[CheckResult]
    controls: list[ControlResult]
    timings: dict[str, float] = field(default_factory=dict)
    random_state: int = 0

    @property
    def flagged(self) -> bool:
        return self.verdict != PASS

    @property
    def privacy_flagged(self) -> bool:
        """A re-identification or membership check failed."""
        return any(c.failed and c.category in (REIDENTIFICATION, MEMBERSHIP) for c in self.checks)

    @property
    def failed_checks(self) -> list[str]:
        return [c.name for c in self.checks if c.failed]

    def check(self, name: str) -> CheckResult:
        return next(c for c in self.checks if c.name == name)

    def to_dict(self) -> dict[str, Any]:
        return to_plain(
            {
                "verdict": self.verdict,
                "blocked": self.blocked,
                "privacy_flagged": self.privacy_flagged,
                "failed_checks": self.failed_checks,
                "random_state": self.random_state,
                "timings": self.timings,
                "checks": [c.to_dict() for c in self.checks],
                "controls": [c.to_dict() for c in self.controls],
            }
        )


class _Timer:
    def __init__(self) -> None:
        self.timings: dict[str, float] = {}

    def run(self, step: str, work: Callable[[], _Out]) -> _Out:
        start = time.perf_counter()
        out = work()
        self.timings[step] = self.timings.get(step, 0.0) + time.perf_counter() - start
        if isinstance(out, list):
            for result in out:
                if isinstance(result, CheckResult):
                    result.seconds = self.timings[step] / max(len(out), 1)
        return out


def privacy_checks(
    data: AuditData,
    synthetic: SyntheticRows,
    targets: Targets,
    candidates: Candidates,
    *,
    seeds: list[int],
    thresholds: dict | None,
    timer: _Timer,
    suffix: str = "",
    privacy_claim: tuple[float, float] | None = None,
) -> tuple[list[CheckResult], list[CheckResult]]:
    """Re-identification and membership checks of one synthetic table."""
    reid = timer.run(
        f"reidentification{suffix}",
        lambda: [
            exact_copies_check(data, synthetic, thresholds),
            unique_row_reproduction_check(data, synthetic, thresholds),
        ],
    )
    reid += timer.run(
        f"attacks{suffix}",
        lambda: attack_checks(data, synthetic, targets, random_state=seeds[0], thresholds=thresholds),
    )
    membership = timer.run(
        f"membership{suffix}",
        lambda: membership_checks(data, synthetic, candidates, thresholds=thresholds, privacy_claim=privacy_claim),
    )
    return reid, membership


def run_audit(
    train: pd.DataFrame,
    holdout: pd.DataFrame,
    synthetic: pd.DataFrame,
    schema: dict[str, Any],
    thresholds: dict[str, float | None] | None = None,
    random_state: int = 0,
    *,
    released: pd.DataFrame | None = None,
    control_share: float = DEFAULT_CONTROL_SHARE,
    n_targets: int = 2000,
    n_candidates: int = 5000,
    privacy_only: bool = False,
    with_controls: bool = True,
    n_threads: int = 1,
    n_jobs: int | None = None,
    fidelity_noise: dict[str, float] | None = None,
    privacy_claim: tuple[float, float] | None = None,
    bias_noise: dict[str, float] | None = None,
) -> AuditResult:
    """Run every check on ``synthetic`` and the positive controls; see the module docstring.

    Parameters
    ----------
    train, holdout, synthetic : DataFrame
        Rows the generator trained on, real rows it never saw, and its output; all carry the
        schema's columns.
    schema : dict
        ``{"columns": [{"name", "type", "role", ...}]}``.
    thresholds : dict, optional
        Check name to threshold, overriding :data:`audits.metrics.base.CHECK_SPECS`.
    random_state : int
        Seeds every sampled quantity (targets, members, controls, models).
    released : DataFrame, optional
        A further frame (e.g. a rebalanced release) reported next to real and synthetic in the
        bias checks.
    control_share : float
        Share of synthetic rows replaced by verbatim training rows in the positive control.
    n_targets, n_candidates : int
        Targets per side of the Anonymeter attacks; most members (= non-members) the
        membership attacks score (never more than the synthetic rows, see
        :mod:`audits.metrics.power`).
    privacy_only : bool
        Run only the re-identification and membership checks (calibration runs).
    with_controls : bool
        Run the positive controls; without them a run that would pass is ``inconclusive``.
    privacy_claim : (epsilon, delta), optional
        The DP guarantee the generator reported; each membership attack's low-FPR TPR is held
        against the ceiling e^ε·FPR + δ it implies (``membership_dp_ceiling``).
    n_threads : int
        BLAS and OpenMP threads. One by default: on a shared two-core machine two spinning
        threads per library were measured 1.5-20x slower than one, and results do not change.
    fidelity_noise : dict, optional
        The generator's predicted noise error per fidelity check
        (:func:`audits.metrics.prediction.predict_noise`); with the holdout's sampling floor it
        calibrates the fidelity limits. Without it the floor alone does.
    bias_noise : dict, optional
        Per protected column, the generator's predicted noise per cell of the (label, column)
        table in training rows (``NoisePrediction.cell_noise``); with the group sizes and rates
        it calibrates the bias limits. Without it sampling alone does.
    n_jobs : int, optional
        Threads for the nearest-neighbour searches (each searches a share of the queries with
        single-threaded BLAS); ``None`` or ``0``: every core the process may use. Results do
        not depend on it.
    """
    with threadpool_limits(limits=n_threads), neighbour_jobs(n_jobs):
        return _run_audit(
            train,
            holdout,
            synthetic,
            schema,
            thresholds,
            random_state,
            released=released,
            control_share=control_share,
            n_targets=n_targets,
            n_candidates=n_candidates,
            privacy_only=privacy_only,
            with_controls=with_controls,
            fidelity_noise=fidelity_noise,
            privacy_claim=privacy_claim,
            bias_noise=bias_noise,
        )


def _run_audit(
    train: pd.DataFrame,
    holdout: pd.DataFrame,
    synthetic: pd.DataFrame,
    schema: dict[str, Any],
    thresholds: dict[str, float | None] | None,
    random_state: int,
    *,
    released: pd.DataFrame | None,
    control_share: float,
    n_targets: int,
    n_candidates: int,
    privacy_only: bool,
    with_controls: bool,
    fidelity_noise: dict[str, float] | None,
    privacy_claim: tuple[float, float] | None,
    bias_noise: dict[str, float] | None = None,
) -> AuditResult:
    table = TableSchema.from_dict(schema)
    for frame, what in ((train, "train"), (holdout, "holdout"), (synthetic, "synthetic")):
        table.check_frame(frame, what)
    timer = _Timer()
    data = timer.run("prepare", lambda: AuditData.prepare(train, holdout, table))
    rows = timer.run("prepare", lambda: data.synthetic(synthetic))
    return audit_rows(
        data,
        rows,
        thresholds,
        random_state,
        released=released,
        control_share=control_share,
        n_targets=n_targets,
        n_candidates=n_candidates,
        privacy_only=privacy_only,
        with_controls=with_controls,
        timer=timer,
        fidelity_noise=fidelity_noise,
        privacy_claim=privacy_claim,
        bias_noise=bias_noise,
    )


def audit_rows(
    data: AuditData,
    rows: SyntheticRows,
    thresholds: dict[str, float | None] | None,
    random_state: int,
    *,
    released: pd.DataFrame | None = None,
    control_share: float = DEFAULT_CONTROL_SHARE,
    n_targets: int = 2000,
    n_candidates: int = 5000,
    privacy_only: bool = False,
    with_controls: bool = True,
    timer: _Timer | None = None,
    fidelity_noise: dict[str, float] | None = None,
    privacy_claim: tuple[float, float] | None = None,
    bias_noise: dict[str, float] | None = None,
) -> AuditResult:
    """:func:`run_audit` on prepared rows (calibration audits many variants of one table: a
    variant built with :func:`audits.metrics.context.replace_rows` reuses its parent's
    nearest-neighbour searches)."""
    timer = timer or _Timer()
    seeds = [int(s) for s in np.random.SeedSequence(random_state).generate_state(6)]
    targets = Targets.draw(data, n_targets, seeds[1])
    n_members = scored_members(len(rows.frame), len(data.train), len(data.holdout), n_candidates)
    key = ("candidates", n_members, seeds[2])
    if key not in data.memo:
        data.memo[key] = timer.run("membership", lambda: Candidates.draw(data, n_members, seeds[2]))
    candidates = data.memo[key]
    checks = (
        []
        if privacy_only
        else quality_checks(
            data,
            rows,
            released=released,
            seeds=seeds,
            thresholds=thresholds,
            timer=timer,
            fidelity_noise=fidelity_noise,
            bias_noise=bias_noise,
        )
    )
    reid, membership = privacy_checks(
        data, rows, targets, candidates, seeds=seeds, thresholds=thresholds, timer=timer, privacy_claim=privacy_claim
    )
    checks += reid
    checks += timer.run("reidentification", lambda: k_anonymity_checks(data, rows, thresholds))
    checks += timer.run("dcr", lambda: [dcr_check(data, rows, random_state=seeds[4], thresholds=thresholds)])
    checks += membership
    controls = (
        timer.run(
            "controls",
            lambda: positive_controls(
                data, rows, targets, candidates, share=control_share, seeds=seeds, thresholds=thresholds, timer=timer
            ),
        )
        if with_controls
        else []
    )
    return AuditResult(
        _verdict(checks, controls),
        any(c.failed and c.blocking for c in checks),
        checks,
        controls,
        {k: round(v, 3) for k, v in timer.timings.items()},
        random_state,
    )


def quality_checks(
    data: AuditData,
    rows: SyntheticRows,
    *,
    released: pd.DataFrame | None,
    seeds: list[int],
    thresholds: dict | None,
    timer: _Timer,
    fidelity_noise: dict[str, float] | None = None,
    bias_noise: dict[str, float] | None = None,
) -> list[CheckResult]:
    """Fidelity (calibrated to the holdout's sampling floor and the predicted noise), utility
    and bias checks (calibrated to the group sizes and rates and the predicted noise) of one
    synthetic table."""
    table = data.schema
    checks = timer.run(
        "fidelity",
        lambda: fidelity_checks(data.train, rows.frame, table, thresholds, holdout=data.holdout, noise=fidelity_noise),
    )
    models = timer.run("utility", lambda: fit_models(data.train, data.holdout, rows.frame, table, seeds[3] % 2**31))
    checks += timer.run("utility", lambda: utility_checks(models, thresholds=thresholds, random_state=seeds[3]))
    checks += timer.run(
        "bias",
        lambda: bias_checks(
            data.train,
            data.holdout,
            rows.frame,
            table,
            models,
            released=released,
            thresholds=thresholds,
            cell_noise=bias_noise,
            random_state=seeds[3] % 2**31,
        ),
    )
    return checks


def positive_controls(
    data: AuditData,
    rows: SyntheticRows,
    targets: Targets,
    candidates: Candidates,
    *,
    share: float,
    seeds: list[int],
    thresholds: dict | None,
    timer: _Timer,
) -> list[ControlResult]:
    """Plant ``share`` verbatim training rows and rerun the privacy checks on the copy."""
    planted = plant_copies(data, rows, share, seeds[5], pool=candidates.members)
    reid, membership = privacy_checks(
        data, planted, targets, candidates, seeds=seeds, thresholds=thresholds, timer=_Timer()
    )
    n_planted = len(planted.planted) if planted.planted is not None else 0
    controls = []
    for family, results in ((REIDENTIFICATION, reid), (MEMBERSHIP, membership)):
        caught_by = [c.name for c in results if c.failed]
        control = ControlResult(family, share, n_planted, bool(caught_by), caught_by, results)
        if not control.caught:
            control.explanation = explain_missed_control(data, planted, candidates, control, thresholds)
        controls.append(control)
    return controls


def _verdict(checks: list[CheckResult], controls: list[ControlResult]) -> str:
    if any(c.failed for c in checks):
        return FAIL
    if not controls or not all(c.caught for c in controls):
        return INCONCLUSIVE
    return PASS
