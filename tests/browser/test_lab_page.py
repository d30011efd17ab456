"""The lab page in real Chromium: a run is followed live, then its results show."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Page, expect

from tests.browser.conftest import run_in_lab

pytestmark = pytest.mark.browser


def test_it_shows_the_timeline_while_the_run_goes_on_then_the_results(page: Page, browser_server):
    page.goto(f"{browser_server.base_url}/lab/?scenario=sync-io")
    pause = page.locator("#predict-pause")
    expect(page.get_by_label("Where does the view's thread wait?")).to_contain_text(
        "fetch_data_blocking(delay_ms)"
    )
    page.get_by_label("Scenario").select_option("async-io")
    # The pause question now offers the lines of the async view.
    expect(page.get_by_label("Where does the view pause?")).to_contain_text(
        "await fetch_data(delay_ms)"
    )
    line = pause.locator("option", has_text="await fetch_data(delay_ms)").get_attribute("value")
    pause.select_option(line)
    page.get_by_label("How long will all the requests take, in ms?").fill("2000")

    run_in_lab(page, None, requests=6, delay_ms=2000)

    live = page.locator("#lab-live")
    expect(live).to_contain_text("Running now", timeout=5000)
    expect(live.locator(".lane .phase.suspended").first).to_be_attached(timeout=5000)
    answered = int(live.locator(".answered").inner_text())
    assert answered < 6
    assert live.locator("li.lane").count() >= 6 + 1

    expect(page).to_have_url(re.compile(r"/lab/\?recording=\w+"), timeout=15_000)
    expect(page.locator("#reveal")).to_contain_text("You expected 2000 ms")
    expect(page.locator("#reveal")).to_contain_text(f"pause at line {line}: right")
    expect(page.locator("table.results")).to_contain_text("Wall time")
