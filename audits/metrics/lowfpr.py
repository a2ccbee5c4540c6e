"""An attack's TPR at a low FPR, with the threshold's own noise in its interval.

The membership checks ask whether an attack's true-positive rate at 1 % false-positive rate is
above a threshold (0.02 by default). The threshold of the score is read off the non-members: it
is the ``k``-th highest of ``m`` non-member scores. Its true FPR ``u`` is then not ``k / m`` but
random: for continuous scores it is exactly ``Beta(k, m - k + 1)`` distributed (the
order-statistic law that Clopper–Pearson intervals invert). With 114 non-members ``k = 1`` and
``u`` ranges over 0.02 %–3.2 % (95 %), so the members above the threshold vary far more than a
binomial at ``level`` (the Wilson interval of the members' count alone, as the checks used, put
their false-positive rate at 5-7 % instead of 2.5 % on breast_cancer's 114 non-members).

Here both sources of noise enter one exact test. What is tested is the attack's best TPR at
``level`` (the ROC's concave hull: an attacker may randomise between thresholds), ``τ``. If
``τ`` is at most some value, the ROC is at most ``min(1, max(τ, τ u / level))`` at every FPR
``u`` (monotone below ``level``, concave above it), so the members above the threshold are
stochastically at most ``Binomial(n, that)`` with ``u ~ Beta(k, m - k + 1)``; its tail
probability (:func:`tpr_p_value`, integrated over ``u`` on a grid of Beta quantiles) is a valid
p-value whatever the attack's ROC. The threshold admits half the level,
``k = max(1, floor(level * m / 2))`` (:data:`THRESHOLD_SHARE`): the null allows a TPR of ``τ`` at
any FPR below ``level``, so a threshold whose FPR stays below ``level`` loses nothing against it,
and memorised rows (the signal the check is for) rank above every non-member; at 5,000
non-members the fewest members above it that fail the check are 121, as many as the Wilson
interval needed (120), against 137 with ``k = level * m``. The lower confidence limit is the
``τ`` where that p-value is ``α`` (one-sided 97.5 % for a 95 % interval); a check fails when the
lower limit exceeds its threshold, i.e. when ``τ ≤ threshold`` is rejected at 2.5 %. The upper limit uses the lowest
concave ROC through ``(level, τ)``; it is informational (it assumes a concave ROC).

Ties: the threshold admits every non-member scoring at least the ``k``-th highest score, so
``k`` is the number that do (a verbatim copy scores exactly as high as a tied non-member, and
both are counted).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
from scipy.optimize import brentq
from scipy.special import bdtrc, betaincinv
from scipy.stats import binom

GRID = 256  # Beta quantiles over which the threshold's FPR is integrated


THRESHOLD_SHARE = 0.5  # the threshold admits this share of ``level`` of the non-members


def admitted_non_members(level: float, n_non_members: int) -> int:
    """``k``: the threshold is the ``k``-th highest non-member score (at least one)."""
    return max(1, int(math.floor(THRESHOLD_SHARE * level * n_non_members + 1e-9)))


def threshold_fpr_grid(k: int, n_non_members: int, grid: int = GRID) -> np.ndarray:
    """Quantile midpoints of ``Beta(k, m - k + 1)``: the true FPR of a threshold at the ``k``-th
    highest of ``m`` non-member scores (equal-weight points for an expectation over it)."""
    if n_non_members <= 0:
        return np.ones(1)
    k = min(max(k, 1), n_non_members)
    return betaincinv(k, n_non_members - k + 1, (np.arange(grid) + 0.5) / grid)  # Beta's quantiles


def tpr_p_value(
    hits: np.ndarray | int, n_members: int, fpr_grid: np.ndarray, tau: float, level: float
) -> np.ndarray | float:
    """``P[at least hits members above the threshold]`` when the attack's TPR at ``level`` is
    ``tau`` and its ROC as high as that allows; vectorised over ``hits``."""
    roc = np.minimum(1.0, np.maximum(tau, tau * fpr_grid / level))
    hits = np.asarray(hits)
    return bdtrc(hits[..., None] - 1, n_members, roc).mean(axis=-1)  # binomial upper tail P[X >= hits]


def _below_p_value(hits: int, n_members: int, fpr_grid: np.ndarray, tau: float, level: float) -> float:
    """``P[at most hits members above]`` under the lowest concave ROC through ``(level, tau)``."""
    roc = np.where(
        fpr_grid <= level, tau * fpr_grid / level, tau + (1 - tau) * (fpr_grid - level) / max(1 - level, 1e-12)
    )
    return float(binom.cdf(hits, n_members, np.clip(roc, 0.0, 1.0)).mean())


def minimum_hits(n_members: int, n_non_members: int, tau: float, level: float, confidence: float = 0.95) -> int | None:
    """The fewest members above the threshold for the lower limit to exceed ``tau`` (``None``:
    not even all of them); assumes no ties among the top non-member scores."""
    if n_members <= 0 or n_non_members <= 0:
        return None
    grid = threshold_fpr_grid(admitted_non_members(level, n_non_members), n_non_members)
    alpha = (1 - confidence) / 2
    if tpr_p_value(n_members, n_members, grid, tau, level) >= alpha:
        return None
    low, high = 0, n_members  # the p-value falls as hits grow: bisect for the first below alpha
    while high - low > 1:
        middle = (low + high) // 2
        low, high = (low, middle) if tpr_p_value(middle, n_members, grid, tau, level) < alpha else (middle, high)
    return high


@dataclass(frozen=True)
class LowFprTpr:
    """The members and non-members at or above the threshold and the TPR's interval."""

    level: float
    n_members: int
    n_non_members: int
    hits: int  # members at or above the threshold
    admitted: int  # non-members at or above it
    tpr: float
    low: float
    high: float
    confidence: float

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def tpr_at_fpr(
    member_scores: np.ndarray, non_member_scores: np.ndarray, level: float, confidence: float = 0.95
) -> LowFprTpr:
    """The TPR at the threshold admitting ``level`` of the non-members and its two-sided
    ``confidence`` interval for the attack's TPR at FPR ``level`` (module docstring)."""
    n, m = len(member_scores), len(non_member_scores)
    if n == 0 or m == 0:
        return LowFprTpr(level, n, m, 0, 0, 0.0, 0.0, 1.0, confidence)
    k = admitted_non_members(level, m)
    threshold = np.sort(non_member_scores)[::-1][min(k, m) - 1]
    admitted = int((non_member_scores >= threshold).sum())
    hits = int((member_scores >= threshold).sum())
    grid = threshold_fpr_grid(admitted, m)
    alpha = (1 - confidence) / 2
    if hits == 0:
        low = 0.0
    else:
        low = float(brentq(lambda t: float(tpr_p_value(hits, n, grid, t, level)) - alpha, 0.0, 1.0, xtol=1e-6))
    if hits >= n or _below_p_value(hits, n, grid, 1.0, level) > alpha:
        high = 1.0
    elif _below_p_value(hits, n, grid, 0.0, level) <= alpha:
        high = 0.0
    else:
        high = float(brentq(lambda t: _below_p_value(hits, n, grid, t, level) - alpha, 0.0, 1.0, xtol=1e-6))
    return LowFprTpr(level, n, m, hits, admitted, hits / n, low, max(high, low), confidence)
