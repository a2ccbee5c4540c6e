"""`synthgate request create|submit|list|show|approve|reject|withdraw`: data requests and decisions."""

from __future__ import annotations

from typing import Any

from django.contrib.auth.models import User
from django.db.models import Q

from core.cli import CliError, SynthgateCommand, parse_key_values
from core.cli_format import fields, table
from governance.cli_format import REQUEST_COLUMNS, approval_data, audit_event_data, audit_event_table, request_data
from governance.models import AuditEvent, DataRequest, Decision, RecipientKind, RequestState
from governance.selectors import request_get, request_list
from governance.services import (
    access_request_approve,
    access_request_create,
    access_request_reject,
    access_request_submit,
    access_request_withdraw,
)

REBALANCE_HELP = "COLUMN=VALUE:SHARE[,VALUE:SHARE] target shares of the label column, e.g. income=>50K:0.5"


class Command(SynthgateCommand):
    help = "File, decide and inspect data requests."

    def add_arguments(self, parser: Any) -> None:
        actions = self.add_subcommands(parser)
        create = self.add_subcommand(actions, "create", "file a request (submitted unless --draft)")
        create.add_argument("--dataset", required=True, metavar="NAME")
        create.add_argument("--purpose", required=True, metavar="NAME")
        create.add_argument("--epsilon", required=True, metavar="E")
        create.add_argument("--delta", required=True, metavar="D")
        create.add_argument("--rows", required=True, metavar="N")
        create.add_argument("--generator", default="mst")
        create.add_argument("--param", action="append", metavar="KEY=VALUE", help="generator parameter; repeatable")
        create.add_argument("--rebalance", metavar="SPEC", help=REBALANCE_HELP)
        create.add_argument("--recipient-kind", choices=RecipientKind.values, default=RecipientKind.INTERNAL)
        create.add_argument("--recipient", default="")
        create.add_argument("--justification", default="")
        create.add_argument("--seed", type=int, help="fix the seed (only when reproducibility is required)")
        create.add_argument("--draft", action="store_true", help="keep it as a draft; submit later")
        for name, help_text in (("submit", "submit a draft"), ("show", "one request, its approvals and history")):
            self.add_subcommand(actions, name, help_text).add_argument("request_id", type=int, metavar="ID")
        listing = self.add_subcommand(actions, "list", "requests you may see, newest first")
        listing.add_argument("--state", choices=RequestState.values)
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
            dataset_name=options["dataset"],
            purpose_name=options["purpose"],
            epsilon=options["epsilon"],
            delta=options["delta"],
            n_rows=options["rows"],
            generator=options["generator"],
            generator_params=parse_key_values(options["param"], option="--param"),
            rebalance=parse_rebalance(options["rebalance"]),
            recipient_kind=options["recipient_kind"],
            recipient=options["recipient"],
            justification=options["justification"],
            seed=options["seed"],
            submit=not options["draft"],
        )
        self.show_request(actor, request.pk, headline=f"Request #{request.pk} filed ({request.state}).")

    def handle_submit(self, actor: User, options: dict[str, Any]) -> None:
        request = access_request_submit(actor=actor, request_id=options["request_id"])
        self.show_request(actor, request.pk, headline=f"Request #{request.pk} submitted.")

    def handle_approve(self, actor: User, options: dict[str, Any]) -> None:
        request = access_request_approve(actor=actor, request_id=options["request_id"], reason=options["reason"])
        approvals = request.approvals.filter(decision=Decision.APPROVE).count()
        if request.state == RequestState.APPROVED:
            headline = (
                f"Request #{request.pk} approved; reserved ε={request.epsilon.normalize():f}, "
                f"δ={request.delta.normalize():f} of dataset {request.dataset.name}."
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
                    table(("approver", "decision", "reason", "created_at"), [row.values() for row in approvals]),
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
