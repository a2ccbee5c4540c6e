"""The whole governed path through the dashboard in a real browser, as the five people of the
demo: steward, alice (requester), bob and carol (approvers), dana (auditor).

Runs headless system Chromium against a live server; the generation job and its audit run
in-process in a background thread, as on the embedded default.
"""

from __future__ import annotations

import base64
import csv
import io
import re
from datetime import date, timedelta
from pathlib import Path
from urllib.parse import urlsplit
from xml.etree import ElementTree

import pytest
from playwright.sync_api import expect, sync_playwright

from tests.dashboard.browser import (
    AXE_FAILING,
    DESKTOP,
    NARROW,
    SCREENSHOTS,
    People,
    axe_check,
    axe_report,
    launch,
    shot,
)
from tests.jobs import test_reference_source as source_tests

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

ROOT = Path(__file__).resolve().parents[2]
# The adult rows as a table of a source database named "warehouse" (the machine's PostgreSQL).
warehouse = source_tests.warehouse
WAREHOUSE_TABLE = source_tests.TABLE
ADULT_CSV = ROOT / "tests" / "fixtures" / "adult_2000.csv"
ADULT_SCHEMA = ROOT / "sample_data" / "adult.schema.json"
JOB_TIMEOUT_MS = 240_000


@pytest.fixture
def people(live_server, monkeypatch):
    """The demo's five people (passwords '<name>-synthgate') plus erin, a second requester, and
    frank, who holds both the requester and the approver role."""
    from governance import services

    # Playwright's sync API keeps an event loop in this thread; the test's own ORM calls are
    # still synchronous (Playwright's documented setting for Django tests).
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")

    services.roles_ensure()
    services.purposes_ensure_defaults()
    for username, roles in (
        ("steward", ["steward"]),
        ("alice", ["requester"]),
        ("bob", ["approver"]),
        ("carol", ["approver"]),
        ("dana", ["auditor"]),
        ("erin", ["requester"]),
        ("frank", ["requester", "approver"]),
    ):
        services.user_create(
            username=username,
            roles=roles,
            actor=None,
            password=f"{username}-synthgate",
            email=f"{username}@example.org",
        )
    with sync_playwright() as playwright:
        browser = launch(playwright)
        cast = People(browser, live_server.url)
        yield cast
        cast.close()
        browser.close()
        # ORM calls made while Playwright's loop runs get their own connection; close it here,
        # or PostgreSQL refuses to drop the test database at the end of the session.
        from django.db import connections

        connections.close_all()


def test_the_governed_path_through_the_dashboard(people, mailoutbox, warehouse, tmp_path):
    """Each page of issue 13 as the person who meets it; axe runs on every page visited."""
    found: list[dict] = []
    steward = people.page("steward")
    _people_and_purposes(steward, found)
    _register_dataset(steward, found)
    _declare_schema(steward, found)
    _declare_step_resolution_calendar(steward, found, tmp_path)
    _profiles_of_the_real_rows(people, found)
    request_url = _file_request(people.page("alice"), found)
    _approve_four_eyes(people, request_url, mailoutbox)
    audit_url = _generate_and_watch(people.page("alice"), request_url)
    _read_audit(people.page("dana"), audit_url)
    release_url = _release(people, request_url, mailoutbox)
    _download_and_verify(people.page("alice"), release_url)
    _release_profiles(people, release_url, found)
    _overview_pages(people)
    _audit_log(people.page("dana"), found)
    _compliance_charts(people, found)
    _verdicts_on_a_phone(people, audit_url)
    _register_by_reference(people.page("steward"), found)
    _notices_of_what_went_wrong(people, mailoutbox, warehouse, release_url, found)
    _accessible_everywhere(people, request_url, audit_url, release_url, found)
    _revoke(people.page("steward"), release_url)
    assert [m.subject.rsplit(" ", 1)[-1] for m in mailoutbox if m.to == ["alice@example.org"]][-1] == "revoked"


def _people_and_purposes(page, found):
    """The steward manages people, roles and purposes in the dashboard; every mistake shows at once."""
    page.goto("/people/")
    form = page.locator("form", has=page.get_by_role("button", name="Create user"))
    form.get_by_label("Username").fill("gina")
    form.get_by_label("Email").fill("not-an-address")
    form.get_by_role("button", name="Create user").click()
    # No role chosen and a malformed address: both marked in one answer.
    expect(page.locator(".has-error")).to_have_count(2)
    found.append(axe_check(page, "axe-steward-people-create-errors"))
    form = page.locator("form", has=page.get_by_role("button", name="Create user"))
    form.get_by_label("Email").fill("gina@example.org")
    form.get_by_label("requester").check()
    form.get_by_role("button", name="Create user").click()
    expect(page.locator(".messages")).to_contain_text("Created gina (requester)")
    page.get_by_label("Roles of gina").select_option(["requester", "approver"])
    page.locator("form", has=page.get_by_label("Roles of gina")).get_by_role("button", name="Save roles").click()
    expect(page.get_by_role("row", name=re.compile(r"^gina approver, requester"))).to_be_visible()
    # A steward's own roles are changed by another steward, never by themselves.
    expect(page.get_by_role("row", name=re.compile(r"^steward "))).to_contain_text("another steward changes your roles")
    shot(page, "00a-steward-people-roles")

    page.goto("/purposes/")
    page.get_by_label("Name").fill("clinical trials")
    page.get_by_label("Largest ε one request may ask for").fill("lots")
    page.get_by_label("Approvals needed (distinct approvers)").fill("0")
    page.get_by_role("button", name="Define purpose").click()
    expect(page.locator(".form-errors")).to_contain_text("Nothing was stored")
    expect(page.locator(".has-error")).to_have_count(3)
    expect(page.locator(".has-error", has=page.get_by_label("Largest ε one request may ask for"))).not_to_contain_text(
        "max_epsilon"
    )
    found.append(axe_check(page, "axe-steward-purposes-errors"))
    page.get_by_label("Name").fill("clinical-trials")
    page.get_by_label("Largest ε one request may ask for").fill("0.5")
    page.get_by_label("Approvals needed (distinct approvers)").fill("2")
    page.get_by_role("button", name="Define purpose").click()
    expect(page.locator(".messages")).to_contain_text("Purpose 'clinical-trials' defined")
    # Amounts as people write them (0.5, not 0.500000000000).
    expect(page.get_by_role("row", name=re.compile(r"^clinical-trials 0\.5 2 internal 90 "))).to_be_visible()
    shot(page, "00b-steward-purposes")


def _register_dataset(page, found):
    page.goto("/datasets/")
    expect(page.get_by_text("No dataset is registered yet")).to_be_visible()
    page.get_by_role("link", name="Register a dataset").click()
    page.get_by_label("Name").fill("adult data")
    page.get_by_label("Description").fill("UCI Adult census extract, 2,000 rows")
    page.get_by_label("Table (CSV, optionally gzip-compressed)").set_input_files(str(ADULT_CSV))
    page.get_by_label("Schema (JSON file)").set_input_files(str(ADULT_SCHEMA))
    page.get_by_label("ε cap (total privacy budget)").fill("oops")
    page.get_by_label("δ cap").fill("2")
    page.get_by_role("button", name="Register").click()
    # Every mistake at once, each next to its field in the form's words; the table and schema are kept.
    for label in ("Name", "ε cap (total privacy budget)", "δ cap"):
        expect(page.locator(".has-error", has=page.get_by_label(label))).to_have_count(1)
    expect(page.locator(".has-error", has=page.get_by_label("ε cap (total privacy budget)"))).to_contain_text(
        "ε cap (total privacy budget) must be a number"
    )
    expect(page.locator(".has-error", has=page.get_by_label("δ cap"))).to_contain_text("δ cap must be less than 1")
    expect(page.locator("main")).not_to_contain_text("epsilon_cap")
    expect(page.locator("main")).not_to_contain_text("delta_cap")
    expect(page.locator("#staged-file")).to_contain_text("adult_2000.csv")
    expect(page.get_by_label("…or paste the schema JSON")).to_contain_text('"columns"')
    shot(page, "01-steward-register-dataset-field-error")
    found.append(axe_check(page, "axe-steward-register-errors"))
    page.get_by_label("Name").fill("adult")
    page.get_by_label("ε cap (total privacy budget)").fill("10")
    page.get_by_label("δ cap").fill("1e-4")
    shot(page, "02-steward-register-dataset-form")
    page.get_by_role("button", name="Register").click()
    # Step 2: the stored schema, with a declaration per column; the given schema is kept as it is.
    expect(page.get_by_role("heading", name="Declare what is public: adult")).to_be_visible()
    expect(page.locator(".messages")).to_contain_text("2,000 rows × 15 columns")


def _declare_schema(page, found):
    """Step 2 of registration: refused declarations shown at their columns, then the fix (all or none)."""

    def column(name):
        return page.locator("fieldset", has=page.locator("legend code", has_text=re.compile(f"^{name}$")))

    column("relationship").get_by_label("Role").select_option("quasi_identifier")
    # Adult has no float or datetime column, so no column offers a grid step or a resolution.
    expect(page.get_by_label("Grid step (float)")).to_have_count(0)
    column("hours-per-week").get_by_label("Public minimum").fill("none")
    page.get_by_role("button", name="Declare", exact=True).click()
    expect(page.locator("fieldset.has-error")).to_have_count(1)
    expect(page.locator("fieldset.has-error legend")).to_contain_text("hours-per-week")
    shot(page, "02b-steward-schema-declaration-error")
    found.append(axe_check(page, "axe-steward-schema-errors"))
    hours = column("hours-per-week")
    hours.get_by_label("Public minimum").fill("")
    page.get_by_role("button", name="Declare", exact=True).click()
    expect(page.locator(".messages")).to_contain_text("Declared relationship")
    expect(page.get_by_role("heading", name="Dataset adult")).to_be_visible()
    expect(page.get_by_role("row", name=re.compile(r"^relationship categorical"))).to_contain_text("quasi identifier")
    shot(page, "03-steward-dataset-page")


def _declare_step_resolution_calendar(page, found, tmp_path):
    """A table with a float and a datetime column: the schema step offers a grid step, a resolution
    and a calendar, filled in with what the rows suggest (declared only when sent); a mistake the
    form finds (a step that is not a number) and one the service finds (a minimum that is not a
    number) are named in one answer, each at its column."""
    start = date(2026, 1, 5)  # a Monday; trading days only
    days = [day for day in (start + timedelta(days=k) for k in range(168)) if day.weekday() < 5]
    lines = ["traded_on,price,volume,venue"]
    for k in range(240):
        venue = ("XNAS", "XNYS", "XLON")[k % 3]
        lines.append(f"{days[k % len(days)].isoformat()},{20 + (k * 7) % 60 * 0.5:g},{1 + (k * 37) % 900},{venue}")
    table = tmp_path / "trades.csv"
    table.write_text("\n".join(lines) + "\n", encoding="utf-8")
    page.goto("/datasets/new/")
    page.get_by_label("Name").fill("trades")
    page.get_by_label("Description").fill("Daily trades by venue, 240 rows")
    page.get_by_label("Table (CSV, optionally gzip-compressed)").set_input_files(str(table))
    page.get_by_role("button", name="Register").click()
    expect(page.get_by_role("heading", name="Declare what is public: trades")).to_be_visible()

    def column(name):
        return page.locator("fieldset", has=page.locator("legend code", has_text=re.compile(f"^{name}$")))

    traded, price, volume = column("traded_on"), column("price"), column("volume")
    expect(traded.get_by_label("Released resolution (datetime)")).to_have_value("day")
    expect(traded.get_by_label("Calendar (datetime at day resolution)")).to_have_value("weekdays")
    expect(traded.locator("legend")).to_contain_text("proposed from the rows")
    expect(price.get_by_label("Grid step (float)")).to_have_value("0.5")
    # Each column offers only what fits its type.
    expect(price.get_by_label("Released resolution (datetime)")).to_have_count(0)
    expect(volume.get_by_label("Grid step (float)")).to_have_count(0)
    price.get_by_label("Grid step (float)").fill("half")
    volume.get_by_label("Public minimum").fill("none")
    page.get_by_role("button", name="Declare", exact=True).click()
    expect(page.locator("fieldset.has-error")).to_have_count(2)
    expect(price).to_contain_text("Write the step as a number")
    expect(volume.locator(".has-error", has=page.get_by_label("Public minimum"))).to_contain_text(
        "Public minimum must be a finite number"
    )
    shot(page, "02c-steward-schema-step-and-minimum-errors-at-once")
    found.append(axe_check(page, "axe-steward-schema-float-datetime-errors"))
    price.get_by_label("Grid step (float)").fill("0.5")
    volume.get_by_label("Public minimum").fill("1")
    volume.get_by_label("Public maximum").fill("1000")
    volume.get_by_label("Where the domain comes from").fill("Exchange rule: an order is 1 to 1,000 lots")
    page.get_by_role("button", name="Declare", exact=True).click()
    expect(page.locator(".messages")).to_contain_text("Declared traded_on, price, volume")
    expect(page.get_by_role("row", name=re.compile(r"^traded_on datetime"))).to_contain_text(
        "whole days; weekdays only"
    )
    expect(page.get_by_role("row", name=re.compile(r"^price float"))).to_contain_text("step 0.5")
    expect(page.get_by_role("row", name=re.compile(r"^volume integer"))).to_contain_text("1 – 1000")
    shot(page, "03a-steward-dataset-step-resolution-calendar")


def _profiles_of_the_real_rows(people, found):
    """Stewards, approvers and auditors see the real rows profiled; a requester sees nothing from them."""
    for person in ("steward", "dana"):
        page = people.page(person)
        page.goto("/datasets/adult/")
        expect(page.get_by_role("heading", name=re.compile(r"Column profiles of the real rows"))).to_be_visible()
        expect(page.locator("figure.profile.real svg[role=img]")).to_have_count(15)
    page.get_by_text("Histogram of age as a table").click()
    expect(page.locator("figure.profile", has_text="age integer").locator("table")).to_be_visible()
    shot(page, "03b-dana-dataset-profiles-of-real-rows")
    alice = people.page("alice")
    alice.goto("/datasets/adult/")
    expect(alice.locator("figure.profile")).to_have_count(0)
    expect(alice.get_by_text("Profiles of the real rows are shown only to stewards")).to_be_visible()
    shot(alice, "03c-alice-dataset-page-no-real-profiles")
    found.append(axe_check(alice, "axe-alice-dataset-before-release"))


def _file_request(page, found):
    from governance.models import DataRequest

    page.goto("/requests/new/")
    page.get_by_label("Dataset").select_option("adult")
    page.get_by_label("Purpose").select_option("external-research")
    page.get_by_label("ε (privacy budget for this release)").fill("1")
    # registration spent ε 0.02 on the source version's DP row estimate
    expect(page.locator("#budget-preview")).to_contain_text(
        "Remaining ε on adult: 9.98 of 10 → 8.98 after this request"
    )
    page.get_by_label("ε (privacy budget for this release)").fill("2")
    expect(page.locator("#budget-preview")).to_contain_text("allows at most ε 1 per release")
    page.get_by_label("ε (privacy budget for this release)").fill("0.3")
    page.get_by_label("δ").fill("1e-5")
    page.get_by_label("Synthetic rows").fill("1000")
    page.get_by_label("Generator").select_option("mst")
    page.get_by_label("Recipient kind").select_option("external")
    page.get_by_label("Recipient", exact=True).fill("University partner")
    page.get_by_label("Justification").fill("Income-prediction research on synthetic census data")
    page.get_by_label("Fixed seed (only for reproducible runs)").fill("7")
    # Before filing: what the audit will probably say at this ε and size, with a warning when it will fail.
    page.get_by_role("button", name="Preview the audit").click()
    outlook = page.locator("#outlook")
    expect(outlook.get_by_role("heading", name="What the audit will probably say: fail")).to_be_visible()
    expect(outlook.locator(".notice")).to_contain_text("the audit will probably fail it")
    expect(outlook.get_by_role("table")).to_contain_text("Purpose threshold")
    shot(page, "04a-alice-request-outlook-warning")
    found.append(axe_check(page, "axe-alice-request-outlook"))
    assert not DataRequest.objects.exists()  # a preview files nothing
    page.get_by_label("ε (privacy budget for this release)").fill("1")
    shot(page, "04-alice-new-request-form")
    # Two concurrent sends of the same form (a double click, a retried POST) file one request.
    statuses = page.evaluate(
        """async () => {
            const form = document.getElementById("request-form");
            const send = () => fetch(form.action || location.href, {method: "POST", body: new FormData(form)});
            return (await Promise.all([send(), send()])).map((answer) => answer.status);
        }"""
    )
    assert statuses == [200, 200], statuses  # each followed the redirect to the request
    assert DataRequest.objects.count() == 1
    # The button press itself sends once: the script disables the form's buttons while it submits.
    page.evaluate(
        """() => {
            const button = document.querySelector("#request-form button.primary");
            button.click();
            button.click();
        }"""
    )
    expect(page.get_by_role("heading", name=re.compile(r"Request #\d+"))).to_contain_text("submitted")
    assert DataRequest.objects.count() == 1
    # Four-eyes: the requester sees no approve button.
    expect(page.get_by_role("button", name="Approve")).to_have_count(0)
    expect(page.get_by_text("you cannot approve it")).to_be_visible()
    shot(page, "05-alice-request-submitted")
    return page.url


def _approve_four_eyes(people, request_url, mailoutbox):
    # Filing mailed both approvers (not the requester); bob follows the link in his e-mail.
    waiting = [m for m in mailoutbox if "awaits your approval" in m.body]
    addresses = {address for m in waiting for address in m.to}
    assert {"bob@example.org", "carol@example.org"} <= addresses and "alice@example.org" not in addresses
    path = re.search(r"/requests/\d+/", waiting[0].body).group(0)
    assert request_url.endswith(path)
    bob = people.page("bob")
    bob.goto("/")
    expect(bob.get_by_role("heading", name="Requests awaiting your approval")).to_be_visible()
    shot(bob, "06-bob-home-awaiting-approval")
    bob.goto(path)
    bob.get_by_label("Comment (optional)").fill("Purpose and ε are within policy")
    bob.get_by_role("button", name="Approve").click()
    expect(bob.locator(".messages")).to_contain_text("1 more approval needed")
    carol = people.page("carol")
    carol.goto(request_url)
    carol.get_by_role("button", name="Reject").click()  # a rejection needs a reason, shown at its field
    expect(carol.locator(".has-error")).to_contain_text("A reason is required to reject")
    shot(carol, "07-carol-reject-needs-reason")
    carol.get_by_role("button", name="Approve").click()
    expect(carol.locator(".messages")).to_contain_text("approved and its budget is reserved")
    expect(carol.get_by_role("heading", name=re.compile(r"Request #\d+"))).to_contain_text("approved")
    shot(carol, "08-carol-request-approved")
    approved = [m for m in mailoutbox if m.subject.endswith(" approved")]
    assert [m.to for m in approved] == [["alice@example.org"]]


def _generate_and_watch(page, request_url):
    page.goto(request_url)
    page.get_by_role("button", name="Start generation").click()
    expect(page.get_by_role("heading", name=re.compile(r"Job #\d+"))).to_be_visible()
    bar = page.get_by_role("progressbar")
    expect(bar).to_have_attribute("aria-valuenow", re.compile(r"^([1-9]\d?|100)$"), timeout=30_000)
    shot(page, "09-alice-job-live-progress")
    # The page reloads itself when the job and its audit are done.
    expect(page.get_by_role("link", name=re.compile(r"^#\d+$")).first).to_be_visible(timeout=JOB_TIMEOUT_MS)
    expect(page.locator(".job-next")).to_contain_text(re.compile(r"request is (ready|blocked)"), timeout=JOB_TIMEOUT_MS)
    expect(page.get_by_role("heading", name=re.compile(r"Job #\d+"))).to_contain_text("succeeded")
    shot(page, "10-alice-job-finished")
    return page.locator(".job-next a").first.get_attribute("href")


def _read_audit(page, audit_url):
    page.goto("/audits/")
    shot(page, "11-dana-audits-list")
    page.goto(audit_url)
    expect(page.get_by_role("heading", name="Positive controls")).to_be_visible()
    expect(page.get_by_role("heading", name="Fidelity")).to_be_visible()
    expect(page.locator("figure.chart img").first).to_be_visible()
    expect(page.get_by_role("heading", name="Bias metrics by protected column")).to_be_visible()
    shot(page, "12-dana-audit-page")


def _release(people, request_url, mailoutbox):
    bob = people.page("bob")
    bob.goto(request_url)
    if bob.get_by_role("button", name="Accept the risk").count():
        bob.get_by_role("button", name="Accept the risk").click()
        expect(bob.locator(".has-error").first).to_contain_text("is too short")
        shot(bob, "13-bob-accept-risk-needs-reason")
        boxes = bob.get_by_label(re.compile(r"Why is the failure of .* acceptable\?"))
        for index in range(boxes.count()):
            boxes.nth(index).fill(
                f"Small 2,000-row sample, check {index + 1}: fidelity limits are expected; privacy controls were caught"
            )
        bob.get_by_role("button", name="Accept the risk").click()
        expect(bob.locator(".messages")).to_contain_text("You accepted the risk")
    expect(bob.get_by_role("heading", name=re.compile(r"Request #\d+"))).to_contain_text("ready")
    shot(bob, "14-bob-request-ready-to-release")
    carol = people.page("carol")
    carol.goto("/")
    expect(carol.get_by_role("heading", name="Ready to release")).to_be_visible()
    carol.goto(request_url)
    carol.get_by_role("button", name="Release").click()
    expect(carol.get_by_role("heading", name=re.compile(r"Release #\d+"))).to_contain_text("active")
    # The requester heard of each step that concerns her: approved, ready (or blocked), released.
    told = [m.subject.rsplit(" ", 1)[-1] for m in mailoutbox if m.to == ["alice@example.org"]]
    assert told[0] == "approved" and told[-1] == "released" and ("ready" in told), told
    return carol.url


def _download_and_verify(page, release_url):
    page.goto(release_url)
    expect(page.locator(".verified")).to_contain_text("Signature intact, valid and trusted")
    with page.expect_download() as data:
        page.get_by_role("link", name="Download synthetic data (CSV)").click()
    assert Path(data.value.path()).read_text().startswith("age,workclass,")
    with page.expect_download() as sheet:
        page.get_by_role("link", name="Download signed datasheet (PDF)").click()
    assert Path(sheet.value.path()).read_bytes().startswith(b"%PDF")
    page.reload()
    log = page.locator("section", has=page.get_by_role("heading", name="Downloads log"))
    expect(log.locator("tbody tr")).to_have_count(2)
    expect(log).to_contain_text("alice")
    shot(page, "15-alice-release-verified-downloads-logged")
    request_link = page.get_by_role("link", name=re.compile(r"request #\d+")).first
    request_link.click()
    expect(page.get_by_role("heading", name="Timeline")).to_be_visible()
    for action in (
        "request.create",
        "approval.approve",
        "budget.reserve",
        "job.succeed",
        "audit.",
        "datasheet.sign",
        "release.create",
        "release.download",
    ):
        expect(page.locator(".timeline")).to_contain_text(action)
    shot(page, "16-alice-request-timeline")


def _release_profiles(people, release_url, found):
    """The release page previews and profiles the synthetic rows; the requester's dataset page shows
    that release's profile, labelled as synthetic."""
    alice = people.page("alice")
    alice.goto(release_url)
    expect(alice.get_by_role("heading", name="Preview of the synthetic rows")).to_be_visible()
    expect(alice.get_by_role("region", name="Synthetic rows (scrolls sideways)").locator("tbody tr")).to_have_count(10)
    expect(alice.get_by_role("heading", name="Column profiles (synthetic rows)")).to_be_visible()
    charts = alice.locator("figure.profile.synthetic svg[role=img]")
    expect(charts).to_have_count(15)
    # Tick labels are drawn at 11 px in a 360-px-wide drawing: readable at the size shown.
    shown = charts.first.bounding_box()["width"]
    print("profile tick labels (px):", round(11 * shown / 360, 1))
    assert 11 * shown / 360 >= 10, shown
    expect(alice.get_by_role("img", name="Histogram of income")).to_be_visible()
    alice.get_by_text("Histogram of income as a table").click()
    expect(alice.locator("figure.profile", has_text="income categorical").locator("table")).to_contain_text("<=50K")
    shot(alice, "15b-alice-release-preview-and-profiles")
    release_id = re.search(r"/releases/(\d+)/", release_url).group(1)
    alice.goto("/datasets/adult/")
    expect(
        alice.get_by_role("heading", name=f"Column profiles of release #{release_id} (synthetic rows)")
    ).to_be_visible()
    expect(alice.locator("figure.profile.real")).to_have_count(0)
    shot(alice, "15c-alice-dataset-page-release-profiles")
    found.append(axe_check(alice, "axe-alice-dataset-after-release"))


def _audit_log(page, found):
    """The auditor filters the log by action, actor, object and period, and exports what they see."""
    page.goto("/audit-log/")
    page.get_by_label("Action").select_option("approval.approve")
    page.get_by_role("button", name="Filter").click()
    heading = page.get_by_role("heading", name=re.compile(r"^\d+ events?$"))
    events = page.locator("section", has=heading).locator("tbody tr")
    expect(events).to_have_count(2)
    page.get_by_label("Actor (username)").fill("bob")
    page.get_by_label("From").fill(date.today().isoformat())
    page.get_by_label("To (inclusive)").fill(date.today().isoformat())
    page.get_by_role("button", name="Filter").click()
    expect(page.get_by_role("heading", name="1 event")).to_be_visible()
    expect(events.first).to_contain_text("bob")
    shot(page, "23b-dana-audit-log-filtered")
    found.append(axe_check(page, "axe-dana-audit-log-filtered"))
    with page.expect_download() as export:
        page.get_by_role("link", name="Export CSV").click()
    rows = list(csv.reader(io.StringIO(Path(export.value.path()).read_text(encoding="utf-8"))))
    assert len(rows) == 2 and "approval.approve" in rows[1] and "bob" in rows[1], rows
    page.get_by_role("link", name=re.compile(r"^approval \d+$")).first.click()  # one object's whole history
    expect(events.first).to_contain_text("approval")


def _compliance_charts(people, found):
    """The compliance page charts ε spent, requests by state and releases, each with a text alternative;
    their smallest text reads at 11 px or more on a laptop and on a phone (where a chart scrolls sideways)."""
    page = people.page("dana")
    page.goto("/compliance/")
    charts = page.locator("figure.chart img")
    expect(charts).to_have_count(3)
    for index, start in enumerate(("ε spent per dataset", "Requests filed in the period", "Releases made per month")):
        assert charts.nth(index).get_attribute("alt").startswith(start)
    sizes = _chart_text_sizes(charts)
    print("compliance chart texts at 1280 px (smallest, px):", sizes)
    assert min(sizes) >= 11, sizes
    shot(page, "23c-dana-compliance-charts")
    phone = people.page("dana", viewport=NARROW)
    phone.goto("/compliance/")
    charts = phone.locator("figure.chart img")
    sizes = _chart_text_sizes(charts)
    print("compliance chart texts at 390 px (smallest, px):", sizes)
    assert min(sizes) >= 11, sizes
    region = phone.get_by_role("region", name=re.compile(r"^ε spent per dataset .*scrolls sideways"))
    box = region.bounding_box()
    assert box["x"] >= 0 and box["x"] + box["width"] <= NARROW["width"], box  # the page itself does not scroll
    assert region.evaluate("(element) => element.scrollWidth > element.clientWidth")  # the chart does
    found.append(axe_check(phone, "23c2-dana-compliance-charts-narrow"))
    region.evaluate("(element) => { element.scrollLeft = element.scrollWidth; }")
    region.screenshot(path=str(SCREENSHOTS / "23c3-dana-compliance-chart-scrolled.png"))


def _chart_text_sizes(charts) -> list[float]:
    """Each chart's smallest text as shown, in CSS pixels: its smallest font size in the SVG (an
    <img> of a data: URI) times the width shown over the drawing's own width."""
    sizes = []
    for index in range(charts.count()):
        chart = charts.nth(index)
        svg = base64.b64decode(chart.get_attribute("src").split(",", 1)[1]).decode()
        root = ElementTree.fromstring(svg)
        drawn = float(root.get("viewBox").split()[2])
        inherited = root.get("font-size")
        texts = root.iter("{http://www.w3.org/2000/svg}text")
        smallest = min(float(text.get("font-size") or inherited) for text in texts)
        sizes.append(round(smallest * chart.bounding_box()["width"] / drawn, 1))
    return sizes


def _verdicts_on_a_phone(people, audit_url):
    """At phone width, wide tables keep their verdict (or state) column on screen."""
    narrow = people.page("alice", viewport=NARROW)
    narrow.goto(audit_url)
    checks = narrow.locator("table", has=narrow.get_by_role("columnheader", name="Verdict"))
    box = checks.locator("tbody tr").first.locator("td").nth(1).bounding_box()
    assert box["x"] >= 0 and box["x"] + box["width"] <= NARROW["width"], box
    shot(narrow, "25b-alice-audit-verdicts-narrow")
    narrow.goto("/requests/")
    box = narrow.locator("tbody tr").first.locator("td").nth(1).bounding_box()
    assert box["x"] + box["width"] <= NARROW["width"], box


def _register_by_reference(page, found):
    """The steward registers the same census rows where they live (a warehouse table): every mistake
    at once, a schema proposed from the column types, one budget per population, and the dataset
    page saying why a referenced version is not profiled."""
    page.goto("/datasets/")
    page.get_by_role("link", name="Register data where it lives").click()
    page.get_by_label("Name").fill("warehouse adult")
    page.get_by_label("Source database").select_option("warehouse")
    page.get_by_label("ε cap (total privacy budget)").fill("x")
    page.get_by_role("button", name="Register", exact=True).click()
    for label in ("Name", "Table", "ε cap (total privacy budget)", "Schema (JSON)"):
        expect(page.locator(".has-error", has=page.get_by_label(label))).to_have_count(1)
    expect(page.locator("main")).not_to_contain_text("epsilon_cap")
    found.append(axe_check(page, "axe-steward-register-by-reference-errors"))
    page.get_by_label("Name").fill("adult-warehouse")
    page.get_by_label("Table").fill(WAREHOUSE_TABLE)
    page.get_by_label("ε cap (total privacy budget)").fill("10")
    page.get_by_role("button", name="Propose a schema from the column types").click()
    expect(page.locator("#schema-proposed")).to_be_visible()
    expect(page.get_by_label("Schema (JSON)")).to_contain_text('"workclass"')
    page.get_by_role("button", name="Register", exact=True).click()
    # The same people under a second name are refused: one population, one privacy budget.
    expect(page.locator("main .has-error")).to_contain_text("These rows overlap dataset 'adult'")
    shot(page, "23d-steward-register-by-reference-overlap")
    page.get_by_label("Name").fill("adult")
    page.get_by_role("button", name="Register", exact=True).click()
    expect(page.locator(".messages")).to_contain_text("registered by reference")
    expect(page.get_by_role("heading", name="Dataset adult")).to_be_visible()
    expect(page.locator("main")).to_contain_text("is registered by reference: its rows stay where they live")
    # The proposal was registered as it was: its types are the catalog's, not declared, until the steward says so.
    expect(page.locator("#proposed-types-detail")).to_contain_text("Types proposed from the data's catalog")
    shot(page, "23e-steward-dataset-source-by-reference")
    found.append(axe_check(page, "axe-steward-dataset-by-reference-proposed-types"))
    page.get_by_role("button", name="Declare the proposed types as shown").click()
    expect(page.locator(".messages")).to_contain_text(re.compile(r"Declared the proposed types on adult@v\d+ as shown"))
    expect(page.locator("#proposed-types-detail")).to_have_count(0)


def _notices_of_what_went_wrong(people, mailoutbox, warehouse, release_url, found):
    """The e-mails of what went wrong, each read by the person it is for, who follows its link:
    a rejection with the approver's reason (requester); a job the worker refused after approval,
    with its reason (requester and steward); a release a drift re-audit found stale (steward with
    the figures, requester without)."""
    from audits.services import drift_audits_due

    alice, bob, steward = people.page("alice"), people.page("bob"), people.page("steward")

    refused = _filed_request(requester="alice")
    bob.goto(f"/requests/{refused.pk}/")
    reason = "Internal analytics does not cover census microdata; file it under external-research"
    bob.get_by_label("Reason for rejecting").fill(reason)
    bob.get_by_role("button", name="Reject").click()
    expect(bob.get_by_role("heading", name=re.compile(r"Request #\d+"))).to_contain_text("rejected")
    rejected = _mail(mailoutbox, "alice@example.org", "rejected")
    assert f"Reason: {reason}" in rejected.body, rejected.body
    alice.goto(_link(rejected.body, r"/requests/\d+/"))
    expect(alice.get_by_role("heading", name=f"Request #{refused.pk}")).to_contain_text("rejected")
    expect(alice.locator("main")).to_contain_text(reason)
    found.append(axe_check(alice, "27a-alice-rejected-request-from-her-email"))

    # Approved, then the warehouse's loader changes the table (fifteen years older, a richer population):
    # the worker finds it changed since registration and refuses before reading a row or spending.
    failing = _filed_request(requester="alice")
    bob.goto(f"/requests/{failing.pk}/")
    bob.get_by_role("button", name="Approve").click()
    expect(bob.locator(".messages")).to_contain_text("approved and its budget is reserved")
    with warehouse.cursor() as cursor:
        cursor.execute(f"UPDATE {WAREHOUSE_TABLE} SET age = least(age + 15, 90)")
        cursor.execute(f"UPDATE {WAREHOUSE_TABLE} SET income = '>50K' WHERE (age % 5) < 3")
    alice.goto(f"/requests/{failing.pk}/")
    alice.get_by_role("button", name="Start generation").click()
    expect(alice.locator(".form-errors")).to_contain_text("changed since", timeout=JOB_TIMEOUT_MS)
    expect(alice.get_by_role("heading", name=re.compile(r"Job #\d+"))).to_contain_text("failed")
    shot(alice, "27b-alice-job-refused-table-changed")
    found.append(axe_check(alice, "axe-alice-job-failed"))
    for person in ("alice", "steward"):
        failed = _mail(mailoutbox, f"{person}@example.org", "failed")
        assert re.search(
            r"Reason: .*table '\w+' in source database 'warehouse' changed since adult@v\d+", failed.body
        ), failed.body
        page = people.page(person)
        page.goto(_link(failed.body, r"/requests/\d+/"))
        expect(page.get_by_role("heading", name=f"Request #{failing.pk}")).to_contain_text("failed")
        expect(page.locator("main")).to_contain_text(re.compile(r"changed since adult@v\d+ was registered"))
        # Refused before the data was read: the reservation went back, nothing was spent.
        expect(page.locator("main")).to_contain_text("before touching the data")
        found.append(axe_check(page, f"27c-{person}-failed-request-from-the-email"))

    # The scheduled drift sweep (Celery beat's task, run here in-process) re-audits the release
    # against the changed table and marks it stale.
    (outcome,) = drift_audits_due()
    assert outcome.verdict == "stale", outcome.reasons
    told = _mail(mailoutbox, "steward@example.org", "stale")
    assert "source drift: drift_psi" in told.body, told.body
    stale = _mail(mailoutbox, "alice@example.org", "stale")
    assert "drift_psi" not in stale.body and not re.search(r"\d\.\d", stale.body), stale.body
    for page, mail in ((alice, stale), (steward, told)):
        page.goto(_link(mail.body, r"/releases/\d+/"))
        assert page.url.endswith(urlsplit(release_url).path)
        expect(page.get_by_role("heading", name=re.compile(r"Release #\d+"))).to_contain_text("stale")
        expect(page.locator("main")).to_contain_text("A drift audit found this release stale")
    found.append(axe_check(alice, "27d-alice-stale-release-from-her-email"))
    steward.goto("/")
    expect(steward.get_by_role("heading", name="Stale releases (drift found)")).to_be_visible()
    found.append(axe_check(steward, "27e-steward-home-stale-release"))


def _mail(outbox, address, state):
    """The newest e-mail to ``address`` whose subject ends with ``state``."""
    sent = [m for m in outbox if m.to == [address] and m.subject.endswith(f" {state}")]
    assert sent, [(m.to, m.subject) for m in outbox]
    return sent[-1]


def _link(body, pattern):
    found = re.search(pattern, body)
    assert found, body
    return found.group(0)


def _overview_pages(people):
    steward = people.page("steward")
    for url, name in (
        ("/", "17-steward-home"),
        ("/datasets/", "18-steward-datasets-budget-gauges"),
        ("/datasets/adult/", "19-steward-dataset-lineage-ledger"),
        ("/requests/", "20-steward-requests"),
        ("/jobs/", "21-steward-jobs"),
        ("/releases/", "22-steward-releases"),
        ("/compliance/", "23-steward-compliance"),
    ):
        steward.goto(url)
        expect(steward.locator("main h1")).to_be_visible()
        shot(steward, name)
    expect(steward.get_by_role("link", name="Download signed PDF")).to_be_visible()
    narrow = people.page("alice", viewport=NARROW)
    narrow.goto("/")
    shot(narrow, "24-alice-home-narrow")
    narrow.goto("/requests/")
    narrow.get_by_role("link", name=re.compile(r"^#\d+$")).first.click()
    shot(narrow, "25-alice-request-narrow")


def _accessible_everywhere(people, request_url, audit_url, release_url, found):
    """axe-core on every dashboard page, each as the person who meets it: 0 serious, 0 critical."""
    from synth_engine.models import GenerationJob

    job_url = f"/jobs/{GenerationJob.objects.order_by('pk').first().pk}/"  # the walk's job, which succeeded
    visits = {
        "steward": [
            "/",
            "/datasets/",
            "/datasets/new/",
            "/datasets/new/source/",
            "/datasets/adult/",
            "/datasets/adult/schema/",
            "/requests/",
            request_url,
            "/jobs/",
            job_url,
            "/assurance/",
            "/audits/",
            audit_url,
            "/releases/",
            release_url,
            "/compliance/",
            "/audit-log/",
            "/people/",
            "/purposes/",
            "/requests/999999/",
        ],
        "alice": [
            "/",
            "/requests/new/",
            "/requests/",
            request_url,
            job_url,
            audit_url,
            "/releases/",
            release_url,
            "/purposes/",
        ],
        "bob": ["/", request_url, audit_url],
        "dana": ["/", "/audit-log/", audit_url, "/compliance/", "/people/", "/datasets/adult/", release_url],
    }
    results = list(found)
    anonymous = people.browser.new_context(viewport=DESKTOP, base_url=people.base_url)
    login_page = anonymous.new_page()
    login_page.goto("/accounts/login/")
    results.append(axe_check(login_page, "axe-anonymous-login"))
    anonymous.close()
    for person, urls in visits.items():
        page = people.page(person)
        for url in urls:
            page.goto(url)
            results.append(axe_check(page, f"axe-{person}-{_slug(url)}"))
    narrow = people.page("alice", viewport=NARROW)
    for url in ("/", request_url, audit_url, release_url):
        narrow.goto(url)
        results.append(axe_check(narrow, f"axe-alice-narrow-{_slug(url)}"))
    axe_report(results)

    failing = [
        (result["page"], rule, impact, nodes)
        for result in results
        for rule, (impact, nodes) in result["violations"].items()
        if impact in AXE_FAILING
    ]
    print(f"axe: {len(results)} pages, {len(failing)} serious or critical findings")
    assert len(results) == 62
    assert failing == []


def _slug(url: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", urlsplit(url).path.strip("/").lower()) or "home"


def _revoke(page, release_url):
    page.goto(release_url)
    page.get_by_role("button", name="Revoke release").click()
    expect(page.locator(".has-error")).to_contain_text("A reason is required to revoke")
    page.get_by_label("Reason for revoking").fill("Source consent withdrawn")
    page.get_by_role("button", name="Revoke release").click()
    expect(page.get_by_role("heading", name=re.compile(r"Release #\d+"))).to_contain_text("revoked")
    expect(page.get_by_role("link", name="Download synthetic data (CSV)")).to_have_count(0)
    shot(page, "26-steward-release-revoked")


def test_a_requester_cannot_see_another_requesters_request(people):
    request = _filed_request(requester="alice")
    erin = people.page("erin")
    response = erin.goto(f"/requests/{request.pk}/")
    assert response.status == 404
    expect(erin.get_by_role("heading", name="Not found")).to_be_visible()
    shot(erin, "27-erin-foreign-request-404")
    erin.goto("/requests/")
    expect(erin.get_by_text("No requests yet")).to_be_visible()


def test_an_approver_cannot_approve_their_own_request(people):
    from governance.models import Approval

    request = _filed_request(requester="frank")
    frank = people.page("frank")
    frank.goto(f"/requests/{request.pk}/")
    expect(frank.get_by_role("button", name="Approve")).to_have_count(0)
    expect(frank.get_by_text("you cannot approve it")).to_be_visible()
    shot(frank, "28-frank-own-request-no-approve-button")
    token = next(c["value"] for c in frank.context.cookies() if c["name"] == "csrftoken")
    forged = frank.request.post(
        f"/requests/{request.pk}/approve/", form={"csrfmiddlewaretoken": token}, headers={"Referer": frank.url}
    )
    assert forged.status == 403
    assert "can never approve their own request" in forged.text()
    assert not Approval.objects.filter(request=request).exists()


def _filed_request(*, requester):
    from django.contrib.auth import get_user_model

    from governance import services
    from tests.governance.factories import dataset_register_adult

    steward = get_user_model().objects.get(username="steward")
    if not steward.datasets.exists():
        dataset_register_adult(steward=steward)
    return services.access_request_create(
        actor=get_user_model().objects.get(username=requester),
        dataset_name="adult",
        purpose_name="internal-analytics",
        epsilon="1",
        delta="1e-6",
        n_rows=500,
    )
