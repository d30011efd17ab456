"""A class in real Chromium: an instructor drives, three students follow, one explores."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Browser, Page, expect

from tests.browser.conftest import run_in_lab

pytestmark = pytest.mark.browser
EXAMPLE = "/scenarios/async-io/?recording=example-async-io-4-requests&step=1"


def start_class(instructor: Page, url: str) -> str:
    """Start a class on this page as an instructor does; back on the page, the code."""
    instructor.goto(url)
    instructor.get_by_role("button", name="Start a class session on this page").click()
    code = instructor.locator(".join-code").inner_text().strip()
    assert instructor.locator(".qr svg").count() == 1
    instructor.get_by_role("link", name="Go to the page the class follows").click()
    return code


def step_of(page: Page):
    return page.locator("#step-counter strong")


def test_an_instructor_drives_three_followers_and_one_explores(browser: Browser, browser_server):
    contexts = [browser.new_context(viewport={"width": 1200, "height": 900}) for _ in range(4)]
    instructor, *students = [context.new_page() for context in contexts]
    try:
        code = start_class(instructor, browser_server.base_url + EXAMPLE)
        expect(instructor.locator(".class-bar")).to_contain_text(f"Class {code} follows this page.")
        expect(instructor.locator("#class-followers")).to_have_text("0 students connected")

        for student in students:
            student.goto(browser_server.base_url + "/join/")
            student.get_by_label("Code on the instructor's screen").fill(code.lower())
            student.get_by_role("button", name="Join").click()
            expect(student.locator("#class-status")).to_contain_text(f"Following class {code}")
            expect(step_of(student)).to_have_text("1")

        expect(instructor.locator("#class-followers")).to_have_text("3 students connected")
        instructor.locator("body").press("ArrowRight")
        expect(step_of(instructor)).to_have_text("2")
        for student in students:
            expect(step_of(student)).to_have_text("2")

        explorer, *followers = students
        explorer.get_by_role("link", name="Explore on my own").click()
        expect(explorer.locator("#class-status")).to_have_text("Exploring on your own.")
        explorer.get_by_role("link", name="Last step").click()
        expect(step_of(explorer)).not_to_have_text("2")
        last = step_of(explorer).inner_text()
        assert int(last) > 3

        instructor.get_by_role("link", name="Next step").click()
        expect(step_of(instructor)).to_have_text("3")
        for student in followers:
            expect(step_of(student)).to_have_text("3")
        expect(explorer.locator("#class-status")).to_contain_text("The instructor has moved on")
        expect(step_of(explorer)).to_have_text(last)

        explorer.get_by_role("link", name="Follow again").click()
        expect(explorer.locator("#class-status")).to_contain_text(f"Following class {code}")
        expect(step_of(explorer)).to_have_text("3")

        # A run the instructor starts is followed as it goes, to its last step.
        instructor.get_by_role("button", name="Run", exact=True).click()
        expect(instructor.locator("#run-status")).to_contain_text("Finished", timeout=10_000)
        recording = instructor.locator("#player").get_attribute("data-recording")
        assert recording and recording.startswith("live-")
        # The last step arrives a moment after the status says the run has finished.
        last_step = str(instructor.locator("#rows tr").count())
        expect(instructor).to_have_url(re.compile(rf"step={last_step}$"))
        for student in students:
            expect(student.locator("#player")).to_have_attribute("data-recording", recording)
            expect(step_of(student)).to_have_text(last_step)

        # Presenter mode is part of what the class follows.
        instructor.get_by_role("link", name="Presenter mode").click()
        for student in students:
            expect(student.locator("html")).to_have_class(re.compile(r"\bpresenter\b"))
            expect(step_of(student)).to_have_text(last_step)
    finally:
        for context in contexts:
            context.close()


def test_a_follower_watches_the_instructors_lab_run_then_sees_its_results(
    browser: Browser, browser_server
):
    contexts = [browser.new_context(viewport={"width": 1200, "height": 900}) for _ in range(2)]
    instructor, student = [context.new_page() for context in contexts]
    try:
        code = start_class(instructor, browser_server.base_url + "/lab/")
        student.goto(f"{browser_server.base_url}/class/{code}/")
        expect(student.locator("#class-status")).to_contain_text(f"Following class {code}")

        run_in_lab(instructor, "async-io", requests=4, delay_ms=2500)

        live = student.locator("#lab-live")
        expect(live).to_contain_text("Running now", timeout=5000)
        expect(live.locator(".lane .phase.suspended").first).to_be_attached(timeout=5000)

        expect(student.locator("table.results")).to_contain_text("Wall time", timeout=15_000)
    finally:
        for context in contexts:
            context.close()


def test_the_class_answers_a_question_and_the_instructor_sees_the_histogram(
    browser: Browser, browser_server
):
    contexts = [browser.new_context(viewport={"width": 1200, "height": 900}) for _ in range(4)]
    instructor, *students = [context.new_page() for context in contexts]
    try:
        code = start_class(instructor, browser_server.base_url + EXAMPLE)
        for student in students:
            student.goto(f"{browser_server.base_url}/class/{code}/")
            expect(student.locator("#class-status")).to_contain_text(f"Following class {code}")
        expect(instructor.locator("#class-followers")).to_have_text("3 students connected")

        instructor.get_by_label("Ask the class").select_option("predict-overlap")
        instructor.get_by_role("button", name="Ask", exact=True).click()
        expect(instructor.locator("#class-histogram")).to_contain_text("0 answers")

        choices = ["all at the same time", "all at the same time", "one after another"]
        for student, choice in zip(students, choices, strict=True):
            question = student.locator("#class-question")
            expect(question).to_contain_text("How will they run?")  # came over the socket
            question.get_by_label(choice).check()
            question.get_by_role("button", name="Send my answer").click()
            expect(student.locator("#class-my-answer")).to_have_text(f"Your answer: {choice}.")
            expect(question.get_by_role("button", name="Send my answer")).to_have_count(0)

        counted = instructor.locator("#class-histogram")
        expect(counted).to_have_attribute("data-answers", "3")  # live, no reload
        expect(counted.locator('[data-choice="together"] .bar-count')).to_have_text("2")
        expect(counted.locator('[data-choice="one-by-one"] .bar-count')).to_have_text("1")
        expect(counted).not_to_contain_text("right")

        instructor.get_by_role("button", name="Reveal the answer").click()
        right = instructor.locator("#class-histogram .bar.right")
        expect(right).to_have_count(1)
        right_key = right.get_attribute("data-choice")
        picked = {"together": 2, "one-by-one": 1}.get(right_key or "", 0)
        share = f"3 answers: {picked} right ({round(picked / 3 * 100)} %)"
        expect(instructor.locator("#class-histogram")).to_contain_text(share)
        answer_step = step_of(instructor).inner_text()
        for student in students:
            expect(student.locator("#class-histogram")).to_contain_text(share)
            expect(student.locator("#class-histogram .bar.right")).to_have_attribute(
                "data-choice", right_key or ""
            )
            expect(step_of(student)).to_have_text(answer_step)
    finally:
        for context in contexts:
            context.close()


def test_followers_read_the_instructors_code_as_it_is_typed(browser: Browser, browser_server):
    contexts = [browser.new_context(viewport={"width": 1200, "height": 900}) for _ in range(2)]
    instructor, student = [context.new_page() for context in contexts]
    try:
        code = start_class(instructor, browser_server.base_url + "/scenarios/async-sleep/")
        student.goto(browser_server.base_url + "/join/")
        student.get_by_label("Code on the instructor's screen").fill(code)
        student.get_by_role("button", name="Join").click()
        expect(student.locator("#class-status")).to_contain_text(f"Following class {code}")
        shown = student.locator("#class-code")
        expect(shown).to_contain_text("time.sleep(delay_ms / 1000)")
        expect(student.locator("#edit-form")).to_have_count(0)

        instructor.get_by_text("Edit this view", exact=True).click()
        instructor.locator(".CodeMirror").click()
        instructor.keyboard.press("Control+End")
        instructor.keyboard.type("# <b>changed</b> by the instructor")

        expect(shown).to_contain_text("# <b>changed</b> by the instructor")
        expect(shown).to_contain_text("as they type it (not run yet)")
        expect(shown.locator("b")).to_have_count(0)
        # Only the code changed: the student's page did not move.
        assert "recording" not in student.url
    finally:
        for context in contexts:
            context.close()
