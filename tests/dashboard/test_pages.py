"""Every dashboard page per role: status, key content, and what each person may see."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.django_db

PAGES = ["/", "/datasets/", "/datasets/adult/", "/requests/", "/jobs/", "/audits/", "/releases/"]


def test_pages_ask_an_anonymous_visitor_to_log_in(client):
    response = client.get("/requests/")
    assert response.status_code == 302
    assert response["Location"] == "/accounts/login/?next=/requests/"


def test_logging_in_with_a_password_leads_home(client, cast):
    cast.requester.set_password("requester-demo")
    cast.requester.save()
    page = client.get("/accounts/login/")
    assert page.status_code == 200 and b'<label for="id_username">' in page.content
    response = client.post("/accounts/login/", {"username": "requester", "password": "requester-demo"})
    assert response.status_code == 302 and response["Location"] == "/"
    assert b"Good to see you, requester" in client.get("/").content


def test_the_login_page_names_the_demo_people_only_on_the_demo_installation(client, settings):
    settings.SYNTHGATE_DEMO = False
    assert b"alice" not in client.get("/accounts/login/").content
    settings.SYNTHGATE_DEMO = True
    assert b"<code>alice</code>" in client.get("/accounts/login/").content


def test_an_unknown_address_answers_a_plain_not_found_page_without_the_urlconf(client, settings):
    settings.DEBUG = False
    response = client.get("/no-such-page/")
    assert response.status_code == 404
    assert b"Not found" in response.content and b"URLconf" not in response.content


def test_a_wrong_password_is_refused_on_the_login_page(client, cast):
    response = client.post("/accounts/login/", {"username": "requester", "password": "nope"})
    assert response.status_code == 200 and b"Please enter a correct username" in response.content


@pytest.mark.parametrize("role", ["steward", "requester", "approver", "auditor"])
def test_every_main_page_answers_for_every_role(role, cast, adult, submitted, login):
    client = login(getattr(cast, role))
    for url in [*PAGES, f"/requests/{submitted.pk}/"]:
        response = client.get(url)
        assert response.status_code == 200, url
        assert b'<main id="main"' in response.content


def test_a_user_without_a_role_is_told_to_ask_a_steward(login, db):
    from tests.governance.factories import UserFactory

    response = login(UserFactory(username="nobody")).get("/datasets/")
    assert response.status_code == 403 and b"ask a steward" in response.content


def test_the_datasets_page_shows_a_budget_gauge_with_text(cast, adult, login):
    content = login(cast.auditor).get("/datasets/").content.decode()
    assert 'role="meter"' in content and 'aria-label="ε budget used"' in content
    # registration spent ε 0.02 on the source version's DP row estimate
    assert "spent 0.02 · reserved 0 · remaining 9.98 of 10" in content


def test_the_dataset_page_shows_versions_lineage_ledger_and_roles(cast, adult, submitted, login):
    from governance.services import access_request_approve

    access_request_approve(actor=cast.approver, request_id=submitted.pk)
    access_request_approve(actor=cast.second_approver, request_id=submitted.pk)
    content = login(cast.steward).get("/datasets/adult/").content.decode()
    assert "Budget ledger" in content and "reserved at final approval" in content
    assert "quasi identifier" in content and "label" in content
    assert "source v1" in content and "Nothing generated from this version" in content
    assert "spent 0.02 · reserved 1 · remaining 8.98 of 10" in content
    assert "row estimate of v1" in content and "DP row estimate of adult@v1, once per version" in content


def _stored_before_the_rows_check(dataset, *, income_categories: list[str]):
    """Source v1 as migration 0015 leaves a version stored before registration checked its rows:
    ``rows_checked`` false, under the declarations the old code stored (here ``income``'s categories)."""
    from governance.models import DatasetVersion

    version = dataset.versions.get(number=1)
    columns = [
        {**c, "categories": income_categories} if c["name"] == "income" else c for c in version.schema["columns"]
    ]
    DatasetVersion.objects.filter(pk=version.pk).update(
        schema={**version.schema, "columns": columns}, rows_checked=False
    )
    return DatasetVersion.objects.get(pk=version.pk)


def test_the_dataset_page_tells_only_the_steward_why_a_versions_rows_contradict_its_declarations(cast, adult, login):
    import html

    from governance.services.datasets import version_rows_check

    reason = version_rows_check(_stored_before_the_rows_check(adult, income_categories=["<=50K"]))
    assert "'income'" in reason  # the steward's reason names the column
    steward = html.unescape(login(cast.steward).get("/datasets/adult/").content.decode())
    assert 'id="rows-check-v1"' in steward and reason in steward
    assert "its rows contradict its declarations" in steward and "synthgate dataset declare adult" in steward
    assert "synthgate dataset check adult --as steward" in steward
    for role in ("requester", "approver", "auditor"):
        page = html.unescape(login(getattr(cast, role)).get("/datasets/adult/").content.decode())
        assert 'id="rows-check-v1"' not in page and "'income'" not in page, role
        assert "declared categories" not in page and "contradict" not in page, role


def test_the_dataset_page_tells_only_the_steward_that_a_versions_rows_are_not_yet_checked(cast, adult, login):
    _stored_before_the_rows_check(adult, income_categories=["<=50K", ">50K"])
    steward = login(cast.steward).get("/datasets/adult/").content.decode()
    assert 'id="rows-check-v1"' in steward and "rows not yet checked against the declarations" in steward
    assert "synthgate dataset check adult --as steward" in steward
    requester = login(cast.requester).get("/datasets/adult/").content.decode()
    assert 'id="rows-check-v1"' not in requester and "not yet checked" not in requester


def test_an_unknown_dataset_answers_404(cast, login, db):
    response = login(cast.steward).get("/datasets/nope/")
    assert response.status_code == 404 and b"No dataset named" in response.content


def test_a_requester_sees_only_their_own_requests(cast, adult, submitted, login):
    other = login(cast.other_requester)
    listing = other.get("/requests/").content.decode()
    assert f"/requests/{submitted.pk}/" not in listing and "No requests yet" in listing
    response = other.get(f"/requests/{submitted.pk}/")
    assert response.status_code == 404 and b"Not found" in response.content
    assert f"/requests/{submitted.pk}/" in login(cast.requester).get("/requests/").content.decode()


def test_the_requests_list_is_paginated_and_filtered(cast, adult, login):
    from tests.governance.factories import request_file

    for index in range(30):
        request_file(requester=cast.requester, n_rows=200 + index, submit=index % 3 != 0)
    client = login(cast.approver)
    first = client.get("/requests/").content.decode()
    assert "Page 1 of 2 (30 in all)" in first and 'rel="next"' in first
    second = client.get("/requests/?page=2").content.decode()
    assert "Page 2 of 2" in second
    drafts = client.get("/requests/?state=draft").content.decode()
    assert drafts.count('class="badge badge-muted">draft<') == 10
    assert "state=draft&amp;page=" not in drafts  # one page only: no pagination links


def test_the_timeline_lists_every_event_of_the_request(cast, adult, submitted, login):
    from governance.services import access_request_approve

    access_request_approve(actor=cast.approver, request_id=submitted.pk, reason="fine")
    content = login(cast.auditor).get(f"/requests/{submitted.pk}/").content.decode()
    for action in ("request.create", "request.submit", "approval.approve"):
        assert action in content
    assert "via web" not in content  # these were made through services directly (channel api)


def test_the_compliance_page_shows_the_report_and_renders_downloads(cast, adult, submitted, login):
    from audits.models import ComplianceReport

    client = login(cast.auditor)
    page = client.get("/compliance/?dataset=adult")
    content = page.content.decode()
    assert page.status_code == 200 and "Compliance report" in content
    assert f"/requests/{submitted.pk}/" in content and "intact" in content
    assert "/compliance/report.pdf?" in content and "dataset=adult" in content
    assert '<img src="data:image/svg+xml;base64,' in content and "Requests filed in the period, by state" in content
    csv_response = client.get("/compliance/report.csv?dataset=adult")
    assert csv_response.status_code == 200 and csv_response["Content-Type"].startswith("text/csv")
    assert csv_response["Content-Disposition"].startswith('attachment; filename="compliance-')
    data = client.get("/compliance/report.json?purpose=research")
    assert data.status_code == 200 and b'"total": 1' in data.content
    pdf = client.get("/compliance/report.pdf")
    assert pdf.content.startswith(b"%PDF")
    assert ComplianceReport.objects.count() == 3  # each rendered report is recorded by the service
    empty = client.get("/compliance/?start=2000-01-01&end=2000-01-31").content.decode()
    assert "No requests match these filters" in empty
    wrong = client.get("/compliance/?start=2024-02-01&end=2024-01-01")
    assert wrong.status_code == 400 and "before it starts" in wrong.context["form"].errors["end"][0]


def test_only_stewards_and_auditors_see_the_compliance_page(cast, adult, login):
    for user in (cast.requester, cast.approver):
        client = login(user)
        assert client.get("/compliance/").status_code == 403
        assert client.get("/compliance/report.csv").status_code == 403
        assert b">Compliance</a>" not in client.get("/").content
    assert b">Compliance</a>" in login(cast.steward).get("/").content


def test_home_shows_a_dataset_near_its_budget_cap(cast, adult_schema, login):
    from governance.services import access_request_approve
    from tests.governance.factories import PurposeFactory, dataset_register_adult, request_file

    PurposeFactory(name="research", approvals_required=2)
    dataset_register_adult(steward=cast.steward, schema=adult_schema, epsilon_cap="1")
    request = request_file(requester=cast.requester, epsilon="0.85")
    client = login(cast.steward)
    assert "Datasets near their budget cap" not in client.get("/").content.decode()
    for approver in (cast.approver, cast.second_approver):
        access_request_approve(actor=approver, request_id=request.pk)
    home = client.get("/").content.decode()
    # 1 − 0.85 − 0.02 (the source version's DP row estimate)
    assert "Datasets near their budget cap" in home and "ε remaining 0.13 of 1 (under 20 %)" in home
    assert "near budget cap" in client.get("/datasets/").content.decode()


def test_home_lists_requests_awaiting_my_approval_only_for_approvers(cast, submitted, login):
    url = f"/requests/{submitted.pk}/"
    assert url in login(cast.approver).get("/").content.decode()
    assert "Requests awaiting your approval" not in login(cast.auditor).get("/").content.decode()
    assert "Nothing needs your action right now" in login(cast.requester).get("/").content.decode()
