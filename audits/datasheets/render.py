"""Render datasheet HTML to PDF bytes with WeasyPrint, offline.

A service gathers the facts and renders ``datasheets/datasheet.html`` (with Django's engine, or
``render_template`` here, which needs no Django settings); ``html_to_pdf`` turns the HTML into
PDF bytes and ``signing.sign_pdf`` signs them. Rendering fetches nothing: only ``data:`` URLs are
allowed, fonts come from the machine (DejaVu), and charts are SVG ``data:`` images from ``charts.py``.

Template context contract: ``audits.datasheets.facts.DatasheetFacts`` (typed, documented field
by field there), passed through ``datasheet_context``, which adds the display strings, the
numbered ``sections`` and ``section_numbers``; see the top of ``datasheets/datasheet.html``.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pydyf
from django.template import Context, Engine
from weasyprint import HTML
from weasyprint.urls import URLFetcher

from audits.datasheets.context import datasheet_context, facts_as_dict
from audits.datasheets.facts import DatasheetFacts
from audits.datasheets.signing import VERSION_HASH_KEY

TEMPLATES_DIR = Path(__file__).resolve().parents[2] / "templates"
DATASHEET_TEMPLATE = "datasheets/datasheet.html"


@functools.cache
def _engine() -> Engine:
    # A private engine: the project's TEMPLATES setting (context processors, app loaders) is not
    # needed, and scripts, the benchmark and pure tests run without Django settings.
    return Engine(dirs=[str(TEMPLATES_DIR)], autoescape=True, debug=False)


def render_template(template_name: str, context: Mapping[str, Any]) -> str:
    """Render a file under ``templates/`` with a plain dict, without Django settings.

    Localisation and time-zone conversion are off (they read settings), so give dates and
    numbers pre-formatted, as ``datasheet_context`` does.
    """
    template = _engine().get_template(template_name)
    return template.render(Context(dict(context), autoescape=True, use_l10n=False, use_tz=False))


def render_datasheet_html(facts: DatasheetFacts | Mapping[str, Any]) -> str:
    """The datasheet HTML for the facts a service gathered (see the module docstring)."""
    return render_template(DATASHEET_TEMPLATE, datasheet_context(facts))


def html_to_pdf(html: str, *, version_hash: str | None = None) -> bytes:
    """PDF bytes for an HTML string; nothing is fetched except ``data:`` URLs.

    ``version_hash`` is written to the document information dictionary as
    ``/SynthgateVersionHash`` so a later signature covers it (``sign_pdf`` checks it agrees).
    """

    def finisher(_document: object, pdf: pydyf.PDF) -> None:
        if version_hash is not None:
            pdf.info[VERSION_HASH_KEY.lstrip("/")] = pydyf.String(version_hash)

    fetcher = URLFetcher(allowed_protocols={"data"}, timeout=1)
    return HTML(string=html, url_fetcher=fetcher).write_pdf(finisher=finisher)


def render_datasheet_pdf(facts: DatasheetFacts | Mapping[str, Any]) -> bytes:
    """Datasheet PDF bytes (unsigned) naming the synthetic version's hash in its metadata."""
    return html_to_pdf(render_datasheet_html(facts), version_hash=facts_as_dict(facts)["synthetic"].get("hash"))
