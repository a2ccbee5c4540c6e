"""Small formatting helpers for dashboard templates."""

from __future__ import annotations

import json
import math
from decimal import Decimal
from typing import Any

from django import template
from django.utils.html import format_html

from core.amounts import DELTA_PLACES, EPSILON_PLACES, amount_text
from core.times import time_iso, time_text
from governance.permissions import user_has_role, user_roles, version_hash_visible, version_rows_visible

register = template.Library()

STATE_TONES = {
    "draft": "muted",
    "submitted": "info",
    "approved": "info",
    "generating": "busy",
    "auditing": "busy",
    "ready": "good",
    "released": "good",
    "rejected": "bad",
    "withdrawn": "muted",
    "failed": "bad",
    "blocked": "warn",
    "revoked": "bad",
    "expired": "muted",
    "queued": "busy",
    "running": "busy",
    "succeeded": "good",
    "cancelled": "muted",
    "passed": "good",
    "inconclusive": "warn",
    "error": "bad",
    "pass": "good",
    "fail": "bad",
    "BLOCK": "bad",
    "skipped": "muted",
    "info": "muted",
}


@register.simple_tag
def roles_of(user: Any) -> list[str]:
    return sorted(user_roles(user))


@register.filter
def has_role(user: Any, roles: str) -> bool:
    return user_has_role(user, *roles.split(","))


@register.filter
def badge(state: str) -> str:
    tone = STATE_TONES.get(str(state), "muted")
    return format_html('<span class="badge badge-{}">{}</span>', tone, state)


@register.filter
def plain(value: Any, measure: str = "epsilon") -> str:
    """An amount as people write it (``core.amounts``): 0.00001 rather than 1E-5 or 0.000010000000.

    A float (an accountant's figure) is rounded up to the ledger's places for ``measure``
    (``"epsilon"`` or ``"delta"``), so it never reads below what was spent.
    """
    if isinstance(value, bool) or not (value is None or value == "" or isinstance(value, Decimal | int | float)):
        return str(value)
    places = (DELTA_PLACES if measure == "delta" else EPSILON_PLACES) if isinstance(value, float) else None
    try:
        return amount_text(value, places=places)
    except ValueError:  # NaN: not an amount
        return "n/a"


@register.filter
def num(value: Any, digits: int = 3) -> str:
    """A metric value with ``digits`` significant digits; — for none, ∞ for infinity."""
    if value is None or value == "":
        return "—"
    try:
        number = float(value)
    except (TypeError, ValueError):
        return str(value)
    if math.isnan(number):
        return "n/a"
    if math.isinf(number):
        return "∞" if number > 0 else "−∞"
    return f"{number:.{int(digits)}g}"


@register.simple_tag
def share(part: Any, total: Any) -> str:
    """``part`` as a percentage of ``total``, clamped to [0, 100], for bar widths."""
    try:
        total_value = float(total)
        value = 0.0 if total_value <= 0 else 100.0 * float(part) / total_value
    except (TypeError, ValueError, ZeroDivisionError):
        value = 0.0
    return f"{min(100.0, max(0.0, value)):.1f}"


@register.filter
def seconds(value: Any) -> str:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return "—"
    return f"{number * 1000:.0f} ms" if number < 1 else f"{number:.1f} s"


@register.filter
def filesize(value: Any) -> str:
    try:
        size = float(value)
    except (TypeError, ValueError):
        return "—"
    for unit in ("B", "KB", "MB", "GB"):
        if size < 1024 or unit == "GB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{size:.1f} GB"


@register.filter
def pretty_json(value: Any) -> str:
    return json.dumps(value, indent=2, sort_keys=True, default=str)


@register.filter
def compact_json(value: Any) -> str:
    if value in (None, "", {}, []):
        return ""
    return json.dumps(value, sort_keys=True, default=str, ensure_ascii=False)


@register.filter
def humanise(value: Any) -> str:
    return str(value).replace("_", " ")


@register.filter
def get(mapping: Any, key: Any) -> Any:
    return mapping.get(key) if hasattr(mapping, "get") else None


@register.simple_tag
def share_sum(first: Any, second: Any, total: Any) -> str:
    """(first + second) as a percentage of ``total``, clamped to [0, 100]."""
    try:
        return share(float(first) + float(second), total)
    except (TypeError, ValueError):
        return "0.0"


@register.filter
def iso(value: Any) -> str:
    """An ISO 8601 time from a report, written for people (``core.times.time_text``)."""
    return time_text(str(value)) if value else "—"


@register.filter
def when(value: Any) -> str:
    """A moment for people: ``<time datetime="2026-12-05T07:25:04Z">2026-12-05 07:25 UTC</time>``;
    '' for None (so ``|default:"—"`` applies). The one human time format (``core.times``)."""
    if not value:
        return ""
    return format_html('<time datetime="{}">{}</time>', time_iso(value), time_text(value))


@register.filter
def rows_for(version: Any, user: Any) -> str:
    """``version``'s row count as ``user`` may read it: a real version's count is private (only
    stewards, approvers and auditors see it; see ``governance.permissions.version_rows_visible``)."""
    if version is None:
        return "—"
    if not version_rows_visible(user, version):
        return "(count private)"
    return f"{version.n_rows}"


@register.filter
def hash_for(version: Any, user: Any) -> str:
    """``version``'s content hash as ``user`` may read it: a real version's keyed fingerprint for
    anyone but its stewards, approvers and auditors (``governance.permissions.version_hash_visible``)."""
    return "—" if version is None else version_hash_visible(user, version)


@register.filter
def rows_visible(version: Any, user: Any) -> bool:
    """Whether ``user`` may read ``version``'s row count and byte size."""
    return version is not None and version_rows_visible(user, version)
