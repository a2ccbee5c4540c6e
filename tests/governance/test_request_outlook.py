"""Before filing: the predicted audit (issue 11 item 10, issue 13 §4) and the refusal of sizes at
which the audit could only end inconclusive (issue 15)."""

from __future__ import annotations

import io
import json

import pytest
from django.core.management import call_command
from rest_framework.test import APIClient

from core.errors import ValidationError
from governance.models import AuditEvent, DataRequest
from governance.services import access_request_outlook
from tests.governance.factories import PurposeFactory, dataset_register_adult, request_file


@pytest.fixture
def adult(cast, adult_schema):
    dataset_register_adult(steward=cast.steward, schema=adult_schema)
    return PurposeFactory()


def test_filing_refuses_a_size_the_audit_cannot_decide_and_writes_nothing(cast, adult):
    requests, events = DataRequest.objects.count(), AuditEvent.objects.count()
    with pytest.raises(ValidationError) as refused:
        request_file(requester=cast.requester, n_rows=20)
    assert refused.value.extra["field"] == "n_rows"
    minimum = refused.value.extra["minimum_rows"]
    assert 20 < minimum <= 200
    assert f"at least {minimum:,} synthetic rows" in refused.value.message
    assert (DataRequest.objects.count(), AuditEvent.objects.count()) == (requests, events)
    assert request_file(requester=cast.requester, n_rows=minimum).n_rows == minimum


def test_outlook_predicts_fidelity_against_the_purpose_thresholds(cast, adult):
    outlook = access_request_outlook(
        actor=cast.requester, dataset_name="adult", purpose_name="research", epsilon="1", delta="1e-6", n_rows=1000
    )
    assert outlook["membership"]["decidable"] is True
    assert set(outlook["fidelity"]) == {"tvd_1way", "tvd_2way", "association_difference"}
    tvd = outlook["fidelity"]["tvd_1way"]
    assert tvd["purpose_threshold"] == 0.1
    assert tvd["calibrated_limit"] >= tvd["purpose_threshold"]
    assert tvd["predicted_value"] > 0
    assert outlook["predicted_verdict"] in ("pass", "fail")


def test_outlook_warns_when_the_noise_will_fail_the_purpose(cast, adult):
    noisy = access_request_outlook(
        actor=cast.requester, dataset_name="adult", purpose_name="research", epsilon="0.05", delta="1e-6", n_rows=30
    )
    assert noisy["predicted_verdict"] in ("fail", "inconclusive")
    assert any("synthetic rows" in warning for warning in noisy["warnings"])


def test_outlook_api_and_cli_give_the_same_prediction(cast, adult):
    client = APIClient()
    client.force_authenticate(cast.requester)
    body = {"dataset": "adult", "purpose": "research", "epsilon": "1", "delta": "1e-6", "n_rows": 500}
    response = client.post("/api/requests/outlook/", body, format="json")
    assert response.status_code == 200, response.content
    assert response.json()["membership"]["minimum_rows"] == response.json()["membership"]["minimum_rows"] > 0
    stdout = io.StringIO()
    args = ["--dataset", "adult", "--purpose", "research", "--epsilon", "1", "--delta", "1e-6", "--rows", "500"]
    call_command("request", "outlook", *args, as_user=cast.requester.username, json=True, stdout=stdout)
    assert json.loads(stdout.getvalue()) == response.json()
    text = io.StringIO()
    call_command("request", "outlook", *args, as_user=cast.requester.username, stdout=text)
    assert "Predicted audit of a clean release" in text.getvalue()
    assert "tvd_1way" in text.getvalue()


def test_request_form_previews_the_audit_without_filing(cast, adult, client):
    client.force_login(cast.requester)
    form = {
        "dataset": "adult",
        "purpose": "research",
        "epsilon": "1",
        "delta": "1e-6",
        "n_rows": "500",
        "generator": "mst",
        "recipient_kind": "internal",
        "preview": "1",
    }
    before = DataRequest.objects.count()
    page = client.post("/requests/new/", form)
    assert page.status_code == 200
    text = page.content.decode()
    assert "What the audit will probably say" in text
    assert "Membership checks:" in text
    assert DataRequest.objects.count() == before


def test_an_outlook_without_a_preview_predicts_no_verdict_and_states_no_size_to_a_requester(cast, adult):
    """At a budget the generator refuses on the surrogate, the outlook must not say "pass", and
    a requester must not read the refusal's figures: they are those of the surrogate of the
    private training size, with a fixed seed (two budgets would give the size back)."""
    fields = {"dataset_name": "adult", "purpose_name": "research", "delta": "1e-6", "n_rows": 1000}
    seen = {}
    for epsilon in ("0.01", "0.02"):
        outlook = access_request_outlook(actor=cast.requester, epsilon=epsilon, **fields)
        assert outlook["prediction_error"], "the surrogate should refuse a budget this small"
        assert outlook["predicted_verdict"] == "unknown"
        assert not any(character.isdigit() for character in outlook["prediction_error"])
        seen[epsilon] = outlook["prediction_error"]
    assert seen["0.01"] == seen["0.02"]
    steward = access_request_outlook(actor=cast.steward, epsilon="0.01", **fields)
    assert steward["predicted_verdict"] == "unknown"
    assert "rows (a DP estimate)" in steward["prediction_error"]
