"""PDF datasheets: render HTML to PDF bytes, draw charts, sign and verify.

This package is the only place that imports WeasyPrint, pyHanko and the X.509 libraries. A
service gathers the facts, renders ``datasheets/datasheet.html`` and calls ``html_to_pdf`` (or
``render_datasheet_pdf``), then ``sign_pdf`` with the identity from settings, and records the
returned SHA-256.

Names are loaded on first use: WeasyPrint and pyHanko take seconds to import, and a page or a
command that only draws a chart (or only names a URL) must not pay for them.
"""

from __future__ import annotations

from core.lazy import lazy_exports

_HOMES = {
    "association_heatmap": "charts",
    "check_chart_svg": "charts",
    "distance_histogram": "charts",
    "marginals_chart": "charts",
    "roc_chart": "charts",
    "DatasheetContextError": "context",
    "datasheet_context": "context",
    "format_value": "context",
    "svg_data_uri": "context",
    "DATASHEET_TEMPLATE": "render",
    "html_to_pdf": "render",
    "render_datasheet_html": "render",
    "render_datasheet_pdf": "render",
    "render_template": "render",
    "SignedPdf": "signing",
    "SigningIdentity": "signing",
    "SigningIdentityError": "signing",
    "VerificationReport": "signing",
    "ensure_platform_key": "signing",
    "load_certificates": "signing",
    "self_signed_certificate": "signing",
    "sign_pdf": "signing",
    "verify_pdf": "signing",
}


__all__ = [
    "DATASHEET_TEMPLATE",
    "DatasheetContextError",
    "SignedPdf",
    "SigningIdentity",
    "SigningIdentityError",
    "VerificationReport",
    "association_heatmap",
    "check_chart_svg",
    "datasheet_context",
    "distance_histogram",
    "ensure_platform_key",
    "format_value",
    "html_to_pdf",
    "load_certificates",
    "marginals_chart",
    "render_datasheet_html",
    "render_datasheet_pdf",
    "render_template",
    "roc_chart",
    "self_signed_certificate",
    "sign_pdf",
    "svg_data_uri",
    "verify_pdf",
]


__getattr__ = lazy_exports(__name__, {name: f"{__name__}.{home}" for name, home in _HOMES.items()})
