"""`synthgate request create|outlook|submit|list|show|approve|reject|withdraw`: data requests and decisions."""

from __future__ import annotations

from typing import Any

from django.contrib.auth.models import User
from django.core.management.base import CommandParser
from django.db.models import Q

from core.amounts import amount_text
from core.cli import CliError, SynthgateCommand, parse_key_values
from core.cli_format import fields, table
from governance.cli_format import REQUEST_COLUMNS, approval_data, audit_event_data, audit_event_table, request_data
from governance.models import AuditEvent, DataRequest, Decision, RecipientKind, RequestState
from governance.selectors import request_get, request_list
from governance.services import (
    access_request_approve,
    access_request_create,
    access_request_outlook,
    access_request_reject,
    access_request_submit,
    access_request_withdraw,
)

REBALANCE_HELP = "COLUMN=VALUE:SHARE[,VALUE:SHARE] target shares of the label column, e.g. income=>50K:0.5"


class Command(SynthgateCommand):
    help = "File, decide and inspect data requests."
    examples = (
        "synthgate request create --dataset adult --purpose external-research "
        "--epsilon 1 --delta 1e-5 --rows 10000 --as alice",
        "synthgate request list",
        "synthgate request show 12",
        'synthgate request approve 12 --reason "fits the purpose" --as bob',
        'synthgate request reject 12 --reason "ε too high for this purpose" --as bob',
        "synthgate request withdraw 12 --as alice",
        "synthgate request submit 12 --as alice",
    )

    def add_arguments(self, parser: CommandParser) -> None:
        actions = self.add_subcommands(parser)
        create = self.add_subcommand(actions, "create", "file a request (submitted unless --draft)")
        create.add_argument("--dataset", required=True, metavar="NAME")
        create.add_argument("--purpose", required=True, metavar="NAME")
        create.add_argument(
            "--epsilon",
            required=True,
            metavar="E",
            help="ε for this release (at most the purpose's maximum)",
        )
        create.add_argument("--delta", required=True, metavar="D", help="δ, below 1, e.g. 1e-5")
        create.add_argument("--rows", required=True, metavar="N", help="how many synthetic rows to generate")
        create.add_argument(
            "--generator",
            default="mst",
            metavar="{mst,dp-tvae,copula}",
            help="mst (default, DP), dp-tvae (DP) or copula (NOT private; only where the purpose allows)",
        )
        create.add_argument("--param", action="append", metavar="KEY=VALUE", help="generator parameter; repeatable")
        create.add_argument("--rebalance", metavar="SPEC", help=REBALANCE_HELP)
        create.add_argument(
            "--recipient-kind",
            choices=RecipientKind.values,
            default=RecipientKind.INTERNAL,
            help="who receives the data (the purpose lists the kinds it allows)",
        )
        create.add_argument("--recipient", default="", help="the receiving person or organisation")
        create.add_argument("--justification", default="", help="why the data is needed, for the approvers")
        create.add_argument("--seed", type=int, help="fix the seed (only when reproducibility is required)")
        create.add_argument(
            "--output-format",
            default="csv",
            metavar="{csv,parquet}",
            help="the synthetic table's stored and downloaded form: csv (default, canonical CSV) or parquet",
        )
        create.add_argument("--draft", action="store_true", help="keep it as a draft; submit later")
        outlook = self.add_subcommand(
            actions, "outlook", "predict the audit of these request fields before filing (nothing is spent)"
        )
        for flag, metavar in (("--dataset", "NAME"), ("--purpose", "NAME"), ("--epsilon", "E"), ("--delta", "D")):
            outlook.add_argument(flag, required=True, metavar=metavar)
        outlook.add_argument("--rows", required=True, metavar="N")
        outlook.add_argument("--generator", default="mst")
        outlook.add_argument("--param", action="append", metavar="KEY=VALUE", help="generator parameter; repeatable")
        for name, help_text in (("submit", "submit a draft"), ("show", "one request, its approvals and history")):
            self.add_subcommand(actions, name, help_text).add_argument("request_id", type=int, metavar="ID")
        listing = self.add_subcommand(actions, "list", "requests you may see, newest first")
        listing.add_argument("--state", choices=RequestState.values, help="only requests in this state")
        approve = self.add_subcommand(actions, "approve", "approve (the last required approval reserves budget)")
        approve.add_argument("request_id", type=int, metavar="ID")
        approve.add_argument("--reason", default="")
        reject = self.add_subcommand(actions, "reject", "reject, with a reason")
        reject.add_argument("request_id", type=int, metavar="ID")
        reject.add_argument("--reason", required=True)
        withdraw = self.add_subcommand(actions, "withdraw", "withdraw your request (releases any reservation)")
        withdraw.add_argument("request_id", type=int, metavar="ID")
        withdraw.add_argument("--reason", default="")

    def handle_create(self, actor: User, options: dict[str, Any]) -> None:
        request = access_request_create(
            actor=actor,
            **_filing_fields(options),
            rebalance=parse_rebalance(options["rebalance"]),
            recipient_kind=options["recipient_kind"],
            recipient=options["recipient"],
            justification=options["justification"],
            seed=options["seed"],
            output_format=options["output_format"],
            submit=not options["draft"],
        )
        self.show_request(actor, request.pk, headline=f"Request #{request.pk} filed ({request.state}).")

    def handle_outlook(self, actor: User, options: dict[str, Any]) -> None:
        outlook = access_request_outlook(actor=actor, **_filing_fields(options))
        self.emit(outlook, lambda: outlook_text(outlook))

    def handle_submit(self, actor: User, options: dict[str, Any]) -> None:
        request = access_request_submit(actor=actor, request_id=options["request_id"])
        self.show_request(actor, request.pk, headline=f"Request #{request.pk} submitted.")

    def handle_approve(self, actor: User, options: dict[str, Any]) -> None:
        request = access_request_approve(actor=actor, request_id=options["request_id"], reason=options["reason"])
        approvals = request.approvals.filter(decision=Decision.APPROVE).count()
        if request.state == RequestState.APPROVED:
            headline = (
                f"Request #{request.pk} approved; reserved ε={amount_text(request.epsilon)}, "
                f"δ={amount_text(request.delta)} of dataset {request.dataset.name}."
            )
        else:
            headline = (
                f"Approval recorded for request #{request.pk} ({approvals} of "
                f"{request.purpose.approvals_required} required); it stays {request.state}."
            )
        self.show_request(actor, request.pk, headline=headline)

    def handle_reject(self, actor: User, options: dict[str, Any]) -> None:
        request = access_request_reject(actor=actor, request_id=options["request_id"], reason=options["reason"])
        self.show_request(actor, request.pk, headline=f"Request #{request.pk} rejected.")

    def handle_withdraw(self, actor: User, options: dict[str, Any]) -> None:
        request = access_request_withdraw(actor=actor, request_id=options["request_id"], reason=options["reason"])
        self.show_request(actor, request.pk, headline=f"Request #{request.pk} withdrawn.")

    def handle_list(self, actor: User, options: dict[str, Any]) -> None:
        requests = request_list(user=actor)
        if options["state"]:
            requests = requests.filter(state=options["state"])
        data = [request_data(request) for request in requests]
        self.emit(data, lambda: table(REQUEST_COLUMNS, [[row[column] for column in REQUEST_COLUMNS] for row in data]))

    def handle_show(self, actor: User, options: dict[str, Any]) -> None:
        self.show_request(actor, options["request_id"])

    def show_request(self, actor: User, request_id: int, *, headline: str = "") -> None:
        request = request_get(user=actor, request_id=request_id)
        approvals = [approval_data(approval) for approval in request.approvals.all()]
        events = request_events(request)
        data = {
            **request_data(request),
            "approvals": approvals,
            "events": [audit_event_data(event) for event in events],
        }
        self.emit(
            data,
            lambda: "\n".join(
                [
                    *([headline, ""] if headline else []),
                    fields([(key.replace("_", " "), value) for key, value in request_data(request).items()]),
                    "",
                    f"Approvals ({len(approvals)} of {request.purpose.approvals_required} required)",
                    table(("approver", "decision", "reason", "created_at"), [list(row.values()) for row in approvals]),
                    "",
                    "Audit events",
                    audit_event_table(events),
                ]
            ),
        )


def request_events(request: DataRequest) -> list[AuditEvent]:
    """The audit events about a request: its transitions, its approvals and its ledger entries.

    The caller has already checked the user may see the request. (A candidate for
    governance.selectors, next to ``request_get``.)
    """
    return list(
        AuditEvent.objects.filter(
            Q(object_type="datarequest", object_id=str(request.pk))
            | Q(object_type__in=["approval", "budgetentry"], after__request=request.pk)
        ).order_by("id")
    )


def parse_rebalance(spec: str | None) -> dict[str, Any] | None:
    """``income=>50K:0.5,<=50K:0.5`` → ``{"column": "income", "shares": {">50K": "0.5", "<=50K": "0.5"}}``.

    The service checks the column is the label and the shares are numbers in (0, 1).
    """
    if not spec:
        return None
    column, _, pairs = spec.partition("=")
    shares = {}
    for pair in pairs.split(","):
        value, _, share = pair.rpartition(":")  # a value may itself contain ':'; the share never does
        if not value or not share or not column.strip():
            raise CliError(
                f"--rebalance takes COLUMN=VALUE:SHARE[,VALUE:SHARE]; got {spec!r}.", extra={"option": "--rebalance"}
            )
        shares[value] = share
    return {"column": column.strip(), "shares": shares}


def outlook_text(outlook: dict[str, Any]) -> str:
    """The predicted audit as a short table and the warnings."""
    membership = outlook["membership"]
    private = outlook["n_train"] is None  # a requester's view: the number of real rows is private
    source = (
        "the private number of source rows"
        if private
        else f"{outlook['n_train']:,} training rows, holdout {outlook['n_holdout']:,}"
    )
    places = 2 if private else 3
    lines = [
        f"Predicted audit of a clean release: {outlook['predicted_verdict']} "
        f"({outlook['n_rows']:,} synthetic rows from {source})",
        "",
    ]
    rows = [
        [
            check,
            f"{item['predicted_value']:.{places}f}",
            "-" if item["purpose_threshold"] is None else f"{item['purpose_threshold']:g}",
            "-" if item["calibrated_limit"] is None else f"{item['calibrated_limit']:.{places}f}",
            {True: "pass", False: "FAIL", None: "-"}[item["predicted_pass"]],
        ]
        for check, item in outlook["fidelity"].items()
    ]
    if rows:
        lines.append(table(["check", "expected", "purpose threshold", "audit limit", "predicted"], rows))
    if outlook["prediction_error"]:
        lines.append(f"fidelity: {outlook['prediction_error']}")
    lines.append(f"membership control: {membership['explanation']}")
    lines += [
        f"bias ({column}): disparate impact is judged when its unprivileged group has about "
        f"{item['min_favourable_rows']} favourable training rows or more; below, 'not decidable'"
        for column, item in outlook.get("bias", {}).items()
    ]
    lines += [f"warning: {warning}" for warning in outlook["warnings"]]
    lines += [f"assumed: {assumption}" for assumption in outlook["assumptions"]]
    return "\n".join(lines)


def _filing_fields(options: dict[str, Any]) -> dict[str, Any]:
    """What `request create` and `request outlook` both send: the dataset, purpose, budget, rows and generator."""
    return {
        "dataset_name": options["dataset"],
        "purpose_name": options["purpose"],
        "epsilon": options["epsilon"],
        "delta": options["delta"],
        "n_rows": options["rows"],
        "generator": options["generator"],
        "generator_params": parse_key_values(options["param"], option="--param"),
    }
