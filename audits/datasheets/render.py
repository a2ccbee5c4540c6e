"""Render datasheet HTML to PDF bytes with WeasyPrint, offline.

A service gathers the facts and renders ``datasheets/datasheet.html`` (with Django's engine, or
``render_template`` here, which needs no Django settings); ``html_to_pdf`` turns the HTML into
PDF bytes and ``signing.sign_pdf`` signs them. Rendering fetches nothing: only ``data:`` URLs are
allowed, fonts come from the machine (DejaVu), and charts are SVG ``data:`` images from ``charts.py``.

Template context contract (pass the facts through ``datasheet_context`` first, whichever engine
renders; keys marked * are added by it; dates may be ``date``/``datetime`` or strings):

- ``title``: str; ``generated_at``: datetime; ``platform``: {name, version}
- ``request``: {id, purpose, justification, requester, recipient, submitted_at}
- ``approvals``: [{approver, role, decision, decided_at, comment}]
- ``budget``: {total_epsilon, total_delta, remaining_epsilon, remaining_delta,
  entries: [{at, kind, epsilon, delta, note}]}  (* ``*_display`` strings)
- ``generator``: {name, version, job_id, started_at, finished_at, parameters: {name: value}}
  (* ``parameter_items``: sorted (name, display) pairs)
- ``seed_policy``: {mode: "reproducible" | "cryptographic", seed, note}
- ``library_versions``: {package: version}  (* ``library_items``)
- ``source``: {dataset, version, hash, n_rows, n_columns}
- ``synthetic``: {dataset, version, hash, n_rows, n_columns, format}
- ``preprocessing``: [str], steps applied to the source before training
- ``privacy``: {epsilon (None or inf: non-private), delta, mechanism, accountant}
  (* ``non_private``, ``epsilon_display``, ``delta_display``)
- ``checks``: [{name, category, value, threshold, direction ("higher is better" | "lower is
  better"), baseline, verdict ("pass" | "warn" | "fail" | "n/a"), note}]  (* ``value_display``,
  ``threshold_display``, ``baseline_display``; * ``checks_summary``: {total, passed, warned,
  failed, not_applicable, verdict}; verdict is "fail" if a check failed or the positive control
  was missed, else "warn" if any check warned, else "pass")
- ``positive_control``: {passed: bool, description, outcome}
- ``rebalancing``: None or {column, reason, shares: [{label, real, released}] (fractions)}
  (* ``real_percent``, ``released_percent``)
- ``charts``: {marginals, associations, roc, distances}: SVG strings from ``charts.py``
  (* ``chart_images``: the same as ``data:`` URIs, shown with ``<img>``, so no markup is ever
  inserted unescaped)
- ``uses``: {intended: [str], prohibited: [str]}
- ``distribution``: {recipient, channel, terms, expires_at}
- ``maintenance``: {contact, retention, errata}
- ``signature``: {signer, reason, location}
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

from audits.datasheets.context import datasheet_context
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


def render_datasheet_html(facts: Mapping[str, Any]) -> str:
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


def render_datasheet_pdf(facts: Mapping[str, Any]) -> bytes:
    """Datasheet PDF bytes (unsigned) naming the synthetic version's hash in its metadata."""
    return html_to_pdf(render_datasheet_html(facts), version_hash=facts["synthetic"].get("hash"))
