"""Check that DP-SGD trains with the sampling its accountant assumes.

Opacus's RDP accountant for DP-SGD assumes *Poisson* sampling: every row joins each batch
independently with probability q, so batch sizes vary. Training with shuffled fixed-size
batches while accounting for Poisson sampling overstates privacy several-fold (Chua et al.
2024, "How Private are DP-SGD Implementations?"; Annamalai et al. 2024). While a fit runs,
:func:`observe_opacus_sampling` records the data loader ``PrivacyEngine.make_private`` hands
back, and :func:`poisson_sampling_check` compares it with the sample rate the generator
reported. Pure numeric code, no Django; it watches through Opacus's public API only.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np

RATE_TOLERANCE = 1e-9
BATCH_DRAWS = 200


@dataclass
class SamplingObservation:
    """What the data loaders of the watched fits looked like."""

    loaders: list[dict[str, Any]] = field(default_factory=list)


@contextlib.contextmanager
def observe_opacus_sampling() -> Iterator[SamplingObservation]:
    """Record every loader ``opacus.PrivacyEngine.make_private`` returns inside the block."""
    from opacus import PrivacyEngine
    from opacus.data_loader import DPDataLoader
    from opacus.utils.uniform_sampler import UniformWithReplacementSampler

    observation = SamplingObservation()
    original = PrivacyEngine.make_private

    def watched(engine: Any, *args: Any, **kwargs: Any) -> Any:
        result = original(engine, *args, **kwargs)
        loader = result[-1]
        sampler = getattr(loader, "batch_sampler", None)
        poisson_sampler = (
            sampler if isinstance(loader, DPDataLoader) and isinstance(sampler, UniformWithReplacementSampler) else None
        )
        poisson = poisson_sampler is not None
        sizes = _batch_sizes(poisson_sampler) if poisson_sampler is not None else []
        observation.loaders.append(
            {
                "loader": type(loader).__name__,
                "sampler": type(sampler).__name__,
                "poisson": poisson,
                "sample_rate": float(poisson_sampler.sample_rate) if poisson_sampler is not None else None,
                "n_rows": int(poisson_sampler.num_samples) if poisson_sampler is not None else None,
                "batch_size_mean": float(np.mean(sizes)) if sizes else None,
                "batch_size_variance": float(np.var(sizes)) if sizes else None,
            }
        )
        return result

    # Opacus ships no type hints, so mypy sees PrivacyEngine as Any and this patch needs no ignore.
    PrivacyEngine.make_private = watched
    try:
        yield observation
    finally:
        PrivacyEngine.make_private = original


def poisson_sampling_check(fits: list[dict[str, Any]]) -> dict[str, Any]:
    """Did every DP-SGD fit sample as accounted? ``passed`` is False on any mismatch.

    ``fits`` holds one record per fit: ``world`` ("absent"/"present"), ``loaders`` (from
    :func:`observe_opacus_sampling`) and ``reported_sample_rate`` (from ``privacy_spent()``).
    Four things must hold: the loader is Opacus's Poisson loader; its rate equals the rate the
    fit reported to its accountant; the batch sizes it draws vary like a Binomial(n, q)
    (variance within a factor of two of n·q·(1 − q) over :data:`BATCH_DRAWS` draws), which
    fixed-size batches cannot fake; and q is not a fixed function of the data (one value on D,
    another on D + one row), since an accountant for add/remove-one-row neighbours treats q as a
    constant. A q that varies from fit to fit comes from a randomised estimate (a DP row count)
    whose cost the generator's own accountant must carry.
    """
    observed = [fit for fit in fits if fit["loaders"]]
    if not observed:
        return {"applies": False, "passed": True, "reason": "no DP-SGD training was observed"}
    problems: list[str] = []
    for fit in observed:
        for loader in fit["loaders"]:
            problems += _loader_problems(loader, fit["reported_sample_rate"])
    rates = {
        world: sorted({loader["sample_rate"] for fit in observed if fit["world"] == world for loader in fit["loaders"]})
        for world in ("absent", "present")
    }
    # a q that is one fixed value per world, different between them, is a function of the data;
    # a q that varies from fit to fit comes from a randomised (DP) estimate, charged elsewhere
    deterministic = len(rates["absent"]) == 1 and len(rates["present"]) == 1
    if deterministic and rates["absent"] != rates["present"]:
        problems.append(
            f"the sample rate depends on the data: q = {rates['absent']} on D, {rates['present']} on D + one row"
        )
    return {
        "applies": True,
        "passed": not problems,
        "reason": "; ".join(dict.fromkeys(problems)) or "Poisson sampling at the accounted, data-independent rate",
        "sample_rates": rates,
        "loaders": [loader for fit in observed for loader in fit["loaders"]][:4],
    }


def _loader_problems(loader: dict[str, Any], reported: float | None) -> list[str]:
    if not loader["poisson"]:
        return [f"{loader['loader']} with {loader['sampler']} is not Poisson sampling"]
    problems = []
    if reported is None or abs(loader["sample_rate"] - reported) > RATE_TOLERANCE:
        problems.append(f"trained at q={loader['sample_rate']}, accounted q={reported}")
    expected = loader["n_rows"] * loader["sample_rate"] * (1 - loader["sample_rate"])
    if expected > 0 and not 0.5 * expected <= loader["batch_size_variance"] <= 2.0 * expected:
        problems.append(f"batch-size variance {loader['batch_size_variance']:.3g}, Poisson gives {expected:.3g}")
    return problems


def _batch_sizes(sampler: Any) -> list[int]:
    """Sizes of :data:`BATCH_DRAWS` batches drawn from the fit's own sampler, with its random
    state saved and put back, so the fit's random stream is untouched."""
    import torch

    saved_global = torch.get_rng_state()
    saved_own = sampler.generator.get_state() if sampler.generator is not None else None
    saved_steps = sampler.steps
    try:
        sampler.steps = BATCH_DRAWS
        return [len(batch) for batch in sampler]
    finally:
        sampler.steps = saved_steps
        torch.set_rng_state(saved_global)
        if saved_own is not None:
            sampler.generator.set_state(saved_own)
