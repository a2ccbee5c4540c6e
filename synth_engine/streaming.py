"""Synthetic output written as it is sampled: chunk by chunk, never the whole table in memory.

Each chunk is drawn from the fitted generator, typed and checked as an upload's cells
(``governance.ingest.build_table``) and appended to a file in the stored (canonical CSV) form;
the SHA-256 of the bytes, which is the version's content address, is computed as they are
written. The worker holds one chunk at a time.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd

from governance.ingest import StreamedTable, Table, build_table


def table_from_frame(frame: pd.DataFrame, schema: dict[str, Any]) -> Table:
    """Type and check a generated frame as an upload's cells would be (its canonical form included)."""
    header = [column["name"] for column in schema["columns"]]
    text = frame[header].astype(object).where(frame[header].notna(), "").astype(str)
    return build_table(header, text.to_numpy().tolist(), {**schema, "missing_values": [""]}, schema_inferred=False)


def sample_to_file(
    sample: Callable[[int], pd.DataFrame],
    n_rows: int,
    schema: dict[str, Any],
    directory: Path,
    *,
    chunk_rows: int,
    prefix: str = ".sampling-",
    count_columns: tuple[str, ...] = (),
    after_chunk: Callable[[int], None] = lambda done: None,
) -> StreamedTable:
    """Draw ``n_rows`` rows as ``sample(k)`` calls of at most ``chunk_rows`` and write them.

    ``prefix``: the file name's start (a job names itself, so a file its killed worker left
    can be found). ``count_columns``: columns whose values are counted on the way (the released shares of a
    rebalanced column). ``after_chunk(rows_done)`` runs after each chunk (progress, cancel
    checks); anything it raises removes the partial file.
    """
    if chunk_rows <= 0:
        raise ValueError(f"chunk_rows must be positive, got {chunk_rows}")
    directory.mkdir(parents=True, exist_ok=True)
    handle, name = tempfile.mkstemp(dir=directory, prefix=prefix, suffix=".csv")
    path = Path(name)
    digest, size, done = hashlib.sha256(), 0, 0
    counts: dict[str, Counter[str]] = {column: Counter() for column in count_columns}
    stored_schema: dict[str, Any] = schema
    try:
        with os.fdopen(handle, "wb") as stream:
            while done < n_rows:
                table = table_from_frame(sample(min(chunk_rows, n_rows - done)), schema)
                stored_schema = table.schema
                data = table.canonical_bytes
                if done:  # the header is written once, with the first chunk
                    data = data[data.index(b"\n") + 1 :]
                stream.write(data)
                digest.update(data)
                size += len(data)
                done += len(table.frame)
                for column in count_columns:
                    counts[column].update(table.frame[column].astype(str))
                del table, data
                after_chunk(done)
    except BaseException:
        path.unlink(missing_ok=True)
        raise
    return StreamedTable(
        path=path,
        schema=stored_schema,
        content_hash=digest.hexdigest(),
        n_rows=done,
        n_columns=len(stored_schema["columns"]),
        size_bytes=size,
        value_counts=counts,
    )
