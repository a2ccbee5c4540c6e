"""The schema page (`/datasets/NAME/schema/`) declares a datetime's released resolution and a float's
grid step, as `synthgate dataset declare --resolution/--step` does, with every mistake shown at once
next to its column's field in the user's words (tests/governance/test_declare_dates_and_grids.py
covers ISO bounds and the calendar)."""

from __future__ import annotations

import pytest

from governance.models import AuditEvent, Dataset
from governance.services import dataset_register

pytestmark = pytest.mark.django_db

SCHEMA = {
    "columns": [
        {"name": "when", "type": "datetime"},
        {"name": "score", "type": "float"},
        {"name": "visits", "type": "integer"},
    ]
}


@pytest.fixture
def clinic(cast, tmp_path):
    rows = [f"2024-01-{1 + i % 28:02d} {i % 24:02d}:30:00,{(i % 9) * 0.5},{i % 7}" for i in range(120)]
    path = tmp_path / "clinic.csv"
    path.write_text("when,score,visits\n" + "\n".join(rows) + "\n")
    dataset_register(
        actor=cast.steward,
        name="clinic",
        path=path,
        filename=path.name,
        epsilon_cap="10",
        delta_cap="1e-4",
        schema=SCHEMA,
    )


def _post(cast, login, **fields):
    data = {f"c{index}-column": column["name"] for index, column in enumerate(SCHEMA["columns"])}
    return login(cast.steward).post("/datasets/clinic/schema/", {**data, **fields})


def test_the_schema_page_offers_resolution_on_datetimes_and_step_on_floats_only(cast, clinic, login):
    page = login(cast.steward).get("/datasets/clinic/schema/").content.decode()
    assert 'name="c0-resolution"' in page and 'name="c1-resolution"' not in page
    assert 'name="c1-step"' in page and 'name="c0-step"' not in page and 'name="c2-step"' not in page
    assert "whole hours" in page


def test_a_steward_declares_a_resolution_and_a_step_from_the_schema_page(cast, clinic, login):
    response = _post(cast, login, **{"c0-resolution": "hour", "c1-step": "0.5"})
    assert response.status_code == 302, response.context and [f.errors for _, f in response.context["forms"]]
    columns = {column["name"]: column for column in Dataset.objects.get(name="clinic").versions.get().schema["columns"]}
    assert columns["when"]["resolution"] == "hour" and columns["score"]["step"] == 0.5
    assert AuditEvent.objects.filter(action="dataset_version.declare").count() == 2

    removed = _post(cast, login, **{"c0-resolution": "-", "c1-step": "-"})
    assert removed.status_code == 302
    columns = {column["name"]: column for column in Dataset.objects.get(name="clinic").versions.get().schema["columns"]}
    assert "resolution" not in columns["when"] and "step" not in columns["score"]


def test_every_mistake_in_resolution_and_step_is_shown_at_once_and_nothing_is_declared(cast, clinic, login):
    response = _post(
        cast,
        login,
        **{
            "c0-step": "2",
            "c1-step": "half",
            "c2-step": "0.5",
            "c2-resolution": "day",
            "c2-calendar": "weekdays",
            "c0-resolution": "week",
        },
    )
    assert response.status_code == 400
    when, score, visits = (form.errors for _, form in response.context["forms"])
    assert when["step"] == ["Only a column of decimal (float) numbers takes a step; 'when' holds datetime values."]
    assert "Select a valid choice" in when["resolution"][0]
    assert score["step"] == ["Write the step as a number, such as 0.5 or 2.5; 'half' is not one."]
    assert visits["step"] == [
        "Only a column of decimal (float) numbers takes a step; 'visits' holds integer values (whole numbers already)."
    ]
    assert visits["resolution"] == ["Only a date-and-time column has a resolution; 'visits' holds integer values."]
    assert visits["calendar"] == ["Only a date-and-time column has a calendar; 'visits' holds integer values."]
    for bad in ("0", "-0.5", "inf"):
        refused = _post(cast, login, **{"c1-step": bad})
        assert refused.status_code == 400
        (_, form) = refused.context["forms"][1]
        assert form.errors["step"] == [f"The step must be a number above zero, such as 0.5; {bad!r} is not."]
    assert not AuditEvent.objects.filter(action="dataset_version.declare").exists()
    assert "step" not in Dataset.objects.get(name="clinic").versions.get().schema["columns"][1]


def test_a_form_mistake_and_the_services_mistakes_are_named_in_one_answer(cast, clinic, login):
    """A step that is not a number (the form's check) beside bounds the service refuses in two other
    columns: one send names all three, each at its column, and nothing is declared."""
    response = _post(cast, login, **{"c1-step": "half", "c2-minimum": "none", "c0-minimum": "soon"})
    assert response.status_code == 400
    when, score, visits = (form.errors for _, form in response.context["forms"])
    assert score["step"] == ["Write the step as a number, such as 0.5 or 2.5; 'half' is not one."]
    # Each beside the field it concerns, in the form's words (the schema's "min" is "Public minimum").
    assert visits["minimum"] == ["Public minimum must be a finite number."]
    assert when["minimum"] == ["Public minimum must be an ISO 8601 date or time."]
    assert response.context["error"] is None  # every mistake sits at its column
    assert not AuditEvent.objects.filter(action="dataset_version.declare").exists()

    # The same two service mistakes without a form mistake: still both in one answer.
    response = _post(cast, login, **{"c2-minimum": "none", "c0-minimum": "soon"})
    assert response.status_code == 400
    when, _, visits = (form.errors for _, form in response.context["forms"])
    assert visits["minimum"] == ["Public minimum must be a finite number."]
    assert when["minimum"] == ["Public minimum must be an ISO 8601 date or time."]
    assert not AuditEvent.objects.filter(action="dataset_version.declare").exists()
