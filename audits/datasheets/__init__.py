"""PDF datasheets: render HTML to PDF bytes, draw charts, sign and verify.

This package is the only place that imports WeasyPrint, pyHanko and the X.509 libraries. A
service gathers the facts, renders ``datasheets/datasheet.html`` and calls ``html_to_pdf`` (or
``render_datasheet_pdf``), then ``sign_pdf`` with the identity from settings, and records the
returned SHA-256.
"""

from audits.datasheets.charts import (
    association_heatmap,
    check_chart_svg,
    distance_histogram,
    marginals_chart,
    roc_chart,
)
from audits.datasheets.context import DatasheetContextError, datasheet_context, format_value, svg_data_uri
from audits.datasheets.render import (
    DATASHEET_TEMPLATE,
    html_to_pdf,
    render_datasheet_html,
    render_datasheet_pdf,
    render_template,
)
from audits.datasheets.signing import (
    SignedPdf,
    SigningIdentity,
    SigningIdentityError,
    VerificationReport,
    ensure_platform_key,
    load_certificates,
    self_signed_certificate,
    sign_pdf,
    verify_pdf,
)

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
