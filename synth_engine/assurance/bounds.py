"""Empirical privacy bounds from a distinguishing game (pure numeric, no Django).

A mechanism M is (ε, δ)-DP only if every test that tells M(D) from M(D′) on neighbouring
datasets obeys both hypothesis-testing inequalities (Kairouz, Oh & Viswanath 2015, Thm. 2.1)

    FPR + e^ε · FNR ≥ 1 − δ    and    FNR + e^ε · FPR ≥ 1 − δ.

Measured rates therefore give a *lower* bound on the ε the mechanism really has (Jagielski,
Ullman & Oprea 2020, "Auditing Differentially Private Machine Learning", Sec. 3; Nasr et al.
2021, Sec. 4). The rates are estimated from a finite number of fits, so the bound uses the
one-sided Clopper–Pearson upper limits of FPR and FNR: with probability at least 1 − α the
reported lower bound is not above the true ε. The same two rates give a Gaussian-DP μ
(Dong, Roth & Su 2022, "Gaussian Differential Privacy", Def. 2.6: a μ-GDP test has
FNR ≥ Φ(Φ⁻¹(1 − FPR) − μ)), compared with the μ a claimed (ε, δ) corresponds to (their
Cor. 2.13). The game can only ever show that a claim is false; it never certifies one.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
from scipy.optimize import brentq
from scipy.stats import beta, norm

MAX_THRESHOLDS = 16  # candidate thresholds per attack and direction (Bonferroni-corrected)


@dataclass(frozen=True)
class GameBound:
    """The best lower bound one attack statistic reaches, with the test that reached it."""

    epsilon_lower_bound: float
    threshold: float
    direction: str  # "higher" (a high score says "canary in") or "lower"
    false_positive_rate: float
    false_negative_rate: float
    false_positive_upper: float
    false_negative_upper: float
    mu_estimate: float
    mu_lower_bound: float
    comparisons: int  # thresholds × directions the confidence level was divided over

    def to_dict(self) -> dict[str, Any]:
        return {key: _plain(value) for key, value in asdict(self).items()}


def clopper_pearson_upper(successes: int, trials: int, alpha: float) -> float:
    """One-sided (1 − α) Clopper–Pearson upper limit of a binomial proportion.

    Parameters
    ----------
    successes, trials : int
        Observed count and number of independent trials (trials > 0).
    alpha : float
        Error probability of the one-sided limit.

    Returns
    -------
    float
        The (1 − α) quantile of Beta(k + 1, n − k), the exact Clopper–Pearson limit (the same
        value ``scipy.stats.binomtest(k, n).proportion_ci(method="exact")`` finds by root
        search at confidence 1 − 2α, in one call).
    """
    if trials <= 0:
        raise ValueError("trials must be positive")
    if successes >= trials:
        return 1.0
    return float(beta.ppf(1.0 - alpha, successes + 1, trials - successes))


def clopper_pearson_lower(successes: int, trials: int, alpha: float) -> float:
    """One-sided (1 − α) Clopper–Pearson lower limit: the α quantile of Beta(k, n − k + 1)."""
    if trials <= 0:
        raise ValueError("trials must be positive")
    if successes <= 0:
        return 0.0
    return float(beta.ppf(alpha, successes, trials - successes + 1))


def epsilon_from_rates(false_positive: float, false_negative: float, delta: float) -> float:
    """Largest ε the two hypothesis-testing inequalities force for these rates (≥ 0).

    Parameters
    ----------
    false_positive, false_negative : float
        Error rates of one test between the two worlds, in [0, 1] (upper confidence limits
        when used for a bound).
    delta : float
        The claimed δ.
    """
    bounds = [0.0]
    for first, second in ((false_positive, false_negative), (false_negative, false_positive)):
        numerator = 1.0 - delta - first
        if numerator > 0:
            bounds.append(math.inf if second <= 0 else math.log(numerator / second))
    return max(bounds)


def gdp_mu_from_rates(false_positive: float, false_negative: float) -> float:
    """μ of the Gaussian trade-off curve through (FPR, FNR): Φ⁻¹(1 − FPR) − Φ⁻¹(FNR), ≥ 0."""
    return max(0.0, float(norm.isf(false_positive) - norm.ppf(false_negative)))


def gdp_delta(epsilon: float, mu: float) -> float:
    """δ(ε) of μ-GDP: Φ(−ε/μ + μ/2) − e^ε Φ(−ε/μ − μ/2) (Dong, Roth & Su 2022, Cor. 2.13)."""
    if mu <= 0:
        return 0.0
    return float(norm.cdf(-epsilon / mu + mu / 2.0) - math.exp(epsilon) * norm.cdf(-epsilon / mu - mu / 2.0))


def theoretical_mu(epsilon: float, delta: float) -> float:
    """The μ whose GDP curve passes through (ε, δ): the largest μ with δ(ε; μ) ≤ δ.

    An (ε, δ)-DP mechanism need not be μ-GDP, so a measured μ above this is a warning sign,
    not a contradiction; the verdict rests on the ε lower bound alone.
    """
    if not 0 < delta < 1 or epsilon <= 0:
        raise ValueError("need epsilon > 0 and 0 < delta < 1")
    high = 1.0
    while gdp_delta(epsilon, high) < delta:
        high *= 2.0
    return float(brentq(lambda mu: gdp_delta(epsilon, mu) - delta, 1e-9, high, xtol=1e-10))


def best_bound(absent: np.ndarray, present: np.ndarray, delta: float, alpha: float) -> GameBound:
    """The highest ε lower bound any threshold test on one statistic reaches.

    Parameters
    ----------
    absent, present : ndarray of shape (n_runs,)
        The statistic over fits on D (canary absent) and on D′ (canary present). ``-inf``
        stands for a fit that was refused: a refusal is an observable outcome too.
    delta : float
        The claimed δ.
    alpha : float
        Error probability for this statistic; it is divided (Bonferroni) over every threshold
        and direction tried, and over the two rates of each test, so picking the best one
        does not inflate the bound.
    """
    absent, present = np.asarray(absent, dtype=np.float64), np.asarray(present, dtype=np.float64)
    thresholds = candidate_thresholds(np.concatenate([absent, present]))
    comparisons = 2 * len(thresholds)
    per_test_alpha = alpha / (2 * comparisons)  # two one-sided limits per test
    best: GameBound | None = None
    for threshold in thresholds:
        for direction in ("higher", "lower"):
            bound = _threshold_bound(absent, present, threshold, direction, delta, per_test_alpha, comparisons)
            if best is None or _rank(bound) > _rank(best):
                best = bound
    assert best is not None
    return best


def candidate_thresholds(scores: np.ndarray) -> list[float]:
    """Midpoints between consecutive distinct scores, thinned to at most :data:`MAX_THRESHOLDS`
    evenly spaced by rank (fixed before looking at which world a score came from)."""
    values = np.unique(scores)
    if len(values) < 2:
        return [float(values[0])] if len(values) else [0.0]
    midpoints = [_midpoint(low, high) for low, high in zip(values[:-1], values[1:], strict=True)]
    if len(midpoints) > MAX_THRESHOLDS:
        picks = np.linspace(0, len(midpoints) - 1, MAX_THRESHOLDS).round().astype(int)
        midpoints = [midpoints[i] for i in np.unique(picks)]
    return midpoints


def _threshold_bound(
    absent: np.ndarray,
    present: np.ndarray,
    threshold: float,
    direction: str,
    delta: float,
    alpha: float,
    comparisons: int,
) -> GameBound:
    says_present_absent = absent > threshold if direction == "higher" else absent < threshold
    says_present_present = present > threshold if direction == "higher" else present < threshold
    false_positives = int(says_present_absent.sum())
    false_negatives = int((~says_present_present).sum())
    fpr, fnr = false_positives / len(absent), false_negatives / len(present)
    fpr_upper = clopper_pearson_upper(false_positives, len(absent), alpha)
    fnr_upper = clopper_pearson_upper(false_negatives, len(present), alpha)
    # the point estimate of μ keeps half a count off 0 and 1 so a clean split stays finite
    fpr_clipped = min(max(fpr, 0.5 / len(absent)), 1 - 0.5 / len(absent))
    fnr_clipped = min(max(fnr, 0.5 / len(present)), 1 - 0.5 / len(present))
    return GameBound(
        epsilon_lower_bound=epsilon_from_rates(fpr_upper, fnr_upper, delta),
        threshold=threshold,
        direction=direction,
        false_positive_rate=fpr,
        false_negative_rate=fnr,
        false_positive_upper=fpr_upper,
        false_negative_upper=fnr_upper,
        mu_estimate=gdp_mu_from_rates(fpr_clipped, fnr_clipped),
        mu_lower_bound=gdp_mu_from_rates(fpr_upper, fnr_upper),
        comparisons=comparisons,
    )


def _rank(bound: GameBound) -> tuple[float, float]:
    return (bound.epsilon_lower_bound, bound.mu_estimate)


def _midpoint(low: float, high: float) -> float:
    if math.isinf(low):
        return high - 1.0 if math.isfinite(high) else 0.0
    return (low + high) / 2.0


def _plain(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None if math.isnan(value) else ("inf" if value > 0 else "-inf")
    return value
