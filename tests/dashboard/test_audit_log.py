"""The audit-log page: stewards and auditors filter the log and export what they see."""

from __future__ import annotations

import csv
import io

import pytest
from django.utils import timezone

from governance.models import AuditEvent

pytestmark = pytest.mark.django_db


def test_only_stewards_and_auditors_read_the_log(cast, adult, login):
    assert login(cast.requester).get("/audit-log/").status_code == 403
    assert login(cast.approver).get("/audit-log/export.csv").status_code == 403
    page = login(cast.auditor).get("/audit-log/")
    assert page.status_code == 200 and b"Export CSV" in page.content


def test_filters_narrow_the_log_by_object_actor_action_and_period(cast, submitted, login):
    client = login(cast.auditor)
    today = timezone.now().date().isoformat()

    by_object = client.get("/audit-log/", {"object_type": "datarequest", "object_id": str(submitted.pk)})
    by_actor = client.get("/audit-log/", {"actor": cast.requester.username, "action": "request.submit"})
    by_period = client.get("/audit-log/", {"start": "2001-01-01", "end": "2001-01-31"})

    objects = {(e.object_type, e.object_id) for e in by_object.context["page"]}
    assert objects == {("datarequest", str(submitted.pk))}
    assert [e.action for e in by_actor.context["page"]] == ["request.submit"]
    assert by_period.context["page"].paginator.count == 0
    assert client.get("/audit-log/", {"start": today, "end": today}).context["page"].paginator.count == (
        AuditEvent.objects.count()
    )


def test_a_period_that_ends_before_it_starts_is_refused_at_its_field(cast, adult, login):
    response = login(cast.auditor).get("/audit-log/", {"start": "2026-02-01", "end": "2026-01-01"})

    assert response.status_code == 400
    assert response.context["form"].errors["end"] == ["The end of the period comes before its start."]


def test_the_export_holds_the_filtered_rows_with_formulas_defused(cast, submitted, login):
    client = login(cast.auditor)

    exported = client.get("/audit-log/export.csv", {"object_type": "datarequest", "object_id": str(submitted.pk)})

    rows = list(csv.reader(io.StringIO(exported.content.decode())))
    assert exported["Content-Type"].startswith("text/csv")
    assert rows[0][:5] == ["id", "created_at", "actor", "channel", "action"]
    assert {row[5] for row in rows[1:]} == {"datarequest"} and len(rows) > 1
    assert all(not cell.startswith(("=", "+", "@")) for row in rows for cell in row)
