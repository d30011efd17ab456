"""The practice pages in real Chromium: answered with the keyboard only, and without
JavaScript, with the progress kept in the browser's cookie."""

from __future__ import annotations

import re
from typing import Any

import pytest
from playwright.sync_api import Browser, Page, expect

from visualizer.learning.practice import get_question

pytestmark = pytest.mark.browser

FOCUSED = """() => {
  const element = document.activeElement;
  return {
    tag: element.tagName, type: element.type || "", name: element.name || "",
    value: element.value || "", checked: !!element.checked, text: element.textContent.trim(),
  };
}"""


def tab_until(page: Page, wanted: dict[str, Any], limit: int = 40) -> dict[str, Any]:
    """Press Tab until the focused element has every property in ``wanted``."""
    for _ in range(limit):
        page.keyboard.press("Tab")
        focused = page.evaluate(FOCUSED)
        if all(focused[key] == value for key, value in wanted.items()):
            return focused
    raise AssertionError(f"Tab never reached {wanted}")


def test_it_answers_a_question_and_opens_the_hint_by_keyboard_only(page: Page, browser_server):
    question = get_question("await-frees-the-loop")
    assert question is not None and question.choices[0].correct
    page.goto(f"{browser_server.base_url}/practice/{question.slug}/")

    focused = tab_until(page, {"type": "radio", "name": "choice"})
    # Arrows move through the group (the choices are not in the bank's order) and check
    # the choice they reach.
    shown = [focused["value"]]
    for _ in range(len(question.choices) - 1):
        page.keyboard.press("ArrowDown")
        shown.append(page.evaluate(FOCUSED)["value"])
    assert sorted(shown) == [str(i) for i in range(len(question.choices))]
    for _ in range(len(shown) - 1 - shown.index("0")):
        page.keyboard.press("ArrowUp")
    page.keyboard.press("Space")
    assert page.evaluate(FOCUSED) | {"text": ""} == {
        "tag": "INPUT",
        "type": "radio",
        "name": "choice",
        "value": "0",
        "checked": True,
        "text": "",
    }
    page.keyboard.press("Enter")

    expect(page).to_have_url(re.compile(r"\?answered=0#feedback$"))
    status = page.get_by_role("status")
    expect(status).to_contain_text("Right.")
    expect(status).to_contain_text(question.choices[0].why)
    expect(page.locator("ol").first).to_contain_text(question.solution[-1].replace("`", ""))

    hint = page.locator("details.practice-hint")
    expect(hint).not_to_have_attribute("open", "")
    tab_until(page, {"tag": "SUMMARY", "text": "Show a hint"})
    page.keyboard.press("Enter")
    expect(hint).to_have_attribute("open", "")
    expect(hint).to_contain_text(question.hint)


def test_it_keeps_progress_without_javascript_until_started_again(browser: Browser, browser_server):
    context = browser.new_context(java_script_enabled=False)
    page = context.new_page()
    base = browser_server.base_url
    try:
        for slug, choice, verdict in (
            ("declare-async-view", "1", "Not quite"),
            ("when-async-pays-off", "0", "Right."),
        ):
            page.goto(f"{base}/practice/{slug}/")
            page.locator(f'input[name="choice"][value="{choice}"]').check()
            page.get_by_role("button", name="Check").click()
            expect(page.get_by_role("status")).to_contain_text(verdict)

        page.goto(f"{base}/practice/")
        listing = page.locator(".practice-list li")
        expect(listing.filter(has_text="Which first line makes")).to_contain_text(
            "(answered wrong)"
        )
        expect(listing.filter(has_text="For which of these sites")).to_contain_text(
            "(answered right)"
        )
        expect(page.get_by_text("You have answered 2 of")).to_be_visible()

        page.get_by_role("link", name="See your progress").click()
        expect(page.locator(".practice-score")).to_contain_text("Score: 1 of")
        expect(page.locator("section", has_text="Answered wrong")).to_contain_text(
            "Which first line makes"
        )
        page.get_by_role("button", name="Start again").click()
        expect(page.locator(".practice-score")).to_contain_text("(0 answered)")
    finally:
        context.close()
