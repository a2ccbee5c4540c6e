"""People, roles and purposes in the dashboard: the CLI's services, logged, four-eyes kept."""

from __future__ import annotations

import io

import pytest
from django.core.management import call_command

from governance.models import AuditEvent, Purpose, Role

pytestmark = pytest.mark.django_db


def test_a_steward_creates_a_user_and_changes_roles_but_never_their_own(cast, login):
    client = login(cast.steward)

    created = client.post(
        "/people/", {"new-username": "erin", "new-email": "erin@example.org", "new-roles": ["requester"]}
    )
    assert created.status_code == 302
    erin = type(cast.steward).objects.get(username="erin")
    assert [group.name for group in erin.groups.all()] == ["requester"]

    changed = client.post("/people/", {"username": "erin", "roles": ["requester", "approver"]})
    assert changed.status_code == 302
    assert sorted(group.name for group in erin.groups.all()) == ["approver", "requester"]
    event = AuditEvent.objects.get(action="user.roles")
    assert (event.actor, event.channel, event.before, event.after["roles"]) == (
        cast.steward,
        "web",
        {"roles": ["requester"]},
        ["approver", "requester"],
    )

    own = client.post("/people/", {"username": "steward", "roles": ["steward", "approver"]})
    assert own.status_code == 403 and "another steward" in own.content.decode()
    assert [group.name for group in cast.steward.groups.all()] == ["steward"]
    page = client.get("/people/").content.decode()
    assert "another steward changes your roles" in page and "Create a user" in page
    # Every role is offered in each role editor (not only the steward's own, which base.html names `roles`).
    editors = page.count(">Save roles</button>")
    assert editors == 6 and all(page.count(f'<option value="{role}"') == editors for role in Role.values)


def test_the_people_page_shows_every_mistake_of_a_new_user_and_is_read_only_for_auditors(cast, login):
    refused = login(cast.steward).post("/people/", {"new-username": "", "new-email": "not-an-address"})
    assert refused.status_code == 400
    assert set(refused.context["create_form"].errors) == {"username", "email", "roles"}

    auditor = login(cast.auditor)
    page = auditor.get("/people/").content.decode()
    assert "steward" in page and "Create a user" not in page and "Save roles" not in page
    assert auditor.post("/people/", {"username": "requester", "roles": ["approver"]}).status_code == 403
    assert login(cast.requester).get("/people/").status_code == 403


def test_a_steward_defines_a_purpose_that_the_cli_then_lists(cast, login):
    client = login(cast.steward)
    bad = client.post("/purposes/", {"name": "bad name", "max_epsilon": "-1", "approvals_required": "0"})
    assert bad.status_code == 400 and not Purpose.objects.filter(name="bad name").exists()
    # Every mistake at once, in the form's words (not the service's field names).
    errors = bad.context["form"].errors
    assert set(errors) >= {"name", "max_epsilon", "approvals_required", "allowed_recipients"}
    assert errors["max_epsilon"] == ["Largest ε one request may ask for must be greater than 0; got -1."]
    assert errors["approvals_required"][0].startswith("Approvals needed (distinct approvers) must be 1 or 2")

    made = client.post(
        "/purposes/",
        {
            "name": "fraud-research",
            "max_epsilon": "2",
            "approvals_required": "2",
            "allowed_recipients": ["internal"],
            "release_days": "30",
        },
    )
    assert made.status_code == 302
    assert AuditEvent.objects.filter(action="purpose.create", channel="web", actor=cast.steward).exists()
    stdout = io.StringIO()
    call_command("purpose", "list", "--as", "requester", stdout=stdout)
    assert "fraud-research" in stdout.getvalue()
    assert login(cast.requester).post("/purposes/", {"name": "x", "max_epsilon": "1"}).status_code == 403
    assert "fraud-research" in login(cast.requester).get("/purposes/").content.decode()


def test_the_cli_changes_roles_through_the_same_service(cast):
    stdout = io.StringIO()
    call_command(
        "user", "roles", "requester", "--role", "requester", "--role", "auditor", "--as", "steward", stdout=stdout
    )
    assert "requester now holds: auditor, requester" in stdout.getvalue()
    assert AuditEvent.objects.get(action="user.roles").channel == "cli"
