"""MST's tree selection on a sample of the rows against the selection on every row, in memory.

Usage::

    nice -n 10 .venv/bin/python bench/bench_selection_sample.py --rows 2500000 --selection-rows 250000 --seeds 0 1 2

The table is ``bench_scale.py``'s (``make_chunk``, chunks of 500,000 rows seeded by chunk: its first
``--rows`` rows), fitted in memory at ε = 1, δ = 1e-5 twice a seed: with ``selection_rows = 0``
(every row scored) and with ``--selection-rows`` (the scored tables counted on the rows whose hash
of their fine codes falls below the bound, about ``selection_rows / n̂`` of them: 250,000 of
2,500,000 is the rate of the default 1,000,000 at 10,000,000 rows). Printed per seed and way: the
tree's edges shared with the full selection's, the tree's weight (the sum of its edges' exact
scores ``‖M_ab − p_a p_bᵀ / n‖₁`` on every row, no noise) as a share of the maximum spanning
tree's, the mean 1-way and 2-way TVD of 200,000 synthetic rows against 200,000 real ones (a fresh
chunk, seed 999; numerics in 20 quantile bins, ``bench_generators.tvd_scores``) and the TSTR ROC AUC
(``bench_generators.tstr``: trained on 100,000 synthetic rows, scored on 100,000 real ones), the
fit's CPU seconds, and the load.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

import bench_generators  # noqa: E402
import bench_scale  # noqa: E402


def table(rows: int) -> pd.DataFrame:
    chunks = [
        bench_scale.make_chunk(min(bench_scale.CHUNK, rows - start), seed=start // bench_scale.CHUNK)
        for start in range(0, rows, bench_scale.CHUNK)
    ]
    return pd.concat(chunks, ignore_index=True)


def exact_scores(frame: pd.DataFrame, model, columns: list[int]) -> dict[tuple[int, int], float]:
    """Every pair's exact score on every row, at the model's bins (no noise)."""
    from synth_engine.generators.counts import FrameCounts

    source = FrameCounts(frame)
    pairs = [(a, b) for i, a in enumerate(columns) for b in columns[i + 1 :]]
    tables = source.binned_counts(model.codecs_, model.bins_, pairs)
    n = float(len(frame))
    scores = {}
    for (a, b), found in zip(pairs, tables, strict=True):
        expected = np.outer(found.sum(axis=1), found.sum(axis=0)) / n
        scores[(a, b)] = float(np.abs(found - expected).sum())
    return scores


def maximum_tree_weight(scores: dict[tuple[int, int], float], columns: list[int]) -> float:
    component = {c: c for c in columns}
    total = 0.0
    for (a, b), score in sorted(scores.items(), key=lambda item: -item[1]):
        if component[a] != component[b]:
            old, new = component[b], component[a]
            component = {c: new if group == old else group for c, group in component.items()}
            total += score
    return total


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=2_500_000)
    parser.add_argument("--selection-rows", type=int, default=250_000)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--sampled-only", action="store_true", help="skip the fit on every row")
    arguments = parser.parse_args()
    from synth_engine.generators import MSTGenerator

    schema = bench_scale.bench_schema()
    frame = table(arguments.rows)
    real = bench_scale.make_chunk(400_000, seed=999)
    numeric = [c["name"] for c in schema["columns"] if c["type"] in ("integer", "float", "datetime")]
    label = "label"
    columns = list(range(1, len(schema["columns"])))
    print("seed | way | shared_edges | tree_weight_share | tvd1 | tvd2 | tstr_auc | fit_cpu_s | load", flush=True)
    for seed in arguments.seeds:
        edges: dict[str, set[tuple[int, int]]] = {}
        ways = [("every row", 0), (f"sample ({arguments.selection_rows:,})", arguments.selection_rows)]
        for way, rows in ways[1:] if arguments.sampled_only else ways:
            cpu = time.process_time()
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                model = MSTGenerator(selection_rows=rows).fit(
                    frame, schema, bench_scale.EPSILON, bench_scale.DELTA, random_state=seed
                )
            fit_cpu = time.process_time() - cpu
            found = exact_scores(frame, model, columns)
            best = maximum_tree_weight(found, columns)
            weight = sum(found[edge] for edge in model.edges_) / best
            edges[way] = set(model.edges_)
            synthetic = model.sample(200_000)
            synthetic[label] = synthetic[label].astype(str)
            tvd1, tvd2 = bench_generators.tvd_scores(real.iloc[:200_000], synthetic, numeric)
            auc, _ = bench_generators.tstr(synthetic.iloc[:100_000], real.iloc[200_000:300_000], label, "yes", numeric)
            shared = len(edges[way] & edges["every row"]) if "every row" in edges else "-"
            print(
                f"{seed} | {way} | {shared}/{len(model.edges_)} | {weight:.4f} | {tvd1:.4f} | {tvd2:.4f} | "
                f"{auc:.4f} | {fit_cpu:.1f} | {os.getloadavg()[0]:.1f}",
                flush=True,
            )


if __name__ == "__main__":
    main()
