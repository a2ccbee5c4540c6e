"""Registering source tables: validate once at the edge, store content-addressed bytes."""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

from django.conf import settings
from django.contrib.auth.models import AbstractUser
from django.db import IntegrityError, transaction
from django.db.models import Max

from core.amounts import amount_text
from core.errors import ConflictError, PermissionDeniedError, ValidationError
from core.limits import text_checked
from governance.ingest import IngestLimits, Table, read_table
from governance.models import Dataset, DatasetVersion, Role, Sensitivity, VersionKind
from governance.permissions import user_has_role
from governance.services.audit_log import audit_event_record


@dataclass(frozen=True)
class RegistrationResult:
    version: DatasetVersion
    created: bool
    warnings: list[str]


def ingest_limits() -> IngestLimits:
    return IngestLimits(
        max_upload_bytes=settings.SYNTHGATE_MAX_UPLOAD_BYTES,
        max_expanded_bytes=settings.SYNTHGATE_MAX_EXPANDED_BYTES,
        max_compression_ratio=settings.SYNTHGATE_MAX_COMPRESSION_RATIO,
        max_columns=settings.SYNTHGATE_MAX_COLUMNS,
        max_cell_chars=settings.SYNTHGATE_MAX_CELL_CHARS,
    )


def parse_decimal(
    value: Any,
    *,
    field: str,
    minimum_exclusive: Decimal | None = None,
    maximum_exclusive: Decimal | None = None,
    minimum: Decimal | None = None,
) -> Decimal:
    """An exact Decimal from user input, with the field named in every error."""
    if isinstance(value, float):
        value = repr(value)
    try:
        number = Decimal(str(value).strip())
    except (InvalidOperation, ValueError) as error:
        raise ValidationError(f"{field} must be a number; got {value!r}.", extra={"field": field}) from error
    if not number.is_finite():
        raise ValidationError(f"{field} must be a finite number; got {value!r}.", extra={"field": field})
    if minimum_exclusive is not None and number <= minimum_exclusive:
        raise ValidationError(f"{field} must be greater than {minimum_exclusive}; got {value}.", extra={"field": field})
    if minimum is not None and number < minimum:
        raise ValidationError(f"{field} must be at least {minimum}; got {value}.", extra={"field": field})
    if maximum_exclusive is not None and number >= maximum_exclusive:
        raise ValidationError(f"{field} must be less than {maximum_exclusive}; got {value}.", extra={"field": field})
    return number


def dataset_register(
    *,
    actor: AbstractUser,
    name: str,
    path: Path,
    filename: str,
    epsilon_cap: Any,
    delta_cap: Any,
    schema: dict[str, Any] | None = None,
    description: str = "",
    sensitivity: str = "confidential",
) -> RegistrationResult:
    """Create a dataset with budget caps and its first source version, or add a version to it."""
    if not user_has_role(actor, Role.STEWARD):
        raise PermissionDeniedError("Only a data steward can register datasets.")
    epsilon = parse_decimal(epsilon_cap, field="epsilon_cap", minimum_exclusive=Decimal(0))
    delta = parse_decimal(delta_cap, field="delta_cap", minimum=Decimal(0), maximum_exclusive=Decimal(1))
    _check_name(name)
    description = text_checked(description, field="description")
    if sensitivity not in Sensitivity.values:
        raise ValidationError(
            f"sensitivity must be one of {', '.join(Sensitivity.values)}; got {sensitivity!r}.",
            extra={"field": "sensitivity"},
        )
    table = read_table(path, filename=filename, limits=ingest_limits(), schema=schema)
    with files_removed_on_error() as written, transaction.atomic():
        dataset = Dataset.objects.select_for_update().filter(name=name).first()
        if dataset is None:
            dataset = _dataset_create(
                actor=actor,
                name=name,
                epsilon_cap=epsilon,
                delta_cap=delta,
                description=description,
                sensitivity=sensitivity,
            )
        elif dataset.epsilon_cap != epsilon or dataset.delta_cap != delta:
            raise ConflictError(
                f"Dataset {name!r} exists with caps ε = {amount_text(dataset.epsilon_cap)}, "
                f"δ = {amount_text(dataset.delta_cap)}; "
                "caps cannot be changed by registering a new version.",
                extra={"epsilon_cap": amount_text(dataset.epsilon_cap), "delta_cap": amount_text(dataset.delta_cap)},
            )
        return dataset_version_store(
            dataset=dataset, table=table, actor=actor, kind=VersionKind.SOURCE, written=written, filename=filename
        )


def _check_name(name: str) -> None:
    from django.core.validators import validate_slug

    try:
        validate_slug(name)
    except Exception as error:
        raise ValidationError(
            f"Dataset name {name!r} must use letters, digits, '-' and '_' only.", extra={"field": "name"}
        ) from error


def _dataset_create(
    *, actor: AbstractUser, name: str, epsilon_cap: Decimal, delta_cap: Decimal, description: str, sensitivity: str
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
        after={"name": name, "epsilon_cap": epsilon_cap, "delta_cap": delta_cap},
    )
    return dataset


def dataset_version_store(
    *,
    dataset: Dataset,
    table: Table,
    actor: AbstractUser | None,
    kind: str,
    written: list[Path],
    filename: str = "",
    parent: DatasetVersion | None = None,
    lineage: dict[str, Any] | None = None,
) -> RegistrationResult:
    """Store a validated table as a content-addressed version (identical content: the existing one).

    Must run inside a transaction holding the dataset's row lock, wrapped by
    ``files_removed_on_error`` whose list is ``written``: the file is written before
    the row and removed again if the transaction does not commit.
    """
    existing = DatasetVersion.objects.filter(dataset=dataset, kind=kind, content_hash=table.content_hash).first()
    if existing is not None:
        if existing.schema != table.schema:
            raise ConflictError(
                f"This content is already stored as {existing} with a different schema; "
                "column roles of stored content cannot be changed.",
                extra={"version": existing.number},
            )
        return RegistrationResult(existing, False, table.warnings)
    storage_key = f"datasets/{dataset.name}/{kind}-{table.content_hash}.csv"
    target = Path(settings.DATA_DIR) / storage_key
    if _write_atomically(target, table.canonical_bytes):
        written.append(target)
    number = (dataset.versions.aggregate(top=Max("number"))["top"] or 0) + 1
    version = DatasetVersion.objects.create(
        dataset=dataset,
        number=number,
        kind=kind,
        content_hash=table.content_hash,
        storage_key=storage_key,
        n_rows=len(table.frame),
        n_columns=len(table.frame.columns),
        size_bytes=len(table.canonical_bytes),
        schema=table.schema,
        schema_inferred=table.schema_inferred,
        dropped_columns=table.dropped_columns,
        original_filename=filename[:255],
        parent=parent,
        lineage=lineage or {},
        created_by=actor,
    )
    audit_event_record(
        actor=actor,
        action="dataset_version.create",
        obj=version,
        after={
            "dataset": dataset.name,
            "number": number,
            "kind": kind,
            "content_hash": table.content_hash,
            "n_rows": version.n_rows,
            "n_columns": version.n_columns,
            "dropped_columns": table.dropped_columns,
        },
    )
    return RegistrationResult(version, True, table.warnings)


def _write_atomically(path: Path, data: bytes) -> bool:
    """Write via a temporary file and rename; return False when identical content was already there."""
    if path.exists():
        return False
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=".upload-")
    try:
        with os.fdopen(handle, "wb") as stream:
            stream.write(data)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    return True


@contextlib.contextmanager
def files_removed_on_error() -> Iterator[list[Path]]:
    """Collect files written during a unit of work; delete them if the work fails.

    Wrap the ``transaction.atomic()`` block with this, so a failed commit leaves no file behind.
    """
    written: list[Path] = []
    try:
        yield written
    except BaseException:
        for path in written:
            path.unlink(missing_ok=True)
        raise
