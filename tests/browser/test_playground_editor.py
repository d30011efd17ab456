"""The playground's editor in real Chromium: a suggested edit's link puts its code in the
code editor without leaving the page, and the code run is the code shown."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Page, expect

from tests.visualizer.playground.conftest import bubblewrap  # noqa: F401 (a fixture, used below)
from visualizer.playground.suggestions import SUGGESTIONS

pytestmark = pytest.mark.browser


def editor_text(page: Page) -> str:
    value: str = page.evaluate("() => document.querySelector('.CodeMirror').CodeMirror.getValue()")
    return value


@pytest.mark.usefixtures("bubblewrap")
def test_a_suggested_edit_loads_into_the_editor_and_is_what_runs(page: Page, browser_server):
    [suggestion] = SUGGESTIONS["async-cpu"]
    address = f"{browser_server.base_url}/scenarios/async-cpu/"
    page.goto(address)
    page.get_by_text("Edit this view", exact=True).click()
    expect(page.locator(".CodeMirror")).to_be_visible()
    assert "primes = count_primes(limit)" in editor_text(page)

    page.get_by_role("link", name=suggestion.title).click()

    # No reload: the same address, the code in the editor, and the page says what it is.
    assert page.url == address
    assert "primes = await asyncio.to_thread(count_primes, limit)" in editor_text(page)
    expect(page.locator("#suggestion-loaded")).to_have_text(suggestion.loaded_text)
    expect(page.get_by_role("link", name=suggestion.title)).to_have_attribute(
        "aria-current", "true"
    )

    page.get_by_label("Concurrent requests, edited run").fill("1")
    page.get_by_role("button", name="Run the edited code").click()
    page.wait_for_url(re.compile(r"recording=pg"), timeout=60_000)
    expect(page.locator("body")).to_contain_text("The edited code that ran")
    assert "primes = await asyncio.to_thread(count_primes, limit)" in editor_text(page)


@pytest.mark.usefixtures("bubblewrap")
def test_an_edited_run_fills_the_table_while_it_runs(page: Page, browser_server):
    page.goto(f"{browser_server.base_url}/scenarios/async-sleep/")
    page.get_by_text("Edit this view", exact=True).click()
    expect(page.locator(".CodeMirror")).to_be_visible()
    awaiting = editor_text(page).replace(
        "time.sleep(delay_ms / 1000)", "await asyncio.sleep(delay_ms / 1000)"
    )
    set_value = "(code) => document.querySelector('.CodeMirror').CodeMirror.setValue(code)"
    page.evaluate(set_value, awaiting)
    page.get_by_label("Concurrent requests, edited run").fill("2")
    page.get_by_label("I/O delay (ms), edited run").fill("3000")
    page.get_by_role("button", name="Run the edited code").click()

    # The page opens once the run's first steps are in, and follows the run as it goes.
    page.wait_for_url(re.compile(r"recording=pg"), timeout=60_000)
    rows = page.locator("#rows tr[id^='step-']")
    at_first = rows.count()
    expect(page.locator("#run-status")).to_contain_text("Finished: 2 requests", timeout=60_000)
    steps = int(re.search(r"(\d+) steps", page.locator("#run-status").inner_text())[1])
    expect(rows).to_have_count(steps)
    assert 0 < at_first < steps
    # Following the run: the address names its newest step, and no more "follow".
    expect(page).to_have_url(re.compile(rf"step={steps}"))
    assert "follow=1" not in page.url
    assert "await asyncio.sleep(delay_ms / 1000)" in page.locator("section.source").inner_text()
