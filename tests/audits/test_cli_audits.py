"""`synthgate audit`, `synthgate datasheet` and `synthgate release`: what they print, their exit
statuses, and that every refusal names its unmet condition."""

from __future__ import annotations

import io
import json
from dataclasses import dataclass
from pathlib import Path

import pytest
from django.conf import settings
from django.core.management import call_command
from django.core.management.base import CommandError

from audits.models import AuditKind, AuditRun, Download, Release
from governance.models import AuditEvent, RequestState
from synth_engine.services import generation_job_start
from tests.audits.test_api_audits import external_files_create
from tests.governance.factories import PurposeFactory
from tests.jobs.conftest import approved_request_create, reasons_for
from tests.jobs.test_api_releases import FAILING_THRESHOLDS

pytestmark = pytest.mark.django_db(transaction=True)


@dataclass
class Run:
    code: int
    stdout: str
    stderr: str

    def json(self):
        return json.loads(self.stdout)


def synthgate(command: str, *args) -> Run:
    stdout, stderr = io.StringIO(), io.StringIO()
    try:
        call_command(command, *[str(arg) for arg in args], stdout=stdout, stderr=stderr)
    except CommandError as error:
        return Run(error.returncode, stdout.getvalue(), stderr.getvalue())
    return Run(0, stdout.getvalue(), stderr.getvalue())


@pytest.fixture
def blocked_request(cast, adult_schema):
    PurposeFactory(name="research", approvals_required=2, audit_thresholds=FAILING_THRESHOLDS)
    request = approved_request_create(cast, adult_schema, rows=1600)
    generation_job_start(actor=cast.requester, request_id=request.pk)
    request.refresh_from_db()
    assert request.state == RequestState.BLOCKED
    return request


def test_audit_and_datasheet_commands_show_checks_controls_and_verify_signatures(cast, blocked_request, tmp_path):
    run = blocked_request.audit_runs.get()
    _datasheet_verify_passes_on_an_issued_datasheet_and_fails_on_a_changed_one(run, tmp_path)
    sheet_path = Path(settings.DATA_DIR) / run.datasheet.storage_key

    shown = synthgate("audit", "show", run.pk, "--as", "approver")

    assert shown.code == 0, shown.stderr
    assert shown.stdout.startswith(f"Audit #{run.pk}: ")
    for check in run.checks.all():
        line = next(text for text in shown.stdout.splitlines() if text.startswith(check.name + " "))
        assert check.verdict in line
        if check.threshold is not None:
            assert f"{check.threshold:.4g}" in line
    for control in run.controls:
        assert f"{control['family']}: {control['n_planted']} verbatim training rows planted" in shown.stdout
    assert str(sheet_path) in shown.stdout and run.datasheet.sha256 in shown.stdout
    assert synthgate("audit", "show", run.pk, "--as", "other_requester").code == 2
    # The requester reads the recipient view: verdicts and thresholds, no planted-row counts or paths.
    recipient = synthgate("audit", "show", run.pk, "--as", "requester")
    assert recipient.code == 0 and recipient.stdout.startswith(f"Audit #{run.pk}: ")
    assert "verbatim training rows planted" not in recipient.stdout and str(sheet_path) not in recipient.stdout
    recipient_json = synthgate("audit", "show", run.pk, "--as", "requester", "--json").json()
    assert recipient_json["datasheet"] is None and all(c["details"] == {} for c in recipient_json["checks"])
    as_json = synthgate("audit", "show", run.pk, "--as", "auditor", "--json").json()
    assert as_json["id"] == run.pk and len(as_json["checks"]) == run.checks.count()
    assert as_json["datasheet"]["sha256"] == run.datasheet.sha256

    listed = synthgate("audit", "list", "--as", "steward")
    assert listed.code == 0
    row = next(line.split() for line in listed.stdout.splitlines() if line.startswith(f"{run.pk} "))
    assert row[1:5] == ["generation", "failed", "no" if not run.blocked else "yes", "adult"]
    assert synthgate("audit", "list", "--as", "other_requester").stdout.strip() == "(none)"
    assert [
        row["id"]
        for row in synthgate(
            "audit", "list", "--as", "steward", "--status", "failed", "--request", blocked_request.pk, "--json"
        ).json()
    ] == [run.pk]
    assert synthgate("audit", "list", "--as", "steward", "--status", "passed", "--json").json() == []

    path = synthgate("datasheet", "path", run.pk, "--as", "requester")
    assert (path.code, path.stdout.strip()) == (0, str(sheet_path))
    assert synthgate("datasheet", "path", run.pk, "--as", "other_requester").code == 2

    assert synthgate("audit", "run", run.version_id, "--seed", "11", "--as", "requester").code == 2
    rerun = synthgate("audit", "run", run.version_id, "--seed", "11", "--as", "approver")
    assert rerun.code == 0, rerun.stderr
    again = AuditRun.objects.exclude(pk=run.pk).get()
    assert (again.kind, again.seed) == (AuditKind.ON_DEMAND, 11)
    assert rerun.stdout.startswith(f"Audit #{again.pk}: ")
    assert synthgate("audit", "run", run.version_id, "--as", "other_requester").code == 2


def _datasheet_verify_passes_on_an_issued_datasheet_and_fails_on_a_changed_one(run: AuditRun, tmp_path: Path) -> None:
    pdf = (Path(settings.DATA_DIR) / run.datasheet.storage_key).read_bytes()
    good, flipped_file, appended = tmp_path / "good.pdf", tmp_path / "flipped.pdf", tmp_path / "appended.pdf"
    good.write_bytes(pdf)
    flipped = bytearray(pdf)
    flipped[len(pdf) // 2] ^= 0x01
    flipped_file.write_bytes(bytes(flipped))
    appended.write_bytes(pdf + b"\n%%EOF\n")

    verified = synthgate("datasheet", "verify", good)

    assert verified.code == 0, verified.stderr
    assert verified.stdout.splitlines()[0] == f"{good}: VERIFIED"
    for label, value in (
        ("intact", "yes"),
        ("valid", "yes"),
        ("trusted", "yes"),
        ("sha256", run.datasheet.sha256),
        ("version hash", run.version.content_hash),
    ):
        assert any(line.startswith(label + " ") and line.endswith(value) for line in verified.stdout.splitlines())
    assert "signer" in verified.stdout and "signing time" in verified.stdout
    assert synthgate("datasheet", "verify", good, "--as", "requester", "--json").json()["ok"] is True

    for changed in (flipped_file, appended):
        failed = synthgate("datasheet", "verify", changed)
        assert failed.code == 1
        assert "VERIFICATION FAILED" in failed.stdout and "problem: " in failed.stdout
        assert "failed verification" in failed.stderr
    report = synthgate("datasheet", "verify", flipped_file, "--json")
    assert report.code == 1 and report.json()["ok"] is False and report.json()["sha256_matches_record"] is False

    missing = synthgate("datasheet", "verify", tmp_path / "no-such.pdf")
    assert missing.code == 2 and "Cannot read" in missing.stderr


def test_release_gate_from_the_command_line(cast, blocked_request, tmp_path):
    request = blocked_request
    run = request.audit_runs.get()

    refused = synthgate("release", request.pk, "--as", "approver")
    assert refused.code == 2
    assert "did not pass" in refused.stderr and "no approver accepted the risk" in refused.stderr
    assert "unmet_conditions" in refused.stderr
    assert synthgate("release", "create", request.pk, "--as", "requester").code == 2

    def reason_args(why: str) -> list[str]:
        return [arg for name, text in reasons_for(run, why).items() for arg in ("--reason", f"{name}={text}")]

    by_requester = synthgate("audit", "accept-risk", request.pk, *reason_args("I need it now"), "--as", "requester")
    assert by_requester.code == 2 and "Only an approver who did not file the request" in by_requester.stderr
    assert synthgate("audit", "accept-risk", request.pk, "--as", "second_approver").code == 2  # --reason required
    bare = synthgate("audit", "accept-risk", request.pk, "--reason", "fidelity is fine", "--as", "second_approver")
    assert bare.code == 2 and "CHECK=REASON" in bare.stderr
    accepted = synthgate(
        "audit", "accept-risk", request.pk, *reason_args("fidelity is enough here"), "--as", "second_approver"
    )
    assert accepted.code == 0, accepted.stderr
    assert f"Risk accepted for request #{request.pk} (audit #{run.pk})" in accepted.stdout
    assert "now ready" in accepted.stdout

    # The console form `synthgate release REQUEST_ID --as USER` (no subcommand). Through call_command:
    # Django's execute_from_command_line would run django.setup() again in this process and bind
    # the root logging handler to this test's captured stderr, which is closed after the test.
    released = synthgate("release", request.pk, "--as", "approver")
    assert released.code == 0, released.stderr
    printed = released.stdout
    release = Release.objects.get()
    assert printed.startswith(f"Request #{request.pk} released as release #{release.pk}")
    assert AuditEvent.objects.filter(action="release.create", channel="cli").exists()
    twice = synthgate("release", "create", request.pk, "--as", "approver", "--json")
    assert (
        twice.code == 2
        and "the request is 'released', not 'ready'" in json.loads(twice.stderr)["extra"]["unmet_conditions"]
    )

    listed = synthgate("release", "list", "--as", "requester").stdout.splitlines()
    assert listed[2].split()[:3] == [
        str(release.pk),
        str(request.pk),
        f"#{release.version_id}",
    ]  # versions read "#id (vN)" in CLI tables
    assert synthgate("release", "list", "--as", "other_requester").stdout.strip() == "(none)"
    assert synthgate("release", "show", release.pk, "--as", "auditor", "--json").json()["id"] == release.pk
    assert synthgate("release", "show", release.pk, "--as", "other_requester").code == 2

    data_file = tmp_path / "out.csv"
    saved = synthgate("release", "download", release.pk, "--kind", "data", "--output", data_file, "--as", "requester")
    assert saved.code == 0, saved.stderr
    assert data_file.read_bytes() == (Path(settings.DATA_DIR) / release.version.storage_key).read_bytes()
    sheet = synthgate(
        "release", "download", release.pk, "--kind", "datasheet", "--output", tmp_path, "--as", "requester"
    )
    assert sheet.code == 0, sheet.stderr
    assert (tmp_path / f"release-{release.pk}-datasheet.pdf").read_bytes().startswith(b"%PDF")
    again = synthgate("release", "download", release.pk, "--kind", "data", "--output", data_file, "--as", "requester")
    assert again.code == 2 and "exists; pass --clobber to overwrite it" in again.stderr
    data_file.write_bytes(b"mine")
    assert (
        synthgate("release", "download", release.pk, "--kind", "data", "--output", data_file, "--as", "requester").code
        == 2
    )
    assert data_file.read_bytes() == b"mine"
    clobbered = synthgate(
        "release", "download", release.pk, "--kind", "data", "--output", data_file, "--clobber", "--as", "requester"
    )
    assert clobbered.code == 0 and data_file.read_bytes() != b"mine"
    assert list(Download.objects.values_list("kind", "channel")) == [
        ("data", "cli"),
        ("datasheet", "cli"),
        ("data", "cli"),
    ]
    shown = synthgate("release", "show", release.pk, "--as", "requester")
    assert "Downloads (3)" in shown.stdout and "requester  data       cli" in shown.stdout

    assert synthgate("release", "revoke", release.pk, "--as", "steward").code == 2  # --reason required
    assert synthgate("release", "revoke", release.pk, "--reason", "no", "--as", "requester").code == 2
    revoked = synthgate("release", "revoke", release.pk, "--reason", "source withdrawn", "--as", "steward")
    assert revoked.code == 0 and f"Release #{release.pk} revoked" in revoked.stdout

    after = synthgate(
        "release", "download", release.pk, "--kind", "data", "--output", tmp_path / "again.csv", "--as", "requester"
    )
    assert after.code == 2 and "revoked" in after.stderr and "source withdrawn" in after.stderr
    assert not (tmp_path / "again.csv").exists()
    assert Download.objects.count() == 3


def test_external_audit_of_a_leaky_table_prints_which_checks_blocked_it(cast, adult_schema, tmp_path):
    files = external_files_create(steward=cast.steward, schema=adult_schema, folder=tmp_path)
    args = ["--dataset", files.dataset, "--synthetic", files.leaky, "--holdout", files.holdout, "--seed", "5"]

    assert synthgate("audit", "external", *args, "--as", "requester").code == 2
    assert synthgate("audit", "external", *args, "--as", "auditor").code == 2
    missing = synthgate(
        "audit",
        "external",
        "--dataset",
        files.dataset,
        "--synthetic",
        tmp_path / "none.csv",
        "--holdout",
        files.holdout,
        "--as",
        "steward",
    )
    assert missing.code == 2 and "No such file" in missing.stderr and "--synthetic" in missing.stderr

    result = synthgate("audit", "external", *args, "--as", "steward")

    assert result.code == 0, result.stderr
    lines = result.stdout.splitlines()
    run = AuditRun.objects.get()
    assert lines[0] == f"Audit #{run.pk}: BLOCKED (failed, with blocking privacy checks)"
    assert lines[1] == "Blocked by:"
    reasons = [line.strip() for line in lines[2:] if line.startswith("  ")]
    blocking = [check.name for check in run.checks.all() if check.verdict == "BLOCK"]
    assert "exact_copies" in blocking
    assert [reason.split(":")[0] for reason in reasons] == blocking
    copies = next(reason for reason in reasons if reason.startswith("exact_copies:"))
    assert "must be at most 0.005" in copies and "reproduced verbatim" in copies
