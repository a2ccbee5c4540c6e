"""`synthgate assure GENERATOR --epsilon E`: test a generator's DP claim with a distinguishing game.

Exit 0 when no attack refuted the claim, 1 when one did (the run is stored as failed), 2 for a
user mistake (unknown generator, a non-private generator, bad numbers).
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from typing import Any

from django.contrib.auth.models import User
from django.core.management.base import CommandParser

from core.cli import CliError, SynthgateCommand, add_common_options
from core.cli_format import table
from synth_engine.apis import AssuranceRunOutputSerializer
from synth_engine.assurance.canaries import CANARY_KINDS
from synth_engine.generators import GENERATORS
from synth_engine.models import AssuranceRun
from synth_engine.services_assurance import assurance_run_start

FAILED_EXIT = 1


class Command(SynthgateCommand):
    help = "Test a generator's differential-privacy claim with a distinguishing game (reports, never certifies)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("generator", metavar="GENERATOR", help=f"one of {sorted(GENERATORS)}, or 'all'")
        parser.add_argument("--epsilon", type=float, required=True, help="the claimed ε to test")
        parser.add_argument("--delta", type=float, default=1e-5, help="the claimed δ (default 1e-5)")
        parser.add_argument("--runs", type=int, default=None, help="fits per world and canary (default 50; dp-tvae 10)")
        parser.add_argument(
            "--rows", type=int, default=None, help="rows of the public sample (default 1000; dp-tvae 400)"
        )
        parser.add_argument(
            "--canary", action="append", choices=CANARY_KINDS, help="canary kind to try (repeatable; default all)"
        )
        parser.add_argument("--param", action="append", default=[], metavar="NAME=JSON", help="generator parameter")
        add_common_options(parser)

    def handle(self, *args: Any, **options: Any) -> None:
        actor = self.actor(options)
        names = sorted(GENERATORS) if options["generator"] == "all" else [options["generator"]]
        runs, failed = [], []
        for name in names:
            if options["generator"] == "all" and not GENERATORS[name].is_private:
                self._say(f"{name}: not differentially private (ε = ∞), nothing to test")
                continue
            run = self._run(actor, name, options)
            runs.append(run)
            failed += [run] if not run.passed else []
        data = AssuranceRunOutputSerializer(runs, many=True).data
        self.emit(data if options["generator"] == "all" else data[0], lambda: self._text(runs))
        if failed:
            raise CliError(
                "; ".join(
                    f"{run.generator}: DP claim contradicted ({', '.join(run.report['failures'])})" for run in failed
                ),
                code="assurance_failed",
                extra={"runs": [run.pk for run in failed]},
                returncode=FAILED_EXIT,
            )

    def _run(self, actor: User | None, name: str, options: dict[str, Any]) -> AssuranceRun:
        if actor is None:
            raise CliError("assure needs --as USER (a steward or auditor)", code="usage")
        return assurance_run_start(
            actor=actor,
            generator=name,
            epsilon=options["epsilon"],
            delta=options["delta"],
            runs=options["runs"],
            n_rows=options["rows"],
            parameters=_parameters(options["param"]) if options["param"] else None,
            canaries=tuple(options["canary"] or CANARY_KINDS),
            progress=None if self.json_output else self._progress(name),
        )

    def _progress(self, name: str) -> Callable[[int, int], None]:
        def show(done: int, total: int) -> None:
            sys.stderr.write(f"\r{name}: fit {done}/{total}")
            if done == total:
                sys.stderr.write("\n")

        return show

    def _say(self, text: str) -> None:
        if not self.json_output:
            self.stdout.write(text)

    def _text(self, runs: list[AssuranceRun]) -> str:
        rows = []
        for run in runs:
            for canary in run.report["canaries"]:
                rows.append(
                    [
                        run.generator,
                        canary["kind"],
                        run.runs,
                        f"{canary['seconds']:.1f}",
                        f"{canary['epsilon_lower_bound']:.3f}",
                        canary["strongest_attack"],
                        f"{canary['mu_lower_bound'] / run.report['theoretical_mu']:.3f}",
                    ]
                )
        headers = ("generator", "canary", "runs", "seconds", "eps_lower_bound", "strongest attack", "mu_ratio")
        summary = [
            f"assurance #{run.pk} {run.generator} ({run.generator_version}) at ε={run.epsilon:g}, δ={run.delta:g}: "
            f"{run.status.upper()}  ε ≥ {run.epsilon_lower_bound:.3f}, μ ratio {run.mu_ratio:.3f}, "
            f"sampling: {run.report['sampling']['reason']}"
            for run in runs
        ]
        return table(headers, rows) + "\n" + "\n".join(summary)


def _parameters(pairs: list[str]) -> dict[str, Any]:
    parameters = {}
    for pair in pairs:
        name, separator, value = pair.partition("=")
        if not separator:
            raise CliError(f"--param takes NAME=VALUE, got {pair!r}", code="usage")
        try:
            parameters[name] = json.loads(value)
        except json.JSONDecodeError:
            parameters[name] = value
    return parameters
