"""Registering source tables: validate once at the edge, store content-addressed bytes."""

from __future__ import annotations

import contextlib
import hashlib
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from django.conf import settings
from django.contrib.auth.models import User
from django.core.validators import validate_slug
from django.db import IntegrityError, connection, transaction
from django.db.models import Max

from core.amounts import amount_text, parse_decimal
from core.errors import (
    BudgetExhaustedError,
    ConflictError,
    NotFoundError,
    PermissionDeniedError,
    ValidationError,
    error_collected,
    errors_combined,
)
from core.limits import text_checked
from core.schema import (
    DECLARABLE_KEYS,
    SchemaError,
    parse_column,
    parse_schema,
    proposed_types_declarations,
    schema_declared,
    schema_types_declared,
)
from governance.fingerprint import Overlap, digests_from_bytes, digests_to_bytes, key_id, overlap, row_digests
from governance.ingest import (
    IngestLimits,
    StreamedTable,
    Table,
    domain_read_from_data_warnings,
    read_table,
    suggested_declarations,
)
from governance.models import Dataset, DatasetVersion, Role, Sensitivity, SourceFingerprint, VersionKind
from governance.output_formats import CSV, SUFFIXES
from governance.permissions import user_has_role
from governance.services.audit_log import audit_event_record
from governance.services.budget import version_public_rows
from governance.storage import (
    Removable,
    StorageAccessError,
    StoredFile,
    VersionStorage,
    error_code,
    removed_after_error,
    version_storage,
)
from synth_engine.generators.base import SchemaMismatchError
from synth_engine.generators.domain import check_rows_hold_declarations

# pg_advisory_xact_lock id serialising registrations ("synthgate.registration").
REGISTRATION_LOCK_ID = 0x53594E5447524547
MIN_REASON_LENGTH = 10


@dataclass(frozen=True)
class RegistrationResult:
    version: DatasetVersion
    created: bool
    warnings: list[str]
    # column -> resolution/calendar/step read from the rows, offered to the registering steward and
    # never stored unless declared (``governance.ingest.suggested_declarations``)
    suggestions: dict[str, dict[str, Any]] = field(default_factory=dict)


def ingest_limits() -> IngestLimits:
    return IngestLimits(
        max_upload_bytes=settings.SYNTHGATE_MAX_UPLOAD_BYTES,
        max_expanded_bytes=settings.SYNTHGATE_MAX_EXPANDED_BYTES,
        max_compression_ratio=settings.SYNTHGATE_MAX_COMPRESSION_RATIO,
        max_columns=settings.SYNTHGATE_MAX_COLUMNS,
        max_cell_chars=settings.SYNTHGATE_MAX_CELL_CHARS,
    )


def dataset_register(
    *,
    actor: User,
    name: str,
    path: Path,
    filename: str,
    epsilon_cap: Any,
    delta_cap: Any,
    schema: dict[str, Any] | None = None,
    description: str = "",
    sensitivity: str = "confidential",
    cap_override_reason: str = "",
    overlap_override_reason: str = "",
    declarations: dict[str, dict[str, Any]] | None = None,
    declared_rows: Any = None,
) -> RegistrationResult:
    """Create a dataset with budget caps and its first source version, or add a version to it.

    ``declared_rows``: the table's row count, which the steward declares public (a census table
    whose count is published). It must be the exact count, or the registration is refused; the
    version's ``public_rows`` is then that count and no DP estimate is charged.

    Rows another dataset already holds are refused (one population, one budget: see
    ``governance.fingerprint``); implausible caps need a logged override reason. ``declarations``
    (column → roles and public domain, as :func:`dataset_schema_declare_columns` takes them) are
    applied to the given or inferred schema before the table is checked against it, and logged with
    the new version.

    A shared artefact storage that refuses this host is named before the table is read
    (``StorageAccessError``; nothing is written or charged).

    A given ``schema`` declares its types outright; without one, each type is proposed from the
    rows (``type_proposed``) and the version cannot be requested until the steward declares it
    (a ``type`` in ``declarations``, or :func:`dataset_schema_types_accept` afterwards).
    """
    if not user_has_role(actor, Role.STEWARD):
        raise PermissionDeniedError("Only a data steward can register datasets.")
    version_storage().check_access()  # the table is stored there: refused before it is read, as a whole
    schema = schema_types_declared(schema)
    errors: list[ValidationError] = []
    fields = _registration_fields(errors, name, epsilon_cap, delta_cap, description, sensitivity)
    rows_declared = error_collected(errors, lambda: declared_rows_parsed(declared_rows))
    try:
        if declarations:
            schema = _schema_with_declarations(path, filename=filename, schema=schema, declarations=declarations)
        table = read_table(path, filename=filename, limits=ingest_limits(), schema=schema)
        _check_declarations_hold(table.frame, table.schema["columns"])
        _check_declared_rows(rows_declared, len(table.frame))
    except ValidationError as error:
        errors.append(error)
    if errors or fields is None:
        raise errors_combined(errors)
    epsilon, delta, description = fields
    digests = row_digests(table.frame, fingerprint_key())
    with files_removed_on_error() as written, transaction.atomic():
        _registrations_serialised()
        overlaps = _population_overlaps(name=name, digests=digests, override_reason=overlap_override_reason)
        dataset = _dataset_for_version(
            actor=actor,
            name=name,
            caps=(epsilon, delta),
            description=description,
            sensitivity=sensitivity,
            n_rows=len(table.frame),
            cap_override_reason=cap_override_reason,
        )
        result = dataset_version_store(
            dataset=dataset,
            table=table,
            actor=actor,
            kind=VersionKind.SOURCE,
            written=written,
            filename=filename,
            event_notes={"warnings": table.warnings, "overlaps": overlaps, "declarations": declarations},
            declared_rows=rows_declared,
        )
        if result.created:
            _fingerprint_store(result.version, digests)
        if not result.version.rows_checked:  # the rows were checked above (stored content, same schema)
            _rows_check_record(result.version, "")
    suggestions = suggested_declarations(table.frame, result.version.schema)
    return RegistrationResult(result.version, result.created, result.warnings, suggestions)


def _dataset_for_version(
    *,
    actor: User,
    name: str,
    caps: tuple[Decimal, Decimal],
    description: str,
    sensitivity: str,
    n_rows: int,
    cap_override_reason: str,
) -> Dataset:
    """The locked dataset a new source version joins: created with these caps, or existing with the same."""
    epsilon, delta = caps
    dataset = Dataset.objects.select_for_update().filter(name=name).first()
    if dataset is None:
        caps_note = _plausible_caps(epsilon, delta, n_rows=n_rows, override_reason=cap_override_reason)
        return _dataset_create(
            actor=actor,
            name=name,
            epsilon_cap=epsilon,
            delta_cap=delta,
            description=description,
            sensitivity=sensitivity,
            caps_note=caps_note,
        )
    if dataset.epsilon_cap != epsilon or dataset.delta_cap != delta:
        raise ConflictError(
            f"Dataset {name!r} exists with caps ε = {amount_text(dataset.epsilon_cap)}, "
            f"δ = {amount_text(dataset.delta_cap)}; "
            "caps cannot be changed by registering a new version.",
            extra={"epsilon_cap": amount_text(dataset.epsilon_cap), "delta_cap": amount_text(dataset.delta_cap)},
        )
    return dataset


def _schema_with_declarations(
    path: Path, *, filename: str, schema: dict[str, Any] | None, declarations: dict[str, dict[str, Any]]
) -> dict[str, Any]:
    """The given schema (or the one inferred from the file) with the steward's declarations applied."""
    base = (
        schema
        if schema is not None
        else read_table(path, filename=filename, limits=ingest_limits(), schema=None).schema
    )
    try:
        if not isinstance(base, dict):
            raise SchemaError('The schema must be an object with a "columns" list of column objects.')
        return schema_declared(base, declarations)
    except SchemaError as error:
        raise ValidationError(str(error), extra={"field": "declarations"}) from error


def dataset_register_fields_check(
    *,
    name: str,
    epsilon_cap: Any,
    delta_cap: Any,
    description: str = "",
    sensitivity: str = "confidential",
    declared_rows: Any = None,
) -> None:
    """Check a registration's own fields (not the table) and name every mistake in one error.

    The dashboard calls it when its form is incomplete, so the person sees every mistake at
    once; ``dataset_register`` runs the same checks together with reading the table (and the
    declared row count against the table's).
    """
    errors: list[ValidationError] = []
    _registration_fields(errors, name, epsilon_cap, delta_cap, description, sensitivity)
    error_collected(errors, lambda: declared_rows_parsed(declared_rows))
    if errors:
        raise errors_combined(errors)


def _registration_fields(
    errors: list[ValidationError], name: str, epsilon_cap: Any, delta_cap: Any, description: str, sensitivity: str
) -> tuple[Decimal, Decimal, str] | None:
    """The caps and description checked, or None; every mistake is appended to ``errors``."""
    found = len(errors)
    checks: dict[str, Any] = {}
    for key, check in (
        ("epsilon", lambda: parse_decimal(epsilon_cap, field="epsilon_cap", minimum_exclusive=Decimal(0))),
        (
            "delta",
            lambda: parse_decimal(delta_cap, field="delta_cap", minimum=Decimal(0), maximum_exclusive=Decimal(1)),
        ),
        ("name", lambda: _check_name(name)),
        ("description", lambda: text_checked(description, field="description")),
        ("sensitivity", lambda: _check_sensitivity(sensitivity)),
    ):
        try:
            checks[key] = check()
        except ValidationError as error:
            errors.append(error)
    if len(errors) > found:
        return None
    return checks["epsilon"], checks["delta"], checks["description"]


def _check_sensitivity(sensitivity: str) -> None:
    if sensitivity not in Sensitivity.values:
        raise ValidationError(
            f"sensitivity must be one of {', '.join(Sensitivity.values)}; got {sensitivity!r}.",
            extra={"field": "sensitivity"},
        )


def dataset_reference_register(
    *,
    actor: User,
    name: str,
    reference: dict[str, Any],
    n_rows: int,
    schema: dict[str, Any],
    epsilon_cap: Any,
    delta_cap: Any,
    description: str = "",
    sensitivity: str = "confidential",
    cap_override_reason: str = "",
    digests: np.ndarray | None = None,
    overlap_override_reason: str = "",
    declared_rows: Any = None,
) -> RegistrationResult:
    """Record a source version that refers to a table where it lives (checked by the caller).

    ``reference`` holds the engine, the connection's *name* (never its URL), the table, and the row
    count and checksum taken where the data lives; the version's content hash is derived from
    them and the schema, so the same table with the same content and schema is the same version.
    Nothing is stored under the data directory. ``digests`` are the table's keyed row digests
    (:func:`governance.fingerprint.row_digests`, computed by the caller as the rows stream past):
    rows another dataset holds are refused exactly as for an upload.
    """
    if not user_has_role(actor, Role.STEWARD):
        raise PermissionDeniedError("Only a data steward can register datasets.")
    errors: list[ValidationError] = []
    fields = _registration_fields(errors, name, epsilon_cap, delta_cap, description, sensitivity)
    rows_declared = error_collected(errors, lambda: declared_rows_parsed(declared_rows))
    error_collected(errors, lambda: _check_declared_rows(rows_declared, n_rows))
    if errors or fields is None:
        raise errors_combined(errors)
    epsilon, delta, description = fields
    identity = json.dumps({"reference": reference, "schema": schema}, sort_keys=True, default=str)
    content_hash = hashlib.sha256(identity.encode("utf-8")).hexdigest()
    with transaction.atomic():
        _registrations_serialised()
        overlaps = (
            _population_overlaps(name=name, digests=digests, override_reason=overlap_override_reason)
            if digests is not None
            else []
        )
        dataset = _dataset_for_version(
            actor=actor,
            name=name,
            caps=(epsilon, delta),
            description=description,
            sensitivity=sensitivity,
            n_rows=n_rows,
            cap_override_reason=cap_override_reason,
        )
        existing = DatasetVersion.objects.filter(
            dataset=dataset, kind=VersionKind.SOURCE, content_hash=content_hash
        ).first()
        if existing is not None:
            return RegistrationResult(existing, False, [])
        version = _version_create(
            actor=actor,
            dataset=dataset,
            kind=VersionKind.SOURCE,
            content_hash=content_hash,
            fields={
                "storage_key": "",
                "n_rows": n_rows,
                "n_columns": len(schema["columns"]),
                "schema": schema,
                "schema_inferred": False,
                "source_reference": reference,
                "rows_checked": True,  # checked against the schema in its engine, above
            },
            event_notes={"source_reference": reference, **({"overlaps": overlaps} if overlaps else {})},
            declared_rows=rows_declared,
        )
        if digests is not None:
            _fingerprint_store(version, digests)
        return RegistrationResult(version, True, [])


def declared_rows_parsed(declared_rows: Any) -> int | None:
    """A declared public row count: None (nothing declared: empty or ``None``), or a positive whole
    number; a ValidationError on field ``declared_rows`` otherwise (checked before any table is read)."""
    if declared_rows is None or declared_rows == "":
        return None
    try:
        rows = int(str(declared_rows))
    except ValueError:
        rows = 0
    if rows <= 0:
        raise ValidationError(
            f"declared_rows must be a positive whole number (the table's exact, published row count); "
            f"got {declared_rows!r}.",
            extra={"field": "declared_rows"},
        )
    return rows


def declared_rows_check(declared_rows: Any, n_rows: int) -> None:
    """Refuse a declared public row count that is not ``n_rows`` (or not a count), before the table is
    read further: a registration by reference checks it on the engine's count, before fingerprinting."""
    _check_declared_rows(declared_rows_parsed(declared_rows), n_rows)


def _check_declared_rows(declared: int | None, n_rows: int) -> None:
    """Refuse a declared public row count that is not the table's (the steward reads both)."""
    if declared is not None and declared != n_rows:
        raise ValidationError(
            f"The table has {n_rows:,} rows, not the {declared:,} declared public: a declared size must be "
            "the exact, published count of this table. Declare the right count, or none (then requesters' "
            "answers are computed from a DP estimate of the size, charged once to the budget).",
            extra={"field": "declared_rows", "declared_rows": declared, "n_rows": n_rows},
        )


def fingerprint_key() -> bytes:
    return str(settings.SYNTHGATE_FINGERPRINT_KEY).encode("utf-8")


def _registrations_serialised() -> None:
    """Two registrations of the same rows under two names must not both pass the overlap check."""
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", [REGISTRATION_LOCK_ID])
    # SQLite serialises writers on its database lock.


def _population_overlaps(*, name: str, digests: np.ndarray, override_reason: str) -> list[dict[str, Any]]:
    """Refuse rows another dataset holds; return the overlaps an override let through, for the log."""
    threshold = float(settings.SYNTHGATE_ROW_OVERLAP_THRESHOLD)
    found = []
    for other, existing in _other_populations(name):
        measured = overlap(digests, existing)
        if measured.shared_rows and measured.share >= threshold:
            found.append((other, measured))
    noted = []
    for other, measured in found:
        contained = measured.share_of_new >= 1.0 or measured.share_of_existing >= 1.0
        if contained or len(override_reason.strip()) < MIN_REASON_LENGTH:
            raise _overlap_error(name, other, measured, threshold, overridable=not contained)
        noted.append({"dataset": other.name, **_overlap_facts(measured), "override_reason": override_reason.strip()})
    return noted


def _overlap_error(name: str, other: Dataset, measured: Overlap, threshold: float, *, overridable: bool) -> Exception:
    share_new, share_existing = f"{measured.share_of_new:.1%}", f"{measured.share_of_existing:.1%}"
    message = (
        f"These rows overlap dataset {other.name!r}: {measured.shared_rows:,} distinct rows are in both "
        f"({share_new} of this table, {share_existing} of {other.name!r}; the limit is {threshold:.0%}). "
        "One population has one privacy budget: to add this table as a new version of that dataset, "
        f"register it with name {other.name!r} and its caps ε={amount_text(other.epsilon_cap)}, "
        f"δ={amount_text(other.delta_cap)}."
    )
    if overridable:
        message += " If the populations are truly distinct, give a reason (overlap override) and it is logged."
    extra = {"dataset": other.name, **_overlap_facts(measured), "threshold": threshold, "overridable": overridable}
    return ConflictError(message, extra=extra, code="population_overlap")


def _overlap_facts(measured: Overlap) -> dict[str, Any]:
    return {
        "shared_rows": measured.shared_rows,
        "share_of_new": round(measured.share_of_new, 6),
        "share_of_existing": round(measured.share_of_existing, 6),
    }


def _other_populations(name: str) -> Iterator[tuple[Dataset, np.ndarray]]:
    """Each other dataset with the digests of all its source versions' rows."""
    by_dataset: dict[int, list[np.ndarray]] = {}
    datasets: dict[int, Dataset] = {}
    versions = DatasetVersion.objects.filter(kind=VersionKind.SOURCE).exclude(dataset__name=name)
    for version in versions.select_related("dataset").order_by("dataset__name", "number"):
        digests = _fingerprint_of(version)
        if digests is not None:
            datasets[version.dataset_id] = version.dataset
            by_dataset.setdefault(version.dataset_id, []).append(digests)
    for pk, parts in by_dataset.items():
        yield datasets[pk], np.unique(np.concatenate(parts))


def _fingerprint_of(version: DatasetVersion) -> np.ndarray | None:
    """The version's stored digests, recomputed from its stored table when missing or made under another key."""
    key = fingerprint_key()
    stored = SourceFingerprint.objects.filter(version=version).first()
    if stored is not None and stored.key_id == key_id(key):
        return digests_from_bytes(bytes(stored.digests))
    storage = version_storage()
    try:
        if not storage.exists(version.storage_key):
            return None  # the store says it is gone: nothing left to compare with
        digests = row_digests(storage.read_version(version.storage_key, version.schema), key)
    except Exception as error:  # fail closed: an unread population may be these very rows
        cause = error_code(error)
        raise StorageAccessError(
            f"The registration is refused: the population-overlap check could not read the rows of dataset "
            f"{version.dataset.name!r} version {version.number} (its fingerprint is not in the database, and reading "
            f"its stored table failed: {cause}), so it cannot tell whether these are the same people under "
            "another budget. Nothing was written or spent; fix this host's storage access "
            "(SYNTHGATE_STORAGE_URL and its credentials) and try again.",
            extra={"cause": cause, "dataset": version.dataset.name, "version": version.number},
        ) from error
    if stored is not None:
        stored.delete()
    _fingerprint_store(version, digests)
    return digests


def _fingerprint_store(version: DatasetVersion, digests: np.ndarray) -> None:
    SourceFingerprint.objects.create(
        version=version,
        key_id=key_id(fingerprint_key()),
        n_distinct_rows=int(digests.size),
        digests=digests_to_bytes(digests),
    )


def _plausible_caps(epsilon: Decimal, delta: Decimal, *, n_rows: int, override_reason: str) -> dict[str, Any]:
    """Refuse caps that protect nobody (huge ε, δ of 1/n or more) unless a reason is given and logged."""
    problems = []
    limit = Decimal(str(settings.SYNTHGATE_MAX_PLAUSIBLE_EPSILON_CAP))
    if epsilon > limit:
        problems.append(
            f"an ε cap of {amount_text(epsilon)} is above {amount_text(limit)}, "
            "where the guarantee no longer means anything"
        )
    if delta * n_rows >= 1:
        problems.append(
            f"a δ cap of {amount_text(delta)} is at least 1/n for {n_rows:,} rows, "
            "which allows releasing a row outright"
        )
    if not problems:
        return {}
    if len(override_reason.strip()) < MIN_REASON_LENGTH:
        raise ValidationError(
            f"Implausible budget caps: {'; '.join(problems)}. Choose smaller caps, or give a reason of at least "
            f"{MIN_REASON_LENGTH} characters to override (CLI --override-caps REASON; API cap_override_reason); "
            "the override is logged.",
            extra={"field": "epsilon_cap" if epsilon > limit else "delta_cap", "problems": problems},
            code="implausible_caps",
        )
    return {"cap_override": {"problems": problems, "reason": override_reason.strip()}}


def _check_name(name: str) -> None:
    try:
        validate_slug(name)
    except Exception as error:
        raise ValidationError(
            f"Dataset name {name!r} must use letters, digits, '-' and '_' only.", extra={"field": "name"}
        ) from error


def _dataset_create(
    *,
    actor: User,
    name: str,
    epsilon_cap: Decimal,
    delta_cap: Decimal,
    description: str,
    sensitivity: str,
    caps_note: dict[str, Any],
) -> Dataset:
    try:
        with transaction.atomic():
            dataset = Dataset.objects.create(
                name=name,
                owner=actor,
                epsilon_cap=epsilon_cap,
                delta_cap=delta_cap,
                description=description,
                sensitivity=sensitivity,
            )
    except IntegrityError as error:
        raise ConflictError(f"Dataset {name!r} was registered concurrently; try again.") from error
    audit_event_record(
        actor=actor,
        action="dataset.register",
        obj=dataset,
        after={"name": name, "epsilon_cap": epsilon_cap, "delta_cap": delta_cap, **caps_note},
    )
    return dataset


def dataset_version_store(
    *,
    dataset: Dataset,
    table: Table,
    actor: User | None,
    kind: str,
    written: list[Removable],
    filename: str = "",
    parent: DatasetVersion | None = None,
    lineage: dict[str, Any] | None = None,
    event_notes: dict[str, Any] | None = None,
    declared_rows: int | None = None,
) -> RegistrationResult:
    """Store a validated table as a content-addressed version (identical content: the existing one).

    Must run inside a transaction holding the dataset's row lock, wrapped by
    ``files_removed_on_error`` whose list is ``written``: the file is written before
    the row and removed again if the transaction does not commit.
    """
    stored = _StoredForm(
        content_hash=table.content_hash,
        schema=table.schema,
        n_rows=len(table.frame),
        n_columns=len(table.frame.columns),
        size_bytes=len(table.canonical_bytes),
        schema_inferred=table.schema_inferred,
        dropped_columns=table.dropped_columns,
        warnings=table.warnings,
        place=lambda storage, key: storage.write_new(key, table.canonical_bytes),
    )
    return _version_record(
        dataset=dataset,
        stored=stored,
        actor=actor,
        kind=kind,
        written=written,
        filename=filename,
        parent=parent,
        lineage=lineage,
        event_notes=event_notes,
        declared_rows=declared_rows,
    )


def dataset_version_store_streamed(
    *,
    dataset: Dataset,
    streamed: StreamedTable,
    kind: str,
    written: list[Removable],
    parent: DatasetVersion,
    lineage: dict[str, Any],
) -> RegistrationResult:
    """Store a table a job has already written in its stored form (``synth_engine.streaming``):
    the file is moved into place, never read back; as :func:`dataset_version_store` otherwise."""
    stored = _StoredForm(
        content_hash=streamed.content_hash,
        schema=streamed.schema,
        n_rows=streamed.n_rows,
        n_columns=streamed.n_columns,
        size_bytes=streamed.size_bytes,
        schema_inferred=False,
        dropped_columns=[],
        warnings=[],
        place=lambda storage, key: storage.put_new(streamed.path, key),
        file_format=streamed.file_format,
    )
    try:
        return _version_record(
            dataset=dataset, stored=stored, actor=None, kind=kind, written=written, parent=parent, lineage=lineage
        )
    finally:
        streamed.discard()  # identical content was already stored: the new file is not needed


@dataclass
class _StoredForm:
    """What a version row records about its file, and how the file is put at its storage key."""

    content_hash: str
    schema: dict[str, Any]
    n_rows: int
    n_columns: int
    size_bytes: int
    schema_inferred: bool
    dropped_columns: list[str]
    warnings: list[str]
    place: Callable[[VersionStorage, str], bool]  # True when it wrote the key, False when it was already there
    file_format: str = CSV  # the stored form (``governance.output_formats``), named by the key's suffix


def _version_record(
    *,
    dataset: Dataset,
    stored: _StoredForm,
    actor: User | None,
    kind: str,
    written: list[Removable],
    filename: str = "",
    parent: DatasetVersion | None = None,
    lineage: dict[str, Any] | None = None,
    event_notes: dict[str, Any] | None = None,
    declared_rows: int | None = None,
) -> RegistrationResult:
    existing = DatasetVersion.objects.filter(dataset=dataset, kind=kind, content_hash=stored.content_hash).first()
    if existing is not None:
        if existing.schema != stored.schema:
            raise ConflictError(
                f"This content is already stored as {existing} with a different schema; "
                "column roles of stored content cannot be changed.",
                extra={"version": existing.number},
            )
        return RegistrationResult(existing, False, stored.warnings)
    storage_key = f"datasets/{dataset.name}/{kind}-{stored.content_hash}{SUFFIXES[stored.file_format]}"
    storage = version_storage()
    if stored.place(storage, storage_key):
        written.append(StoredFile(storage, storage_key))
    version = _version_create(
        actor=actor,
        dataset=dataset,
        kind=kind,
        content_hash=stored.content_hash,
        fields={
            "storage_key": storage_key,
            "n_rows": stored.n_rows,
            "n_columns": stored.n_columns,
            "size_bytes": stored.size_bytes,
            "schema": stored.schema,
            "schema_inferred": stored.schema_inferred,
            "dropped_columns": stored.dropped_columns,
            "original_filename": filename[:255],
            "parent": parent,
            "lineage": lineage or {},
        },
        event_notes={
            "dropped_columns": stored.dropped_columns,
            **{key: value for key, value in (event_notes or {}).items() if value},
        },
        declared_rows=declared_rows,
    )
    return RegistrationResult(version, True, stored.warnings)


def _version_create(
    *,
    actor: User | None,
    dataset: Dataset,
    kind: str,
    content_hash: str,
    fields: dict[str, Any],
    event_notes: dict[str, Any],
    declared_rows: int | None = None,
) -> DatasetVersion:
    """Create the dataset's next version and log it: the one place a version row is written, for
    uploads, derived versions and tables registered by reference alike.

    A source version whose row count the steward declared public (``declared_rows``, already
    checked equal to ``n_rows``) gets ``public_rows = n_rows`` and ``rows_declared``, recorded in
    its ``dataset_version.create`` event, and no DP estimate is charged for it."""
    if declared_rows is not None:
        if kind != VersionKind.SOURCE or declared_rows != fields["n_rows"]:
            raise ValidationError("Only a source version's exact row count can be declared public.")
        fields = {**fields, "public_rows": declared_rows, "rows_declared": True}
        event_notes = {**event_notes, "declared_rows": declared_rows}
    number = (dataset.versions.aggregate(top=Max("number"))["top"] or 0) + 1
    version = DatasetVersion.objects.create(
        dataset=dataset, number=number, kind=kind, content_hash=content_hash, created_by=actor, **fields
    )
    audit_event_record(
        actor=actor,
        action="dataset_version.create",
        obj=version,
        after={
            "dataset": dataset.name,
            "number": number,
            "kind": kind,
            "content_hash": content_hash,
            "n_rows": version.n_rows,
            "n_columns": version.n_columns,
            **event_notes,
        },
    )
    if kind == VersionKind.SOURCE:
        _public_rows_ensure(version, actor)
    return version


def _public_rows_ensure(version: DatasetVersion, actor: User | None) -> None:
    """Draw a new source version's DP row estimate at registration (charged once to the ledger:
    ``version_public_rows``), so that filing and the request outlook never spend. A dataset whose
    remaining budget cannot pay for it is still registered; it is refused at filing, saying why."""
    try:
        with transaction.atomic():
            version_public_rows(version=version, actor=actor)
    except BudgetExhaustedError:
        pass


@contextlib.contextmanager
def files_removed_on_error() -> Iterator[list[Removable]]:
    """Collect files written during a unit of work; delete them if the work fails.

    Wrap the ``transaction.atomic()`` block with this, so a failed commit leaves no file behind.
    """
    written: list[Removable] = []
    try:
        yield written
    except BaseException:
        removed_after_error(written)  # a file the store will not remove is logged; this error is raised
        raise


IN_FLIGHT_STATES = ("approved", "generating")


def dataset_schema_declare(*, actor: User, name: str, column: str, changes: dict[str, Any]) -> RegistrationResult:
    """Declare one column's role or public domain on the dataset's newest source version (logged).

    ``changes`` maps keys of :data:`DECLARABLE_KEYS` to a value, or to ``None`` to remove the
    declaration. See :func:`dataset_schema_declare_columns`.
    """
    return dataset_schema_declare_columns(actor=actor, name=name, declarations={column: changes})


def dataset_schema_declare_columns(
    *, actor: User, name: str, declarations: dict[str, dict[str, Any]], accept_proposed_types: bool = False
) -> RegistrationResult:
    """Declare several columns' types, roles or public domains on the newest source version, all or none.

    ``declarations`` maps a column name to its changes (keys of :data:`DECLARABLE_KEYS`; ``None``
    removes a declaration). With ``accept_proposed_types`` every type still proposed from the rows
    is declared as proposed too (a column's own ``type`` in ``declarations`` wins), and the audit
    event says so (``accepted_proposed_type``). Every column is checked before anything is written,
    every mistake is named in one error (``extra["errors"]``, each with its ``column``), and each
    declared column is one ``dataset_version.declare`` audit event (before and after). Refused while
    a job may be reading the version (an approved or generating request); filed requests are checked
    again at approval against the new declaration. Nothing is made public that is not named here.
    """
    if not user_has_role(actor, Role.STEWARD):
        raise PermissionDeniedError("Only a data steward can declare a dataset's schema.")
    declarations = {column: changes for column, changes in declarations.items() if changes}
    if not declarations and not accept_proposed_types:
        raise ValidationError(
            f"Nothing to declare: name a column and at least one of {', '.join(DECLARABLE_KEYS)}.",
            extra={"field": "columns"},
        )
    with transaction.atomic():
        version = _newest_source_version_locked(name)
        if version.source_reference:
            _check_reference_declarations(version, declarations)
        accepted: set[str] = set()
        if accept_proposed_types:
            proposed = proposed_types_declarations(version.schema)
            if not proposed:
                raise ValidationError(
                    f"Nothing to declare: no type of {version} is proposed (every type is declared).",
                    extra={"field": "accept_proposed_types"},
                )
            accepted = {column for column in proposed if "type" not in declarations.get(column, {})}
            declarations = {
                **proposed,
                **{column: {**proposed.get(column, {}), **changes} for column, changes in declarations.items()},
            }
        _check_not_in_flight(version)
        if version.source_reference:
            schema, events, warnings = _reference_types_declared(version, declarations)
        else:
            schema, events, warnings = _declarations_applied(version, declarations)
        version.schema = schema
        version.schema_inferred = False
        version.save(update_fields=["schema", "schema_inferred"])
        if version.rows_check_due:
            # stored before the rows were checked: the declared columns hold (above); check them all
            reason = version_rows_check(version)
            warnings = [*warnings, reason] if reason else warnings
        for before, after, noted in events:
            notes = {"warnings": noted} if noted else {}
            if after["name"] in accepted:
                notes["accepted_proposed_type"] = after["type"]
            audit_event_record(
                actor=actor,
                action="dataset_version.declare",
                obj=version,
                before={"column": before},
                after={"column": after, **notes},
            )
    return RegistrationResult(version, False, warnings)


def _check_reference_declarations(version: DatasetVersion, declarations: dict[str, dict[str, Any]]) -> None:
    """A version by reference has its schema fixed at registration, except that a type its catalog
    proposed (``type_proposed``) is declared as proposed: nothing else may be declared on it (the
    data is checked against the schema in its engine, at registration only)."""
    types = {entry.get("name"): entry.get("type") for entry in version.schema.get("columns", [])}
    for column, changes in declarations.items():
        if set(changes) == {"type"} and column in types and changes["type"] == types[column]:
            continue
        raise ConflictError(
            f"{version} refers to {_reference_place(version)} where it lives; its schema is fixed at registration "
            "(only a type its catalog proposed can be declared, as proposed: "
            f"`synthgate dataset declare {version.dataset.name} --accept-proposed-types`): register the data again "
            "with the new schema (`synthgate source register`).",
            extra={"version": version.number, "column": column},
        )


def _reference_place(version: DatasetVersion) -> str:
    reference = version.source_reference
    if reference.get("table"):
        return f"table {reference['table']!r}"
    return f"the Parquet data at {reference.get('path')!r}"


def _reference_types_declared(
    version: DatasetVersion, declarations: dict[str, dict[str, Any]]
) -> tuple[dict[str, Any], list[tuple[dict[str, Any], dict[str, Any], list[str]]], list[str]]:
    """A version by reference's schema with its proposed types declared as proposed (the types are
    unchanged, so its data still matches them as checked in its engine at registration): (schema,
    one (before, after, no warnings) per column, no warnings)."""
    schema = version.schema
    events: list[tuple[dict[str, Any], dict[str, Any], list[str]]] = []
    for column, changes in declarations.items():
        before, after, schema = _declared_schema(version, schema, column, changes)
        events.append((before, after, []))
    return schema, events, []


def dataset_schema_declarations_check(*, actor: User, name: str, declarations: dict[str, dict[str, Any]]) -> None:
    """Check declarations as :func:`dataset_schema_declare_columns` would, writing nothing: every
    column's mistakes in one ValidationError (``extra["errors"]``, each with its ``column``).

    For a form that found mistakes of its own: the service's mistakes in the other fields and
    columns are shown beside them, so one send names them all. Columns without changes are skipped.
    """
    if not user_has_role(actor, Role.STEWARD):
        raise PermissionDeniedError("Only a data steward can declare a dataset's schema.")
    declarations = {column: changes for column, changes in declarations.items() if changes}
    dataset = Dataset.objects.filter(name=name).first()
    if dataset is None:
        raise NotFoundError(f"No dataset named {name!r}.")
    version = dataset.versions.filter(kind=VersionKind.SOURCE).order_by("-number").first()
    if declarations and version is not None and not version.source_reference:
        _declarations_applied(version, declarations)


def _declarations_applied(
    version: DatasetVersion, declarations: dict[str, dict[str, Any]]
) -> tuple[dict[str, Any], list[tuple[dict[str, Any], dict[str, Any], list[str]]], list[str]]:
    """The version's schema with every declaration applied: (schema, one (before, after, warnings)
    per column, warnings); a ValidationError naming every column's mistake when any is refused."""
    frame = _stored_frame(version)
    schema, events, warnings, errors = version.schema, [], [], []
    for column, changes in declarations.items():
        try:
            before, after, declared = _declared_schema(version, schema, column, changes)
            if after["type"] != before["type"]:
                frame = _retyped_frame(version, declared, column)
            _check_declarations_hold(frame, [after])
        except ValidationError as error:
            errors.append(error)
            continue
        schema = declared
        noted = domain_read_from_data_warnings(frame, {"columns": [after]})
        events.append((before, after, noted))
        warnings += noted
    if errors:
        raise errors_combined(errors)
    return schema, events, warnings


def _retyped_frame(version: DatasetVersion, schema: dict[str, Any], column: str) -> pd.DataFrame:
    """The stored rows read with ``column``'s newly declared type; a ValidationError naming the
    column and the first value that does not fit (nothing is written)."""
    try:
        return version_storage().read_version(version.storage_key, schema)
    except ValidationError as error:
        kind = next(entry["type"] for entry in schema["columns"] if entry["name"] == column)
        raise ValidationError(
            f"Column {column!r} cannot be declared {kind}: {error.message}",
            extra={"field": "type", "column": column},
        ) from error


def dataset_schema_types_accept(*, actor: User, name: str) -> RegistrationResult:
    """Declare every type still proposed from the rows on the newest source version, as proposed:
    the steward's one-step confirmation (:func:`dataset_schema_declare_columns` with
    ``accept_proposed_types``), one ``dataset_version.declare`` audit event per column naming the
    steward, the time and ``accepted_proposed_type``. Refused when no type is proposed."""
    return dataset_schema_declare_columns(actor=actor, name=name, declarations={}, accept_proposed_types=True)


def dataset_schema_types_repropose(*, actor: User, name: str, columns: list[str] | None = None) -> RegistrationResult:
    """Mark declared types of the newest source version as proposals again (``type_proposed``): the
    steward's way to put types back under review, for versions registered before type proposals
    existed (their types read from the rows count as declared, and no stored field tells them
    apart: docs/datasets.md, "Versions registered before type proposals").

    ``columns`` names the columns (default: every column whose type is declared). The version then
    cannot be requested, and requesters read the types as ``null``, until a steward declares them
    (:func:`dataset_schema_types_accept`, or another ``type``); filed requests on it are refused at
    approval. Each column is one ``dataset_version.declare`` audit event (``reproposed_type``).
    Refused while a job may be reading the version, for an unknown column, or when every named type
    is already proposed; nothing is written then.
    """
    if not user_has_role(actor, Role.STEWARD):
        raise PermissionDeniedError("Only a data steward can re-propose a dataset's types.")
    with transaction.atomic():
        version = _newest_source_version_locked(name)
        entries = [entry for entry in version.schema.get("columns", []) if isinstance(entry, dict)]
        names = [entry.get("name") for entry in entries]
        unknown = [column for column in columns or [] if column not in names]
        if unknown:
            raise ValidationError(
                f"{version} has no column {', '.join(map(repr, unknown))}; its columns: {', '.join(map(str, names))}.",
                extra={"field": "column", "column": unknown[0]},
            )
        chosen = set(columns or names)
        targets = [entry["name"] for entry in entries if entry.get("name") in chosen and not entry.get("type_proposed")]
        if not targets:
            raise ValidationError(
                f"Nothing to re-propose: every named type of {version} is already proposed.",
                extra={"field": "repropose_types"},
            )
        _check_not_in_flight(version)
        schema = {
            **version.schema,
            "columns": [
                {**entry, "type_proposed": True} if isinstance(entry, dict) and entry.get("name") in targets else entry
                for entry in version.schema["columns"]
            ],
        }
        version.schema = schema
        version.save(update_fields=["schema"])
        for before in entries:
            if before["name"] in targets:
                audit_event_record(
                    actor=actor,
                    action="dataset_version.declare",
                    obj=version,
                    before={"column": before},
                    after={"column": {**before, "type_proposed": True}, "reproposed_type": before["type"]},
                )
    return RegistrationResult(version, False, [])


def _check_not_in_flight(version: DatasetVersion) -> None:
    busy = list(version.requests.filter(state__in=IN_FLIGHT_STATES).values_list("pk", flat=True))
    if busy:
        raise ConflictError(
            f"Requests {', '.join(f'#{pk}' for pk in busy)} are approved or generating on {version}; "
            "declare the schema once their jobs have finished.",
            extra={"requests": busy},
        )


def _declared_schema(
    version: DatasetVersion, schema: dict[str, Any], column: str, changes: dict[str, Any]
) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
    """``schema`` with ``column`` changed: (the column before, the column after, the whole schema)."""
    names = [entry["name"] for entry in schema["columns"]]
    if column not in names:
        raise ValidationError(
            f"{version} has no column {column!r}; its columns: {', '.join(names)}.",
            extra={"field": "column", "column": column},
        )
    if changes.get("role") == "identifier":
        raise ValidationError(
            f"Column {column!r}: a stored column cannot become an identifier (identifiers are dropped before "
            "storage); register a new version with the column marked identifier instead.",
            extra={"field": "role", "column": column},
        )
    try:
        declared = schema_declared(schema, {column: changes})
        parse_schema(declared, strict=True)
    except SchemaError as error:
        raise ValidationError(str(error), extra={"field": "schema", "column": column}) from error
    position = names.index(column)
    return dict(schema["columns"][position]), declared["columns"][position], declared


def _check_categories_cover(frame: pd.DataFrame, entry: dict[str, Any]) -> None:
    if entry.get("type") != "categorical" or "categories" not in entry:
        return
    declared = {str(category) for category in entry["categories"]}
    outside = sorted({str(value) for value in frame[entry["name"]].dropna().unique()} - declared)
    if outside:
        raise ValidationError(
            f"Column {entry['name']!r} holds values outside the declared categories: {', '.join(outside[:10])}. "
            "Declare every category the codebook lists.",
            extra={"field": "categories", "column": entry["name"]},
        )


def _check_declarations_hold(frame: pd.DataFrame, entries: list[dict[str, Any]]) -> None:
    """Refuse declarations of ``entries`` that the stored rows contradict: each column's declared
    categories must cover its values (``_check_categories_cover``), then the declarations about every
    row (``_check_rows_hold``). Registration, a declaration and ``version_rows_check`` judge alike."""
    for entry in entries:
        _check_categories_cover(frame, entry)
    _check_rows_hold(frame, entries)


def _check_rows_hold(frame: pd.DataFrame, entries: list[dict[str, Any]]) -> None:
    """Refuse declarations the stored rows contradict (``nullable: false`` or a label or protected
    column without ``"nullable": true`` over a missing value, a ``step`` a value is off, a weekdays
    ``calendar`` with a weekend day): the steward decides here, before anything is filed. Left to
    the job, the refusal was the requester's to read, and one row flipped it (issue 11.3)."""
    for entry in entries:
        if entry.get("type") == "categorical" and any(not isinstance(c, str) for c in entry.get("categories", [])):
            raise ValidationError(  # the stored rows hold text: 1 would match no row, and the job would say how many
                f"Column {entry['name']!r}: declare its categories as the texts the rows hold "
                f"({', '.join(json.dumps(str(c)) for c in entry['categories'][:3])}, not "
                f"{', '.join(json.dumps(c) for c in entry['categories'][:3])}).",
                extra={"field": "categories", "column": entry["name"]},
            )
        try:
            check_rows_hold_declarations(frame, [parse_column(0, entry)])
        except SchemaMismatchError as error:
            raise ValidationError(
                f"Column {entry['name']!r}: the stored rows contradict the declaration: {error}. Correct the rows "
                "or the declaration.",
                extra={"field": "schema", "column": entry["name"]},
            ) from error


def version_rows_check(version: DatasetVersion) -> str:
    """Check an uploaded source version's stored rows against all its declarations, as registration
    does (``_check_declarations_hold``), and record the outcome on the version
    (``rows_checked``; ``rows_contradiction``, which only stewards read). Returns the steward's
    reason, naming the column ("" when the rows hold). For versions stored before registration
    checked this (migration 0015): filing runs it before anything is filed, the job before it reads
    the rows, ``synthgate dataset check`` at upgrade time. The caller tells a requester only that
    the declarations await the steward's review: the reason is one row's to flip (issue 11.3)."""
    try:
        _check_declarations_hold(_stored_frame(version), version.schema["columns"])
        reason = ""
    except ValidationError as error:
        reason = error.message
    _rows_check_record(version, reason)
    return reason


def _rows_check_record(version: DatasetVersion, reason: str) -> None:
    version.rows_checked, version.rows_contradiction = not reason, reason
    DatasetVersion.objects.filter(pk=version.pk).update(rows_checked=not reason, rows_contradiction=reason)


def dataset_rows_check(*, actor: User, name: str | None = None) -> list[tuple[DatasetVersion, str]]:
    """Check every uploaded source version (of dataset ``name``, or of all) whose rows were never
    checked against its declarations (``version_rows_check``): the upgrade step for versions stored
    before registration checked them. Returns (version, reason) per version checked, "" when its
    rows hold; each outcome is recorded on the version and logged (``dataset_version.rows_check``)."""
    if not user_has_role(actor, Role.STEWARD):
        raise PermissionDeniedError("Only a data steward can check a dataset's stored rows.")
    versions = DatasetVersion.objects.filter(kind=VersionKind.SOURCE, rows_checked=False, source_reference={})
    if name is not None:
        if not Dataset.objects.filter(name=name).exists():
            raise NotFoundError(f"No dataset named {name!r}.")
        versions = versions.filter(dataset__name=name)
    checked = []
    for version in versions.select_related("dataset").order_by("dataset__name", "number"):
        reason = version_rows_check(version)
        audit_event_record(
            actor=actor, action="dataset_version.rows_check", obj=version, after={"holds": not reason, "reason": reason}
        )
        checked.append((version, reason))
    return checked


def dataset_schema_suggestions(*, actor: User, version: DatasetVersion) -> dict[str, dict[str, Any]]:
    """What a stored source version's rows suggest its steward declare (resolution, calendar, step;
    ``governance.ingest.suggested_declarations``), for the steward only: a suggestion is read from
    the rows and becomes public only when the steward declares it."""
    if not user_has_role(actor, Role.STEWARD):
        raise PermissionDeniedError("Only a data steward can see what the rows suggest declaring.")
    if version.source_reference or not version.storage_key:
        return {}
    if not any(
        (column.get("type") == "datetime" and column.get("resolution", "day") == "day" and "calendar" not in column)
        or (column.get("type") == "float" and "step" not in column)
        for column in version.schema.get("columns", [])
    ):
        return {}  # nothing could be suggested: the rows are not read
    return suggested_declarations(_stored_frame(version), version.schema)


def _stored_frame(version: DatasetVersion) -> pd.DataFrame:
    return version_storage().read_version(version.storage_key, version.schema)


def _newest_source_version_locked(name: str) -> DatasetVersion:
    """The newest source version of dataset ``name``, its dataset row locked for the transaction
    (declarations and re-proposals of its schema are serialised)."""
    dataset = Dataset.objects.select_for_update().filter(name=name).first()
    if dataset is None:
        raise NotFoundError(f"No dataset named {name!r}.")
    version = dataset.versions.filter(kind=VersionKind.SOURCE).order_by("-number").first()
    if version is None:
        raise ConflictError(f"Dataset {name!r} has no source version yet.")
    return version
