"""DP-TVAE: a conditional tabular VAE trained with DP-SGD (Opacus), (ε, δ)-DP end to end.

The model is TVAE (Xu et al. 2019, "Modeling Tabular Data using Conditional GAN", Sec. 4.3),
made conditional on the label column (the label one-hot is an input of the encoder and the
decoder, Sohn et al. 2015) and trained with DP-SGD (Abadi et al. 2016, Alg. 1): Poisson-sampled
batches, per-row gradients clipped to ``max_grad_norm``, Gaussian noise of standard deviation
``noise_multiplier · max_grad_norm`` added to every step (``opacus.PrivacyEngine``).

Data-independent encoding (no mode-specific normalisation: TVAE's per-column Gaussian mixtures
read the data without paying for it). Every column becomes an integer code through the shared
codecs of :mod:`synth_engine.generators.domain`: categories (schema-declared, or a DP category
list with an *other* bucket), a missing code, and for numeric columns the cells of a public grid
inside schema-declared (or DP-estimated) bounds; a sampled cell is decoded uniformly within it.

Privacy, for the add/remove-one-row relation, composed in Rényi DP (Mironov 2017, Prop. 1):

1. ``domain`` -- DP category lists and bounds for what the schema leaves undeclared, recorded in
   a zCDP accountant (ρ_domain, plus the sparse histograms' approximate-zCDP δ_threshold).
2. ``label`` -- one Gaussian histogram of the label (σ_label, ρ_label = 1/(2σ²)); its normalised
   counts are the class shares of unconditional sampling.
3. ``dp_sgd`` -- the subsampled Gaussian mechanism repeated ``steps`` times; its RDP curve is
   Opacus's (Mironov, Talwar & Zhang 2019).

0. ``rows`` -- a DP estimate n̂ of the row count (:mod:`synth_engine.privacy.row_count`). The
   sampling rate q = 1/⌈n̂ / batch_size⌉, the number of steps and the usefulness refusal are
   computed from n̂, never from the exact n, which the add/remove accounting does not treat as
   public (one row more would otherwise flip q and the refusal with certainty).

ρ-zCDP is RDP with ε(α) = ρα at every order α (Bun & Steinke 2016, Def. 1.1), so the total curve
is ``rdp_sgd(α) + (ρ_rows + ρ_domain + ρ_label)·α``, converted to (ε, δ − δ_threshold) with
Opacus's conversion (Balle et al. 2020, Thm. 21); the approximate-zCDP δ_threshold is added on
top (Bun & Steinke 2016, Sec. 8). Shares ``ROWS_FRACTION``, ``domain_fraction`` and
``label_fraction`` of the zCDP budget that alone would reach the target are reserved for stages
0--2 whatever the schema; the noise multiplier is the smallest (by bisection) whose composed ε
stays at or below the target for the q that n̂ gives. Before the data is read, the plan is the
target itself (``plan_privacy`` without a size); given a public size guess it predicts the noise.
"""

from __future__ import annotations

import json
import math
import secrets
import warnings
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from opacus import PrivacyEngine
from opacus.data_loader import DPDataLoader
from torch.utils.data import TensorDataset

from synth_engine.generators._torch_utils import (
    PerRowLoss,
    TabularCVAE,
    deterministic_torch,
    sample_codes,
)
from synth_engine.generators.base import (
    Generator,
    GeneratorError,
    InsufficientBudgetError,
    PrivacySpent,
)
from synth_engine.generators.checks import check_n_rows, check_privacy_target, round_counts
from synth_engine.generators.counts import FrameCounts
from synth_engine.generators.domain import (
    CategoricalCodec,
    Codec,
    codec_from_dict,
    fit_codecs,
    parse_schema,
    target_shares,
    validate_frame,
)
from synth_engine.privacy.accountant import ZCDPAccountant
from synth_engine.privacy.mechanisms import gaussian_noise
from synth_engine.privacy.rdp import NoiseCalibrationError, calibrate_noise_multiplier, composed_epsilon
from synth_engine.privacy.row_count import ROWS_FRACTION, PaidRowEstimate, estimate_record, noisy_row_count, rows_sigma
from synth_engine.privacy.zcdp import cdp_rho, gaussian_sigma

FORMAT_VERSION = 1
ACCOUNTANT_NAME = "RDP (Mironov 2017; Opacus subsampled Gaussian) + zCDP stages, Balle et al. 2020"
COMPOSITION = (
    "RDP: rdp_sgd(alpha) + (rho_domain + rho_label) * alpha, converted at "
    "delta - approximate_delta (Balle et al. 2020, Thm. 21), approximate_delta added"
)
MAX_NOISE_TO_SIGNAL = 0.05  # DP-SGD noise σ·C may be at most 5 % of a full clipped batch B·C
MIN_LABEL_SIGNAL_TO_NOISE = 20.0  # the label histogram's σ may be at most 5 % of the rows
SAMPLE_CHUNK_ROWS = 8192


# ------------------------------------------------ the privacy plan (accounting: synth_engine.privacy.rdp)


@dataclass(frozen=True)
class ReservedBudget:
    """Sampling arithmetic and the budgets reserved for the rows, domain and label stages."""

    rows_rho: float
    rows_sigma: float
    sample_rate: float
    steps: int
    expected_batch_size: float
    max_grad_norm: float
    threshold_delta: float
    conversion_delta: float
    domain_rho: float
    label_rho: float
    label_sigma: float

    @property
    def zcdp_rho(self) -> float:
        """The zCDP stages' total ρ (rows, domain, label), composed with DP-SGD's RDP."""
        return self.rows_rho + self.domain_rho + self.label_rho


@dataclass(frozen=True)
class PrivacyPlan(ReservedBudget):
    """Every stage's budget and noise: the reserved budgets and DP-SGD's calibrated noise multiplier."""

    noise_multiplier: float


def privacy_plan(params: dict[str, Any], epsilon: float, delta: float, n_rows: float) -> PrivacyPlan:
    """Every stage's budget and noise for a target and a row count that is public or DP (n̂).

    q = 1/⌈n_rows / batch_size⌉ and ⌈n_rows / batch_size⌉ Poisson-sampled steps per epoch; the
    loader in ``_train`` is built with exactly this q.
    """
    reserved = _reserved(params, epsilon, delta, n_rows)
    try:
        noise_multiplier = calibrate_noise_multiplier(
            epsilon, reserved.conversion_delta, reserved.sample_rate, reserved.steps, reserved.zcdp_rho
        )
    except NoiseCalibrationError as error:
        raise InsufficientBudgetError(str(error)) from error
    return PrivacyPlan(**asdict(reserved), noise_multiplier=noise_multiplier)


def _reserved(params: dict[str, Any], epsilon: float, delta: float, n_rows: float) -> ReservedBudget:
    """Sampling arithmetic and the budgets reserved for the rows, domain and label stages."""
    batches = math.ceil(n_rows / min(params["batch_size"], n_rows))
    threshold_delta = params["threshold_delta_fraction"] * delta
    reference_rho = cdp_rho(epsilon, delta - threshold_delta)
    label_rho = params["label_fraction"] * reference_rho
    rows_rho = ROWS_FRACTION * reference_rho
    return ReservedBudget(
        rows_rho=rows_rho,
        rows_sigma=rows_sigma(rows_rho),
        sample_rate=1.0 / batches,
        steps=params["epochs"] * batches,
        expected_batch_size=n_rows / batches,
        max_grad_norm=params["max_grad_norm"],
        threshold_delta=threshold_delta,
        conversion_delta=delta - threshold_delta,
        domain_rho=params["domain_fraction"] * reference_rho,
        label_rho=label_rho,
        label_sigma=gaussian_sigma(label_rho),
    )


def estimate_rows(
    params: dict[str, Any],
    epsilon: float,
    delta: float,
    n_rows: int,
    accountant: ZCDPAccountant,
    rng: np.random.Generator,
) -> float:
    """The DP row estimate n̂ on which the fit's q, steps and refusal are decided (stage ``rows``)."""
    sigma = _reserved(params, epsilon, delta, float(params["batch_size"])).rows_sigma
    return noisy_row_count(n_rows, sigma, accountant, rng)


def _is_useful(plan: PrivacyPlan, n_rows: float) -> bool:
    gradient_ok = plan.noise_multiplier <= MAX_NOISE_TO_SIGNAL * plan.expected_batch_size
    return gradient_ok and plan.label_sigma <= n_rows / MIN_LABEL_SIGNAL_TO_NOISE


def minimum_epsilon(params: dict[str, Any], delta: float, n_rows: float) -> float:
    """Smallest ε (bisection on log ε, rounded up) whose plan passes the usefulness checks.

    Both checks are monotone in ε; the gradient check holds exactly when the largest useful
    noise multiplier already meets ε, so each step costs one accountant evaluation.
    """
    low, high = math.log(1e-4), math.log(1e4)
    for _ in range(40):
        middle = (low + high) / 2.0
        plan = _reserved(params, math.exp(middle), delta, n_rows)
        largest = MAX_NOISE_TO_SIGNAL * plan.expected_batch_size
        spent, _ = composed_epsilon([(largest, plan.sample_rate, plan.steps)], plan.zcdp_rho, plan.conversion_delta)
        useful = spent <= math.exp(middle) and plan.label_sigma <= n_rows / MIN_LABEL_SIGNAL_TO_NOISE
        low, high = (low, middle) if useful else (middle, high)
    return math.exp(high)


# ---------------------------------------------------------------------- generator


class DPTVAEGenerator(Generator):
    """Conditional TVAE trained with DP-SGD; (ε, δ)-DP including domain and label shares.

    Parameters
    ----------
    epochs : int
        Passes over the data (each ⌈n / batch_size⌉ Poisson-sampled steps).
    batch_size : int
        Expected Poisson batch size.
    learning_rate : float
        Adam step size.
    embedding_dim : int
        Size of the latent vector.
    hidden_dims : sequence of int
        Hidden layer widths of the encoder (the decoder mirrors them).
    max_grad_norm : float
        Per-row gradient clipping bound C.
    loss_factor : float
        Weight of the reconstruction term against the KL term (TVAE uses 2).
    max_cells : int
        Cells of a numeric column's public grid (its resolution and its softmax size); an
        integer range with at most this many values gets one cell per value, which keeps point
        masses such as 40 working hours exact.
    domain_fraction, label_fraction : float
        Shares of the reference zCDP budget reserved for DP domains and the label histogram.
    threshold_delta_fraction : float
        Share of δ for the thresholds of DP category lists (approximate zCDP).
    num_threads : int
        Torch CPU threads during fit and sample (fixed, for byte-identical output).

    Attributes
    ----------
    progress_callback : callable or None
        Set by a job runner; called with the fraction of epochs done (0..1) after each epoch.
    """

    name = "dp-tvae"
    is_private = True
    takes_row_estimate = True  # fit/plan_privacy/budget_refusal accept a PaidRowEstimate
    progress_callback: Callable[[float], None] | None = None

    def __init__(
        self,
        *,
        epochs: int = 30,
        batch_size: int = 2048,
        learning_rate: float = 2e-3,
        embedding_dim: int = 32,
        hidden_dims: Sequence[int] = (128, 128),
        max_grad_norm: float = 1.0,
        loss_factor: float = 2.0,
        max_cells: int = 100,
        domain_fraction: float = 0.05,
        label_fraction: float = 0.01,
        threshold_delta_fraction: float = 0.1,
        num_threads: int = 1,
    ) -> None:
        self.epochs = epochs
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.embedding_dim = embedding_dim
        self.hidden_dims = hidden_dims
        self.max_grad_norm = max_grad_norm
        self.loss_factor = loss_factor
        self.max_cells = max_cells
        self.domain_fraction = domain_fraction
        self.label_fraction = label_fraction
        self.threshold_delta_fraction = threshold_delta_fraction
        self.num_threads = num_threads

    def get_params(self) -> dict[str, Any]:
        return {
            "epochs": self.epochs,
            "batch_size": self.batch_size,
            "learning_rate": self.learning_rate,
            "embedding_dim": self.embedding_dim,
            "hidden_dims": [int(width) for width in self.hidden_dims],
            "max_grad_norm": self.max_grad_norm,
            "loss_factor": self.loss_factor,
            "max_cells": self.max_cells,
            "domain_fraction": self.domain_fraction,
            "label_fraction": self.label_fraction,
            "threshold_delta_fraction": self.threshold_delta_fraction,
            "num_threads": self.num_threads,
        }

    # ------------------------------------------------------------------ checks and plan

    def check(self, frame: pd.DataFrame, schema: dict[str, Any]) -> list[str]:
        """Validate the frame (see :func:`validate_frame`) and the label; return warnings."""
        specs = parse_schema(schema)
        _label_index(specs)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            messages = validate_frame(frame, specs, private=True) or []
        return list(messages) + [str(warning.message) for warning in caught]

    def plan_privacy(
        self,
        epsilon: float,
        delta: float,
        n_rows: int | None = None,
        *,
        row_estimate: PaidRowEstimate | None = None,
    ) -> PrivacySpent:
        """The (ε, δ) ``fit`` will spend at most, from public inputs only.

        Without ``n_rows`` (how a job plans: the row count is not public) the plan is the
        target, which ``fit`` never exceeds whatever its DP row estimate. With a public size
        guess ``n_rows`` it predicts the calibrated noise and refuses a target too small for a
        table of that size (a planning aid for the request form). With ``row_estimate`` (the
        job's source version's paid estimate) it refuses what ``fit(..., row_estimate=...)``
        would, and records the estimate (:meth:`budget_refusal`).
        """
        check_privacy_target(epsilon, delta)
        self._check_params()
        if row_estimate is not None:
            self._plan(epsilon, delta, row_estimate.rows, estimated=True)
            paid: dict[str, Any] = {"params": self.get_params(), "row_estimate": estimate_record(row_estimate)}
            return PrivacySpent(float(epsilon), float(delta), ACCOUNTANT_NAME, paid)
        if n_rows is None:
            details = {"params": self.get_params(), "rows_fraction": ROWS_FRACTION, "accountant": ACCOUNTANT_NAME}
            return PrivacySpent(float(epsilon), float(delta), ACCOUNTANT_NAME, details)
        check_n_rows(n_rows)
        plan = self._plan(epsilon, delta, int(n_rows))
        history = [(plan.noise_multiplier, plan.sample_rate, plan.steps)]
        spent, order = composed_epsilon(history, plan.zcdp_rho, plan.conversion_delta)
        details = _details(
            history,
            max_grad_norm=plan.max_grad_norm,
            conversion_delta=plan.conversion_delta,
            rho=plan.zcdp_rho,
            approximate_delta=plan.threshold_delta,
            order=order,
        )
        return PrivacySpent(spent, float(delta), ACCOUNTANT_NAME, details)

    def budget_refusal(
        self, schema: dict[str, Any], epsilon: float, delta: float, row_estimate: PaidRowEstimate
    ) -> TvaeBudgetRefusal | None:
        """Why ``fit(..., row_estimate=row_estimate)`` would refuse (ε, δ), or None if it would not:
        the plan's usefulness checks on the paid estimate, a pure function of the parameters, (ε, δ)
        and the estimate, decided before anything is read (filing takes it first)."""
        _label_index(parse_schema(schema))
        check_privacy_target(epsilon, delta)
        self._check_params()
        try:
            self._plan(epsilon, delta, row_estimate.rows, estimated=True)
        except InsufficientBudgetError:
            minimum = _round_up(minimum_epsilon(self.get_params(), float(delta), row_estimate.rows))
            return TvaeBudgetRefusal(float(epsilon), float(delta), float(row_estimate.rows), minimum)
        return None

    def _plan(self, epsilon: float, delta: float, n_rows: float, *, estimated: bool = False) -> PrivacyPlan:
        """Calibrate for ``n_rows`` (a public guess, or the DP estimate n̂); refuse budgets too
        small to be useful for it."""
        plan = privacy_plan(self.get_params(), float(epsilon), float(delta), n_rows)
        if not _is_useful(plan, n_rows):
            minimum = _round_up(minimum_epsilon(self.get_params(), float(delta), n_rows))
            size = f"about {n_rows:.0f} rows (a DP estimate)" if estimated else f"{n_rows} rows"
            raise InsufficientBudgetError(
                f"epsilon={epsilon} is too small for {size}: DP-SGD noise multiplier "
                f"{plan.noise_multiplier:.3g} on batches of {plan.expected_batch_size:.0f} "
                f"rows, label histogram noise σ={plan.label_sigma:.3g} rows; use epsilon >= "
                f"{minimum:g} (at delta={delta}), or more rows, a larger batch_size or fewer "
                "epochs"
            )
        return plan

    def _check_params(self) -> None:
        positive_ints = {
            "epochs": self.epochs,
            "batch_size": self.batch_size,
            "embedding_dim": self.embedding_dim,
            "num_threads": self.num_threads,
            "max_cells": self.max_cells,
        }
        for key, value in positive_ints.items():
            if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
                raise GeneratorError(f"{key} must be a positive integer, got {value!r}")
        if not self.hidden_dims or any(int(width) <= 0 for width in self.hidden_dims):
            raise GeneratorError(f"hidden_dims must be positive widths, got {self.hidden_dims!r}")
        for key in (
            "learning_rate",
            "max_grad_norm",
            "loss_factor",
            "domain_fraction",
            "label_fraction",
            "threshold_delta_fraction",
        ):
            value = getattr(self, key)
            if not isinstance(value, int | float) or not math.isfinite(value) or value <= 0:
                raise GeneratorError(f"{key} must be a positive number, got {value!r}")
        if self.domain_fraction + self.label_fraction >= 1 or self.threshold_delta_fraction >= 1:
            raise GeneratorError("domain_fraction + label_fraction and threshold_delta_fraction must each stay below 1")

    # ------------------------------------------------------------------ fit

    def fit(
        self,
        frame: pd.DataFrame,
        schema: dict[str, Any],
        epsilon: float,
        delta: float,
        random_state: int | None = None,
        *,
        row_estimate: PaidRowEstimate | None = None,
    ) -> DPTVAEGenerator:
        """Validate, plan, then spend at most (ε, δ) on domains, label shares and DP-SGD.

        With ``row_estimate`` (an estimate paid for outside the fit: a job's source version's) the
        fit spends nothing on n (its ``rows`` share stays unspent) and decides q, the steps and its
        refusal on that estimate, before reading the rows, as :meth:`budget_refusal` does.

        ``random_state=None`` seeds from :mod:`secrets`; an int makes the fit and the later
        ``sample`` calls reproducible (tests and benchmarks only: the noise then comes from
        non-cryptographic generators, as with any seeded run).
        """
        specs = parse_schema(schema)
        label_index = _label_index(specs)
        check_privacy_target(epsilon, delta)
        validate_frame(frame, specs, private=True)
        self._check_params()
        seed = secrets.randbits(128) if random_state is None else int(random_state)
        domain_seed, torch_seed, sample_seed = np.random.SeedSequence(seed).spawn(3)
        rng = np.random.default_rng(domain_seed)
        accountant = ZCDPAccountant()
        if row_estimate is None:
            n_hat = estimate_rows(self.get_params(), float(epsilon), float(delta), len(frame), accountant, rng)
        else:
            n_hat = float(row_estimate.rows)
        plan = self._plan(epsilon, delta, n_hat, estimated=True)
        self.row_estimate_ = estimate_record(row_estimate)
        codecs = fit_codecs(
            FrameCounts(frame),
            specs,
            rho=plan.domain_rho,
            threshold_delta=plan.threshold_delta,
            max_cells=self.max_cells,
            accountant=accountant,
            rng=rng,
        )
        codes = np.column_stack([codec.encode(frame[codec.name]) for codec in codecs])
        self.label_weights_ = _noisy_label_weights(codes, codecs, label_index, plan, accountant, rng)
        sizes = [codec.n_codes for codec in codecs]
        state, history = self._train(codes, sizes, label_index, plan, int(torch_seed.generate_state(1, np.uint32)[0]))
        self.columns_ = [spec.name for spec in specs]
        self.codecs_, self.label_index_ = codecs, label_index
        self.network_ = self._network(sizes, label_index, state)
        self.sgd_history_, self.accountant_ = history, accountant
        self.target_ = {"epsilon": float(epsilon), "delta": float(delta)}
        self.sample_rng_ = np.random.default_rng(sample_seed)
        return self

    def _network(
        self, sizes: list[int], label_index: int | None, state: dict[str, torch.Tensor] | None = None
    ) -> TabularCVAE:
        network = TabularCVAE(
            sizes, label_index, self.embedding_dim, [int(width) for width in self.hidden_dims], self.loss_factor
        )
        if state is not None:
            network.load_state_dict(state)
        return network.eval()

    def _train(
        self, codes: np.ndarray, sizes: list[int], label_index: int | None, plan: PrivacyPlan, seed: int
    ) -> tuple[dict[str, torch.Tensor], list[list]]:
        """DP-SGD with Opacus (Poisson sampling, flat clipping, RDP accountant); returns the
        trained weights and the accountant's history, checked against the plan."""
        with deterministic_torch(seed, self.num_threads), warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="Full backward hook is firing")
            # Secure mode needs torchcsprng (none for this torch); the noise is seeded from `secrets`
            # and the datasheet says it is pseudo-random, so Opacus's reminder adds nothing.
            warnings.filterwarnings("ignore", message="Secure RNG turned off")
            network = self._network(sizes, label_index).train()
            optimizer = torch.optim.Adam(network.parameters(), lr=self.learning_rate)
            # Poisson sampling at the planned q (from n̂), not at Opacus's default 1/len(loader),
            # which would read the exact row count.
            loader = DPDataLoader(
                TensorDataset(torch.from_numpy(codes)),
                sample_rate=plan.sample_rate,
                generator=torch.Generator().manual_seed(seed + 3),
            )
            loader.batch_sampler.steps = plan.steps // self.epochs
            engine = PrivacyEngine(accountant="rdp", secure_mode=False)
            noise_generator = torch.Generator().manual_seed(seed + 1)
            model, optimizer, criterion, loader = engine.make_private(
                module=network,
                optimizer=optimizer,
                criterion=PerRowLoss(),
                data_loader=loader,
                noise_multiplier=plan.noise_multiplier,
                max_grad_norm=self.max_grad_norm,
                poisson_sampling=False,
                loss_reduction="sum",
                noise_generator=noise_generator,
                grad_sample_mode="ghost",
            )
            latent_generator = torch.Generator().manual_seed(seed + 2)
            for epoch in range(self.epochs):
                for (batch,) in loader:
                    optimizer.zero_grad(set_to_none=True)
                    noise = torch.randn(batch.shape[0], self.embedding_dim, generator=latent_generator)
                    criterion(model(batch, noise)).backward()
                    optimizer.step()
                if self.progress_callback is not None:
                    self.progress_callback((epoch + 1) / self.epochs)
            history = [[float(s), float(q), int(n)] for s, q, n in engine.accountant.history]
            state = {key: value.detach().clone() for key, value in network.state_dict().items()}
        _check_history(history, plan)
        return state, history

    # ------------------------------------------------------------------ sample

    def sample(self, n_rows: int, conditions: dict[str, Any] | None = None) -> pd.DataFrame:
        """Draw ``n_rows`` rows: label codes (DP shares or ``conditions``), z ~ N(0, I), then
        each column's code from the decoder's softmax and its value from the codec."""
        self._check_fitted()
        check_n_rows(n_rows)
        labels = self._label_codes(int(n_rows), conditions)
        rng = self.sample_rng_
        codes = [np.empty(0, dtype=np.int64) for _ in self.network_.features]
        with deterministic_torch(0, self.num_threads):
            for start in range(0, n_rows, SAMPLE_CHUNK_ROWS):
                chunk = labels[start : start + SAMPLE_CHUNK_ROWS]
                latent = rng.standard_normal((len(chunk), self.embedding_dim), dtype=np.float32)
                probabilities = self.network_.feature_probabilities(torch.from_numpy(latent), torch.from_numpy(chunk))
                for k, p in enumerate(probabilities):
                    codes[k] = np.concatenate([codes[k], sample_codes(p, rng.random(len(chunk)))])
        by_column = dict(zip(self.network_.features, codes, strict=True))
        if self.label_index_ is not None:
            by_column[self.label_index_] = labels
        columns = {codec.name: codec.decode(by_column[i], rng) for i, codec in enumerate(self.codecs_)}
        return pd.DataFrame(columns, columns=self.columns_)

    def _label_codes(self, n_rows: int, conditions: dict[str, Any] | None) -> np.ndarray:
        """Label codes in proportion to the DP shares, or to the requested ones (controlled
        rounding, then shuffled)."""
        if conditions:
            shares = _label_shares(conditions, self.columns_, self.codecs_, self.label_index_, self.label_weights_)
        elif self.label_index_ is None:
            return np.zeros(n_rows, dtype=np.int64)
        else:
            shares = self.label_weights_
        counts = round_counts(np.asarray(shares, dtype=np.float64), n_rows, self.sample_rng_)
        codes = np.repeat(np.arange(len(counts), dtype=np.int64), counts)
        self.sample_rng_.shuffle(codes)
        return codes

    # ------------------------------------------------------------------ accounting and I/O

    def privacy_spent(self) -> PrivacySpent:
        """(ε, δ) from Opacus's history composed with the zCDP stages (module docstring)."""
        self._check_fitted()
        delta = self.target_["delta"]
        approximate_delta = self.accountant_.approximate_delta
        rho = self.accountant_.rho
        epsilon, order = composed_epsilon(self.sgd_history_, rho, delta - approximate_delta)
        details = _details(
            self.sgd_history_,
            max_grad_norm=self.max_grad_norm,
            conversion_delta=delta - approximate_delta,
            rho=rho,
            approximate_delta=approximate_delta,
            order=order,
        )
        details.update(
            target_epsilon=self.target_["epsilon"],
            params=self.get_params(),
            zcdp_stages=self.accountant_.details(delta)["stages"],
            row_estimate=getattr(self, "row_estimate_", estimate_record(None)),
        )
        return PrivacySpent(epsilon, delta, ACCOUNTANT_NAME, details)

    def save(self, directory: Path) -> None:
        """Write ``model.json`` (parameters, codecs, accountants, sampler state) and
        ``weights.pt`` (the decoder's state_dict; no pickled objects)."""
        self._check_fitted()
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        meta = {
            "generator": self.name,
            "format_version": FORMAT_VERSION,
            "params": self.get_params(),
            "columns": self.columns_,
            "codecs": [codec.to_dict() for codec in self.codecs_],
            "label_index": self.label_index_,
            "label_weights": np.asarray(self.label_weights_).tolist(),
            "sgd_history": self.sgd_history_,
            "accountant": self.accountant_.to_dict(),
            "target": self.target_,
            "row_estimate": getattr(self, "row_estimate_", estimate_record(None)),
            "sample_rng": self.sample_rng_.bit_generator.state,
        }
        (directory / "model.json").write_text(json.dumps(meta, indent=1))
        torch.save(self.network_.state_dict(), directory / "weights.pt")

    @classmethod
    def load(cls, directory: Path) -> DPTVAEGenerator:
        """Read a model written by :meth:`save` (``torch.load(weights_only=True)``)."""
        directory = Path(directory)
        meta = json.loads((directory / "model.json").read_text())
        if meta.get("generator") != cls.name or meta.get("format_version") != FORMAT_VERSION:
            raise GeneratorError(f"{directory} does not hold a dp-tvae model of this version")
        model = cls(**meta["params"])
        model.columns_ = meta["columns"]
        model.codecs_ = [codec_from_dict(codec) for codec in meta["codecs"]]
        model.label_index_ = meta["label_index"]
        model.label_weights_ = np.asarray(meta["label_weights"], dtype=np.float64)
        state = torch.load(directory / "weights.pt", weights_only=True)
        sizes = [codec.n_codes for codec in model.codecs_]
        model.network_ = model._network(sizes, model.label_index_, state)
        model.sgd_history_ = meta["sgd_history"]
        model.accountant_ = ZCDPAccountant.from_dict(meta["accountant"])
        model.target_ = meta["target"]
        model.row_estimate_ = meta.get("row_estimate", estimate_record(None))
        model.sample_rng_ = np.random.default_rng()
        model.sample_rng_.bit_generator.state = meta["sample_rng"]
        return model

    def _check_fitted(self) -> None:
        if not hasattr(self, "network_"):
            raise GeneratorError("call fit() before sample(), privacy_spent() or save()")


# ---------------------------------------------------------------------- helpers


def _label_index(specs: list[Any]) -> int | None:
    labels = [i for i, spec in enumerate(specs) if spec.role == "label"]
    if len(labels) > 1:
        raise GeneratorError(f"dp-tvae conditions on one label column; the schema declares {len(labels)}")
    if labels and specs[labels[0]].type not in ("categorical", "boolean"):
        raise GeneratorError(f"label column {specs[labels[0]].name!r} must be categorical or boolean")
    return labels[0] if labels else None


def _noisy_label_weights(
    codes: np.ndarray,
    codecs: list[Codec],
    label_index: int | None,
    plan: PrivacyPlan,
    accountant: ZCDPAccountant,
    rng: np.random.Generator,
) -> np.ndarray:
    """Gaussian label histogram (L2 sensitivity 1): the DP class shares.

    Post-processing (free): counts below 3σ are set to zero, so that empty codes (the label's
    *other* and *missing*) do not get sampled from noise alone.
    """
    if label_index is None:
        return np.ones(1)
    counts = np.bincount(codes[:, label_index], minlength=codecs[label_index].n_codes)
    noisy = gaussian_noise(counts, plan.label_sigma, rng)
    noisy[noisy < 3.0 * plan.label_sigma] = 0.0
    accountant.add_gaussian("label", plan.label_sigma)
    return noisy if noisy.sum() > 0 else np.ones(len(noisy))


def _label_shares(
    conditions: dict[str, Any],
    columns: list[str],
    codecs: list[Codec],
    label_index: int | None,
    estimate: np.ndarray | None,
) -> np.ndarray:
    """Target shares over the label's codes for ``{label: value}`` or ``{label: {value: share}}``."""
    if not isinstance(conditions, dict) or len(conditions) != 1:
        raise GeneratorError("conditions must map the label column to a value or to shares")
    column, wanted = next(iter(conditions.items()))
    if label_index is None or column != columns[label_index]:
        raise GeneratorError(f"dp-tvae conditions only on its label column, not {column!r}")
    codec = codecs[label_index]
    assert isinstance(codec, CategoricalCodec)
    return target_shares(codec, wanted, estimate)


def _details(
    history: list,
    *,
    max_grad_norm: float,
    conversion_delta: float,
    rho: float,
    approximate_delta: float,
    order: float,
) -> dict[str, Any]:
    noise_multiplier, sample_rate, steps = history[0] if history else (None, None, 0)
    return {
        "neighbouring": "add/remove one row",
        "noise_multiplier": noise_multiplier,
        "sample_rate": sample_rate,
        "steps": sum(int(entry[2]) for entry in history),
        "max_grad_norm": max_grad_norm,
        "accountant": ACCOUNTANT_NAME,
        "sgd_history": [list(entry) for entry in history],
        "zcdp_rho": rho,
        "approximate_delta": approximate_delta,
        "conversion_delta": conversion_delta,
        "optimal_order": order,
        "composition": COMPOSITION,
    }


def _check_history(history: list[list], plan: PrivacyPlan) -> None:
    expected = [[plan.noise_multiplier, plan.sample_rate, plan.steps]]
    if history != expected:
        raise RuntimeError(f"Opacus ran {history}, but the plan was {expected}")


@dataclass(frozen=True)
class TvaeBudgetRefusal:
    """Why a fit on a paid row estimate refuses (ε, δ): DP-SGD's noise or the label histogram's
    would swamp a table of ``rows`` (an estimate, never the exact count); ``minimum_epsilon``
    (rounded up) passes at δ."""

    epsilon: float
    delta: float
    rows: float
    minimum_epsilon: float

    def message(self) -> str:
        return (
            f"epsilon={self.epsilon} is too small for about {self.rows:.0f} rows (a DP estimate): use epsilon >= "
            f"{self.minimum_epsilon:g} (at delta={self.delta}), or a larger batch_size or fewer epochs"
        )


def _round_up(value: float, digits: int = 3) -> float:
    """``value`` rounded up to ``digits`` significant digits (a minimum must not be understated)."""
    scale = 10.0 ** (digits - 1 - math.floor(math.log10(value)))
    return math.ceil(value * scale) / scale
