"""The audit and release pages on a real run: generate (in-process), read the audit with its
charts, accept the risk of a failed audit, release, download, verify, revoke."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from audits.models import AuditStatus, Download, Release
from governance.models import RequestState
from tests.jobs.conftest import approved_request_create, reasons_for

pytestmark = pytest.mark.django_db(transaction=True)


def test_generate_audit_accept_release_download_and_revoke(cast, adult_schema, login):
    request = approved_request_create(cast, adult_schema, rows=1000, seed=7)
    requester, approver, other = login(cast.requester), login(cast.approver), login(cast.other_requester)

    started = requester.post(f"/requests/{request.pk}/generate/")
    job = request.jobs.get()
    assert started["Location"] == f"/jobs/{job.pk}/"
    progress = requester.get(f"/jobs/{job.pk}/progress/").json()
    assert progress["status"] == "succeeded" and progress["progress"] == 100 and progress["finished"]
    run = request.audit_runs.get()
    assert progress["audit"] == {"id": run.pk, "status": run.status}

    # The requester reads the recipient view (no charts of the real rows); an approver the full page.
    recipient_page = requester.get(f"/audits/{run.pk}/").content.decode()
    assert recipient_page.count('<img src="data:image/svg+xml;base64,') == 0
    assert (
        "Positive controls" in recipient_page
        and "values only for the checks of the released rows alone" in recipient_page
    )
    audit_page = approver.get(f"/audits/{run.pk}/").content.decode()
    assert audit_page.count('<img src="data:image/svg+xml;base64,') >= 4
    for text in (
        "Positive controls",
        "Fidelity",
        "Membership",
        "Bias metrics by protected column",
        "race (White)",
        "tvd 1way",
    ):
        assert text in audit_page
    assert other.get(f"/audits/{run.pk}/").status_code == 404

    request.refresh_from_db()
    if run.status == AuditStatus.FAILED:
        assert request.state == RequestState.BLOCKED
        assert ">Accept the risk</button>" not in requester.get(f"/requests/{request.pk}/").content.decode()
        fields = {f"accept_risk-{n}": why for n, why in reasons_for(run, "small sample; acceptable here").items()}
        assert requester.post(f"/requests/{request.pk}/accept-risk/", fields).status_code == 403
        missing = approver.post(f"/requests/{request.pk}/accept-risk/", {})
        assert missing.status_code == 400
        first = run.failed_checks[0]
        assert (
            missing.context["forms"]["accept_risk"]
            .errors[first][0]
            .startswith(f"The reason for accepting {first!r} is too short")
        )
        approver.post(f"/requests/{request.pk}/accept-risk/", fields)
        request.refresh_from_db()
    assert request.state == RequestState.READY, run.status

    assert requester.post(f"/requests/{request.pk}/release/").status_code == 403  # a requester cannot release
    released = approver.post(f"/requests/{request.pk}/release/")
    release = Release.objects.get(request=request)
    assert released["Location"] == f"/releases/{release.pk}/"

    page = requester.get(f"/releases/{release.pk}/").content.decode()
    assert "Signature intact, valid and trusted" in page and release.release_datasheet.sha256 in page
    # A preview and column profiles of the synthetic rows the release serves (never of the real rows).
    profiles = requester.get(f"/releases/{release.pk}/").context["profiles"]
    assert "Preview of the synthetic rows" in page and profiles.names[0] == "age" and profiles.synthetic
    assert len(profiles.head) == 10 and profiles.profile["rows"] == release.version.n_rows == 1000
    assert [c["name"] for c in profiles.columns] == profiles.names and page.count("<svg") == len(profiles.names)
    assert "Column profiles (synthetic rows)" in page
    # On the dataset page the requester sees the profile of the release made to them, labelled as such.
    dataset_page = requester.get(f"/datasets/{request.dataset.name}/")
    assert dataset_page.context["profiles"].release == release and dataset_page.context["profiles"].synthetic
    assert f"Column profiles of release #{release.pk} (synthetic rows)" in dataset_page.content.decode()
    data = requester.get(f"/releases/{release.pk}/download/data/")
    assert data.status_code == 200 and b"".join(data.streaming_content).startswith(b"age,workclass,")
    assert data["Content-Disposition"].startswith('attachment; filename="adult-release-')
    sheet = requester.get(f"/releases/{release.pk}/download/datasheet/")
    assert b"".join(sheet.streaming_content).startswith(b"%PDF")
    assert list(Download.objects.values_list("kind", "channel", "user__username")) == [
        ("data", "web", "requester"),
        ("datasheet", "web", "requester"),
    ]
    assert requester.get(f"/releases/{release.pk}/").content.decode().count("<td>requester</td>") == 2
    assert other.get(f"/releases/{release.pk}/").status_code == 404
    assert other.get(f"/releases/{release.pk}/download/data/").status_code == 404
    assert Download.objects.count() == 2

    Release.objects.filter(pk=release.pk).update(expires_at=timezone.now() + timedelta(days=5), stale_at=timezone.now())
    home = requester.get("/").content.decode()
    assert "Releases expiring within 14 days" in home and "Stale releases (drift found)" in home

    refused = requester.post(f"/releases/{release.pk}/revoke/", {"revoke-reason": "mine"})
    assert refused.status_code == 403 and "Only a steward or an approver can revoke" in refused.content.decode()
    empty = approver.post(f"/releases/{release.pk}/revoke/", {"revoke-reason": ""})
    assert empty.status_code == 400 and empty.context["revoke_form"].errors["reason"]
    approver.post(f"/releases/{release.pk}/revoke/", {"revoke-reason": "consent withdrawn"})
    release.refresh_from_db()
    assert release.revoked_at is not None and release.revoke_reason == "consent withdrawn"
    after = requester.get(f"/releases/{release.pk}/download/data/", follow=True)
    assert "was revoked" in after.content.decode() and Download.objects.count() == 2

    timeline = login(cast.auditor).get(f"/requests/{request.pk}/").content.decode()
    for action in (
        "job.create",
        "dataset_version.create",
        "job.succeed",
        "audit.start",
        "datasheet.sign",
        "release.create",
        "release.download",
        "release.revoke",
    ):
        assert action in timeline
