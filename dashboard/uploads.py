"""Uploads kept between attempts of a form, so a person never has to choose the file again.

A browser cannot refill a file input. When a form with an upload fails, the file is staged in
the artefact storage (``governance.storage``: the data directory, or the bucket every web and
worker host shares) at ``staged-uploads/<user id>/<token>/<file name>`` and the form carries the
token; the next submit without a new file uses it, whichever host serves it. A token is only
ever read back for the user who staged it, the file is removed once the form succeeds, and staged
files older than a day (the token starts with the time it was staged) are swept away whenever
another is staged.
"""

from __future__ import annotations

import contextlib
import re
import secrets
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from django.conf import settings
from django.core.files.uploadedfile import UploadedFile

from governance.storage import version_storage

STAGED_FOR_SECONDS = 24 * 3600
TOKEN = re.compile(r"^[A-Za-z0-9_-]{16,64}$")


@dataclass(frozen=True)
class StagedUpload:
    token: str
    key: str
    filename: str
    size: int

    def read_bytes(self) -> bytes:
        return version_storage().read_bytes(self.key)

    def exists(self) -> bool:
        return version_storage().exists(self.key)

    @contextlib.contextmanager
    def local(self) -> Iterator[Path]:
        """The staged file as a local path (the stored file itself when storage is local, else a
        private temporary copy, deleted afterwards)."""
        storage = version_storage()
        if storage.local:
            yield Path(storage.path(self.key))
            return
        handle, name = tempfile.mkstemp(prefix="synthgate-staged-")
        path = Path(name)
        try:
            with open(handle, "wb") as stream, storage.open(self.key) as source:
                for block in iter(lambda: source.read(1 << 20), b""):
                    stream.write(block)
            yield path
        finally:
            path.unlink(missing_ok=True)


def _root(user_id: int) -> str:
    return f"staged-uploads/{int(user_id)}"


def upload_stage(*, user_id: int, upload: UploadedFile) -> StagedUpload:
    """Keep ``upload`` for the user's next attempt; returns what the form shows and carries."""
    _sweep(user_id)
    token = f"{int(time.time())}-{secrets.token_urlsafe(24)}"
    filename = Path(upload.name or "upload").name
    key = f"{_root(user_id)}/{token}/{filename}"
    scratch = Path(settings.DATA_DIR) / "staging"
    scratch.mkdir(parents=True, exist_ok=True)
    handle, name = tempfile.mkstemp(dir=scratch, prefix=".staged-")
    upload.seek(0)
    try:
        with open(handle, "wb") as stream:
            for chunk in upload.chunks():
                stream.write(chunk)
        size = Path(name).stat().st_size
        version_storage().put_new(Path(name), key)
    finally:
        Path(name).unlink(missing_ok=True)
    return StagedUpload(token=token, key=key, filename=filename, size=size)


def upload_staged(*, user_id: int, token: str | None) -> StagedUpload | None:
    """The user's staged upload for ``token``, or None (unknown, someone else's, or swept away)."""
    if not token or not TOKEN.match(token):
        return None
    storage = version_storage()
    files = storage.keys_under(f"{_root(user_id)}/{token}")
    if len(files) != 1:
        return None
    key = files[0]
    return StagedUpload(token=token, key=key, filename=key.rsplit("/", 1)[-1], size=storage.size(key))


def upload_discard(*, user_id: int, token: str | None) -> None:
    if token and TOKEN.match(token):
        version_storage().remove_under(f"{_root(user_id)}/{token}")


def _sweep(user_id: int) -> None:
    storage = version_storage()
    cutoff = time.time() - STAGED_FOR_SECONDS
    tokens = {key.split("/")[2] for key in storage.keys_under(_root(user_id))}
    for token in tokens:
        stamp = token.split("-", 1)[0]
        if not stamp.isdigit() or int(stamp) < cutoff:
            storage.remove_under(f"{_root(user_id)}/{token}")
