"""Privacy accounting and mechanisms for Synthgate's generators (pure numeric, no Django)."""

from synth_engine.privacy.accountant import (
    ACCOUNTANT_NAME,
    Measurement,
    ZCDPAccountant,
)
from synth_engine.privacy.mechanisms import (
    exponential_mechanism,
    gaussian_noise,
    sparse_histogram,
    sparse_threshold,
)
from synth_engine.privacy.zcdp import (
    cdp_delta,
    cdp_epsilon,
    cdp_rho,
    exponential_epsilon,
    exponential_rho,
    gaussian_rho,
    gaussian_sigma,
)

__all__ = [
    "ACCOUNTANT_NAME",
    "Measurement",
    "ZCDPAccountant",
    "cdp_delta",
    "cdp_epsilon",
    "cdp_rho",
    "exponential_epsilon",
    "exponential_mechanism",
    "exponential_rho",
    "gaussian_noise",
    "gaussian_rho",
    "gaussian_sigma",
    "sparse_histogram",
    "sparse_threshold",
]
