"""`synthgate demo`: the governed path end to end on the bundled sample, as five people.

It lives in audits, the top of the domain apps, because it walks every one of them: governance
(register, request, approve), synth_engine (the job), audits (audit, risk acceptance, release).
"""

from __future__ import annotations

import json
from pathlib import Path

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError

from audits.models import AuditRun
from audits.services import datasheet_verify, release_create, risk_accept
from core.amounts import amount_text
from core.context import channel
from core.errors import ApplicationError
from governance import services
from governance.models import DataRequest
from governance.selectors import dataset_latest_source
from governance.storage import version_storage
from synth_engine.services import generation_job_start

SAMPLE = Path(settings.BASE_DIR) / "sample_data"
PEOPLE = [
    ("steward", "steward"),
    ("alice", "requester"),
    ("bob", "approver"),
    ("carol", "approver"),
    ("dana", "auditor"),
]


class Command(BaseCommand):
    help = (
        "Run the governed path on the bundled adult sample: register, request, two approvals, generate, "
        "audit, sign, release."
    )

    def add_arguments(self, parser):
        parser.add_argument("--epsilon", default="1", help="ε of the request (default 1)")
        parser.add_argument("--rows", type=int, default=10000, help="synthetic rows to generate")
        parser.add_argument("--seed", type=int, default=None, help="fixed seed (reproducible run)")

    def handle(self, *args, **options):
        try:
            with channel("cli"):
                self._run(options)
        except ApplicationError as error:
            raise CommandError(
                f"{error.message} {json.dumps(error.extra) if error.extra else ''}", returncode=2
            ) from error

    def _run(self, options):
        self._step("1. init: database, roles, default purposes, platform signing key")
        call_command("init", stdout=self.stdout)
        users = self._people(services)
        self._step("2. the steward registers the sample table (UCI Adult, 48,842 rows) with its schema")
        schema = json.loads((SAMPLE / "adult.schema.json").read_text())
        result = services.dataset_register(
            actor=users["steward"],
            name="adult",
            path=SAMPLE / "adult.csv.gz",
            filename="adult.csv.gz",
            epsilon_cap="10",
            delta_cap="2e-5",
            schema=schema,
            description="UCI Adult census extract (sample)",
        )
        version = result.version
        self.stdout.write(
            f"   {version}: {version.n_rows:,} rows × {version.n_columns} columns, "
            f"sha256 {version.content_hash[:16]}…, {'new' if result.created else 'already stored'}"
        )
        self._step("3. alice files a request for purpose external-research (two approvers required)")
        request = services.access_request_create(
            actor=users["alice"],
            dataset_name="adult",
            purpose_name="external-research",
            epsilon=options["epsilon"],
            delta="1e-5",
            n_rows=options["rows"],
            recipient_kind="external",
            recipient="University partner",
            justification="Income-prediction research on synthetic census data",
            seed=options["seed"],
        )
        self.stdout.write(
            f"   request #{request.pk}: ε={amount_text(request.epsilon)}, "
            f"δ={amount_text(request.delta)}, "
            f"{request.n_rows:,} rows, generator {request.generator}, state {request.state}"
        )
        self._step("4. bob and carol approve (four-eyes); the last approval reserves the budget")
        for name in ("bob", "carol"):
            request = services.access_request_approve(actor=users[name], request_id=request.pk)
            self.stdout.write(f"   {name} approved → state {request.state}")
        self._step("5. the generation job trains the DP generator and writes the synthetic version")
        job = generation_job_start(actor=users["alice"], request_id=request.pk)
        job.refresh_from_db()
        self.stdout.write(f"   job #{job.pk}: {job.status}, phases {job.timings}")
        if job.status != "succeeded" or job.output_version is None:
            raise CommandError(f"the job did not succeed: {job.error}", returncode=1)
        self.stdout.write(
            f"   synthetic version {job.output_version}: {job.output_version.n_rows:,} rows, "
            f"ε spent {job.privacy_spent.get('epsilon')}, file "
            f"{version_storage().location(job.output_version.storage_key)}"
        )
        release = self._audit_and_release(request.pk, users)
        self._step("9. the privacy-budget ledger of dataset adult")
        call_command("budget", "show", "adult", "--as", "dana", stdout=self.stdout)
        self._step("10. the audit log verifies")
        call_command("log", "verify", "--as", "dana", stdout=self.stdout)
        latest = dataset_latest_source(dataset=version.dataset)
        datasheet = version_storage().location(release.release_datasheet.storage_key)
        self.stdout.write(f"\nDone. Data directory: {settings.DATA_DIR} (source {latest}).")
        self.stdout.write(self.style.SUCCESS(f"Signed release datasheet: {datasheet}"))
        self.stdout.write(
            f"Verify it with: SYNTHGATE_DATA_DIR={settings.DATA_DIR} .venv/bin/synthgate datasheet verify {datasheet} "
            f"--release {release.pk}"
        )

    def _audit_and_release(self, request_id, users):
        run = AuditRun.objects.filter(request_id=request_id).order_by("-id").first()
        if run is None:
            raise CommandError(f"no audit ran on request #{request_id}", returncode=1)
        self._step("6. the audit compared the synthetic table with the training rows and the holdout")
        for check in run.checks.all():
            value = "—" if check.value is None else f"{check.value:.4g}"
            threshold = "—" if check.threshold is None else f"{check.threshold:.4g}"
            self.stdout.write(f"   {check.name:<28} {value:>10}  threshold {threshold:>8}  {check.verdict}")
        for control in run.controls:
            self.stdout.write(
                f"   positive control ({control['family']}, {control['n_planted']} planted rows): "
                + ("caught" if control["caught"] else "NOT caught")
            )
        self.stdout.write(f"   verdict: {run.status}; signed datasheet sha256 {run.datasheet.sha256[:16]}…")
        if DataRequest.objects.get(pk=request_id).state == "blocked":
            self._step("7. the audit failed: carol, a second approver, records a reasoned risk acceptance")
            risk_accept(
                actor=users["carol"],
                request_id=request_id,
                reasons={
                    check.name: f"Demo: carol reviewed the {check.category} check {check.name} and accepts its "
                    "limits for this research use on synthetic rows."
                    for check in run.checks.filter(name__in=run.failed_checks)
                },
            )
            self.stdout.write(f"   accepted failed checks: {', '.join(run.failed_checks)}")
        else:
            self._step("7. the audit passed: no risk acceptance needed")
        self._step("8. release: approvals complete, audit passed or accepted, datasheet signed")
        release = release_create(actor=users["bob"], request_id=request_id)
        sheet = version_storage().read_bytes(release.release_datasheet.storage_key)
        report = datasheet_verify(pdf_bytes=sheet, release_id=release.pk)
        signature = "verified" if report["ok"] else "FAILED: " + "; ".join(report["problems"])
        self.stdout.write(
            f"   release #{release.pk} of {release.version}, expires {release.expires_at:%Y-%m-%d}; "
            f"datasheet signature {signature}"
        )
        return release

    def _people(self, services):
        users = {}
        for username, role in PEOPLE:
            existing = get_user_model().objects.filter(username=username).first()
            password = f"{username}-synthgate"  # passes Django's password validators
            users[username] = (
                existing or services.user_create(username=username, roles=[role], actor=None, password=password)[0]
            )
        self.stdout.write("   users: " + ", ".join(f"{name} ({role})" for name, role in PEOPLE))
        return users

    def _step(self, text):
        self.stdout.write(self.style.MIGRATE_HEADING(f"\n{text}"))
