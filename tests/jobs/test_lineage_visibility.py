"""A synthetic version's lineage is readable by its requester, but not the statistics of the real
rows it records for stewards: the training rows' exact class shares beside a rebalanced release."""

from __future__ import annotations

import pytest

from governance.models import VersionKind
from synth_engine.models import JobStatus
from synth_engine.services import generation_job_start
from tests.jobs.conftest import approved_request_create
from tests.jobs.test_api_releases import client_as

pytestmark = pytest.mark.django_db(transaction=True)


def test_a_requester_reads_the_lineage_without_the_real_class_shares(cast, adult_schema):
    request = approved_request_create(cast, adult_schema, rebalance={"column": "income", "shares": {">50K": 0.5}})
    job = generation_job_start(actor=cast.requester, request_id=request.pk)
    job.refresh_from_db()
    assert job.status == JobStatus.SUCCEEDED, job.error
    exact = job.output_version.lineage["rebalance"]["real_shares"]
    assert set(exact) == {"<=50K", ">50K"} and 0 < exact[">50K"] < 0.5  # the stored record keeps them

    def synthetic(user) -> dict:
        versions = client_as(user).get("/api/datasets/adult/versions/").json()["results"]
        (found,) = [v for v in versions if v["kind"] == VersionKind.SYNTHETIC]
        return found["lineage"]

    requester, steward, auditor = synthetic(cast.requester), synthetic(cast.steward), synthetic(cast.auditor)
    assert "real_shares" not in requester["rebalance"]
    assert requester["rebalance"]["released_shares"] == steward["rebalance"]["released_shares"]  # synthetic: public
    assert requester["rebalance"]["target_shares"] == {">50K": 0.5}
    assert str(exact[">50K"]) not in str(requester)
    assert steward["rebalance"]["real_shares"] == auditor["rebalance"]["real_shares"] == exact
    one = client_as(cast.requester).get(f"/api/datasets/adult/versions/{job.output_version.number}/").json()
    assert one["lineage"] == requester
    # a real version is named by its keyed fingerprint, the release by its sha256
    hashes = {
        v["kind"]: v["content_hash"]
        for v in client_as(cast.requester).get("/api/datasets/adult/versions/").json()["results"]
    }
    assert hashes[VersionKind.SYNTHETIC] == job.output_version.content_hash
    for kind, version in (("source", request.source_version), ("train", job.train_version)):
        assert hashes[kind].startswith("hmac-sha256:") and version.content_hash not in str(hashes), kind
    assert (
        requester["source_hash"] == hashes["source"] and steward["source_hash"] == request.source_version.content_hash
    )


def test_the_sizes_a_referenced_tables_job_fetched_are_for_stewards_only(cast):
    from governance.models import DatasetVersion
    from governance.permissions import lineage_visible

    counts = {"engine": "postgresql", "where": "table 'loans'", "audit_sample_rows": {"train": 1549, "holdout": 388}}
    version = DatasetVersion(kind=VersionKind.SYNTHETIC, lineage={"counts": counts, "seed": None})
    assert lineage_visible(cast.requester, version) == {
        "counts": {"engine": "postgresql", "where": "table 'loans'"},
        "seed": None,
    }
    assert lineage_visible(None, version)["counts"] == {"engine": "postgresql", "where": "table 'loans'"}
    assert lineage_visible(cast.approver, version)["counts"] == counts
    assert version.lineage["counts"] == counts  # the record itself is unchanged
