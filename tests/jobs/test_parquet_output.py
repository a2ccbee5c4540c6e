"""A request filed for Parquet output: the job writes its synthetic table as Parquet, the audit
(its streamed sample included) reads the same rows and gives the same verdict as the CSV job of
the same seed, the release downloads as Parquet (API, CLI) with a datasheet naming its form, rows
and checksum, a drift comparison reads it; an unknown format is refused at filing, nothing filed."""

from __future__ import annotations

import hashlib
import io

import pandas as pd
import pyarrow.parquet as pq
import pytest
from django.core.management import call_command

from audits.facts import datasheet_facts
from audits.models import Download
from audits.services import datasheet_verify, release_create, release_download, risk_accept
from audits.services.drift_audits import DriftReads, drift_figures
from audits.services.runs import version_frame
from core.errors import ValidationError
from dashboard.profiles import version_profile
from governance.models import DataRequest
from governance.storage import version_storage
from synth_engine.models import JobStatus
from synth_engine.services import generation_job_start
from tests.governance.factories import request_file
from tests.governance.test_cli import synthgate
from tests.jobs.conftest import approved_request_create, reasons_for
from tests.jobs.test_api_releases import assert_error, client_as

pytestmark = pytest.mark.django_db(transaction=True)


def _released(cast, adult_schema, output_format: str):
    request = approved_request_create(cast, adult_schema, rows=1_600, seed=11, output_format=output_format)
    job = generation_job_start(actor=cast.requester, request_id=request.pk)
    job.refresh_from_db()
    assert job.status == JobStatus.SUCCEEDED, job.error
    run = request.audit_runs.get()
    if run.failed_checks:
        risk_accept(actor=cast.second_approver, request_id=request.pk, reasons=reasons_for(run, "fidelity is enough"))
    return job, run, release_create(actor=cast.approver, request_id=request.pk)


def test_a_parquet_job_is_audited_released_and_downloaded_as_the_csv_job_of_the_same_seed(
    cast, adult_schema, settings, tmp_path
):
    settings.SYNTHGATE_SAMPLE_CHUNK_ROWS = 500  # four chunks: four row groups
    settings.SYNTHGATE_AUDIT_SYNTHETIC_ROWS = 1_000  # the audit's synthetic sample is streamed from the file
    csv_job, csv_run, csv_release = _released(cast, adult_schema, "csv")
    job, run, release = _released(cast, adult_schema, "parquet")
    version, csv_version = job.output_version, csv_job.output_version
    storage = version_storage()

    assert version.storage_key.endswith(".parquet") and csv_version.storage_key.endswith(".csv")
    data = storage.read_bytes(version.storage_key)
    assert data[:4] == b"PAR1" and hashlib.sha256(data).hexdigest() == version.content_hash
    assert (version.n_rows, version.size_bytes) == (1_600, len(data))
    metadata = pq.ParquetFile(io.BytesIO(data)).metadata
    assert [metadata.row_group(i).num_rows for i in range(metadata.num_row_groups)] == [500, 500, 500, 100]
    # the same seed draws the same rows; each form reads back to the same frame
    pd.testing.assert_frame_equal(version_frame(version), version_frame(csv_version))

    assert run.audit_sample_rows["synthetic"] == csv_run.audit_sample_rows["synthetic"] == 1_000
    assert (run.status, run.failed_checks) == (csv_run.status, csv_run.failed_checks)
    values = dict(run.checks.values_list("name", "value"))
    csv_values = dict(csv_run.checks.values_list("name", "value"))
    assert values.keys() == csv_values.keys()
    assert {name for name, value in values.items() if value is None} == {
        name for name, value in csv_values.items() if value is None
    }  # a check without a value (not decidable on this split) has none in both
    decided = {name: value for name, value in values.items() if value is not None}
    assert decided == pytest.approx({name: csv_values[name] for name in decided}, rel=1e-9, abs=1e-12)

    settings.SYNTHGATE_PROFILE_SAMPLE_ROWS = 500  # the dashboard's column profile streams its sample too
    profile, csv_profile = version_profile(version), version_profile(csv_version)
    assert profile["sampled"] and profile["n_rows"] == csv_profile["n_rows"] == 1_600
    assert (profile["names"], profile["head"]) == (csv_profile["names"], csv_profile["head"])

    facts = datasheet_facts(run)
    assert facts.synthetic.format.startswith("Parquet") and datasheet_facts(csv_run).synthetic.format == "CSV (UTF-8)"
    assert (facts.synthetic.hash, facts.synthetic.n_rows) == (version.content_hash, 1_600)
    assert facts.dictionary == datasheet_facts(csv_run).dictionary  # counted as the Parquet file streams by
    sheet = release_download(actor=cast.requester, release_id=release.pk, kind="datasheet")
    assert datasheet_verify(pdf_bytes=sheet.read_bytes(), release_id=release.pk)["ok"]

    response = client_as(cast.requester).get(f"/api/releases/{release.pk}/download/", {"kind": "data"})
    assert response.status_code == 200
    assert response["Content-Type"] == "application/vnd.apache.parquet"
    assert f'filename="release-{release.pk}-synthetic.parquet"' in response["Content-Disposition"]
    assert b"".join(response.streaming_content) == data
    csv_response = client_as(cast.requester).get(f"/api/releases/{csv_release.pk}/download/", {"kind": "data"})
    assert csv_response["Content-Type"] == "text/csv"

    stdout = io.StringIO()
    call_command(
        "release",
        "download",
        str(release.pk),
        "--kind",
        "data",
        "--as",
        "requester",
        "--output",
        str(tmp_path),
        stdout=stdout,
    )
    assert (tmp_path / f"release-{release.pk}-synthetic.parquet").read_bytes() == data
    assert Download.objects.filter(release=release, kind="data").count() == 2

    train = version_frame(run.train_version)
    # the release is above SYNTHGATE_AUDIT_SYNTHETIC_ROWS: a drift re-audit streams its sample from the file
    drift, csv_drift = (
        drift_figures(release=r, reference=train, current=train, reads=DriftReads(seed=5))
        for r in (release, csv_release)
    )
    assert drift["compared_rows"] == csv_drift["compared_rows"] and drift["compared_rows"]["synthetic"] == 1_000
    assert drift["stale"] == csv_drift["stale"]
    assert [c["value"] for c in drift["release_checks"]] == pytest.approx(
        [c["value"] for c in csv_drift["release_checks"]], rel=1e-9
    )


def test_an_unknown_output_format_is_refused_at_filing_and_nothing_is_filed(cast, adult_schema):
    approved_request_create(cast, adult_schema)  # the dataset, its purpose and one request
    before = DataRequest.objects.count()
    with pytest.raises(ValidationError, match="Output format must be one of csv, parquet") as refused:
        request_file(requester=cast.requester, n_rows=400, output_format="xlsx")
    assert refused.value.extra["field"] == "output_format"
    body = assert_error(
        client_as(cast.requester).post(
            "/api/requests/",
            {
                "dataset": "adult",
                "purpose": "research",
                "epsilon": "1",
                "delta": "1e-6",
                "n_rows": 400,
                "output_format": "xlsx",
            },
            format="json",
        ),
        400,
    )
    assert "output_format" in str(body)
    refused_cli = synthgate(
        "request",
        "create",
        "--dataset",
        "adult",
        "--purpose",
        "research",
        "--epsilon",
        "1",
        "--delta",
        "1e-6",
        "--rows",
        "400",
        "--output-format",
        "xlsx",
        "--as",
        "requester",
    )
    assert refused_cli.code != 0 and "csv, parquet" in refused_cli.message + refused_cli.stderr
    assert DataRequest.objects.count() == before
    filed = request_file(requester=cast.requester, n_rows=400, output_format="parquet")
    assert filed.output_format == "parquet"
    shown = client_as(cast.requester).get(f"/api/requests/{filed.pk}/").json()
    assert shown["output_format"] == "parquet"
