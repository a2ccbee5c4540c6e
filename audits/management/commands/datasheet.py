"""`synthgate datasheet verify|path`: check a signed datasheet, or find a run's PDF.

`datasheet verify` exits 0 when the datasheet verifies, 1 when it does not (changed, unsigned,
untrusted, unknown), and 2 for a user mistake such as a missing file. Anyone may verify.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from django.conf import settings
from django.contrib.auth.models import User
from django.core.management.base import CommandParser

from audits.apis.runs import DatasheetVerifyApi, datasheet_file
from audits.models import Datasheet
from audits.selectors import audit_run_get
from audits.services import datasheet_verify
from core.cli import CliError, SynthgateCommand
from core.cli_format import fields
from core.limits import read_capped
from governance.storage import version_storage

VERIFICATION_FAILED_EXIT = 1


class Command(SynthgateCommand):
    help = "Verify a signed datasheet (exit 1 if it fails) or print the path of an audit run's datasheet."
    examples = (
        "synthgate datasheet verify var/demo/datasheets/adult/audit-1-….pdf",
        "synthgate datasheet path 3 --as dana",
    )

    def add_arguments(self, parser: CommandParser) -> None:
        actions = self.add_subcommands(parser)
        # Verifying reads only the file given and the public signing record, so --as is optional.
        verify = self.add_subcommand(
            actions,
            "verify",
            "check the signature and the recorded SHA-256; exit 1 if verification fails",
            needs_user=False,
        )
        verify.add_argument("file", metavar="FILE.pdf", help="the signed PDF to check")
        verify.add_argument(
            "--release", type=int, metavar="ID", help="fail unless FILE is the datasheet issued for release ID"
        )
        path = self.add_subcommand(actions, "path", "where the signed datasheet of an audit run is stored")
        path.add_argument("run_id", type=int, metavar="RUN_ID")

    def handle_verify(self, actor: User | None, options: dict[str, Any]) -> None:
        path = Path(options["file"])
        try:
            with path.open("rb") as handle:
                pdf_bytes = read_capped(handle, limit_bytes=settings.SYNTHGATE_MAX_VERIFY_BYTES, what=str(path))
        except OSError as error:
            raise CliError(
                f"Cannot read {path}: {error.strerror}.", code="not_found", extra={"path": str(path)}
            ) from error
        report = datasheet_verify(pdf_bytes=pdf_bytes, release_id=options.get("release"))
        data = DatasheetVerifyApi.OutputSerializer(report).data
        self.emit(
            data,
            lambda: "\n".join(
                [
                    f"{path}: {'VERIFIED' if report['ok'] else 'VERIFICATION FAILED'}",
                    fields(
                        [
                            ("intact", report["intact"]),
                            ("valid", report["valid"]),
                            ("trusted", report["trusted"]),
                            ("covers entire file", report["covers_entire_file"]),
                            ("signer", report["signer"]),
                            ("signing time", report["signing_time"]),
                            ("sha256", report["sha256"]),
                            ("sha256 matches record", report["sha256_matches_record"]),
                            ("version hash", report["version_hash"]),
                            ("release", report["release"]),
                        ]
                    ),
                    *[f"problem: {problem}" for problem in report["problems"]],
                    *[f"note: {note}" for note in report["notes"]],
                ]
            ),
        )
        if not report["ok"]:
            raise CliError(
                f"{path} failed verification: " + " ".join(report["problems"]),
                code="verification_failed",
                extra={"problems": report["problems"]},
                returncode=VERIFICATION_FAILED_EXIT,
            )

    def handle_path(self, actor: User, options: dict[str, Any]) -> None:
        run = audit_run_get(user=actor, run_id=options["run_id"])
        sheet = Datasheet.objects.filter(run=run).first()
        if sheet is None:
            raise CliError(f"Audit run #{run.pk} has no signed datasheet.", code="not_found", extra={"run": run.pk})
        path = version_storage().location(datasheet_file(sheet).key)
        self.emit({"run": run.pk, "path": path, "sha256": sheet.sha256}, path)
