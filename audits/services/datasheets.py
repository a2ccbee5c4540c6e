"""The signed documents of an audit: the internal audit report issued when a run ends, the one
way a signed PDF is stored and recorded (shared with the release datasheet), and verification of
any file this platform signed.

The datasheet package (WeasyPrint, pyHanko) loads on first use of a name, not at import.
"""

from __future__ import annotations

import hashlib
from typing import TYPE_CHECKING, Any, TypeVar

from django.conf import settings
from django.db import transaction

from audits import datasheets as sheets
from audits.compliance import compliance_report_recorded
from audits.facts import datasheet_facts
from audits.keys import signing_identity, trusted_certificates
from audits.models import AuditRun, Datasheet, Release, ReleaseDatasheet
from governance.services import audit_event_record, files_removed_on_error
from governance.storage import Removable, StoredFile, version_storage

if TYPE_CHECKING:
    from audits.datasheets import SignedPdf

SheetT = TypeVar("SheetT", Datasheet, ReleaseDatasheet)


def datasheet_issue(*, run: AuditRun) -> Datasheet:
    """Render the run's internal audit report, sign it with the platform key, and record its SHA-256."""
    existing = Datasheet.objects.filter(run=run).first()
    if existing is not None:
        return existing
    signed = sheets.sign_pdf(
        sheets.render_datasheet_pdf(datasheet_facts(run)),
        signing_identity(),
        reason=f"Synthgate audit #{run.pk}: {run.status}",
        location=settings.SYNTHGATE_ORGANISATION,
        version_hash=run.version.content_hash,
    )
    with files_removed_on_error() as written, transaction.atomic():
        return signed_pdf_record(
            Datasheet,
            signed,
            storage_key=f"datasheets/{run.version.dataset.name}/audit-{run.pk}-{signed.sha256[:16]}.pdf",
            written=written,
            fields={"run": run, "version": run.version},
            event={"run": run.pk},
        )


def signed_pdf_record(
    model: type[SheetT],
    signed: SignedPdf,
    *,
    storage_key: str,
    written: list[Removable],
    fields: dict[str, Any],
    event: dict[str, Any],
) -> SheetT:
    """Store a signed PDF at ``storage_key`` in the artefact storage (``governance.storage``) and
    record it: a row of ``model`` (the internal report's ``Datasheet`` or a ``ReleaseDatasheet``)
    with its SHA-256, size, signer and signing time plus ``fields``, and a ``datasheet.sign``
    event. Runs inside the caller's transaction; the file goes into ``written`` so
    ``files_removed_on_error`` deletes it if that fails."""
    storage = version_storage()
    if storage.write_new(storage_key, signed.pdf_bytes):  # the key ends in the PDF's SHA-256
        written.append(StoredFile(storage, storage_key))
    sheet = model.objects.create(
        storage_key=storage_key,
        sha256=signed.sha256,
        size_bytes=len(signed.pdf_bytes),
        signer=signed.signer,
        signed_at=signed.signed_at,
        **fields,
    )
    audit_event_record(
        actor=None,
        action="datasheet.sign",
        obj=sheet,
        after={**event, "sha256": signed.sha256, "signer": signed.signer, "path": storage_key},
    )
    return sheet


def datasheet_verify(*, pdf_bytes: bytes, release_id: int | None = None) -> dict[str, Any]:
    """Verify a datasheet: signature intact, valid, trusted, covering the whole file, and the
    file's SHA-256 equal to the one recorded when it was signed. Given ``release_id``, it must
    also be that release's datasheet, naming that release and its synthetic version."""
    sha256 = hashlib.sha256(pdf_bytes).hexdigest()
    recorded = Datasheet.objects.select_related("version").filter(sha256=sha256).first()
    issued = ReleaseDatasheet.objects.select_related("release__version").filter(sha256=sha256).first()
    # A signed compliance report is accepted the same way (it names no dataset version).
    compliance = None if recorded or issued else compliance_report_recorded(sha256=sha256)
    known = recorded is not None or issued is not None or compliance is not None
    problems: list[str] = []
    expected_version = recorded.version if recorded else issued.release.version if issued else None
    if release_id is not None:
        release = Release.objects.select_related("version").filter(pk=release_id).first()
        if release is None:
            problems.append(f"There is no release #{release_id}.")
        else:
            expected_version = release.version
            if issued is None or issued.release_id != release.pk:
                problems.append(f"This file is not the datasheet issued for release #{release_id}.")
    report = sheets.verify_pdf(
        pdf_bytes,
        trusted_certs=trusted_certificates(),
        expected_sha256=sha256 if known else None,
        expected_version_hash=expected_version.content_hash if expected_version else None,
        expected_release_id=str(release_id) if release_id is not None else None,
    )
    problems += report.problems
    if not known:
        problems.append(
            "No datasheet with this SHA-256 was ever signed here: the file is not one this "
            "platform issued, or it was changed after signing."
        )
    return {
        "ok": report.ok and known and not problems,
        "intact": report.intact,
        "valid": report.valid,
        "trusted": report.trusted,
        "covers_entire_file": report.covers_entire_file,
        "signer": report.signer,
        "signing_time": report.signing_time,
        "sha256": sha256,
        "sha256_matches_record": known,
        "version_hash": report.version_hash,
        "release": int(report.release_id) if report.release_id and report.release_id.isdigit() else None,
        "datasheet": recorded.pk if recorded else None,
        "release_datasheet": issued.pk if issued else None,
        "compliance_report": compliance.pk if compliance else None,
        "problems": problems,
        "notes": list(report.notes),
    }
