"""The internal audit report and the release datasheet of a real run, read back from the signed PDFs.

One real job on the 2,000-row adult fixture, its audit and its release (with a second approver's
risk acceptance if the small audit failed); then the text of both documents is extracted from the
PDF with pypdf and every section is read: numbered 1, 2, 3 … in the order the context lists them,
each subsection under its own section and numbered from 1, the generator named with its own
version (not the platform's), amounts written one way (``core.amounts.amount_text``), no "nan" or
"None" anywhere, and each audience's content only where it belongs.
"""

from __future__ import annotations

import io
import re
from pathlib import Path

import pypdf
import pytest
from django.conf import settings

from audits.datasheets import datasheet_context
from audits.facts import datasheet_facts
from audits.models import AuditStatus, ReleaseDatasheet
from audits.services import release_create, risk_accept
from core.amounts import amount_text
from synth_engine.assurance.version import generator_version
from synth_engine.generators.mst import MSTGenerator
from synth_engine.services import generation_job_start
from tests.jobs.conftest import approved_request_create, reasons_for

pytestmark = pytest.mark.django_db(transaction=True)

SUBSECTION = re.compile(r"^(\d+)\.(\d+) \S", re.MULTILINE)
NOT_A_VALUE = re.compile(r"\b(nan|NaN|None|null|undefined)\b|\{\{|\{%")
DANGLING = re.compile(r":[ \t]*$", re.MULTILINE)  # a label whose value is missing ("Purpose research: ")


def _pdf_text(storage_key: str) -> str:
    reader = pypdf.PdfReader(io.BytesIO((Path(settings.DATA_DIR) / storage_key).read_bytes()))
    return "\n".join(page.extract_text() for page in reader.pages)


def _sections(text: str, facts) -> dict[str, str]:
    """Each section's text by template name, split at its numbered heading, checking their order."""
    headings = datasheet_context(facts)["sections"]
    assert [section["number"] for section in headings] == list(range(1, len(headings) + 1))
    starts = []
    for section in headings:
        heading = f"{section['number']}. {section['title']}"
        assert heading in text, f"heading {heading!r} missing from the PDF text"
        starts.append(text.index(heading))
    assert starts == sorted(starts), "sections out of order"
    bounds = [*starts, len(text)]
    return {Path(section["template"]).stem: text[bounds[i] : bounds[i + 1]] for i, section in enumerate(headings)}


def _subsections_are_numbered_under_their_sections(text: str, sections: dict[str, str]) -> None:
    numbers = {name: body.split(".", 1)[0] for name, body in sections.items()}
    for name, body in sections.items():
        found = [(parent, int(child)) for parent, child in SUBSECTION.findall(body)]
        assert all(parent == numbers[name] for parent, _ in found), f"{name}: {found}"
        assert [child for _, child in found] == list(range(1, len(found) + 1)), f"{name}: {found}"


def _reads_well(text: str, facts, request, run) -> dict[str, str]:
    assert not NOT_A_VALUE.search(text), NOT_A_VALUE.search(text)
    dangling = DANGLING.search(text)
    assert dangling is None, text[max(0, dangling.start() - 80) : dangling.end()]
    sections = _sections(text, facts)
    _subsections_are_numbered_under_their_sections(text, sections)
    assert all(len(body.split()) > 5 for body in sections.values()), "a section with no content"
    assert f"ε = {amount_text(request.epsilon)}" in text and "1.000000000000" not in text
    assert "research" in sections["motivation"]
    assert all(column in sections["composition"] for column in ("age", "education", "income"))
    generator_line = re.search(r"Generator (\S+) (\S+)", sections["collection"])
    assert generator_line is not None
    assert generator_line.groups() == ("mst", generator_version(MSTGenerator))
    assert "holdout" in sections["preprocessing"].lower()
    evaluation = sections["evaluation"]
    assert all(check.name in evaluation for check in run.checks.all())
    assert "Positive control" in evaluation
    assert sections["uses"] and sections["distribution"] and sections["maintenance"]
    return sections


def test_every_section_of_both_documents_reads_right_from_a_real_run(cast, adult_schema):
    request = approved_request_create(cast, adult_schema, rows=1600)
    generation_job_start(actor=cast.requester, request_id=request.pk)
    request.refresh_from_db()
    run = request.audit_runs.get()
    if run.status == AuditStatus.FAILED:
        risk_accept(actor=cast.second_approver, request_id=request.pk, reasons=reasons_for(run, "fit for this purpose"))
    assert run.status in (AuditStatus.PASSED, AuditStatus.FAILED), run.status
    release = release_create(actor=cast.approver, request_id=request.pk)

    internal = _pdf_text(run.datasheet.storage_key)
    internal_sections = _reads_well(internal, datasheet_facts(run), request, run)
    assert "Internal audit report" in internal
    assert "release" not in internal_sections  # the release decision is the recipient's document's

    recipient = _pdf_text(ReleaseDatasheet.objects.get(release=release).storage_key)
    recipient_sections = _reads_well(recipient, datasheet_facts(run, release=release), request, run)
    assert "Internal audit report" not in recipient
    decision = recipient_sections["release"]
    assert str(release.pk) in decision and cast.approver.username in decision
    # Recipient-safe figures only: the source's row count is withheld from the recipient's document.
    assert "row count not disclosed" in " ".join(recipient_sections["composition"].split())
    assert "row count not disclosed" not in " ".join(internal_sections["composition"].split())
