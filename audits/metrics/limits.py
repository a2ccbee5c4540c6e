"""Calibrated limits of the fidelity checks (see :mod:`audits.metrics.prediction`)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from audits.metrics.base import CHECK_SPECS

CALIBRATED_CHECKS = ("tvd_1way", "tvd_2way", "association_difference")
TOLERANCE = 1.5
MAX_RELAXATION = 3.0  # a TVD limit never exceeds this multiple of the purpose's threshold
# judged against what a release with independent columns scores instead of a multiple of the threshold
INDEPENDENCE_BOUNDED = ("association_difference",)


def sampling_floor(holdout_value: float, n_train: int, n_holdout: int, n_synthetic: int) -> float:
    """The holdout's distance from the training rows rescaled to a sample of ``n_synthetic``.

    The holdout differs from the training rows by two samples' noise (variance ``1/h + 1/n``
    per cell), a release of ``m`` rows by ``1/m + 1/n`` at most; errors of this kind scale
    with the square root of the variance.
    """
    n_train = max(n_train, 1)
    scale = math.sqrt((1 / max(n_synthetic, 1) + 1 / n_train) / (1 / max(n_holdout, 1) + 1 / n_train))
    return float(holdout_value * scale)


@dataclass(frozen=True)
class FidelityLimit:
    """The limit a fidelity check is judged against, and what it is made of."""

    check: str
    threshold: float | None  # the purpose's
    floor: float
    noise: float | None
    expected: float
    limit: float | None
    independent: float | None = None  # the check's value for the holdout's columns shuffled apart

    @property
    def decidable(self) -> bool:
        """Whether a clean release can be told from one whose columns are independent: the
        tolerated clean value stays below what independent columns score."""
        return self.independent is None or TOLERANCE * self.expected < self.independent

    def to_dict(self) -> dict[str, Any]:
        measured = (
            {} if self.independent is None else {"independent_columns": self.independent, "decidable": self.decidable}
        )
        return {
            "purpose_threshold": self.threshold,
            "sampling_floor": self.floor,
            "predicted_noise": self.noise,
            "expected_clean": self.expected,
            "calibrated_limit": self.limit,
            "tolerance": TOLERANCE,
            "max_relaxation": None if self.check in INDEPENDENCE_BOUNDED else MAX_RELAXATION,
            **measured,  # by the audit (a statistic of the real holdout), never before it
        }


def fidelity_limit(
    check: str, threshold: float | None, floor: float, noise: float | None, independent: float | None = None
) -> FidelityLimit:
    """``min(max(threshold, TOLERANCE * sqrt(floor^2 + noise^2)), MAX_RELAXATION * threshold)``;
    without a noise prediction the floor alone calibrates (the noise is then not forgiven).

    ``association_difference`` (:data:`INDEPENDENCE_BOUNDED`) has no multiple-of-threshold cap:
    what keeps it able to fail is ``independent``, its value for the real holdout with its columns
    shuffled apart (a release that keeps no association). When the tolerated clean value reaches
    it the check is not decidable (:attr:`FidelityLimit.decidable`): DP noise at this n and ε is
    expected to remove as much association as independence does."""
    expected = math.sqrt(floor**2 + (noise or 0.0) ** 2)
    if threshold is None:
        return FidelityLimit(check, None, floor, noise, expected, None, independent)
    upper = CHECK_SPECS[check].value_range[1]
    relaxed = max(float(threshold), TOLERANCE * expected)
    cap = upper if check in INDEPENDENCE_BOUNDED else min(MAX_RELAXATION * float(threshold), upper)
    return FidelityLimit(check, float(threshold), floor, noise, expected, min(relaxed, cap), independent)
