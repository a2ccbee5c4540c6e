"""Empirical privacy assurance: a distinguishing game that can refute a generator's DP claim,
and the membership-attack ceiling a DP release must stay under. Pure numeric, no Django."""

from synth_engine.assurance.bounds import (
    GameBound,
    best_bound,
    clopper_pearson_upper,
    epsilon_from_rates,
    gdp_delta,
    theoretical_mu,
)
from synth_engine.assurance.canaries import CANARY_KINDS, Canary, make_canary, with_canary
from synth_engine.assurance.game import (
    AssuranceReport,
    NonPrivateGeneratorError,
    assure_generator,
    reference_table,
)
from synth_engine.assurance.version import generator_version

__all__ = [
    "CANARY_KINDS",
    "AssuranceReport",
    "Canary",
    "GameBound",
    "NonPrivateGeneratorError",
    "assure_generator",
    "best_bound",
    "clopper_pearson_upper",
    "epsilon_from_rates",
    "gdp_delta",
    "generator_version",
    "make_canary",
    "reference_table",
    "theoretical_mu",
    "with_canary",
]
