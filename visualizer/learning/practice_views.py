"""The practice pages: the question bank (practice.py) as pages to answer, one question
at a time, with this browser's progress.

The site has no session middleware (only natively async middleware, see middleware.py), so
progress lives in a signed cookie that lasts as long as the browser session: compact JSON
mapping each answered question's slug to whether its first answer was "right" or "wrong".
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from urllib.parse import urlencode

from django.http import Http404, HttpRequest, HttpResponse, HttpResponseBase
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_http_methods, require_safe

from visualizer.learning.practice import (
    LEVELS,
    QUESTIONS,
    PracticeQuestion,
    display_order,
    get_question,
)

COOKIE = "practice"
SALT = "practice"
RIGHT = "right"
WRONG = "wrong"
STATUS_LABELS = {RIGHT: "answered right", WRONG: "answered wrong", None: "not answered yet"}

# Text split at its backticks: (text, is_code) pieces, rendered by the "rich" partial of
# practice_question.html with autoescape.
Part = tuple[str, bool]


def split_code(text: str) -> list[Part]:
    """``"a `b` c"`` -> ``[("a ", False), ("b", True), (" c", False)]``. A backtick
    without a partner stays plain text. Nothing is escaped here: the template does it."""
    pieces = text.split("`")
    if len(pieces) % 2 == 0:  # an odd number of backticks: the last one is only a character
        pieces[-2:] = [f"{pieces[-2]}`{pieces[-1]}"]
    return [(piece, index % 2 == 1) for index, piece in enumerate(pieces) if piece]


# -- progress ------------------------------------------------------------------------------


def read_progress(request: HttpRequest) -> dict[str, str]:
    """slug -> "right" or "wrong" for the first answer to each question. A missing,
    tampered or unreadable cookie counts as no progress; unknown slugs are dropped."""
    raw = request.get_signed_cookie(COOKIE, default=None, salt=SALT)
    if not raw:
        return {}
    try:
        data = json.loads(raw)
    except ValueError:
        return {}
    if not isinstance(data, dict):
        return {}
    return {
        slug: result
        for slug, result in data.items()
        if isinstance(slug, str) and get_question(slug) is not None and result in (RIGHT, WRONG)
    }


def write_progress(
    response: HttpResponseBase, request: HttpRequest, progress: dict[str, str]
) -> None:
    # No max_age: the cookie ends with the browser session.
    response.set_signed_cookie(
        COOKIE,
        json.dumps(progress, separators=(",", ":")),
        salt=SALT,
        httponly=True,
        samesite="Lax",
        secure=request.is_secure(),
    )


# -- what the templates show ---------------------------------------------------------------


@dataclass(frozen=True)
class Entry:
    """One question in the list and the summary."""

    question: PracticeQuestion
    number: int  # 1-based, in bank order
    prompt: list[Part]
    status: str | None  # "right", "wrong" or None (not answered yet)
    url: str

    @property
    def status_label(self) -> str:
        return STATUS_LABELS[self.status]


@dataclass(frozen=True)
class ChoiceView:
    index: int
    text: list[Part]
    correct: bool
    why: list[Part]


@dataclass(frozen=True)
class LevelCount:
    level: str
    entries: list[Entry]

    @property
    def total(self) -> int:
        return len(self.entries)

    @property
    def answered(self) -> int:
        return sum(1 for entry in self.entries if entry.status is not None)

    @property
    def right(self) -> int:
        return sum(1 for entry in self.entries if entry.status == RIGHT)


def _is_presenter(request: HttpRequest) -> bool:
    return request.GET.get("presenter") == "1"


def _with_query(url: str, presenter: bool, **params: str) -> str:
    query = {**params, **({"presenter": "1"} if presenter else {})}
    return f"{url}?{urlencode(query)}" if query else url


def _question_url(question: PracticeQuestion, presenter: bool, **params: str) -> str:
    return _with_query(reverse("practice-question", args=[question.slug]), presenter, **params)


def _entries(progress: dict[str, str], presenter: bool) -> list[Entry]:
    return [
        Entry(
            question=question,
            number=number,
            prompt=split_code(question.prompt),
            status=progress.get(question.slug),
            url=_question_url(question, presenter),
        )
        for number, question in enumerate(QUESTIONS, start=1)
    ]


def _by_level(entries: list[Entry]) -> list[LevelCount]:
    return [
        LevelCount(level, [entry for entry in entries if entry.question.level == level])
        for level in LEVELS
    ]


def _page_links(presenter: bool) -> dict[str, object]:
    return {
        "presenter": presenter,
        "list_url": _with_query(reverse("practice"), presenter),
        "summary_url": _with_query(reverse("practice-summary"), presenter),
    }


# -- views ---------------------------------------------------------------------------------


@require_safe
def practice(request: HttpRequest) -> HttpResponse:
    """Every question by level, each marked with this browser's first answer."""
    presenter = _is_presenter(request)
    entries = _entries(read_progress(request), presenter)
    context = {
        **_page_links(presenter),
        "levels": _by_level(entries),
        "total": len(entries),
        "answered": sum(1 for entry in entries if entry.status is not None),
    }
    return render(request, "learning/practice.html", context)


def _chosen_index(question: PracticeQuestion, raw: str | None) -> int | None:
    """The index of one of the question's choices, from a form or query value."""
    if raw is None or not raw.isascii() or not raw.isdigit() or len(raw) > 3:
        return None
    index = int(raw)
    return index if index < len(question.choices) else None


def _question_context(
    request: HttpRequest,
    question: PracticeQuestion,
    *,
    answered: int | None = None,
    error: str = "",
) -> dict[str, object]:
    presenter = _is_presenter(request)
    position = QUESTIONS.index(question)
    choices = [
        ChoiceView(
            index,
            split_code(question.choices[index].text),
            question.choices[index].correct,
            split_code(question.choices[index].why),
        )
        for index in display_order(question)
    ]
    chosen = next((choice for choice in choices if choice.index == answered), None)
    recorded = read_progress(request).get(question.slug)
    previous = QUESTIONS[position - 1] if position > 0 else None
    following = QUESTIONS[position + 1] if position + 1 < len(QUESTIONS) else None
    return {
        **_page_links(presenter),
        "question": question,
        "number": position + 1,
        "count": len(QUESTIONS),
        "prompt": split_code(question.prompt),
        "hint": split_code(question.hint),
        "choices": choices,
        "right_choice": next(choice for choice in choices if choice.correct),
        "solution": [split_code(step) for step in question.solution],
        "mistakes": [split_code(mistake) for mistake in question.mistakes],
        "chosen": chosen,
        # The first answer is the one the progress keeps: say so when this one differs.
        "recorded": recorded,
        "recorded_differs": chosen is not None
        and recorded is not None
        and recorded != (RIGHT if chosen.correct else WRONG),
        "error": error,
        "post_url": _question_url(question, presenter),
        "presenter_toggle_url": _question_url(question, not presenter),
        "previous_url": _question_url(previous, presenter) if previous else "",
        "next_url": _question_url(following, presenter) if following else "",
    }


@require_http_methods(["GET", "HEAD", "POST"])
def practice_question(request: HttpRequest, slug: str) -> HttpResponse:
    """GET: the question, or with ``?answered=<index>`` the feedback on that answer.
    POST: check an answer, record it if it is the first, and redirect to the feedback."""
    question = get_question(slug)
    if question is None:
        raise Http404("No such practice question.")
    if request.method == "POST":
        raw = request.POST.get("choice")
        chosen = _chosen_index(question, raw)
        if chosen is None:
            error = (
                "Choose one of the answers, then press Check."
                if not raw
                else "That answer is not one of the choices. Choose one of them."
            )
            context = _question_context(request, question, error=error)
            return render(request, "learning/practice_question.html", context, status=400)
        presenter = _is_presenter(request)
        url = _question_url(question, presenter, answered=str(chosen))
        response = redirect(f"{url}#feedback")
        progress = read_progress(request)
        if question.slug not in progress:
            progress[question.slug] = RIGHT if question.choices[chosen].correct else WRONG
            write_progress(response, request, progress)
        return response
    answered = _chosen_index(question, request.GET.get("answered"))
    context = _question_context(request, question, answered=answered)
    return render(request, "learning/practice_question.html", context)


@require_http_methods(["GET", "HEAD", "POST"])
def practice_summary(request: HttpRequest) -> HttpResponse:
    """GET: the score by level, and what to practise next. POST: start again."""
    presenter = _is_presenter(request)
    if request.method == "POST":
        response = redirect(_with_query(reverse("practice-summary"), presenter))
        response.delete_cookie(COOKIE, samesite="Lax")
        return response
    entries = _entries(read_progress(request), presenter)
    context = {
        **_page_links(presenter),
        "levels": _by_level(entries),
        "wrong": [entry for entry in entries if entry.status == WRONG],
        "unanswered": [entry for entry in entries if entry.status is None],
        "total": len(entries),
        "answered": sum(1 for entry in entries if entry.status is not None),
        "right": sum(1 for entry in entries if entry.status == RIGHT),
    }
    return render(request, "learning/practice_summary.html", context)
