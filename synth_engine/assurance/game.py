"""The distinguishing game that tests a generator's DP claim (pure numeric, no Django).

For each canary kind: fit the generator ``runs`` times on D and ``runs`` times on
D′ = D + canary (fresh seeds every time, the same public schema in both worlds), sample a
table from every fit, score each table with every attack statistic, and turn the two score
samples into a Clopper–Pearson lower bound on ε (:mod:`synth_engine.assurance.bounds`).
The error probability α is shared (Bonferroni) over canaries, attacks, thresholds and
directions, so the reported bound holds with probability ≥ 1 − α for the whole report.

A lower bound above the claimed ε means the claim is false. A bound at or below it means
only that these attacks, with this many runs, could not refute it: the game reports, it
never certifies. With ``runs`` fits per world the largest bound it can reach is about
log(runs / log(1/α′)), so a few dozen runs can only catch gross violations (copied rows, a
value that cannot occur without the canary); subtle ones need thousands of fits.
"""

from __future__ import annotations

import math
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from synth_engine.assurance.attacks import ATTACKS, AttackContext, attack_scores
from synth_engine.assurance.bounds import (
    GameBound,
    best_bound,
    clopper_pearson_upper,
    epsilon_from_rates,
    theoretical_mu,
)
from synth_engine.assurance.canaries import CANARY_KINDS, Canary, make_canary, with_canary
from synth_engine.assurance.sampling import observe_opacus_sampling, poisson_sampling_check
from synth_engine.generators.base import Generator, GeneratorError, PrivacySpent

REFERENCE_TABLE = Path(__file__).resolve().parents[2] / "sample_data" / "adult.csv.gz"
REFERENCE_COLUMNS = ("age", "workclass", "education", "sex", "hours-per-week", "income")
REFERENCE_NUMERIC = ("age", "hours-per-week")
REFERENCE_LABEL = "income"
EPSILON_TOLERANCE = 1e-9
DEFAULT_ROWS = 1000
DEFAULT_RUNS = 50
# dp-tvae trains a network per fit: the game runs with fewer runs, on fewer rows, with a small
# network and two epochs (privacy-relevant settings -- Poisson sampling, clipping, accounting --
# are the generator's own); a stored run's parameters say exactly what was tested.
PRESETS: dict[str, dict[str, Any]] = {
    "dp-tvae": {
        "n_rows": 400,
        "runs": 10,
        "parameters": {"epochs": 2, "batch_size": 100, "hidden_dims": [32], "embedding_dim": 8},
    },
}  # a fit may report at most the claim (plus float rounding)


class NonPrivateGeneratorError(ValueError):
    """The generator makes no DP claim (ε = ∞), so there is nothing to test."""


@dataclass(frozen=True)
class AttackResult:
    """One attack statistic on one canary: its best test and the score means per world."""

    attack: str
    bound: GameBound
    mean_absent: float
    mean_present: float

    def to_dict(self) -> dict[str, Any]:
        return {
            "attack": self.attack,
            "mean_absent": _finite(self.mean_absent),
            "mean_present": _finite(self.mean_present),
            **self.bound.to_dict(),
        }


@dataclass(frozen=True)
class CanaryResult:
    """Every attack on one canary, and the strongest of them."""

    canary: Canary
    attacks: list[AttackResult]
    refusals: dict[str, int]
    seconds: float

    @property
    def strongest(self) -> AttackResult:
        return max(self.attacks, key=lambda result: (result.bound.epsilon_lower_bound, result.bound.mu_estimate))

    def to_dict(self) -> dict[str, Any]:
        strongest = self.strongest
        return {
            **self.canary.to_dict(),
            "epsilon_lower_bound": strongest.bound.epsilon_lower_bound,
            "strongest_attack": strongest.attack,
            "mu_estimate": strongest.bound.mu_estimate,
            "mu_lower_bound": strongest.bound.mu_lower_bound,
            "refusals": self.refusals,
            "seconds": round(self.seconds, 3),
            "attacks": [result.to_dict() for result in self.attacks],
        }


@dataclass(frozen=True)
class AssuranceReport:
    """The outcome of one ``assure`` run: figures per canary and attack, and the verdict."""

    generator: str
    params: dict[str, Any]
    epsilon: float
    delta: float
    runs: int
    n_rows: int
    alpha: float
    canaries: list[CanaryResult]
    theoretical_mu: float
    largest_reported_epsilon: float
    sampling: dict[str, Any]
    seconds: float
    notes: list[str] = field(default_factory=list)

    @property
    def epsilon_lower_bound(self) -> float:
        return max(result.strongest.bound.epsilon_lower_bound for result in self.canaries)

    @property
    def mu_estimate(self) -> float:
        return max(result.strongest.bound.mu_estimate for result in self.canaries)

    @property
    def reachable_epsilon(self) -> float:
        """The largest bound this many runs could show: a perfect split on one threshold at the
        report's per-statistic error (what ``runs`` can resolve, not a property of the generator)."""
        alpha = self.alpha / (len(self.canaries) * len(ATTACKS)) / 4  # one threshold, two directions, two rates
        upper = clopper_pearson_upper(0, self.runs, alpha)
        return epsilon_from_rates(upper, upper, self.delta)

    @property
    def mu_lower_bound(self) -> float:
        return max(result.strongest.bound.mu_lower_bound for result in self.canaries)

    @property
    def mu_ratio(self) -> float:
        """Measured Gaussian-DP μ (its Clopper–Pearson lower bound, so the many tests tried do
        not inflate it) over the μ the claimed (ε, δ) corresponds to. Above 1 is a warning
        sign; an (ε, δ) mechanism need not be μ-GDP, so the verdict rests on ε alone."""
        return self.mu_lower_bound / self.theoretical_mu

    @property
    def failures(self) -> list[str]:
        """Why the claim is contradicted (empty when nothing refuted it)."""
        reasons = [
            f"{result.canary.kind}: {result.strongest.attack} gives "
            f"ε ≥ {result.strongest.bound.epsilon_lower_bound:.3f} > claimed {self.epsilon:g}"
            for result in self.canaries
            if result.strongest.bound.epsilon_lower_bound > self.epsilon
        ]
        if self.largest_reported_epsilon > self.epsilon + EPSILON_TOLERANCE:
            reasons.append(f"a fit reported ε = {self.largest_reported_epsilon:.6g} above the target {self.epsilon:g}")
        if not self.sampling.get("passed", True):
            reasons.append(f"DP-SGD sampling does not match its accounting: {self.sampling['reason']}")
        return reasons

    @property
    def passed(self) -> bool:
        return not self.failures

    def to_dict(self) -> dict[str, Any]:
        return {
            "generator": self.generator,
            "params": self.params,
            "epsilon": self.epsilon,
            "delta": self.delta,
            "runs": self.runs,
            "n_rows": self.n_rows,
            "alpha": self.alpha,
            "passed": self.passed,
            "failures": self.failures,
            "epsilon_lower_bound": self.epsilon_lower_bound,
            "reachable_epsilon": self.reachable_epsilon,
            "mu_estimate": self.mu_estimate,
            "mu_lower_bound": self.mu_lower_bound,
            "theoretical_mu": self.theoretical_mu,
            "mu_ratio": self.mu_ratio,
            "largest_reported_epsilon": self.largest_reported_epsilon,
            "sampling": self.sampling,
            "seconds": round(self.seconds, 3),
            "notes": self.notes,
            "canaries": [result.to_dict() for result in self.canaries],
        }


def reference_table(n_rows: int) -> tuple[pd.DataFrame, dict[str, Any]]:
    """The public table the game runs on: the first ``n_rows`` rows of the bundled UCI Adult
    sample, six mixed-type columns, with a schema that declares types and the label only, so
    every domain (categories, numeric bounds) goes through the generator's private estimation,
    the path where published audits found leaks."""
    frame = pd.read_csv(REFERENCE_TABLE, dtype=str, keep_default_na=False, usecols=list(REFERENCE_COLUMNS))
    frame = frame[list(REFERENCE_COLUMNS)].head(n_rows).reset_index(drop=True)
    for column in REFERENCE_NUMERIC:
        frame[column] = pd.to_numeric(frame[column]).astype("int64")
    schema = {"columns": [_schema_column(column) for column in REFERENCE_COLUMNS]}
    return frame, schema


def assure_generator(
    make_generator: Callable[[], Generator],
    *,
    frame: pd.DataFrame,
    schema: dict[str, Any],
    epsilon: float,
    delta: float,
    runs: int,
    canary_kinds: tuple[str, ...] = CANARY_KINDS,
    alpha: float = 0.05,
    seed: int = 0,
    progress: Callable[[int, int], None] | None = None,
) -> AssuranceReport:
    """Play the distinguishing game for the generator ``make_generator`` builds (fresh per fit).

    Raises :class:`NonPrivateGeneratorError` for a generator without a DP claim and
    ``ValueError`` for ``runs`` < 2 or a table that cannot hold a canary kind.
    """
    probe = make_generator()
    if not type(probe).is_private:
        raise NonPrivateGeneratorError(
            f"{type(probe).name} is not differentially private (ε = ∞): there is no claim to test; "
            "it is only offered to purposes that allow non-private generators"
        )
    if runs < 2:
        raise ValueError(f"runs must be at least 2 per world, got {runs}")
    started = time.perf_counter()
    numeric = [c["name"] for c in schema["columns"] if c["type"] in ("integer", "float")]
    statistic_alpha = alpha / (len(canary_kinds) * len(ATTACKS))
    game = _Game(make_generator, schema, epsilon, delta, runs, seed, progress, 2 * runs * len(canary_kinds))
    results = []
    for index, kind in enumerate(canary_kinds):
        canary = make_canary(kind, frame, schema)
        canary_started = time.perf_counter()
        scores, refusals = game.play(index, frame, canary, AttackContext.prepare(frame, canary, numeric))
        results.append(_canary_result(canary, scores, refusals, delta, statistic_alpha, canary_started))
    return AssuranceReport(
        generator=type(probe).name,
        params=_params(probe),
        epsilon=float(epsilon),
        delta=float(delta),
        runs=runs,
        n_rows=len(frame),
        alpha=alpha,
        canaries=results,
        theoretical_mu=theoretical_mu(epsilon, delta),
        largest_reported_epsilon=max(game.reported_epsilons, default=0.0),
        sampling=poisson_sampling_check(game.fits),
        seconds=time.perf_counter() - started,
    )


@dataclass
class _Game:
    """The fits of one ``assure`` run: plays each canary's two worlds and keeps what every fit
    reported (its ε, its sample rate and the loaders Opacus handed it)."""

    make_generator: Callable[[], Generator]
    schema: dict[str, Any]
    epsilon: float
    delta: float
    runs: int
    seed: int
    progress: Callable[[int, int], None] | None
    total: int
    done: int = 0
    refusal_reason: str = ""
    reported_epsilons: list[float] = field(default_factory=list)
    fits: list[dict[str, Any]] = field(default_factory=list)

    def play(
        self, index: int, frame: pd.DataFrame, canary: Canary, context: AttackContext
    ) -> tuple[dict[str, dict[str, list[float]]], dict[str, int]]:
        scores: dict[str, dict[str, list[float]]] = {attack: {"absent": [], "present": []} for attack in ATTACKS}
        refusals = {"absent": 0, "present": 0}
        for world, data in (("absent", frame), ("present", with_canary(frame, canary))):
            for run in range(self.runs):
                fit_seed = int(np.random.SeedSequence([self.seed, index, world == "present", run]).generate_state(1)[0])
                with observe_opacus_sampling() as observation:
                    outcome = _play_once(
                        self.make_generator, data, self.schema, self.epsilon, self.delta, fit_seed, len(frame), context
                    )
                if isinstance(outcome, str):
                    refusals[world] += 1
                    self.refusal_reason = outcome
                else:
                    self.reported_epsilons.append(outcome[1].epsilon)
                    rate = outcome[1].details.get("sample_rate")
                    self.fits.append({"world": world, "loaders": observation.loaders, "reported_sample_rate": rate})
                for attack in ATTACKS:
                    scores[attack][world].append(-math.inf if isinstance(outcome, str) else outcome[0][attack])
                self.done += 1
                if self.progress is not None:
                    self.progress(self.done, self.total)
        if refusals["absent"] == refusals["present"] == self.runs:
            raise ValueError(f"the generator refused every fit, so there is nothing to compare: {self.refusal_reason}")
        return scores, refusals


def _play_once(
    make_generator: Callable[[], Generator],
    data: pd.DataFrame,
    schema: dict[str, Any],
    epsilon: float,
    delta: float,
    seed: int,
    n_output_rows: int,
    context: AttackContext,
) -> tuple[dict[str, float], PrivacySpent] | str:
    """One fit and sample, scored; the refusal message when the generator refused the data (an
    outcome the attacker sees too, scored below every table)."""
    generator = make_generator()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            generator.fit(data, schema, epsilon, delta, random_state=seed)
        except GeneratorError as error:
            return str(error)
        synthetic = generator.sample(n_output_rows)
    return attack_scores(context, synthetic), generator.privacy_spent()


def _canary_result(
    canary: Canary,
    scores: dict[str, dict[str, list[float]]],
    refusals: dict[str, int],
    delta: float,
    alpha: float,
    started: float,
) -> CanaryResult:
    attacks = []
    for attack in ATTACKS:
        absent, present = np.array(scores[attack]["absent"]), np.array(scores[attack]["present"])
        attacks.append(AttackResult(attack, best_bound(absent, present, delta, alpha), _mean(absent), _mean(present)))
    return CanaryResult(canary, attacks, refusals, time.perf_counter() - started)


def _schema_column(name: str) -> dict[str, Any]:
    kind = "integer" if name in REFERENCE_NUMERIC else "categorical"
    if name == REFERENCE_LABEL:  # a label's domain is declared (issue 11.7): the task's two classes
        return {"name": name, "type": kind, "role": "label", "categories": ["<=50K", ">50K"]}
    return {"name": name, "type": kind, "role": "other"}


def _params(generator: Generator) -> dict[str, Any]:
    get_params = getattr(generator, "get_params", None)
    return dict(get_params()) if callable(get_params) else {}


def _mean(values: np.ndarray) -> float:
    finite = values[np.isfinite(values)]
    return float(finite.mean()) if len(finite) else math.nan


def _finite(value: float) -> float | None:
    return value if math.isfinite(value) else None
