from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from audits.models import AuditRun, CheckResult
from audits.recipient import reads_real_diagnostics, recipient_check_view, recipient_control
from audits.selectors import audit_run_get, audit_run_list
from core.auth import signed_in_user
from dashboard.charts import bias_rows, check_chart
from dashboard.selectors import audit_run_datasheet
from dashboard.views.common import dashboard_view, paginate

CATEGORY_ORDER = ("fidelity", "utility", "reidentification", "membership", "bias", "drift")


@dashboard_view
def audit_list(request: HttpRequest) -> HttpResponse:
    runs = (
        audit_run_list(user=signed_in_user(request)).select_related("request__requester").order_by("-created_at", "-id")
    )
    status = request.GET.get("status", "")
    if status:
        runs = runs.filter(status=status)
    return render(request, "dashboard/audits/list.html", {"page": paginate(request, runs), "status": status})


@dashboard_view
def audit_detail(request: HttpRequest, run_id: int) -> HttpResponse:
    run = audit_run_get(user=signed_in_user(request), run_id=run_id)
    checks = sorted(run.checks.all(), key=lambda c: (_category_rank(c.category), c.id))
    if not reads_real_diagnostics(signed_in_user(request)):
        return _recipient_detail(request, run, checks)
    groups: dict[str, list] = {}
    for check in checks:
        groups.setdefault(check.category, []).append({"check": check, "chart": check_chart(check)})
    return render(
        request,
        "dashboard/audits/detail.html",
        {
            "run": run,
            "groups": groups,
            "bias": bias_rows(checks),
            "controls": run.controls or [],
            "rebalance": (run.version.lineage or {}).get("rebalance"),
            "acceptances": run.risk_acceptances.select_related("approver"),
            "datasheet": audit_run_datasheet(run),
        },
    )


def _recipient_detail(request: HttpRequest, run: AuditRun, checks: list[CheckResult]) -> HttpResponse:
    """The run as a requester may read it: coarse values and verdicts, no charts, details or real rates."""
    groups: dict[str, list] = {}
    for check in checks:
        groups.setdefault(check.category, []).append({"check": recipient_check_view(check), "chart": None})
    return render(
        request,
        "dashboard/audits/detail.html",
        {
            "run": run,
            "recipient_view": True,
            "groups": groups,
            "bias": [],
            "controls": [recipient_control(control) for control in run.controls or []],
            "rebalance": None,
            "acceptances": run.risk_acceptances.select_related("approver"),
            "datasheet": None,
        },
    )


def _category_rank(category: str) -> int:
    return CATEGORY_ORDER.index(category) if category in CATEGORY_ORDER else len(CATEGORY_ORDER)
