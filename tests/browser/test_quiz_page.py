"""The quiz on a trace, walked by keyboard in real Chromium."""

from __future__ import annotations

import json

import pytest
from playwright.sync_api import Page, expect

from visualizer.learning.quiz import quiz_for
from visualizer.traces.library import EXAMPLES_DIR
from visualizer.traces.sources import DocumentSource

pytestmark = pytest.mark.browser
EXAMPLES = EXAMPLES_DIR
EXAMPLE = EXAMPLES / "async-io-4-requests.json"


def test_a_student_answers_the_quiz_by_keyboard(page: Page, browser_server):
    _, questions = quiz_for(DocumentSource(json.loads(EXAMPLE.read_bytes())))
    pause = questions[0]
    page.goto(f"{browser_server.base_url}/traces/example-async-io-4-requests/quiz/")

    first_choice = page.locator('input[name="q-pause"]').first
    first_choice.focus()
    for _ in range(pause.answer):
        page.keyboard.press("ArrowDown")
    expect(page.locator('input[name="q-pause"]').nth(pause.answer)).to_be_checked()
    page.keyboard.press("Enter")  # submits the form

    feedback = page.locator("#question-pause .quiz-feedback")
    expect(feedback).to_contain_text("Right.")
    expect(feedback).to_have_attribute("role", "status")
    link = feedback.get_by_role("link", name=f"See step {pause.step} in the player")
    link.focus()
    page.keyboard.press("Enter")
    expect(page.locator("#step-counter strong")).to_have_text(str(pause.step))


def test_presenter_mode_reveals_an_answer_by_keyboard(page: Page, browser_server):
    page.goto(f"{browser_server.base_url}/traces/example-async-io-4-requests/quiz/?presenter=1")
    summary = page.locator("#question-pause summary")
    summary.focus()
    page.keyboard.press("Enter")
    expect(page.locator("#question-pause details")).to_have_attribute("open", "")
    expect(page.locator("#question-pause details")).to_contain_text("gave the event loop back")
