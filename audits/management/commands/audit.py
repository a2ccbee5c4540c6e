"""`synthgate audit show|list|run|external|accept-risk`: audit runs from the command line."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from django.contrib.auth.models import User
from django.core.management.base import CommandParser

from audits import services
from audits.apis.runs import AuditRunDetailOutputSerializer, AuditRunOutputSerializer, RiskAcceptApi
from audits.models import AuditRun, AuditStatus, CheckResult, Datasheet
from audits.recipient import reads_real_diagnostics, recipient_check_view, recipient_run_data
from audits.selectors import audit_run_get, audit_run_list
from core.cli import CliError, SynthgateCommand
from core.cli_format import cell, fields, table, version_ref
from governance.storage import version_storage

LIST_COLUMNS = (
    "id",
    "kind",
    "status",
    "blocked",
    "dataset",
    "version",
    "request",
    "failed_checks",
    "created_at",
)
DIRECTION_WORDS = {"higher_is_better": "higher is better", "lower_is_better": "lower is better"}


class Command(SynthgateCommand):
    help = "Show, list and run audits (on demand or of external data); accept the risk of a failed one."
    examples = (
        "synthgate audit list --request 12",
        "synthgate audit show 3",
        "synthgate audit run 7 --seed 1",
        "synthgate audit external --dataset adult --synthetic s.csv --holdout h.csv",
        'synthgate audit accept-risk 12 --reason "reviewed: linkage limited to public fields" --as carol',
    )

    def add_arguments(self, parser: CommandParser) -> None:
        actions = self.add_subcommands(parser)
        show = self.add_subcommand(actions, "show", "every check of a run, the positive controls and the datasheet")
        show.add_argument("run_id", type=int, metavar="ID")
        listing = self.add_subcommand(actions, "list", "audit runs you may see, newest first")
        listing.add_argument("--status", choices=AuditStatus.values, help="only runs with this verdict")
        listing.add_argument("--version", type=int, metavar="VERSION_ID", help="only audits of this dataset version")
        listing.add_argument("--request", type=int, metavar="REQUEST_ID", help="only audits of this request")
        run = self.add_subcommand(actions, "run", "audit a synthetic or external version again")
        run.add_argument("version_id", type=int, metavar="VERSION_ID")
        run.add_argument("--seed", type=int, help="fix the audit's seed (default: a fresh random one)")
        external = self.add_subcommand(actions, "external", "audit synthetic data made outside Synthgate")
        external.add_argument(
            "--dataset", required=True, metavar="NAME", help="its newest source version is the training data"
        )
        external.add_argument("--synthetic", required=True, metavar="S.csv", help="the synthetic table")
        external.add_argument("--holdout", required=True, metavar="H.csv", help="real rows the generator never saw")
        external.add_argument("--seed", type=int, help="fix the audit's randomness (default: random)")
        accept = self.add_subcommand(actions, "accept-risk", "accept a blocked request's failed audit (an approver)")
        accept.add_argument("request_id", type=int, metavar="REQUEST_ID")
        accept.add_argument(
            "--reason",
            required=True,
            action="append",
            metavar="CHECK=REASON",
            help="a failed check and why its failure is acceptable; repeat for every failed check",
        )

    def handle_show(self, actor: User, options: dict[str, Any]) -> None:
        self.show_run(audit_run_get(user=actor, run_id=options["run_id"]), actor)

    def handle_list(self, actor: User, options: dict[str, Any]) -> None:
        runs = audit_run_list(user=actor)
        for option, field in (("status", "status"), ("version", "version_id"), ("request", "request_id")):
            if options[option] is not None:
                runs = runs.filter(**{field: options[option]})
        listed = list(runs)
        self.emit(
            AuditRunOutputSerializer(listed, many=True).data,
            lambda: table(
                LIST_COLUMNS,
                [
                    (
                        run.pk,
                        run.kind,
                        run.status,
                        run.blocked,
                        run.version.dataset.name,
                        version_ref(run.version_id, run.version.number),
                        run.request_id,
                        run.failed_checks,
                        run.created_at,
                    )
                    for run in listed
                ],
            ),
        )

    def handle_run(self, actor: User, options: dict[str, Any]) -> None:
        _check_seed(options["seed"])
        run = services.audit_run_on_demand(actor=actor, version_id=options["version_id"], seed=options["seed"])
        self.show_run(audit_run_get(user=actor, run_id=run.pk), actor)

    def handle_external(self, actor: User, options: dict[str, Any]) -> None:
        _check_seed(options["seed"])
        paths = {option: _existing_file(options[option], option=f"--{option}") for option in ("synthetic", "holdout")}
        run = services.audit_external(
            actor=actor,
            dataset_name=options["dataset"],
            synthetic_path=paths["synthetic"],
            holdout_path=paths["holdout"],
            seed=options["seed"],
        )
        self.show_run(audit_run_get(user=actor, run_id=run.pk), actor)

    def handle_accept_risk(self, actor: User, options: dict[str, Any]) -> None:
        acceptance = services.risk_accept(
            actor=actor, request_id=options["request_id"], reasons=_reasons(options["reason"])
        )
        data = RiskAcceptApi.OutputSerializer(acceptance).data
        self.emit(
            data,
            f"Risk accepted for request #{acceptance.request_id} (audit #{acceptance.run_id}) by "
            f"{acceptance.approver.username}: {', '.join(acceptance.failed_checks) or 'no failed checks'}."
            "\n"
            + "\n".join(f"  {name}: {text}" for name, text in acceptance.reasons.items())
            + f"\nThe request is now {acceptance.request.state}.",
        )

    def show_run(self, run: AuditRun, actor: User) -> None:
        """Exact diagnostics for stewards, approvers and auditors; the recipient view for anyone else."""
        exact = reads_real_diagnostics(actor)
        if not self.json_output:
            # The text needs no serializer: its links load the whole URLconf (every app's views,
            # pandas, scikit-learn), seconds a stored result must not cost.
            self.stdout.write(run_text(run) if exact else recipient_run_text(run))
            return
        data = AuditRunDetailOutputSerializer(run).data
        if exact:
            self.emit(data, lambda: run_text(run))
        else:
            self.emit(recipient_run_data(dict(data), run), lambda: recipient_run_text(run))


def run_text(run: AuditRun) -> str:
    """The verdict, why a blocked run is blocked, every check, the positive controls and the datasheet."""
    checks = list(run.checks.all())
    lines = [
        verdict_line(run),
        *blocking_reasons(checks),
        "",
        fields(
            [
                ("dataset", run.version.dataset.name),
                ("version", f"#{run.version_id} (v{run.version.number}, {run.version.kind})"),
                ("version hash", run.version.content_hash),
                ("request", run.request_id),
                ("kind", run.kind),
                ("seed", run.seed),
                ("failed checks", run.failed_checks),
                ("finished at", run.finished_at),
            ]
        ),
    ]
    if run.error:
        lines += ["", f"error: {run.error}"]
    lines += [
        "",
        "Checks",
        table(
            ("check", "category", "value", "threshold", "direction", "verdict"),
            [
                (
                    c.name,
                    c.category,
                    _number(c.value),
                    _number(c.threshold),
                    DIRECTION_WORDS.get(c.direction, c.direction),
                    c.verdict,
                )
                for c in checks
            ],
        ),
    ]
    lines += ["", "Positive controls", *control_lines(run)]
    lines += ["", "Datasheet", datasheet_text(Datasheet.objects.filter(run=run).first())]
    return "\n".join(lines)


def recipient_run_text(run: AuditRun) -> str:
    """What a requester may read of a run: the verdict and each check's coarse value (audits/recipient.py)."""
    checks = [recipient_check_view(check) for check in run.checks.all()]
    failed = [check.name for check in checks if check.passed is False and check.gating]
    lines = [
        verdict_line(run),
        *(["Failed: " + ", ".join(failed)] if failed else []),
        "",
        "Checks (values rounded to two decimals; exact diagnostics stay with stewards, approvers and auditors)",
        table(
            ("check", "category", "value", "threshold", "verdict"),
            [(c.name, c.category, _number(c.value), _number(c.threshold), c.verdict) for c in checks],
        ),
        "",
        "Positive controls",
        *[
            f"{control['family']}: " + ("caught" if control["caught"] else "NOT caught (inconclusive)")
            for control in (run.controls or [])
        ],
    ]
    return "\n".join(lines)


def verdict_line(run: AuditRun) -> str:
    if run.status == AuditStatus.FAILED and run.blocked:
        return f"Audit #{run.pk}: BLOCKED (failed, with blocking privacy checks)"
    return f"Audit #{run.pk}: {run.status.upper()}"


def blocking_reasons(checks: list[CheckResult]) -> list[str]:
    """One line per blocking check that failed: its value against its threshold and what it measures."""
    blocked = [check for check in checks if check.blocking and check.passed is False and check.gating]
    if not blocked:
        return []
    # Only here: the metrics package loads SciPy and scikit-learn (seconds), which a stored
    # result that passed never needs.
    from audits.metrics.base import CHECK_SPECS

    lines = ["Blocked by:"]
    for check in blocked:
        spec = CHECK_SPECS.get(check.name)
        interval = (
            f" (95% CI {_number(check.ci_low)}–{_number(check.ci_high)})"
            if check.ci_low is not None and check.ci_high is not None
            else ""
        )
        limit = "at most" if check.direction == "lower_is_better" else "at least"
        lines.append(
            f"  {check.name}: {_number(check.value)}{interval}, must be {limit} {_number(check.threshold)}"
            + (f" — {spec.description}" if spec else "")
        )
    return lines


def control_lines(run: AuditRun) -> list[str]:
    if not run.controls:
        return ["no positive control ran"]
    lines = []
    for control in run.controls:
        lines.append(
            f"{control['family']}: {control['n_planted']} verbatim training rows planted ({control['share']:.0%}) — "
            + ("caught by " + ", ".join(control["caught_by"]) if control["caught"] else "NOT caught (inconclusive)")
        )
        if not control["caught"] and control.get("explanation"):
            lines.append(f"  why: {control['explanation']}")
    return lines


def datasheet_text(sheet: Datasheet | None) -> str:
    if sheet is None:
        return "not signed"
    return fields(
        [
            ("path", version_storage().location(sheet.storage_key)),
            ("sha256", sheet.sha256),
            ("signer", sheet.signer),
            ("signed at", sheet.signed_at),
        ]
    )


def _number(value: float | None) -> str:
    return cell(None if value is None else float(f"{value:.4g}"))


def _existing_file(name: str, *, option: str) -> Path:
    path = Path(name)
    if not path.is_file():
        raise CliError(
            f"No such file: {path} (given with {option}).",
            code="not_found",
            extra={"path": str(path), "option": option},
        )
    return path


def _check_seed(seed: int | None) -> None:
    if seed is not None and not 0 <= seed < 2**63:
        raise CliError(f"--seed must be between 0 and 2**63 - 1; got {seed}.", extra={"option": "--seed"})


def _reasons(values: list[str]) -> dict[str, str]:
    """``["tvd_1way=why", ...]`` as ``{"tvd_1way": "why"}``; a value without ``=`` is a user mistake."""
    reasons: dict[str, str] = {}
    for value in values:
        name, sep, text = value.partition("=")
        if not sep or not name.strip():
            raise CliError(
                f"--reason {value!r}: write CHECK=REASON, naming the failed check (see `audit show`).",
                code="validation_error",
                extra={"field": "reason"},
            )
        if name.strip() in reasons:
            raise CliError(
                f"--reason names {name.strip()!r} twice.", code="validation_error", extra={"field": "reason"}
            )
        reasons[name.strip()] = text
    return reasons
