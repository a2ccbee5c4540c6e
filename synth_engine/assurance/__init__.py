"""Empirical privacy assurance (pure numeric, no Django).

- :mod:`~synth_engine.assurance.bounds`: ε lower bounds and Gaussian-DP μ from error rates,
  Clopper–Pearson limits (light: NumPy and SciPy only, so the audit's DP-ceiling check uses it).
- :mod:`~synth_engine.assurance.canaries`, :mod:`~synth_engine.assurance.attacks`,
  :mod:`~synth_engine.assurance.game`: the distinguishing game that can refute a generator's
  DP claim (imports the generators, hence torch: import it from its module).
- :mod:`~synth_engine.assurance.sampling`: the check that DP-SGD samples as accounted.
- :mod:`~synth_engine.assurance.version`: the code hash an assurance result belongs to.
"""

from synth_engine.assurance.bounds import (
    GameBound,
    best_bound,
    clopper_pearson_lower,
    clopper_pearson_upper,
    epsilon_from_rates,
    gdp_delta,
    theoretical_mu,
)

__all__ = [
    "GameBound",
    "best_bound",
    "clopper_pearson_lower",
    "clopper_pearson_upper",
    "epsilon_from_rates",
    "gdp_delta",
    "theoretical_mu",
]
