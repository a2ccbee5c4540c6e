"""Noise-adding mechanisms used by the marginal-based generators.

Randomness comes only from the ``numpy.random.Generator`` passed in. NumPy's PCG64 and its
floating-point Gaussian are not cryptographically secure samplers (Mironov 2012 describes the
floating-point attack on the Laplace case); callers seed them from ``secrets`` when no seed is
given, and a seeded run is for reproducible tests and benchmarks only.
"""

from __future__ import annotations

import math
from statistics import NormalDist

import numpy as np


def gaussian_noise(counts: np.ndarray, sigma: float, rng: np.random.Generator) -> np.ndarray:
    """Gaussian mechanism: ``counts`` plus i.i.d. N(0, σ²) noise.

    Parameters
    ----------
    counts : ndarray of shape (n_cells,) or any shape
        Exact counts (a histogram has L2 sensitivity 1 under add/remove-one-row).
    sigma : float
        Noise standard deviation, in rows.
    rng : numpy.random.Generator

    Returns
    -------
    ndarray of float64, same shape as ``counts``.
    """
    return counts.astype(np.float64) + rng.normal(0.0, sigma, size=np.shape(counts))


def exponential_mechanism(
    scores: np.ndarray, epsilon: float, rng: np.random.Generator, sensitivity: float = 1.0
) -> int:
    """Pick an index with probability ∝ exp(ε · score / (2Δ)) (McSherry & Talwar 2007).

    Sampled with the Gumbel-max trick, which draws exactly from that distribution. The
    mechanism is ε-DP and ε-bounded-range, so it costs ε²/8 zCDP (Cesar & Rogers 2021).

    Parameters
    ----------
    scores : ndarray of shape (n_candidates,)
        Quality scores, higher is better, each with sensitivity ``sensitivity``.
    epsilon : float
        Pure-DP parameter ε₀ of this one selection.
    """
    logits = epsilon * (scores - scores.max()) / (2.0 * sensitivity)
    return int(np.argmax(logits + rng.gumbel(size=len(scores))))


def sparse_threshold(sigma: float, delta: float) -> float:
    """Release threshold τ for a Gaussian sparse histogram over an open key set.

    A key held by a single row passes when 1 + N(0, σ²) > τ, which happens with probability
    ``delta`` for τ = 1 + σ·Φ⁻¹(1 − δ) (Korolova et al. 2009; Wilkins et al. 2024 give the
    exact analysis). Keys present in both neighbours see a sensitivity-1 Gaussian count, so the
    release is (ρ = 1/(2σ²), δ)-approximate zCDP (Bun & Steinke 2016, Def. 8.1).
    """
    if not 0.0 < delta < 1.0:
        return 1.0 + sigma * (math.inf if delta <= 0.0 else -math.inf)
    # Φ⁻¹(1 − δ) = −Φ⁻¹(δ); the standard library's inverse (Wichura's AS 241) is accurate to about
    # 1e-16 relative at tiny δ, as scipy's ndtri is, and costs no scipy import at start-up.
    return 1.0 + sigma * -NormalDist().inv_cdf(delta)


def sparse_histogram(
    keys: np.ndarray, counts: np.ndarray, sigma: float, delta: float, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """Noisy counts of the observed ``keys``, keeping only those above :func:`sparse_threshold`.

    Parameters
    ----------
    keys : ndarray of shape (n_keys,)
        The distinct values seen in the data, in a data-independent order (sorted).
    counts : ndarray of shape (n_keys,)
        How many rows hold each key.

    Returns
    -------
    (released_keys, noisy_counts) restricted to keys whose noisy count passed.
    """
    noisy = gaussian_noise(counts, sigma, rng)
    keep = noisy > sparse_threshold(sigma, delta)
    return keys[keep], noisy[keep]
