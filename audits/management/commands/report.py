"""`synthgate report compliance`: a compliance report for a period, as a signed PDF, CSV or JSON."""

from __future__ import annotations

import sys
from datetime import date
from pathlib import Path
from typing import Any

from django.contrib.auth.models import User
from django.core.management.base import CommandParser

from audits.compliance import compliance_report_render
from audits.models import ReportFormat
from core.cli import CliError, SynthgateCommand


def _date(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError as error:
        raise CliError(f"{text!r} is not a date; write YYYY-MM-DD.", extra={"value": text}) from error


class Command(SynthgateCommand):
    help = "Produce a compliance report for a period (stewards and auditors); every report is logged."
    examples = ("synthgate report compliance --from 2026-01-01 --to 2026-12-31 --format pdf --as dana",)

    def add_arguments(self, parser: CommandParser) -> None:
        actions = self.add_subcommands(parser)
        compliance = self.add_subcommand(
            actions,
            "compliance",
            "requests, decisions, risk acceptances, budget "
            "ledger, releases, audits and the audit-log check for a period",
        )
        compliance.add_argument(
            "--from",
            dest="date_from",
            required=True,
            metavar="YYYY-MM-DD",
            help="first day of the period (UTC), inclusive",
        )
        compliance.add_argument(
            "--to", dest="date_to", required=True, metavar="YYYY-MM-DD", help="last day of the period (UTC), inclusive"
        )
        compliance.add_argument("--dataset", metavar="NAME", help="only this dataset (default: all)")
        compliance.add_argument("--purpose", metavar="NAME", help="only requests for this purpose (default: all)")
        compliance.add_argument(
            "--format",
            choices=ReportFormat.values,
            default=ReportFormat.PDF,
            help="signed PDF, CSV or JSON",
        )
        compliance.add_argument(
            "--output",
            metavar="PATH",
            help="write the report here (default: a PDF is "
            "written to the current directory; CSV and JSON go to standard output)",
        )

    def handle_compliance(self, actor: User, options: dict[str, Any]) -> None:
        rendered = compliance_report_render(
            actor=actor,
            date_from=_date(options["date_from"]),
            date_to=_date(options["date_to"]),
            dataset=options["dataset"],
            purpose=options["purpose"],
            format=options["format"],
        )
        output = options["output"] or (rendered.filename if options["format"] == ReportFormat.PDF else None)
        if output is None:
            self.stdout.write(rendered.content.decode("utf-8"), ending="")
            return
        try:
            Path(output).write_bytes(rendered.content)
        except OSError as error:
            raise CliError(f"Cannot write {output}: {error.strerror}.", extra={"path": output}) from error
        data = {
            "report": rendered.record.pk,
            "format": options["format"],
            "path": str(output),
            "sha256": rendered.sha256,
            "size_bytes": len(rendered.content),
            "audit_log_ok": rendered.data["audit_log"]["ok"],
        }
        self.emit(
            data,
            f"Wrote the compliance report ({options['format']}, {len(rendered.content)} bytes, "
            f"sha256 {rendered.sha256}) to {output}",
        )
        if not rendered.data["audit_log"]["ok"]:
            sys.stderr.write(f"warning: the audit log failed verification: {rendered.data['audit_log']['reason']}\n")
