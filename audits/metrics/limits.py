"""Calibrated limits of the fidelity checks (see :mod:`audits.metrics.prediction`)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from audits.metrics.base import CHECK_SPECS

CALIBRATED_CHECKS = ("tvd_1way", "tvd_2way", "association_difference")
TOLERANCE = 1.5
MAX_RELAXATION = 3.0  # a limit never exceeds this multiple of the purpose's threshold


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

    def to_dict(self) -> dict[str, Any]:
        return {
            "purpose_threshold": self.threshold,
            "sampling_floor": self.floor,
            "predicted_noise": self.noise,
            "expected_clean": self.expected,
            "calibrated_limit": self.limit,
            "tolerance": TOLERANCE,
            "max_relaxation": MAX_RELAXATION,
        }


def fidelity_limit(check: str, threshold: float | None, floor: float, noise: float | None) -> FidelityLimit:
    """``min(max(threshold, TOLERANCE * sqrt(floor^2 + noise^2)), MAX_RELAXATION * threshold)``;
    without a noise prediction the floor alone calibrates (the noise is then not forgiven)."""
    expected = math.sqrt(floor**2 + (noise or 0.0) ** 2)
    if threshold is None:
        return FidelityLimit(check, None, floor, noise, expected, None)
    upper = CHECK_SPECS[check].value_range[1]
    limit = min(max(float(threshold), TOLERANCE * expected), MAX_RELAXATION * float(threshold), upper)
    return FidelityLimit(check, float(threshold), floor, noise, expected, limit)
