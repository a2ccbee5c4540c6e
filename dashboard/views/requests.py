from __future__ import annotations

import secrets
from collections.abc import Callable
from typing import Any

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.http.response import HttpResponseBase
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from audits.models import AuditRun, AuditStatus
from audits.services import releases, risk_accept
from core.amounts import amount_text
from core.auth import signed_in_user
from core.errors import ApplicationError, PermissionDeniedError
from dashboard.forms import ReasonForm, RequestCreateForm, RequestFilterForm, RiskAcceptForm
from dashboard.selectors import (
    RequestRelated,
    dataset_rows,
    request_page_list,
    request_related,
    request_timeline,
)
from dashboard.views.common import add_service_error, dashboard_view, paginate, query_without_page
from governance import services
from governance.models import DataRequest, Decision, RequestState, Role
from governance.permissions import user_has_role
from governance.selectors import budget_balance, purpose_list, request_get
from synth_engine import background

# Service fields the create form names differently.
CREATE_FIELDS = {"rebalance": "rebalance_column", "generator_params": "generator"}


@dashboard_view
def request_list(request: HttpRequest) -> HttpResponse:
    filters = RequestFilterForm(request.GET or None)
    criteria = filters.cleaned_data if filters.is_valid() else {}
    queryset = request_page_list(
        user=signed_in_user(request),
        state=criteria.get("state", ""),
        dataset=criteria.get("dataset", ""),
        mine=criteria.get("mine", False),
    )
    return render(
        request,
        "dashboard/requests/list.html",
        {
            "filters": filters,
            "page": paginate(request, queryset),
            "query": query_without_page(request),
            "can_create": user_has_role(signed_in_user(request), Role.REQUESTER),
        },
    )


@dashboard_view
def request_create(request: HttpRequest) -> HttpResponse:
    if not user_has_role(signed_in_user(request), Role.REQUESTER):
        raise PermissionDeniedError("Only a requester can file data requests.")
    rows = dataset_rows(user=signed_in_user(request))
    purposes = list(purpose_list(user=signed_in_user(request)))
    form = RequestCreateForm(
        request.POST or None,
        initial={"dataset": request.GET.get("dataset", ""), "form_token": secrets.token_hex(16)},
        **_create_choices(rows, purposes),
    )
    status, outlook = 200, None
    if request.method == "POST":
        if form.is_valid() and "preview" in request.POST:
            try:
                outlook = _outlook(request, form.cleaned_data)
            except ApplicationError as error:
                add_service_error(form, error, fields=CREATE_FIELDS)
                status = error.status
        elif form.is_valid():
            try:
                created = _create(request, form.cleaned_data)
            except ApplicationError as error:
                add_service_error(form, error, fields=CREATE_FIELDS)
                status = error.status
            else:
                done = "saved as a draft" if created.state == RequestState.DRAFT else "submitted"
                messages.success(request, f"Request #{created.pk} {done}.")
                return redirect("dashboard:request-detail", request_id=created.pk)
        else:
            status = 400
            _field_mistakes(form)
    return render(
        request,
        "dashboard/requests/create.html",
        {"form": form, "budget_info": _budget_info(rows, purposes), "has_datasets": bool(rows), "outlook": outlook},
        status=status,
    )


def _field_mistakes(form: RequestCreateForm) -> None:
    """Every mistake the filing service finds, beside the form's own errors (all at once)."""
    data = form.data
    column, value, share = (data.get(name, "") for name in ("rebalance_column", "rebalance_value", "rebalance_share"))
    try:
        services.access_request_fields_check(
            dataset_name=data.get("dataset", ""),
            purpose_name=data.get("purpose", ""),
            epsilon=data.get("epsilon", ""),
            delta=data.get("delta", ""),
            n_rows=data.get("n_rows", ""),
            generator=data.get("generator", ""),
            rebalance={"column": column, "shares": {value: share}} if column and value and share else None,
            recipient_kind=data.get("recipient_kind", ""),
            recipient=data.get("recipient", ""),
            justification=data.get("justification", ""),
            output_format=data.get("output_format", "csv"),
        )
    except ApplicationError as error:
        add_service_error(form, error, fields=CREATE_FIELDS)


def _outlook(request: HttpRequest, data: dict[str, Any]) -> dict[str, Any]:
    """The predicted audit of these fields (the "Preview the audit" button; nothing is filed)."""
    return services.access_request_outlook(
        actor=signed_in_user(request),
        dataset_name=data["dataset"],
        purpose_name=data["purpose"],
        epsilon=data["epsilon"],
        delta=data["delta"],
        n_rows=data["n_rows"],
        generator=data["generator"],
    )


def _create_choices(rows: list, purposes: list) -> dict[str, Any]:
    # Imported here, not at the top: the generators bring torch and Opacus (seconds to load), and
    # every process that loads the URLconf (each CLI command that names a URL) would pay for it.
    from synth_engine.generators import GENERATORS

    labels = sorted(
        {
            c["name"]
            for row in rows
            if row.latest_source
            for c in row.latest_source.schema.get("columns", [])
            if c.get("role") == "label"
        }
    )
    return {
        "datasets": [(row.dataset.name, row.dataset.name) for row in rows if row.latest_source],
        "purposes": [
            (
                p.name,
                f"{p.name} (max ε {amount_text(p.max_epsilon)}, {p.approvals_required} "
                f"approver{'s' if p.approvals_required > 1 else ''})",
            )
            for p in purposes
        ],
        "generators": [
            (name, f"{name} ({'differentially private' if cls.is_private else 'NOT private: ε = ∞'})")
            for name, cls in GENERATORS.items()
        ],
        "label_columns": labels,
        "label_categories": sorted(
            {
                str(category)
                for row in rows
                if row.latest_source
                for c in row.latest_source.schema.get("columns", [])
                if c.get("role") == "label"
                for category in c.get("categories") or []
            }
        ),
    }


def _budget_info(rows: list, purposes: list) -> dict[str, Any]:
    """What the form's script needs to show the remaining budget as the requester types."""
    return {
        "datasets": {
            row.dataset.name: {
                "epsilon_cap": amount_text(row.balance.epsilon_cap),
                "epsilon_remaining": amount_text(row.balance.epsilon_remaining),
                "delta_remaining": amount_text(row.balance.delta_remaining),
            }
            for row in rows
        },
        "purposes": {
            p.name: {"max_epsilon": amount_text(p.max_epsilon), "recipients": p.allowed_recipients} for p in purposes
        },
    }


def _create(request: HttpRequest, data: dict[str, Any]) -> DataRequest:
    return services.access_request_create(
        actor=signed_in_user(request),
        dataset_name=data["dataset"],
        purpose_name=data["purpose"],
        epsilon=data["epsilon"],
        delta=data["delta"],
        n_rows=data["n_rows"],
        generator=data["generator"],
        rebalance=data["rebalance"],
        recipient_kind=data["recipient_kind"],
        recipient=data["recipient"],
        justification=data["justification"],
        seed=data["seed"],
        output_format=data["output_format"],
        submit=not data["draft"],
        client_token=data["form_token"],
    )


@dashboard_view
def request_detail(request: HttpRequest, request_id: int) -> HttpResponse:
    return _request_page(request, request_get(user=signed_in_user(request), request_id=request_id))


def _request_page(
    request: HttpRequest,
    data_request: DataRequest,
    *,
    forms: dict[str, Any] | None = None,
    error: ApplicationError | None = None,
    status: int = 200,
) -> HttpResponse:
    related = request_related(request=data_request)
    forms = {
        "approve": ReasonForm(prefix="approve"),
        "reject": ReasonForm(prefix="reject"),
        "accept_risk": RiskAcceptForm(prefix="accept_risk", failed_checks=_failed_checks(related.latest_audit)),
        "withdraw": ReasonForm(prefix="withdraw"),
        **(forms or {}),
    }
    balance = budget_balance(dataset=data_request.dataset)
    return render(
        request,
        "dashboard/requests/detail.html",
        {
            "req": data_request,
            "related": related,
            "timeline": request_timeline(request=data_request, related=related, viewer=signed_in_user(request)),
            "can": _allowed_actions(request, data_request, related),
            "forms": forms,
            "action_error": error,
            "balance": balance,
            "unmet": _unmet(data_request),
        },
        status=status,
    )


def _unmet(data_request: DataRequest) -> list[str]:
    if data_request.state not in (RequestState.READY, RequestState.BLOCKED):
        return []
    return releases.release_conditions(request=data_request)


def _allowed_actions(request: HttpRequest, data_request: DataRequest, related: RequestRelated) -> dict[str, bool]:
    """Which buttons to show. The services decide again on every POST; this only hides what would be refused."""
    user = signed_in_user(request)
    own = data_request.requester_id == user.pk
    approver = user_has_role(user, Role.APPROVER) and not own
    releaser = user_has_role(user, Role.STEWARD, Role.APPROVER)
    decided = any(a.approver_id == user.pk for a in related.approvals)
    state = data_request.state
    audit = related.latest_audit
    return {
        "submit": own and state == RequestState.DRAFT,
        "withdraw": own and RequestState.WITHDRAWN in services.TRANSITIONS[state],
        "decide": approver and state == RequestState.SUBMITTED and not decided,
        "accept_risk": approver
        and state == RequestState.BLOCKED
        and audit is not None
        and audit.status == AuditStatus.FAILED,
        "generate": state == RequestState.APPROVED and (own or releaser),
        "release": releaser and state == RequestState.READY,
    }


def _action(
    name: str, perform: Callable[[HttpRequest, int, str], str], *, reason_form: str | None = None
) -> Callable[..., HttpResponseBase]:
    """A POST that calls one service; on refusal the request page shows why, next to the form."""

    @dashboard_view
    @require_POST
    def view(request: HttpRequest, request_id: int) -> HttpResponse:
        data_request = request_get(user=signed_in_user(request), request_id=request_id)
        form = ReasonForm(request.POST, prefix=reason_form) if reason_form else None
        reason = form.cleaned_data["reason"] if form is not None and form.is_valid() else ""
        try:
            outcome = perform(request, request_id, reason)
        except ApplicationError as error:
            data_request.refresh_from_db()
            if form is not None and reason_form and error.extra.get("field") in form.fields:
                add_service_error(form, error)  # e.g. a missing reason: shown at the reason field
                return _request_page(request, data_request, forms={reason_form: form}, status=error.status)
            return _request_page(request, data_request, error=error, status=error.status)
        messages.success(request, outcome)
        if name == "generate":
            job = data_request.jobs.latest("id")  # the job the service just queued
            return redirect("dashboard:job-detail", job_id=job.pk)
        if name == "release":
            return redirect("dashboard:release-detail", release_id=data_request.release.pk)
        return redirect("dashboard:request-detail", request_id=request_id)

    view.__name__ = f"request_{name}"
    return view


def _approve(request: HttpRequest, request_id: int, reason: str) -> str:
    updated = services.access_request_approve(actor=signed_in_user(request), request_id=request_id, reason=reason)
    if updated.state == RequestState.APPROVED:
        return f"You approved request #{request_id}; it is approved and its budget is reserved."
    missing = updated.purpose.approvals_required - updated.approvals.filter(decision=Decision.APPROVE).count()
    return f"You approved request #{request_id}; {missing} more approval{'s' if missing > 1 else ''} needed."


def _reject(request: HttpRequest, request_id: int, reason: str) -> str:
    services.access_request_reject(actor=signed_in_user(request), request_id=request_id, reason=reason)
    return f"You rejected request #{request_id}."


def _submit(request: HttpRequest, request_id: int, reason: str) -> str:
    services.access_request_submit(actor=signed_in_user(request), request_id=request_id)
    return f"Request #{request_id} submitted for approval."


def _withdraw(request: HttpRequest, request_id: int, reason: str) -> str:
    services.access_request_withdraw(actor=signed_in_user(request), request_id=request_id, reason=reason)
    return f"Request #{request_id} withdrawn; any reserved budget was released."


def _failed_checks(run: AuditRun | None) -> list[str]:
    return list(run.failed_checks) if run is not None and run.status == AuditStatus.FAILED else []


@dashboard_view
@require_POST
def request_accept_risk(request: HttpRequest, request_id: int) -> HttpResponse:
    """Accept each failed check with its own reason; a refused reason is shown at its check."""
    data_request = request_get(user=signed_in_user(request), request_id=request_id)
    run = data_request.audit_runs.order_by("-created_at", "-id").first()
    form = RiskAcceptForm(request.POST, prefix="accept_risk", failed_checks=_failed_checks(run))
    form.is_valid()
    reasons = {name: form.cleaned_data.get(name, "") for name in form.fields}
    try:
        acceptance = risk_accept(actor=signed_in_user(request), request_id=request_id, reasons=reasons)
    except ApplicationError as error:
        data_request.refresh_from_db()
        if error.extra.get("field") != "reasons":
            return _request_page(request, data_request, error=error, status=error.status)
        check = error.extra.get("check")
        form.add_error(check if check in form.fields else None, error.message)
        return _request_page(request, data_request, forms={"accept_risk": form}, status=error.status)
    messages.success(
        request,
        f"You accepted the risk of audit #{acceptance.run_id} (failed: "
        f"{', '.join(acceptance.failed_checks) or 'none'}); the request is ready to release.",
    )
    return redirect("dashboard:request-detail", request_id=request_id)


def _generate(request: HttpRequest, request_id: int, reason: str) -> str:
    job = background.job_start(
        actor=signed_in_user(request),
        request_id=request_id,
        background=background.runs_in_background(),
        channel_name="web",
    )
    return f"Generation job #{job.pk} started."


def _release(request: HttpRequest, request_id: int, reason: str) -> str:
    release = releases.release_create(actor=signed_in_user(request), request_id=request_id)
    return f"Released as release #{release.pk}, downloadable until {release.expires_at:%Y-%m-%d}."


request_approve = _action("approve", _approve, reason_form="approve")
request_reject = _action("reject", _reject, reason_form="reject")
request_submit = _action("submit", _submit)
request_withdraw = _action("withdraw", _withdraw, reason_form="withdraw")
request_generate = _action("generate", _generate)
request_release = _action("release", _release)
