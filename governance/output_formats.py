"""The stored forms of a table, light enough for any module to name (no pandas, no Arrow).

Every version is canonical CSV (``governance.canonical_csv``) except a job's synthetic output whose
request asked for Parquet (``DataRequest.output_format``; written by ``synth_engine.streaming``,
read by ``governance.parquet_form``). A version's form is named by its storage key's suffix.
"""

from __future__ import annotations

CSV, PARQUET = "csv", "parquet"
OUTPUT_FORMATS = (CSV, PARQUET)
SUFFIXES = {CSV: ".csv", PARQUET: ".parquet"}
CONTENT_TYPES = {CSV: "text/csv", PARQUET: "application/vnd.apache.parquet"}
DESCRIPTIONS = {CSV: "CSV (UTF-8)", PARQUET: "Parquet (zstd, one row group a sampled chunk)"}


def key_format(key: str) -> str:
    """The stored form of the file at ``key``: ``parquet`` for a ``.parquet`` key, else ``csv``."""
    return PARQUET if key.endswith(SUFFIXES[PARQUET]) else CSV


def output_format_checked(value: object) -> str:
    """A requested output format, or a ``ValidationError`` naming the ones offered."""
    from core.errors import ValidationError

    if value not in OUTPUT_FORMATS:
        raise ValidationError(
            f"Output format must be one of {', '.join(OUTPUT_FORMATS)}; got {value!r}.",
            extra={"field": "output_format", "allowed": list(OUTPUT_FORMATS)},
        )
    return str(value)
