"""Privacy-assurance benchmark: the full distinguishing game per generator and canary (prints figures).

For every registered generator (non-private ones are named and skipped: ε = ∞ makes no claim),
and for the deliberately leaky reference generators of the test suite (which the game must
catch), plays ``synthgate assure``'s game without the database and prints, per canary: runs per
world, seconds, the ε lower bound (Clopper–Pearson, α = 0.05 over the whole report), the
strongest attack and the μ ratio (measured Gaussian-DP μ lower bound over the μ of the claim),
plus the DP-SGD sampling check.

Usage::

    PYTHONPATH=. .venv/bin/python bench/bench_assure.py [--epsilon 1] [--runs 200] [--rows 1000]
        [--tvae-runs 20] [--tvae-rows 400] [--tvae-epsilon 4] [--only mst]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from synth_engine.assurance.game import PRESETS, AssuranceReport, assure_generator, reference_table  # noqa: E402
from synth_engine.generators import GENERATORS, get_generator  # noqa: E402
from tests.synth_engine.leaky import CopyingGenerator, UnderNoisedGenerator  # noqa: E402

DELTA = 1e-5


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epsilon", type=float, default=1.0)
    parser.add_argument("--runs", type=int, default=200)
    parser.add_argument("--rows", type=int, default=1000)
    parser.add_argument("--tvae-runs", type=int, default=20)
    parser.add_argument("--tvae-rows", type=int, default=400)
    parser.add_argument("--tvae-epsilon", type=float, default=4.0)
    parser.add_argument("--only", action="append", help="generator names to run (default: all, plus the leaky ones)")
    parser.add_argument("--json", type=Path, help="also write every report as JSON here")
    args = parser.parse_args()
    plans = _plans(args)
    print(
        f"{'generator':<16} {'canary':<19} {'eps':>5} {'runs':>5} {'rows':>5} {'seconds':>8} "
        f"{'eps_lb':>7} {'mu_ratio':>8}  strongest attack / verdict"
    )
    reports = []
    for name, factory, epsilon, runs, rows in plans:
        if factory is None:
            print(f"{name:<16} not differentially private (ε = ∞): nothing to test")
            continue
        frame, schema = reference_table(rows)
        started = time.perf_counter()
        report = assure_generator(factory, frame=frame, schema=schema, epsilon=epsilon, delta=DELTA, runs=runs)
        _print(name, report, rows, time.perf_counter() - started)
        reports.append({"name": name, **report.to_dict()})
    if args.json:
        args.json.write_text(json.dumps(reports, indent=2, default=str))


def _plans(args: argparse.Namespace) -> list[tuple[str, Any, float, int, int]]:
    plans: list[tuple[str, Any, float, int, int]] = []
    for name, cls in sorted(GENERATORS.items()):
        if not cls.is_private:
            plans.append((name, None, args.epsilon, 0, 0))
        elif name == "dp-tvae":
            factory = _factory(name, PRESETS["dp-tvae"]["parameters"])
            plans.append((name, factory, args.tvae_epsilon, args.tvae_runs, args.tvae_rows))
        else:
            plans.append((name, _factory(name, {}), args.epsilon, args.runs, args.rows))
    plans.append(("leaky-copy", CopyingGenerator, args.epsilon, min(args.runs, 60), args.rows))
    plans.append(("leaky-marginals", UnderNoisedGenerator, args.epsilon, min(args.runs, 60), args.rows))
    return [plan for plan in plans if not args.only or plan[0] in args.only]


def _factory(name: str, parameters: dict[str, Any]) -> Any:
    return lambda: get_generator(name, **parameters)


def _print(name: str, report: AssuranceReport, rows: int, seconds: float) -> None:
    for result in report.canaries:
        bound = result.strongest.bound
        print(
            f"{name:<16} {result.canary.kind:<19} {report.epsilon:>5g} {report.runs:>5} {rows:>5} "
            f"{result.seconds:>8.1f} {bound.epsilon_lower_bound:>7.3f} "
            f"{bound.mu_lower_bound / report.theoretical_mu:>8.3f}  {result.strongest.attack}"
        )
    verdict = "PASSED (not refuted)" if report.passed else "FAILED: " + "; ".join(report.failures)
    print(
        f"{name:<16} {'(all)':<19} {report.epsilon:>5g} {report.runs:>5} {rows:>5} {seconds:>8.1f} "
        f"{report.epsilon_lower_bound:>7.3f} {report.mu_ratio:>8.3f}  {verdict}"
    )
    print(
        f"{'':<16} sampling: {report.sampling['reason']}; largest reported ε {report.largest_reported_epsilon:.6g}; "
        f"the largest bound {report.runs} runs can show: {report.reachable_epsilon:.3f}"
    )


if __name__ == "__main__":
    main()
