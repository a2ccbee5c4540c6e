"""E-mail through Django's backend: a filed request reaches the approvers, decisions reach the
requester, only after the transaction commits, and nothing computed from the data is in them."""

from __future__ import annotations

import pytest
from django.core import mail
from django.db import transaction

from governance.services import access_request_approve, access_request_reject
from tests.governance.factories import PurposeFactory, dataset_register_adult, request_file

pytestmark = pytest.mark.django_db


@pytest.fixture
def filed(cast, adult_schema, django_capture_on_commit_callbacks):
    PurposeFactory()
    dataset_register_adult(steward=cast.steward, schema=adult_schema)
    with django_capture_on_commit_callbacks(execute=True):
        return request_file(requester=cast.requester)


def test_a_filed_request_reaches_every_approver_and_not_the_requester(cast, filed):
    (message,) = mail.outbox
    assert sorted(message.to) == ["approver@example.org", "second_approver@example.org"]
    assert message.subject == f"Synthgate: request #{filed.pk} submitted"
    assert f"Request #{filed.pk} (adult, purpose research) by requester awaits your approval." in message.body
    assert f"/requests/{filed.pk}/" in message.body


def test_the_requester_hears_of_the_approval_and_of_a_rejection(cast, filed, django_capture_on_commit_callbacks):
    mail.outbox.clear()
    with django_capture_on_commit_callbacks(execute=True):
        access_request_approve(actor=cast.approver, request_id=filed.pk)
    assert mail.outbox == []  # one of two approvals: still submitted, nobody to tell
    with django_capture_on_commit_callbacks(execute=True):
        access_request_approve(actor=cast.second_approver, request_id=filed.pk)
    (approved,) = mail.outbox
    assert approved.to == ["requester@example.org"] and "was approved" in approved.body

    other = request_file(requester=cast.requester, epsilon="0.5")
    mail.outbox.clear()
    with django_capture_on_commit_callbacks(execute=True):
        access_request_reject(actor=cast.approver, request_id=other.pk, reason="purpose does not cover this use")
    (rejected,) = mail.outbox
    assert rejected.to == ["requester@example.org"] and "was rejected" in rejected.body
    # The approver's reason, as the request's page shows it, and where to look.
    assert "Reason: purpose does not cover this use" in rejected.body and f"/requests/{other.pk}/" in rejected.body
    assert "0.5" not in rejected.body and "2,000" not in rejected.body


def test_a_change_that_rolls_back_sends_nothing(cast, filed, django_capture_on_commit_callbacks):
    access_request_approve(actor=cast.approver, request_id=filed.pk)
    mail.outbox.clear()

    with (
        django_capture_on_commit_callbacks(execute=True) as callbacks,
        pytest.raises(RuntimeError),
        transaction.atomic(),
    ):
        access_request_approve(actor=cast.second_approver, request_id=filed.pk)
        raise RuntimeError("the surrounding work failed")

    assert callbacks == [] and mail.outbox == []
    filed.refresh_from_db()
    assert filed.state == "submitted"
