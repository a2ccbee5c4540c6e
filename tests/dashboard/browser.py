"""Playwright helpers for the browser tests: the system Chromium (never a downloaded one),
one browser context per person, screenshots under test-artifacts/screenshots/."""

from __future__ import annotations

import json
from pathlib import Path

from axe_playwright_python.sync_playwright import Axe
from playwright.sync_api import Browser, Page

ROOT = Path(__file__).resolve().parents[2]
SCREENSHOTS = ROOT / "test-artifacts" / "screenshots"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]
DESKTOP = {"width": 1280, "height": 800}
NARROW = {"width": 390, "height": 844}


def launch(playwright) -> Browser:
    return playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)


def shot(page: Page, name: str, *, full_page: bool = True) -> Path:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=full_page)
    return path


# axe-core's impact levels that fail a page (minor and moderate findings are reported, not failed).
AXE_FAILING = ("serious", "critical")


def axe_check(page: Page, name: str) -> dict:
    """Run axe-core (bundled by axe-playwright-python) on the page as it stands; screenshot it.

    Returns ``{"page", "url", "violations": {rule: (impact, nodes)}}`` for the report; the caller
    fails on any ``AXE_FAILING`` impact.
    """
    shot(page, name)
    found = Axe().run(page).response["violations"]
    return {
        "page": name,
        "url": page.url,
        "violations": {rule["id"]: (rule["impact"], len(rule["nodes"])) for rule in found},
    }


def axe_report(results: list[dict]) -> Path:
    """Every page's findings, kept beside the screenshots."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS.parent / "axe-report.json"
    path.write_text(json.dumps(results, indent=2), encoding="utf-8")
    return path


class People:
    """Logged-in pages, one browser context (own cookies) per person."""

    def __init__(self, browser: Browser, base_url: str) -> None:
        self.browser, self.base_url, self._pages = browser, base_url, {}

    def page(self, username: str, *, viewport: dict | None = None) -> Page:
        key = (username, tuple(sorted((viewport or DESKTOP).items())))
        if key not in self._pages:
            context = self.browser.new_context(
                viewport=viewport or DESKTOP, base_url=self.base_url, accept_downloads=True
            )
            context.set_default_timeout(30_000)
            page = context.new_page()
            login(page, username)
            self._pages[key] = page
        return self._pages[key]

    def close(self) -> None:
        for page in self._pages.values():
            page.context.close()


def login(page: Page, username: str) -> None:
    page.goto("/accounts/login/")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(f"{username}-synthgate")
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url("**/")
