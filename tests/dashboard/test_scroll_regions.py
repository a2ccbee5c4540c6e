"""Every sideways-scrolling table on the dashboard can be reached and scrolled with the keyboard
(axe's scrollable-region-focusable, serious): at phone width a wide table overflows its wrapper,
and a wrapper that takes no focus leaves the columns past the edge to pointer users only."""

from __future__ import annotations

import re
from pathlib import Path

TEMPLATES = Path(__file__).resolve().parents[2] / "templates"
WRAPPER = re.compile(r"<div\b[^>]*\bclass=\"(?:table-wrap|chart-scroll)\"[^>]*>")


def test_every_scrolling_wrapper_is_a_named_focusable_region() -> None:
    wrappers = [
        (path.relative_to(TEMPLATES), match.group(0))
        for path in sorted(TEMPLATES.rglob("*.html"))
        for match in WRAPPER.finditer(path.read_text())
    ]
    assert len(wrappers) >= 20  # the dashboard's tables and charts
    unreachable = [
        (str(path), tag)
        for path, tag in wrappers
        if 'tabindex="0"' not in tag
        or 'role="region"' not in tag
        or not re.search(r"aria-label(?:ledby)?=\"[^\"]+\"", tag)
    ]
    assert unreachable == []
