"""Column profiles of stored versions for the dataset and release pages, cached per version.

A profile (``audits.metrics.profiles``: missing share, distinct values, a histogram per column,
and the first rows) is computed with pandas from a version's stored table the first time a page
asks for it and kept in the version storage under ``profiles/``, named after the version's
content hash and what else decides the result (the schema, the sample size, the format), so the
next page reads a small JSON file and never the table. A version of more than
``SYNTHGATE_PROFILE_SAMPLE_ROWS`` rows is profiled from a uniform random sample of that many rows
(seeded by its content hash, so every worker computes the same), read in one pass over the file
without holding the table, and the page says so.

Who sees which profile is the product rule "everything a requester or recipient can read is a
release": a release's page shows the profile of its synthetic rows; a dataset's page shows the
profile of its real source rows only to those who read real diagnostics (stewards, approvers,
auditors: ``audits.recipient.reads_real_diagnostics``), and anyone else the profile of the newest
live release of that dataset they may read, labelled as synthetic, or nothing.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.contrib.auth.models import User

from audits.datasheets.charts import REAL_COLOUR, SYNTHETIC_COLOUR
from audits.models import Release
from audits.recipient import reads_real_diagnostics
from audits.selectors import release_list
from dashboard.charts import profile_histogram_svg
from governance.models import Dataset, DatasetVersion, RequestState, VersionKind
from governance.output_formats import PARQUET, key_format
from governance.storage import VersionStorage, version_storage

# Bump when the stored JSON changes shape or meaning: older cached profiles are then ignored.
PROFILE_FORMAT = 1
PREVIEW_ROWS = 10


def profile_key(version: DatasetVersion) -> str:
    """Where the version's profile is cached: its content hash and a digest of the other inputs."""
    inputs = json.dumps(
        {"format": PROFILE_FORMAT, "sample": _sample_rows(), "preview": PREVIEW_ROWS, "schema": version.schema},
        sort_keys=True,
    )
    return f"profiles/{version.content_hash}-{hashlib.sha256(inputs.encode()).hexdigest()[:16]}.json"


def version_profile(version: DatasetVersion) -> dict[str, Any] | None:
    """The version's profile (cached), or None when its rows are not stored here (a table
    registered by reference, or a file that is gone)."""
    storage = version_storage()
    if not version.storage_key:
        return None
    key = profile_key(version)
    if storage.exists(key):
        cached: dict[str, Any] = json.loads(storage.read_bytes(key))
        return cached
    if not storage.exists(version.storage_key):
        return None
    profile = _compute(storage, version)
    storage.write_new(key, json.dumps(profile, sort_keys=True).encode())
    return profile


def _sample_rows() -> int:
    return int(settings.SYNTHGATE_PROFILE_SAMPLE_ROWS)


def _compute(storage: VersionStorage, version: DatasetVersion) -> dict[str, Any]:
    # pandas and the profile code load only when a profile is computed, never for a cached one.
    from audits.metrics.profiles import first_rows, sample_positions, table_profile
    from governance.ingest import canonical_frame

    limit = _sample_rows()
    types = {column["name"]: column.get("type", "categorical") for column in version.schema.get("columns", [])}
    if version.n_rows <= limit:
        frame = storage.read_version(version.storage_key, version.schema)
        head = frame
    else:
        seed = int(version.content_hash[:16], 16) if version.content_hash else 0
        chosen = sample_positions(version.n_rows, limit, seed=seed)
        if key_format(version.storage_key) == PARQUET:  # read a row group at a time
            frame = storage.read_version_rows(version.storage_key, version.schema, sorted(chosen.tolist()))
            head = storage.read_version_rows(version.storage_key, version.schema, range(PREVIEW_ROWS))
            if frame is None or head is None:
                raise ValueError(f"{version} holds fewer rows than recorded")
        else:
            sample_text, head_text = _read_rows(storage, version.storage_key, set(chosen.tolist()), PREVIEW_ROWS)
            frame = canonical_frame(sample_text, version.schema)
            head = canonical_frame(head_text, version.schema)
    profile = table_profile(frame, types)
    profile.update(
        {
            "format": PROFILE_FORMAT,
            "n_rows": int(version.n_rows),
            "sampled": int(version.n_rows) > limit,
            "head": first_rows(head, PREVIEW_ROWS),
            "names": [str(name) for name in frame.columns],
        }
    )
    return profile


def _read_rows(storage: VersionStorage, key: str, chosen: set[int], head: int) -> tuple[str, str]:
    """The stored CSV's header with the rows at ``chosen`` positions, and with its first ``head``
    rows, in one pass that keeps only those rows."""
    sample, first = io.StringIO(), io.StringIO()
    sample_writer, first_writer = csv.writer(sample, lineterminator="\n"), csv.writer(first, lineterminator="\n")
    with storage.open(key, "rb") as raw, io.TextIOWrapper(raw, encoding="utf-8", newline="") as text:
        reader = csv.reader(text)
        header = next(reader)
        sample_writer.writerow(header)
        first_writer.writerow(header)
        for position, row in enumerate(reader):
            if position < head:
                first_writer.writerow(row)
            if position in chosen:
                sample_writer.writerow(row)
    return sample.getvalue(), first.getvalue()


@dataclass
class ProfileView:
    """A profile ready for a page: what it describes, in words, and one histogram per column."""

    title: str
    note: str
    synthetic: bool
    profile: dict[str, Any]
    columns: list[dict[str, Any]]
    release: Release | None = None

    @property
    def head(self) -> list[list[str]]:
        return list(self.profile.get("head", []))

    @property
    def names(self) -> list[str]:
        return list(self.profile.get("names", []))


def profile_view(
    version: DatasetVersion, *, synthetic: bool, title: str, note: str, release: Release | None = None
) -> ProfileView | None:
    profile = version_profile(version)
    if profile is None:
        return None
    rows = int(profile["rows"])
    colour = SYNTHETIC_COLOUR if synthetic else REAL_COLOUR
    columns = []
    for column in profile["columns"]:
        histogram = column["histogram"]
        labels = list(histogram["labels"]) + (
            [f"other ({histogram['other_values']} values)"] if histogram["other"] else []
        )
        counts = list(histogram["counts"]) + ([histogram["other"]] if histogram["other"] else [])
        columns.append(
            {
                **column,
                "missing_percent": f"{100 * column['missing_share']:.1f}",
                "svg": profile_histogram_svg(column, rows=rows, colour=colour),
                "table": [
                    (label, count, f"{100 * count / rows:.1f}" if rows else "0.0")
                    for label, count in zip(labels, counts, strict=True)
                ],
                "binned": histogram["kind"] == "numeric",
            }
        )
    if profile.get("sampled"):
        note += f" Computed from a uniform random sample of {rows:,} of the {int(profile['n_rows']):,} rows."
    return ProfileView(title=title, note=note, synthetic=synthetic, profile=profile, columns=columns, release=release)


def release_profile(release: Release) -> ProfileView | None:
    """The profile of the synthetic rows a release serves (anyone who may read the release)."""
    return profile_view(
        release.version,
        synthetic=True,
        title="Column profiles (synthetic rows)",
        note="Computed from the synthetic table this release serves, never from the real rows.",
        release=release,
    )


def dataset_profile(*, user: User, dataset: Dataset, source: DatasetVersion | None) -> ProfileView | None:
    """The profile a dataset's page shows ``user`` (see the module's note)."""
    if reads_real_diagnostics(user):
        if source is None:
            return None
        return profile_view(
            source,
            synthetic=False,
            title=f"Column profiles of the real rows (source v{source.number})",
            note="Computed from the real rows: shown only to stewards, approvers and auditors.",
        )
    release = (
        release_list(user=user)
        .filter(
            request__dataset=dataset,
            revoked_at__isnull=True,
            request__state=RequestState.RELEASED,
            version__kind=VersionKind.SYNTHETIC,
        )
        .order_by("-created_at", "-id")
        .first()
    )
    if release is None:
        return None
    return profile_view(
        release.version,
        synthetic=True,
        title=f"Column profiles of release #{release.pk} (synthetic rows)",
        note=f"Computed from the synthetic rows of release #{release.pk}, not from the real rows, "
        "which only stewards, approvers and auditors see profiled.",
        release=release,
    )
