"""Uploads kept between attempts of a form, so a person never has to choose the file again.

A browser cannot refill a file input. When a form with an upload fails, the file is staged
under ``DATA_DIR/staged-uploads/<user id>/<token>/`` and the form carries the token; the next
submit without a new file uses it. A token is only ever read back for the user who staged it,
the file is removed once the form succeeds, and staged files older than a day are swept away
whenever another is staged.
"""

from __future__ import annotations

import re
import secrets
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

from django.conf import settings
from django.core.files.uploadedfile import UploadedFile

STAGED_FOR_SECONDS = 24 * 3600
TOKEN = re.compile(r"^[A-Za-z0-9_-]{16,64}$")


@dataclass(frozen=True)
class StagedUpload:
    token: str
    path: Path
    filename: str
    size: int


def _root(user_id: int) -> Path:
    return Path(settings.DATA_DIR) / "staged-uploads" / str(int(user_id))


def upload_stage(*, user_id: int, upload: UploadedFile) -> StagedUpload:
    """Keep ``upload`` for the user's next attempt; returns what the form shows and carries."""
    _sweep(user_id)
    token = secrets.token_urlsafe(24)
    filename = Path(upload.name or "upload").name
    folder = _root(user_id) / token
    folder.mkdir(parents=True, mode=0o700)
    path = folder / filename
    upload.seek(0)
    with path.open("wb") as stream:
        for chunk in upload.chunks():
            stream.write(chunk)
    return StagedUpload(token=token, path=path, filename=filename, size=path.stat().st_size)


def upload_staged(*, user_id: int, token: str | None) -> StagedUpload | None:
    """The user's staged upload for ``token``, or None (unknown, someone else's, or swept away)."""
    if not token or not TOKEN.match(token):
        return None
    folder = _root(user_id) / token
    files = sorted(folder.iterdir()) if folder.is_dir() else []
    if len(files) != 1:
        return None
    return StagedUpload(token=token, path=files[0], filename=files[0].name, size=files[0].stat().st_size)


def upload_discard(*, user_id: int, token: str | None) -> None:
    if token and TOKEN.match(token):
        shutil.rmtree(_root(user_id) / token, ignore_errors=True)


def _sweep(user_id: int) -> None:
    root = _root(user_id)
    if not root.is_dir():
        return
    cutoff = time.time() - STAGED_FOR_SECONDS
    for folder in root.iterdir():
        if folder.stat().st_mtime < cutoff:
            shutil.rmtree(folder, ignore_errors=True)
