"""MST: differentially private synthetic data from a maximum spanning tree of 2-way marginals.

After McKenna, Miklau & Sheldon (2021), "Winning the NIST Contest: A scalable and general
approach to differentially private synthetic data" (JPC 11(3)), Section 4 ("MST"):

0. *Rows*: a DP estimate n̂ of the row count (:mod:`synth_engine.privacy.row_count`), on which
   the refusal of a budget too small for the data is decided; the exact n is never used. A job
   hands the fit its source version's estimate, already paid for in the ledger
   (``row_estimate=``, a :class:`~synth_engine.privacy.row_count.PaidRowEstimate`): the fit then
   spends nothing on n, and the refusal (:meth:`MSTGenerator.budget_refusal`) is a function of
   public and paid inputs only, which filing computes before anything is spent.
1. *Domain* (only for what the schema does not declare): DP category lists and numeric bounds
   (:mod:`synth_engine.generators.domain`).
2. *Measure 1-way marginals* with the Gaussian mechanism (Sec. 4, "measure" step); numeric
   columns are measured on a fine public grid, then grouped into quantile-like bins (a
   post-processing, like the paper's domain compression, Sec. 4.1).
   With a label and ``label_features = k`` (by default ``"auto"``: k from the row estimate and
   the public plan, :func:`auto_label_features`, or every column), k columns are then picked by
   the exponential mechanism for their relation to the label (:func:`pick_label_columns`), and
   only their (label, column) tables get the label's share of the 2-way budget; after
   estimation the other columns depend on the label only through their tree parents.
3. *Select* a spanning tree over the binned attributes: Kruskal's algorithm where each edge is
   picked by the exponential mechanism with score ``‖M_ab − M̂_ab‖₁`` between the true 2-way
   marginal and the independent estimate from the noisy 1-ways (Sec. 4, Alg. 2). Above
   ``SELECTION_SAMPLE_FACTOR × selection_rows`` estimated rows the scored tables are counted on
   a content-defined sample of about ``selection_rows`` rows (sensitivity 2, no amplification
   claimed; :class:`SampledPairs`), the measured ones on every row.
4. *Measure* the 2-way marginals on the tree's edges with the Gaussian mechanism (in a focused
   fit the edges into the picked columns with ``label_edge_weight`` times another's ρ, the
   stage's total unchanged).
5. *Estimate* consistent marginals (:mod:`synth_engine.generators.marginals`). Instead of
   Private-PGM's mirror descent we use the tree structure: inverse-variance-weighted 1-way
   estimates projected onto the simplex, then each edge table is the L2 projection of its noisy
   table onto the non-negative tables with those margins (the transportation polytope), solved
   by dual block-coordinate ascent. On a tree these pairwise tables define the maximum-entropy
   graphical model exactly.
6. *Sample* exactly by ancestral sampling down the tree with controlled rounding (the
   paper's ``synthetic_data`` rounding), rooted at the conditioned column when there is one.

Privacy: every stage is accounted in zCDP (see :mod:`synth_engine.privacy`); the budget for a
target (ε, δ) is the largest ρ whose tight conversion stays within it.
"""

from __future__ import annotations

import json
import math
import os
import secrets
import warnings
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pandas as pd

from synth_engine.generators.base import (
    Generator,
    GeneratorError,
    InsufficientBudgetError,
    PrivacySpent,
)
from synth_engine.generators.checks import (
    check_n_rows,
    check_privacy_target,
    cumulative_shares,
    round_cumulative,
)
from synth_engine.generators.counts import CountSource, FrameCounts, RowSample
from synth_engine.generators.domain import (
    CategoricalCodec,
    Codec,
    codec_from_dict,
    fit_codecs,
    is_nullable,
    ordered_bins,
    parse_schema,
    target_shares,
    unordered_bins,
    validate_frame,
)
from synth_engine.generators.marginals import (
    conditional,
    estimate_model,
    focus_label_dependence,
    label_edges,
    project_simplex,
    tree_order,
)
from synth_engine.privacy.accountant import ACCOUNTANT_NAME, ZCDPAccountant
from synth_engine.privacy.mechanisms import exponential_mechanism, gaussian_noise
from synth_engine.privacy.row_count import ROWS_FRACTION, PaidRowEstimate, estimate_record, noisy_row_count, rows_sigma
from synth_engine.privacy.zcdp import cdp_rho, exponential_epsilon, gaussian_sigma

FORMAT_VERSION = 1
MIN_SIGNAL_TO_NOISE = 20.0  # a marginal cell's noise σ may be at most 5 % of the rows
MIN_GRID_CELLS = 8  # the fewest cells the numeric grid is cut to when the 1-way noise is large
LABEL_FRACTION = 0.3  # default share of the 2-way budget on the (label, column) tables
AUTO = "auto"  # label_features chosen by auto_label_features
LABEL_NOISE_SHARE = 0.125  # "auto": a label table's noise σ at most this share of its typical cell
MIN_LABEL_FEATURES = 6  # "auto" focuses on no fewer label tables than this (else it measures them all)
LABEL_EDGE_WEIGHT = 16.0  # focused fits: ρ of a label-dependent edge table over another edge's (1: alike)
MAX_LABEL_EDGE_WEIGHT = 1000.0
SELECTION_ROWS = 1_000_000  # rows the tree selection scores on a sample of, above ...
SELECTION_SAMPLE_FACTOR = 4  # ... this many times as many estimated rows (so at least 4,000,000)


class MSTGenerator(Generator):
    """Differentially private MST generator (McKenna et al. 2021), (ε, δ)-DP via zCDP.

    Parameters
    ----------
    max_bins : int
        Most bins per column in the 2-way tables (Sec. 4.1's compression; more bins keep more
        detail but spread each 2-way count over more noisy cells).
    max_cells : int
        Most cells of the public fine grid of a numeric column (the 1-way resolution). A fit uses
        fewer when its 1-way noise is large for the data: about n̂ / σ₁ cells (each holds on
        average one noise σ of rows), never fewer than :data:`MIN_GRID_CELLS`, so that a small
        table's values are not drawn from cells that hold nothing but noise (:func:`grid_cells`).
    domain_fraction : float
        Share of ρ spent estimating undeclared domains (0 when the schema declares them all).
    one_way_fraction, selection_fraction : float
        Shares of the remaining ρ for the 1-way measurements and the tree selection; the 2-way
        measurements get the rest (85 %). The paper uses 1/3 each. Here the 2-way tables carry
        the most information (their margins re-measure the 1-ways, and are combined with them),
        and selection scores of thousands of rows are told apart with little budget; on the
        benchmark (caravan ε=3) 0.1/0.05 raised TSTR AUC from 0.58 to 0.64 without hurting
        adult.
    threshold_delta_fraction : float
        Share of δ given to the thresholds of the DP category lists (approximate zCDP).
    min_bin_sigmas : float
        A bin should hold at least this many 2-way noise σ's of estimated rows (6 rather than
        3 helped many-column data such as caravan: fewer, better-measured cells).
    estimation_iterations : int
        Dual-ascent sweeps of the per-edge projection.
    structure : {"auto", "tree"}
        ``"tree"`` is the paper's spanning tree over all columns. ``"auto"`` does the same
        unless the schema has a label column and at least two other columns; then the tree
        spans the other columns and every tree edge is measured jointly with the label
        (a tree-augmented naive Bayes structure, Friedman, Geiger & Goldszmidt 1997), so each
        attribute depends directly on the label, which is what downstream classifiers need.
    label_fraction : float
        In the label-augmented structure, share of the 2-way budget spent measuring the
        (label, column) table of every column directly; these tables are also margins of the
        edge tables, and the two estimates are combined by inverse variance. ``0`` measures the
        edge tables only. The default (:data:`LABEL_FRACTION`, 30 %) keeps the label's dependence
        on every column measured twice, which keeps a rare label predictive at low ε (issue
        11.8; figures in ``docs/generators.md``).
    label_features : int or "auto"
        ``"auto"`` (the default): k chosen before any data is read by :func:`auto_label_features`
        from the row estimate n̂, ε, δ, the declared domains and the number of columns (every
        column's table when they all fit within the stated noise; on the benchmark tables only
        Caravan is focused, on 7 columns at ε = 3). ``0`` measures the (label, column) table of
        every column. ``k > 0`` spends
        the ``label_fraction`` share on the k columns most related to the label instead, each
        measured with k-th of it (σ smaller by √(d−1)/√k), picked one by one with the
        exponential mechanism (:func:`pick_label_columns`, the ``label_selection`` stage).
        The label is then a direct parent of those k columns only: the others are drawn given
        their tree parent alone (pooled over the label), so they depend on the label through
        the tree, not through noise (a selective TAN,
        :func:`~synth_engine.generators.marginals.focus_label_dependence`). Columns binned to
        a single bin (no dependence to measure) are not candidates. Figures in
        ``docs/generators.md`` (issue 11.9).
    label_selection_fraction : float
        Share of the ρ left after the rows and domain stages spent on those k picks (when
        ``label_features`` is positive and smaller than the number of other columns).
    label_edge_weight : float
        With the label focused on k picked columns, the ρ of each *label-dependent* edge table
        (the edge into a picked column, down the tree from the first pick: the k − 1 tables the
        selective TAN keeps as (label, parent, column)) as a multiple of another edge table's.
        The ``two_way`` stage's total ρ is unchanged: with m such edges among E, each gets
        ``w · ρ₂ / (m·w + E − m)`` and every other ``ρ₂ / (m·w + E − m)`` (ρ₂ the stage's ρ),
        so the ledger records two σ's in that stage and the same ε. The default
        (:data:`LABEL_EDGE_WEIGHT`, 16) lifted Caravan ε = 3's TSTR AUC by 0.009 ± 0.0025 over 60
        paired seeds; ``1`` measures every edge alike (the fit before this option). No effect
        on an unfocused fit (every edge is label-dependent there), so every benchmark table
        but Caravan releases the same bytes. Figures in ``docs/generators.md`` (issue 11.9).
    selection_rows : int
        When the noisy row estimate n̂ exceeds :data:`SELECTION_SAMPLE_FACTOR` times this (4 M
        rows by default), the 2-way tables scored for the tree are counted on a content-defined
        sample of about this many rows (:class:`~synth_engine.generators.counts.RowSample`: the
        rows whose hash of their fine codes falls below n̂-dependent bound), and the measured
        tables (the tree's edges, the label tables, the 1-ways) on every row; the scores are
        then :func:`select_tree`'s sampled form (sensitivity 2). At 10 M rows this counts the
        1,176 scored tables of 50 columns on a tenth of the rows, most of the fit's work in a
        database. ``0``: every row, always. Figures in ``docs/generators.md``.
    """

    name = "mst"
    is_private = True
    takes_row_estimate = True  # fit/fit_counts/plan_privacy/budget_refusal accept a PaidRowEstimate

    def __init__(
        self,
        *,
        max_bins: int = 32,
        max_cells: int = 128,
        domain_fraction: float = 0.1,
        one_way_fraction: float = 0.1,
        selection_fraction: float = 0.05,
        threshold_delta_fraction: float = 0.1,
        min_bin_sigmas: float = 6.0,
        estimation_iterations: int = 300,
        structure: str = "auto",
        label_fraction: float = LABEL_FRACTION,
        label_features: int | str = AUTO,
        label_selection_fraction: float = 0.05,
        selection_rows: int = SELECTION_ROWS,
        label_edge_weight: float = LABEL_EDGE_WEIGHT,
    ) -> None:
        self.max_bins = max_bins
        self.max_cells = max_cells
        self.domain_fraction = domain_fraction
        self.one_way_fraction = one_way_fraction
        self.selection_fraction = selection_fraction
        self.threshold_delta_fraction = threshold_delta_fraction
        self.min_bin_sigmas = min_bin_sigmas
        self.estimation_iterations = estimation_iterations
        self.structure = structure
        self.label_fraction = label_fraction
        self.label_features = label_features
        self.label_selection_fraction = label_selection_fraction
        self.selection_rows = selection_rows
        self.label_edge_weight = label_edge_weight

    def get_params(self) -> dict[str, Any]:
        return {
            "max_bins": self.max_bins,
            "max_cells": self.max_cells,
            "domain_fraction": self.domain_fraction,
            "one_way_fraction": self.one_way_fraction,
            "selection_fraction": self.selection_fraction,
            "threshold_delta_fraction": self.threshold_delta_fraction,
            "min_bin_sigmas": self.min_bin_sigmas,
            "estimation_iterations": self.estimation_iterations,
            "structure": self.structure,
            "label_fraction": self.label_fraction,
            "label_features": self.label_features,
            "label_selection_fraction": self.label_selection_fraction,
            "selection_rows": self.selection_rows,
            "label_edge_weight": self.label_edge_weight,
        }

    # ------------------------------------------------------------------ fit

    def check(self, frame: pd.DataFrame, schema: dict[str, Any]) -> list[str]:
        """Validate ``frame`` against ``schema`` for a DP fit; return warnings, raise
        :class:`GeneratorError` for data MST cannot use. Remembers the schema so that
        :meth:`plan_privacy` can refuse a budget too small for these columns."""
        specs = parse_schema(schema)
        messages = validate_frame(frame, specs, private=True)
        self.checked_specs_ = specs
        return messages

    def plan_privacy(
        self,
        epsilon: float,
        delta: float,
        n_rows: int | None = None,
        *,
        row_estimate: PaidRowEstimate | None = None,
    ) -> PrivacySpent:
        """The (ε, δ) that ``fit`` will report, from public inputs only.

        The budget ρ is the largest whose tight conversion stays within (ε, δ), so the plan is
        the target itself; ``privacy_spent()`` after ``fit`` is at most this. ``n_rows`` is not
        used: the row count is not public (see :mod:`synth_engine.privacy.row_count`).

        Without ``row_estimate`` a budget too small for the data is refused by ``fit`` on its own
        DP estimate of n (stage ``rows``). With it (an estimate paid for outside the fit, the
        job's source version's), the plan records it under ``row_estimate`` and, once
        :meth:`check` has given the schema, refuses here a budget :meth:`budget_refusal` refuses.
        """
        check_privacy_target(epsilon, delta)
        specs = getattr(self, "checked_specs_", None)
        details: dict[str, Any] = {"params": self.get_params(), "row_estimate": estimate_record(row_estimate)}
        if specs is not None:
            n_hat = None if row_estimate is None else row_estimate.rows
            plan = _budget_plan(self.get_params(), epsilon, delta, specs, rows_stage=row_estimate is None, n_hat=n_hat)
            details.update(rho=plan.rho, approximate_delta=plan.threshold_delta)
            if n_hat is not None:
                details["label_features"] = plan.label_features
            if row_estimate is None:
                details["row_estimate"]["rho"] = plan.rows_rho
            else:
                self._raise_refusal(_refusal(self.get_params(), epsilon, delta, specs, row_estimate.rows))
        return PrivacySpent(float(epsilon), float(delta), ACCOUNTANT_NAME, details)

    def budget_refusal(
        self, schema: dict[str, Any], epsilon: float, delta: float, row_estimate: PaidRowEstimate
    ) -> BudgetRefusal | None:
        """Why ``fit(..., row_estimate=row_estimate)`` would refuse (ε, δ), or None if it would not.

        A pure function of the parameters, the schema, (ε, δ) and the paid estimate: the very
        decision the fit takes, before it reads anything, so filing can take it first.
        """
        _check_params(self.get_params())
        check_privacy_target(epsilon, delta)
        return _refusal(self.get_params(), epsilon, delta, parse_schema(schema), row_estimate.rows)

    def fit(
        self,
        frame: pd.DataFrame,
        schema: dict[str, Any],
        epsilon: float,
        delta: float,
        random_state: int | None = None,
        *,
        row_estimate: PaidRowEstimate | None = None,
    ) -> MSTGenerator:
        """Validate, then spend at most (ε, δ) on the five MST stages; return ``self``.

        ``random_state=None`` seeds from :mod:`secrets` (128 bits); an int makes the fit and
        every later ``sample`` call reproducible, which is for tests and benchmarks only.
        ``row_estimate``: see :meth:`fit_counts`.
        """
        _check_params(self.get_params())
        specs = parse_schema(schema)
        check_privacy_target(epsilon, delta)
        for message in validate_frame(frame, specs, private=True):
            warnings.warn(message, UserWarning, stacklevel=2)
        return self.fit_counts(
            FrameCounts(frame), schema, epsilon, delta, random_state=random_state, row_estimate=row_estimate
        )

    def fit_counts(
        self,
        source: CountSource,
        schema: dict[str, Any],
        epsilon: float,
        delta: float,
        random_state: int | None = None,
        *,
        row_estimate: PaidRowEstimate | None = None,
    ) -> MSTGenerator:
        """Fit from a :class:`~synth_engine.generators.counts.CountSource` that has been
        validated against ``schema``: only grouped counts are read (in three passes: the domain
        stage, the fine 1-ways, then every binned table the tree selection and measurements
        use), so the rows may stay in the engine that holds them. Same seed, same counts: the
        same model as :meth:`fit`.

        Without ``row_estimate`` the fit measures its own DP estimate n̂ of the rows first (stage
        ``rows``, 1 % of ρ) and refuses a budget too small for about n̂ rows with that stage
        spent. With it (an estimate of the training rows paid for outside the fit, recorded in
        ``privacy_spent().details["row_estimate"]``), there is no ``rows`` stage, its ρ goes to
        the other stages, and :meth:`budget_refusal` decides before the source is read.
        """
        _check_params(self.get_params())
        specs = parse_schema(schema)
        check_privacy_target(epsilon, delta)
        plan = _budget_plan(self.get_params(), epsilon, delta, specs, rows_stage=row_estimate is None)
        seed = secrets.randbits(128) if random_state is None else int(random_state)
        fit_seed, sample_seed = np.random.SeedSequence(seed).spawn(2)
        rng = np.random.default_rng(fit_seed)
        accountant = ZCDPAccountant()
        # the fit's questions to the source, inside its fitting: what it keeps between stages is
        # released when they are answered, or when one fails
        if row_estimate is not None:  # decided before the source is read
            self._raise_refusal(_refusal(self.get_params(), epsilon, delta, specs, row_estimate.rows))
        with source.fitting():
            if row_estimate is None:
                n_hat = noisy_row_count(source.row_count(), plan.rows_sigma, accountant, rng)
                refusal = _refusal(self.get_params(), epsilon, delta, specs, n_hat, rows_stage=True)
                self._raise_refusal(refusal, rows_rho=plan.rows_rho)
            else:
                n_hat = row_estimate.rows
            # the stages after the row estimate: the same ρ in total, split (label_features="auto") by n̂
            plan = _budget_plan(self.get_params(), epsilon, delta, specs, rows_stage=row_estimate is None, n_hat=n_hat)
            estimate = estimate_record(row_estimate)
            if row_estimate is None:
                estimate.update(rho=plan.rows_rho, sigma=plan.rows_sigma)
            codecs = fit_codecs(
                source,
                specs,
                rho=plan.domain_rho,
                threshold_delta=plan.threshold_delta,
                max_cells=grid_cells(self.max_cells, n_hat, plan.one_way_sigma),
                accountant=accountant,
                rng=rng,
            )
            labels = [spec.role == "label" for spec in specs]
            self._fit_model(source, codecs, labels, plan, accountant, rng)
        self.label_ = plan.label
        self.columns_ = [spec.name for spec in specs]
        self.codecs_ = codecs
        self.accountant_ = accountant
        self.target_ = {"epsilon": float(epsilon), "delta": float(delta)}
        self.row_estimate_ = estimate
        self.sample_rng_ = np.random.default_rng(sample_seed)
        self.count_engine_ = source.engine
        return self

    @staticmethod
    def _raise_refusal(refusal: BudgetRefusal | None, rows_rho: float | None = None) -> None:
        """Refuse a budget too small for the data, judged on a row estimate n̂ only.

        The refusal is a post-processing of n̂, so one row more or less changes its probability
        by at most the estimate's e^ε, never flips it outright. With the fit's own estimate
        (``rows_rho``) that stage stays spent; with a paid estimate nothing touched the data.
        """
        if refusal is None:
            return
        spent = (
            f"Only the row estimate (ρ={rows_rho:.3g} of the budget) touched the data."
            if rows_rho is not None
            else "Nothing touched the data."
        )
        raise InsufficientBudgetError(f"{refusal.message()} {spent}")

    def _fit_model(
        self,
        source: CountSource,
        codecs: list[Codec],
        labels: list[bool],
        plan: BudgetPlan,
        accountant: ZCDPAccountant,
        rng: np.random.Generator,
    ) -> None:
        """Stages 2-5: measure 1-ways, bin, select the tree, measure its tables, estimate."""
        sigma1, sigma2, label = plan.one_way_sigma, plan.two_way_sigma, plan.label
        noisy_fine = [gaussian_noise(counts, sigma1, rng) for counts in source.fine_counts(codecs)]
        accountant.add_gaussian("one_way", sigma1, count=len(codecs))
        n_hat = float(np.mean([noisy.sum() for noisy in noisy_fine]))
        fine_counts = [project_simplex(noisy, n_hat) for noisy in noisy_fine]
        min_count = self.min_bin_sigmas * (sigma2 if math.isfinite(sigma2) else sigma1)
        bins = [
            self._bins(counts, codec, is_label, min_count)
            for counts, codec, is_label in zip(fine_counts, codecs, labels, strict=True)
        ]
        sizes = [int(b.max()) + 1 for b in bins]
        one_way = [np.bincount(b, weights=c, minlength=k) for b, c, k in zip(bins, fine_counts, sizes, strict=True)]
        attributes = [c for c in range(len(codecs)) if c != label]
        with_stars = label is not None and math.isfinite(plan.label_sigma)
        sample = selection_sample(n_hat, self.selection_rows)
        if sample is None:  # one pass over every row: the scored and the measured tables
            tables = BinnedTables(source, codecs, bins, label, attributes, stars=with_stars)
            focus = self._label_focus(tables, one_way, sizes, attributes, label, with_stars, plan, accountant, rng)
            edges = select_tree(tables, one_way, n_hat, plan.selection_epsilon, rng, columns=attributes)
        else:
            # the scored tables on the sample, then the tree's and the label's tables on every row
            # (the tree is picked before the label's columns here: their draws come in that order)
            scored = SampledPairs(source, codecs, bins, attributes, sample)
            edges = select_tree(scored, one_way, n_hat, plan.selection_epsilon, rng, columns=attributes)
            tables = BinnedTables(source, codecs, bins, label, attributes, stars=with_stars, pairs=edges)
            focus = self._label_focus(tables, one_way, sizes, attributes, label, with_stars, plan, accountant, rng)
        if edges:
            accountant.add_exponential("selection", plan.selection_epsilon, count=len(edges))
        # the edges the selective TAN keeps label-dependent (a function of the tree and the picks)
        weighted = label_edges(edges, focus) if focus != attributes and edges else []
        noisy_tables, stars, edge_sigmas = _measure_tables(tables, edges, focus, weighted, plan, accountant, rng)
        model = estimate_model(
            noisy_fine,
            sigma1,
            bins,
            label,
            edges,
            noisy_tables,
            edge_sigmas,
            self.estimation_iterations,
            stars=stars,
            label_sigma=plan.label_sigma,
        )
        one_way, within, label_tables, pairs = model
        if focus != attributes:
            label_tables, pairs = focus_label_dependence(label_tables, pairs, edges, focus, self.estimation_iterations)
        self.bins_, self.edges_ = bins, edges
        self.selection_sample_ = None if sample is None else {"keep": sample.keep, "rate": sample.rate}
        self.label_columns_ = sorted(stars)
        self.edge_sigmas_ = edge_sigmas
        self.one_way_, self.within_, self.label_tables_, self.pairs_ = one_way, within, label_tables, pairs
        self.__dict__.pop("_plans", None)  # the sampling plans of the tables replaced

    @staticmethod
    def _label_focus(
        tables: BinnedTables,
        one_way: list[np.ndarray],
        sizes: list[int],
        attributes: list[int],
        label: int | None,
        with_stars: bool,
        plan: BudgetPlan,
        accountant: ZCDPAccountant,
        rng: np.random.Generator,
    ) -> list[int]:
        """The columns whose (label, column) tables are measured: every attribute, or the
        ``label_features`` picked privately (:func:`pick_label_columns`)."""
        focus = attributes
        if label is not None and with_stars and plan.label_features < len(attributes):
            # a column of one bin has no label dependence to measure (its label table is the label's 1-way)
            focus = [c for c in attributes if sizes[c] > 1] or attributes
            if plan.label_features < len(focus):
                focus = pick_label_columns(
                    tables, one_way[label], plan.label_features, plan.label_selection_epsilon, rng, columns=focus
                )
                accountant.add_exponential("label_selection", plan.label_selection_epsilon, count=len(focus))
        return focus

    def _bins(self, counts: np.ndarray, codec: Codec, label: bool, min_count: float) -> np.ndarray:
        if not codec.ordered:
            return unordered_bins(counts, max_bins=self.max_bins, min_count=min_count, keep_all=label)
        n_cells = codec.n_codes - int(codec.has_missing)  # the value cells, without the missing code
        bins = ordered_bins(counts[:n_cells], max_bins=self.max_bins, min_count=min_count)
        if codec.has_missing:
            missing_bin = bins.max() + 1 if counts[n_cells] >= min_count else 0
            bins = np.append(bins, missing_bin)
        return bins

    # ------------------------------------------------------------------ sample

    # Draws prepared in order (``seeded_output``) may run at once: the part left to run reads
    # nothing a later draw changes.
    independent_draws: ClassVar[bool] = True

    def sample_for_output(self, n_rows: int, conditions: dict[str, Any] | None = None) -> pd.DataFrame:
        """``sample``'s rows with each column of text as a pandas ``Categorical`` (the same values)."""
        return self.sample(n_rows, conditions, categories=True)

    def seeded_output(self, n_rows: int, conditions: dict[str, Any] | None = None) -> Callable[[], pd.DataFrame]:
        """``sample_for_output`` in two steps: this call takes what the draw takes from the model's
        sampling stream (the condition's codes and the columns' seeds); the function it returns
        draws the rows from them alone, on any thread, in any order with other such draws."""
        return self._seeded(n_rows, conditions, categories=True)

    def sample(
        self, n_rows: int, conditions: dict[str, Any] | None = None, *, categories: bool = False
    ) -> pd.DataFrame:
        """Draw ``n_rows`` rows by ancestral sampling; ``conditions`` re-roots the tree at the
        conditioned (categorical) column, so the requested shares are met exactly. ``categories``:
        a column of text comes back as a pandas ``Categorical`` of the same values
        (``CategoricalCodec.decode``), not an object a row.

        Each column is drawn and decoded from its own random stream, seeded from the model's
        sampling stream, so the output of a seed does not depend on the order the columns are
        drawn in: the columns whose parents are drawn run on ``sample_threads`` threads (NumPy
        releases the GIL in its array loops), with the same output as on one."""
        return self._seeded(n_rows, conditions, categories=categories)()

    def _seeded(
        self, n_rows: int, conditions: dict[str, Any] | None, *, categories: bool
    ) -> Callable[[], pd.DataFrame]:
        """The draw's use of ``sample_rng_`` now (the root's codes under ``conditions``, then four
        words seeding the columns' streams), the rest of it in the function returned."""
        self._check_fitted()
        check_n_rows(n_rows)
        condition = self._root_codes(n_rows, conditions)
        seeds = np.random.SeedSequence([int(word) for word in self.sample_rng_.bit_generator.random_raw(4)])

        def draw() -> pd.DataFrame:
            streams = [np.random.Generator(np.random.PCG64(seed)) for seed in seeds.spawn(len(self.codecs_) + 1)]
            threads = sample_threads(n_rows)
            columns: dict[int, pd.Series] = {}
            if threads > 1:
                with ThreadPoolExecutor(threads, thread_name_prefix="mst-sample") as pool:
                    self._sample_columns(n_rows, condition, streams, columns, pool, categories)
            else:
                self._sample_columns(n_rows, condition, streams, columns, None, categories)
            return pd.DataFrame(
                {codec.name: columns[i] for i, codec in enumerate(self.codecs_)}, columns=self.columns_, copy=False
            )

        return draw

    def _sample_columns(
        self,
        n_rows: int,
        condition: tuple[int, np.ndarray] | None,
        streams: list[np.random.Generator],
        columns: dict[int, pd.Series],
        pool: ThreadPoolExecutor | None,
        categories: bool = False,
    ) -> None:
        """Every column's values into ``columns``: the root (or label), the tree's start, then
        down the tree; each child is drawn from P(fine code | label bin, parent bin) =
        P(bin | label bin, parent bin) · P(fine code | bin) in one pass, then decoded."""
        rng, label = streams[-1], self.label_
        label_one_way = self.one_way_[label] if label is not None else np.ones(1)
        fine: dict[int, np.ndarray] = {}
        if condition is not None and condition[0] != label:
            root, root_fine = condition
            start, fine[root] = root, root_fine
            classes = sample_conditional(
                self.bins_[root][root_fine], conditional(self.label_tables_[root].T, label_one_way), rng
            )
        else:
            start = next(c for c in range(len(self.codecs_)) if c != label)
            classes = (
                self.bins_[condition[0]][condition[1]]  # the condition is on the label
                if condition is not None
                else _shuffled_counts(label_one_way, n_rows, rng)
            )
            fine[start] = sample_conditional(
                classes,
                conditional(self.label_tables_[start], self.one_way_[start]) @ self.within_[start],
                streams[start],
            )
        if label is not None:
            fine[label] = (
                condition[1]
                if condition is not None and condition[0] == label
                else sample_conditional(classes, self.within_[label], streams[label])
            )
        children: dict[int, list[tuple[int, ConditionalTable]]] = {}
        for parent, child, table in self._walk_fine(start):
            children.setdefault(parent, []).append((child, table))

        def draw(column: int, parent: int | None, table: ConditionalTable | None) -> int:
            """The column's codes (unless drawn above), its values, and its children's groups;
            the codes are let go once decoded."""
            if parent is not None and table is not None:
                fine[column] = sample_conditional(groups[parent], table, streams[column])
            if column in children:  # (label bin, column bin) of each row, once for all its children
                groups[column] = ParentGroups(
                    classes * len(self.one_way_[column]) + np.take(self.bins_[column], fine[column])
                )
            codec = self.codecs_[column]
            if categories and isinstance(codec, CategoricalCodec):
                columns[column] = codec.decode(fine.pop(column), streams[column], categories=True)
            else:
                columns[column] = codec.decode(fine.pop(column), streams[column])
            return column

        def drawn(column: int) -> list[tuple[int, int, ConditionalTable]]:
            """The tasks ``column`` makes ready; its parent's groups go when its last child is drawn."""
            parent = parents.get(column)
            if parent is not None:
                waiting[parent] -= 1
                if not waiting[parent]:
                    del groups[parent]
            return [(child, column, table) for child, table in children.get(column, [])]

        groups: dict[int, ParentGroups] = {}
        parents = {child: parent for parent, kids in children.items() for child, _ in kids}
        waiting = {parent: len(kids) for parent, kids in children.items()}
        ready: list[tuple[int, int | None, ConditionalTable | None]] = [(column, None, None) for column in fine]
        if pool is None:
            while ready:
                ready.extend(drawn(draw(*ready.pop(0))))
            return
        pending = {pool.submit(draw, *task) for task in ready}
        while pending:
            done, pending = wait(pending, return_when=FIRST_COMPLETED)
            for future in done:
                pending |= {pool.submit(draw, *task) for task in drawn(future.result())}

    def _root_codes(self, n_rows: int, conditions: dict[str, Any] | None) -> tuple[int, np.ndarray] | None:
        """The conditioned column and its fine codes, or None without ``conditions``."""
        if not conditions:
            return None
        index, shares = _parse_conditions(conditions, self.columns_, self.codecs_, self.one_way_)
        return index, _shuffled_counts(shares, n_rows, self.sample_rng_)

    def _walk_fine(self, start: int) -> list[tuple[int, int, ConditionalTable]]:
        """``_walk``'s edges with P(child fine code | label, parent bin) (the bin table times the
        child's ``within_``), computed once a model and start (each ``sample`` call reuses them)."""
        plans: dict[int, list[tuple[int, int, ConditionalTable]]] = self.__dict__.setdefault("_plans", {})
        if start not in plans:  # emptied when a fit sets the tables
            plans[start] = [
                (parent, child, ConditionalTable(table @ self.within_[child]))
                for parent, child, table in self._walk(start)
            ]
        return plans[start]

    def _walk(self, start: int) -> list[tuple[int, int, np.ndarray]]:
        """Tree edges breadth-first from ``start``, each with P(child bin | label, parent bin)
        as a (k_label·k_parent, k_child) table."""
        order = []
        for parent, child, k, flipped in tree_order(self.edges_, start):
            table = self.pairs_[k].transpose(0, 2, 1) if flipped else self.pairs_[k]
            k_label, k_parent, k_child = table.shape
            fallback = np.repeat(self.label_tables_[child], k_parent, axis=0)
            order.append((parent, child, conditional(table.reshape(k_label * k_parent, k_child), fallback)))
        return order

    # ------------------------------------------------------------------ accounting and I/O

    def privacy_spent(self) -> PrivacySpent:
        """(ε, δ) of the recorded measurements; ε never exceeds the target by construction."""
        self._check_fitted()
        delta = self.target_["delta"]
        details = self.accountant_.details(delta)
        details.update(
            target_epsilon=self.target_["epsilon"],
            params=self.get_params(),
            tree_edges=[[self.columns_[a], self.columns_[b]] for a, b in self.edges_],
            label_columns=[self.columns_[c] for c in self.label_columns_],
            # each tree edge's noise σ, in tree_edges' order (two values with label_edge_weight)
            edge_sigmas=self._edge_sigmas(),
            row_estimate=getattr(self, "row_estimate_", {"source": "fit", "stage": "rows"}),
            # the rows the tree's scores were counted on: every row (None), or the hash's bound and rate
            selection_sample=getattr(self, "selection_sample_", None),
        )
        return PrivacySpent(self.accountant_.epsilon(delta), delta, ACCOUNTANT_NAME, details)

    def _edge_sigmas(self) -> list[float]:
        """Each tree edge's σ: as measured, or (a model saved before per-edge σ's) the
        ``two_way`` stage's one σ."""
        sigmas = getattr(self, "edge_sigmas_", None)
        if sigmas is None:
            stage = [m.scale for m in self.accountant_.measurements if m.stage == "two_way"]
            sigmas = [stage[0]] * len(self.edges_) if stage else []
        return [float(sigma) for sigma in sigmas]

    def save(self, directory: Path) -> None:
        """Write ``model.json`` (parameters, codecs, tree, accountant, sampler state) and
        ``arrays.npz`` (bins and estimated tables)."""
        self._check_fitted()
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        meta = {
            "generator": self.name,
            "format_version": FORMAT_VERSION,
            "params": self.get_params(),
            "columns": self.columns_,
            "codecs": [codec.to_dict() for codec in self.codecs_],
            "edges": [list(edge) for edge in self.edges_],
            "label": self.label_,
            "label_columns": self.label_columns_,
            "edge_sigmas": self._edge_sigmas(),
            "accountant": self.accountant_.to_dict(),
            "target": self.target_,
            "row_estimate": self.row_estimate_,
            "selection_sample": self.selection_sample_,
            "sample_rng": self.sample_rng_.bit_generator.state,
        }
        (directory / "model.json").write_text(json.dumps(meta, indent=1))
        arrays: dict[str, np.ndarray] = {}
        for i in range(len(self.codecs_)):
            arrays.update(
                {
                    f"bins_{i}": self.bins_[i],
                    f"one_way_{i}": self.one_way_[i],
                    f"within_{i}": self.within_[i],
                    f"label_table_{i}": self.label_tables_[i],
                }
            )
        arrays.update({f"pair_{k}": table for k, table in enumerate(self.pairs_)})
        np.savez(directory / "arrays.npz", allow_pickle=False, **arrays)

    @classmethod
    def load(cls, directory: Path) -> MSTGenerator:
        """Read a model written by :meth:`save` (no pickle: ``allow_pickle=False``)."""
        directory = Path(directory)
        meta = json.loads((directory / "model.json").read_text())
        if meta.get("generator") != cls.name or meta.get("format_version") != FORMAT_VERSION:
            raise GeneratorError(f"{directory} does not hold an MST model of this version")
        # models written before label_edge_weight measured every edge alike
        model = cls(**{"label_edge_weight": 1.0, **meta["params"]})
        d = len(meta["columns"])
        with np.load(directory / "arrays.npz", allow_pickle=False) as arrays:
            model.bins_ = [arrays[f"bins_{i}"] for i in range(d)]
            model.one_way_ = [arrays[f"one_way_{i}"] for i in range(d)]
            model.within_ = [arrays[f"within_{i}"] for i in range(d)]
            model.label_tables_ = [arrays[f"label_table_{i}"] for i in range(d)]
            model.pairs_ = [arrays[f"pair_{k}"] for k in range(len(meta["edges"]))]
        model.columns_ = meta["columns"]
        model.codecs_ = [codec_from_dict(codec) for codec in meta["codecs"]]
        model.edges_ = [tuple(edge) for edge in meta["edges"]]
        model.label_ = meta["label"]
        # models written before label_features measured the label table of every other column
        every = [c for c in range(d) if c != model.label_] if model.label_ is not None and model.label_fraction else []
        model.label_columns_ = meta.get("label_columns", every)
        model.accountant_ = ZCDPAccountant.from_dict(meta["accountant"])
        model.edge_sigmas_ = meta.get("edge_sigmas")  # None: one σ for every edge (models before)
        model.target_ = meta["target"]
        # models written before a job could hand over its version's estimate measured their own
        model.row_estimate_ = meta.get("row_estimate", {"source": "fit", "stage": "rows"})
        model.selection_sample_ = meta.get("selection_sample")  # None: every row (and every model before)
        model.sample_rng_ = np.random.default_rng()
        model.sample_rng_.bit_generator.state = meta["sample_rng"]
        return model

    def _check_fitted(self) -> None:
        if not hasattr(self, "pairs_"):
            raise GeneratorError("call fit() before sample(), privacy_spent() or save()")


# ---------------------------------------------------------------------- budget


def _check_params(params: dict[str, Any]) -> None:
    """Refuse hyperparameters outside their meaningful ranges, saying which and why."""
    problems = []
    for name, low in (("max_bins", 2), ("max_cells", 4), ("estimation_iterations", 1)):
        if not isinstance(params[name], int) or params[name] < low:
            problems.append(f"{name} must be an integer >= {low}")
    for name in ("domain_fraction", "one_way_fraction", "selection_fraction", "threshold_delta_fraction"):
        if not isinstance(params[name], int | float) or not 0 < params[name] < 1:
            problems.append(f"{name} must be in (0, 1)")
    if not problems and params["one_way_fraction"] + params["selection_fraction"] >= 1:
        problems.append("one_way_fraction + selection_fraction must leave budget for 2-way tables")
    if not isinstance(params["label_fraction"], int | float) or not 0 <= params["label_fraction"] < 1:
        problems.append("label_fraction must be in [0, 1)")
    features = params["label_features"]
    if features == AUTO:
        features = 0  # resolved from the row estimate; with label_fraction 0, every column (none measured)
    if not isinstance(features, int) or isinstance(features, bool) or features < 0:
        problems.append(f"label_features must be an integer >= 0 or {AUTO!r}")
    elif features > 0 and params["label_fraction"] == 0:
        problems.append("label_features needs label_fraction > 0 (the picked columns' tables are measured with it)")
    if (
        not isinstance(params["label_selection_fraction"], int | float)
        or not 0 < params["label_selection_fraction"] < 1
    ):
        problems.append("label_selection_fraction must be in (0, 1)")
    elif (
        not problems
        and (features > 0 or params["label_features"] == AUTO)
        and params["one_way_fraction"] + params["selection_fraction"] + params["label_selection_fraction"] >= 1
    ):
        problems.append(
            "one_way_fraction + selection_fraction + label_selection_fraction must leave budget for 2-way tables"
        )
    weight = params.get("label_edge_weight", LABEL_EDGE_WEIGHT)
    if (
        isinstance(weight, bool)
        or not isinstance(weight, int | float)
        or not 1 <= weight <= MAX_LABEL_EDGE_WEIGHT  # NaN fails both comparisons
    ):
        problems.append(f"label_edge_weight must be a number in [1, {MAX_LABEL_EDGE_WEIGHT:g}]")
    if not isinstance(params["min_bin_sigmas"], int | float) or params["min_bin_sigmas"] < 0:
        problems.append("min_bin_sigmas must be >= 0")
    if params["structure"] not in ("auto", "tree"):
        problems.append("structure must be 'auto' or 'tree'")
    rows = params.get("selection_rows", SELECTION_ROWS)
    if not isinstance(rows, int) or isinstance(rows, bool) or rows < 0:
        problems.append("selection_rows must be an integer >= 0 (0: the selection scores every row)")
    if problems:
        raise GeneratorError("invalid MST parameters: " + "; ".join(problems))


@dataclass(frozen=True)
class BudgetPlan:
    """ρ and noise scale of each stage for a target (ε, δ); ``label`` is the star's centre column
    (None when the tree has no label star)."""

    rho: float
    rows_rho: float
    rows_sigma: float
    domain_rho: float
    threshold_delta: float
    label: int | None
    one_way_sigma: float
    selection_epsilon: float
    two_way_sigma: float
    label_sigma: float
    pairs_sigma: float  # σ of the edge tables if the label tables' and picks' shares were spent on them too
    label_features: int = 0  # columns whose (label, column) table is measured (all when 0 or ≥ d − 1)
    label_selection_epsilon: float = 0.0  # ε of each exponential-mechanism pick of those columns
    two_way_rho: float = 0.0  # ρ of the two_way stage (every edge table together)
    label_edge_weight: float = 1.0  # ρ of a label-dependent edge table over another's

    def edge_sigmas(self, edges: int, weighted: list[int]) -> list[float]:
        """The σ of each of ``edges`` edge tables, those at indices ``weighted`` measured with
        ``label_edge_weight`` times another's ρ; they sum to the ``two_way`` stage's ρ. One σ
        for all (:attr:`two_way_sigma`) when the weight is 1 or no edge, or every edge, is
        weighted."""
        chosen = set(weighted)
        if not 0 < len(chosen) < edges or self.label_edge_weight == 1:
            return [self.two_way_sigma] * edges
        weight = self.label_edge_weight
        share = self.two_way_rho / (len(chosen) * weight + edges - len(chosen))
        high, low = gaussian_sigma(weight * share), gaussian_sigma(share)
        return [high if index in chosen else low for index in range(edges)]


def _budget_plan(
    params: dict[str, Any],
    epsilon: float,
    delta: float,
    specs: list[Any],
    *,
    rows_stage: bool = True,
    n_hat: float | None = None,
) -> BudgetPlan:
    """ρ and noise scale of each stage for a target (ε, δ).

    ρ is the largest value whose tight conversion gives (ε, δ − δ_threshold), less a relative
    10⁻⁹ so that float rounding cannot push the reported ε over the target. ``rows_stage=False``
    (a row estimate paid for outside the fit) gives the ``rows`` stage nothing (σ = ∞) and its
    1 % to the other stages.

    ``label_features="auto"`` is resolved by :func:`auto_label_features` from the row estimate
    ``n_hat``; without one (before the fit's own estimate is drawn) the plan is the unfocused one,
    whose ``rows``, ``domain`` and ``one_way`` stages are those of every focused plan.
    """
    if params["label_features"] == AUTO:
        k = 0 if n_hat is None else auto_label_features(params, epsilon, delta, specs, n_hat, rows_stage=rows_stage)
        params = {**params, "label_features": k}
    d = len(specs)
    labels = [i for i, spec in enumerate(specs) if spec.role == "label"]
    label = labels[0] if labels and params["structure"] == "auto" and d >= 3 else None
    n_tree = d - 1 if label is not None else d
    sparse = any(spec.type == "categorical" and spec.categories is None for spec in specs)
    private_domain = any(spec.needs_private_domain for spec in specs)
    threshold_delta = params["threshold_delta_fraction"] * delta if sparse else 0.0
    rho = cdp_rho(epsilon, delta - threshold_delta) * (1.0 - 1e-9)
    rows_rho = ROWS_FRACTION * rho if rows_stage else 0.0
    domain_rho = params["domain_fraction"] * rho if private_domain else 0.0
    rest = rho - rows_rho - domain_rho
    focused = 0 < params["label_features"] < n_tree and label is not None and params["label_fraction"] > 0
    picks = params["label_features"] if focused else n_tree
    if n_tree == 1:
        one_way, selection, label_selection, two_way = rest, 0.0, 0.0, 0.0
    else:
        one_way = params["one_way_fraction"] * rest
        selection = params["selection_fraction"] * rest
        label_selection = params["label_selection_fraction"] * rest if focused else 0.0
        two_way = rest - one_way - selection - label_selection
    star = params["label_fraction"] * two_way if label is not None else 0.0
    two_way -= star
    return BudgetPlan(
        rho=rho,
        rows_rho=rows_rho,
        rows_sigma=rows_sigma(rows_rho) if rows_stage else math.inf,
        domain_rho=domain_rho,
        threshold_delta=threshold_delta,
        label=label,
        one_way_sigma=gaussian_sigma(one_way / d),
        selection_epsilon=exponential_epsilon(selection / (n_tree - 1)) if n_tree > 1 else 0.0,
        two_way_sigma=gaussian_sigma(two_way / (n_tree - 1)) if n_tree > 1 else math.inf,
        label_sigma=gaussian_sigma(star / picks) if star > 0 else math.inf,
        pairs_sigma=gaussian_sigma((two_way + star + label_selection) / (n_tree - 1)) if n_tree > 1 else math.inf,
        label_features=picks if label is not None else 0,
        label_selection_epsilon=exponential_epsilon(label_selection / picks) if label_selection > 0 else 0.0,
        two_way_rho=two_way if n_tree > 1 else 0.0,
        label_edge_weight=float(params.get("label_edge_weight", LABEL_EDGE_WEIGHT)),
    )


def public_bins(spec: Any, max_bins: int) -> int:
    """Most bins a column can have in the 2-way tables, from its declared domain alone: its
    declared categories, or the values of its declared grid (whole numbers, ``step``, a
    datetime's resolution), plus the missing code when nullable; ``max_bins`` when undeclared or
    larger (a label keeps all its codes)."""
    if spec.type == "boolean":
        values = 2
    elif spec.type == "categorical":
        values = len(spec.categories) if spec.categories is not None else max_bins
    elif spec.minimum is not None and spec.maximum is not None and (spec.type != "float" or spec.step):
        unit = spec.step if spec.type == "float" else spec.unit_seconds
        values = int(math.floor((spec.maximum - spec.minimum) / unit + 1e-9)) + 1
    else:
        values = max_bins
    values += int(is_nullable(spec))
    return values if spec.role == "label" else min(values, max_bins)


def auto_label_features(
    params: dict[str, Any], epsilon: float, delta: float, specs: list[Any], n_hat: float, *, rows_stage: bool
) -> int:
    """``label_features="auto"``: how many (label, column) tables to measure, from public and paid
    inputs only (the parameters, ε, δ, the schema's declared domains and the DP row estimate
    ``n_hat``); ``0`` means every column's (the unfocused fit).

    A column's (label, column) table has about ``|Y| · B`` cells, ``|Y|`` the label's declared
    codes and ``B`` the column's bins, at most :func:`public_bins` and at most
    ``n̂ / (min_bin_sigmas · σ₂)`` (a bin holds at least that many noise σ's of rows), so a
    *typical cell* holds ``c = n̂ / (|Y| · B̃)`` rows, ``B̃`` the median of ``B`` over the other
    columns. Spending the label share ``ρ_L`` on k tables gives each cell noise
    ``σ_L(k) = √(k / 2ρ_L)``. The rule keeps that noise at most :data:`LABEL_NOISE_SHARE` of the
    typical cell: every table when the unfocused plan already does, else the largest
    ``k = ⌊2 ρ_L T²⌋`` with ``T = LABEL_NOISE_SHARE · c`` (ρ_L of the focused plan), unless that
    is below :data:`MIN_LABEL_FEATURES` (then every table again: on tables where even a few label
    tables would be noisy, focusing on so few columns lost more of the label's dependence than it
    saved, see ``docs/generators.md``). A function of public inputs and n̂: the same on
    neighbouring tables given the same n̂, and a post-processing of n̂ (it costs nothing).
    """
    labels = [spec for spec in specs if spec.role == "label"]
    base = {**params, "label_features": 0}
    plan = _budget_plan(base, epsilon, delta, specs, rows_stage=rows_stage)
    n_tree = len(specs) - 1
    if plan.label is None or params["label_fraction"] == 0 or n_tree < 2 or not math.isfinite(plan.label_sigma):
        return 0
    sigma2 = plan.two_way_sigma
    fitting = max(1.0, n_hat / (params["min_bin_sigmas"] * sigma2)) if params["min_bin_sigmas"] > 0 else math.inf
    bins = [min(public_bins(spec, params["max_bins"]), fitting) for spec in specs if spec.role != "label"]
    cell = max(n_hat, 0.0) / (public_bins(labels[0], params["max_bins"]) * float(np.median(bins)))
    allowed = LABEL_NOISE_SHARE * cell
    if plan.label_sigma <= allowed:
        return 0
    focused = _budget_plan({**params, "label_features": 1}, epsilon, delta, specs, rows_stage=rows_stage)
    label_rho = 1.0 / (2.0 * focused.label_sigma**2)  # ρ_L: one table gets the whole share
    k = math.floor(2.0 * label_rho * allowed**2)
    return k if MIN_LABEL_FEATURES <= k < n_tree else 0


def grid_cells(max_cells: int, n_hat: float, one_way_sigma: float) -> int:
    """Cells of a numeric column's public grid for a fit: ``max_cells``, or about n̂ / σ₁ when
    that is fewer (a cell then holds on average one noise σ of rows), at least
    :data:`MIN_GRID_CELLS` (or ``max_cells`` if that is smaller).

    A post-processing of the DP row estimate n̂ and of the public plan, so it costs nothing.
    Finer cells than this hold mostly noise: at 353 rows, 11 columns and ε = 1 (σ₁ ≈ 43 rows)
    the 128-cell grid drew each value from a few noise-only cells (1-way TVD 0.48 against 0.22
    with 8 cells).
    """
    fitting = int(n_hat / one_way_sigma) if one_way_sigma > 0 and math.isfinite(n_hat) else max_cells
    return min(max_cells, max(MIN_GRID_CELLS, fitting))


def _main_sigma(plan: BudgetPlan) -> float:
    """Noise σ of the measurements that carry most of the model: the 2-way tables (edge and
    label tables together, and the picks of ``label_features``, as if their whole budget went to
    the edges, so that neither the share given to the label tables nor the focus, which
    ``"auto"`` chooses from n̂, moves the refusal), or the 1-ways when there is no tree."""
    two_way = plan.pairs_sigma
    return two_way if math.isfinite(two_way) else plan.one_way_sigma


@dataclass(frozen=True)
class BudgetRefusal:
    """Why a fit refuses (ε, δ): its marginal noise ``sigma`` is more than 5 % of ``rows`` (an
    estimate, never the exact count); ``minimum_epsilon`` is the smallest ε that passes at δ
    (passes itself, so rounding it up keeps it passing)."""

    epsilon: float
    delta: float
    rows: float
    columns: int
    sigma: float
    minimum_epsilon: float

    def message(self) -> str:
        return (
            f"epsilon={self.epsilon} is too small for about {self.rows:.0f} rows (a DP estimate) and "
            f"{self.columns} columns: the marginal noise would be σ={self.sigma:.1f} rows; use epsilon >= "
            f"{rounded_up(self.minimum_epsilon, 3)} (at delta={self.delta}), or more rows, or fewer columns."
        )


def rounded_up(value: float, figures: int) -> str:
    """``value`` rounded *up* to ``figures`` significant figures, as text: a minimum ε shown
    rounded passes the check it is the minimum of (rounding to nearest could fall below it)."""
    exponent = math.floor(math.log10(value))
    scale = 10.0 ** (figures - 1 - exponent)
    up = math.ceil(value * scale - 1e-9) / scale
    if up < value:
        up = (math.ceil(value * scale - 1e-9) + 1) / scale
    return f"{up:.{figures + 1}g}"


def _refusal(
    params: dict[str, Any], epsilon: float, delta: float, specs: list[Any], n_hat: float, *, rows_stage: bool = False
) -> BudgetRefusal | None:
    """The usefulness check on a row estimate ``n_hat``: None when the marginal noise σ is at
    most n̂ / :data:`MIN_SIGNAL_TO_NOISE`. ``rows_stage``: whether the fit spends its own
    ``rows`` stage (the standalone path), which changes the other stages' σ."""
    plan = _budget_plan(params, epsilon, delta, specs, rows_stage=rows_stage, n_hat=n_hat)
    if _main_sigma(plan) <= n_hat / MIN_SIGNAL_TO_NOISE:
        return None
    return BudgetRefusal(
        epsilon=float(epsilon),
        delta=float(delta),
        rows=float(n_hat),
        columns=len(specs),
        sigma=_main_sigma(plan),
        minimum_epsilon=_minimum_epsilon(params, delta, specs, n_hat, rows_stage=rows_stage),
    )


def _minimum_epsilon(
    params: dict[str, Any], delta: float, specs: list[Any], n_rows: float, *, rows_stage: bool = False
) -> float:
    """Smallest ε (bisection on log ε) whose marginal noise passes the usefulness check."""
    low, high = math.log(1e-6), math.log(1e4)
    for _ in range(60):
        middle = (low + high) / 2.0
        plan = _budget_plan(params, math.exp(middle), delta, specs, rows_stage=rows_stage, n_hat=n_rows)
        sigma = _main_sigma(plan)
        if sigma > n_rows / MIN_SIGNAL_TO_NOISE:
            low = middle
        else:
            high = middle
    return math.exp(high)


def _parse_conditions(
    conditions: dict[str, Any], columns: list[str], codecs: list[Codec], one_way: list[np.ndarray]
) -> tuple[int, np.ndarray]:
    """Column index and target shares over its fine codes for ``{column: value or shares}``."""
    if not isinstance(conditions, dict) or len(conditions) != 1:
        raise GeneratorError("conditions must map exactly one column to a value or to shares")
    column, wanted = next(iter(conditions.items()))
    if column not in columns:
        raise GeneratorError(f"unknown condition column {column!r}; columns are {columns}")
    codec = codecs[columns.index(column)]
    if not isinstance(codec, CategoricalCodec):
        raise GeneratorError(f"conditions need a categorical or boolean column, not {column!r}")
    index = columns.index(column)
    return index, target_shares(codec, wanted, one_way[index])


# ---------------------------------------------------------------------- selection


class BinnedTables:
    """Every binned table the tree selection and the measurements read, counted in one pass.

    With a label (the label-augmented structure) these are the (label, a, b) tables of every
    pair of attributes and, when they are measured (``stars``: a positive ``label_fraction``),
    the (label, a) tables; the 2-way table of a pair scored for the tree is its (label, a, b)
    table summed over the label. Without a label, the (a, b) tables. Each is a histogram: one
    row adds one to one cell (L2 sensitivity 1 when measured).
    """

    def __init__(
        self,
        source: CountSource,
        codecs: list[Codec],
        bins: list[np.ndarray],
        label: int | None,
        columns: list[int],
        *,
        stars: bool,
        pairs: list[tuple[int, int]] | None = None,
    ) -> None:
        self.label = label
        #: the pairs counted (``pairs``; by default every pair of ``columns``)
        self.pairs = [(a, b) for i, a in enumerate(columns) for b in columns[i + 1 :]] if pairs is None else pairs
        prefix = () if label is None else (label,)
        groups = [(*prefix, a, b) for a, b in self.pairs]
        if label is not None and stars:
            groups += [(label, a) for a in columns]
        counted = source.binned_counts(codecs, bins, groups) if groups else []
        self.triples: dict[tuple[int, int], np.ndarray] = {}
        self.stars: dict[int, np.ndarray] = {}
        for group, table in zip(groups, counted, strict=True):
            if label is not None and len(group) == 2:
                self.stars[group[1]] = table
            else:
                self.triples[group[-2:]] = table if label is not None else table[None, :, :]

    def pair(self, a: int, b: int) -> np.ndarray:
        """Exact 2-way table of binned columns ``a`` and ``b``, shape (k_a, k_b)."""
        return self.triples[(a, b)].sum(axis=0)

    def triple(self, a: int, b: int) -> np.ndarray:
        """Exact table of (label, a, b), shape (k_label, k_a, k_b), k_label = 1 without a label."""
        return self.triples[(a, b)]

    def star(self, a: int) -> np.ndarray:
        """Exact table of (label, a)."""
        return self.stars[a]


class SampledPairs:
    """The 2-way tables of every pair of ``columns``, counted on the rows ``sample`` keeps only:
    what :func:`select_tree` scores above :attr:`MSTGenerator.selection_rows`. Each is a
    histogram of the kept rows: adding or removing a row changes at most one cell by one (a row
    the sample drops changes none), whatever the rate."""

    def __init__(
        self, source: CountSource, codecs: list[Codec], bins: list[np.ndarray], columns: list[int], sample: RowSample
    ) -> None:
        self.sample = sample
        self.pairs = [(a, b) for i, a in enumerate(columns) for b in columns[i + 1 :]]
        groups: list[tuple[int, ...]] = list(self.pairs)
        counted = source.binned_counts(codecs, bins, groups, sample=sample) if groups else []
        self.tables = dict(zip(self.pairs, counted, strict=True))

    def pair(self, a: int, b: int) -> np.ndarray:
        """The kept rows' 2-way table of binned columns ``a`` and ``b``, shape (k_a, k_b)."""
        return self.tables[(a, b)]


def selection_sample(n_hat: float, selection_rows: int) -> RowSample | None:
    """The rows the tree selection scores: ``None`` (every row) unless the noisy estimate n̂
    exceeds :data:`SELECTION_SAMPLE_FACTOR` × ``selection_rows``; then about ``selection_rows``
    of them (rate ``selection_rows / n̂``). A function of n̂ (DP) and a parameter only."""
    if selection_rows <= 0 or n_hat <= SELECTION_SAMPLE_FACTOR * selection_rows:
        return None
    return RowSample.of_rate(selection_rows / n_hat)


def select_tree(
    tables: BinnedTables | SampledPairs,
    one_way: list[np.ndarray],
    n_hat: float,
    epsilon: float,
    rng: np.random.Generator,
    columns: list[int],
) -> list[tuple[int, int]]:
    """Private maximum spanning tree over ``columns`` (McKenna et al. 2021, Sec. 4, Alg. 2).

    Each pair's score is ``‖M_ab − p_a p_bᵀ / n̂‖₁``: the L1 distance between its true 2-way
    table and the independent estimate from the noisy 1-ways. Adding or removing a row moves
    one cell of M_ab by one, so the score has sensitivity 1. Kruskal's algorithm then picks
    each of the edges among those joining two components with an ε-exponential mechanism.

    With ``tables`` counted on a sample of the rows (:class:`SampledPairs`), the score is
    ``‖S_ab − s · q_a q_bᵀ‖₁``: the sample's table S_ab against independence at the noisy 1-ways'
    shares q, scaled to the s rows the sample holds (its exact size, the same for every pair).
    Adding or removing a kept row moves one cell of S_ab and s by one: the change is
    ``e_ij − q_a q_bᵀ``, of L1 norm ``2(1 − q_ai q_bj) ≤ 2``, so the mechanism runs at
    sensitivity 2 (no amplification by the sampling is claimed).

    Parameters
    ----------
    tables : the exact binned tables of every pair of ``columns`` (or of the sampled rows)
    one_way : estimated bin counts per column (noisy, post-processed)
    columns : the columns the tree spans (all but the label in the label-augmented structure)
    """
    candidates = [(a, b) for i, a in enumerate(columns) for b in columns[i + 1 :]]
    sensitivity = 1.0
    if isinstance(tables, SampledPairs):
        sensitivity = 2.0
        shares = [counts / max(float(counts.sum()), 1e-9) for counts in one_way]
        kept = float(tables.pair(*candidates[0]).sum()) if candidates else 0.0
        scores = np.array(
            [np.abs(tables.pair(a, b) - kept * np.outer(shares[a], shares[b])).sum() for a, b in candidates]
        )
    else:
        scale = max(n_hat, 1.0)
        scores = np.array(
            [np.abs(tables.pair(a, b) - np.outer(one_way[a], one_way[b]) / scale).sum() for a, b in candidates]
        )
    component = {c: c for c in columns}
    edges: list[tuple[int, int]] = []
    for _ in range(len(columns) - 1):
        open_ = [k for k, (a, b) in enumerate(candidates) if component[a] != component[b]]
        pick = open_[exponential_mechanism(scores[open_], epsilon, rng, sensitivity=sensitivity)]
        a, b = candidates[pick]
        old, new = component[b], component[a]
        component = {c: new if group == old else group for c, group in component.items()}
        edges.append((a, b))
    return edges


def pick_label_columns(
    tables: BinnedTables,
    label_one_way: np.ndarray,
    k: int,
    epsilon: float,
    rng: np.random.Generator,
    columns: list[int],
) -> list[int]:
    """The ``k`` of ``columns`` most related to the label, picked privately one at a time.

    A column's score is ``Σ_y Σ_j |M_yj − π_y M_·j|``: how far its exact (label bin, column bin)
    table ``M`` lies from label independence at the label shares π (from the noisy label 1-way,
    a post-processing). Adding or removing a row in (y′, j′) moves the terms of column j′ by
    ``|[y = y′] − π_y|``, so the score has sensitivity ``2(1 − π_y′) ≤ 2``; it uses the column's
    exact total ``M_·j``, not its noisy 1-way, so 1-way noise does not favour columns with many
    bins. Each pick is an ε-exponential mechanism over the columns not yet picked (k picks cost
    k · ε²/8 in zCDP, stage ``label_selection``).
    """
    scores = label_scores(tables, label_one_way, columns)
    remaining = list(range(len(columns)))
    picked: list[int] = []
    for _ in range(min(k, len(columns))):
        choice = remaining.pop(exponential_mechanism(scores[remaining], epsilon, rng, sensitivity=2.0))
        picked.append(columns[choice])
    return picked


def label_scores(tables: BinnedTables, label_one_way: np.ndarray, columns: list[int]) -> np.ndarray:
    """Per column, ``Σ_y Σ_j |M_yj − π_y M_·j|`` of its exact (label, column) table ``M`` at the
    label shares π of ``label_one_way`` (public: a noisy estimate); sensitivity 2 (see
    :func:`pick_label_columns`)."""
    shares = label_one_way / max(float(label_one_way.sum()), 1e-9)
    return np.array(
        [float(np.abs(tables.star(c) - shares[:, None] * tables.star(c).sum(axis=0)[None, :]).sum()) for c in columns]
    )


def _measure_tables(
    tables: BinnedTables,
    edges: list[tuple[int, int]],
    focus: list[int],
    weighted: list[int],
    plan: BudgetPlan,
    accountant: ZCDPAccountant,
    rng: np.random.Generator,
) -> tuple[list[np.ndarray], dict[int, np.ndarray], list[float]]:
    """Gaussian measurements of the tree's (label ×) edge tables, each at its own σ
    (:meth:`BudgetPlan.edge_sigmas`: the edges at indices ``weighted`` with ``label_edge_weight``
    times another's ρ), and optionally of the (label, column) tables of the ``focus`` columns;
    each is a histogram with L2 sensitivity 1. Returns the noisy tables, the noisy label tables
    and the edges' σ's."""
    label_sigma = plan.label_sigma
    sigmas = plan.edge_sigmas(len(edges), weighted)
    noisy = [gaussian_noise(tables.triple(a, b), sigma, rng) for (a, b), sigma in zip(edges, sigmas, strict=True)]
    for sigma in dict.fromkeys(sigmas):  # one record per σ, in the order first measured
        accountant.add_gaussian("two_way", sigma, count=sigmas.count(sigma))
    stars: dict[int, np.ndarray] = {}
    if tables.label is not None and math.isfinite(label_sigma):
        stars = {a: gaussian_noise(tables.star(a), label_sigma, rng) for a in focus}
        accountant.add_gaussian("label_pairs", label_sigma, count=len(stars))
    return noisy, stars, sigmas


# ---------------------------------------------------------------------- sampling


SAMPLE_THREADS_ENV = "SYNTHGATE_SAMPLE_THREADS"
MIN_ROWS_PER_THREADED_SAMPLE = 20_000


def sample_threads(n_rows: int) -> int:
    """Threads for one ``sample`` call: ``SYNTHGATE_SAMPLE_THREADS`` (default 1: on the shared
    machine two threads spent 8–20 % more CPU and no less wall time), one below
    ``MIN_ROWS_PER_THREADED_SAMPLE`` rows. The output is the same for any number."""
    if n_rows < MIN_ROWS_PER_THREADED_SAMPLE:
        return 1
    wanted = os.environ.get(SAMPLE_THREADS_ENV, "").strip()
    if wanted:
        if not wanted.isdigit() or int(wanted) < 1:
            raise GeneratorError(f"{SAMPLE_THREADS_ENV} must be a positive whole number, got {wanted!r}")
        return int(wanted)
    return 1


def _shuffled_counts(weights: np.ndarray, n_rows: int, rng: np.random.Generator) -> np.ndarray:
    """``n_rows`` codes in controlled-rounded proportion to ``weights``, in random order."""
    return sample_conditional(np.zeros(n_rows, dtype=np.intp), np.asarray(weights, dtype=np.float64)[None, :], rng)


class ParentGroups:
    """A parent column's group of each row (label bin × parent bin), drawn once for all its children,
    with the groups shifted left by ``bits`` kept once a ``bits`` (``sample_conditional``'s buckets;
    siblings with about as many codes share them)."""

    def __init__(self, groups: np.ndarray) -> None:
        self.groups = np.asarray(groups, dtype=np.int64)
        self._shifted: dict[int, np.ndarray] = {}

    def shifted(self, bits: int) -> np.ndarray:
        """The groups shifted left by ``bits``, as ``uint64``."""
        shifted = self._shifted.get(bits)
        if shifted is None:
            shifted = self._shifted[bits] = self.groups.view(np.uint64) << np.uint64(bits)
        return shifted


class ConditionalTable:
    """A table of P(child | parent) with what every draw from it needs, computed once: the child
    of each parent when all are certain, each row's cumulative shares (``round_rows``) and the
    child codes repeated for every parent."""

    def __init__(self, table: np.ndarray) -> None:
        self.table = table
        self.single = _single_child(table)
        self.cumulative = cumulative_shares(table)
        n_parents, n_children = table.shape
        self.codes = np.tile(np.arange(n_children, dtype=np.int16 if n_children <= 2**15 else np.intp), n_parents)


def sample_conditional(
    parents: np.ndarray | ParentGroups, table: np.ndarray | ConditionalTable, rng: np.random.Generator
) -> np.ndarray:
    """Draw one child code per row from ``table[parent]`` (rows of P(child | parent)).

    Each parent's group of rows gets controlled-rounded child counts (``round_rows``, every
    group at once), laid out in code order over the group's rows ranked by a fresh random
    64-bit key per row: a uniformly random arrangement, which keeps the child independent of
    everything else given the parent, as ancestral sampling requires.

    The ranking is a counting sort, not a sort of the rows: the key's top bits pick one of
    ``2**bits`` buckets per group; a bucket whose ranks all fall on one child code takes it
    whole, and only the rows of the few buckets that straddle two codes are sorted by their
    keys (about ``n_children · n_rows / 2**bits`` rows). The rows a bucket holds, and so the
    output, do not depend on ``bits``.

    Returns
    -------
    ndarray of intp, shape (n_rows,)
    """
    grouped = parents if isinstance(parents, ParentGroups) else ParentGroups(parents)
    parents = grouped.groups  # intp, viewed as unsigned for the keys
    prepared = table if isinstance(table, ConditionalTable) else ConditionalTable(table)
    n_parents, n_children = prepared.table.shape
    if prepared.single is not None:
        return np.take(prepared.single, parents)
    n_rows = len(parents)
    if n_rows == 0:
        return np.zeros(0, dtype=np.intp)
    bits = int(np.clip(np.ceil(np.log2(max(n_children * n_rows / n_parents, 1.0)) / 2), 2, 16))
    keys = rng.bit_generator.random_raw(n_rows)
    bucket = keys >> np.uint64(64 - bits)
    bucket |= grouped.shifted(bits)
    bucket = bucket.view(np.intp)
    sizes = np.bincount(bucket, minlength=n_parents << bits)
    counts = round_cumulative(prepared.cumulative, sizes.reshape(n_parents, -1).sum(axis=1), rng)  # round_rows
    ranked = np.repeat(prepared.codes, counts.ravel())
    ends = np.cumsum(sizes)  # each bucket's ranks: [ends - sizes, ends) (the groups laid out in order)
    starts = ends - sizes
    first = ranked.take(starts, mode="clip").astype(np.intp)  # clipped into [0, n_rows): an empty last bucket
    straddles = first != ranked.take(ends - 1, mode="clip")  # (an empty bucket holds no row: its value unread)
    first[straddles] = -1  # a row in a straddling bucket is ranked below
    children = first.take(bucket)  # (``take`` gathers 3x faster than indexing here)
    rows = np.flatnonzero(children < 0)
    if rows.size:
        group_bits = max(int(n_parents - 1).bit_length(), 1)
        order = parents.take(rows).view(np.uint64) << np.uint64(64 - group_bits)
        order |= keys.take(rows) >> np.uint64(group_bits)
        rows = rows.take(np.argsort(order))  # distinct keys: any sorting algorithm gives this order
        straddling = np.flatnonzero(straddles)  # in order, as the sorted rows' buckets are
        held = sizes.take(straddling)
        offsets = starts.take(straddling) - (np.cumsum(held) - held)  # rank minus position among sorted rows
        children[rows] = ranked.take(np.arange(rows.size) + np.repeat(offsets, held))
    return children


def _single_child(table: np.ndarray) -> np.ndarray | None:
    """The child of each parent when every row of ``table`` is certain (else None)."""
    if not np.all((table > 0).sum(axis=1) == 1):
        return None
    return np.argmax(table, axis=1)
