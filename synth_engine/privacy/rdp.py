"""Rényi-DP accounting of DP-SGD composed with zCDP stages (pure numeric, no Django).

DP-TVAE's accountant: the RDP curve of the subsampled Gaussian mechanism (Mironov, Talwar &
Zhang 2019, computed by Opacus), composed with the ρ-zCDP cost of its other stages as
ε(α) = ρα (Bun & Steinke 2016), converted to (ε, δ) with Balle et al. 2020, Thm. 21; and the
noise multiplier calibrated to a target ε. Opacus (and so torch) loads with this module, which
is why ``synth_engine.privacy`` does not re-export it: only DP-TVAE imports it.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence

import numpy as np
from opacus.accountants.analysis.rdp import compute_rdp, get_privacy_spent

# Integer orders only: Opacus's series for fractional orders is ~50x slower at large q, and
# any set of orders gives a valid bound (the conversion takes the best one).
RDP_ORDERS = tuple(float(a) for a in range(2, 65)) + (80.0, 96.0, 128.0, 192.0, 256.0, 512.0)
_SIGMA_BRACKET = (0.05, 1.0e5)
_BISECTION_STEPS = 60


class NoiseCalibrationError(ValueError):
    """No noise multiplier in the searched range meets the privacy target."""


def sgd_rdp(noise_multiplier: float, sample_rate: float, steps: int) -> np.ndarray:
    """RDP curve of DP-SGD at :data:`RDP_ORDERS` (Mironov, Talwar & Zhang 2019, Sec. 3.3).

    Parameters
    ----------
    noise_multiplier : float
        σ: noise standard deviation over the clipping bound.
    sample_rate : float
        q: Poisson sampling probability of each row per step.
    steps : int
        Number of noisy steps.

    Returns
    -------
    ndarray of shape (len(RDP_ORDERS),)
    """
    return np.asarray(
        compute_rdp(q=sample_rate, noise_multiplier=noise_multiplier, steps=steps, orders=list(RDP_ORDERS)),
        dtype=np.float64,
    )


def composed_epsilon(history: Sequence[Sequence[float]], rho: float, conversion_delta: float) -> tuple[float, float]:
    """ε of DP-SGD ``history`` composed with ρ-zCDP, at ``conversion_delta``.

    Parameters
    ----------
    history : sequence of (noise_multiplier, sample_rate, steps)
        Opacus's accountant history.
    rho : float
        Total zCDP cost of the other stages; RDP ε(α) = ρα (Bun & Steinke 2016, Def. 1.1).
    conversion_delta : float
        δ of the RDP -> (ε, δ) conversion (Balle et al. 2020, Thm. 21).

    Returns
    -------
    (epsilon, optimal order)
    """
    orders = np.array(RDP_ORDERS)
    rdp = rho * orders
    for noise_multiplier, sample_rate, steps in history:
        rdp = rdp + sgd_rdp(noise_multiplier, sample_rate, int(steps))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "optimal order is the largest alpha": still valid
        epsilon, order = get_privacy_spent(orders=orders, rdp=rdp, delta=conversion_delta)
    return float(epsilon), float(order)


def calibrate_noise_multiplier(
    epsilon: float, conversion_delta: float, sample_rate: float, steps: int, rho: float
) -> float:
    """Smallest noise multiplier (bisection on log σ, rounded up) whose composed ε ≤ ``epsilon``.

    Never below the exact value: the bracket's upper end always satisfies the target.
    Raises :class:`NoiseCalibrationError` when even σ = 10⁵ cannot meet it.
    """
    low, high = (math.log(s) for s in _SIGMA_BRACKET)

    def spent(log_sigma: float) -> float:
        return composed_epsilon([(math.exp(log_sigma), sample_rate, steps)], rho, conversion_delta)[0]

    if spent(high) > epsilon:
        raise NoiseCalibrationError(f"epsilon={epsilon} cannot be met by any noise multiplier")
    if spent(low) <= epsilon:
        return _SIGMA_BRACKET[0]
    for _ in range(_BISECTION_STEPS):
        middle = (low + high) / 2.0
        if spent(middle) <= epsilon:
            high = middle
        else:
            low = middle
    return math.exp(high)
