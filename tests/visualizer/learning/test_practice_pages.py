"""The practice pages: the list, one question with its feedback, progress in a signed
cookie, and the summary."""

from __future__ import annotations

import json
import re

import pytest
from django.http import HttpRequest, HttpResponse
from django.template.loader import render_to_string
from django.test import Client
from django.urls import reverse
from django.utils.html import escape

from visualizer.learning.practice import (
    LEVELS,
    QUESTIONS,
    PracticeQuestion,
    get_question,
    questions_at,
)
from visualizer.learning.practice_views import COOKIE, SALT, read_progress, split_code

FIRST = QUESTIONS[0]


def right_index(question: PracticeQuestion) -> int:
    return next(i for i, choice in enumerate(question.choices) if choice.correct)


def wrong_index(question: PracticeQuestion) -> int:
    return next(i for i, choice in enumerate(question.choices) if not choice.correct)


def rendered(text: str) -> str:
    """How a text of the bank appears in the page: escaped, with its code spans as <code>."""
    return "".join(
        f"<code>{escape(t)}</code>" if code else escape(t) for t, code in split_code(text)
    )


def url(question: PracticeQuestion) -> str:
    return reverse("practice-question", args=[question.slug])


def answer(client: Client, question: PracticeQuestion, index: int) -> str:
    """Post an answer, follow the redirect, and return the feedback page."""
    response = client.post(url(question), {"choice": str(index)})
    assert response.status_code == 302
    assert response["Location"] == f"{url(question)}?answered={index}#feedback"
    page = client.get(response["Location"])
    assert page.status_code == 200
    return page.content.decode()


def progress(client: Client) -> dict[str, str]:
    """The progress the client's cookie holds, read the way the views read it."""
    morsel = client.cookies.get(COOKIE)
    request = HttpRequest()
    if morsel is not None and morsel.value:
        request.COOKIES[COOKIE] = morsel.value
    return read_progress(request)


def signed(value: str) -> str:
    """A cookie value signed by this server, as the views sign it."""
    response = HttpResponse()
    response.set_signed_cookie(COOKIE, value, salt=SALT)
    return response.cookies[COOKIE].value


def status_on_list(html: str, question: PracticeQuestion) -> str:
    link = re.escape(f'<a href="{url(question)}">')
    match = re.search(
        rf'{link}.*?</a>\s*<span class="practice-status">\((.*?)\)</span>',
        html,
        re.DOTALL,
    )
    assert match, question.slug
    return match.group(1)


def section(html: str, title_id: str) -> str:
    return html.split(f'id="{title_id}"', 1)[1].split("</section>", 1)[0]


def test_a_question_linked_to_a_suggested_edit_links_to_its_code_after_the_answer():
    question = next(q for q in QUESTIONS if q.edit is not None)
    assert question.edit is not None
    link = f'<a href="{escape(question.edit.url)}">Make the change in the view\'s code'
    assert link not in Client().get(url(question)).content.decode()

    html = answer(Client(), question, right_index(question))
    assert f"{link} and run it: {escape(question.edit.title)}</a>" in html
    # The link opens the scenario page with the edit's code in the editor.
    assert Client().get(question.edit.url).status_code == 200


def test_it_lists_every_question_under_all_three_levels():
    html = Client().get(reverse("practice")).content.decode()

    for level in LEVELS:
        count = len(questions_at(level))
        assert f'{level.capitalize()} <span class="muted">(0 of {count} answered, 0 right)' in html
    for question in QUESTIONS:
        assert status_on_list(html, question) == "not answered yet"
        level_part = html.split(f'id="level-{question.level}"', 1)[1].split("</section>", 1)[0]
        assert f'href="{url(question)}"' in level_part
    assert f'href="{reverse("practice-summary")}"' in html


@pytest.mark.django_db  # the home page lists the bundled examples' quizzes
def test_it_links_the_practice_list_from_the_home_page():
    html = Client().get(reverse("home")).content.decode()
    assert f'href="{reverse("practice")}"' in html


def test_it_shows_a_question_as_a_form_of_radio_buttons_with_a_hint():
    html = Client().get(url(FIRST)).content.decode()

    assert '<form method="post"' in html
    assert 'name="csrfmiddlewaretoken"' in html
    assert f"<legend>{rendered(FIRST.prompt)}</legend>" in html
    assert html.count('type="radio" name="choice"') == len(FIRST.choices)
    assert "<summary>Show a hint</summary>" in html
    assert rendered(FIRST.hint) in html
    # No feedback before an answer, and no answer given away.
    assert 'role="status"' not in html
    assert "Worked solution" not in html
    assert "Reveal the answer" not in html


def test_it_gives_feedback_on_a_right_answer_and_records_it():
    client = Client()
    index = right_index(FIRST)
    html = answer(client, FIRST, index)

    feedback = html.split('role="status"', 1)[1].split("</div>", 1)[0]
    assert "Right." in feedback
    assert rendered(FIRST.choices[index].why) in feedback
    for choice in FIRST.choices:
        assert rendered(choice.why) in html
    assert "(your choice)" in html
    assert all(f"<li>{rendered(step)}</li>" in html for step in FIRST.solution)
    assert "Common mistakes this question targets" in html
    assert all(f"<li>{rendered(mistake)}</li>" in html for mistake in FIRST.mistakes)
    assert f'<a href="{escape(FIRST.try_it)}">See it happen on a real run</a>' in html
    # The radio of the chosen answer stays checked.
    assert f'value="{index}" required checked' in html
    assert progress(client) == {FIRST.slug: "right"}

    listing = client.get(reverse("practice")).content.decode()
    assert status_on_list(listing, FIRST) == "answered right"
    summary = client.get(reverse("practice-summary")).content.decode()
    assert f"Score: 1 of {len(QUESTIONS)} right" in summary
    assert f'href="{url(FIRST)}"' not in section(summary, "wrong-title")
    assert f'href="{url(FIRST)}"' not in section(summary, "unanswered-title")


def test_it_gives_feedback_on_a_wrong_answer_and_lists_it_to_practise_again():
    client = Client()
    question = get_question("cpu-blocks-the-loop")
    assert question is not None
    index = wrong_index(question)
    html = answer(client, question, index)

    feedback = html.split('role="status"', 1)[1].split("</div>", 1)[0]
    assert "Not quite: that answer is wrong." in feedback
    assert rendered(question.choices[index].text) in feedback
    assert rendered(question.choices[index].why) in feedback
    assert all(rendered(step) in html for step in question.solution)
    assert all(rendered(mistake) in html for mistake in question.mistakes)
    assert progress(client) == {question.slug: "wrong"}

    listing = client.get(reverse("practice")).content.decode()
    assert status_on_list(listing, question) == "answered wrong"
    hard = len(questions_at("hard"))
    assert f"(1 of {hard} answered, 0 right)" in listing

    summary = client.get(reverse("practice-summary")).content.decode()
    assert f"Score: 0 of {len(QUESTIONS)} right</strong> (1 answered)" in summary
    assert (
        f'<th scope="row">Hard</th><td class="num">{hard}</td>'
        f'<td class="num">1</td><td class="num">0</td>'
    ) in summary
    assert f'href="{url(question)}"' in section(summary, "wrong-title")
    assert f'href="{url(question)}"' not in section(summary, "unanswered-title")
    assert f'href="{url(FIRST)}"' in section(summary, "unanswered-title")


def test_it_keeps_the_first_answer_when_a_question_is_answered_again():
    client = Client()
    answer(client, FIRST, wrong_index(FIRST))
    html = answer(client, FIRST, right_index(FIRST))

    assert "Right." in html  # the feedback is on this answer...
    assert "Your progress keeps your first answer to this question, which was wrong." in html
    assert progress(client) == {FIRST.slug: "wrong"}  # ...the progress on the first
    listing = client.get(reverse("practice")).content.decode()
    assert status_on_list(listing, FIRST) == "answered wrong"


def test_it_does_not_record_anything_when_the_feedback_page_is_reloaded():
    client = Client()
    client.post(url(FIRST), {"choice": str(wrong_index(FIRST))})
    reload = client.get(f"{url(FIRST)}?answered={right_index(FIRST)}")

    assert COOKIE not in reload.cookies
    assert progress(client) == {FIRST.slug: "wrong"}


@pytest.mark.parametrize(
    "data", [{}, {"choice": ""}, {"choice": "9"}, {"choice": "-1"}, {"choice": "a"}]
)
def test_it_rejects_a_missing_or_invalid_choice_and_records_nothing(data: dict[str, str]):
    client = Client()
    response = client.post(url(FIRST), data)

    assert response.status_code == 400
    html = response.content.decode()
    assert 'role="alert"' in html
    assert "Choose one of" in html
    assert 'aria-describedby="choice-error"' in html
    assert html.count('type="radio" name="choice"') == len(FIRST.choices)
    assert COOKIE not in response.cookies
    assert progress(client) == {}


def test_it_answers_404_for_an_unknown_question():
    client = Client()
    assert client.get("/practice/no-such-question/").status_code == 404
    assert client.post("/practice/no-such-question/", {"choice": "0"}).status_code == 404


def test_it_refuses_a_post_without_its_csrf_token():
    client = Client(enforce_csrf_checks=True)
    assert client.post(url(FIRST), {"choice": "0"}).status_code == 403
    assert client.post(reverse("practice-summary")).status_code == 403


def test_it_keeps_progress_in_a_signed_browser_session_cookie():
    client = Client()
    response = client.post(url(FIRST), {"choice": str(right_index(FIRST))})
    morsel = response.cookies[COOKIE]

    assert morsel["httponly"]
    assert morsel["samesite"] == "Lax"
    assert not morsel["max-age"]
    assert not morsel["expires"]


def test_it_ignores_a_tampered_or_invalid_cookie():
    client = Client()
    answer(client, FIRST, wrong_index(FIRST))
    forged = client.cookies[COOKIE].value.replace('"wrong"', '"right"')
    assert forged != client.cookies[COOKIE].value
    client.cookies[COOKIE] = forged
    listing = client.get(reverse("practice")).content.decode()
    assert status_on_list(listing, FIRST) == "not answered yet"

    client.cookies[COOKIE] = "not even signed"
    assert "You have answered 0 of" in client.get(reverse("practice")).content.decode()

    # Signed by this server but not the shape it writes: the usable part only.
    second = QUESTIONS[1]
    client.cookies[COOKIE] = signed(
        json.dumps({"no-such-question": "right", FIRST.slug: "maybe", second.slug: "right"})
    )
    listing = client.get(reverse("practice")).content.decode()
    assert status_on_list(listing, FIRST) == "not answered yet"
    assert status_on_list(listing, second) == "answered right"
    assert f"You have answered 1 of {len(QUESTIONS)}" in listing
    for value in ("[1, 2]", "{not json"):
        client.cookies[COOKIE] = signed(value)
        assert client.get(reverse("practice")).status_code == 200
        assert client.get(reverse("practice-summary")).status_code == 200


def test_it_starts_again_from_the_summary():
    client = Client()
    answer(client, FIRST, right_index(FIRST))
    response = client.post(reverse("practice-summary"))

    assert response.status_code == 302
    assert response["Location"] == reverse("practice-summary")
    assert response.cookies[COOKIE]["max-age"] == 0
    summary = client.get(reverse("practice-summary")).content.decode()
    assert f"Score: 0 of {len(QUESTIONS)} right</strong> (0 answered)" in summary


def test_it_reveals_the_answer_in_presenter_mode_only():
    question = get_question("replace-time-sleep")
    assert question is not None
    right = question.choices[right_index(question)]
    client = Client()

    html = client.get(f"{url(question)}?presenter=1").content.decode()
    assert 'class="presenter"' in html
    reveal = html.split("<summary>Reveal the answer</summary>", 1)[1].split("</details>", 1)[0]
    assert rendered(right.text) in reveal
    assert rendered(right.why) in reveal
    assert all(f"<li>{rendered(step)}</li>" in reveal for step in question.solution)
    # Presenter mode stays on through an answer and in the links.
    response = client.post(f"{url(question)}?presenter=1", {"choice": "0"})
    assert response["Location"] == f"{url(question)}?answered=0&presenter=1#feedback"
    assert f'action="{url(question)}?presenter=1"' in html
    assert 'rel="next"' in html and '?presenter=1" rel="next"' in html

    plain = client.get(url(question)).content.decode()
    assert "Reveal the answer" not in plain
    assert 'class="presenter"' not in plain


def test_it_splits_backticks_into_code_parts_without_trusting_the_text():
    assert split_code("<b>x</b> `y`") == [("<b>x</b> ", False), ("y", True)]
    assert split_code("a `b` c `d") == [("a ", False), ("b", True), (" c `d", False)]
    assert split_code("plain") == [("plain", False)]
    html = render_to_string(
        "learning/practice_question.html#rich", {"parts": split_code("<b>x</b> `y`")}
    )
    assert html == "&lt;b&gt;x&lt;/b&gt; <code>y</code>"


def test_it_renders_code_in_question_text_as_code():
    html = Client().get(url(FIRST)).content.decode()
    assert "<code>data = await fetch_data()</code>" in html
    assert "`" not in html.split("<legend>", 1)[1].split("</legend>", 1)[0]


def test_it_does_not_always_show_the_right_answer_first():
    from visualizer.learning.practice import display_order

    first_shown_right = [
        question.choices[display_order(question)[0]].correct for question in QUESTIONS
    ]
    assert not all(first_shown_right)
    assert sum(first_shown_right) <= len(QUESTIONS) // 2
    for question in QUESTIONS:
        assert sorted(display_order(question)) == list(range(len(question.choices)))
        assert display_order(question) == display_order(question)
