"""MST's estimation step: consistent, non-negative marginals of a tree from noisy measurements.

Post-processing only (no privacy cost): inverse-variance-weighted 1-way estimates projected onto
the simplex, each edge table shrunk toward independence and then made the L2 projection of its
noisy table onto the non-negative tables with those margins (the transportation polytope),
solved by dual block-coordinate ascent; per-bin shares of fine codes; row-normalised
conditionals for sampling. :class:`~synth_engine.generators.mst.MSTGenerator` measures and
samples; this module turns its measurements into the model it samples from.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np


def project_simplex(values: np.ndarray, total: float) -> np.ndarray:
    """Euclidean projection of ``values`` onto {x ≥ 0, Σx = total} (Duchi et al. 2008, Fig. 1).

    The least-squares estimate of a histogram from Gaussian measurements under the
    non-negativity and total-count constraints.
    """
    return project_rows(values[None, :], np.array([total]))[0]


def row_shifts(matrix: np.ndarray, totals: np.ndarray) -> np.ndarray:
    """For each row i the shift τ_i with Σ_j max(M_ij − τ_i, 0) = totals_i (Duchi et al. 2008).

    Parameters
    ----------
    matrix : ndarray of shape (n_rows, n_cols)
    totals : ndarray of shape (n_rows,), non-negative

    Returns
    -------
    ndarray of shape (n_rows,)
    """
    ordered = -np.sort(-matrix, axis=1)
    cumulative = np.cumsum(ordered, axis=1)
    ranks = np.arange(1, matrix.shape[1] + 1)
    positive = ordered - (cumulative - totals[:, None]) / ranks > 0
    last = matrix.shape[1] - 1 - np.argmax(positive[:, ::-1], axis=1)
    last = np.where(positive.any(axis=1), last, 0)
    rows = np.arange(matrix.shape[0])
    return (cumulative[rows, last] - totals) / (last + 1)


def project_rows(matrix: np.ndarray, totals: np.ndarray) -> np.ndarray:
    """Project every row of ``matrix`` onto the simplex scaled to its total."""
    totals = np.maximum(totals, 0.0)
    return np.maximum(matrix - row_shifts(matrix, totals)[:, None], 0.0)


def project_table(noisy: np.ndarray, rows: np.ndarray, columns: np.ndarray, iterations: int) -> np.ndarray:
    """L2 projection of a noisy 2-way table onto {T ≥ 0, T·1 = rows, Tᵀ·1 = columns}.

    The projection is T = max(Y − u 1ᵀ − 1 vᵀ, 0) for the dual variables (u, v); alternating
    exact maximisation over u and over v (each a batch of simplex projections) is block
    coordinate ascent on the concave dual, which converges to the projection. A few steps of
    iterative proportional fitting then remove the remaining margin error.
    """
    shift_rows, shift_columns = np.zeros(noisy.shape[0]), np.zeros(noisy.shape[1])
    tolerance = 1e-3 * max(float(rows.sum()), 1.0) / noisy.size
    for step in range(iterations):
        shift_rows = row_shifts(noisy - shift_columns[None, :], rows)
        shift_columns = row_shifts((noisy - shift_rows[:, None]).T, columns)
        if step % 10 == 9:
            table = np.maximum(noisy - shift_rows[:, None] - shift_columns[None, :], 0.0)
            if np.abs(table.sum(axis=1) - rows).max() < tolerance:
                break
    table = np.maximum(noisy - shift_rows[:, None] - shift_columns[None, :], 0.0)
    for _ in range(20):
        table *= _ratio(rows, table.sum(axis=1))[:, None]
        table *= _ratio(columns, table.sum(axis=0))[None, :]
    return table


def _ratio(target: np.ndarray, current: np.ndarray) -> np.ndarray:
    return np.divide(target, current, out=np.zeros_like(target), where=current > 0)


def estimate_model(
    noisy_fine: list[np.ndarray],
    sigma1: float,
    bins: list[np.ndarray],
    label: int | None,
    edges: list[tuple[int, int]],
    noisy_tables: list[np.ndarray],
    sigma2: float | list[float],
    iterations: int,
    stars: dict[int, np.ndarray] | None = None,
    label_sigma: float = math.inf,
) -> tuple[list[np.ndarray], list[np.ndarray], list[np.ndarray], list[np.ndarray]]:
    """Consistent, non-negative marginals of the (label-augmented) tree from all measurements.

    Parameters
    ----------
    noisy_fine : per column, noisy fine-code counts (σ1 per cell)
    bins : per column, the bin of each fine code
    label : index of the label column joined to every edge, or None (plain tree)
    noisy_tables : per edge (a, b), noisy counts of shape (k_label, k_a, k_b) (σ2 per cell;
        k_label is 1 without a label)
    sigma2 : the edge tables' noise σ: one for every edge, or one per edge (``label_edge_weight``
        measures some edges more precisely); each table is weighted by its own
    stars : per column, a direct noisy (label, column) table (``label_sigma`` per cell)

    Returns
    -------
    one_way : per column, bin counts (k_c,), all summing to n̂
    within : per column, P(fine code | bin), (k_c, n_codes_c)
    label_tables : per column, counts of (label bin, column bin), (k_label, k_c)
    pairs : per edge, counts (k_label, k_a, k_b) with margins ``label_tables[a]``/``[b]``
    """
    sigmas = [float(sigma2)] * len(edges) if isinstance(sigma2, int | float) else list(sigma2)
    if len(sigmas) != len(edges):
        raise ValueError("one σ per edge table, or one for all")
    n_hat = _estimate_total(noisy_fine, sigma1, noisy_tables, sigmas)
    margins = _table_margins(len(bins), label, edges, noisy_tables, sigmas)
    if stars:
        if label is None:
            raise ValueError("direct (label, column) tables need a label column")
        for column, star in stars.items():
            margins[column].append((star, label_sigma**2))
            margins[label].append((star.sum(axis=1)[None, :], label_sigma**2 * star.shape[1]))
    one_way = [_combine_one_way(noisy_fine[c], sigma1, bins[c], margins[c], n_hat) for c in range(len(bins))]
    label_one_way = one_way[label] if label is not None else np.array([n_hat])
    label_tables = [_label_table(c, label, one_way, label_one_way, margins, iterations) for c in range(len(bins))]
    within = [_within_bins(noisy, b, counts) for noisy, b, counts in zip(noisy_fine, bins, one_way, strict=True)]
    pairs = [
        np.stack(
            [
                _edge_slice(noisy[y], label_tables[a][y], label_tables[b][y], sigma**2, iterations)
                for y in range(noisy.shape[0])
            ]
        )
        for (a, b), noisy, sigma in zip(edges, noisy_tables, sigmas, strict=True)
    ]
    return one_way, within, label_tables, pairs


def _edge_slice(
    noisy: np.ndarray, rows: np.ndarray, columns: np.ndarray, variance: float, iterations: int
) -> np.ndarray:
    """One label class's (a, b) table: shrunk toward independence, then made consistent."""
    independent = np.outer(rows, columns) / max(float(rows.sum()), 1e-9)
    return project_table(shrink_interaction(noisy, independent, variance), rows, columns, iterations)


def shrink_interaction(noisy: np.ndarray, independent: np.ndarray, variance: float) -> np.ndarray:
    """Positive-part James-Stein shrinkage of a noisy 2-way table's interaction.

    The interaction is the double-centred residual ``D`` of the table from the independence
    table; its noise has about ``variance·(r−1)(c−1)`` total power, so ``D`` is scaled by
    ``max(0, 1 − variance·(r−1)(c−1)/‖D‖²)`` (James & Stein 1961; Efron & Morris 1973,
    Sec. 2). The margins are untouched. A pure post-processing: it costs no privacy, and it
    keeps noise from posing as dependence where the signal is weak (many small tables).

    Parameters
    ----------
    noisy, independent : ndarrays of shape (r, c)
    variance : float
        Per-cell noise variance of ``noisy``.
    """
    residual = noisy - independent
    interaction = (
        residual - residual.mean(axis=0, keepdims=True) - residual.mean(axis=1, keepdims=True) + residual.mean()
    )
    degrees = (noisy.shape[0] - 1) * (noisy.shape[1] - 1)
    power = float((interaction**2).sum())
    keep = max(0.0, 1.0 - variance * degrees / power) if power > 0 else 0.0
    return noisy - (1.0 - keep) * interaction


def _estimate_total(
    noisy_fine: list[np.ndarray], sigma1: float, noisy_tables: list[np.ndarray], sigmas: list[float]
) -> float:
    """Inverse-variance-weighted mean of every measurement's total (variance σ²·cells, each
    edge table at its own σ)."""
    tables = [(t.sum(), sigma1**2 * t.size) for t in noisy_fine]
    tables += [(t.sum(), sigma**2 * t.size) for t, sigma in zip(noisy_tables, sigmas, strict=True)]
    weights = np.array([1.0 / variance for _, variance in tables])
    totals = np.array([total for total, _ in tables])
    return max(float(weights @ totals / weights.sum()), 1.0)


def _table_margins(
    d: int, label: int | None, edges: list[tuple[int, int]], noisy_tables: list[np.ndarray], sigmas: list[float]
) -> list[list[tuple[Any, ...]]]:
    """Per column, every (label × column) margin of the noisy edge tables with its per-cell
    variance σ²·(cells summed over), σ the edge table's own; the label's own margins are
    (1 × k_label)."""
    margins: list[list[tuple[Any, ...]]] = [[] for _ in range(d)]
    for (a, b), noisy, sigma in zip(edges, noisy_tables, sigmas, strict=True):
        k_label, k_a, k_b = noisy.shape
        margins[a].append((noisy.sum(axis=2), sigma**2 * k_b))
        margins[b].append((noisy.sum(axis=1), sigma**2 * k_a))
        if label is not None:
            margins[label].append((noisy.sum(axis=(1, 2))[None, :], sigma**2 * k_a * k_b))
    return margins


def _weighted(estimates: list[tuple[np.ndarray, float]]) -> np.ndarray:
    weights = np.array([1.0 / variance for _, variance in estimates])
    stacked = np.array([estimate for estimate, _ in estimates])
    return np.tensordot(weights, stacked, axes=1) / weights.sum()


def _combine_one_way(
    noisy_fine: np.ndarray, sigma1: float, bins: np.ndarray, margins: list[tuple[Any, ...]], n_hat: float
) -> np.ndarray:
    """Bin counts of one column: the 1-way and every margin of the edge tables, each
    weighted by its inverse variance per bin, then projected onto the simplex of total n̂."""
    k = int(bins.max()) + 1
    estimates = [np.bincount(bins, weights=noisy_fine, minlength=k)]
    variances = [sigma1**2 * np.bincount(bins, minlength=k)]
    for table, variance in margins:
        estimates.append(table.sum(axis=0))
        variances.append(np.full(k, variance * table.shape[0]))
    weights = 1.0 / np.array(variances)
    combined = (weights * np.array(estimates)).sum(axis=0) / weights.sum(axis=0)
    return project_simplex(combined, n_hat)


def _label_table(
    column: int,
    label: int | None,
    one_way: list[np.ndarray],
    label_one_way: np.ndarray,
    margins: list[list[tuple[Any, ...]]],
    iterations: int,
) -> np.ndarray:
    """Counts of (label bin, column bin), consistent with both 1-way estimates."""
    if label is None or column == label:
        return one_way[column][None, :] if label is None else np.diag(one_way[column])
    variance = 1.0 / sum(1.0 / v for _, v in margins[column])
    independent = np.outer(label_one_way, one_way[column]) / max(float(label_one_way.sum()), 1.0)
    noisy = shrink_interaction(_weighted(margins[column]), independent, variance)
    return project_table(noisy, label_one_way, one_way[column], iterations)


def _within_bins(noisy: np.ndarray, bins: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """P(fine code | bin): each bin's noisy fine counts projected onto the simplex of the bin's
    estimated total, then normalised.

    Projecting onto the bin's total (not onto 1) keeps every code whose noisy count stands above
    the bin's noise level; projecting counts of hundreds onto the unit simplex kept only the
    largest code, so each bin emitted a single value.
    """
    within = np.zeros((len(counts), len(bins)))
    for number in range(len(counts)):
        members = np.flatnonzero(bins == number)
        share = project_simplex(noisy[members], max(float(counts[number]), 1.0))
        total = share.sum()
        within[number, members] = share / total if total > 0 else 1.0 / len(members)
    return within


def conditional(table: np.ndarray, fallback: np.ndarray) -> np.ndarray:
    """Row-normalise ``table`` (rows: parent values). Rows without mass use ``fallback``
    instead: one vector for every row, or a table with a row per parent value."""
    default = np.broadcast_to(np.atleast_2d(fallback).astype(float), table.shape)
    default_sums = default.sum(axis=1, keepdims=True)
    default = np.where(default_sums > 0, default / np.where(default_sums > 0, default_sums, 1.0), 1.0 / table.shape[1])
    sums = table.sum(axis=1, keepdims=True)
    return np.where(sums > 0, table / np.where(sums > 0, sums, 1.0), default)


def tree_order(edges: list[tuple[int, int]], start: int) -> list[tuple[int, int, int, bool]]:
    """The tree's edges breadth-first from ``start``: ``(parent, child, k, flipped)`` for each
    edge reached, ``k`` its index in ``edges`` and ``flipped`` whether it is stored as
    ``(child, parent)`` (its tables' column axes then swap). Neighbours in the order of ``edges``."""
    neighbours: dict[int, list[tuple[int, int, bool]]] = {}
    for k, (a, b) in enumerate(edges):
        neighbours.setdefault(a, []).append((b, k, False))
        neighbours.setdefault(b, []).append((a, k, True))
    order: list[tuple[int, int, int, bool]] = []
    seen, queue = {start}, [start]
    while queue:
        parent = queue.pop(0)
        for child, k, flipped in neighbours.get(parent, []):
            if child in seen:
                continue
            seen.add(child)
            queue.append(child)
            order.append((parent, child, k, flipped))
    return order


def label_edges(edges: list[tuple[int, int]], focus: list[int]) -> list[int]:
    """Indices of the edges :func:`focus_label_dependence` keeps label-dependent: down the tree
    from ``focus[0]``, the edge into each other column of ``focus`` (``len(focus) − 1`` edges
    when the tree spans them all). A function of the tree and the picks alone."""
    chosen = set(focus)
    return sorted(k for _, child, k, _ in tree_order(edges, focus[0]) if child in chosen)


def focus_label_dependence(
    label_tables: list[np.ndarray],
    pairs: list[np.ndarray],
    edges: list[tuple[int, int]],
    focus: list[int],
    iterations: int,
) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Keep the label a direct parent of the ``focus`` columns only (a selective TAN).

    Down the tree from ``focus[0]``, a child outside ``focus`` is drawn from P(child | parent)
    pooled over the label classes, so it depends on the label only through its ancestors; a
    child in ``focus`` keeps its estimated (label, parent, child) table, re-fitted to its parent's
    new (label, parent) margins and its own (label, child) table. Every column's 1-way margin is
    unchanged. The tables returned are the exact marginals of that Bayesian network, so sampling
    from any root gives the same distribution. A post-processing: it costs no privacy.

    Returns
    -------
    label_tables, pairs : as :func:`estimate_model` returns them
    """
    label_tables, pairs = list(label_tables), list(pairs)
    chosen = set(focus)
    for parent, child, k, flipped in tree_order(edges, focus[0]):
        table = pairs[k].transpose(0, 2, 1) if flipped else pairs[k]
        rows = label_tables[parent]
        if child in chosen:
            joint = np.stack(
                [project_table(table[y], rows[y], label_tables[child][y], iterations) for y in range(len(rows))]
            )
        else:
            pooled = table.sum(axis=0)
            fallback = np.broadcast_to(pooled.sum(axis=0), pooled.shape)
            joint = rows[:, :, None] * conditional(pooled, fallback)[None, :, :]
        label_tables[child] = joint.sum(axis=1)
        pairs[k] = joint.transpose(0, 2, 1) if flipped else joint
    return label_tables, pairs
