"""Template context every page needs: the class session this browser drives or follows."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from django.http import HttpRequest
from django.urls import Resolver404, resolve
from django.utils.functional import SimpleLazyObject

from visualizer.classroom.models import ClassQuestion, ClassSession
from visualizer.classroom.questions import (
    Histogram,
    Offer,
    answer_of,
    current_question,
    histogram,
    offers_for,
)
from visualizer.classroom.session import (
    DRIVE_COOKIE,
    FOLLOW_COOKIE,
    FOLLOWABLE,
    drive_cookie_secret,
)


@dataclass(frozen=True)
class ClassContext:
    """``follow``: the session whose instructor this page follows (the follow view puts
    its own ``classroom`` in the page's context, which wins over this processor's);
    ``drive``: the live session this browser drives; ``rejoin``: a live session this
    browser joined and left to explore; ``page``: whether a class can follow this page;
    ``start_url``: this page, when a class could follow it and none is going on."""

    follow: ClassSession | None = None
    drive: ClassSession | None = None
    rejoin: ClassSession | None = None
    page: bool = False
    start_url: str = ""
    # The question put to the class now (visualizer/classroom/questions.py): its answers
    # counted, the questions the instructor may ask instead, and this follower's answer.
    question: ClassQuestion | None = None
    histogram: Histogram | None = None
    offers: list[Offer] = field(default_factory=list)
    my_answer: str | None = None
    answer_error: str = ""


def follower_context(
    session: ClassSession, student: str | None, answer_error: str = ""
) -> ClassContext:
    """The class bar of a page that follows ``session``, for the browser ``student``."""
    question = current_question(session)
    return ClassContext(
        follow=session,
        question=question,
        histogram=histogram(question) if question is not None else None,
        my_answer=answer_of(question, student) if question is not None else None,
        answer_error=answer_error,
    )


def driver_context(session: ClassSession, page: bool) -> ClassContext:
    """The class bar of the instructor's page: the question asked and its answers, or
    the questions that can be asked on the page the class shows."""
    if not page:
        return ClassContext(drive=session)
    question = current_question(session)
    counted = histogram(question) if question is not None else None
    asking = counted is None or counted.revealed
    return ClassContext(
        drive=session,
        page=page,
        question=question,
        histogram=counted,
        offers=offers_for(session.url) if asking else [],
    )


def classroom(request: HttpRequest) -> dict[str, Any]:
    # Lazy: the database is asked only when a template shows it (full pages). Partials
    # rendered by async views (the lab's progress) never touch it, and must not.
    return {"classroom": SimpleLazyObject(lambda: class_context(request))}


def class_context(request: HttpRequest) -> ClassContext:
    try:
        followable = resolve(request.path_info).url_name in FOLLOWABLE
    except Resolver404:
        followable = False
    drive = request.COOKIES.get(DRIVE_COOKIE, "")
    if drive:
        code = drive.split(":", 1)[0]
        session = ClassSession.objects.filter(code=code, ended_at=None).first()
        if session is not None and session.is_driver(drive_cookie_secret(drive, code)):
            return driver_context(session, followable)
    joined = request.COOKIES.get(FOLLOW_COOKIE, "")
    if joined:
        session = ClassSession.objects.filter(code=joined, ended_at=None).first()
        if session is not None:
            return ClassContext(rejoin=session)
    return ClassContext(page=followable, start_url=request.get_full_path() if followable else "")
