"""Row fingerprints: which people a source table holds, without keeping its rows twice.

Differential privacy composes over people, not over dataset names, so registering the same rows
under a second name must not open a second budget. Each source version stores a keyed hash of
each of its rows (HMAC-SHA256 under a platform secret, truncated to 64 bits, sorted, distinct).
Two versions share a row when they share a digest; without the key the digests reveal nothing
that could be matched against a guessed row.

A row's canonical text does not depend on row order, column order or column names: it is the
sorted list of its cells, each written in one form per kind of value (numbers as the shortest
exact float, so ``40`` and ``40.0`` agree; datetimes in UTC; missing as one marker). Dropped
identifier columns are not part of it.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass

import numpy as np
import pandas as pd

from core.schema import numeric_values

DIGEST_BYTES = 8
MISSING_CELL = "\x00"
CELL_SEPARATOR = "\x1f"


@dataclass(frozen=True)
class Overlap:
    """Distinct rows two tables share, and that count as a share of each table's distinct rows."""

    shared_rows: int
    new_rows: int
    existing_rows: int

    @property
    def share_of_new(self) -> float:
        return self.shared_rows / self.new_rows if self.new_rows else 0.0

    @property
    def share_of_existing(self) -> float:
        return self.shared_rows / self.existing_rows if self.existing_rows else 0.0

    @property
    def share(self) -> float:
        """The larger of the two shares: a subset and a superset both count in full."""
        return max(self.share_of_new, self.share_of_existing)


def key_id(key: bytes) -> str:
    """A short public name for a fingerprint key, so digests made under another key are never compared."""
    return hashlib.sha256(b"synthgate.key-id" + key).hexdigest()[:16]


def row_digests(frame: pd.DataFrame, key: bytes) -> np.ndarray:
    """Sorted distinct 64-bit keyed digests of the frame's rows.

    Parameters
    ----------
    frame : pandas.DataFrame
        The stored (typed) table.
    key : bytes
        The platform's fingerprint secret.

    Returns
    -------
    numpy.ndarray of dtype ``>u8`` (big-endian, so its bytes are portable), shape (n_distinct,)
    """
    cells = [_cell_texts(frame[name]) for name in frame.columns]
    digests = np.empty(len(frame), dtype=">u8")
    for position, row in enumerate(zip(*cells, strict=True)):
        text = CELL_SEPARATOR.join(sorted(row)).encode("utf-8")
        digests[position] = int.from_bytes(hmac.new(key, text, hashlib.sha256).digest()[:DIGEST_BYTES], "big")
    return np.unique(digests)


def _cell_texts(series: pd.Series) -> list[str]:
    if pd.api.types.is_bool_dtype(series):
        return [MISSING_CELL if pd.isna(value) else str(bool(value)).lower() for value in series]
    if pd.api.types.is_numeric_dtype(series) or pd.api.types.is_datetime64_any_dtype(series):
        values = numeric_values(series)
        return [MISSING_CELL if np.isnan(value) else repr(float(value)) for value in values]
    return [MISSING_CELL if value is None or pd.isna(value) else str(value) for value in series]


def digests_to_bytes(digests: np.ndarray) -> bytes:
    return digests.astype(">u8").tobytes()


def digests_from_bytes(data: bytes) -> np.ndarray:
    return np.frombuffer(data, dtype=">u8")


def overlap(new: np.ndarray, existing: np.ndarray) -> Overlap:
    """How many distinct rows ``new`` shares with ``existing`` (both sorted distinct digests)."""
    shared = int(np.intersect1d(new, existing, assume_unique=True).size)
    return Overlap(shared_rows=shared, new_rows=int(new.size), existing_rows=int(existing.size))
