"""A small zCDP accountant: a log of measurements that sums to (ρ, δ) and converts to (ε, δ).

The accountant records every private measurement a fit makes (stage, mechanism, noise scale,
cost). Costs compose additively (Bun & Steinke 2016, Lemma 2.3; for approximate zCDP, Def. 8.1
and Lemma 8.3: the ρ's add and the δ's add). The reported (ε, δ) uses the tight conversion of
Canonne, Kamath & Steinke (2020) on the summed ρ, with the approximate-zCDP δ added on top.
It converts itself to a plain dict (for the ledger) and back.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from synth_engine.privacy.zcdp import cdp_epsilon, exponential_rho, gaussian_rho

ACCOUNTANT_NAME = "zCDP (Bun-Steinke 2016) -> (eps, delta) via Canonne-Kamath-Steinke 2020"
CONVERSION_NAME = "Canonne-Kamath-Steinke 2020, Cor. 13 (tight zCDP -> approximate DP)"


@dataclass(frozen=True)
class Measurement:
    """One private release: ``count`` identical mechanism calls in one stage of a fit.

    ``scale`` is σ for ``gaussian`` and the pure-DP ε₀ for ``exponential``; ``delta`` is the
    approximate-zCDP δ of a thresholded release (0 otherwise); ``rho`` is the total cost.
    """

    stage: str
    mechanism: str
    count: int
    scale: float
    rho: float
    delta: float = 0.0


@dataclass
class ZCDPAccountant:
    """Running total of zCDP measurements for one fit."""

    measurements: list[Measurement] = field(default_factory=list)

    def add_gaussian(self, stage: str, sigma: float, count: int = 1) -> float:
        """Record ``count`` Gaussian measurements with L2 sensitivity 1; return their ρ."""
        rho = count * gaussian_rho(sigma)
        self.measurements.append(Measurement(stage, "gaussian", count, sigma, rho))
        return rho

    def add_thresholded_gaussian(self, stage: str, sigma: float, delta: float) -> float:
        """Record one Gaussian sparse histogram (noisy counts of observed keys kept above a
        threshold); costs ρ = 1/(2σ²) plus approximate-zCDP ``delta`` (the chance that a key
        held by one row passes the threshold)."""
        rho = gaussian_rho(sigma)
        self.measurements.append(Measurement(stage, "thresholded_gaussian", 1, sigma, rho, delta))
        return rho

    def add_exponential(self, stage: str, epsilon: float, count: int = 1) -> float:
        """Record ``count`` ε-exponential-mechanism selections; return their ρ = count·ε²/8."""
        rho = count * exponential_rho(epsilon)
        self.measurements.append(Measurement(stage, "exponential", count, epsilon, rho))
        return rho

    @property
    def rho(self) -> float:
        return sum(m.rho for m in self.measurements)

    @property
    def approximate_delta(self) -> float:
        return sum(m.delta for m in self.measurements)

    def epsilon(self, delta: float) -> float:
        """ε of the whole log at total ``delta`` (the approximate-zCDP δ is taken off first)."""
        conversion_delta = delta - self.approximate_delta
        if conversion_delta <= 0:
            raise ValueError("delta is smaller than the approximate-zCDP delta already spent")
        return cdp_epsilon(self.rho, conversion_delta)

    def details(self, delta: float) -> dict[str, Any]:
        """The inputs anyone needs to recompute ε: per-stage σ or ε₀, counts, ρ, conversion."""
        stages: dict[str, dict[str, Any]] = {}
        for m in self.measurements:
            stage = stages.setdefault(m.stage, {"measurements": 0, "rho": 0.0, "delta": 0.0})
            stage["measurements"] += m.count
            stage["rho"] += m.rho
            stage["delta"] += m.delta
            key = "epsilon0" if m.mechanism == "exponential" else "sigma"
            if m.scale not in stage.setdefault(key, []):
                stage[key].append(m.scale)
        return {
            "neighbouring": "add/remove one row",
            "rho": self.rho,
            "approximate_delta": self.approximate_delta,
            "conversion_delta": delta - self.approximate_delta,
            "conversion": CONVERSION_NAME,
            "measurements": sum(m.count for m in self.measurements),
            "stages": stages,
        }

    def to_dict(self) -> dict[str, Any]:
        return {"measurements": [asdict(m) for m in self.measurements]}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ZCDPAccountant:
        return cls([Measurement(**m) for m in data["measurements"]])
