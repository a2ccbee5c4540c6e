"""``exact_copies`` under the null and against 1 % planted copies, with the stratified exact test.

Usage::

    .venv/bin/python bench/bench_exact_copies.py                                # fair, 5 releases
    .venv/bin/python bench/bench_exact_copies.py --only fair --seeds 40 --permutations 200
    .venv/bin/python bench/bench_exact_copies.py --only fair --holdout 0.5      # another split
    .venv/bin/python bench/bench_exact_copies.py --only caravan --epsilon 3

For each table (``bench/bench_quality.py``'s tables, split and schemas; ``--holdout`` re-splits a
package table at that fraction, stratified by the label as the platform splits; ``--resplit``
draws a fresh split per seed) and seed, a clean ``mst`` release (δ = 1e-5, as many rows as
training rows) is judged by ``exact_copies``, and so is the same release with 1 % and 5 % of its
rows replaced by verbatim training rows (``bench_quality.audit``'s planting). Then the release's
records are relabelled ``--permutations`` times (training labels permuted within each label class,
as the split draws them): the exact null of a generator that did not memorise. Printed per table:

* clean releases: the check's verdict and what failed it (``chance_margin``: the margin's low end
  above the threshold; ``stratified_test``: :mod:`audits.metrics.copytest`'s exact test below
  ``COPIES_ALPHA`` with the high end above the threshold), the stratified test's p-values;
* null (relabellings): the share where the margin's low end exceeds 0 (its nominal 5 %), where
  the margin rule and the whole check fail, and where the stratified p-value is below 0.05,
  0.01 and 0.001;
* the clean release's ``detectable_copy_share`` (the smallest planted share the check is
  simulated to block in 4 of 5 plantings, from the audit's own counts) and whether copies planted
  for real at that share are blocked (``bench_quality.audit``'s planting at that share);
* 1 % and 5 % planted: what blocked them; the 1 % releases' stratified p-values; with
  ``--oracle-draws``, the 1 % p-value when the strata are the generator's own probabilities of
  each record (estimated from that many draws of the fitted model): the best a chance score can do.
"""

from __future__ import annotations

import argparse
import resource
import sys
import time
import warnings
from collections import Counter
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

EPSILON = {"caravan": 3.0}


def load(table: str, holdout: float | None, split_seed: int = 0) -> tuple[pd.DataFrame, pd.DataFrame, dict]:
    import bench_quality
    from sklearn.model_selection import train_test_split

    if (holdout is None and split_seed == 0) or table in ("adult", "adult_rare", "caravan"):
        train, test, schema, _ = bench_quality.load(table, None)
        return train, test, schema
    frame, schema = bench_quality.package_table(table)
    label = bench_quality.LABELS[table][0]
    train, test = train_test_split(frame, test_size=holdout or 0.2, random_state=split_seed, stratify=frame[label])
    return train.reset_index(drop=True), test.reset_index(drop=True), schema


def planted(
    train: pd.DataFrame, synthetic: pd.DataFrame, seed: int, share: float = 0.01, count: int | None = None
) -> pd.DataFrame:
    """``bench_quality.audit``'s planting (at 1 %: the same rows for the same seed); ``count``
    copies instead of ``round(share * rows)`` when given."""
    rng = np.random.default_rng(seed)
    count = count or max(1, round(share * len(synthetic)))
    positions = rng.choice(len(synthetic), count, replace=False)
    copies = train.iloc[rng.choice(len(train), count, replace=False)][list(synthetic.columns)]
    return pd.concat([synthetic.drop(index=synthetic.index[positions]), copies], ignore_index=True)


def main() -> None:
    from audits.metrics.base import CHECK_SPECS
    from audits.metrics.context import AuditData
    from audits.metrics.copytest import strata_of, stratified_test
    from audits.metrics.encoding import TableSchema, row_keys
    from audits.metrics.power import planted_rows
    from audits.metrics.reidentification import COPIES_ALPHA, chance_margin, exact_copies_check
    from synth_engine.generators import get_generator

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--only", nargs="+", default=["fair"])
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--permutations", type=int, default=100)
    parser.add_argument("--epsilon", type=float, default=None, help="default 1 (Caravan 3)")
    parser.add_argument("--holdout", type=float, default=None, help="re-split package tables at this fraction")
    parser.add_argument(
        "--oracle-draws",
        type=int,
        default=0,
        help="also stratify by the generator's own probabilities, estimated from this many draws (e.g. 1000000)",
    )
    parser.add_argument(
        "--resplit", action="store_true", help="a fresh split per seed (package tables): the null over splits"
    )
    args = parser.parse_args()
    warnings.simplefilter("ignore")
    threshold = CHECK_SPECS["exact_copies"].threshold
    assert threshold is not None
    for table in args.only:
        started, cpu = time.perf_counter(), time.process_time()
        epsilon = args.epsilon or EPSILON.get(table, 1.0)
        clean_failed: Counter = Counter()
        clean_p: list[float] = []
        blocked: dict[str, Counter] = {"1 %": Counter(), "5 %": Counter()}
        planted_p: list[float] = []
        oracle_p: list[float] = []
        null: Counter = Counter()
        null_p: list[float] = []
        detectable: Counter = Counter()
        at_detectable: Counter = Counter()
        one_percent_detectable: Counter = Counter()
        for seed in range(args.seeds):
            if seed == 0 or args.resplit:
                train, holdout, schema = load(table, args.holdout, seed if args.resplit else 0)
                data = AuditData.prepare(train, holdout, TableSchema.from_dict(schema))
                pooled_keys = np.concatenate([data.train_keys, data.holdout_keys])
                _, inverse, counts = np.unique(pooled_keys, return_inverse=True, return_counts=True)
                records = np.flatnonzero(counts[inverse] == 1)
                training = records < len(data.train_keys)
                label = data.schema.label
                classes = (
                    pd.concat([data.train[label], data.holdout[label]], ignore_index=True)
                    .astype(str)
                    .to_numpy()[records]
                    if label
                    else np.zeros(len(records), dtype=str)
                )
            model = get_generator("mst").fit(train, schema, epsilon, 1e-5, random_state=seed)
            synthetic = model.sample(len(train))
            rows = data.synthetic(synthetic)
            check_cpu = time.process_time()
            clean = exact_copies_check(data, rows)  # the first call with a reproduction fits the tree
            check_cpu = time.process_time() - check_cpu
            clean_failed[clean.details["failed_by"] or "passes"] += 1
            clean_p.append(clean.details["stratified_test"]["p_value"])
            detect = clean.details["detectable_copy_share"]
            detectable[detect] += 1
            if detect is not None:
                count = planted_rows(len(synthetic), detect, len(train))  # as the check simulates them
                at_share = exact_copies_check(data, data.synthetic(planted(train, synthetic, seed, count=count)))
                at_detectable["blocked" if at_share.passed is False else "passes"] += 1
            leaky = {}
            for name, share in (("1 %", 0.01), ("5 %", 0.05)):
                leaky_rows = data.synthetic(planted(train, synthetic, seed, share))
                leaky[name] = exact_copies_check(data, leaky_rows)
                blocked[name][leaky[name].details["failed_by"] or "passes"] += 1
                if name == "1 %":
                    if clean.details["detectable_copy_share"] is not None:
                        one_percent_detectable[
                            f"detectable ≤ 1 %: {'blocked' if leaky[name].passed is False else 'passes'}"
                            if clean.details["detectable_copy_share"] <= 0.01
                            else f"detectable > 1 %: {'blocked' if leaky[name].passed is False else 'passes'}"
                        ] += 1
                    planted_p.append(leaky[name].details["stratified_test"]["p_value"])
                    one_percent = leaky_rows
            if args.oracle_draws:  # what a perfect chance score would give: the model's own probabilities
                draws, counts = np.unique(
                    row_keys(model.sample(args.oracle_draws), list(data.schema.columns)), return_counts=True
                )
                at = np.minimum(np.searchsorted(draws, pooled_keys[records]), len(draws) - 1)
                found = np.where(draws[at] == pooled_keys[records], counts[at], 0)
                oracle = strata_of(np.log(found + 0.1), pooled_keys[records], classes)
                oracle_p.append(
                    stratified_test(np.isin(pooled_keys[records], one_percent.keys), training, oracle).p_value
                )
            reproduced = np.isin(pooled_keys[records], rows.keys)
            strata = data.memo.get("copies_strata", np.zeros(len(records), dtype=np.int64))
            rng = np.random.default_rng(10_000 + seed)
            for _ in range(args.permutations):
                labels = training.copy()
                for value in np.unique(classes):
                    where = np.flatnonzero(classes == value)
                    labels[where] = rng.permutation(training[where])
                value_, _, margin = chance_margin(
                    int((reproduced & labels).sum()),
                    int(labels.sum()),
                    int((reproduced & ~labels).sum()),
                    int((~labels).sum()),
                    len(rows.keys),
                )
                p = stratified_test(reproduced, labels, strata, random_state=int(rng.integers(2**31))).p_value
                null_p.append(p)
                null["low end > 0"] += value_ - margin > 0
                by_margin = value_ - margin > threshold
                null["margin rule"] += by_margin
                null["check"] += by_margin or (p < COPIES_ALPHA and value_ + margin > threshold)
            print(
                f"{table} seed {seed}: clean {clean.details['failed_by'] or 'passes'} "
                f"(value {clean.value:.4f}, margin {clean.details['chance_margin']:.4f}, stratified p "
                f"{clean_p[-1]:.4f}, detectable share {detect}; {check_cpu:.2f} s CPU); "
                + "; ".join(
                    f"{name} planted: {r.details['failed_by'] or 'passes'} (value {r.value:.4f}, low end "
                    f"{r.ci_low:.4f}, stratified p {r.details['stratified_test']['p_value']:.4f})"
                    for name, r in leaky.items()
                ),
                flush=True,
            )
        runs = max(args.seeds * args.permutations, 1)
        nulls = np.array(null_p)
        usage = resource.getrusage(resource.RUSAGE_SELF)

        def below(values: list[float], level: float) -> str:
            return f"{sum(q < level for q in values)}/{len(values)}"

        def share(values: np.ndarray, level: float) -> float:
            return float(np.mean(values < level)) if len(values) else 0.0

        print(
            f"{table} (ε {epsilon:g}, {len(train)} train / {len(holdout)} holdout rows, {training.sum()} / "
            f"{(~training).sum()} records found once): clean releases {dict(clean_failed)}, stratified p < 0.05 "
            f"{below(clean_p, 0.05)}, < 0.001 {below(clean_p, 0.001)}; null over {args.seeds * args.permutations} "
            f"relabellings: margin's low end > 0 {null['low end > 0'] / runs:.4f} (nominal 0.05), margin rule fails "
            f"{null['margin rule'] / runs:.4f}, check fails {null['check'] / runs:.4f}, stratified p < 0.05 "
            f"{share(nulls, 0.05):.4f}, < 0.01 {share(nulls, 0.01):.4f}, < 0.001 {share(nulls, 0.001):.4f}; planted: "
            + ", ".join(f"{name} {dict(counter)}" for name, counter in blocked.items())
            + f"; 1 % stratified p < 0.05 {below(planted_p, 0.05)}, < 0.01 {below(planted_p, 0.01)}, "
            f"< 0.001 {below(planted_p, 0.001)}"
            + (f", stratified by the model's own probabilities p < 0.05 {below(oracle_p, 0.05)}" if oracle_p else "")
            + f"; detectable copy share of the clean releases {dict(sorted(detectable.items(), key=str))}, copies "
            f"planted at it {dict(at_detectable)}, 1 % copies by it {dict(one_percent_detectable)}"
            + f"; {time.perf_counter() - started:.0f} s wall, {time.process_time() - cpu:.0f} s CPU, "
            f"peak RSS {usage.ru_maxrss / 1024:.0f} MB",
            flush=True,
        )


if __name__ == "__main__":
    main()
