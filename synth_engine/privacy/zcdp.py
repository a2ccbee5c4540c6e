"""Zero-concentrated differential privacy (zCDP): costs of mechanisms and conversion to (ε, δ).

Pure functions, no state. The neighbouring relation throughout Synthgate's marginal-based
generators is *add or remove one row*, so a count (or a histogram) has L2 sensitivity 1.

References
----------
- Bun & Steinke (2016), "Concentrated Differential Privacy: Simplifications, Extensions, and
  Lower Bounds", Prop. 1.6 (Gaussian mechanism), Lemma 2.3 (composition), Def. 8.1
  (approximate zCDP).
- Cesar & Rogers (2021), "Bounding, Concentrating, and Truncating: Unifying Privacy Loss
  Composition for Data Analytics", Lemma 3.2 (the ε-exponential mechanism is ε-bounded-range,
  hence ε²/8-zCDP).
- Canonne, Kamath & Steinke (2020), "The Discrete Gaussian for Differential Privacy",
  Prop. 12 / Cor. 13 (tight conversion from ρ-zCDP to (ε, δ)-DP), as in the reference
  implementation ``cdp2adp.py`` that ships with Private-PGM 1.x.
"""

from __future__ import annotations

import math

_BISECTION_STEPS = 100
_MIN_ALPHA = 1.01


def gaussian_rho(sigma: float, sensitivity: float = 1.0) -> float:
    """zCDP cost of one Gaussian-mechanism measurement.

    Parameters
    ----------
    sigma : float
        Standard deviation of the added noise (> 0), in the units of the query.
    sensitivity : float
        L2 sensitivity of the query (1 for a histogram under add/remove-one-row).

    Returns
    -------
    float
        ρ = Δ² / (2σ²)  (Bun & Steinke 2016, Prop. 1.6).
    """
    if sigma <= 0:
        raise ValueError(f"sigma must be positive, got {sigma}")
    return sensitivity**2 / (2.0 * sigma**2)


def gaussian_sigma(rho: float, sensitivity: float = 1.0) -> float:
    """Noise scale σ = Δ / sqrt(2ρ) that makes one Gaussian measurement ρ-zCDP (inverse of
    :func:`gaussian_rho`)."""
    if rho <= 0:
        raise ValueError(f"rho must be positive, got {rho}")
    return sensitivity / math.sqrt(2.0 * rho)


def exponential_rho(epsilon: float) -> float:
    """zCDP cost ρ = ε² / 8 of one ε-exponential mechanism (Cesar & Rogers 2021, Lemma 3.2).

    ``epsilon`` is the mechanism's pure-DP parameter: candidates are drawn with probability
    proportional to exp(ε · score / (2Δ)).
    """
    if epsilon < 0:
        raise ValueError(f"epsilon must be non-negative, got {epsilon}")
    return epsilon**2 / 8.0


def exponential_epsilon(rho: float) -> float:
    """Parameter ε = sqrt(8ρ) of an exponential mechanism that costs ρ-zCDP."""
    if rho < 0:
        raise ValueError(f"rho must be non-negative, got {rho}")
    return math.sqrt(8.0 * rho)


def cdp_delta(rho: float, epsilon: float) -> float:
    """Smallest δ such that ρ-zCDP implies (ε, δ)-DP, by the tight conversion.

    Parameters
    ----------
    rho : float
        zCDP parameter (≥ 0).
    epsilon : float
        Target ε (≥ 0).

    Returns
    -------
    float
        δ = inf_{α>1} exp((α−1)(αρ−ε)) / (α−1) · (1 − 1/α)^α
        (Canonne, Kamath & Steinke 2020, Cor. 13). Any α gives a valid bound, so an
        imperfect search can only over-state δ.
    """
    if rho < 0 or epsilon < 0:
        raise ValueError("rho and epsilon must be non-negative")
    if rho == 0:
        return 0.0
    alpha_low, alpha_high = _MIN_ALPHA, (epsilon + 1.0) / (2.0 * rho) + 2.0
    alpha = alpha_low
    for _ in range(_BISECTION_STEPS):
        alpha = (alpha_low + alpha_high) / 2.0
        derivative = (2.0 * alpha - 1.0) * rho - epsilon + math.log1p(-1.0 / alpha)
        if derivative < 0:
            alpha_low = alpha
        else:
            alpha_high = alpha
    log_delta = (alpha - 1.0) * (alpha * rho - epsilon) + alpha * math.log1p(-1.0 / alpha)
    return min(math.exp(log_delta) / (alpha - 1.0), 1.0)


def cdp_epsilon(rho: float, delta: float) -> float:
    """Smallest ε (found by bisection, rounded up) such that ρ-zCDP implies (ε, δ)-DP.

    Never below the true value: the bisection returns the upper end of its bracket, for which
    :func:`cdp_delta` ≤ δ holds. The bracket starts at the classic bound ρ + 2·sqrt(ρ·log(1/δ))
    (Bun & Steinke 2016, Prop. 1.3).
    """
    if not 0 < delta < 1:
        raise ValueError(f"delta must be in (0, 1), got {delta}")
    if rho < 0:
        raise ValueError(f"rho must be non-negative, got {rho}")
    if rho == 0:
        return 0.0
    epsilon_low, epsilon_high = 0.0, rho + 2.0 * math.sqrt(rho * math.log(1.0 / delta))
    for _ in range(_BISECTION_STEPS):
        epsilon = (epsilon_low + epsilon_high) / 2.0
        if cdp_delta(rho, epsilon) <= delta:
            epsilon_high = epsilon
        else:
            epsilon_low = epsilon
    return epsilon_high


def cdp_rho(epsilon: float, delta: float) -> float:
    """Largest ρ (by bisection, rounded down) such that ρ-zCDP implies (ε, δ)-DP.

    Used to plan a fit: spending at most this ρ keeps the reported ε at or below the target.
    """
    if epsilon <= 0:
        raise ValueError(f"epsilon must be positive, got {epsilon}")
    if not 0 < delta < 1:
        raise ValueError(f"delta must be in (0, 1), got {delta}")
    rho_low, rho_high = 0.0, epsilon + 1.0
    for _ in range(_BISECTION_STEPS):
        rho = (rho_low + rho_high) / 2.0
        if cdp_delta(rho, epsilon) <= delta:
            rho_low = rho
        else:
            rho_high = rho
    return rho_low
