"""Golden values for the zCDP accounting used by the marginal-based generators (no database)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.optimize import minimize_scalar

from synth_engine.privacy import (
    ZCDPAccountant,
    cdp_delta,
    cdp_epsilon,
    cdp_rho,
    exponential_epsilon,
    exponential_mechanism,
    exponential_rho,
    gaussian_rho,
    gaussian_sigma,
    sparse_threshold,
)


def test_gaussian_mechanism_costs_one_over_two_sigma_squared() -> None:
    assert gaussian_rho(1.0) == 0.5
    assert gaussian_rho(10.0) == pytest.approx(0.005)
    assert gaussian_rho(2.0, sensitivity=2.0) == pytest.approx(0.5)
    assert gaussian_sigma(gaussian_rho(7.5)) == pytest.approx(7.5)


def test_exponential_mechanism_costs_epsilon_squared_over_eight() -> None:
    assert exponential_rho(1.0) == 0.125
    assert exponential_rho(0.2) == pytest.approx(0.005)
    assert exponential_epsilon(exponential_rho(0.3)) == pytest.approx(0.3)


def test_conversion_matches_hand_computed_tight_value_and_beats_classic_bound() -> None:
    rho, delta = 0.5, 1e-5
    classic = rho + 2 * math.sqrt(rho * math.log(1 / delta))  # Bun & Steinke 2016, Prop. 1.3
    tight = cdp_epsilon(rho, delta)
    assert classic == pytest.approx(5.298526, abs=1e-6)
    assert tight == pytest.approx(4.728387, abs=1e-5)  # golden value (CKS 2020, Cor. 13)
    assert tight < classic


def test_conversion_agrees_with_an_independent_minimisation_over_alpha() -> None:
    rho, epsilon = 0.5, 4.728387

    def log_delta(alpha: float) -> float:
        return (alpha - 1) * (alpha * rho - epsilon) + alpha * math.log1p(-1 / alpha) - math.log(alpha - 1)

    best = minimize_scalar(log_delta, bounds=(1.001, 200), method="bounded")
    assert cdp_delta(rho, epsilon) == pytest.approx(math.exp(best.fun), rel=1e-4)
    assert cdp_delta(rho, epsilon) == pytest.approx(1e-5, rel=1e-4)


@pytest.mark.parametrize("epsilon", [0.1, 1.0, 3.0, 10.0])
@pytest.mark.parametrize("delta", [1e-5, 1e-8])
def test_planned_rho_never_converts_to_more_than_the_target(epsilon: float, delta: float) -> None:
    rho = cdp_rho(epsilon, delta)
    assert cdp_delta(rho, epsilon) <= delta
    assert cdp_epsilon(rho, delta) <= epsilon * (1 + 1e-12)
    assert cdp_epsilon(rho * 1.01, delta) > epsilon


def test_golden_rho_for_epsilon_one() -> None:
    assert cdp_rho(1.0, 1e-5) == pytest.approx(0.0305566, rel=1e-5)


def test_zero_rho_is_free() -> None:
    assert cdp_delta(0.0, 1.0) == 0.0
    assert cdp_epsilon(0.0, 1e-5) == 0.0


def test_accountant_sums_costs_and_round_trips_through_a_dict() -> None:
    accountant = ZCDPAccountant()
    accountant.add_gaussian("one_way", sigma=10.0, count=4)
    accountant.add_exponential("selection", epsilon=0.2, count=3)
    accountant.add_thresholded_gaussian("domain", sigma=5.0, delta=1e-7)
    assert accountant.rho == pytest.approx(4 * 0.005 + 3 * 0.005 + 0.02)
    assert accountant.approximate_delta == pytest.approx(1e-7)
    restored = ZCDPAccountant.from_dict(accountant.to_dict())
    assert restored.rho == accountant.rho
    assert restored.epsilon(1e-5) == accountant.epsilon(1e-5)
    assert accountant.epsilon(1e-5) == pytest.approx(cdp_epsilon(accountant.rho, 1e-5 - 1e-7))
    details = accountant.details(1e-5)
    assert details["measurements"] == 8
    assert details["stages"]["one_way"]["sigma"] == [10.0]


def test_accountant_refuses_a_delta_below_what_thresholds_spent() -> None:
    accountant = ZCDPAccountant()
    accountant.add_thresholded_gaussian("domain", sigma=5.0, delta=1e-5)
    with pytest.raises(ValueError, match="delta"):
        accountant.epsilon(1e-6)


def test_sparse_threshold_leaks_a_single_row_with_probability_delta() -> None:
    sigma, delta = 4.0, 1e-3
    rng = np.random.default_rng(0)
    leaks = (1 + rng.normal(0, sigma, 400_000) > sparse_threshold(sigma, delta)).mean()
    assert leaks == pytest.approx(delta, rel=0.15)


def test_exponential_mechanism_prefers_high_scores_more_as_epsilon_grows() -> None:
    scores = np.array([0.0, 10.0, 20.0])
    rng = np.random.default_rng(0)
    low = np.mean([exponential_mechanism(scores, 0.01, rng) == 2 for _ in range(2000)])
    high = np.mean([exponential_mechanism(scores, 2.0, rng) == 2 for _ in range(2000)])
    assert low < 0.45
    assert high > 0.99
