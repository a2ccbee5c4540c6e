"""The compliance page: who asked for what, who approved, what was spent, released and downloaded
in a period. Rows come from the dashboard's selectors; CSV and JSON downloads carry the same rows."""

from __future__ import annotations

import csv
import io
import json
from datetime import datetime, time, timedelta
from typing import Any

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.utils import timezone

from dashboard.forms import ComplianceFilterForm
from dashboard.selectors import ComplianceFilters, compliance_requests, compliance_summary
from dashboard.views.common import dashboard_view, paginate, query_without_page
from governance.selectors import dataset_list, purpose_list

COLUMNS = ("request", "created_at", "dataset", "purpose", "requester", "state", "epsilon", "delta", "n_rows",
           "generator", "recipient", "approvals", "risk_acceptances", "release", "released_at", "revoked_at")


@dashboard_view
def compliance(request: HttpRequest) -> HttpResponse:
    form, filters = _filters(request)
    requests = compliance_requests(user=request.user, filters=filters)
    export = request.GET.get("format", "")
    if export == "csv":
        return _csv(requests)
    if export == "json":
        return JsonResponse({"filters": _filters_json(filters), "summary": _jsonable(
            compliance_summary(user=request.user, filters=filters)), "requests": [_row(r) for r in requests]})
    return render(request, "dashboard/compliance.html", {
        "form": form, "summary": compliance_summary(user=request.user, filters=filters),
        "page": paginate(request, requests), "query": query_without_page(request)})


def _filters(request: HttpRequest) -> tuple[ComplianceFilterForm, ComplianceFilters]:
    form = ComplianceFilterForm(request.GET or None,
                                datasets=list(dataset_list(user=request.user).values_list("name", flat=True)),
                                purposes=list(purpose_list(user=request.user).values_list("name", flat=True)))
    if not form.is_valid():
        return form, ComplianceFilters()
    data = form.cleaned_data
    zone = timezone.get_current_timezone()
    start = datetime.combine(data["start"], time.min, tzinfo=zone) if data.get("start") else None
    end = datetime.combine(data["end"] + timedelta(days=1), time.min, tzinfo=zone) if data.get("end") else None
    return form, ComplianceFilters(start=start, end=end, dataset=data.get("dataset") or "",
                                   purpose=data.get("purpose") or "")


def _row(request: Any) -> dict[str, Any]:
    release = getattr(request, "release", None) if hasattr(request, "release") else None
    return {
        "request": request.pk, "created_at": request.created_at.isoformat(), "dataset": request.dataset.name,
        "purpose": request.purpose.name, "requester": request.requester.username, "state": request.state,
        "epsilon": _plain(request.epsilon), "delta": _plain(request.delta), "n_rows": request.n_rows,
        "generator": request.generator, "recipient": f"{request.recipient} ({request.recipient_kind})",
        "approvals": request.n_approvals, "risk_acceptances": request.n_risk_acceptances,
        "release": release.pk if release else None,
        "released_at": release.created_at.isoformat() if release else None,
        "revoked_at": release.revoked_at.isoformat() if release and release.revoked_at else None,
    }


def _csv(requests: Any) -> HttpResponse:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=COLUMNS)
    writer.writeheader()
    for request in requests:
        writer.writerow(_row(request))
    response = HttpResponse(buffer.getvalue(), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = 'attachment; filename="synthgate-compliance.csv"'
    return response


def _plain(value: Any) -> str:
    return format(value.normalize(), "f")


def _filters_json(filters: ComplianceFilters) -> dict[str, Any]:
    return {"start": filters.start.isoformat() if filters.start else None,
            "end": filters.end.isoformat() if filters.end else None,
            "dataset": filters.dataset or None, "purpose": filters.purpose or None}


def _jsonable(summary: dict[str, Any]) -> dict[str, Any]:
    return json.loads(json.dumps({**summary, "spent": [
        {"dataset": name, "epsilon": _plain(eps), "delta": _plain(delta)} for name, eps, delta in summary["spent"]],
        "by_state": dict(summary["by_state"])}))
