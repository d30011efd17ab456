"""The picture of the event loop and the threads in real Chromium: it moves as the step
does, by keys, and its text alternative is there for screen readers."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

pytestmark = pytest.mark.browser


def test_the_picture_changes_when_stepping_by_keys(page, browser_server):
    page.goto(f"{browser_server.base_url}/traces/example-async-cpu-4-requests/?step=1")
    expect(page.locator("#step-counter strong")).to_have_text("1")
    text = page.locator("[data-picture-text]")
    seen = [text.text_content()]
    held = False
    for step in range(2, 16):
        page.locator("body").press("ArrowRight")
        expect(page.locator("#step-counter strong")).to_have_text(str(step))
        seen.append(text.text_content())
        held = held or page.locator("#picture-loop.loop-held").count() == 1
    # The drawing is hidden from screen readers, which read the sentences instead.
    expect(page.locator(".picture-drawing")).to_have_attribute("aria-hidden", "true")
    assert all(seen), "every step has a text alternative"
    assert len(set(seen)) >= 5
    assert held, "stepping through async-cpu shows the loop held by count_primes"
