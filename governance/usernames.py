"""The form a username is stored and compared in (no Django models, no services: the login
backend loads it at start-up)."""

from __future__ import annotations

import unicodedata


def username_normalise(raw: str | None) -> str:
    """The form a username is stored and compared in: Unicode NFKC, surrounding space removed."""
    return unicodedata.normalize("NFKC", raw or "").strip()
