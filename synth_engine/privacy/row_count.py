"""The number of training rows, released only through the Gaussian mechanism.

Synthgate's accountants (zCDP histograms with L2 sensitivity 1, Opacus's RDP of Poisson-sampled
DP-SGD) all assume add/remove-one-row neighbours, under which the exact row count n is itself a
statistic that differs between neighbours: a refusal "too few rows", a sampling rate
``batch_size / n`` or a printed n that depends on the exact count distinguishes D from D plus
one row with certainty. So no generator reads ``len(frame)`` for anything it releases or decides:
it measures n̂ = n + N(0, σ²) once, in its own ``"rows"`` stage charged to the fit's accountant,
and every later use of n (the usefulness refusal, DP-SGD's sampling rate, the consistent total
of the marginals) is a post-processing of n̂.

A generator that supports it (MST) can instead be handed a :class:`PaidRowEstimate`: an
estimate already released and paid for outside the fit (a source version's
:func:`public_row_estimate`, charged once to its dataset's ledger at registration). The fit then
has no ``"rows"`` stage and spends nothing on n; every decision that used n̂ is a post-processing
of the paid estimate, so it can be computed before the data is read (at filing).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from synth_engine.privacy.accountant import ZCDPAccountant
from synth_engine.privacy.mechanisms import gaussian_noise
from synth_engine.privacy.zcdp import gaussian_sigma

ROWS_STAGE = "rows"
ROWS_FRACTION = 0.01  # share of a fit's zCDP budget spent on n̂ (σ ≈ 48 rows at ε = 1, δ = 1e-5)


@dataclass(frozen=True)
class PaidRowEstimate:
    """A row count estimate released (and paid for) outside the fit, for the fit's decisions.

    ``rows`` is the estimate of the *training* rows the fit sees (:func:`training_rows` of the
    version's estimate); ``epsilon`` is what the version's estimate cost where it was charged
    (``charged``), never again by the fit; ``source`` says which release it is.
    """

    rows: float
    source: str
    epsilon: float
    charged: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def estimate_record(row_estimate: PaidRowEstimate | None) -> dict[str, Any]:
    """What a plan and a fit record about the row estimate the fit decided on: which one and what
    it cost, where (a paid estimate: ``stage`` None), or the fit's own ``rows`` stage. Not its
    figure: a requester reads the record, and no row count."""
    if row_estimate is None:
        return {"source": "fit", "stage": "rows", "fraction": ROWS_FRACTION}
    return {
        "source": row_estimate.source,
        "epsilon": row_estimate.epsilon,
        "charged": row_estimate.charged,
        "stage": None,
    }


def training_rows(version_rows: float, holdout_fraction: float) -> float:
    """Estimate of a split's training rows from an estimate of the whole version's rows.

    A post-processing of ``version_rows`` and of the purpose's public holdout fraction (the
    job's split keeps about ``1 - holdout_fraction`` of the rows), at least 1.
    """
    return max(float(version_rows) * (1.0 - float(holdout_fraction)), 1.0)


def rows_sigma(rho: float) -> float:
    """σ of the row-count measurement for a zCDP budget ``rho`` (Bun & Steinke 2016, Prop. 1.6)."""
    return gaussian_sigma(rho)


def noisy_row_count(n_rows: int, sigma: float, accountant: ZCDPAccountant, rng: np.random.Generator) -> float:
    """n̂ = n + N(0, σ²), at least 1, charged to ``accountant`` under the ``"rows"`` stage.

    Parameters
    ----------
    n_rows : int
        The exact number of training rows (never released as such).
    sigma : float
        Noise standard deviation in rows; the count has L2 sensitivity 1 under add/remove.

    Returns
    -------
    float
        The DP estimate; clipping at 1 is a post-processing.
    """
    accountant.add_gaussian(ROWS_STAGE, sigma)
    return max(float(gaussian_noise(np.array([n_rows]), sigma, rng)[0]), 1.0)


def public_row_estimate(n_rows: int, epsilon: float, rng: np.random.Generator) -> int:
    """A table's row count released once with pure ε-DP: n + Z, Z two-sided geometric, at least 1.

    The governance layer computes this once per source version and stores it, charged to the
    dataset's ledger, so that everything a requester reads before a fit (the request outlook,
    filing's refusals) is a post-processing of it and never of the exact n.

    Parameters
    ----------
    n_rows : int
        The exact number of rows (never released as such).
    epsilon : float
        Pure-DP budget of this one release (δ = 0). The count has sensitivity 1 under
        add/remove, so Z is the discrete Laplace mechanism with scale 1/ε (Ghosh, Roughgarden &
        Sundararajan 2009): P[Z = z] ∝ exp(-ε |z|), the difference of two geometric variables.
        Integer noise keeps the floating-point Laplace mechanism's gaps in the support out.

    Returns
    -------
    int
        The estimate; clipping at 1 is a post-processing.
    """
    if not (isinstance(epsilon, int | float) and not isinstance(epsilon, bool) and math.isfinite(epsilon)):
        raise ValueError(f"epsilon must be a finite number; got {epsilon!r}")
    if epsilon <= 0:
        raise ValueError(f"epsilon must be positive; got {epsilon!r}")
    p = -math.expm1(-epsilon)  # 1 - e^-ε: success probability of each geometric
    noise = int(rng.geometric(p)) - int(rng.geometric(p))
    return max(int(n_rows) + noise, 1)


def public_row_scale(epsilon: float) -> float:
    """Standard deviation in rows of :func:`public_row_estimate`'s noise: sqrt(2 e^-ε) / (1 - e^-ε)."""
    q = math.exp(-epsilon)
    return math.sqrt(2 * q) / (1 - q)
