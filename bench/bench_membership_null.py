"""False-positive rate of the membership TPR checks when there is no membership signal (issue 11).

Usage::

    .venv/bin/python bench/bench_membership_null.py                      # breast_cancer, 5 × 200
    .venv/bin/python bench/bench_membership_null.py --only diabetes digits --seeds 5 --shuffles 200

For each table (``bench/bench_quality.py``'s package tables and split) and seed, a clean ``mst``
release at ε = 1 (δ = 1e-5) is drawn and the membership attacks' scores of the audit's candidates
(members and as many non-members, :class:`audits.metrics.membership.Candidates`) computed once.
Then the candidates' member labels are permuted ``--shuffles`` times: under each permutation the
"members" are a random half of the candidates, so no attack can tell them apart (the exact null),
and ``membership_distance_tpr`` and ``membership_domias_tpr`` are judged as the audit judges them.
Printed: each check's failure rate per release and overall, against the 2.5 % its one-sided
97.5 % bound allows, and the share of permutations failing either check.

Then, on the same releases (true labels), 1 % and 5 % of the synthetic rows are replaced by
verbatim copies of scored members (the audit's positive control plants 5 %): the share of
releases where each TPR check fails (power).
"""

from __future__ import annotations

import argparse
import sys
import time
import warnings
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

TPR_CHECKS = ("membership_distance_tpr", "membership_domias_tpr")


def scores_of(data, synthetic_rows, candidates) -> dict[str, np.ndarray]:
    """Both attacks' scores of the candidates (members first), as ``membership_checks`` computes them."""
    from audits.metrics.membership import SMOOTHING

    queries = np.vstack([data.train_embedding[candidates.members], data.holdout_embedding[candidates.non_members]])
    distance, _ = synthetic_rows.nearest("membership", queries)
    return {
        "domias": np.log(candidates.reference_distance + SMOOTHING) - np.log(distance + SMOOTHING),
        "distance": -distance,
    }


def tpr_failures(truth: np.ndarray, scores: dict[str, np.ndarray]) -> dict[str, bool]:
    from audits.metrics import membership

    out = {}
    for attack, score in scores.items():
        for result in membership._attack_results(attack, membership.attack_summary(truth, score), None):
            if result.name in TPR_CHECKS:
                out[result.name] = bool(result.failed)
    return out


def main() -> None:
    import bench_quality

    from audits.metrics.context import AuditData, replace_rows
    from audits.metrics.encoding import TableSchema
    from audits.metrics.membership import Candidates
    from audits.metrics.power import scored_members
    from synth_engine.generators import get_generator

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--only", nargs="+", default=["breast_cancer"])
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--shuffles", type=int, default=200)
    parser.add_argument("--epsilon", type=float, default=1.0)
    args = parser.parse_args()
    warnings.simplefilter("ignore")
    for table in args.only:
        started = time.perf_counter()
        train, holdout, schema, _ = bench_quality.load(table, None)
        data = AuditData.prepare(train, holdout, TableSchema.from_dict(schema))
        null_fail = {name: [] for name in TPR_CHECKS}
        either = []
        power = {share: {name: 0 for name in TPR_CHECKS} for share in (0.01, 0.05)}
        for seed in range(args.seeds):
            model = get_generator("mst").fit(train, schema, args.epsilon, 1e-5, random_state=seed)
            rows = data.synthetic(model.sample(len(train)))
            m = scored_members(len(rows.frame), len(train), len(holdout))
            candidates = Candidates.draw(data, m, seed)
            scores = scores_of(data, rows, candidates)
            truth = np.r_[np.ones(m, dtype=int), np.zeros(m, dtype=int)]
            rng = np.random.default_rng(1000 + seed)
            counts = {name: 0 for name in TPR_CHECKS}
            any_count = 0
            for _ in range(args.shuffles):
                permuted = rng.permutation(truth)
                failed = tpr_failures(permuted, scores)
                for name in TPR_CHECKS:
                    counts[name] += failed[name]
                any_count += any(failed.values())
            for name in TPR_CHECKS:
                null_fail[name].append(counts[name] / args.shuffles)
            either.append(any_count / args.shuffles)
            print(
                f"{table} seed {seed} ({m} members / {m} non-members): null failure rate "
                + ", ".join(f"{n} {counts[n] / args.shuffles:.3f}" for n in TPR_CHECKS)
                + f", either {any_count / args.shuffles:.3f}; true labels: {tpr_failures(truth, scores)}",
                flush=True,
            )
            for share in power:
                count = max(1, round(share * len(rows.frame)))
                pick = np.random.default_rng(seed).choice(len(candidates.members), count, replace=False)
                positions = np.sort(np.random.default_rng(seed + 1).choice(len(rows.frame), count, replace=False))
                planted = replace_rows(data, rows, positions, candidates.members[pick])
                failed = tpr_failures(truth, scores_of(data, planted, candidates))
                for name in TPR_CHECKS:
                    power[share][name] += failed[name]
        print(
            f"{table}: over {args.seeds} releases × {args.shuffles} permutations, null failure rate (allowed 0.025): "
            + ", ".join(f"{n} {np.mean(v):.3f} (per release {min(v):.3f}-{max(v):.3f})" for n, v in null_fail.items())
            + f", either {np.mean(either):.3f}",
            flush=True,
        )
        for share, counts in power.items():
            print(
                f"{table}: {share:.0%} of synthetic rows copied from scored members, TPR check fails in "
                + ", ".join(f"{n} {c}/{args.seeds}" for n, c in counts.items()),
                flush=True,
            )
        print(f"{table}: {time.perf_counter() - started:.0f} s", flush=True)


if __name__ == "__main__":
    main()
