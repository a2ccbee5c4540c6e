"""The audit API: runs and their checks per role, on-demand and external audits, the signed
datasheet and its public verification."""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pytest
from django.conf import settings
from django.core.files.uploadedfile import SimpleUploadedFile

from audits.models import AuditKind, AuditRun, AuditStatus, Datasheet
from governance.models import DatasetVersion, RequestState, VersionKind
from governance.services import dataset_register
from synth_engine.generators import get_generator
from synth_engine.services import generation_job_start
from tests.governance.factories import FIXTURES, UserFactory
from tests.jobs.conftest import approved_request_create
from tests.jobs.test_api_releases import assert_error, client_as, iso

pytestmark = pytest.mark.django_db(transaction=True)

PRIVACY_CATEGORIES = {"reidentification", "membership"}
CHECK_FIELDS = {
    "name",
    "category",
    "value",
    "threshold",
    "direction",
    "verdict",
    "passed",
    "blocking",
    "gating",
    "baseline",
    "ci_low",
    "ci_high",
    "skipped_reason",
    "seconds",
    "details",
    "chart",
}


@dataclass
class ExternalFiles:
    """A dataset registered from 1,200 training rows, the other 800 as holdout, and two synthetic
    tables made with MST from the training rows: clean, and leaky (10 % verbatim training rows)."""

    dataset: str
    holdout: Path
    clean: Path
    leaky: Path


def external_files_create(*, steward, schema, folder: Path) -> ExternalFiles:
    source = pd.read_csv(FIXTURES / "adult_2000.csv")
    train, holdout = source.iloc[:1200], source.iloc[1200:]
    paths = {name: folder / f"{name}.csv" for name in ("train", "holdout", "clean", "leaky")}
    train.to_csv(paths["train"], index=False)
    holdout.to_csv(paths["holdout"], index=False)
    dataset_register(
        actor=steward,
        name="adult-external",
        path=paths["train"],
        filename="train.csv",
        epsilon_cap="10",
        delta_cap="1e-4",
        schema=schema,
    )
    synthetic = get_generator("mst").fit(train, schema, 1.0, 1e-6, random_state=3).sample(len(train))
    synthetic.to_csv(paths["clean"], index=False)
    copies = train.sample(frac=0.10, random_state=1)
    pd.concat([synthetic.iloc[len(copies) :], copies]).to_csv(paths["leaky"], index=False)
    return ExternalFiles("adult-external", paths["holdout"], paths["clean"], paths["leaky"])


def upload(path: Path) -> SimpleUploadedFile:
    return SimpleUploadedFile(path.name, path.read_bytes(), content_type="text/csv")


def run_summary(run: AuditRun) -> dict:
    return {
        "id": run.pk,
        "kind": run.kind,
        "status": run.status,
        "blocked": run.blocked,
        "failed_checks": run.failed_checks,
        "dataset": run.version.dataset.name,
        "version": run.version_id,
        "version_number": run.version.number,
        "version_hash": run.version.content_hash,
        "request": run.request_id,
        "seed": run.seed,
        "error": run.error,
        "created_at": iso(run.created_at),
        "finished_at": iso(run.finished_at),
    }


def run_detail(run: AuditRun) -> dict:
    sheet = Datasheet.objects.get(run=run)
    checks = [
        {
            "name": c.name,
            "category": c.category,
            "value": c.value,
            "threshold": c.threshold,
            "direction": c.direction,
            "verdict": c.verdict,
            "passed": c.passed,
            "blocking": c.blocking,
            "gating": c.gating,
            "baseline": c.baseline,
            "ci_low": c.ci_low,
            "ci_high": c.ci_high,
            "skipped_reason": c.skipped_reason,
            "seconds": c.seconds,
            "details": c.details,
            "chart": c.chart,
        }
        for c in run.checks.all()
    ]
    return {
        **run_summary(run),
        "train_version": run.train_version_id,
        "holdout_version": run.holdout_version_id,
        "thresholds": run.thresholds,
        "timings": run.timings,
        "requested_by": run.requested_by.username if run.requested_by_id else None,
        "checks": checks,
        "controls": run.controls,
        "controls_caught": all(c["caught"] for c in run.controls),
        "datasheet": {
            "sha256": sheet.sha256,
            "signer": sheet.signer,
            "signed_at": iso(sheet.signed_at),
            "size_bytes": sheet.size_bytes,
            "download_url": f"/api/audits/{run.pk}/datasheet/",
        },
    }


@pytest.fixture
def generated_run(cast, adult_schema) -> AuditRun:
    """The audit after one generation job (1,600 rows of the adult fixture)."""
    request = approved_request_create(cast, adult_schema, rows=1600)
    generation_job_start(actor=cast.requester, request_id=request.pk)
    request.refresh_from_db()
    assert request.state in (RequestState.READY, RequestState.BLOCKED)
    return request.audit_runs.get()


def test_runs_checks_datasheet_and_on_demand_audits_per_role(cast, generated_run):
    run = generated_run
    _lists_and_filters_per_role(cast, run)
    _detail_per_role(cast, run)
    _datasheet_download_per_role(cast, run)
    _datasheet_verification(cast, run)
    _on_demand_audit(cast, run)


def _lists_and_filters_per_role(cast, run: AuditRun) -> None:
    for user in (cast.steward, cast.requester, cast.approver, cast.second_approver, cast.auditor):
        response = client_as(user).get("/api/audits/")
        assert response.status_code == 200
        assert response.json() == {"count": 1, "next": None, "previous": None, "results": [run_summary(run)]}
    assert client_as(cast.other_requester).get("/api/audits/").json()["count"] == 0
    assert_error(client_as(None).get("/api/audits/"), 401)
    assert_error(client_as(UserFactory(username="nobody")).get("/api/audits/"), 403, "permission_denied")

    steward = client_as(cast.steward)
    assert steward.get("/api/audits/", {"status": run.status}).json()["count"] == 1
    other_status = AuditStatus.PASSED if run.status != AuditStatus.PASSED else AuditStatus.FAILED
    assert steward.get("/api/audits/", {"status": other_status}).json()["count"] == 0
    assert steward.get("/api/audits/", {"request": run.request_id}).json()["count"] == 1
    assert steward.get("/api/audits/", {"request": run.request_id + 1}).json()["count"] == 0
    assert steward.get("/api/audits/", {"version": run.version_id}).json()["count"] == 1
    assert steward.get("/api/audits/", {"version": run.train_version_id}).json()["count"] == 0
    bad = assert_error(steward.get("/api/audits/", {"status": "great"}), 400, "invalid")
    assert bad["extra"]["field"] == "status"


def _detail_per_role(cast, run: AuditRun) -> None:
    url = f"/api/audits/{run.pk}/"
    expected = run_detail(run)
    for user in (cast.steward, cast.approver, cast.second_approver, cast.auditor):
        response = client_as(user).get(url)
        assert response.status_code == 200
        assert response.json() == expected
    # The requester reads the recipient view: verdicts, values only of the checks of the released rows
    # alone (k-anonymity, l-diversity), the purpose's threshold where the limit was calibrated to the
    # real rows, no details, charts, seed or internal report (audits/recipient.py).
    seen = client_as(cast.requester).get(url).json()
    assert [check["name"] for check in seen["checks"]] == [check["name"] for check in expected["checks"]]
    for shown, exact in zip(seen["checks"], expected["checks"], strict=True):
        assert shown["details"] == {} and shown["chart"] == {} and shown["verdict"] == exact["verdict"]
        synthetic_only = exact["name"] in ("k_anonymity", "l_diversity")
        assert shown["value"] == (round(exact["value"], 2) if synthetic_only and exact["value"] is not None else None)
        assert shown["baseline"] == (None if not synthetic_only else shown["baseline"])
        calibration = exact["details"].get("calibration") or {}
        declared = calibration.get("purpose_threshold", exact["threshold"])
        if exact["category"] == "bias" and calibration:
            declared = next(iter(calibration.values()))["purpose_threshold"]
        assert shown["threshold"] == declared
    assert seen["datasheet"] is None and seen["seed"] is None
    assert all(control["checks"] == [] for control in seen["controls"])
    assert_error(client_as(cast.other_requester).get(url), 404, "not_found")
    assert_error(client_as(None).get(url), 401)
    assert_error(client_as(cast.steward).get("/api/audits/999999/"), 404, "not_found")

    body = expected
    assert body["kind"] == AuditKind.GENERATION and body["request"] == run.request_id
    assert {check["category"] for check in body["checks"]} >= {
        "fidelity",
        "utility",
        "reidentification",
        "membership",
        "bias",
    }
    assert all(set(check) == CHECK_FIELDS for check in body["checks"])
    tvd = next(check for check in body["checks"] if check["name"] == "tvd_1way")
    assert tvd["direction"] == "lower_is_better" and tvd["threshold"] is not None and tvd["chart"]
    membership = next(check for check in body["checks"] if check["name"] == "membership_domias_auc")
    assert membership["baseline"] is not None and membership["ci_low"] <= membership["ci_high"]
    assert {control["family"] for control in body["controls"]} == {"reidentification", "membership"}
    assert len(body["datasheet"]["sha256"]) == 64 and body["datasheet"]["signer"]


def _datasheet_download_per_role(cast, run: AuditRun) -> None:
    url = f"/api/audits/{run.pk}/datasheet/"
    stored = (Path(settings.DATA_DIR) / run.datasheet.storage_key).read_bytes()
    for user in (cast.steward, cast.approver, cast.auditor):
        response = client_as(user).get(url, HTTP_ACCEPT="application/pdf")
        assert response.status_code == 200
        assert response["Content-Type"] == "application/pdf"
        assert b"".join(response.streaming_content) == stored
    # The internal audit report holds exact real-data diagnostics: not for the requester.
    assert_error(client_as(cast.requester).get(url), 403, "permission_denied")
    assert_error(client_as(cast.other_requester).get(url), 404, "not_found")
    assert_error(client_as(None).get(url), 401)


def _datasheet_verification(cast, run: AuditRun) -> None:
    pdf = (Path(settings.DATA_DIR) / run.datasheet.storage_key).read_bytes()

    def verify(data: bytes, user=None):
        response = client_as(user).post(
            "/api/datasheets/verify/",
            {"file": SimpleUploadedFile("d.pdf", data, "application/pdf")},
            format="multipart",
        )
        assert response.status_code == 200, response.content
        return response.json()

    report = verify(pdf)  # anonymous: verification is public
    assert report == {
        "ok": True,
        "intact": True,
        "valid": True,
        "trusted": True,
        "covers_entire_file": True,
        "signer": report["signer"],
        "signing_time": report["signing_time"],
        "sha256": run.datasheet.sha256,
        "sha256_matches_record": True,
        "version_hash": run.version.content_hash,
        "release": None,
        "datasheet": run.datasheet.pk,
        "release_datasheet": None,
        "problems": [],
        "notes": report["notes"],
    }
    assert report["signer"] and report["signing_time"] and report["notes"]
    assert verify(pdf, cast.requester)["ok"] is True

    flipped = bytearray(pdf)
    flipped[len(pdf) // 2] ^= 0x01
    broken = verify(bytes(flipped), cast.steward)
    assert broken["ok"] is False and broken["sha256_matches_record"] is False and broken["problems"]
    assert broken["datasheet"] is None
    appended = verify(pdf + b"\n%%EOF\n")
    assert appended["ok"] is False and appended["problems"]
    assert verify(b"not a pdf at all")["ok"] is False
    assert_error(client_as(None).post("/api/datasheets/verify/", {}, format="multipart"), 400, "invalid")


def _on_demand_audit(cast, run: AuditRun) -> None:
    url = f"/api/versions/{run.version_id}/audit/"
    assert_error(client_as(cast.other_requester).post(url, {"seed": 3}, format="json"), 404, "not_found")
    assert_error(client_as(None).post(url, {}, format="json"), 401)
    # Auditors are read-only: they see the run but cannot start another.
    assert_error(client_as(cast.auditor).post(url, {"seed": 3}, format="json"), 403, "permission_denied")
    assert_error(client_as(cast.requester).post(url, {"seed": -1}, format="json"), 400, "invalid")
    assert_error(
        client_as(cast.steward).post(f"/api/versions/{run.train_version_id}/audit/", {}, format="json"),
        404,
        "not_found",
    )
    # Requesters may not re-run audits: each run reads the real rows (differencing by seed).
    assert_error(client_as(cast.requester).post(url, {"seed": 3}, format="json"), 403, "permission_denied")
    assert AuditRun.objects.count() == 1

    response = client_as(cast.approver).post(url, {"seed": 3}, format="json")

    assert response.status_code == 201, response.content
    again = AuditRun.objects.exclude(pk=run.pk).get()
    assert response.json() == run_detail(again)
    assert (again.kind, again.seed, again.requested_by, again.request_id) == (
        AuditKind.ON_DEMAND,
        3,
        cast.approver,
        run.request_id,
    )
    assert client_as(cast.requester).get("/api/audits/").json()["count"] == 2


def test_external_audit_blocks_a_leaky_table_and_deletes_its_uploads(cast, adult_schema, tmp_path, monkeypatch):
    files = external_files_create(steward=cast.steward, schema=adult_schema, folder=tmp_path)
    uploads_folder = tmp_path / "uploads"
    uploads_folder.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(uploads_folder))

    def audit(user, synthetic: Path, **extra):
        body = {"dataset": files.dataset, "synthetic": upload(synthetic), "holdout": upload(files.holdout), **extra}
        return client_as(user).post("/api/audits/external/", body, format="multipart")

    for user in (cast.requester, cast.approver, cast.auditor):
        assert_error(audit(user, files.leaky), 403, "permission_denied")
    assert_error(audit(None, files.leaky), 401)
    missing = client_as(cast.steward).post(
        "/api/audits/external/", {"dataset": files.dataset, "synthetic": upload(files.leaky)}
    )
    assert assert_error(missing, 400, "invalid")["extra"]["field"] == "holdout"
    unknown = client_as(cast.steward).post(
        "/api/audits/external/",
        {"dataset": "no-such", "synthetic": upload(files.leaky), "holdout": upload(files.holdout)},
    )
    assert_error(unknown, 404, "not_found")
    assert list(uploads_folder.iterdir()) == []
    assert not AuditRun.objects.exists()

    leaky = audit(cast.steward, files.leaky, seed=5)

    assert leaky.status_code == 201, leaky.content
    body = leaky.json()
    assert list(uploads_folder.iterdir()) == []
    assert body["kind"] == "external" and body["request"] is None and body["status"] == "failed"
    assert body["blocked"] is True and body["seed"] == 5
    blocking = {check["name"] for check in body["checks"] if check["verdict"] == "BLOCK"}
    assert "exact_copies" in blocking and blocking <= set(body["failed_checks"])
    assert body["datasheet"]["sha256"]
    run = AuditRun.objects.get(pk=body["id"])
    assert body == run_detail(run)
    assert run.version.kind == VersionKind.EXTERNAL and run.version.original_filename == "leaky.csv"

    clean = audit(cast.steward, files.clean, seed=5)

    assert clean.status_code == 201, clean.content
    assert list(uploads_folder.iterdir()) == []
    clean_body = clean.json()
    assert clean_body["blocked"] is False
    assert not [
        check["name"]
        for check in clean_body["checks"]
        if check["category"] in PRIVACY_CATEGORIES and check["passed"] is False and check["gating"]
    ]

    _external_runs_are_hidden_from_requesters(cast, run)


def _external_runs_are_hidden_from_requesters(cast, run: AuditRun) -> None:
    for user in (cast.steward, cast.approver, cast.auditor):
        assert client_as(user).get("/api/audits/").json()["count"] == 2
        assert client_as(user).get(f"/api/audits/{run.pk}/").status_code == 200
    requester = client_as(cast.requester)
    assert requester.get("/api/audits/").json()["count"] == 0
    assert_error(requester.get(f"/api/audits/{run.pk}/"), 404)
    assert_error(requester.get(f"/api/audits/{run.pk}/datasheet/"), 404)
    # Nor may a requester re-audit an external version (and so read its results).
    assert_error(requester.post(f"/api/versions/{run.version_id}/audit/", {}, format="json"), 404, "not_found")
    assert DatasetVersion.objects.filter(kind=VersionKind.EXTERNAL).count() == 2
