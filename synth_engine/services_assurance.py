"""Privacy assurance runs: play the distinguishing game against a generator and keep the result.

The game (:mod:`synth_engine.assurance`) runs on the bundled public Adult sample, so nothing
here touches a customer's data or spends budget, and every stored figure is public. A run
whose ε lower bound exceeds the claim is stored as failed: the result is reported, never
turned into a certificate.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

from django.contrib.auth.models import User
from django.db import transaction

from core.errors import PermissionDeniedError, ValidationError
from governance.models import Role
from governance.permissions import user_has_role
from governance.services import audit_event_record
from synth_engine.assurance.canaries import CANARY_KINDS
from synth_engine.assurance.game import (
    DEFAULT_ROWS,
    DEFAULT_RUNS,
    PRESETS,
    NonPrivateGeneratorError,
    assure_generator,
    reference_table,
)
from synth_engine.assurance.version import generator_version
from synth_engine.generators import GENERATORS, Generator, GeneratorError, get_generator
from synth_engine.models import AssuranceRun, AssuranceStatus


def assurance_run_start(
    *,
    actor: User,
    generator: str,
    epsilon: float,
    delta: float = 1e-5,
    runs: int | None = None,
    n_rows: int | None = None,
    parameters: dict[str, Any] | None = None,
    canaries: tuple[str, ...] = CANARY_KINDS,
    progress: Callable[[int, int], None] | None = None,
    generator_factory: Callable[[], Generator] | None = None,
) -> AssuranceRun:
    """Play the game for ``generator`` at (ε, δ) and store the result (stewards and auditors).

    ``generator_factory`` replaces the registry lookup (used to test the game on generators
    that are deliberately not registered).
    """
    if not (actor.is_superuser or user_has_role(actor, Role.STEWARD, Role.AUDITOR)):
        raise PermissionDeniedError("Only stewards and auditors run privacy assurance.")
    preset = PRESETS.get(generator, {})
    runs = preset.get("runs", DEFAULT_RUNS) if runs is None else runs
    n_rows = preset.get("n_rows", DEFAULT_ROWS) if n_rows is None else n_rows
    parameters = dict(preset.get("parameters", {}) if parameters is None else parameters)
    _check_inputs(generator, epsilon, delta, runs, n_rows, canaries)
    make = generator_factory or _registered(generator, parameters)
    frame, schema = reference_table(n_rows)
    try:
        report = assure_generator(
            make,
            frame=frame,
            schema=schema,
            epsilon=epsilon,
            delta=delta,
            runs=runs,
            canary_kinds=canaries,
            progress=progress,
        )
    except NonPrivateGeneratorError as error:
        raise ValidationError(str(error), code="non_private", extra={"generator": generator}) from error
    except ValueError as error:  # every fit refused, or a table that cannot hold a canary
        raise ValidationError(str(error), extra={"generator": generator}) from error
    return _record(actor, generator, type(make()), parameters, report.to_dict())


def _record(actor: User, generator: str, cls: type, parameters: dict[str, Any], report: dict[str, Any]) -> AssuranceRun:
    with transaction.atomic():
        run = AssuranceRun.objects.create(
            generator=generator,
            generator_version=generator_version(cls),
            parameters=parameters,
            epsilon=report["epsilon"],
            delta=report["delta"],
            runs=report["runs"],
            n_rows=report["n_rows"],
            status=AssuranceStatus.PASSED if report["passed"] else AssuranceStatus.FAILED,
            epsilon_lower_bound=report["epsilon_lower_bound"],
            mu_ratio=report["mu_ratio"],
            seconds=report["seconds"],
            report=report,
            run_by=actor,
        )
        audit_event_record(
            actor=actor,
            action="assurance.run",
            obj=run,
            after={"generator": generator, "status": run.status, "epsilon_lower_bound": run.epsilon_lower_bound},
        )
    return run


def _registered(generator: str, parameters: dict[str, Any]) -> Callable[[], Generator]:
    try:
        get_generator(generator, **parameters)
    except GeneratorError as error:
        raise ValidationError(str(error), extra={"generator": generator, "choices": sorted(GENERATORS)}) from error
    return lambda: get_generator(generator, **parameters)


def _check_inputs(generator: str, epsilon: float, delta: float, runs: int, n_rows: int, canaries: tuple) -> None:
    if generator in GENERATORS and not GENERATORS[generator].is_private:
        raise ValidationError(
            f"{generator} is not differentially private (ε = ∞): there is no DP claim to test; it is offered "
            "only to purposes that allow non-private generators.",
            code="non_private",
            extra={"generator": generator},
        )
    if not (isinstance(epsilon, int | float) and math.isfinite(epsilon) and epsilon > 0):
        raise ValidationError(f"epsilon must be a positive finite number, got {epsilon!r}", extra={"field": "epsilon"})
    if not 0 < delta < 1:
        raise ValidationError(f"delta must be in (0, 1), got {delta!r}", extra={"field": "delta"})
    if runs < 2:
        raise ValidationError(f"runs must be at least 2 fits per world, got {runs}", extra={"field": "runs"})
    if not 50 <= n_rows <= 20_000:
        raise ValidationError(f"rows must be between 50 and 20000, got {n_rows}", extra={"field": "rows"})
    unknown = sorted(set(canaries) - set(CANARY_KINDS))
    if unknown or not canaries:
        raise ValidationError(f"unknown canary kind(s) {unknown}; choose from {list(CANARY_KINDS)}")
