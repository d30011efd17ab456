"""Compare with… from a player, without JavaScript: the GET form leads to the compare page,
which shows both recordings' bars and verdicts side by side."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Browser, expect

pytestmark = pytest.mark.browser

A, B = "example-sync-io-4-requests", "example-async-io-4-requests"


def test_it_compares_a_player_recording_with_another_without_javascript(
    browser: Browser, browser_server
):
    context = browser.new_context(java_script_enabled=False)
    page = context.new_page()
    page.goto(f"{browser_server.base_url}/scenarios/sync-io/?recording={A}")
    form = page.locator("form.compare-form")
    form.get_by_label("Compare with…").select_option(B)
    form.get_by_role("button", name="Compare side by side").click()
    expect(page).to_have_url(re.compile(rf"/traces/compare/\?a={A}&b={B}$"))
    for side in ("A", "B"):
        section = page.locator(f"section.compare-side:has(#side-{side})")
        expect(section.locator(".verdict")).to_be_visible()
        expect(section.locator(".time-bar")).to_have_count(4)
    expect(page.locator("ul.differences li").first).to_have_text(
        re.compile(r"^The slowest request took \d+ ms in A and \d+ ms in B\.$")
    )
    context.close()
