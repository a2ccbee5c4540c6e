"""The one way Synthgate writes a moment.

- For machines (the API, the CLI's ``--json``, exports): ISO 8601 in UTC to the second with a
  ``Z``, e.g. ``2026-12-05T07:25:04Z`` (``time_iso``). DRF's ``DATETIME_FORMAT`` is the same.
- For people (the dashboard, the CLI's tables, the PDFs): ``2026-12-05 07:25 UTC``
  (``time_text``). A day alone (an expiry, a report period) is ``2026-12-05``.

The hash-chained audit log keeps its own microsecond timestamps inside each event's hashed
content; those are data, not display.
"""

from __future__ import annotations

from datetime import UTC, date, datetime

ISO_FORMAT = "%Y-%m-%dT%H:%M:%SZ"
TEXT_FORMAT = "%Y-%m-%d %H:%M UTC"
DAY_FORMAT = "%Y-%m-%d"


def _utc(value: datetime) -> datetime:
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def time_iso(value: datetime | date | None) -> str | None:
    """``2026-12-05T07:25:04Z`` (a day alone: ``2026-12-05``); None stays None."""
    if value is None:
        return None
    if isinstance(value, datetime):
        return _utc(value).strftime(ISO_FORMAT)
    return value.strftime(DAY_FORMAT)


def time_text(value: datetime | date | str | None) -> str:
    """``2026-12-05 07:25 UTC`` for people (a day alone: ``2026-12-05``); '' for None.

    An ISO 8601 string (as stored in reports and event data) is read first.
    """
    if value is None or value == "":
        return ""
    if isinstance(value, str):
        if len(value) == len("2026-12-05"):
            return value
        try:
            return _utc(datetime.fromisoformat(value.replace("Z", "+00:00"))).strftime(TEXT_FORMAT)
        except ValueError:
            return value
    if isinstance(value, datetime):
        return _utc(value).strftime(TEXT_FORMAT)
    return value.strftime(DAY_FORMAT)
