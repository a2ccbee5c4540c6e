"""The compliance page: the reports service's report for a period and filters, shown as a page,
with links that render it (signed PDF, CSV or JSON) through the same service; every rendered
report is stored, recorded and logged by that service."""

from __future__ import annotations

from datetime import date
from typing import Any
from urllib.parse import urlencode

from django.http import HttpRequest, HttpResponse, QueryDict
from django.shortcuts import render
from django.utils import timezone

from audits.compliance import compliance_report_build, compliance_report_render
from audits.compliance.charts import compliance_chart_images
from core.auth import signed_in_user
from core.errors import ApplicationError, PermissionDeniedError
from dashboard.forms import ComplianceFilterForm
from dashboard.views.common import add_service_error, dashboard_view
from governance.models import Role
from governance.permissions import user_has_role
from governance.selectors import dataset_list, purpose_list

READERS = (Role.STEWARD, Role.AUDITOR)
# The service names fields as its API does; the form names them after what they mean.
REPORT_FIELDS = {"to": "end", "from": "start"}
# Chart texts in pixels of a 640-px drawing that is never shown narrower than drawn (dashboard.css):
# a phone scrolls the chart sideways instead of shrinking its labels below 11 px.
CHART_FONT = 11


@dashboard_view
def compliance(request: HttpRequest) -> HttpResponse:
    if not user_has_role(signed_in_user(request), *READERS):
        raise PermissionDeniedError("Only stewards and auditors can produce compliance reports.")
    form = _form(request)
    report, status = None, 200
    if form.is_valid():
        try:
            report = compliance_report_build(actor=signed_in_user(request), **_scope(form.cleaned_data))
        except ApplicationError as error:
            add_service_error(form, error, fields=REPORT_FIELDS)
            status = error.status
    else:
        status = 400
    return render(
        request,
        "dashboard/compliance.html",
        {
            "form": form,
            "report": report,
            "query": _query(form) if report else "",
            "charts": compliance_chart_images(report, font_size=CHART_FONT) if report else [],
        },
        status=status,
    )


@dashboard_view
def compliance_download(request: HttpRequest, format: str) -> HttpResponse:
    if not user_has_role(signed_in_user(request), *READERS):
        raise PermissionDeniedError("Only stewards and auditors can produce compliance reports.")
    form = _form(request)
    if not form.is_valid():
        return render(request, "dashboard/compliance.html", {"form": form, "report": None}, status=400)
    rendered = compliance_report_render(actor=signed_in_user(request), format=format, **_scope(form.cleaned_data))
    response = HttpResponse(rendered.content, content_type=rendered.content_type)
    response["Content-Disposition"] = f'attachment; filename="{rendered.filename}"'
    response["X-Synthgate-Report-SHA256"] = rendered.sha256
    return response


def _form(request: HttpRequest) -> ComplianceFilterForm:
    today = timezone.now().date()
    data: QueryDict | dict[str, str] | None = request.GET.copy() if request.GET else None
    if isinstance(data, QueryDict):
        data.setdefault("start", today.replace(day=1).isoformat())
        data.setdefault("end", today.isoformat())
    else:
        data = {"start": today.replace(day=1).isoformat(), "end": today.isoformat()}
    return ComplianceFilterForm(
        data,
        datasets=list(dataset_list(user=signed_in_user(request)).values_list("name", flat=True)),
        purposes=list(purpose_list(user=signed_in_user(request)).values_list("name", flat=True)),
    )


def _scope(data: dict[str, Any]) -> dict[str, Any]:
    return {
        "date_from": data["start"],
        "date_to": data["end"],
        "dataset": data.get("dataset") or None,
        "purpose": data.get("purpose") or None,
    }


def _query(form: ComplianceFilterForm) -> str:
    data = form.cleaned_data
    return urlencode(
        {key: value.isoformat() if isinstance(value, date) else value for key, value in data.items() if value}
    )
