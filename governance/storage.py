"""Where artefacts live: dataset versions (sources, training rows, holdouts, synthetic outputs),
staged uploads, signed datasheets, compliance reports and cached profiles, by their storage key,
through one interface over ``fsspec``. Signing keys never go here (a secret on each host).

``SYNTHGATE_STORAGE_URL`` names the place: empty (the default) is the local data directory
(``SYNTHGATE_DATA_DIR``); any fsspec URL with its filesystem installed works the same way
(``s3://bucket/prefix`` with ``s3fs``, ``memory://name`` in one process), so workers on several
hosts can share the versions. A key is written once (content-addressed: identical content is
never rewritten), through a temporary name and a rename, so a reader never sees half a file.

A shared store is checked before a unit of work relies on it (:meth:`VersionStorage.check_access`:
a job when it starts and on its worker before it reads data, a registration before it reads the
table): wrong or insufficient credentials are refused with their cause named, before anything is
read, written or spent, instead of failing half-way (after a job's spend, say).
"""

from __future__ import annotations

import contextlib
import csv
import io
import logging
import os
import posixpath
import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, Protocol

import fsspec
from django.conf import settings
from fsspec.implementations.local import LocalFileSystem

from core.errors import ServiceUnavailableError
from governance.output_formats import PARQUET, key_format

if TYPE_CHECKING:
    from collections.abc import Iterable

    import pandas as pd

logger = logging.getLogger(__name__)

ACCESS_CHECK_PREFIX = "access-checks"
_PROBE = b"synthgate: an access check; removed at once\n"

# What an object store's error code says about this host's credentials (S3's codes; MinIO and Ceph
# answer the same). Never the library's text: a person reads this, and it names the cause alone.
_REFUSALS = {
    "InvalidAccessKeyId": "the store does not know its access key id",
    "SignatureDoesNotMatch": "its secret access key does not match its access key id",
    "AccessDenied": "its credentials are not allowed to {action} objects under the storage prefix",
    "403": "its credentials are not allowed to {action} objects under the storage prefix",
    "AllAccessDisabled": "access to the bucket is disabled",
    "InvalidToken": "its session token is not valid",
    "ExpiredToken": "its session token has expired",
    "TokenRefreshRequired": "its session token has expired",
    "RequestTimeTooSkewed": "its clock differs too much from the store's",
    "NoSuchBucket": "the bucket does not exist",
}


class StorageAccessError(ServiceUnavailableError):
    """The artefact storage refused this host (credentials, permissions, a missing bucket) or could
    not be reached; the message names the cause and never a key."""

    code = "storage_refused"


class VersionStorage:
    """The versions' filesystem and root; keys are ``/``-separated paths under the root."""

    def __init__(self, url: str) -> None:
        self.url = url
        # Another host may write any key: directory listings are never cached (s3fs caches them).
        options = {"use_listings_cache": False} if url.startswith(("s3://", "s3a://", "gs://", "az://")) else {}
        self.fs, self.root = fsspec.core.url_to_fs(url, **options)
        self.local = isinstance(self.fs, LocalFileSystem)

    def path(self, key: str) -> str:
        return f"{self.root.rstrip('/')}/{key}"

    def check_access(self) -> None:
        """Refuse, with the cause named, a shared store this host cannot write, read back and delete
        in (a test object under ``access-checks/``, removed at once), so that wrong or insufficient
        credentials stop a unit of work before it reads data or spends budget, never half-way.
        The local data directory is not checked (its failures name their path)."""
        if self.local:
            return
        probe = self.path(f"{ACCESS_CHECK_PREFIX}/{secrets.token_hex(8)}")
        steps: tuple[tuple[str, Any], ...] = (
            ("write", lambda: self.fs.pipe_file(probe, _PROBE)),
            ("read", lambda: self.fs.cat_file(probe)),
            ("delete", lambda: self.fs.rm_file(probe)),
        )
        for action, step in steps:
            try:
                answer = step()
            except Exception as error:  # an fsspec filesystem raises OSError, botocore errors, aiohttp's ...
                raise StorageAccessError(_refusal(action, error), extra={"cause": error_code(error)}) from error
            if action == "read" and answer != _PROBE:
                raise StorageAccessError(
                    "The artefact storage (SYNTHGATE_STORAGE_URL) did not give back the test object this host "
                    "wrote; nothing was read, written or spent.",
                    extra={"cause": "mismatch"},
                )

    def location(self, key: str) -> str:
        """Where ``key`` is, for people: a local path, or the filesystem's URL."""
        return self.path(key) if self.local else self.fs.unstrip_protocol(self.path(key))

    def exists(self, key: str) -> bool:
        """Whether ``key`` holds a file: False only when the store says it is absent (404,
        ``NoSuchKey``); a store that refuses this host or cannot be reached raises
        :class:`StorageAccessError` (a check that relies on the answer must fail closed)."""
        if not key:
            return False
        try:
            return bool(self.fs.info(self.path(key))["type"] == "file")
        except (FileNotFoundError, NotADirectoryError):
            return False
        except Exception as error:  # an fsspec filesystem raises OSError, botocore errors, aiohttp's ...
            raise StorageAccessError(
                _refusal("read", error, what="a stored object", outcome="It was not read, written or removed"),
                extra={"cause": error_code(error)},
            ) from error

    def open(self, key: str, mode: str = "rb") -> IO[Any]:
        handle: IO[Any] = self.fs.open(self.path(key), mode)
        return handle

    def read_bytes(self, key: str) -> bytes:
        data: bytes = self.fs.cat_file(self.path(key))
        return data

    def write_new(self, key: str, data: bytes) -> bool:
        """Write ``data`` at ``key``; False (nothing written) when the key already holds a file."""
        if self.exists(key):
            return False
        target = self.path(key)
        self.fs.makedirs(posixpath.dirname(target), exist_ok=True)
        temporary = f"{target}.part-{secrets.token_hex(8)}"
        try:
            self.fs.pipe_file(temporary, data)
            self.fs.mv(temporary, target)
        except BaseException:
            with contextlib.suppress(Exception):  # best effort: the error raised is the write's own
                if self.fs.exists(temporary):
                    self.fs.rm_file(temporary)
            raise
        return True

    def write_unique(self, key: str, data: bytes) -> None:
        """Write a small object whose key no one else writes (it carries a random token): on an
        object store one request (a PUT is atomic: a reader never sees half of it), on a filesystem
        through a temporary name and a rename (:meth:`write_new`)."""
        if self.local:
            self.write_new(key, data)
        else:
            self.fs.pipe_file(self.path(key), data)

    def put_new(self, local: Path, key: str) -> bool:
        """Move a finished local file to ``key`` (a rename on the local filesystem, an upload
        elsewhere, the local file then removed); False when the key already holds a file."""
        if self.exists(key):
            return False
        if self.local:
            target = Path(self.path(key))
            target.parent.mkdir(parents=True, exist_ok=True)
            os.replace(local, target)
            return True
        target_name = self.path(key)
        self.fs.makedirs(posixpath.dirname(target_name), exist_ok=True)
        temporary = f"{target_name}.part-{secrets.token_hex(8)}"
        self.fs.put_file(str(local), temporary)
        self.fs.mv(temporary, target_name)
        local.unlink(missing_ok=True)
        return True

    def read_version(self, key: str, schema: dict[str, Any]) -> pd.DataFrame:
        """A stored version's table with the dtypes its schema gives (canonical CSV or Parquet,
        as its key names: ``governance.parquet_form``)."""
        from governance.ingest import canonical_frame  # pandas: loaded only when a table is read

        if key_format(key) == PARQUET:
            import pyarrow.parquet as pq

            from governance.parquet_form import frame_from_arrow

            with self.open(key, "rb") as raw:
                return frame_from_arrow(pq.read_table(raw), schema)
        return canonical_frame(self.read_bytes(key).decode("utf-8"), schema)

    def read_many(self, keys: list[str]) -> dict[str, bytes]:
        """Several keys' bytes at once (concurrent requests on an object store); a key removed in
        the meantime is left out."""
        if not keys:
            return {}
        root = self.root.rstrip("/") + "/"
        found = self.fs.cat([self.path(key) for key in keys], on_error="omit")
        # fsspec names each result by its path as the filesystem spells it: the key is what follows the root.
        return {(name[len(root) :] if name.startswith(root) else name): data for name, data in found.items()}

    def read_version_rows(self, key: str, schema: dict[str, Any], positions: Sequence[int]) -> pd.DataFrame | None:
        """The rows at ``positions`` (0-based, ascending) of a stored version, typed as
        :meth:`read_version` types the whole table (an integer column with a missing cell anywhere
        is ``Int64``), read as a stream: the file's records pass one at a time (the same CSV reading
        as ``read_version``) and only the wanted rows are kept, so memory holds the rows asked for,
        never the table. None when a position lies beyond the file's rows. A Parquet version is read
        a row group at a time, keeping the wanted rows of each."""
        from governance.ingest import build_table  # pandas: loaded only when a table is read

        if key_format(key) == PARQUET:
            return self._parquet_rows(key, schema, positions)

        wanted = iter(positions)
        following = next(wanted, None)
        kept: list[list[str]] = []
        with self.open(key, "rb") as raw, io.TextIOWrapper(raw, encoding="utf-8", newline="") as text:
            reader = csv.reader(text, strict=True)
            header = [name.strip() for name in next(reader)]
            integers = [
                header.index(c["name"]) for c in schema["columns"] if c["type"] == "integer" and c["name"] in header
            ]
            unseen, missing = integers, []  # integer columns with no missing cell read yet, and with one
            number = 0
            for row in reader:
                if following is None and not unseen:
                    break
                if not row:
                    continue  # a blank line carries no data (as read_version reads it)
                if unseen and not all(row[position] for position in unseen):
                    missing += [position for position in unseen if not row[position]]
                    unseen = [position for position in unseen if row[position]]
                if number == following:
                    kept.append(row)
                    following = next(wanted, None)
                number += 1
        if following is not None:
            return None
        frame = build_table(header, kept, {**schema, "missing_values": [""]}, schema_inferred=False).frame
        for position in missing:  # as the whole table would type it
            if header[position] in frame:
                frame[header[position]] = frame[header[position]].astype("Int64")
        return frame

    def _parquet_rows(self, key: str, schema: dict[str, Any], positions: Sequence[int]) -> pd.DataFrame | None:
        import pyarrow as pa
        import pyarrow.parquet as pq

        from governance.parquet_form import frame_from_arrow

        wanted = list(positions)
        with self.open(key, "rb") as raw:
            parquet = pq.ParquetFile(raw)
            metadata = parquet.metadata
            if wanted and wanted[-1] >= metadata.num_rows:
                return None
            names = parquet.schema_arrow.names
            nullable = frozenset(
                name
                for index, name in enumerate(names)
                if any(_nulls(metadata.row_group(group).column(index)) for group in range(metadata.num_row_groups))
            )
            pieces, start, cursor = [], 0, 0
            for group in range(metadata.num_row_groups):
                rows = metadata.row_group(group).num_rows
                end = cursor
                while end < len(wanted) and wanted[end] < start + rows:
                    end += 1
                if end > cursor:
                    taken = [position - start for position in wanted[cursor:end]]
                    pieces.append(parquet.read_row_group(group).take(pa.array(taken, pa.int64())))
                cursor, start = end, start + rows
            table = pa.concat_tables(pieces) if pieces else parquet.schema_arrow.empty_table()
        return frame_from_arrow(table, schema, nullable_integers=nullable)

    def cell_counts(
        self, key: str, texts: Mapping[str, tuple[str, ...]], chunk_rows: int = 100_000
    ) -> tuple[int, dict[str, dict[str, int]]]:
        """A stored version's row count and, for each column named in ``texts``, how many of its
        cells hold each of the given texts exactly (a missing cell is ""), counted chunk by chunk as
        the file streams by: memory holds a chunk, never the table. A Parquet version's cells are
        spelled as its canonical CSV would hold them (``parquet_form.cell_texts``)."""
        import pandas as pd  # loaded only when a table is read

        counts = {column: dict.fromkeys(wanted, 0) for column, wanted in texts.items()}
        n_rows = 0
        if key_format(key) == PARQUET:
            return self._parquet_cell_counts(key, texts, counts, chunk_rows)
        with self.open(key, "rb") as raw:
            chunks = pd.read_csv(
                raw,
                dtype=str,
                keep_default_na=False,
                na_filter=False,
                encoding="utf-8",
                usecols=list(texts),
                chunksize=chunk_rows,
            )
            for chunk in chunks:
                n_rows += len(chunk)
                for column, wanted in texts.items():
                    found = chunk[column].value_counts()
                    for text in wanted:
                        counts[column][text] += int(found.get(text, 0))
        return n_rows, counts

    def _parquet_cell_counts(
        self, key: str, texts: Mapping[str, tuple[str, ...]], counts: dict[str, dict[str, int]], chunk_rows: int
    ) -> tuple[int, dict[str, dict[str, int]]]:
        import pyarrow.parquet as pq

        from governance.parquet_form import cell_texts

        n_rows = 0
        with self.open(key, "rb") as raw:
            parquet = pq.ParquetFile(raw)
            kinds = {field.name: field.type for field in parquet.schema_arrow}
            for batch in parquet.iter_batches(batch_size=chunk_rows, columns=list(texts)):
                n_rows += batch.num_rows
                for column, wanted in texts.items():
                    found = cell_texts(batch.column(column), _schema_kind(kinds[column])).value_counts()
                    for text in wanted:
                        counts[column][text] += int(found.get(text, 0))
        return n_rows, counts

    def remove(self, key: str) -> None:
        if self.exists(key):
            self.fs.rm_file(self.path(key))

    def remove_many(self, keys: list[str]) -> list[str]:
        """Remove several files (batched deletes on an object store: s3fs sends up to 1,000 keys a
        request); return the keys that could not be removed (an object lock), each tried alone."""
        if not keys:
            return []
        try:
            self.fs.rm([self.path(key) for key in keys])
            return []
        except OSError:
            failed = []
            for key in keys:
                try:
                    self.remove(key)
                except (OSError, StorageAccessError):
                    failed.append(key)
            return failed

    def size(self, key: str) -> int:
        return int(self.fs.size(self.path(key)))

    def keys_under(self, prefix: str) -> list[str]:
        """The keys of the files under ``prefix`` (a folder), sorted; empty when there are none."""
        root = self.root.rstrip("/") + "/"
        found = self.fs.find(self.path(prefix.strip("/"))) if prefix.strip("/") else []
        return sorted(name[len(root) :] if name.startswith(root) else name for name in found)

    def remove_under(self, prefix: str) -> None:
        """Remove every file under ``prefix`` (a folder)."""
        for key in self.keys_under(prefix):
            self.remove(key)
        if self.local:
            _remove_empty_folders(Path(self.path(prefix.strip("/"))))


def error_code(error: BaseException) -> str:
    """The store's error code behind ``error``: the cause a :class:`StorageAccessError` names, else
    botocore's (which s3fs chains), else its class."""
    if isinstance(error, StorageAccessError) and error.extra.get("cause"):
        return str(error.extra["cause"])
    seen: BaseException | None = error
    while seen is not None:
        response = getattr(seen, "response", None)
        if isinstance(response, dict) and response.get("Error", {}).get("Code"):
            return str(response["Error"]["Code"])
        seen = seen.__cause__ or seen.__context__
    return type(error).__name__


def _refusal(
    action: str,
    error: BaseException,
    *,
    what: str = "a test object",
    outcome: str = "Nothing was read, written or spent",
) -> str:
    """One line for people: what the store refused, and why, without the library's text."""
    code = error_code(error)
    cause = _REFUSALS.get(code)
    fix = "fix this host's storage credentials (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY or its role)"
    if cause is None and (isinstance(error, ConnectionError) or "Connect" in code or "Endpoint" in code):
        cause, fix = "it cannot be reached", "check SYNTHGATE_STORAGE_URL and AWS_ENDPOINT_URL on this host"
    elif cause is None:
        cause = f"the store answered {code}"
    return (
        f"The artefact storage (SYNTHGATE_STORAGE_URL) refused this host: {cause.format(action=action)} "
        f"({code}, when it tried to {action} {what}). {outcome}; {fix} "
        "and try again."
    )


def _nulls(column: Any) -> bool:
    """Whether a Parquet column chunk holds a missing cell (its statistics, else assumed so)."""
    statistics = column.statistics
    return statistics is None or not statistics.has_null_count or statistics.null_count > 0


def _schema_kind(arrow_type: Any) -> str:
    """The schema type a stored Parquet column's Arrow type stands for (``parquet_form.arrow_schema``)."""
    import pyarrow as pa

    if pa.types.is_integer(arrow_type):
        return "integer"
    if pa.types.is_floating(arrow_type):
        return "float"
    if pa.types.is_boolean(arrow_type):
        return "boolean"
    if pa.types.is_timestamp(arrow_type):
        return "datetime"
    return "categorical"


def _remove_empty_folders(folder: Path) -> None:
    if folder.is_dir():
        for child in folder.iterdir():
            _remove_empty_folders(child)
        with contextlib.suppress(OSError):
            folder.rmdir()


class Removable(Protocol):
    """A file written during a unit of work (a local ``Path`` or a :class:`StoredFile`)."""

    def unlink(self, missing_ok: bool = ...) -> None: ...


def removed_after_error(files: Iterable[Removable]) -> None:
    """Remove, as far as the store allows, the files a failed unit of work wrote: one that cannot be
    removed (a store that refuses this host) is logged by its cause and left, so that the error
    being raised is the unit of work's own, never masked by the clean-up."""
    for file in files:
        try:
            file.unlink(missing_ok=True)
        except Exception as error:
            logger.warning(
                "A file written by a failed unit of work could not be removed (%s): %s", error_code(error), error
            )


@dataclass(frozen=True)
class StoredFile:
    """A stored key used like a path: opened to serve it, or removed by ``files_removed_on_error``
    when the unit of work that wrote it fails."""

    storage: VersionStorage
    key: str

    def unlink(self, missing_ok: bool = False) -> None:
        self.storage.remove(self.key)

    def open(self, mode: str = "rb") -> IO[Any]:
        return self.storage.open(self.key, mode)

    def read_bytes(self) -> bytes:
        return self.storage.read_bytes(self.key)

    def is_file(self) -> bool:
        return self.storage.exists(self.key)


@lru_cache(maxsize=4)
def _storage_for(url: str) -> VersionStorage:
    return VersionStorage(url)


def version_storage() -> VersionStorage:
    """The configured storage of dataset versions (the data directory unless configured)."""
    return _storage_for(str(settings.SYNTHGATE_STORAGE_URL or settings.DATA_DIR))
