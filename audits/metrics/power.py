"""Can the membership checks prove their power at this size? (Computable before the job.)

The membership family's positive control replaces ``round(share * n_synthetic)`` synthetic rows
with verbatim copies of training rows drawn from the members the attacks score. A copy is at
distance exactly 0 from its member, so the distance attack ranks every planted member above
(almost) every non-member, and its TPR at 1 % FPR is about ``planted / members`` plus the 1 % a
powerless attack gets. The family catches the control when the lower end of that TPR's 95 %
interval exceeds the purpose's threshold (0.02 by default); the interval includes the noise of
the threshold read off the non-members (:mod:`audits.metrics.lowfpr`).

So the control is caught when enough members are planted *relative to the members scored*. The
audit therefore scores at most as many members as there are synthetic rows
(:func:`scored_members`): the planted share of the scored members is then at least ``share``,
whatever the training set's size. (Scoring 2,000 members against 500 synthetic rows planted 25
copies, 1.25 % of them, which no attack at 1 % FPR can tell from chance.) What is left is the
binomial noise of small member sets; :func:`membership_power` gives the probability that the
control is caught and the smallest synthetic size from which the planted copies alone clear
the threshold. Inputs are sizes and thresholds only: no data is read.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy.special import bdtrc, betaincinv
from scipy.stats import binom

from audits.metrics.lowfpr import THRESHOLD_SHARE, minimum_hits

REQUIRED_POWER = 0.95
CHANCE_TPR = 0.01  # TPR at 1 % FPR of an attack that sees nothing
TPR_LEVEL = 0.01  # the FPR at which the TPR checks read the attacks
POWER_GRID = 64  # Beta quantiles per size when scanning sizes (the audit itself uses 256)
ALPHA = 0.025  # one-sided error of the TPR checks' lower limit (95 % two-sided interval)
DEFAULT_TPR_THRESHOLD = 0.02
DEFAULT_CANDIDATES = 5000


def scored_members(n_synthetic: int, n_train: int, n_holdout: int, n_candidates: int = DEFAULT_CANDIDATES) -> int:
    """Members (and as many non-members) the membership attacks score: at most ``n_candidates``,
    the training and holdout sizes, and the synthetic size."""
    return int(max(0, min(n_candidates, n_train, n_holdout, n_synthetic)))


def planted_rows(n_synthetic: int, share: float, n_members: int) -> int:
    """Copies the control plants: ``ceil(share * n_synthetic)``, at least one, at most the
    members scored (they are drawn from them)."""
    return int(min(max(1, math.ceil(share * n_synthetic - 1e-9)), n_members, n_synthetic))


@dataclass(frozen=True)
class MembershipPower:
    """How likely the membership control is caught at a synthetic size, and the smallest size
    at which it is caught with probability :data:`REQUIRED_POWER` (``None``: at no size up to
    ``max_rows``)."""

    n_synthetic: int
    n_members: int
    n_planted: int
    probability: float
    minimum_rows: int | None

    @property
    def decidable(self) -> bool:
        return self.probability >= REQUIRED_POWER

    def explain(self, *, disclose_counts: bool = True) -> str:
        """One sentence a requester can act on.

        ``disclose_counts=False`` leaves out the members scored and the planted copies, and gives
        the probability to the nearest 5 %: the members scored can equal the holdout's size, a
        function of the private number of real rows, so what a requester reads must not state it.
        """
        chance = f"{self.probability:.0%}" if disclose_counts else f"about {round(self.probability * 20) * 5:.0f}%"
        if self.decidable:
            return (
                f"the membership checks catch a planted 1-in-20 leak with probability {chance} "
                f"at {self.n_synthetic:,} synthetic rows"
            )
        where = (
            f"ask for at least {self.minimum_rows:,} synthetic rows"
            if self.minimum_rows is not None
            else "no synthetic size makes them decisive for this dataset (its holdout is too small)"
        )
        scored = (
            f"would score {self.n_members:,} training rows with {self.n_planted:,} planted copies among them, and "
            if disclose_counts
            else ""
        )
        return (
            f"at {self.n_synthetic:,} synthetic rows the membership checks {scored}would catch that planted "
            f"leak only with probability {chance}; the audit could not decide (inconclusive): {where}"
        )


def control_catch_probability(
    n_members: int, n_planted: int, *, tpr_threshold: float = DEFAULT_TPR_THRESHOLD, chance_tpr: float = CHANCE_TPR
) -> float:
    """Probability that the TPR check's lower confidence limit exceeds the threshold.

    Parameters
    ----------
    n_members : int
        Members scored (= non-members scored).
    n_planted : int
        Members with a verbatim copy among the synthetic rows (all ranked first).
    tpr_threshold : float
        The purpose's ``membership_distance_tpr`` threshold.
    chance_tpr : float
        Share of the other members above the threshold, as for an attack that sees nothing.

    Returns
    -------
    float
        ``P[n_planted + B >= h]`` with ``B ~ Binomial(n_members - n_planted, chance_tpr)`` and
        ``h`` the fewest members above the threshold that fail the check
        (:func:`audits.metrics.lowfpr.minimum_hits`, the threshold's noise included).
    """
    if n_members <= 0 or n_planted <= 0:
        return 0.0
    needed = minimum_hits(n_members, n_members, tpr_threshold, TPR_LEVEL)
    if needed is None:
        return 0.0
    return float(binom.sf(needed - n_planted - 1, n_members - n_planted, chance_tpr))


def membership_power(
    n_synthetic: int,
    n_train: int,
    n_holdout: int,
    *,
    share: float,
    tpr_threshold: float = DEFAULT_TPR_THRESHOLD,
    n_candidates: int = DEFAULT_CANDIDATES,
) -> MembershipPower:
    """Power of the membership control at ``n_synthetic`` rows and the smallest decisive size.

    The smallest size is the smallest from which on the planted copies *alone* clear the
    threshold at every size (conservative: members caught by chance only help). Beyond
    ``ceil(cap / share)`` rows every scored member is planted, so sizes up to there are scanned.
    """
    members = scored_members(n_synthetic, n_train, n_holdout, n_candidates)
    planted = planted_rows(n_synthetic, share, members) if members else 0
    chance = control_catch_probability(members, planted, tpr_threshold=tpr_threshold)
    cap = scored_members(n_train, n_train, n_holdout, n_candidates)
    if cap <= 0:
        return MembershipPower(int(n_synthetic), members, planted, chance, None)
    rows = np.arange(1, math.ceil(cap / share) + 2)
    scored = np.minimum(rows, cap)
    copies = np.minimum(np.maximum(1, np.ceil(share * rows - 1e-9)), scored)
    small = rows <= cap  # scored = rows; beyond, scored = cap and more copies only help
    fails = np.empty(len(rows), dtype=bool)
    fails[small] = _copies_fail(copies[small].astype(float), scored[small].astype(float), tpr_threshold)
    needed = minimum_hits(cap, cap, tpr_threshold, TPR_LEVEL)
    fails[~small] = True if needed is None else copies[~small] < needed
    failing = np.flatnonzero(fails)
    if failing.size and failing[-1] == len(rows) - 1:
        minimum = None  # even planting every scored member is not enough
    else:
        minimum = int(rows[failing[-1] + 1]) if failing.size else 1
    return MembershipPower(int(n_synthetic), members, planted, chance, minimum)


def _copies_fail(copies: np.ndarray, scored: np.ndarray, tpr_threshold: float) -> np.ndarray:
    """Whether ``copies`` members above the threshold, of ``scored`` members and as many
    non-members, leave the TPR check passing (vectorised over sizes)."""
    k = np.maximum(1, np.floor(THRESHOLD_SHARE * TPR_LEVEL * scored + 1e-9))
    quantiles = (np.arange(POWER_GRID) + 0.5) / POWER_GRID
    fpr = betaincinv(k[:, None], (scored - k + 1)[:, None], quantiles[None, :])
    roc = np.minimum(1.0, np.maximum(tpr_threshold, tpr_threshold * fpr / TPR_LEVEL))
    hits, members = copies.astype(np.int64)[:, None] - 1, scored.astype(np.int64)[:, None]
    return bdtrc(hits, members, roc).mean(axis=1) >= ALPHA


def holdout_rows(n_rows: int, holdout_fraction: float) -> int:
    """Rows a ``train_test_split(test_size=holdout_fraction)`` puts in the holdout."""
    return int(math.ceil(n_rows * holdout_fraction))
