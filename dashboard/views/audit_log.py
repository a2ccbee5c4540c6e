"""The audit log for stewards and auditors: filter by object, actor, action and period; export CSV.

Reads go through ``audit_event_search`` (which refuses everyone else); the export is the same
filtered rows, with spreadsheet-formula cells defused as in the compliance CSV.
"""

from __future__ import annotations

import csv
import io
import json
from datetime import UTC, datetime, time, timedelta
from typing import Any

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from audits.compliance.render import csv_cell
from core.auth import signed_in_user
from core.times import time_iso
from dashboard.forms import AuditLogFilterForm
from dashboard.views.common import dashboard_view, paginate, query_without_page
from governance.models import AuditEvent
from governance.selectors import audit_event_list, audit_event_search

EXPORT_COLUMNS = (
    "id",
    "created_at",
    "actor",
    "channel",
    "action",
    "object_type",
    "object_id",
    "before",
    "after",
    "hash",
)


@dashboard_view
def audit_log(request: HttpRequest) -> HttpResponse:
    form, events = _filtered(request)
    return render(
        request,
        "dashboard/audit_log.html",
        {"form": form, "page": paginate(request, events), "query": query_without_page(request)},
        status=400 if form.is_bound and not form.is_valid() else 200,
    )


@dashboard_view
def audit_log_export(request: HttpRequest) -> HttpResponse:
    form, events = _filtered(request)
    if form.is_bound and not form.is_valid():
        return render(request, "dashboard/audit_log.html", {"form": form, "page": None}, status=400)
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(EXPORT_COLUMNS)
    for event in events.iterator():
        writer.writerow([csv_cell(value) for value in _row(event)])
    response = HttpResponse(buffer.getvalue().encode("utf-8"), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = 'attachment; filename="synthgate-audit-log.csv"'
    return response


def _filtered(request: HttpRequest) -> tuple[AuditLogFilterForm, Any]:
    everything = audit_event_list(user=signed_in_user(request))  # refuses anyone but stewards and auditors
    form = AuditLogFilterForm(
        request.GET or None,
        object_types=sorted(set(everything.values_list("object_type", flat=True))),
        actions=sorted(set(everything.values_list("action", flat=True))),
    )
    if not form.is_bound:
        return form, everything.order_by("-id")
    if not form.is_valid():
        return form, everything.none()
    data = form.cleaned_data
    return form, audit_event_search(
        user=signed_in_user(request),
        object_type=data["object_type"],
        object_id=data["object_id"].strip(),
        actor=data["actor"].strip(),
        action=data["action"],
        start=_day_start(data["start"]),
        end=_day_start(data["end"] + timedelta(days=1)) if data["end"] else None,
    )


def _day_start(day: Any) -> datetime | None:
    return None if day is None else datetime.combine(day, time.min, tzinfo=UTC)


def _row(event: AuditEvent) -> list[Any]:
    return [
        event.pk,
        time_iso(event.created_at),
        event.actor_name,
        event.channel,
        event.action,
        event.object_type,
        event.object_id,
        _json(event.before),
        _json(event.after),
        event.hash,
    ]


def _json(value: Any) -> str:
    return "" if value is None else json.dumps(value, ensure_ascii=False, sort_keys=True)
