"""The distinguishing game that tests generators' DP claims (pure, no database, fixed seeds).

The game must refute the claim of a deliberately leaky "DP" generator and must not refute
mst's; its bound must follow the hypothesis-testing inequalities on hand-worked rates.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.stats import binomtest

from synth_engine.assurance.bounds import (
    best_bound,
    clopper_pearson_lower,
    clopper_pearson_upper,
    epsilon_from_rates,
    gdp_delta,
    theoretical_mu,
)
from synth_engine.assurance.canaries import CANARY_KINDS, make_canary, with_canary
from synth_engine.assurance.game import NonPrivateGeneratorError, assure_generator, reference_table
from synth_engine.generators import get_generator
from tests.synth_engine.leaky import CopyingGenerator, UnderNoisedGenerator

DELTA = 1e-5


@pytest.fixture(scope="module")
def table():
    return reference_table(300)


def test_epsilon_from_rates_follows_the_hypothesis_testing_inequalities() -> None:
    # FPR + e^ε FNR ≥ 1 − δ: FPR 0.1, FNR 0.1 force e^ε ≥ 9
    assert epsilon_from_rates(0.1, 0.1, 0.0) == pytest.approx(math.log(9.0))
    assert epsilon_from_rates(0.5, 0.5, 0.0) == 0.0
    assert epsilon_from_rates(0.0, 0.3, 0.0) == math.inf


def test_clopper_pearson_upper_limit_of_zero_successes_is_the_exact_formula() -> None:
    # with no successes in n trials the one-sided limit solves (1 − p)^n = α
    assert clopper_pearson_upper(0, 50, 0.05) == pytest.approx(1 - 0.05 ** (1 / 50), rel=1e-6)
    assert clopper_pearson_upper(50, 50, 0.05) == 1.0
    assert clopper_pearson_lower(0, 50, 0.05) == 0.0
    assert clopper_pearson_lower(50, 50, 0.05) == pytest.approx(0.05 ** (1 / 50), rel=1e-6)
    exact = binomtest(7, 40).proportion_ci(confidence_level=0.9, method="exact").high
    assert clopper_pearson_upper(7, 40, 0.05) == pytest.approx(exact, rel=1e-6)


def test_theoretical_mu_inverts_the_gdp_delta_curve() -> None:
    mu = theoretical_mu(1.0, DELTA)
    assert gdp_delta(1.0, mu) == pytest.approx(DELTA, rel=1e-6)
    assert theoretical_mu(3.0, DELTA) > mu  # more ε, more distinguishability allowed


def test_best_bound_separates_perfectly_split_scores_and_not_identical_ones() -> None:
    split = best_bound(np.zeros(60), np.ones(60), DELTA, alpha=0.05)
    assert split.false_positive_rate == 0.0 and split.false_negative_rate == 0.0
    # one threshold, two directions, two rates each: every limit at α / 4
    upper = clopper_pearson_upper(0, 60, 0.0125)
    assert split.epsilon_lower_bound == pytest.approx(math.log((1 - DELTA - upper) / upper))
    same = best_bound(np.random.default_rng(0).normal(size=60), np.random.default_rng(1).normal(size=60), DELTA, 0.05)
    assert same.epsilon_lower_bound == 0.0


def test_refused_fits_are_an_outcome_the_bound_sees() -> None:
    bound = best_bound(np.full(60, -math.inf), np.zeros(60), DELTA, alpha=0.05)
    assert bound.epsilon_lower_bound > 1.0


def test_each_canary_is_unique_in_d_prime_and_absent_from_d(table) -> None:
    frame, schema = table
    for kind in CANARY_KINDS:
        canary = make_canary(kind, frame, schema)
        assert canary.matches(frame).sum() == 0, kind
        assert canary.matches(with_canary(frame, canary)).sum() == 1, kind


def test_game_detects_a_generator_that_copies_training_rows(table) -> None:
    frame, schema = table
    report = assure_generator(CopyingGenerator, frame=frame, schema=schema, epsilon=1.0, delta=DELTA, runs=40)
    assert not report.passed
    assert 1.0 < report.epsilon_lower_bound <= report.reachable_epsilon
    assert all(result.strongest.bound.epsilon_lower_bound > 1.0 for result in report.canaries)
    assert any("pattern_count" in failure for failure in report.failures)


def test_game_detects_marginals_with_far_too_little_noise(table) -> None:
    frame, schema = table
    report = assure_generator(
        UnderNoisedGenerator,
        frame=frame,
        schema=schema,
        epsilon=1.0,
        delta=DELTA,
        runs=40,
        canary_kinds=("unique_category", "extreme_numeric"),
    )
    assert not report.passed
    assert {result.canary.kind for result in report.canaries if result.strongest.bound.epsilon_lower_bound > 1.0} == {
        "unique_category",
        "extreme_numeric",
    }


def test_game_does_not_flag_mst(table) -> None:
    frame, schema = table
    report = assure_generator(
        lambda: get_generator("mst"), frame=frame, schema=schema, epsilon=1.0, delta=DELTA, runs=10
    )
    assert report.passed, report.failures
    assert report.epsilon_lower_bound <= 1.0
    assert report.largest_reported_epsilon <= 1.0
    assert report.sampling["applies"] is False
    assert report.to_dict()["canaries"][0]["attacks"][0]["attack"] == "pattern_count"


def test_game_refuses_a_non_private_generator(table) -> None:
    frame, schema = table
    with pytest.raises(NonPrivateGeneratorError, match="not differentially private"):
        assure_generator(lambda: get_generator("copula"), frame=frame, schema=schema, epsilon=1.0, delta=DELTA, runs=5)


@pytest.mark.slow
def test_dp_tvae_game_runs_and_checks_poisson_sampling_per_fit(table) -> None:
    frame, schema = table

    def small_tvae():
        return get_generator("dp-tvae", epochs=2, batch_size=100, hidden_dims=(32,), embedding_dim=8)

    report = assure_generator(
        small_tvae, frame=frame, schema=schema, epsilon=4.0, delta=DELTA, runs=2, canary_kinds=("unique_category",)
    )
    loaders = report.sampling["loaders"]
    assert report.sampling["applies"] is True
    assert all(loader["poisson"] and loader["loader"] == "DPDataLoader" for loader in loaders)
    # q = 1/⌈n̂ / 100⌉ from the fit's DP row estimate, not from the exact 300 rows
    assert all(round(1 / loader["sample_rate"]) in (3, 4) for loader in loaders if loader["n_rows"] == 300)
    assert report.largest_reported_epsilon <= 4.0 + 1e-9


def test_sampling_check_flags_a_rate_that_is_a_function_of_the_row_count() -> None:
    from synth_engine.assurance.sampling import poisson_sampling_check

    def fit(world: str, rate: float) -> dict:
        loader = {"loader": "DPDataLoader", "sampler": "UniformWithReplacementSampler", "poisson": True}
        loader |= {"sample_rate": rate, "n_rows": 400, "batch_size_variance": 400 * rate * (1 - rate)}
        return {"world": world, "loaders": [loader], "reported_sample_rate": rate}

    fixed = poisson_sampling_check([fit("absent", 0.25), fit("present", 0.2)])
    assert not fixed["passed"] and "depends on the data" in fixed["reason"]
    randomised = poisson_sampling_check([fit(w, q) for w in ("absent", "present") for q in (0.25, 0.2)])
    assert randomised["passed"], randomised["reason"]
    mismatch = poisson_sampling_check([{**fit("absent", 0.25), "reported_sample_rate": 0.5}])
    assert not mismatch["passed"] and "accounted q=0.5" in mismatch["reason"]
