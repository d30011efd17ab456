"""The time strip in real Chromium: choosing a moment on it, by pointer or by keys, moves
the player's cursor to the step at that time."""

from __future__ import annotations

import pytest
from playwright.sync_api import Page, expect

pytestmark = pytest.mark.browser

EXAMPLE = "/traces/example-async-cpu-4-requests/"


def current_step(page: Page) -> str:
    return page.locator("#player").get_attribute("data-step") or ""


def test_clicking_the_strip_moves_the_cursor_to_the_step_at_that_time(page, browser_server):
    page.goto(f"{browser_server.base_url}{EXAMPLE}?step=1")
    expect(page.locator("#step-counter strong")).to_have_text("1")
    strip = page.locator("#time-strip .strip-positions")
    marker = page.locator("#time-strip .strip-marker")
    before = float(marker.get_attribute("data-marker") or "0")
    # A click two thirds along the strip's tracks.
    strip.scroll_into_view_if_needed()
    box = strip.bounding_box()
    assert box is not None
    page.mouse.click(box["x"] + box["width"] * 2 / 3, box["y"] + box["height"] / 2)
    target = page.locator("#time-strip .strip-positions a").nth(31)
    step = target.get_attribute("data-strip-step")

    expect(page.locator("#step-counter strong")).to_have_text(step or "?")
    assert current_step(page) == step
    assert f"step={step}" in page.url
    after = float(page.locator("#time-strip .strip-marker").get_attribute("data-marker") or "0")
    assert after > before
    # The position clicked is the current one now, and the marker stands in it.
    current = page.locator("#time-strip .strip-positions a[aria-current='true']")
    assert current.get_attribute("data-strip-step") == step


def test_the_strip_is_one_tab_stop_moved_along_by_arrow_keys(page, browser_server):
    page.goto(f"{browser_server.base_url}{EXAMPLE}?step=1")
    first = page.locator("#time-strip .strip-positions a[tabindex='0']")
    expect(first).to_have_count(1)
    first.focus()
    page.keyboard.press("End")
    last = page.locator("#time-strip .strip-positions a").last
    expect(last).to_be_focused()
    step = last.get_attribute("data-strip-step")
    page.keyboard.press("ArrowLeft")
    before_last = page.locator("#time-strip .strip-positions a").nth(-2)
    expect(before_last).to_be_focused()
    step = before_last.get_attribute("data-strip-step")
    # Moving along the strip does not step the player; Enter opens the step there.
    expect(page.locator("#step-counter strong")).to_have_text("1")
    page.keyboard.press("Enter")
    expect(page.locator("#step-counter strong")).to_have_text(step or "?")
    # Focus stays on the strip, at the new current position.
    focused = page.locator("#time-strip .strip-positions a:focus")
    expect(focused).to_have_attribute("aria-current", "true")
