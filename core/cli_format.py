"""How the CLI shows things: plain tables for people, plain JSON for ``--json``.

Amounts are exact: a Decimal is printed in full (no exponent, no float rounding) and is a
string in JSON. Moments are ``core.times``: ISO 8601 UTC in JSON, ``2026-12-05 07:25 UTC`` in
tables. Each app's ``cli_format`` turns its rows into the dicts both outputs start from.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from core.amounts import amount_text
from core.times import time_iso, time_text


def json_default(value: Any) -> Any:
    if isinstance(value, Decimal):
        return amount_text(value)
    if isinstance(value, datetime | date):
        return time_iso(value)
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def to_json(data: Any) -> str:
    return json.dumps(data, default=json_default, indent=2, ensure_ascii=False)


def cell(value: Any) -> str:
    if value is None or value == "":
        return "-"
    if isinstance(value, Decimal):
        return amount_text(value)
    if isinstance(value, datetime | date):
        return time_text(value)
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, list | tuple):
        return ", ".join(cell(item) for item in value) or "-"
    if isinstance(value, dict):
        return json.dumps(value, default=json_default, ensure_ascii=False, sort_keys=True)
    return str(value)


def version_ref(version_id: int, number: int) -> str:
    """A dataset version in a table: its id as every object's (``#10``) and its number (``v4``)."""
    return f"#{version_id} (v{number})"


def table(headers: Sequence[str], rows: Iterable[Sequence[Any]]) -> str:
    """A left-aligned text table with a rule under the header; ``(none)`` when empty."""
    texts = [[cell(value) for value in row] for row in rows]
    if not texts:
        return "(none)"
    widths = [max(len(header), *(len(row[index]) for row in texts)) for index, header in enumerate(headers)]
    lines = [
        "  ".join(header.ljust(width) for header, width in zip(headers, widths, strict=True)),
        "  ".join("-" * width for width in widths),
    ]
    lines += ["  ".join(text.ljust(width) for text, width in zip(row, widths, strict=True)) for row in texts]
    return "\n".join(line.rstrip() for line in lines)


def fields(pairs: Sequence[tuple[str, Any]]) -> str:
    """``label: value`` lines, labels aligned."""
    width = max(len(label) for label, _ in pairs)
    return "\n".join(f"{label.ljust(width)}  {cell(value)}" for label, value in pairs)
