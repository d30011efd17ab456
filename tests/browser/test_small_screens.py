"""Every page is usable on a phone: at 390 px wide, nothing makes the page itself scroll
sideways (wide tables and code scroll inside their own boxes)."""

from __future__ import annotations

import pytest
from playwright.sync_api import Browser

pytestmark = pytest.mark.browser

EXAMPLE = "example-async-io-4-requests"
PAGES = [
    "/",
    "/scenarios/async-io/",
    "/scenarios/sync-io/?recording=example-sync-io-4-requests&step=3",
    f"/scenarios/async-io/?recording={EXAMPLE}&presenter=1",
    "/lab/",
    f"/lab/?recording={EXAMPLE}&compare=example-sync-io-4-requests",
    "/traces/",
    f"/traces/compare/?a={EXAMPLE}&b=example-sync-io-4-requests",
    f"/traces/{EXAMPLE}/quiz/",
    f"/traces/{EXAMPLE}/transcript/",
    "/practice/",
    "/join/",
]


def test_no_page_scrolls_sideways_on_a_phone(browser: Browser, browser_server):
    context = browser.new_context(viewport={"width": 390, "height": 844})
    page = context.new_page()
    too_wide = {}
    for url in PAGES:
        page.goto(browser_server.base_url + url)
        width = page.evaluate("document.documentElement.scrollWidth")
        if width > 391:
            too_wide[url] = width
    context.close()
    assert too_wide == {}
