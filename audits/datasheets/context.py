"""Turn the facts a service gathers into the context ``datasheets/datasheet.html`` expects.

The template does layout only; every number, date and derived flag is formatted here, once, so
Django's configured engine and the standalone engine in ``render.py`` print the same datasheet.
The full contract is in ``render.py``'s module docstring and at the top of the template.
"""

from __future__ import annotations

import base64
import copy
import dataclasses
import datetime as dt
import math
from collections.abc import Mapping
from decimal import Decimal
from typing import Any, NamedTuple

from audits.datasheets.facts import DatasheetFacts
from core.amounts import DELTA_PLACES, EPSILON_PLACES, amount_text
from core.times import time_text

REQUIRED_KEYS = ("title", "request", "source", "synthetic", "generator", "privacy", "checks")
VERDICTS = ("pass", "warn", "fail", "n/a")
_SUPERSCRIPTS = str.maketrans("-0123456789", "⁻⁰¹²³⁴⁵⁶⁷⁸⁹")
_COMPARATORS = {"higher is better": "≥", "lower is better": "≤"}


class DatasheetContextError(ValueError):
    """The facts handed to the datasheet are missing or malformed."""


class Section(NamedTuple):
    """One numbered section: its heading, its template, and the facts key that must be present."""

    title: str
    template: str
    needs: str | None = None


# The datasheet's sections in order (Gebru et al.'s, after the release decision). A section whose
# ``needs`` key is empty in the facts is left out, and the numbering closes up behind it.
SECTIONS: tuple[Section, ...] = (
    Section("Release decision", "datasheets/sections/release.html", needs="release"),
    Section("Motivation", "datasheets/sections/motivation.html"),
    Section("Composition", "datasheets/sections/composition.html"),
    Section("Collection process", "datasheets/sections/collection.html"),
    Section("Preprocessing, cleaning and labeling", "datasheets/sections/preprocessing.html"),
    Section("Privacy and evaluation", "datasheets/sections/evaluation.html"),
    Section("Uses", "datasheets/sections/uses.html"),
    Section("Distribution", "datasheets/sections/distribution.html"),
    Section("Maintenance", "datasheets/sections/maintenance.html"),
)


def facts_as_dict(facts: DatasheetFacts | Mapping[str, Any]) -> dict[str, Any]:
    """The facts as plain nested dicts (typed facts are converted; a mapping is copied)."""
    if isinstance(facts, DatasheetFacts):
        return dataclasses.asdict(facts)
    return copy.deepcopy(dict(facts))


def datasheet_context(facts: DatasheetFacts | Mapping[str, Any]) -> dict[str, Any]:
    """Copy ``facts`` and add the display values and flags the template reads.

    Dates and datetimes anywhere become ``YYYY-MM-DD`` / ``YYYY-MM-DD HH:MM UTC`` strings. Adds
    ``privacy.non_private`` (ε is None or infinite), ``privacy.epsilon_display``/``delta_display``,
    per-check ``value_display``/``threshold_display``/``baseline_display``, ``checks_summary``
    (its ``verdict`` is "fail" when a check failed or the positive control was missed),
    ``generator.parameter_items``, ``library_items``, percentages on rebalancing shares, and
    ``chart_images``: each SVG in ``charts`` as a ``data:`` URI the template puts in ``<img>``.
    """
    plain = facts_as_dict(facts)
    missing = [key for key in REQUIRED_KEYS if key not in plain]
    if missing:
        raise DatasheetContextError(f"The datasheet needs {', '.join(missing)}; gather them in the service.")
    context = _format_dates(plain)
    context["audience"] = str(context.get("audience") or "internal")
    context["sections"] = _sections(context)
    context["section_numbers"] = {
        section["template"].rsplit("/", 1)[-1].removesuffix(".html"): section["number"]
        for section in context["sections"]
    }
    context["privacy"] = _privacy(context["privacy"])
    context["checks"] = [_check(check) for check in context["checks"]]
    context["checks_summary"] = _summary(context["checks"], context.get("positive_control"))
    context["generator"]["parameter_items"] = sorted(
        (str(k), format_value(v)) for k, v in (context["generator"].get("parameters") or {}).items()
    )
    context["library_items"] = sorted((str(k), str(v)) for k, v in (context.get("library_versions") or {}).items())
    if context.get("budget"):
        context["budget"] = _budget(context["budget"])
    if context.get("rebalancing"):
        context["rebalancing"] = _rebalancing(context["rebalancing"])
    context["chart_images"] = {name: svg_data_uri(svg) for name, svg in (context.get("charts") or {}).items() if svg}
    return context


def _sections(context: Mapping[str, Any]) -> list[dict[str, Any]]:
    shown = [section for section in SECTIONS if section.needs is None or context.get(section.needs)]
    return [
        {"number": number, "title": section.title, "template": section.template}
        for number, section in enumerate(shown, start=1)
    ]


def svg_data_uri(svg: str) -> str:
    """An SVG as a ``data:`` URI for ``<img src>``: the chart cannot add markup to the page."""
    return "data:image/svg+xml;base64," + base64.b64encode(svg.encode("utf-8")).decode("ascii")


def format_value(value: Any) -> str:
    """Numbers to four significant digits, infinities as ∞, None as an em dash, the rest as text."""
    if value is None:
        return "—"
    if isinstance(value, Decimal):  # ledger amounts: 9.000000000000 is written 9, 1E-6 as 10⁻⁶
        value = float(value)
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, Decimal):
        return amount_text(value)
    if isinstance(value, int):
        return f"{value:,}".replace(",", "\u202f")
    if isinstance(value, float):
        if math.isinf(value):
            return "∞" if value > 0 else "−∞"
        if math.isnan(value):
            return "n/a"
        if value != 0 and abs(value) < 1e-3:
            return _scientific(value)
        return f"{value:.4g}"
    return str(value)


def _scientific(value: float) -> str:
    """1e-06 as 10⁻⁶ and 2.5e-05 as 2.5×10⁻⁵: δ values are read by people, not parsers."""
    mantissa, exponent = f"{value:.3e}".split("e")
    power = "10" + str(int(exponent)).translate(_SUPERSCRIPTS)
    return power if float(mantissa) == 1 else f"{float(mantissa):g}×{power}"


def _privacy(privacy: dict) -> dict:
    epsilon = privacy.get("epsilon")
    non_private = epsilon is None or (isinstance(epsilon, float) and math.isinf(epsilon))
    return {
        **privacy,
        "non_private": non_private,
        "epsilon_display": "∞" if non_private else amount_text(epsilon, places=EPSILON_PLACES),
        "delta_display": amount_text(privacy.get("delta"), places=DELTA_PLACES) if not non_private else "—",
    }


def _check(check: dict) -> dict:
    verdict = str(check.get("verdict", "n/a")).lower()
    if verdict not in VERDICTS:
        raise DatasheetContextError(f"Check {check.get('name')!r} has verdict {verdict!r}; use one of {VERDICTS}.")
    comparator = _COMPARATORS.get(str(check.get("direction", "")).lower(), "")
    threshold = check.get("threshold")
    threshold_display = "—" if threshold is None else f"{comparator} {format_value(threshold)}".strip()
    return {
        **check,
        "verdict": verdict,
        "value_display": format_value(check.get("value")),
        "threshold_display": threshold_display,
        "baseline_display": format_value(check.get("baseline")),
    }


def _summary(checks: list[dict], positive_control: dict | None) -> dict:
    counts = {verdict: sum(1 for c in checks if c["verdict"] == verdict) for verdict in VERDICTS}
    # A missed positive control means the checks could not see a planted leak: the audit fails.
    control_missed = positive_control is not None and bool(positive_control) and not positive_control.get("passed")
    overall = "fail" if counts["fail"] or control_missed else "warn" if counts["warn"] else "pass"
    return {
        "total": len(checks),
        "passed": counts["pass"],
        "warned": counts["warn"],
        "failed": counts["fail"],
        "not_applicable": counts["n/a"],
        "verdict": overall,
    }


def _budget(budget: dict) -> dict:
    entries = [
        {
            **entry,
            "epsilon_display": amount_text(entry.get("epsilon"), places=EPSILON_PLACES),
            "delta_display": amount_text(entry.get("delta"), places=DELTA_PLACES),
        }
        for entry in budget.get("entries") or []
    ]
    return {
        **budget,
        "entries": entries,
        **{
            f"{key}_display": amount_text(budget.get(key), places=DELTA_PLACES if "delta" in key else EPSILON_PLACES)
            for key in ("total_epsilon", "total_delta", "remaining_epsilon", "remaining_delta")
        },
    }


def _rebalancing(rebalancing: dict) -> dict:
    shares = [
        {
            **share,
            "real_percent": share.get("real_display")
            or ("—" if share.get("real") is None else f"{100 * float(share['real']):.1f}\u202f%"),
            "released_percent": f"{100 * float(share['released']):.1f}\u202f%",
        }
        for share in rebalancing.get("shares") or []
    ]
    return {**rebalancing, "shares": shares}


def _format_dates(value: Any) -> Any:
    if isinstance(value, dt.date):
        return time_text(value)
    if isinstance(value, dict):
        return {key: _format_dates(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_format_dates(item) for item in value]
    return value
